// The paper's hardware model (PAPER.md, "Hardware model"), over a recorded run: per token,
//   T = T_fixed + sum over the MLP units of every layer of f(flash_bytes / BW_flash, dram_bytes / BW_dram)
//   T_fixed = f(static bytes incl. the KV cache at the run's average length / BW_dram, streamed static / BW_flash)
// with f = max when DRAM and flash transfers run concurrently, else their sum; no compute term.
//
// With a measured profile (requestLatency and iops, from `flashdip probe-disk`) requests are counted
// as well as bytes: the run's masks are replayed through the native cache bookkeeping to find each
// unit's missing rows, and those are grouped into the reads the column store issues (runs of rows
// across gaps of at most 16 KiB, widened to O_DIRECT's alignment: 512 or 4096 bytes). A unit's reads are one batch, all in
// flight: io = latency + max(bytes / BW_flash, (requests - 1) / iops); the cached rows are computed
// meanwhile (DRAM bandwidth stands for the gather kernels' rate) and the read rows after they arrive:
//   T_unit = max(io, hit_bytes / BW_dram) + miss_bytes / BW_dram     (concurrent; else the sum of all)
import type { LoraSpec } from './lora';
import { abortedError, invalidArgument } from './errors';
import { checkKeys, checkProgress, checkSignal } from './options';
import { beladyHits } from './belady';
import { cacheSimulate } from './kernels';
import type { Model } from './model';
import type { CachePolicy } from './sparsity';

export interface DeviceProfile {
  name?: string;
  /** Bytes per second: DRAM (the rate the kernels consume weights in DRAM at), flash (large sequential reads). */
  dramBandwidth: number;
  flashBandwidth: number;
  /** DRAM and flash transfers overlap (f = max) or not (f = sum). */
  concurrent: boolean;
  /** Seconds from issuing one small read to its data (queue depth 1). With iops: requests are counted. */
  requestLatency?: number;
  /** Small reads per second with many in flight (the store issues a unit's misses at once). */
  iops?: number;
  /** Bytes per second the static weights' dense matrix-vector products run at (default dramBandwidth). */
  staticBandwidth?: number;
  /** The store reads with O_DIRECT (each read widened to directAlign boundaries); default true with requests counted. */
  direct?: boolean;
  /** What the device aligns O_DIRECT reads to: 512 or 4096 (probe-disk measures it; default 4096). */
  directAlign?: number;
  /** `flashdip probe-disk`'s file format tag, version and what it measured (kept for the record). */
  format?: string;
  version?: number;
  probe?: Record<string, unknown>;
}

export const DEVICE_FORMAT = 'flashdip-device';
export const DEVICE_VERSION = 1;

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
  /**
   * KV cache bytes per position, and the average context length over the run: their product is what
   * attention reads per token (recordRun: at the average length, with sliding-window layers read up to their ring).
   */
  kvBytesPerPosition: number;
  averageLength: number;
  /** Column units per layer (x-mask: dim, h-mask: ffn), cached fraction, and the masks themselves:
   * masks[(token * layers + layer) * 2 + unit] (unit 0: x-mask, 1: h-mask). */
  units: { ug: number; down: number };
  cacheFraction: number;
  /** The column caches' policy and whether they ran under a budget (else they start full: no reads). */
  policy?: CachePolicy;
  budgeted?: boolean;
  /** Tokens of each window: the caches restart empty at each (recordRun resets the session). */
  windows?: number[];
  /** Bytes of the token embedding row read from the file per token (a converted untied model under a budget), else 0. */
  embeddingRowBytes?: number;
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
  /** Attention units per layer (q/k/v input: dim, W_o input: q_dim), and whether the column store
   * serves them (attention stored as rows, layout version 2): else attention is static, never read. */
  attnUnits?: { qkv: number; o: number };
  attnRows?: boolean;
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
  /** With requests counted (a profile with iops): read requests and bytes read per token, gaps and alignment included. */
  requestsPerToken?: number;
  readBytesPerToken?: number;
}

