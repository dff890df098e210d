// Tensor element types, numbered as in GGUF/ggml so a file's type ids can be used directly. The ids
// are named here (GGML_TYPE); their traits (block geometry, what flashdip implements) come from the
// native side (native/kernels/types.cc and the kernel registry), so there is no copy to keep in step.

import { getBinding } from './binding';
import { FlashdipError, invalidArgument } from './errors';

export interface GgmlType {
  readonly name: string;           // 'q8_0'
  readonly id: number;             // GGUF/ggml type id
  readonly blockSize: number;      // elements per block
  readonly blockBytes: number;     // bytes per block
  readonly canDequantize: boolean; // dequantizeRow works
  readonly canCompute: boolean;    // dense GEMV kernels exist (the engine runs matrices of this type)
  readonly canQuantize: boolean;   // quantizeRow works (make-model, convert)
  readonly gatherRows: boolean;    // gather kernels exist for DIP rows of this type
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

// The table itself comes from the native type traits (native/kernels/types.cc, through
// kernels.types()), read once at first use: the lookups below load the addon (gguf-writer and
// make-model too, even at f32).
let table: { list: readonly GgmlType[]; byId: Map<number, GgmlType>; byName: Map<string, GgmlType> } | undefined;

function types() {
  if (!table) {
    const list: readonly GgmlType[] = getBinding().kernels.types().map((t) => Object.freeze({ ...t }));
    table = { list, byId: new Map(list.map((t) => [t.id, t])), byName: new Map(list.map((t) => [t.name, t])) };
  }
  return table;
}

// Every known type, by id.
export function ggmlTypes(): readonly GgmlType[] {
  return types().list;
}

// The type with this id or name (case-insensitive); undefined when unknown.
export function findGgmlType(idOrName: number | string): GgmlType | undefined {
  return typeof idOrName === 'number' ? types().byId.get(idOrName) : types().byName.get(idOrName.toLowerCase());
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
