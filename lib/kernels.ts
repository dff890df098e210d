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
