import type { NativeLora } from './lora';
// The raw native binding and its types, kept apart from the public classes. Loaded once, lazily:
// prebuilds/<platform>-<arch>/ first, then the local build (node-gyp-build's order).
import * as path from 'path';
import { FlashdipError } from './errors';

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  typeName: string;
  offset: number;
  bytes: number;
}

export interface GgufHeader {
  version: number;
  alignment: number;
  fileSize: number;
  dataOffset: number;
  metadata: Record<string, unknown>;
  metadataTypes: Record<string, string>;
  tensors: GgufTensorInfo[];
}

export interface NativeModelInfo {
  arch: string;
  name: string;
  vocabSize: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  contextLength: number;
  ropeDims: number;
  ropeBase: number;
  ropeNeox: boolean;
  normEps: number;
  tiedEmbeddings: boolean;
  threads: number;
  fileSize: number;
  /** The MLP is in flashdip's input-major layout (flashdip convert). */
  dipLayout: boolean;
  /** Attention too is stored input-major (layout version 2): served by the column store. */
  dipAttention: boolean;
  /**
   * The weights were read into anonymous memory of the model's own, asking for transparent huge pages
   * (loadModel's hugePages), instead of being used through the file's mapping.
   */
  weightsCopied: boolean;
}

export interface NativeContext {
  eval(tokens: Int32Array, allLogits: boolean, out: Float32Array): Promise<void>;
  /**
   * Forgets positions >= n; returns the positions kept: n, or 0 when a sliding-window layer's ring no
   * longer holds what position n attends to (the caller evaluates the first n tokens again).
   */
  truncate(n: number): number;
  nPast(): number;
  /**
   * What the context counts in its model's memoryBudget: the KV cache as reserved (contextSize
   * positions on full layers, the window plus a batch on sliding-window layers) and its scratch buffers.
   */
  bytes(): { kv: number; scratch: number };
  /** The KV cache's bytes for the first `positions` positions (a sliding-window layer holds at most its ring). */
  kvBytes(positions: number): number;
  /** MLP column-unit counts per layer; `reset` clears them after reading. */
  stats(reset: boolean): NativeSparsityStats;
  /** Score histograms per layer and mask, of a context made with `histograms: 1`; else null. */
  histograms(): NativeScoreHistograms | null;
  /** The adapters applied from the next eval on (not while one runs). */
  setLoras(loras: { handle: unknown; scale: number }[]): void;
  dispose(): void;
}

export interface NativeLayerStats {
  ugHits: number;
  ugMisses: number;
  downHits: number;
  downMisses: number;
  /** Attention column units (attention DIP, or attention stored as rows): W_q/W_k/W_v inputs and W_o inputs. */
  qkvHits: number;
  qkvMisses: number;
  oHits: number;
  oMisses: number;
  /** Wall time in the layer (attention + MLP) and, of it, time waiting for the store's reads. */
  seconds: number;
  ioWaitSeconds: number;
}

export interface NativeSparsityStats {
  tokens: number;
  ugUnitBytes: number;
  downUnitBytes: number;
  qkvUnitBytes: number;
  oUnitBytes: number;
  /** Reads from the column store (DIP layout under a budget). */
  ioBytes: number;
  ioReads: number;
  ioSeconds: number;
  /** Of ioSeconds, the time the computation waited (the rest overlapped with it). */
  ioWaitSeconds: number;
  /** Bytes read besides the rows, through small gaps between them (one request instead of two). */
  ioGapBytes: number;
  /** How the store reads: 'uring', 'threads' or 'sync', then ' direct' (O_DIRECT) or ' buffered' ('' without a store). */
  ioEngine: string;
  layers: NativeLayerStats[];
  /** When the context records: [token][layer][ug hits, ug misses, down hits, down misses]. */
  trace?: Int32Array;
  /** When recording: [token][layer][seconds in the layer, of which waiting for reads]. */
  times?: Float32Array;
  /** When recording: the masks, [(token * layers + layer) * 2 + unit]. */
  masks?: Int32Array[];
  /** When recording with attention masks: [token][layer][qkv hits, qkv misses, o hits, o misses], and the
   * masks, [(token * layers + layer) * 2 + unit (0: q/k/v input, 1: W_o input)]. */
  attnTrace?: Int32Array;
  attnMasks?: Int32Array[];
}

export interface NativeScoreHistograms {
  /** bin = float bits of |score| >> shift */
  shift: number;
  bins: number;
  /** [layer] counts of the x-mask's and h-mask's scores. */
  x: Float64Array[];
  h: Float64Array[];
  /** With attention DIP: the q/k/v input mask's and W_o input mask's. */
  attnIn?: Float64Array[];
  attnOut?: Float64Array[];
}

export interface NativeModel {
  info(): NativeModelInfo;
  createContext(options: {
    contextSize?: number; kvType?: number; batchSize?: number; threads?: number; sparsity?: Record<string, number | Float32Array>;
    record?: number; histograms?: number; loraBytes?: number;
  }): NativeContext;
  /** Under a memoryBudget: the column store the model's sessions share (once, before any session). */
  setBudget(options: { budget: number; policy: number; dropPages: number }): void;
  /** The file's byte split and, with a budget, how it is shared (native/include/flashdip/column_store.h). */
  memory(): NativeMemory;
  /** A LoRA adapter checked against this model and copied into DRAM. */
  loadLora(path: string): Promise<NativeLora>;
  dispose(): void;
}

