// GGUF v3 writer (little-endian). The header (metadata and tensor infos) is built in memory; tensor
// data is streamed to the file descriptor tensor by tensor, in the order the tensors were added, and
// may arrive in chunks, so a model larger than memory can be written with one tensor's worth (or
// less) in flight.
//
// File layout:
//   u32 magic "GGUF" | u32 version 3 | u64 tensor count | u64 kv count
//   kv:     string key | u32 value type | value        (string = u64 byte length + UTF-8 bytes)
//   tensor: string name | u32 n_dims | u64 ne[n_dims] (ne0 first) | u32 type | u64 offset
//   padding to `alignment` | tensor data, each tensor starting at a multiple of `alignment`
//   from the start of the data section (offsets are relative to it) and padded to one.

import * as fs from 'fs';
import { FlashdipError, invalidArgument } from './errors';
import { ggmlTensorBytes, ggmlType } from './ggml-types';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGML_MAX_NAME = 64; // tensor names are at most 63 bytes (ggml's fixed-size name field)
export const GGML_MAX_DIMS = 4;

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;
export type GgufArrayValues = ArrayLike<number | bigint | boolean | string> | ArrayLike<number>;

export interface GgufWriterOptions {
  // Data alignment in bytes (a power of two). When not 32 it is recorded as general.alignment.
  alignment?: number;
  // Create the file, failing if it exists (a temporary file of a unique name); default: create or truncate.
  exclusive?: boolean;
  // close() flushes the data to the device (fsync) before closing, so a rename after it is durable.
  sync?: boolean;
}

export interface GgufTensorInfo {
  readonly name: string;
  readonly dims: readonly number[]; // ggml order, ne0 first
  readonly typeId: number;
  readonly byteLength: number;
  readonly offset: number; // from the start of the data section
}

interface PendingKv {
  key: string;
  bytes: Buffer; // u32 type + encoded value
}

