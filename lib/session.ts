// Session: one sequence (KV cache) over a shared model; prompt evaluation, sampling and streaming
// detokenization. Every forward step runs off the JS thread in the native AsyncWorker.
import * as fs from 'fs';
import { NativeContext, NativeLayerStats, NativeModel, NativeScoreHistograms } from './binding';
import { FlashdipError, fromNative, invalidArgument } from './errors';
import type { Model } from './model';
import { checkEnum, checkInt, checkKeys, checkNumber, checkObject } from './options';
import { Sampler, SamplerOptions } from './sampler';
import { CacheOptions, mlpDensity, nativeSparsity, ResolvedSparsity, resolveSparsity, SparsityOptions } from './sparsity';
import { checkTableShape } from './thresholds';
import type { RunTrace } from './simulate';
import { TokenType } from './tokenizer';
import { LoraAdapter, LoraSpec, resolveLoras } from './lora';

export interface SessionOptions {
  /**
   * Tokens the KV cache holds; default min(model context, 4096). At most the model's trained context
   * (`model.info.contextLength`) unless `allowContextBeyondTraining` is set. The cache is reserved, not
   * filled: RAM is used as positions are evaluated.
   */
  contextSize?: number;
  /**
   * Allows a contextSize beyond the model's trained context. Positions past it are outside what the
   * model was trained on (quality degrades) and the KV cache grows with them; off by default.
   */
  allowContextBeyondTraining?: boolean;
  /** Seed of the sampler's PRNG; the same seed reproduces the same tokens. */
  seed?: number;
  /** KV cache element type: 'f16' (default, half the memory) or 'f32' (exact). */
  kvCacheType?: 'f16' | 'f32';
  /** Tokens per forward pass during prompt evaluation. */
  batchSize?: number;
  threads?: number;
  /** Record per-token, per-layer cache counts (session.trace()) for the hardware simulator. */
  record?: boolean;
  /** Overrides the model's sparsity for this session. */
  sparsity?: SparsityOptions;
  /**
   * Under a memoryBudget the column cache is the model's, shared by its sessions: its options are
   * loadModel's, and a session may only repeat them (ERR_INVALID_ARGUMENT otherwise).
   */
  cache?: CacheOptions;
  /**
   * LoRA adapters (model.loadLora) applied to every matrix they target, with their scales. Under a
   * memoryBudget the adapters loaded on the model when the session is made are counted in it.
   */
  loras?: LoraSpec[];
  /** @internal accumulate score histograms for calibration (session.histograms()); 'attention': of the attention masks too. */
  histograms?: boolean | 'attention';
}

export interface GenerateOptions extends SamplerOptions {
  /** Stop after this many tokens (default 256). */
  maxTokens?: number;
  /** Stop when the text produced contains one of these; the stop string is not emitted. */
  stop?: string[];
  signal?: AbortSignal;
  /** Called with the logits before each token is sampled (diagnostics; the array is reused). */
  onLogits?: (logits: Float32Array, step: number) => void;
}

export interface Piece {
  /** Text completed by this token (may be empty while a UTF-8 character or stop string is pending). */
  text: string;
  token: number;
}

