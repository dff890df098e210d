// Token sampler over a Float32Array of logits, with llama.cpp's default chain and semantics:
//   penalties -> top-k -> top-p -> min-p -> temperature -> dist (seeded PRNG)
// Temperature 0 is greedy: the argmax of the penalized logits, the lowest index on ties.
//
// Every filter keeps a prefix of the candidates sorted by logit (descending; ties by lower index):
// top-k the first k; top-p the shortest prefix whose probability (softmax over the top-k survivors,
// before temperature) reaches p; min-p the tokens whose probability is at least min_p times the
// largest (logit >= max + ln(min_p)). So the survivors are the shortest of those prefixes, and only
// that prefix is ever selected (a heap of size k, never a sort of the whole vocabulary when top-k is
// set). Temperature then scales the survivors' logits, and one is drawn in proportion to exp().
//
// Buffers (the penalized copy of the logits, the heap, the penalty counts) are allocated once per
// vocabulary size and reused, so sampling a token allocates nothing.

import { FlashdipError, invalidArgument } from './errors';

export interface SamplerOptions {
  // 0 = greedy. Default 0.8 (llama.cpp's default).
  temperature?: number;
  // Keep the k most likely tokens; 0 disables. Default 40.
  topK?: number;
  // Nucleus: keep the smallest set whose probability reaches p, in (0, 1]; 1 disables. Default 0.95.
  topP?: number;
  // Keep tokens with probability >= minP * the largest, in [0, 1]; 0 disables. Default 0.05.
  minP?: number;
  // Over the last repeatLastN accepted tokens: positive logits are divided by it, negative (and
  // zero) ones multiplied. 1 disables. Default 1.
  repeatPenalty?: number;
  // How many accepted tokens the penalties look back over; 0 disables them. Default 64.
  repeatLastN?: number;
  // Subtracted from a logit once per occurrence in the window. Default 0.
  frequencyPenalty?: number;
  // Subtracted from a logit once if it occurs in the window at all. Default 0.
  presencePenalty?: number;
  // PRNG seed (a non-negative safe integer); the same seed gives the same tokens. Default: random.
  seed?: number;
}

export type ResolvedSamplerOptions = Readonly<Required<SamplerOptions>>;

export const DEFAULT_SAMPLER_OPTIONS: Readonly<Omit<Required<SamplerOptions>, 'seed'>> = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
  frequencyPenalty: 0,
  presencePenalty: 0,
});

const KNOWN = new Set(['temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'repeatLastN', 'frequencyPenalty', 'presencePenalty', 'seed']);

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

// Validates and fills in defaults. Throws FlashdipError ERR_INVALID_ARGUMENT naming the option.
export function resolveSamplerOptions(options: SamplerOptions = {}): ResolvedSamplerOptions {
  if (options === null || typeof options !== 'object') throw invalidArgument('options', 'must be an object');
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) throw invalidArgument(k, `unknown sampler option (known: ${[...KNOWN].join(', ')})`);
  }
  const o = { ...DEFAULT_SAMPLER_OPTIONS, ...stripUndefined(options) } as Required<SamplerOptions>;
  if (!isNum(o.temperature) || o.temperature < 0) throw invalidArgument('temperature', `must be a finite number >= 0, got ${o.temperature}`);
  if (!Number.isSafeInteger(o.topK) || o.topK < 0) throw invalidArgument('topK', `must be an integer >= 0 (0 disables), got ${o.topK}`);
  if (!isNum(o.topP) || o.topP <= 0 || o.topP > 1) throw invalidArgument('topP', `must be in (0, 1] (1 disables), got ${o.topP}`);
  if (!isNum(o.minP) || o.minP < 0 || o.minP > 1) throw invalidArgument('minP', `must be in [0, 1] (0 disables), got ${o.minP}`);
  if (!isNum(o.repeatPenalty) || o.repeatPenalty <= 0) throw invalidArgument('repeatPenalty', `must be a finite number > 0 (1 disables), got ${o.repeatPenalty}`);
  if (!Number.isSafeInteger(o.repeatLastN) || o.repeatLastN < 0) throw invalidArgument('repeatLastN', `must be an integer >= 0, got ${o.repeatLastN}`);
  if (!isNum(o.frequencyPenalty)) throw invalidArgument('frequencyPenalty', `must be a finite number, got ${o.frequencyPenalty}`);
  if (!isNum(o.presencePenalty)) throw invalidArgument('presencePenalty', `must be a finite number, got ${o.presencePenalty}`);
  if (options.seed === undefined) {
    o.seed = Math.floor(Math.random() * 0x100000000);
  } else if (!Number.isSafeInteger(o.seed) || o.seed < 0) {
    throw invalidArgument('seed', `must be a non-negative safe integer, got ${o.seed}`);
  }
  return Object.freeze(o);
}

