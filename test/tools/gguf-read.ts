// A small, independent GGUF parser for tests of the writer and make-model: it reads the whole header
// into JS values with their GGUF types, so a round trip can check both. Not the project's reader
// (lib/gguf.ts); it exists so the writer is tested against code that does not share its encoder.

import * as fs from 'fs';

export interface ParsedKv {
  type: number;          // GGUF value type
  elementType?: number;  // for arrays
  value: unknown;        // number | bigint | boolean | string | unknown[]
}

export interface ParsedTensor {
  name: string;
  dims: number[];
  typeId: number;
  offset: number;
}

export interface ParsedGguf {
  version: number;
  kv: Map<string, ParsedKv>;
  tensors: ParsedTensor[];
  alignment: number;
  dataOffset: number;
  fileSize: number;
}

class Cursor {
  pos = 0;
  constructor(private readonly fd: number, private buf: Buffer, private bufStart: number) {}

  private need(n: number): void {
    if (this.pos + n <= this.bufStart + this.buf.length) return;
    const size = Math.max(n, 1 << 20);
    const b = Buffer.alloc(size);
    const got = fs.readSync(this.fd, b, 0, size, this.pos);
    if (got < n) throw new Error(`truncated GGUF at ${this.pos}`);
    this.buf = b.subarray(0, got);
    this.bufStart = this.pos;
  }
  // Ensures n bytes at pos are buffered and returns their index in buf. Call it before reading
  // this.buf: it may replace the buffer.
  private at(n: number): number { this.need(n); const o = this.pos - this.bufStart; this.pos += n; return o; }
  u8(): number { const o = this.at(1); return this.buf.readUInt8(o); }
  i8(): number { const o = this.at(1); return this.buf.readInt8(o); }
  u16(): number { const o = this.at(2); return this.buf.readUInt16LE(o); }
  i16(): number { const o = this.at(2); return this.buf.readInt16LE(o); }
  u32(): number { const o = this.at(4); return this.buf.readUInt32LE(o); }
  i32(): number { const o = this.at(4); return this.buf.readInt32LE(o); }
  f32(): number { const o = this.at(4); return this.buf.readFloatLE(o); }
  f64(): number { const o = this.at(8); return this.buf.readDoubleLE(o); }
  u64(): bigint { const o = this.at(8); return this.buf.readBigUInt64LE(o); }
  i64(): bigint { const o = this.at(8); return this.buf.readBigInt64LE(o); }
  str(): string {
    const n = Number(this.u64());
    const o = this.at(n);
    return this.buf.toString('utf8', o, o + n);
  }
}

function readScalar(c: Cursor, type: number): unknown {
  switch (type) {
    case 0: return c.u8();
    case 1: return c.i8();
    case 2: return c.u16();
    case 3: return c.i16();
    case 4: return c.u32();
    case 5: return c.i32();
    case 6: return c.f32();
    case 7: { const b = c.u8(); if (b > 1) throw new Error(`bad bool ${b}`); return b === 1; }
    case 8: return c.str();
    case 10: return c.u64();
    case 11: return c.i64();
    case 12: return c.f64();
    default: throw new Error(`bad value type ${type}`);
  }
}

export function readGguf(path: string): ParsedGguf {
  const fd = fs.openSync(path, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const c = new Cursor(fd, Buffer.alloc(0), 0);
    const magic = c.u32();
    if (magic !== 0x46554747) throw new Error(`bad magic 0x${magic.toString(16)}`);
    const version = c.u32();
    const nTensors = Number(c.u64());
    const nKv = Number(c.u64());
    const kv = new Map<string, ParsedKv>();
    for (let i = 0; i < nKv; i++) {
      const key = c.str();
      const type = c.u32();
      if (type === 9) {
        const elementType = c.u32();
        const n = Number(c.u64());
        const values: unknown[] = new Array(n);
        for (let j = 0; j < n; j++) values[j] = readScalar(c, elementType);
        kv.set(key, { type, elementType, value: values });
      } else {
        kv.set(key, { type, value: readScalar(c, type) });
      }
    }
    const tensors: ParsedTensor[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.str();
      const nd = c.u32();
      const dims: number[] = [];
      for (let j = 0; j < nd; j++) dims.push(Number(c.u64()));
      const typeId = c.u32();
      const offset = Number(c.u64());
      tensors.push({ name, dims, typeId, offset });
    }
    const alignKv = kv.get('general.alignment');
    const alignment = alignKv ? Number(alignKv.value) : 32;
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    return { version, kv, tensors, alignment, dataOffset, fileSize };
  } finally {
    fs.closeSync(fd);
  }
}

// Plain key -> value view, the shape make-model's --vocab-from accepts.
export function readGgufMetadataForTest(path: string): Map<string, ParsedKv> {
  return readGguf(path).kv;
}

// Reads the raw bytes of one tensor.
export function readTensorBytes(path: string, g: ParsedGguf, t: ParsedTensor, byteLength: number): Buffer {
  const fd = fs.openSync(path, 'r');
  try {
    const b = Buffer.alloc(byteLength);
    const got = fs.readSync(fd, b, 0, byteLength, g.dataOffset + t.offset);
    if (got !== byteLength) throw new Error(`short read of ${t.name}`);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}