const DEVICE_KEYS = ['name', 'dramBandwidth', 'flashBandwidth', 'concurrent', 'requestLatency', 'iops', 'staticBandwidth', 'direct', 'directAlign', 'format', 'version', 'probe'];

export function checkDevice(d: unknown): DeviceProfile {
  const o = d as Partial<DeviceProfile> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw invalidArgument('device', 'must be an object');
  checkKeys('device', o as Record<string, unknown>, DEVICE_KEYS);
  if (o.format !== undefined && o.format !== DEVICE_FORMAT) throw invalidArgument('device.format', `must be '${DEVICE_FORMAT}'`);
  if (o.version !== undefined && o.version !== DEVICE_VERSION) throw invalidArgument('device.version', `version ${String(o.version)} is not supported (this flashdip reads ${DEVICE_VERSION})`);
  if (o.name !== undefined && typeof o.name !== 'string') throw invalidArgument('device.name', 'must be a string');
  for (const k of ['dramBandwidth', 'flashBandwidth'] as const)
    if (typeof o[k] !== 'number' || !(o[k]! > 0) || !Number.isFinite(o[k]!)) throw invalidArgument(`device.${k}`, 'must be a positive number of bytes per second');
  if (typeof o.concurrent !== 'boolean') throw invalidArgument('device.concurrent', 'must be a boolean');
  if ((o.requestLatency === undefined) !== (o.iops === undefined)) throw invalidArgument('device', 'give requestLatency and iops together (or neither)');
  if (o.requestLatency !== undefined && (typeof o.requestLatency !== 'number' || !(o.requestLatency >= 0) || !Number.isFinite(o.requestLatency)))
    throw invalidArgument('device.requestLatency', 'must be a number of seconds >= 0');
  if (o.iops !== undefined && (typeof o.iops !== 'number' || !(o.iops > 0) || !Number.isFinite(o.iops)))
    throw invalidArgument('device.iops', 'must be a positive number of requests per second');
  if (o.staticBandwidth !== undefined && (typeof o.staticBandwidth !== 'number' || !(o.staticBandwidth > 0) || !Number.isFinite(o.staticBandwidth)))
    throw invalidArgument('device.staticBandwidth', 'must be a positive number of bytes per second');
  if (o.direct !== undefined && typeof o.direct !== 'boolean') throw invalidArgument('device.direct', 'must be a boolean');
  if (o.directAlign !== undefined && o.directAlign !== 512 && o.directAlign !== 4096) throw invalidArgument('device.directAlign', 'must be 512 or 4096');
  if (o.probe !== undefined && (typeof o.probe !== 'object' || o.probe === null || Array.isArray(o.probe))) throw invalidArgument('device.probe', 'must be an object');
  const out: DeviceProfile = { name: o.name, dramBandwidth: o.dramBandwidth!, flashBandwidth: o.flashBandwidth!, concurrent: o.concurrent };
  if (o.staticBandwidth !== undefined) out.staticBandwidth = o.staticBandwidth;
  if (o.iops !== undefined) Object.assign(out, { requestLatency: o.requestLatency, iops: o.iops, direct: o.direct ?? true, directAlign: o.directAlign ?? DIRECT_ALIGN });
  return out;
}

/** Per token, layer and unit (like RunTrace.counts' layout, [token][layer][ug, down]): read requests and bytes read. */
export interface RequestCounts {
  requests: Int32Array;
  bytes: Float64Array;
  /** The same for the attention units ([token][layer][qkv, o]) when the store serves attention rows. */
  attnRequests?: Int32Array;
  attnBytes?: Float64Array;
}

/** The store's reads: a run of missing rows goes on across a gap of at most this many bytes (RowCache). */
export const MAX_GAP_BYTES = 16 << 10;
/** O_DIRECT's alignment when the device profile does not say (profiles from before directAlign). */
export const DIRECT_ALIGN = 4096;
/** A run holds at most this many rows (RowCache keeps a buffered read's row and gap buffers within IOV_MAX = 1024). */
export const MAX_RUN_ROWS = 511;

