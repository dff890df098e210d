// Sparsity and cache options (PAPER.md): validation and the optimized DIP density split. The memory
// budget's arithmetic (static weights, KV caches, the cached fraction of every MLP matrix) is native:
// native/include/flashdip/column_store.h, reported by model.memory().
import { invalidArgument } from './errors';
import type { ByteSplit, GgufHeader } from './binding';
import { checkEnum, checkInt, checkKeys, checkNumber, checkObject, parseBytes } from './options';
import { readThresholds, tableServes, ThresholdTable } from './thresholds';

export type SparseMethod = 'dense' | 'dip' | 'dip-ca' | 'glu' | 'gate' | 'up';
export type CachePolicy = 'lru' | 'lfu' | 'none';

export interface SparsityOptions {
  method?: SparseMethod;
  /** Target MLP density rho in (0, 1]: DIP splits it with the paper's fit; glu/gate/up keep rho of h. */
  density?: number;
  /** Explicit DIP fractions of x and h to keep (instead of density). */
  keepX?: number;
  keepH?: number;
  /** DIP-CA: weight of columns not in DRAM, in [0, 1] (default 0.2). */
  gamma?: number;
  /** DIP-CA: this many highest-scoring columns are never down-weighted. */
  fixedTopN?: number;
  /** DIP-CA: ramp gamma from 1 while the cache fills (default true). */
  warmup?: boolean;
  /** DIP-CA variant: s' = gamma s + (1 - gamma) [cached]. */
  alphaBlend?: boolean;
  /**
   * DIP-CA with block reads: a token's misses come from a few blocks of this many bytes of adjacent
   * columns (number of bytes or a string such as '64KiB'; default 0: off), for storage that serves
   * small scattered reads slowly. Fewer, larger reads at some loss of fidelity; see the README.
   */
  readBlock?: number | string;
  /** DIP-CA block reads: take blocks holding this many times as many columns as there are misses (>= 1, default 1). */
  readCover?: number;
  /**
   * Calibrated thresholds instead of top-k (`flashdip calibrate`): a table or its JSON file. The
   * method defaults to the table's; a 'dip' table also serves 'dip-ca'. Excludes density/keepX/keepH.
   */
  thresholds?: string | ThresholdTable;
  /**
   * DIP on attention inputs (TEAL-style, beyond the paper), with any MLP method: the fraction in
   * (0, 1] of the attention block's input (after its RMSNorm) a token keeps, by top-k on |x|, for
   * the columns of W_q, W_k and W_v (one mask), and likewise of W_o's input. Default: dense attention.
   * On a file converted with attention rows (layout version 2) the kept columns are all that is read,
   * through the same column cache and budget as the MLP (DIP-CA's scoring applies with 'dip-ca'); on
   * other files the masks change what is computed but every attention weight is still read.
   */
  attentionDensity?: number;
}

export interface CacheOptions {
  policy?: CachePolicy;
  /** Drop the page cache of rows read from the store, so the budget is honest (default true). */
  dropPageCache?: boolean;
}

export const METHODS: readonly SparseMethod[] = ['dense', 'dip', 'dip-ca', 'glu', 'gate', 'up'];
const METHOD_IDS: Record<SparseMethod, number> = { dense: 0, dip: 1, 'dip-ca': 2, glu: 3, gate: 4, up: 5 };
export const POLICY_IDS: Record<CachePolicy, number> = { none: 0, lru: 1, lfu: 2 };