export interface SessionStats {
  contextSize: number;
  contextUsed: number;
  promptTokens: number;
  generatedTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Resident set size of the process (what the OS counts), in bytes. */
  residentBytes: number;
  /**
   * MLP sparsity and the column cache, over this session's tokens since it started (or was reset):
   * the hits, misses and reads are those of this session's masks. Under a memoryBudget the cache is
   * the model's, shared by its sessions (model.memory() has the totals over all of them), so a
   * session's hits depend on what the others read; cacheFraction is the model's, as of now.
   */
  sparsity: {
    method: string;
    keepX: number;
    keepH: number;
    cacheFraction: number;
    /** Attention DIP: the fraction of attention inputs asked for (1: dense attention). */
    keepAttn: number;
    /** Fraction of the column units used that were in the DRAM cache (MLP, and attention's when it has columns). */
    hitRate: number;
    /** Column bytes per token from flash (cache misses) and from DRAM (hits): MLP, and attention's when it has columns. */
    flashBytesPerToken: number;
    dramBytesPerToken: number;
    /** Measured reads from the column store (a converted model under a budget). */
    storeBytesPerToken: number;
    /** Bytes read besides the rows: small gaps between rows (cheaper than another request) and, with O_DIRECT, the block alignment. */
    storeGapBytesPerToken: number;
    /** Read requests per token (a run of nearby rows is one): what a disk with few IOPS pays for. */
    storeReadsPerToken: number;
    /** Time from issuing each batch of reads to its last byte, summed (reads overlap computation). */
    storeReadSeconds: number;
    /**
     * How the store reads: 'uring' (io_uring), 'threads' (preadv on I/O threads) or 'sync', then 'direct'
     * (O_DIRECT, no page cache) or 'buffered' (page cache, dropped after each batch); '' without a store.
     */
    ioEngine: string;
    /**
     * Where a token's time goes, per token on average over the tokens evaluated (prompt included):
     * waiting for flash reads that computation could not hide, and everything else in the layers.
     */
    ioSecondsPerToken: number;
    computeSecondsPerToken: number;
    /** Calibrated thresholds are in use (the kept fractions then vary per token). */
    thresholds: boolean;
    /**
     * Realized kept fractions over the tokens: of the x-mask units (W_up/W_gate columns), of the
     * h-mask units (W_down columns), and the MLP density they make (dip: (2 keptX + keptH) / 3;
     * glu/gate/up: keptH), to compare with the target density.
     */
    keptX: number;
    keptH: number;
    density: number;
    /** Realized kept fraction of the attention inputs (q/k/v and W_o's, by units), 1 without attention DIP. */
    keptAttn: number;
    /**
     * Per layer: MLP units from DRAM (hits) and flash (misses), time in the layer and of it waiting
     * for reads, and the kept fractions.
     */
    layers: (NativeLayerStats & { keptX: number; keptH: number })[];
  };
}

const SESSION_KEYS = ['contextSize', 'allowContextBeyondTraining', 'seed', 'kvCacheType', 'batchSize', 'threads', 'sparsity', 'cache', 'record', 'histograms', 'loras'] as const;
const GENERATE_KEYS = [
  'maxTokens', 'stop', 'signal', 'temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'repeatLastN',
  'frequencyPenalty', 'presencePenalty', 'seed', 'onLogits',
] as const;
const KV_TYPES = { f32: 0, f16: 1 } as const;

export class Session {
  readonly model: Model;
  readonly contextSize: number;
  readonly sparsity: ResolvedSparsity;
  readonly kvType: 'f16' | 'f32';
  /**
   * Fraction of every MLP matrix the DRAM column cache holds (1 without a budget). Under a budget the
   * cache is the model's: the fraction shrinks as sessions are made and grows as they are disposed
   * (a disposed session keeps the value it had last).
   */
  get cacheFraction(): number {
    if (this.native && !this.model.disposed) this.lastFraction = this.model.memory().budget?.cacheFraction ?? 1;
    return this.lastFraction;
  }
  private lastFraction = 1;
  private native: NativeContext | undefined;
  private readonly onDispose: () => void;
  private readonly seed: number;
  private generations = 0;
  /** Every token of the sequence; the first nPast are in the KV cache. */
  private readonly history: number[] = [];
  private readonly logits: Float32Array;
  /** The length of the sequence whose next-token logits `logits` holds (after a truncate, none may). */
  private logitsFor = -1;
  /** The open generator or running evaluate that has the sequence; others get ERR_BUSY. */
  private holder: object | undefined;
  /** The adapters applied, in order. */
  private activeLoras: LoraAdapter[] = [];
  /** Adapter bytes the budget set aside for this session (Infinity without a budget). */
  private readonly loraReserve: number;
  private counters = { promptTokens: 0, generatedTokens: 0, prefillSeconds: 0, decodeSeconds: 0 };

