import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GgufValueType as T, GgufWriter } from '../../lib/gguf-writer';
import { GGML_TYPE, ggmlRowBytes, ggmlTensorBytes } from '../../lib/ggml-types';
import { FlashdipError } from '../../lib/errors';
import { readGguf, readTensorBytes } from './gguf-read';

describe('tools: GgufWriter', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flashdip-writer-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('round-trips every value type, arrays of strings, and tensor infos', () => {
    const file = path.join(dir, 'all.gguf');
    const w = new GgufWriter(file);
    w.addU8('u8', 255).addI8('i8', -128).addU16('u16', 65535).addI16('i16', -32768)
      .addU32('u32', 0xffffffff).addI32('i32', -0x80000000).addF32('f32', 1.5).addBool('t', true)
      .addBool('f', false).addString('s', 'héllo ▁wörld').addU64('u64', 2n ** 64n - 1n).addI64('i64', -(2n ** 63n))
      .addF64('f64', Math.PI).addU64('u64small', 7)
      .addArray('a.str', T.STRING, ['', 'a', '▁b', '<0x0A>'])
      .addArray('a.f32', T.FLOAT32, new Float32Array([0.25, -1]))
      .addArray('a.i32', T.INT32, [1, -2, 3])
      .addArray('a.bool', T.BOOL, [true, false])
      .addArray('a.empty', T.UINT8, []);
    w.addTensor('a', [3], GGML_TYPE.F32);
    w.addTensor('b', [64, 2], GGML_TYPE.Q8_0, 2 * 68);
    w.addTensor('c', [5, 1, 1, 2], GGML_TYPE.F16);
    w.writeHeader();
    w.writeTensorData('a', new Float32Array([1, 2, 3]));
    w.writeTensorData('b', new Uint8Array(68).fill(7));
    w.writeTensorData('b', new Uint8Array(68).fill(9)); // in chunks
    w.writeTensorData('c', new Uint16Array(10).fill(0x3c00));
    const total = w.totalBytes;
    w.close();

    const g = readGguf(file);
    assert.strictEqual(g.version, 3);
    assert.strictEqual(g.fileSize, total);
    const v = (k: string) => g.kv.get(k)!;
    assert.deepStrictEqual([v('u8').type, v('u8').value], [T.UINT8, 255]);
    assert.deepStrictEqual([v('i8').type, v('i8').value], [T.INT8, -128]);
    assert.deepStrictEqual([v('u16').type, v('u16').value], [T.UINT16, 65535]);
    assert.deepStrictEqual([v('i16').type, v('i16').value], [T.INT16, -32768]);
    assert.deepStrictEqual([v('u32').type, v('u32').value], [T.UINT32, 0xffffffff]);
    assert.deepStrictEqual([v('i32').type, v('i32').value], [T.INT32, -0x80000000]);
    assert.deepStrictEqual([v('f32').type, v('f32').value], [T.FLOAT32, 1.5]);
    assert.deepStrictEqual([v('t').type, v('t').value, v('f').value], [T.BOOL, true, false]);
    assert.deepStrictEqual([v('s').type, v('s').value], [T.STRING, 'héllo ▁wörld']);
    assert.deepStrictEqual([v('u64').type, v('u64').value], [T.UINT64, 2n ** 64n - 1n]);
    assert.deepStrictEqual([v('i64').type, v('i64').value], [T.INT64, -(2n ** 63n)]);
    assert.deepStrictEqual([v('f64').type, v('f64').value], [T.FLOAT64, Math.PI]);
    assert.deepStrictEqual(v('a.str'), { type: T.ARRAY, elementType: T.STRING, value: ['', 'a', '▁b', '<0x0A>'] });
    assert.deepStrictEqual(v('a.f32'), { type: T.ARRAY, elementType: T.FLOAT32, value: [0.25, -1] });
    assert.deepStrictEqual(v('a.i32'), { type: T.ARRAY, elementType: T.INT32, value: [1, -2, 3] });
    assert.deepStrictEqual(v('a.bool'), { type: T.ARRAY, elementType: T.BOOL, value: [true, false] });
    assert.deepStrictEqual(v('a.empty'), { type: T.ARRAY, elementType: T.UINT8, value: [] });
    assert.deepStrictEqual([...g.kv.keys()].slice(0, 3), ['u8', 'i8', 'u16'], 'metadata keeps insertion order');

    assert.deepStrictEqual(g.tensors.map((t) => [t.name, t.dims, t.typeId, t.offset]), [
      ['a', [3], 0, 0], ['b', [64, 2], 8, 32], ['c', [5, 1, 1, 2], 1, 32 + 160],
    ]);
    assert.strictEqual(g.dataOffset % 32, 0);
    assert.deepStrictEqual([...new Float32Array(readTensorBytes(file, g, g.tensors[0], 12).buffer.slice(0))], [1, 2, 3]);
    const b = readTensorBytes(file, g, g.tensors[1], 136);
    assert.ok(b.subarray(0, 68).every((x) => x === 7) && b.subarray(68).every((x) => x === 9));
  });

  it('honours a custom alignment and records it as general.alignment', () => {
    const file = path.join(dir, 'align.gguf');
    const w = new GgufWriter(file, { alignment: 64 });
    w.addString('general.architecture', 'llama');
    for (const n of [1, 7, 33]) w.addTensor(`t${n}`, [n], GGML_TYPE.F32);
    w.writeHeader();
    assert.strictEqual(w.dataOffset % 64, 0);
    for (const n of [1, 7, 33]) w.writeTensorData(`t${n}`, new Float32Array(n));
    w.close();
    const g = readGguf(file);
    assert.strictEqual(g.kv.get('general.alignment')!.value, 64);
    assert.strictEqual(g.kv.get('general.alignment')!.type, T.UINT32);
    assert.strictEqual(fs.statSync(file).size, g.dataOffset + 64 + 64 + 192);
    for (const t of g.tensors) assert.strictEqual(t.offset % 64, 0);
  });

  it('validates values, names, dims, sizes and write order', () => {
    const file = path.join(dir, 'bad.gguf');
    const w = new GgufWriter(file);
    const code = (fn: () => unknown, c = 'ERR_INVALID_ARGUMENT') =>
      assert.throws(fn, (e: unknown) => e instanceof FlashdipError && e.code === c);
    code(() => w.addU8('x', 256));
    code(() => w.addI32('x', 1.5));
    code(() => w.addU32('x', -1));
    code(() => w.addU64('x', -1n));
    code(() => w.addI64('x', 2 ** 60)); // not a safe integer: use a bigint
    code(() => w.addBool('x', 1 as unknown as boolean));
    code(() => w.addKv('x', T.ARRAY, [1]));
    code(() => w.addKv('x', 99 as T, 1));
    code(() => w.addArray('x', T.STRING, ['a', 3 as unknown as string]));
    code(() => w.addKv('general.alignment', T.UINT32, 64)); // the writer's alignment is 32
    w.addU8('x', 1);
    code(() => w.addU8('x', 2)); // duplicate
    code(() => w.addTensor('q', [31], GGML_TYPE.Q8_0)); // not whole blocks
    code(() => w.addTensor('q', [32], GGML_TYPE.Q8_0, 33)); // wrong size
    code(() => w.addTensor('q', [], GGML_TYPE.F32));
    code(() => w.addTensor('q', [1, 1, 1, 1, 1], GGML_TYPE.F32));
    code(() => w.addTensor('q', [0], GGML_TYPE.F32));
    code(() => w.addTensor('x'.repeat(64), [1], GGML_TYPE.F32));
    code(() => w.addTensor('q', [1], 4), 'ERR_UNSUPPORTED_TYPE');
    w.addTensor('a', [2], GGML_TYPE.F32);
    w.addTensor('b', [2], GGML_TYPE.F32);
    code(() => w.addTensor('a', [2], GGML_TYPE.F32));
    code(() => w.writeTensorData('a', new Float32Array(2)), 'ERR_INTERNAL'); // before the header
    w.writeHeader();
    code(() => w.addU8('y', 1), 'ERR_INTERNAL');
    code(() => w.writeTensorData('b', new Float32Array(2))); // out of order
    code(() => w.writeTensorData('a', new Float32Array(3))); // too long
    w.writeTensorData('a', new Float32Array(2));
    w.writeTensorData('b', new Float32Array(1));
    code(() => w.close(), 'ERR_INTERNAL'); // 'b' incomplete
    code(() => w.writeTensorData('b', new Float32Array(1)), 'ERR_DISPOSED');
  });

  it('computes row and tensor sizes from the type table', () => {
    assert.strictEqual(ggmlRowBytes(GGML_TYPE.Q4_K, 512), 288);
    assert.strictEqual(ggmlRowBytes(GGML_TYPE.Q6_K, 256), 210);
    assert.strictEqual(ggmlRowBytes(GGML_TYPE.Q4_0, 64), 36);
    assert.strictEqual(ggmlTensorBytes(GGML_TYPE.BF16, [3, 5]), 30);
    assert.throws(() => ggmlRowBytes(GGML_TYPE.Q4_K, 128), /block size 256/);
  });

  it('exclusive refuses an existing file untouched; sync closes a complete file', () => {
    const file = path.join(dir, 'exists.gguf');
    fs.writeFileSync(file, 'keep me');
    assert.throws(() => new GgufWriter(file, { exclusive: true }), (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_IO');
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'keep me');
    const fresh = path.join(dir, 'fresh.gguf');
    const w = new GgufWriter(fresh, { exclusive: true, sync: true });
    w.addString('k', 'v').addTensor('t', [4], GGML_TYPE.F32);
    w.writeHeader();
    w.writeTensorData('t', new Float32Array([1, 2, 3, 4]));
    w.close();
    assert.strictEqual(readGguf(fresh).kv.get('k')?.value, 'v');
  });
});
