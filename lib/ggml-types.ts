// Tensor element types, numbered as in GGUF/ggml so a file's type ids can be used directly.
// Mirrors native/kernels/types.cc (block geometry from the GGUF specification); keep the two in step.

import { FlashdipError, invalidArgument } from './errors';

export interface GgmlType {
  readonly name: string;       // 'q8_0'
  readonly id: number;         // GGUF/ggml type id
  readonly blockSize: number;  // elements per block
  readonly blockBytes: number; // bytes per block
}

export const GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
} as const;

const TABLE: readonly GgmlType[] = [
  { name: 'f32', id: 0, blockSize: 1, blockBytes: 4 },
  { name: 'f16', id: 1, blockSize: 1, blockBytes: 2 },
  { name: 'q4_0', id: 2, blockSize: 32, blockBytes: 18 },
  { name: 'q4_1', id: 3, blockSize: 32, blockBytes: 20 },
  { name: 'q5_0', id: 6, blockSize: 32, blockBytes: 22 },
  { name: 'q5_1', id: 7, blockSize: 32, blockBytes: 24 },
  { name: 'q8_0', id: 8, blockSize: 32, blockBytes: 34 },
  { name: 'q8_1', id: 9, blockSize: 32, blockBytes: 36 },
  { name: 'q2_k', id: 10, blockSize: 256, blockBytes: 84 },
  { name: 'q3_k', id: 11, blockSize: 256, blockBytes: 110 },
  { name: 'q4_k', id: 12, blockSize: 256, blockBytes: 144 },
  { name: 'q5_k', id: 13, blockSize: 256, blockBytes: 176 },
  { name: 'q6_k', id: 14, blockSize: 256, blockBytes: 210 },
  { name: 'q8_k', id: 15, blockSize: 256, blockBytes: 292 },
  { name: 'iq2_xxs', id: 16, blockSize: 256, blockBytes: 66 },
  { name: 'iq2_xs', id: 17, blockSize: 256, blockBytes: 74 },
  { name: 'iq3_xxs', id: 18, blockSize: 256, blockBytes: 98 },
  { name: 'iq1_s', id: 19, blockSize: 256, blockBytes: 50 },
  { name: 'iq4_nl', id: 20, blockSize: 32, blockBytes: 18 },
  { name: 'iq3_s', id: 21, blockSize: 256, blockBytes: 110 },
  { name: 'iq2_s', id: 22, blockSize: 256, blockBytes: 82 },
  { name: 'iq4_xs', id: 23, blockSize: 256, blockBytes: 136 },
  { name: 'i8', id: 24, blockSize: 1, blockBytes: 1 },
  { name: 'i16', id: 25, blockSize: 1, blockBytes: 2 },
  { name: 'i32', id: 26, blockSize: 1, blockBytes: 4 },
  { name: 'i64', id: 27, blockSize: 1, blockBytes: 8 },
  { name: 'f64', id: 28, blockSize: 1, blockBytes: 8 },
  { name: 'iq1_m', id: 29, blockSize: 256, blockBytes: 56 },
  { name: 'bf16', id: 30, blockSize: 1, blockBytes: 2 },
  { name: 'tq1_0', id: 34, blockSize: 256, blockBytes: 54 },
  { name: 'tq2_0', id: 35, blockSize: 256, blockBytes: 66 },
];

const BY_ID = new Map<number, GgmlType>(TABLE.map((t) => [t.id, t]));
const BY_NAME = new Map<string, GgmlType>(TABLE.map((t) => [t.name, t]));

export const GGML_TYPES: readonly GgmlType[] = TABLE;

// The type with this id or name (case-insensitive); undefined when unknown.
export function findGgmlType(idOrName: number | string): GgmlType | undefined {
  return typeof idOrName === 'number' ? BY_ID.get(idOrName) : BY_NAME.get(idOrName.toLowerCase());
}

// Like findGgmlType, but an unknown type is an ERR_UNSUPPORTED_TYPE error.
export function ggmlType(idOrName: number | string): GgmlType {
  const t = findGgmlType(idOrName);
  if (!t) throw new FlashdipError('ERR_UNSUPPORTED_TYPE', `unknown ggml type ${JSON.stringify(idOrName)}`);
  return t;
}

// Bytes of a row of n elements; throws when n is not a whole number of blocks.
export function ggmlRowBytes(typeId: number, n: number): number {
  const t = ggmlType(typeId);
  if (!Number.isSafeInteger(n) || n < 0 || n % t.blockSize !== 0) {
    throw invalidArgument('n', `${n} elements is not a multiple of the ${t.name} block size ${t.blockSize}`);
  }
  return (n / t.blockSize) * t.blockBytes;
}

// Bytes of a whole tensor with dims in ggml order (ne0 first, the contiguous dimension).
export function ggmlTensorBytes(typeId: number, dims: readonly number[]): number {
  let rows = 1;
  for (let i = 1; i < dims.length; i++) rows *= dims[i];
  const bytes = ggmlRowBytes(typeId, dims.length ? dims[0] : 1) * rows;
  if (!Number.isSafeInteger(bytes)) throw invalidArgument('dims', `tensor of ${dims.join('x')} is too large`);
  return bytes;
}