  /** @internal use model.createSession() */
  constructor(model: Model, nativeModel: NativeModel, options: SessionOptions, onDispose: () => void) {
    const o = checkObject('options', options);
    checkKeys('options', o, SESSION_KEYS);
    const maxCtx = model.info.contextLength;
    const beyond = o.allowContextBeyondTraining;
    if (beyond !== undefined && typeof beyond !== 'boolean') throw invalidArgument('allowContextBeyondTraining', 'must be a boolean');
    this.contextSize = checkInt('contextSize', o.contextSize, 1, 1 << 24, Math.min(maxCtx, 4096));
    if (this.contextSize > maxCtx && beyond !== true)
      throw invalidArgument(
        'contextSize',
        `${this.contextSize} is beyond the ${maxCtx} tokens this model was trained on; ` +
          'pass allowContextBeyondTraining: true to create such a session anyway',
      );
    this.seed = checkInt('seed', o.seed, 0, 2 ** 32 - 1, 0);
    const kv = checkEnum('kvCacheType', o.kvCacheType, ['f16', 'f32'], 'f16');
    this.kvType = kv;
    const batchSize = checkInt('batchSize', o.batchSize, 1, 4096, 64);
    const threads = checkInt('threads', o.threads, 1, 256);
    this.sparsity = o.sparsity === undefined && o.cache === undefined ? model.defaults.sparsity : resolveSparsity(o.sparsity, o.cache);
    if (this.sparsity.thresholds) checkTableShape('sparsity.thresholds', this.sparsity.thresholds, model.info);
    const loras = resolveLoras('loras', o.loras, model);
    const budgeted = model.defaults.memoryBudget !== undefined;
    if (budgeted && o.cache !== undefined) {
      const d = model.defaults.sparsity;
      if (this.sparsity.policy !== d.policy || this.sparsity.dropPageCache !== d.dropPageCache)
        throw invalidArgument('cache', 'under a memoryBudget the column cache is the model\'s, shared by its sessions: give its options to loadModel');
    }
    this.loraReserve = budgeted ? model.loraBytes() : Infinity;
    this.model = model;
    this.onDispose = onDispose;
    try {
      this.native = nativeModel.createContext({
        contextSize: this.contextSize, kvType: KV_TYPES[kv], batchSize, threads,
        sparsity: nativeSparsity(this.sparsity),
        record: o.record === true ? 1 : 0,
        histograms: o.histograms === 'attention' ? 2 : o.histograms === true ? 1 : 0,
        loraBytes: budgeted ? this.loraReserve : 0,
      });
      if (loras.specs.length) this.native.setLoras(loras.specs);
    } catch (err) {
      this.native?.dispose();
      this.native = undefined;
      throw fromNative(err);
    }
    this.activeLoras = loras.adapters;
    this.logits = new Float32Array(model.info.vocabSize);
  }

  /** @internal tokens of the sequence whose keys and values are in the KV cache (the rest are evaluated next). */
  get cachedTokens(): number {
    return this.alive().nPast();
  }

  /** Tokens in the sequence so far (prompt and generated). */
  get tokens(): readonly number[] {
    return this.history;
  }

  /**
   * Appends tokens to the sequence and runs them through the model. Returns the logits of the last
   * token, or with allLogits those of every appended token ([n][vocab]). The returned array of the
   * last-token form is reused by the next call: copy it to keep it.
   */
  async evaluate(tokens: readonly number[], options: { allLogits?: boolean } = {}): Promise<Float32Array> {
    this.alive();
    this.checkTokens(tokens);
    const hold = this.acquire();
    try {
      return await this.advance(tokens, options.allLogits === true);
    } finally {
      this.release(hold);
    }
  }

  private checkTokens(tokens: readonly number[]): void {
    if (!Array.isArray(tokens) || tokens.length === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'tokens: must be a non-empty array');
    const vocab = this.model.info.vocabSize;
    for (const t of tokens)
      if (!Number.isInteger(t) || t < 0 || t >= vocab)
        throw new FlashdipError('ERR_INVALID_ARGUMENT', `tokens: ${t} is not a token id of this model (0..${vocab - 1})`);
  }

  // One sequence has one writer at a time: an open generator (from its first step until it finishes,
  // is returned from or throws) or a running evaluate. Interleaving two would evaluate a pending
  // token twice and leave the KV cache out of step with the history.
  private acquire(): object {
    if (this.holder)
      throw new FlashdipError(
        'ERR_BUSY',
        'the session is in use by an open generator or a running evaluate; finish it, break out of its loop or call its return() first',
      );
    const hold = {};
    this.holder = hold;
    return hold;
  }

