// The paper's hardware model (PAPER.md, "Hardware model"), over a recorded run: per token,
//   T = T_fixed + sum over the MLP units of every layer of f(flash_bytes / BW_flash, dram_bytes / BW_dram)
//   T_fixed = f(static bytes incl. the KV cache at the run's average length / BW_dram, streamed static / BW_flash)
// with f = max when DRAM and flash transfers run concurrently, else their sum; no compute term.
import type { LoraSpec } from './lora';
import { abortedError, invalidArgument } from './errors';
import { checkProgress, checkSignal } from './options';
import { beladyHits } from './belady';
import type { Model } from './model';

export interface DeviceProfile {
  name?: string;
  /** Bytes per second. */
  dramBandwidth: number;
  flashBandwidth: number;
  /** DRAM and flash transfers overlap (f = max) or not (f = sum). */
  concurrent: boolean;
}

/** The paper's default: an Apple A18-class phone. */
export const DEVICES: Record<string, DeviceProfile> = {
  phone: { name: 'phone (paper default)', dramBandwidth: 60e9, flashBandwidth: 1e9, concurrent: true },
  'phone-ufs4': { name: 'phone, UFS 4.0 large reads', dramBandwidth: 60e9, flashBandwidth: 3.5e9, concurrent: true },
};

export interface RunTrace {
  layers: number;
  /** [token][layer][ug hits, ug misses, down hits, down misses] (MLP column units). */
  counts: Int32Array;
  ugUnitBytes: number;
  downUnitBytes: number;
  /** Weights always in DRAM (attention, embeddings, norms, LM head). */
  staticBytes: number;
  /** KV cache bytes per position, and the average context length over the run. */
  kvBytesPerPosition: number;
  averageLength: number;
  /** Column units per layer (x-mask: dim, h-mask: ffn), cached fraction, and the masks themselves:
   * masks[(token * layers + layer) * 2 + unit] (unit 0: x-mask, 1: h-mask). */
  units: { ug: number; down: number };
  cacheFraction: number;
  masks: Int32Array[];
  /** Measured time, [token][layer][seconds in the layer, of which waiting for flash reads] (recorded runs). */
  times?: Float32Array;
  /** With attention DIP (or attention stored as rows): [token][layer][qkv hits, qkv misses, o hits, o misses]
   * at these unit sizes, counted like the MLP's (Belady's rate stays the MLP's); and the masks,
   * attnMasks[(token * layers + layer) * 2 + unit] (0: q/k/v input, 1: W_o input). */
  attnCounts?: Int32Array;
  qkvUnitBytes?: number;
  oUnitBytes?: number;
  attnMasks?: Int32Array[];
}

export interface SimulationResult {
  device: DeviceProfile;
  tokens: number;
  tokensPerSecond: number;
  secondsPerToken: number;
  fixedSecondsPerToken: number;
  flashBytesPerToken: number;
  dramBytesPerToken: number;
  /** Hit rate of the run, and of Belady's optimal policy on the same masks and capacities. */
  hitRate: number;
  beladyHitRate: number;
}

export function checkDevice(d: unknown): DeviceProfile {
  const o = d as Partial<DeviceProfile> | null;
  if (!o || typeof o !== 'object') throw invalidArgument('device', 'must be an object');
  for (const k of ['dramBandwidth', 'flashBandwidth'] as const)
    if (typeof o[k] !== 'number' || !(o[k]! > 0) || !Number.isFinite(o[k]!)) throw invalidArgument(`device.${k}`, 'must be a positive number of bytes per second');
  if (typeof o.concurrent !== 'boolean') throw invalidArgument('device.concurrent', 'must be a boolean');
  return { name: o.name, dramBandwidth: o.dramBandwidth!, flashBandwidth: o.flashBandwidth!, concurrent: o.concurrent };
}

