// The low-level kernels on TypedArrays, for tests and research.
import { getBinding } from './binding';
import { fromNative } from './errors';

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

/** The instruction set in use ('scalar', 'avx2', 'neon', 'neon-dotprod') and those available. */
export function info(): { isa: string; available: string[] } {
  const i = getBinding().kernels.info();
  return { isa: i.isa, available: i.available.split(',').filter(Boolean) };
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