export interface ResolvedSparsity {
  method: SparseMethod;
  keepX: number;
  keepH: number;
  gamma: number;
  fixedTopN: number;
  warmup: boolean;
  alphaBlend: boolean;
  readBlock: number;
  readCover: number;
  policy: CachePolicy;
  dropPageCache: boolean;
  /** Calibrated thresholds (checked, not yet against a model's shape); keepX/keepH are then its targets. */
  thresholds?: ThresholdTable;
  /** Attention DIP: fraction of the attention inputs kept (1: dense attention). */
  keepAttn: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const logit = (p: number) => Math.log(p / (1 - p));

/** "Optimized DIP": keep_x and keep_h for a target MLP density rho = (2 keep_x + keep_h) / 3. */
export function splitDensity(rho: number): { keepX: number; keepH: number } {
  if (rho >= 1) return { keepX: 1, keepH: 1 };
  const keepX = sigmoid(0.9849930711017189 * logit(rho) + 0.29976477589716316);
  const keepH = 3 * rho - 2 * keepX;
  if (keepH <= 0) throw invalidArgument('density', `${rho} is too low for the optimized split (keep_h would be ${keepH.toFixed(3)})`);
  return { keepX, keepH: Math.min(1, keepH) };
}

export function resolveSparsity(sparsity: unknown, cache: unknown): ResolvedSparsity {
  const s = checkObject('sparsity', sparsity);
  checkKeys('sparsity', s, ['method', 'density', 'keepX', 'keepH', 'gamma', 'fixedTopN', 'warmup', 'alphaBlend', 'readBlock', 'readCover', 'thresholds',
    'attentionDensity']);
  const c = checkObject('cache', cache);
  checkKeys('cache', c, ['policy', 'dropPageCache']);
  if (c.dropPageCache !== undefined && typeof c.dropPageCache !== 'boolean') throw invalidArgument('cache.dropPageCache', 'must be a boolean');
  const thresholds = s.thresholds === undefined ? undefined : readThresholds('sparsity.thresholds', s.thresholds);
  const method = checkEnum('sparsity.method', s.method, METHODS, thresholds?.method ?? 'dense');
  const policy = checkEnum('cache.policy', c.policy, ['lru', 'lfu', 'none'] as const, 'lfu');
  const density = s.density === undefined ? undefined : checkDensity('sparsity.density', s.density);
  const keepX = s.keepX === undefined ? undefined : checkDensity('sparsity.keepX', s.keepX);
  const keepH = s.keepH === undefined ? undefined : checkDensity('sparsity.keepH', s.keepH);
  const gamma = checkNumber('sparsity.gamma', s.gamma, 0, 1, method === 'dip-ca' ? 0.2 : 1);
  const fixedTopN = checkInt('sparsity.fixedTopN', s.fixedTopN, 0, 1 << 30, 0);
  for (const k of ['warmup', 'alphaBlend'] as const)
    if (s[k] !== undefined && typeof s[k] !== 'boolean') throw invalidArgument(`sparsity.${k}`, 'must be a boolean');
  const readBlock = s.readBlock === 0 ? 0 : parseBytes('sparsity.readBlock', s.readBlock) ?? 0;
  const readCover = checkNumber('sparsity.readCover', s.readCover, 1, Infinity, 1);
  if ((readBlock > 0 || s.readCover !== undefined) && method !== 'dip-ca')
    throw invalidArgument(s.readBlock !== undefined ? 'sparsity.readBlock' : 'sparsity.readCover', `applies to the 'dip-ca' method only, not '${method}'`);
  const attentionDensity = s.attentionDensity === undefined ? undefined : checkDensity('sparsity.attentionDensity', s.attentionDensity);
  const out: ResolvedSparsity = {
    method, keepX: 1, keepH: 1, gamma, fixedTopN, readBlock, readCover, keepAttn: attentionDensity ?? 1,
    warmup: (s.warmup as boolean | undefined) ?? true, alphaBlend: (s.alphaBlend as boolean | undefined) ?? false, policy,
    dropPageCache: (c.dropPageCache as boolean | undefined) ?? true,
  };
  if (thresholds) {
    if (!tableServes(thresholds, method))
      throw invalidArgument('sparsity.thresholds', `calibrated for the '${thresholds.method}' method, not '${method}'`);
    if (density !== undefined || keepX !== undefined || keepH !== undefined)
      throw invalidArgument('sparsity', 'give either thresholds or density/keepX/keepH, not both');
    if (thresholds.attentionDensity !== undefined) {
      if (attentionDensity !== undefined)
        throw invalidArgument('sparsity.attentionDensity', 'the thresholds were calibrated with attention thresholds; give one or the other');
      out.keepAttn = thresholds.attentionDensity;
    }
    return { ...out, keepX: thresholds.keepX, keepH: thresholds.keepH, thresholds };
  }
  if (method === 'dense') {
    if (density !== undefined && density !== 1) throw invalidArgument('sparsity.density', "the 'dense' method keeps everything");
  } else if (method === 'dip' || method === 'dip-ca') {
    if (keepX !== undefined || keepH !== undefined) {
      if (density !== undefined) throw invalidArgument('sparsity', 'give either density or keepX/keepH, not both');
      out.keepX = keepX ?? 1;
      out.keepH = keepH ?? 1;
    } else {
      Object.assign(out, splitDensity(density ?? 0.5));
    }
  } else {
    if (keepX !== undefined) throw invalidArgument('sparsity.keepX', `the '${method}' method does not prune x`);
    out.keepH = keepH ?? density ?? 0.5;
  }
  return out;
}

function checkDensity(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1) throw invalidArgument(name, `must be in (0, 1], got ${String(v)}`);
  return v;
}