/**
 * The reads the column store would issue for a recorded run: each unit's masks replayed through the
 * native cache bookkeeping (policy, capacity, restarts at each window) give the rows that were not
 * cached; runs of them (gaps up to MAX_GAP_BYTES read through) are one request each, widened to
 * `directAlign` boundaries (O_DIRECT: 512 or 4096; 0 for buffered reads, which read the rows and gaps only).
 */
export function countRequests(trace: RunTrace, directAlign: number): RequestCounts {
  const L = trace.layers;
  const tokens = Math.floor(trace.counts.length / (L * 4));
  const requests = new Int32Array(tokens * L * 2);
  const bytes = new Float64Array(tokens * L * 2);
  const attn = trace.attnRows === true && trace.attnUnits !== undefined && trace.attnCounts !== undefined;
  const attnRequests = attn ? new Int32Array(tokens * L * 2) : undefined;
  const attnBytes = attn ? new Float64Array(tokens * L * 2) : undefined;
  const out: RequestCounts = { requests, bytes, ...(attn ? { attnRequests, attnBytes } : {}) };
  if (trace.budgeted === false) return out;  // the caches start full: nothing is read
  if (trace.masks.length < tokens * L * 2) throw invalidArgument('trace', 'holds no masks (record the run with record: true)');
  if (attn && (trace.attnMasks?.length ?? 0) < tokens * L * 2) throw invalidArgument('trace', 'holds no attention masks (record the run with record: true)');
  const windows = trace.windows ?? [tokens];
  const policy = trace.policy ?? 'lfu';
  const count = (masks: Int32Array[], l: number, unit: 0 | 1, n: number, rowBytes: number, reqOut: Int32Array, bytesOut: Float64Array) => {
    const capacity = Math.floor(trace.cacheFraction * n);
    const maxGap = Math.floor(MAX_GAP_BYTES / rowBytes);
    let t0 = 0;
    for (const w of windows) {
      const seq: Int32Array[] = [];
      for (let t = t0; t < t0 + w && t < tokens; t++) seq.push(masks[(t * L + l) * 2 + unit]);
      const { cached } = cacheSimulate(n, capacity, policy, seq);
      let before: Uint8Array | undefined;  // the cached set before this token (none at a window's start)
      for (let i = 0; i < seq.length; i++) {
        const mask = seq[i];
        let r = 0, b = 0, runStart = -1, last = -2, rows = 0;
        const close = () => {
          if (runStart < 0) return;
          r++;
          const a = runStart * rowBytes, e = (last + 1) * rowBytes;
          b += directAlign > 0 ? Math.ceil(e / directAlign) * directAlign - Math.floor(a / directAlign) * directAlign : e - a;
        };
        for (let j = 0; j < mask.length; j++) {
          const row = mask[j];
          if (before && before[row]) continue;
          if (runStart >= 0 && row - last - 1 <= maxGap && rows < MAX_RUN_ROWS) {
            last = row;
            rows++;
          } else {
            close();
            runStart = row;
            last = row;
            rows = 1;
          }
        }
        close();
        const at = ((t0 + i) * L + l) * 2 + unit;
        reqOut[at] = r;
        bytesOut[at] = b;
        before = cached[i];
      }
      t0 += w;
    }
  };
  for (let l = 0; l < L; l++) {
    count(trace.masks, l, 0, trace.units.ug, trace.ugUnitBytes, requests, bytes);
    count(trace.masks, l, 1, trace.units.down, trace.downUnitBytes, requests, bytes);
    if (!attn) continue;
    // The attention rows' caches: the same fraction of each matrix, the same policy (ColumnStore).
    count(trace.attnMasks!, l, 0, trace.attnUnits!.qkv, trace.qkvUnitBytes!, attnRequests!, attnBytes!);
    count(trace.attnMasks!, l, 1, trace.attnUnits!.o, trace.oUnitBytes!, attnRequests!, attnBytes!);
  }
  return out;
}