function stripUndefined(o: object): object {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

// xoshiro128** (Blackman & Vigna), seeded through splitmix32 so that nearby seeds give unrelated
// streams. 32-bit state words; period 2^128 - 1.
export class Xoshiro128 {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    this.seed(seed);
  }

  seed(seed: number): void {
    // Both halves of a safe integer feed the state.
    let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) >>> 0, 0x9e3779b9);
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  // Next uniform 32-bit unsigned integer.
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  // Uniform in [0, 1) with 32 bits of resolution.
  nextFloat(): number {
    return this.nextU32() / 0x100000000;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// Index of the largest logit, the lowest index on ties; NaN never wins. -1 when every logit is NaN
// or -Infinity.
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bestV) { bestV = v; best = i; }
  }
  return best;
}

// Histogram buckets for the nucleus without top-k.
const BUCKETS = 1024;

export class Sampler {
  readonly options: ResolvedSamplerOptions;
  private readonly rng: Xoshiro128;
  // Penalty window: a ring of the last repeatLastN accepted tokens.
  private readonly history: Int32Array;
  private historyLen = 0;
  private historyPos = 0;
  // Reused per vocabulary size.
  private work = new Float32Array(0);      // penalized logits
  private counts = new Int32Array(0);      // occurrences in the window, per token
  private heap = new Int32Array(0);        // token ids: a min-heap during selection, then sorted
  private probs = new Float64Array(0);     // exp() of the survivors, parallel to `cand`
  private cand = new Int32Array(0);        // survivor token ids for the threshold / nucleus paths
  private ex = new Float64Array(0);        // per token: exp(), for the whole-vocabulary paths
  private readonly bucketMass = new Float64Array(BUCKETS);

  constructor(options: SamplerOptions = {}) {
    this.options = resolveSamplerOptions(options);
    this.rng = new Xoshiro128(this.options.seed);
    this.history = new Int32Array(this.options.repeatLastN);
  }

  get greedy(): boolean { return this.options.temperature === 0; }

  // Records a token (a prompt token or a sampled one) in the penalty window.
  accept(token: number): void {
    if (!Number.isSafeInteger(token) || token < 0) throw invalidArgument('token', `must be a non-negative integer, got ${token}`);
    const n = this.history.length;
    if (n === 0) return;
    this.history[this.historyPos] = token;
    this.historyPos = (this.historyPos + 1) % n;
    if (this.historyLen < n) this.historyLen++;
  }

  // Clears the penalty window and, with a seed, restarts the PRNG (default: the original seed).
  reset(seed: number = this.options.seed): void {
    if (!Number.isSafeInteger(seed) || seed < 0) throw invalidArgument('seed', `must be a non-negative safe integer, got ${seed}`);
    this.historyLen = 0;
    this.historyPos = 0;
    this.rng.seed(seed);
  }

  // Picks the next token from `logits` (not modified). Does not accept it: call accept() with the
  // token actually used, so penalties see it.
  sample(logits: Float32Array): number {
    if (!(logits instanceof Float32Array) || logits.length === 0) {
      throw invalidArgument('logits', 'must be a non-empty Float32Array');
    }
    const n = logits.length;
    const x = this.penalized(logits);
    const o = this.options;

    if (o.temperature === 0) return this.checked(argmax(x));

    // Top-k bound (n when disabled).
    const k = o.topK > 0 && o.topK < n ? o.topK : n;
    // Max logit; the min-p threshold and how many tokens pass it.
    let m = -Infinity;
    for (let i = 0; i < n; i++) if (x[i] > m) m = x[i];
    if (m === -Infinity || Number.isNaN(m)) this.checked(-1);
    let limit = k;
    let byThreshold = false;
    let thr = -Infinity;
    if (o.minP > 0) {
      thr = m + Math.log(o.minP);
      let c = 0;
      for (let i = 0; i < n; i++) if (x[i] >= thr) c++;
      if (c < limit) { limit = c; byThreshold = true; }
    }

    if (o.topP >= 1) {
      // No nucleus: the survivors are the top `limit` tokens; their order does not matter.
      if (limit === n) return this.drawFromAll(x, m);
      if (byThreshold) return this.drawAbove(x, thr, m, limit);
      this.selectTop(x, limit);
      return this.drawFromHeap(x, limit, m);
    }

    // Nucleus: probabilities normalized over the top-k survivors, before temperature.
    if (k < n) {
      this.selectTop(x, k);
      let z = 0;
      for (let j = 0; j < k; j++) z += Math.exp(x[this.heap[j]] - m);
      const target = o.topP * z;
      let cum = 0;
      let cut = k;
      for (let j = 0; j < k; j++) {
        cum += Math.exp(x[this.heap[j]] - m);
        if (cum >= target) { cut = j + 1; break; }
      }
      return this.drawFromHeap(x, Math.max(1, Math.min(cut, limit)), m);
    }
    // No top-k: find the nucleus's last token without sorting the vocabulary, then draw from the
    // tokens ordered before it that also pass min-p.
    return this.drawPrefix(x, m, this.nucleusEnd(x, m, o.topP), thr);
  }