export function simulate(trace: RunTrace, device: DeviceProfile): SimulationResult {
  const dev = checkDevice(device);
  const f = (flash: number, dram: number) => (dev.concurrent ? Math.max(flash, dram) : flash + dram);
  const per = trace.layers * 4;
  const tokens = Math.floor(trace.counts.length / per);
  if (tokens === 0) throw invalidArgument('trace', 'holds no tokens');
  const fixed = f(0, (trace.staticBytes + trace.kvBytesPerPosition * trace.averageLength) / dev.dramBandwidth);
  let total = 0, flash = 0, dram = 0;
  const c = trace.counts, a = trace.attnCounts;
  for (let t = 0; t < tokens; t++) {
    let T = fixed;
    for (let l = 0; l < trace.layers; l++) {
      const i = t * per + l * 4;
      const ugHit = c[i] * trace.ugUnitBytes, ugMiss = c[i + 1] * trace.ugUnitBytes;
      const dHit = c[i + 2] * trace.downUnitBytes, dMiss = c[i + 3] * trace.downUnitBytes;
      T += f(ugMiss / dev.flashBandwidth, ugHit / dev.dramBandwidth) + f(dMiss / dev.flashBandwidth, dHit / dev.dramBandwidth);
      flash += ugMiss + dMiss;
      dram += ugHit + dHit;
      if (a && a.length >= i + 4) {
        const qHit = a[i] * (trace.qkvUnitBytes ?? 0), qMiss = a[i + 1] * (trace.qkvUnitBytes ?? 0);
        const oHit = a[i + 2] * (trace.oUnitBytes ?? 0), oMiss = a[i + 3] * (trace.oUnitBytes ?? 0);
        T += f(qMiss / dev.flashBandwidth, qHit / dev.dramBandwidth) + f(oMiss / dev.flashBandwidth, oHit / dev.dramBandwidth);
        flash += qMiss + oMiss;
        dram += qHit + oHit;
      }
    }
    total += T;
  }
  let hits = 0, uses = 0;
  for (let i = 0; i < tokens * trace.layers; i++) {
    hits += c[i * 4] + c[i * 4 + 2];
    uses += c[i * 4] + c[i * 4 + 1] + c[i * 4 + 2] + c[i * 4 + 3];
    if (a && a.length >= i * 4 + 4) {
      hits += a[i * 4] + a[i * 4 + 2];
      uses += a[i * 4] + a[i * 4 + 1] + a[i * 4 + 2] + a[i * 4 + 3];
    }
  }
  return {
    device: dev, tokens, tokensPerSecond: tokens / total, secondsPerToken: total / tokens, fixedSecondsPerToken: fixed,
    flashBytesPerToken: flash / tokens, dramBytesPerToken: dram / tokens,
    hitRate: uses > 0 ? hits / uses : 1, beladyHitRate: beladyRate(trace, tokens),
  };
}

// Belady's hit rate per (layer, unit) sequence of masks, with the run's capacities.
function beladyRate(trace: RunTrace, tokens: number): number {
  if (trace.masks.length < tokens * trace.layers * 2) return NaN;  // masks not recorded
  let hits = 0, uses = 0;
  for (let l = 0; l < trace.layers; l++)
    for (const [unit, n] of [[0, trace.units.ug], [1, trace.units.down]] as const) {
      const seq: Int32Array[] = [];
      for (let t = 0; t < tokens; t++) seq.push(trace.masks[(t * trace.layers + l) * 2 + unit]);
      const r = beladyHits(seq, Math.floor(trace.cacheFraction * n));
      hits += r.hits;
      uses += r.uses;
    }
  return uses > 0 ? hits / uses : 1;
}

/**
 * Runs a model over a text the way `flashdip ppl` does (chunks of ctx-1 tokens after BOS, each from an
 * empty cache) and records the trace the simulator needs, with the model's sparsity and budget.
 * `signal` is checked before each window: when aborted, recordRun throws ERR_ABORTED whose `partial`
 * is the trace of the windows run so far (undefined if none). `onProgress(done, total)` is called
 * after each window with the tokens run so far and the tokens to run.
 */
export async function recordRun(
  model: Model, text: string,
  options: { ctx?: number; maxTokens?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void; loras?: LoraSpec[] } = {},
): Promise<RunTrace> {
  const ctx = options.ctx ?? 512;
  if (!Number.isInteger(ctx) || ctx < 2) throw invalidArgument('ctx', 'must be an integer >= 2');
  const signal = checkSignal('signal', options.signal);
  const onProgress = checkProgress('onProgress', options.onProgress);
  let tokens = model.tokenize(text);
  if (options.maxTokens !== undefined) tokens = tokens.slice(0, options.maxTokens);
  const bos = model.tokenizer.bosId;
  if (bos === null || tokens.length === 0) throw invalidArgument('text', 'no tokens to run (or no BOS)');
  const session = model.createSession({ contextSize: ctx, kvCacheType: 'f32', record: true, loras: options.loras });
  const parts: Int32Array[] = [];
  const timeParts: Float32Array[] = [];
  const masks: Int32Array[] = [];
  const attnParts: Int32Array[] = [];
  const attnMasks: Int32Array[] = [];
  let trace: RunTrace | undefined;
  let lengthSum = 0, count = 0, stopped = false;
  try {
    for (let s = 0; s < tokens.length; s += ctx - 1) {
      if (signal?.aborted) {
        stopped = true;
        break;
      }
      session.reset();
      await session.evaluate([bos, ...tokens.slice(s, s + ctx - 1)]);
      trace = session.trace();
      const n = trace.counts.length / (trace.layers * 4);
      parts.push(trace.counts.slice());
      timeParts.push(trace.times?.slice() ?? new Float32Array(0));
      masks.push(...trace.masks);
      if (trace.attnCounts) attnParts.push(trace.attnCounts.slice()), attnMasks.push(...(trace.attnMasks ?? []));
      lengthSum += trace.averageLength * n;
      count += n;
      onProgress?.(Math.min(tokens.length, s + ctx - 1), tokens.length);
    }
  } finally {
    await session.dispose();
  }
  const result = trace && {
    ...trace, counts: concat(Int32Array, parts), times: concat(Float32Array, timeParts), masks, averageLength: count > 0 ? lengthSum / count : 0,
    ...(attnParts.length ? { attnCounts: concat(Int32Array, attnParts), attnMasks } : {}),
  };
  if (stopped) throw abortedError('recordRun', signal!, result);
  return result!;
}

function concat<T extends Int32Array | Float32Array>(Kind: { new (n: number): T }, parts: T[]): T {
  const out = new Kind(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}
