// The low-level kernels on TypedArrays, for tests and research.
import { GatherBench, GemvBench, getBinding, KernelEntry, NativeTypeTraits, TopkBench } from './binding';

export type { KernelEntry, NativeTypeTraits } from './binding';
import { fromNative } from './errors';

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * The instruction set in use ('scalar', 'avx2', 'neon', 'neon-dotprod'), those this CPU runs, and the
 * kernel registry: every compiled kernel as (op, type, isa), whether this CPU runs its ISA and whether
 * it is the one dispatch uses now for its (op, type).
 */
export function info(): { isa: string; available: string[]; kernels: KernelEntry[] } {
  const i = getBinding().kernels.info();
  return { isa: i.isa, available: i.available.split(',').filter(Boolean), kernels: i.kernels };
}

/** The native type traits of every known GGUF/ggml type (block geometry, what flashdip can do with it). */
export function types(): NativeTypeTraits[] {
  return getBinding().kernels.types();
}

/** Switches the kernels to another available ISA (tests); returns false if the CPU lacks it. */
export function setIsa(isa: string): boolean {
  return call(() => getBinding().kernels.setIsa(isa));
}

/** Quantizes n floats (a multiple of the type's block size) to GGUF type `type`. */
export function quantizeRow(type: number, src: Float32Array): Uint8Array {
  return call(() => getBinding().kernels.quantizeRow(type, src));
}

export function dequantizeRow(type: number, src: Uint8Array, n: number): Float32Array {
  return call(() => getBinding().kernels.dequantizeRow(type, src, n));
}

/** y = W x for `rows` rows of n elements of GGUF type `type`. */
export function gemv(type: number, weights: Uint8Array, n: number, rows: number, x: Float32Array): Float32Array {
  return call(() => getBinding().kernels.gemv(type, weights, n, rows, x));
}

/** The k highest scores' indices, ascending; ties go to the lower index. */
export function topk(scores: Float32Array, k: number): Int32Array {
  return call(() => getBinding().kernels.topk(scores, k));
}

const POLICIES = { none: 0, lru: 1, lfu: 2 } as const;

/**
 * Runs the native column-cache bookkeeping (mask-first admission, the policy's evictions) over a
 * sequence of masks (ascending unit indices); returns the hits per mask and the cached set after each.
 */
export function cacheSimulate(nUnits: number, capacity: number, policy: keyof typeof POLICIES, masks: Int32Array[]): { hits: number[]; cached: Uint8Array[] } {
  return call(() => getBinding().kernels.cacheSimulate(nUnits, capacity, POLICIES[policy], masks));
}

/**
 * Kernel micro-benchmarks (native/include/flashdip/bench.h), single thread, on the ISA in use. The
 * timing loops are native; each call blocks the thread for about a second and allocates up to
 * 1.5 x storeBytes (rows and matrices cycle over storeBytes so that they come from DRAM).
 */
export const bench = {
  /** Bytes read per second by one thread's memcpy of storeBytes / 2 (median of reps). */
  memcpy(storeBytes = 256 * 2 ** 20, reps = 7): number {
    return call(() => getBinding().kernels.benchMemcpy(storeBytes, reps));
  },
  /** gather_axpy over a random `density` of input-major rows with m outputs (types with gatherRows). */
  gather(type: number, m: number, density = 0.5, storeBytes = 256 * 2 ** 20, reps = 7): GatherBench {
    return call(() => getBinding().kernels.benchGather(type, m, density, storeBytes, reps));
  },
  /** Dense gemv over rows x n matrices of `type`. */
  gemv(type: number, n: number, rows: number, storeBytes = 256 * 2 ** 20, reps = 50): GemvBench {
    return call(() => getBinding().kernels.benchGemv(type, n, rows, storeBytes, reps));
  },
  /** topk_select on n scores, k = keep * n: plain DIP, DIP-CA, DIP-CA with 64 protected, std::nth_element. */
  topk(n: number, keep = 0.5, reps = 201): TopkBench {
    return call(() => getBinding().kernels.benchTopk(n, keep, reps));
  },
};