  // sample() then accept() the token: the usual step of a generation loop.
  sampleAndAccept(logits: Float32Array): number {
    const t = this.sample(logits);
    this.accept(t);
    return t;
  }

  // The logits with the repetition, frequency and presence penalties applied (a reused buffer).
  private penalized(logits: Float32Array): Float32Array {
    const n = logits.length;
    const o = this.options;
    const active = this.historyLen > 0 && (o.repeatPenalty !== 1 || o.frequencyPenalty !== 0 || o.presencePenalty !== 0);
    if (!active) return logits;
    if (this.work.length !== n) { this.work = new Float32Array(n); this.counts = new Int32Array(n); }
    const x = this.work;
    x.set(logits);
    const h = this.history;
    for (let j = 0; j < this.historyLen; j++) {
      const t = h[j];
      if (t < n) this.counts[t]++;
    }
    for (let j = 0; j < this.historyLen; j++) {
      const t = h[j];
      if (t >= n) continue;
      const c = this.counts[t];
      if (c === 0) continue; // already applied (a repeated token)
      this.counts[t] = 0;
      let v = x[t];
      v = v <= 0 ? v * o.repeatPenalty : v / o.repeatPenalty;
      v -= c * o.frequencyPenalty + o.presencePenalty;
      x[t] = v;
    }
    return x;
  }

  private checked(token: number): number {
    if (token < 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'logits: no finite logit to sample from');
    return token;
  }

  private ensure(cap: number): void {
    if (this.heap.length < cap) {
      this.heap = new Int32Array(cap);
      this.probs = new Float64Array(cap);
      this.cand = new Int32Array(cap);
    }
  }