/** The model file's bytes by what a budget does with them. */
export interface ByteSplit {
  /** MLP weights: what DIP prunes and the column cache holds. */
  mlp: number;
  /**
   * Attention weights stored as rows (layout version 2): served by the column cache as the MLP is,
   * so not static; 0 for other files, whose attention is static.
   */
  attn: number;
  /** Everything else in the file that is kept in DRAM. */
  static: number;
  /**
   * The token embedding table when it is read one row per token from the file instead (a converted,
   * untied model under a budget): not in DRAM, not part of static.
   */
  streamed: number;
  /** The largest layer's MLP: the store's streaming buffer can need this much. */
  mlpLayer: number;
}

export interface NativeMemory {
  bytes: ByteSplit;
  budget?: {
    budget: number; adapters: number; sessions: number; kv: number; scratch: number; cacheBytes: number; cacheFraction: number;
    hits: number; misses: number; ioBytes: number; ioGapBytes: number; ioReads: number; ioSeconds: number; ioEngine: string;
    policy: number; dropPages: boolean;
  };
}

export interface NativeKernels {
  quantizeRow(type: number, src: Float32Array): Uint8Array;
  dequantizeRow(type: number, src: Uint8Array, n: number): Float32Array;
  gemv(type: number, weights: Uint8Array, n: number, rows: number, x: Float32Array): Float32Array;
  info(): { isa: string; available: string; kernels: KernelEntry[] };
  types(): NativeTypeTraits[];
  setIsa(isa: string): boolean;
  cacheSimulate(nUnits: number, capacity: number, policy: number, masks: Int32Array[]): { hits: number[]; cached: Uint8Array[] };
  topk(scores: Float32Array, k: number): Int32Array;
  benchMemcpy(storeBytes: number, reps: number): number;
  benchGather(type: number, m: number, density: number, storeBytes: number, reps: number): GatherBench;
  benchGemv(type: number, n: number, rows: number, storeBytes: number, reps: number): GemvBench;
  benchTopk(n: number, keep: number, reps: number): TopkBench;
}

/** One line of the native kernel registry (native/kernels/kernels_internal.h). */
export interface KernelEntry {
  op: string;         // 'gemv', 'gemm', 'gather', 'rmsnorm', ..., 'collect_range'
  type: string;       // 'q4_0'; '' for the untyped top-k primitives
  isa: string;        // 'scalar', 'avx2', 'neon', 'neon-dotprod'
  function: string;   // 'gemv_q4_0__avx2'
  available: boolean; // this CPU runs the ISA
  active: boolean;    // the kernel dispatch runs for (op, type) at the ISA in use
}

/** The native type traits (native/kernels/types.cc) of one GGUF/ggml type id. */
export interface NativeTypeTraits {
  id: number;
  name: string;
  blockSize: number;
  blockBytes: number;
  canDequantize: boolean;
  canCompute: boolean;
  canQuantize: boolean;
  gatherRows: boolean; // the registry has gather kernels for DIP rows of this type
}

/** flashdip/bench.h: bytes per second are medians over the repetitions. */
export interface GatherBench {
  m: number;
  rowBytes: number;
  k: number;
  gatherBps: number;
  memcpyBps: number;
  readBps: number;
}

export interface GemvBench {
  n: number;
  rows: number;
  matrixBytes: number;
  medianBps: number;
  bestBps: number;
}

export interface TopkBench {
  n: number;
  k: number;
  dipUs: number;
  caUs: number;
  caTopUs: number;
  nthUs: number;
}

export interface NativeFile {
  pageCacheResident(path: string): number;
  pageCacheDrop(path: string): void;
  /** Seconds per batch of `perBatch` reads of `bytes` at the offsets, through the store's reader. */
  readProbe(path: string, offsets: Float64Array, bytes: number, perBatch: number, direct: boolean): Float64Array;
  /** The alignment of the column store's O_DIRECT reads of this file (512 or 4096); 0: no O_DIRECT there. */
  directAlign(path: string): number;
}

export interface Binding {
  readGguf(path: string): GgufHeader;
  readGgufAsync(path: string): Promise<GgufHeader>;
  /** copyWeights: -1 when the kernel offers transparent huge pages and the weights fit (default; fd::ModelOptions), 0 never, 1 always. */
  loadModel(path: string, options: { threads?: number; copyWeights?: -1 | 0 | 1 }): Promise<NativeModel>;
  kernels: NativeKernels;
  file: NativeFile;
}

let cached: Binding | undefined;

export function getBinding(): Binding {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as (dir: string) => Binding;
    cached = load(path.join(__dirname, '..'));
  } catch (err) {
    const platform = `${process.platform}-${process.arch} (Node ${process.version}, N-API ${process.versions.napi})`;
    throw new FlashdipError(
      'ERR_NATIVE_LOAD',
      `flashdip: no native binary could be loaded for ${platform}. There is no prebuilt binary for this ` +
        'platform and no local build. Install a C++17 compiler, make and python3 (Debian/Ubuntu: ' +
        '`apt-get install build-essential python3`; Termux: `pkg install clang make python`), then run ' +
        '`npm rebuild flashdip`. Cause: ' + String((err as Error)?.message ?? err),
      { cause: err },
    );
  }
  return cached;
}