// Grows as the header is encoded; the header is small next to tensor data (a 128k vocab with
// merges is a few MB).
class ByteSink {
  private buf = Buffer.allocUnsafe(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void { this.reserve(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: bigint): void { this.reserve(8); this.buf.writeBigUInt64LE(v, this.length); this.length += 8; }
  i64(v: bigint): void { this.reserve(8); this.buf.writeBigInt64LE(v, this.length); this.length += 8; }
  str(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(BigInt(n));
    this.reserve(n);
    this.buf.write(s, this.length, n, 'utf8');
    this.length += n;
  }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

const INT_RANGE: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function isValueType(t: unknown): t is GgufValueType {
  return typeof t === 'number' && Number.isInteger(t) && t >= 0 && t <= 12;
}

function encodeScalar(sink: ByteSink, key: string, type: GgufValueType, v: unknown): void {
  const bad = (what: string) => invalidArgument(key, `${what} (got ${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)})`);
  switch (type) {
    case GgufValueType.UINT8: case GgufValueType.INT8: case GgufValueType.UINT16:
    case GgufValueType.INT16: case GgufValueType.UINT32: case GgufValueType.INT32: {
      const n = typeof v === 'bigint' ? Number(v) : v;
      const [lo, hi] = INT_RANGE[type]!;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) {
        throw bad(`expected an integer in [${lo}, ${hi}] for ${GgufValueType[type]}`);
      }
      if (type === GgufValueType.UINT8) sink.u8(n);
      else if (type === GgufValueType.INT8) sink.i8(n);
      else if (type === GgufValueType.UINT16) sink.u16(n);
      else if (type === GgufValueType.INT16) sink.i16(n);
      else if (type === GgufValueType.UINT32) sink.u32(n);
      else sink.i32(n);
      return;
    }
    case GgufValueType.UINT64: case GgufValueType.INT64: {
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else throw bad(`expected a safe integer or a bigint for ${GgufValueType[type]}`);
      const unsigned = type === GgufValueType.UINT64;
      const lo = unsigned ? 0n : -(1n << 63n);
      const hi = unsigned ? (1n << 64n) - 1n : (1n << 63n) - 1n;
      if (b < lo || b > hi) throw bad(`out of range for ${GgufValueType[type]}`);
      if (unsigned) sink.u64(b); else sink.i64(b);
      return;
    }
    case GgufValueType.FLOAT32: case GgufValueType.FLOAT64:
      if (typeof v !== 'number') throw bad(`expected a number for ${GgufValueType[type]}`);
      if (type === GgufValueType.FLOAT32) sink.f32(v); else sink.f64(v);
      return;
    case GgufValueType.BOOL:
      if (typeof v !== 'boolean') throw bad('expected a boolean');
      sink.u8(v ? 1 : 0);
      return;
    case GgufValueType.STRING:
      if (typeof v !== 'string') throw bad('expected a string');
      sink.str(v);
      return;
    default:
      throw invalidArgument(key, `value type ${type} is not a scalar type`);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export class GgufWriter {
  readonly path: string;
  readonly alignment: number;
  private fd: number | null;
  private readonly kvs: PendingKv[] = [];
  private readonly kvKeys = new Set<string>();
  private readonly tensors: GgufTensorInfo[] = [];
  private readonly tensorIndex = new Map<string, number>();
  private dataSize = 0;            // bytes of the data section once every tensor is written
  private headerWritten = false;
  private current = 0;             // index of the tensor whose data is being written
  private currentWritten = 0;      // bytes of it written so far
  private fileOffset = 0;          // bytes written to the file
  private dataStart = 0;           // file offset of the data section
  private readonly zeros: Buffer;
  private readonly explicitAlignment: boolean;
  private readonly sync: boolean;

  // Opens (creates or truncates; with `exclusive`, creates) `path` for writing.
  constructor(path: string, options: GgufWriterOptions = {}) {
    const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isSafeInteger(alignment) || alignment < 1 || alignment > 0xffffffff || (alignment & (alignment - 1)) !== 0) {
      throw invalidArgument('alignment', `must be a power of two, got ${alignment}`);
    }
    this.path = path;
    this.alignment = alignment;
    this.explicitAlignment = options.alignment !== undefined;
    this.zeros = Buffer.alloc(alignment);
    this.sync = options.sync === true;
    try {
      this.fd = fs.openSync(path, options.exclusive ? 'wx' : 'w');
    } catch (err) {
      throw new FlashdipError('ERR_IO', `cannot open ${path} for writing: ${(err as Error).message}`, { cause: err });
    }
  }

  // Adds one metadata key/value. For ARRAY, `elementType` is the element type (nested arrays are not
  // supported) and `value` an array or typed array. Integers of 64 bits take numbers or bigints.
  addKv(key: string, type: GgufValueType, value: unknown, elementType?: GgufValueType): this {
    this.assertBeforeHeader('addKv');
    if (typeof key !== 'string' || key.length === 0) throw invalidArgument('key', 'must be a non-empty string');
    if (this.kvKeys.has(key)) throw invalidArgument(key, 'duplicate metadata key');
    if (!isValueType(type)) throw invalidArgument(key, `unknown GGUF value type ${type}`);
    const sink = new ByteSink();
    sink.u32(type);
    if (type === GgufValueType.ARRAY) {
      if (!isValueType(elementType) || elementType === GgufValueType.ARRAY) {
        throw invalidArgument(key, 'arrays need a scalar element type (nested arrays are not supported)');
      }
      const arr = value as ArrayLike<unknown>;
      if (arr === null || typeof arr !== 'object' || typeof arr.length !== 'number') {
        throw invalidArgument(key, 'expected an array or a typed array');
      }
      sink.u32(elementType);
      sink.u64(BigInt(arr.length));
      for (let i = 0; i < arr.length; i++) encodeScalar(sink, key, elementType, arr[i]);
    } else {
      if (elementType !== undefined) throw invalidArgument(key, 'elementType is only for ARRAY values');
      encodeScalar(sink, key, type, value);
    }
    if (key === 'general.alignment') {
      if (type !== GgufValueType.UINT32 || value !== this.alignment) {
        throw invalidArgument(key, `must be a UINT32 equal to the writer's alignment ${this.alignment}`);
      }
    }
    this.kvs.push({ key, bytes: Buffer.from(sink.bytes()) });
    this.kvKeys.add(key);
    return this;
  }

  addString(key: string, v: string): this { return this.addKv(key, GgufValueType.STRING, v); }
  addU8(key: string, v: number): this { return this.addKv(key, GgufValueType.UINT8, v); }
  addI8(key: string, v: number): this { return this.addKv(key, GgufValueType.INT8, v); }
  addU16(key: string, v: number): this { return this.addKv(key, GgufValueType.UINT16, v); }
  addI16(key: string, v: number): this { return this.addKv(key, GgufValueType.INT16, v); }
  addU32(key: string, v: number): this { return this.addKv(key, GgufValueType.UINT32, v); }
  addI32(key: string, v: number): this { return this.addKv(key, GgufValueType.INT32, v); }
  addU64(key: string, v: number | bigint): this { return this.addKv(key, GgufValueType.UINT64, v); }
  addI64(key: string, v: number | bigint): this { return this.addKv(key, GgufValueType.INT64, v); }
  addF32(key: string, v: number): this { return this.addKv(key, GgufValueType.FLOAT32, v); }
  addF64(key: string, v: number): this { return this.addKv(key, GgufValueType.FLOAT64, v); }
  addBool(key: string, v: boolean): this { return this.addKv(key, GgufValueType.BOOL, v); }
  addArray(key: string, elementType: GgufValueType, values: GgufArrayValues): this {
    return this.addKv(key, GgufValueType.ARRAY, values, elementType);
  }

  hasKv(key: string): boolean { return this.kvKeys.has(key); }

  // Declares a tensor: dims in ggml order (ne0, the contiguous dimension, first). Its byte length
  // follows from the dims and type; `byteLength`, when given, must agree. Returns the tensor's info.
  addTensor(name: string, dims: readonly number[], typeId: number, byteLength?: number): GgufTensorInfo {
    this.assertBeforeHeader('addTensor');
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('name', 'must be a non-empty string');
    if (Buffer.byteLength(name, 'utf8') >= GGML_MAX_NAME) {
      throw invalidArgument('name', `${JSON.stringify(name)} is longer than ${GGML_MAX_NAME - 1} bytes`);
    }
    if (this.tensorIndex.has(name)) throw invalidArgument('name', `duplicate tensor ${JSON.stringify(name)}`);
    if (!Array.isArray(dims) || dims.length < 1 || dims.length > GGML_MAX_DIMS) {
      throw invalidArgument(name, `dims must have 1 to ${GGML_MAX_DIMS} entries`);
    }
    for (const d of dims) {
      if (!Number.isSafeInteger(d) || d < 1) throw invalidArgument(name, `bad dimension ${d} in [${dims.join(', ')}]`);
    }
    ggmlType(typeId);
    const bytes = ggmlTensorBytes(typeId, dims);
    if (byteLength !== undefined && byteLength !== bytes) {
      throw invalidArgument(name, `byteLength ${byteLength} does not match ${bytes} for [${dims.join(', ')}] of type ${typeId}`);
    }
    const info: GgufTensorInfo = Object.freeze({ name, dims: Object.freeze([...dims]), typeId, byteLength: bytes, offset: this.dataSize });
    this.dataSize = alignUp(this.dataSize + bytes, this.alignment);
    this.tensorIndex.set(name, this.tensors.length);
    this.tensors.push(info);
    return info;
  }

  get tensorInfos(): readonly GgufTensorInfo[] { return this.tensors; }

  // The file offset of the data section (known once the header is written).
  get dataOffset(): number {
    if (!this.headerWritten) throw new FlashdipError('ERR_INTERNAL', 'dataOffset is known only after writeHeader()');
    return this.dataStart;
  }

  // Total file size once every tensor is written (known once the header is written).
  get totalBytes(): number {
    return this.dataOffset + this.dataSize;
  }

  // Writes the header, the tensor infos and the padding before the data section. After this no
  // metadata or tensors can be added.
  writeHeader(): void {
    this.assertBeforeHeader('writeHeader');
    if (this.explicitAlignment && this.alignment !== GGUF_DEFAULT_ALIGNMENT && !this.kvKeys.has('general.alignment')) {
      this.addU32('general.alignment', this.alignment);
    }
    const head = new ByteSink();
    head.u32(GGUF_MAGIC);
    head.u32(GGUF_VERSION);
    head.u64(BigInt(this.tensors.length));
    head.u64(BigInt(this.kvs.length));
    const parts: Buffer[] = [Buffer.from(head.bytes())];
    let size = head.length;
    for (const kv of this.kvs) {
      const k = new ByteSink();
      k.str(kv.key);
      parts.push(Buffer.from(k.bytes()), kv.bytes);
      size += k.length + kv.bytes.length;
    }
    const ti = new ByteSink();
    for (const t of this.tensors) {
      ti.str(t.name);
      ti.u32(t.dims.length);
      for (const d of t.dims) ti.u64(BigInt(d));
      ti.u32(t.typeId);
      ti.u64(BigInt(t.offset));
    }
    parts.push(ti.bytes());
    size += ti.length;
    const padded = alignUp(size, this.alignment);
    parts.push(this.zeros.subarray(0, padded - size));
    this.headerWritten = true;
    for (const p of parts) this.write(p);
    this.dataStart = padded;
    this.kvs.length = 0; // encoded and written; free them
  }

  // Appends bytes to the data of tensor `name`, which must be the first tensor not yet complete
  // (tensors are written in the order they were added). A tensor's data may come in several chunks.
  writeTensorData(name: string, bytes: ArrayBufferView): void {
    if (!this.headerWritten) throw new FlashdipError('ERR_INTERNAL', 'writeTensorData() before writeHeader()');
    this.assertOpen();
    const t = this.tensors[this.current];
    if (!t) throw invalidArgument('name', `all tensors are already written (got ${JSON.stringify(name)})`);
    if (t.name !== name) {
      throw invalidArgument('name', `expected data for tensor ${JSON.stringify(t.name)} next, got ${JSON.stringify(name)}`);
    }
    if (!ArrayBuffer.isView(bytes)) throw invalidArgument(name, 'data must be a Buffer, TypedArray or DataView');
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.currentWritten + view.length > t.byteLength) {
      throw invalidArgument(name, `${this.currentWritten + view.length} bytes written, but the tensor has ${t.byteLength}`);
    }
    this.write(view);
    this.currentWritten += view.length;
    if (this.currentWritten === t.byteLength) {
      const pad = alignUp(t.byteLength, this.alignment) - t.byteLength;
      if (pad) this.write(this.zeros.subarray(0, pad));
      this.current++;
      this.currentWritten = 0;
    }
  }

  // The tensor whose data is expected next, or undefined when all are written.
  get nextTensor(): GgufTensorInfo | undefined { return this.tensors[this.current]; }

  // Closes the file. Throws (after closing) if the header or any tensor data is missing, so a
  // truncated model is never mistaken for a finished one.
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      if (this.sync) fs.fsyncSync(fd);
    } catch (err) {
      try { fs.closeSync(fd); } catch { /* already failing */ }
      throw new FlashdipError('ERR_IO', `cannot flush ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      fs.closeSync(fd);
    } catch (err) {
      throw new FlashdipError('ERR_IO', `cannot close ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    if (!this.headerWritten) throw new FlashdipError('ERR_INTERNAL', `${this.path}: closed before writeHeader()`);
    if (this.current < this.tensors.length) {
      const t = this.tensors[this.current];
      throw new FlashdipError('ERR_INTERNAL',
        `${this.path}: closed with tensor ${JSON.stringify(t.name)} incomplete (${this.currentWritten} of ${t.byteLength} bytes) and ${this.tensors.length - this.current - 1} more unwritten`);
    }
    if (this.fileOffset !== this.dataStart + this.dataSize) {
      throw new FlashdipError('ERR_INTERNAL', `${this.path}: wrote ${this.fileOffset} bytes, expected ${this.dataStart + this.dataSize}`);
    }
  }

  // Closes the file without the completeness check and removes it (after a failure).
  abort(): void {
    if (this.fd !== null) {
      try { fs.closeSync(this.fd); } catch { /* already failing */ }
      this.fd = null;
    }
    try { fs.unlinkSync(this.path); } catch { /* may not exist */ }
  }

  private write(buf: Uint8Array): void {
    this.assertOpen();
    let off = 0;
    while (off < buf.length) {
      let n: number;
      try {
        n = fs.writeSync(this.fd!, buf, off, buf.length - off);
      } catch (err) {
        throw new FlashdipError('ERR_IO', `cannot write ${this.path}: ${(err as Error).message}`, { cause: err });
      }
      off += n;
    }
    this.fileOffset += buf.length;
  }

  private assertOpen(): void {
    if (this.fd === null) throw new FlashdipError('ERR_DISPOSED', `${this.path}: writer is closed`);
  }

  private assertBeforeHeader(what: string): void {
    this.assertOpen();
    if (this.headerWritten) throw new FlashdipError('ERR_INTERNAL', `${what}() after writeHeader()`);
  }
}

// Metadata value types by the names lib/gguf.ts's readGguf reports in metadataTypes.
const VALUE_TYPES: Record<string, GgufValueType> = {
  u8: GgufValueType.UINT8, i8: GgufValueType.INT8, u16: GgufValueType.UINT16, i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32, i32: GgufValueType.INT32, f32: GgufValueType.FLOAT32, bool: GgufValueType.BOOL,
  string: GgufValueType.STRING, u64: GgufValueType.UINT64, i64: GgufValueType.INT64, f64: GgufValueType.FLOAT64,
};

/** The metadata of a read GGUF header, each value with its GGUF type, in file order, for copying. */
export function metadataEntries(
  src: { metadata: Record<string, unknown>; metadataTypes: Record<string, string> },
  from: string,
  keep: (key: string) => boolean = () => true,
): { key: string; type: GgufValueType; elem?: GgufValueType; value: unknown }[] {
  const out = [];
  for (const [key, value] of Object.entries(src.metadata)) {
    if (!keep(key)) continue;
    const t = src.metadataTypes[key];
    if (typeof t !== 'string') throw new FlashdipError('ERR_GGUF_INVALID', `${from}: no type for metadata key ${key}`);
    if (t.startsWith('array:')) {
      const elem = VALUE_TYPES[t.slice(6)];
      if (elem === undefined) throw new FlashdipError('ERR_GGUF_INVALID', `${from}: ${key} has unsupported type ${t}`);
      out.push({ key, type: GgufValueType.ARRAY, elem, value });
    } else {
      const type = VALUE_TYPES[t];
      if (type === undefined) throw new FlashdipError('ERR_GGUF_INVALID', `${from}: ${key} has unsupported type ${t}`);
      out.push({ key, type, value });
    }
  }
  return out;
}