// The MLP weights in either layout (phi3's fused ffn_up included; the DIP layout's row tensors).
export const MLP_TENSOR = /^blk\.\d+\.ffn_(gate|up|down|gate_up)(\.dip)?\.weight$/;
// The attention weights as rows of the column store (layout version 2, `flashdip convert`).
export const ATTN_ROWS_TENSOR = /^blk\.\d+\.attn_(qkv|output)\.dip\.weight$/;

export type { ByteSplit };

/**
 * The split of a file's header, for tools that read the header only (inspect). A loaded model reports
 * the engine's own (model.memory().bytes), which counts the embedding as streamed only under a budget.
 */
export function splitBytes(header: GgufHeader): ByteSplit {
  let mlp = 0, attn = 0, all = 0;
  const perLayer = new Map<string, number>();
  const names = new Set(header.tensors.map((t) => t.name));
  for (const t of header.tensors) {
    all += t.bytes;
    if (ATTN_ROWS_TENSOR.test(t.name)) {
      attn += t.bytes;
      continue;
    }
    if (!MLP_TENSOR.test(t.name)) continue;
    mlp += t.bytes;
    const layer = t.name.split('.')[1];
    perLayer.set(layer, (perLayer.get(layer) ?? 0) + t.bytes);
  }
  // The engine's column store reads an untied embedding row per token (native/model/context.cc).
  const dip = header.tensors.some((t) => t.name.endsWith('.dip.weight'));
  const streamed = dip && names.has('output.weight') ? header.tensors.find((t) => t.name === 'token_embd.weight')?.bytes ?? 0 : 0;
  return { mlp, attn, static: all - mlp - attn - streamed, streamed, mlpLayer: Math.max(0, ...perLayer.values()) };
}

export function parseBudget(v: unknown): number | undefined {
  return parseBytes('memoryBudget', v);
}

/** The plain object the native context takes. */
export function nativeSparsity(s: ResolvedSparsity): Record<string, number | Float32Array> {
  return {
    method: METHOD_IDS[s.method], keepX: s.keepX, keepH: s.keepH, gamma: s.gamma, fixedTopN: s.fixedTopN, readBlock: s.readBlock, readCover: s.readCover,
    warmup: s.warmup ? 1 : 0, alphaBlend: s.alphaBlend ? 1 : 0,
    ...(s.thresholds?.thresholds.x ? { thresholdsX: Float32Array.from(s.thresholds.thresholds.x) } : {}),
    ...(s.thresholds ? { thresholdsH: Float32Array.from(s.thresholds.thresholds.h) } : {}),
    keepAttn: s.keepAttn,
    ...(s.thresholds?.thresholds.attnIn ? { thresholdsAttnIn: Float32Array.from(s.thresholds.thresholds.attnIn) } : {}),
    ...(s.thresholds?.thresholds.attnOut ? { thresholdsAttnOut: Float32Array.from(s.thresholds.thresholds.attnOut) } : {}),
  };
}

/**
 * The MLP density a method gets from the kept fractions of x and h: DIP prunes W_up and W_gate by
 * x and W_down by h, (2 keepX + keepH) / 3; glu/gate/up are counted by the fraction of h they keep,
 * as their `density` option is.
 */
export function mlpDensity(method: SparseMethod, keepX: number, keepH: number): number {
  if (method === 'dense') return 1;
  return method === 'dip' || method === 'dip-ca' ? (2 * keepX + keepH) / 3 : keepH;
}