export function simulate(trace: RunTrace, device: DeviceProfile): SimulationResult {
  const dev = checkDevice(device);
  const f = (flash: number, dram: number) => (dev.concurrent ? Math.max(flash, dram) : flash + dram);
  const per = trace.layers * 4;
  const tokens = Math.floor(trace.counts.length / per);
  if (tokens === 0) throw invalidArgument('trace', 'holds no tokens');
  const counted = dev.iops !== undefined ? countRequests(trace, dev.direct ?? true ? dev.directAlign ?? DIRECT_ALIGN : 0) : undefined;
  const embd = trace.embeddingRowBytes ?? 0;
  // The embedding row of a converted untied model under a budget: one read per token, waited for.
  const embdSeconds = counted && embd > 0 ? dev.requestLatency! + embd / dev.flashBandwidth : 0;
  const fixed = f(0, trace.staticBytes / (dev.staticBandwidth ?? dev.dramBandwidth) + trace.kvBytesPerPosition * trace.averageLength / dev.dramBandwidth) +
    embdSeconds;
  let total = 0, flash = 0, dram = 0, reqs = 0, readBytes = 0;
  const c = trace.counts, a = trace.attnCounts;
  // One unit's time: its reads as counted requests (a profile with iops), else by bytes.
  const unit = (hit: number, miss: number, r: number | undefined, b: number) => {
    if (r === undefined) return f(miss / dev.flashBandwidth, hit / dev.dramBandwidth);
    const io = r > 0 ? dev.requestLatency! + Math.max(b / dev.flashBandwidth, (r - 1) / dev.iops!) : 0;
    reqs += r;
    readBytes += b;
    return dev.concurrent ? Math.max(io, hit / dev.dramBandwidth) + miss / dev.dramBandwidth : io + (hit + miss) / dev.dramBandwidth;
  };
  for (let t = 0; t < tokens; t++) {
    let T = fixed;
    for (let l = 0; l < trace.layers; l++) {
      const i = t * per + l * 4;
      const ugHit = c[i] * trace.ugUnitBytes, ugMiss = c[i + 1] * trace.ugUnitBytes;
      const dHit = c[i + 2] * trace.downUnitBytes, dMiss = c[i + 3] * trace.downUnitBytes;
      const at = (t * trace.layers + l) * 2;
      T += unit(ugHit, ugMiss, counted?.requests[at], counted?.bytes[at] ?? 0) +
        unit(dHit, dMiss, counted?.requests[at + 1], counted?.bytes[at + 1] ?? 0);
      flash += ugMiss + dMiss;
      dram += ugHit + dHit;
      if (a && a.length >= i + 4) {
        const qHit = a[i] * (trace.qkvUnitBytes ?? 0), qMiss = a[i + 1] * (trace.qkvUnitBytes ?? 0);
        const oHit = a[i + 2] * (trace.oUnitBytes ?? 0), oMiss = a[i + 3] * (trace.oUnitBytes ?? 0);
        const ar = counted?.attnRequests, ab = counted?.attnBytes;
        T += unit(qHit, qMiss, ar?.[at], ab?.[at] ?? 0) + unit(oHit, oMiss, ar?.[at + 1], ab?.[at + 1] ?? 0);
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
    ...(counted ? { requestsPerToken: (reqs + (embd > 0 ? tokens : 0)) / tokens, readBytesPerToken: (readBytes + embd * tokens) / tokens } : {}),
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
  const windows: number[] = [];
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
      windows.push(n);
      if (trace.attnCounts) attnParts.push(trace.attnCounts.slice()), attnMasks.push(...(trace.attnMasks ?? []));
      lengthSum += trace.averageLength * n;
      count += n;
      onProgress?.(Math.min(tokens.length, s + ctx - 1), tokens.length);
    }
  } finally {
    await session.dispose();
  }
  const result = trace && {
    ...trace, counts: concat(Int32Array, parts), times: concat(Float32Array, timeParts), masks, windows, averageLength: count > 0 ? lengthSum / count : 0,
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