  private release(hold: object): void {
    if (this.holder === hold) this.holder = undefined;
  }

  // Evaluates the tokens of the sequence not yet in the cache (a sampled token is only evaluated
  // when the sequence goes on) followed by `tokens`.
  private async advance(tokens: readonly number[], all: boolean): Promise<Float32Array> {
    const native = this.alive();
    const pending = this.history.slice(native.nPast());
    const input = Int32Array.from([...pending, ...tokens]);
    const vocab = this.model.info.vocabSize;
    const out = all ? new Float32Array(input.length * vocab) : this.logits;
    await this.run(native, input, all, out);
    this.history.push(...tokens);
    if (all) this.logits.set(out.subarray((input.length - 1) * vocab));
    this.logitsFor = this.history.length;
    return all ? out.subarray(pending.length * vocab) : out;
  }

  /**
   * Generates a continuation of `prompt` (text, or token ids). The first prompt of a session gets
   * BOS as the vocabulary asks; later prompts continue the same sequence. From its first step until
   * it finishes, is returned from (`break` out of `for await`) or throws, the generator has the
   * session: another generate, evaluate or reset gets ERR_BUSY.
   */
  async *generate(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<Piece, void, undefined> {
    this.alive();
    const hold = this.acquire();
    try {
      yield* this.generateHeld(prompt, options);
    } finally {
      this.release(hold);
    }
  }

  private async *generateHeld(prompt: string | readonly number[], options: GenerateOptions): AsyncGenerator<Piece, void, undefined> {
    const o = checkObject('options', options);
    checkKeys('options', o, GENERATE_KEYS);
    const maxTokens = checkInt('maxTokens', o.maxTokens, 0, 1 << 30, 256);
    const stop = checkStops(o.stop);
    const signal = o.signal as AbortSignal | undefined;
    const onLogits = o.onLogits as GenerateOptions['onLogits'];
    if (onLogits !== undefined && typeof onLogits !== 'function') throw new FlashdipError('ERR_INVALID_ARGUMENT', 'onLogits: must be a function');
    if (signal !== undefined && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean'))
      throw new FlashdipError('ERR_INVALID_ARGUMENT', 'signal: must be an AbortSignal');
    const { maxTokens: _m, stop: _s, signal: _g, onLogits: _l, ...samplerOptions } = o as GenerateOptions;
    const sampler = new Sampler({ ...samplerOptions, seed: samplerOptions.seed ?? this.seed + this.generations++ });
    const native = this.alive();
    const tok = this.model.tokenizer;
    let promptTokens: number[];
    if (typeof prompt === 'string') promptTokens = tok.encode(prompt, { addSpecial: this.history.length === 0 });
    else if (Array.isArray(prompt)) promptTokens = [...prompt];
    else throw new FlashdipError('ERR_INVALID_ARGUMENT', 'prompt: must be a string or an array of token ids');
    if (promptTokens.length === 0 && this.history.length === 0)
      throw new FlashdipError('ERR_INVALID_ARGUMENT', 'prompt: nothing to evaluate (empty prompt and the vocabulary adds no BOS)');

    aborted(signal);
    if (promptTokens.length > 0) {
      const t0 = performance.now();
      this.checkTokens(promptTokens);
      await this.advance(promptTokens, false);
      this.counters.prefillSeconds += (performance.now() - t0) / 1000;
      this.counters.promptTokens += promptTokens.length;
    } else if (native.nPast() < this.history.length) {
      await this.advance([], false);
    } else if (this.logitsFor !== this.history.length) {
      // Truncated to tokens all in the cache: evaluate the last one again for its logits.
      native.truncate(this.history.length - 1);
      await this.advance([], false);
    }

    for (const t of this.history.slice(-sampler.options.repeatLastN)) sampler.accept(t);
    // The text of the sequence so far is the decoder's prefix, so the first piece keeps or drops its
    // leading space as detokenizing the whole text would (control tokens such as BOS have no text and
    // are left out, as llama.cpp does: a continuation of BOS alone starts without a space).
    const decoder = tok.createStreamDecoder({ prefix: this.history.filter((t) => tok.tokenType(t) !== TokenType.Control) });
    const filter = new StopFilter(stop);
    for (let produced = 0; produced < maxTokens; ) {
      this.alive();  // disposed while the generator waited
      aborted(signal);
      onLogits?.(this.logits, produced);
      const token = this.sample(sampler, onLogits !== undefined);
      sampler.accept(token);
      if (tok.isEndOfGeneration(token)) break;
      this.history.push(token);
      produced++;
      this.counters.generatedTokens++;
      const { text, stopped } = filter.push(decoder.push(token));
      if (text || !stopped) yield { text, token };
      if (stopped) return;
      if (produced < maxTokens) {
        const t0 = performance.now();
        await this.run(native, Int32Array.of(token), false, this.logits);
        this.logitsFor = this.history.length;
        this.counters.decodeSeconds += (performance.now() - t0) / 1000;
      }
    }
    const rest = filter.flush(decoder.flush());
    if (rest) yield { text: rest, token: -1 };
  }

  /**
   * Safe at any time, also while an evaluation runs: the native counters are a consistent snapshot
   * as of the last finished batch of tokens.
   */
  // Samples the next token. Logits with no finite value come from the weights (NaN or infinity in a
  // damaged or badly converted file), not from the caller, unless an onLogits hook could have written them.
  private sample(sampler: Sampler, hooked: boolean): number {
    try {
      return sampler.sample(this.logits);
    } catch (err) {
      if (hooked || !(err instanceof FlashdipError) || err.code !== 'ERR_INVALID_ARGUMENT' || this.logits.some(Number.isFinite)) throw err;
      throw new FlashdipError('ERR_MODEL_INVALID',
        `${this.model.path}: the model computed no finite logit (its weights hold NaN or infinity: the file is damaged or was made wrongly)`);
    }
  }

  stats(): SessionStats {
    const c = this.counters;
    const native = this.alive();
    const sp = native.stats(false);
    let hits = 0, units = 0, flash = 0, dram = 0, seconds = 0, attnUnits = 0;
    for (const l of sp.layers) {
      seconds += l.seconds;
      hits += l.ugHits + l.downHits + l.qkvHits + l.oHits;
      units += l.ugHits + l.ugMisses + l.downHits + l.downMisses + l.qkvHits + l.qkvMisses + l.oHits + l.oMisses;
      flash += l.ugMisses * sp.ugUnitBytes + l.downMisses * sp.downUnitBytes + l.qkvMisses * sp.qkvUnitBytes + l.oMisses * sp.oUnitBytes;
      dram += l.ugHits * sp.ugUnitBytes + l.downHits * sp.downUnitBytes + l.qkvHits * sp.qkvUnitBytes + l.oHits * sp.oUnitBytes;
      attnUnits += l.qkvHits + l.qkvMisses + l.oHits + l.oMisses;
    }
    const { dim, ffn, heads, headDim } = this.model.info;
    const keptAttn = attnUnits > 0 ? attnUnits / (sp.tokens * sp.layers.length * (dim + heads * headDim)) : this.sparsity.keepAttn;
    const perToken = (x: number) => (sp.tokens > 0 ? x / sp.tokens : 0);
    // Kept fractions: measured when the context tracked tokens, else what the options ask for.
    // (Every token is counted; an untracked context, dense without a budget, counts no units.)
    const measured = sp.tokens > 0 && (units > 0 || this.sparsity.method !== 'dense');
    const nominal = this.sparsity.method === 'dense' ? { x: 1, h: 1 } : { x: this.sparsity.keepX, h: this.sparsity.keepH };
    let keptX = 0, keptH = 0;
    const layers = sp.layers.map((l) => {
      const x = measured ? (l.ugHits + l.ugMisses) / (sp.tokens * dim) : nominal.x;
      const h = measured ? (l.downHits + l.downMisses) / (sp.tokens * ffn) : nominal.h;
      keptX += x / sp.layers.length;
      keptH += h / sp.layers.length;
      return { ...l, keptX: x, keptH: h };
    });
    if (layers.length === 0) (keptX = nominal.x), (keptH = nominal.h);
    return {
      contextSize: this.contextSize,
      contextUsed: native.nPast(),
      promptTokens: c.promptTokens,
      generatedTokens: c.generatedTokens,
      prefillSeconds: c.prefillSeconds,
      decodeSeconds: c.decodeSeconds,
      prefillTokensPerSecond: c.prefillSeconds > 0 ? c.promptTokens / c.prefillSeconds : 0,
      // The first generated token comes from the prompt's logits, so decode steps = generated - 1.
      decodeTokensPerSecond: c.decodeSeconds > 0 ? Math.max(0, c.generatedTokens - 1) / c.decodeSeconds : 0,
      residentBytes: residentBytes(),
      sparsity: {
        method: this.sparsity.method,
        keepX: this.sparsity.keepX,
        keepH: this.sparsity.keepH,
        keepAttn: this.sparsity.keepAttn,
        cacheFraction: this.cacheFraction,
        hitRate: units > 0 ? hits / units : 1,
        flashBytesPerToken: perToken(flash),
        dramBytesPerToken: perToken(dram),
        storeBytesPerToken: perToken(sp.ioBytes),
        storeGapBytesPerToken: perToken(sp.ioGapBytes),
        storeReadsPerToken: perToken(sp.ioReads),
        storeReadSeconds: sp.ioSeconds,
        ioEngine: sp.ioEngine,
        ioSecondsPerToken: perToken(sp.ioWaitSeconds),
        computeSecondsPerToken: perToken(seconds - sp.ioWaitSeconds),
        thresholds: this.sparsity.thresholds !== undefined,
        keptX,
        keptH,
        density: mlpDensity(this.sparsity.method, keptX, keptH),
        keptAttn,
        layers,
      },
    };
  }

  /**
   * The recorded run since the session started or was reset (needs `record: true`): per token and
   * layer, the MLP column units found in DRAM and read from flash, with what the simulator needs.
   */
  trace(): RunTrace {
    const native = this.alive();
    const st = native.stats(false);
    const info = this.model.info;
    const tokens = st.tokens;
    const averageLength = tokens > 0 ? (tokens + 1) / 2 : 0;
    // The KV bytes at the average length (linear between whole positions).
    const low = Math.floor(averageLength), kvLow = native.kvBytes(low);
    const kvAtAverage = kvLow + (averageLength - low) * (native.kvBytes(low + 1) - kvLow);
    return {
      layers: info.layers,
      counts: st.trace ?? new Int32Array(0),
      ugUnitBytes: st.ugUnitBytes,
      downUnitBytes: st.downUnitBytes,
      staticBytes: this.model.defaults.bytes.static,
      // What attention reads per token at the run's average length, per position of it (a
      // sliding-window layer reads at most its ring, so this is not the reserved cache / contextSize).
      kvBytesPerPosition: averageLength > 0 ? kvAtAverage / averageLength : native.bytes().kv / this.contextSize,
      averageLength,
      units: { ug: info.dim, down: info.ffn },
      cacheFraction: this.cacheFraction,
      policy: this.sparsity.policy,
      budgeted: this.model.defaults.memoryBudget !== undefined,
      windows: [tokens],
      embeddingRowBytes: this.model.defaults.memoryBudget !== undefined && this.model.defaults.bytes.streamed > 0
        ? this.model.defaults.bytes.streamed / info.vocabSize : 0,
      masks: st.masks ?? [],
      times: st.times ?? new Float32Array(0),
      ...(st.attnTrace ? {
        attnCounts: st.attnTrace, qkvUnitBytes: st.qkvUnitBytes, oUnitBytes: st.oUnitBytes, attnMasks: st.attnMasks ?? [],
        attnUnits: { qkv: info.dim, o: info.heads * info.headDim }, attnRows: info.dipAttention,
      } : {}),
    };
  }

  /** @internal the score histograms of a session made with `histograms: true` (calibration). */
  histograms(): NativeScoreHistograms {
    const h = this.alive().histograms();
    if (!h) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'the session was not made with histograms: true');
    return h;
  }

  /**
   * Keeps the first n tokens of the sequence and drops the rest from the KV cache (a chat rewinds to
   * what its next prompt shares with the sequence). On a model with sliding-window layers (gemma2,
   * gemma3), whose KV cache keeps only the window and a batch there, a rewind further back than that
   * empties the cache instead: the next evaluation computes the n kept tokens again.
   */
  truncate(n: number): void {
    const native = this.alive();
    checkInt('n', n, 0, this.history.length);
    if (this.holder) throw new FlashdipError('ERR_BUSY', 'the session is in use by an open generator or a running evaluate; finish it first');
    if (native.nPast() > n) native.truncate(n);
    this.history.length = n;
  }

  /** The adapters this session applies. */
  get loras(): readonly LoraAdapter[] {
    return this.activeLoras;
  }

  /**
   * Replaces the LoRA adapters applied from the next evaluation on ([] for none). Not while a
   * generator is open (ERR_BUSY). The KV cache keeps the positions already computed (with the
   * previous adapters): reset() first for a sequence computed with the new ones throughout. Under a
   * memoryBudget the adapters must fit in what the session set aside for them (ERR_BUDGET_TOO_SMALL).
   */
  setLoras(loras: LoraSpec[]): void {
    const native = this.alive();
    const r = resolveLoras('loras', loras, this.model);
    if (this.holder) throw new FlashdipError('ERR_BUSY', 'the session is in use by an open generator or a running evaluate; finish it first');
    const bytes = [...new Set(r.adapters)].reduce((n, a) => n + a.bytes, 0);
    if (bytes > this.loraReserve)
      throw new FlashdipError('ERR_BUDGET_TOO_SMALL',
        `these LoRA adapters hold ${bytes} bytes but the session set aside ${this.loraReserve} under its memoryBudget ` +
          '(the adapters loaded when it was made): load them before creating the session');
    try {
      native.setLoras(r.specs);
    } catch (err) {
      throw fromNative(err);
    }
    this.activeLoras = r.adapters;
  }

  /** Forgets the sequence; the next prompt starts from an empty cache. Not while a generator is open (ERR_BUSY). */
  reset(): void {
    const native = this.alive();
    if (this.holder) throw new FlashdipError('ERR_BUSY', 'the session is in use by an open generator or a running evaluate; finish it first');
    native.truncate(0);
    native.stats(true);
    this.history.length = 0;
    this.counters = { promptTokens: 0, generatedTokens: 0, prefillSeconds: 0, decodeSeconds: 0 };
  }

  get disposed(): boolean {
    return this.native === undefined;
  }

  async dispose(): Promise<void> {
    if (!this.native) return;
    this.lastFraction = this.cacheFraction;  // what a disposed session reports
    this.native.dispose();
    this.native = undefined;
    this.onDispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  // Only the holder (acquire) runs steps.
  private async run(native: NativeContext, tokens: Int32Array, all: boolean, out: Float32Array): Promise<void> {
    const callSite = new Error();
    try {
      if (tokens.length > 0) await native.eval(tokens, all, out);
    } catch (err) {
      throw fromNative(err, callSite);
    }
  }

  private alive(): NativeContext {
    if (!this.native || this.model.disposed) throw new FlashdipError('ERR_DISPOSED', 'the session has been disposed');
    return this.native;
  }
}

/** The process's resident set as the OS reports it (VmRSS on Linux), in bytes. */
export function residentBytes(): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.memoryUsage.rss();
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new FlashdipError('ERR_ABORTED', 'generation was aborted', { cause: signal.reason });
}

function checkStops(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((s) => typeof s !== 'string' || s.length === 0))
    throw new FlashdipError('ERR_INVALID_ARGUMENT', 'stop: must be an array of non-empty strings');
  return value as string[];
}

// Holds back the end of the text that could still grow into a stop string, so a stop string split
// across tokens is never emitted.
class StopFilter {
  private pending = '';
  constructor(private readonly stops: string[]) {}

  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return { text: out, stopped: true };
    }
    let keep = 0;
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, this.pending.length); k > keep; k--)
        if (this.pending.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
    const out = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { text: out, stopped: false };
  }

  flush(text: string): string {
    const r = this.push(text);
    const out = r.text + (r.stopped ? '' : this.pending);
    this.pending = '';
    return out;
  }
}