  // Fills this.heap[0..k) with the k best token ids, sorted by logit descending (lower index first
  // on ties). A min-heap of size k over one pass: O(n log k).
  private selectTop(x: Float32Array, k: number): void {
    this.ensure(k);
    const h = this.heap;
    // "a is worse than b": lower logit, or equal logit and higher index. NaN counts as worst.
    const worse = (a: number, b: number) => {
      const va = x[a], vb = x[b];
      if (va !== vb) {
        if (va !== va) return true;   // NaN
        if (vb !== vb) return false;
        return va < vb;
      }
      return a > b;
    };
    const siftDown = (i: number, size: number) => {
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) return;
        const r = l + 1;
        const c = r < size && worse(h[r], h[l]) ? r : l;
        if (!worse(h[c], h[i])) return;
        const t = h[c]; h[c] = h[i]; h[i] = t;
        i = c;
      }
    };
    for (let i = 0; i < k; i++) h[i] = i;
    for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i, k);
    // A later index with an equal logit is worse, so only a strictly larger logit enters.
    let hv = x[h[0]];
    for (let i = k; i < x.length; i++) {
      const v = x[i];
      if (v > hv || (hv !== hv && v === v)) { h[0] = i; siftDown(0, k); hv = x[h[0]]; }
    }
    // Heap sort: pop the worst to the back until the array is best-first.
    for (let size = k - 1; size > 0; size--) {
      const t = h[0]; h[0] = h[size]; h[size] = t;
      siftDown(0, size);
    }
  }

  private draw(total: number, count: number): number {
    const r = this.rng.nextFloat() * total;
    let cum = 0;
    for (let j = 0; j < count; j++) {
      cum += this.probs[j];
      if (r < cum) return j;
    }
    // Rounding: the last candidate with non-zero weight.
    for (let j = count - 1; j > 0; j--) if (this.probs[j] > 0) return j;
    return 0;
  }

  private drawFromHeap(x: Float32Array, count: number, m: number): number {
    const invT = 1 / this.options.temperature;
    let total = 0;
    for (let j = 0; j < count; j++) {
      const p = Math.exp((x[this.heap[j]] - m) * invT);
      this.probs[j] = p;
      total += p;
    }
    return this.heap[this.draw(total, count)];
  }

  private drawAbove(x: Float32Array, thr: number, m: number, count: number): number {
    this.ensure(count);
    const invT = 1 / this.options.temperature;
    let total = 0;
    let j = 0;
    for (let i = 0; i < x.length && j < count; i++) {
      if (x[i] >= thr) {
        this.cand[j] = i;
        const p = Math.exp((x[i] - m) * invT);
        this.probs[j++] = p;
        total += p;
      }
    }
    return this.cand[this.draw(total, j)];
  }

  private drawFromAll(x: Float32Array, m: number): number {
    return this.drawPrefix(x, m, -1, -Infinity);
  }

  // The last token (in logit-descending, index-ascending order) of the shortest prefix of the whole
  // vocabulary whose probability reaches p; -1 for all of it. One pass stores exp(x - m) and buckets
  // the mass by logit (a histogram over [max - 80, max]); only the bucket where the cumulative
  // probability crosses p is sorted.
  private nucleusEnd(x: Float32Array, m: number, p: number): number {
    const n = x.length;
    if (this.ex.length < n) this.ex = new Float64Array(n);
    const ex = this.ex;
    let z = 0;
    let lo = m;
    for (let i = 0; i < n; i++) {
      const v = x[i];
      if (v !== v) { ex[i] = 0; continue; } // NaN: never kept
      const e = Math.exp(v - m);
      ex[i] = e;
      z += e;
      if (v < lo && v > -Infinity) lo = v;
    }
    const B = BUCKETS;
    const mass = this.bucketMass;
    mass.fill(0);
    const range = Math.min(m - lo, 80);
    const scale = range > 0 ? (B - 1) / range : 0;
    for (let i = 0; i < n; i++) {
      const d = (m - x[i]) * scale;
      const b = d < B - 1 ? Math.floor(d) : B - 1; // -Infinity (and NaN, of no mass) in the last
      mass[b] += ex[i];
    }
    const target = p * z;
    let cum = 0;
    let bucket = 0;
    for (; bucket < B; bucket++) {
      if (cum + mass[bucket] >= target) break;
      cum += mass[bucket];
    }
    if (bucket === B) return -1; // rounding: keep everything
    this.ensure(1);
    let c = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i];
      if (v !== v) continue;
      const d = (m - v) * scale;
      const b = d < B - 1 ? Math.floor(d) : B - 1;
      if (b === bucket) {
        if (c === this.cand.length) this.growCand(Math.max(64, c * 2));
        this.cand[c++] = i;
      }
    }
    const inBucket = this.cand.subarray(0, c).sort((a, b) => x[b] - x[a] || a - b);
    for (let j = 0; j < c; j++) {
      cum += ex[inBucket[j]];
      if (cum >= target) return inBucket[j];
    }
    return c ? inBucket[c - 1] : -1;
  }

  // Draws among the tokens ordered at or before `last` (all when -1) whose logit is >= thr, in
  // index order, with temperature.
  private drawPrefix(x: Float32Array, m: number, last: number, thr: number): number {
    const n = x.length;
    if (this.ex.length < n) this.ex = new Float64Array(n);
    const ex = this.ex;
    const lastV = last >= 0 ? x[last] : -Infinity;
    const invT = 1 / this.options.temperature;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i];
      let e = 0;
      if (v >= thr && v > -Infinity && (last < 0 || v > lastV || (v === lastV && i <= last))) {
        e = Math.exp((v - m) * invT);
      }
      ex[i] = e;
      total += e;
    }
    const r = this.rng.nextFloat() * total;
    let cum = 0;
    let lastNonZero = -1;
    for (let i = 0; i < n; i++) {
      const e = ex[i];
      if (e === 0) continue;
      lastNonZero = i;
      cum += e;
      if (r < cum) return i;
    }
    return this.checked(lastNonZero);
  }

  private growCand(cap: number): void {
    const next = new Int32Array(cap);
    next.set(this.cand);
    this.cand = next;
  }
}
