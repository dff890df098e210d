import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FlashdipError } from '../../lib/errors';
import { GGML_TYPE, ggmlTensorBytes } from '../../lib/ggml-types';
import { GgufValueType as T } from '../../lib/gguf-writer';
import { f32ToBf16Bits, f32ToF16Bits, makeModel, MakeModelOptions, syntheticVocab, VocabSource } from '../../scripts/make-model';
import { ParsedGguf, readGguf, readTensorBytes } from './gguf-read';

const VOCAB_DIR = path.join(__dirname, '../../../shared/data/tokenizer/vocab');
const TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];

// The native binding when it is built; tests that need it skip otherwise.
function tryBinding(): any {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('../../lib/binding').getBinding();
  } catch {
    return undefined;
  }
}

// --vocab-from through the test parser, in the shape lib/gguf.ts's readGguf() returns.
function testVocabReader(file: string): VocabSource {
  const g = readGguf(file);
  const metadata: Record<string, unknown> = {};
  const metadataTypes: Record<string, string> = {};
  for (const [k, v] of g.kv) {
    metadata[k] = v.value;
    metadataTypes[k] = v.type === T.ARRAY ? `array:${TYPE_NAMES[v.elementType!]}` : TYPE_NAMES[v.type];
  }
  return { metadata, metadataTypes };
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function tensorF32(file: string, g: ParsedGguf, name: string): Float32Array {
  const t = g.tensors.find((x) => x.name === name)!;
  const bytes = readTensorBytes(file, g, t, ggmlTensorBytes(t.typeId, t.dims));
  if (t.typeId === GGML_TYPE.F32) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  if (t.typeId === GGML_TYPE.F16) return Float32Array.from(h, f16ToF32);
  if (t.typeId === GGML_TYPE.BF16) return Float32Array.from(h, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]);
  throw new Error(`cannot decode type ${t.typeId}`);
}

// Offsets aligned, in order, non-overlapping, inside the file; the file ends at the last padded tensor.
function checkLayout(g: ParsedGguf): void {
  assert.strictEqual(g.dataOffset % g.alignment, 0);
  let end = 0;
  for (const t of g.tensors) {
    assert.strictEqual(t.offset % g.alignment, 0, `${t.name} offset ${t.offset}`);
    assert.ok(t.offset >= end, `${t.name} overlaps the previous tensor`);
    end = t.offset + ggmlTensorBytes(t.typeId, t.dims);
  }
  assert.strictEqual(g.fileSize, g.dataOffset + Math.ceil(end / g.alignment) * g.alignment);
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('tools: make-model', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flashdip-make-model-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });
  const tiny = (o: Partial<MakeModelOptions> & { out: string }): MakeModelOptions =>
    ({ arch: 'llama', dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 96, vocab: 300, ctx: 128, seed: 1, ...o });

  it('writes llama.cpp metadata keys and tensor shapes (llama)', () => {
    const out = path.join(dir, 'llama.gguf');
    const res = makeModel(tiny({ out }));
    const g = readGguf(out);
    assert.strictEqual(res.bytes, g.fileSize);
    assert.strictEqual(g.version, 3);
    const kv = (k: string) => g.kv.get(k)?.value;
    assert.strictEqual(kv('general.architecture'), 'llama');
    assert.strictEqual(kv('general.alignment'), 32);
    assert.strictEqual(typeof kv('general.name'), 'string');
    assert.strictEqual(kv('llama.embedding_length'), 64);
    assert.strictEqual(kv('llama.block_count'), 2);
    assert.strictEqual(kv('llama.feed_forward_length'), 96);
    assert.strictEqual(kv('llama.attention.head_count'), 4);
    assert.strictEqual(kv('llama.attention.head_count_kv'), 2);
    assert.strictEqual(kv('llama.context_length'), 128);
    assert.strictEqual(kv('llama.rope.dimension_count'), 16);
    assert.strictEqual(kv('llama.rope.freq_base'), 10000);
    assert.ok(Math.abs((kv('llama.attention.layer_norm_rms_epsilon') as number) - 1e-5) < 1e-10);
    assert.strictEqual(g.kv.get('llama.attention.layer_norm_rms_epsilon')!.type, T.FLOAT32);
    assert.strictEqual(kv('tokenizer.ggml.model'), 'llama');
    assert.strictEqual((kv('tokenizer.ggml.tokens') as string[]).length, 300);
    const dims = Object.fromEntries(g.tensors.map((t) => [t.name, [t.dims, t.typeId]]));
    assert.deepStrictEqual(dims['token_embd.weight'], [[64, 300], 0]);
    assert.deepStrictEqual(dims['output.weight'], [[64, 300], 0]);
    assert.deepStrictEqual(dims['output_norm.weight'], [[64], 0]);
    assert.deepStrictEqual(dims['blk.1.attn_q.weight'], [[64, 64], 0]);
    assert.deepStrictEqual(dims['blk.1.attn_k.weight'], [[64, 32], 0]);
    assert.deepStrictEqual(dims['blk.1.attn_v.weight'], [[64, 32], 0]);
    assert.deepStrictEqual(dims['blk.1.attn_output.weight'], [[64, 64], 0]);
    assert.deepStrictEqual(dims['blk.1.ffn_gate.weight'], [[64, 96], 0]);
    assert.deepStrictEqual(dims['blk.1.ffn_up.weight'], [[64, 96], 0]);
    assert.deepStrictEqual(dims['blk.1.ffn_down.weight'], [[96, 64], 0]);
    assert.deepStrictEqual(dims['blk.1.ffn_norm.weight'], [[64], 0]);
    assert.deepStrictEqual(dims['blk.1.attn_norm.weight'], [[64], 0]);
    assert.strictEqual(g.tensors.length, 3 + 2 * 9);
    assert.strictEqual(res.parameters, g.tensors.reduce((a, t) => a + t.dims.reduce((x, y) => x * y, 1), 0));
    checkLayout(g);
    // Sane values: norms near 1, weights ~ N(0, 1/fan_in).
    const norm = tensorF32(out, g, 'blk.0.attn_norm.weight');
    assert.ok(norm.every((x) => x > 0.7 && x < 1.3));
    const wq = tensorF32(out, g, 'blk.0.attn_q.weight');
    const mean = wq.reduce((a, x) => a + x, 0) / wq.length;
    const std = Math.sqrt(wq.reduce((a, x) => a + (x - mean) ** 2, 0) / wq.length);
    assert.ok(Math.abs(mean) < 0.01 && Math.abs(std - 1 / 8) < 0.01, `mean ${mean} std ${std}`);
  });

  it('qwen2 adds F32 q/k/v biases; phi3 fuses qkv and gate+up; --tied drops output.weight', () => {
    const q = path.join(dir, 'qwen2.gguf');
    makeModel(tiny({ out: q, arch: 'qwen2', type: 'f16' }));
    const gq = readGguf(q);
    const dq = Object.fromEntries(gq.tensors.map((t) => [t.name, [t.dims, t.typeId]]));
    assert.deepStrictEqual(dq['blk.0.attn_q.bias'], [[64], 0]);
    assert.deepStrictEqual(dq['blk.0.attn_k.bias'], [[32], 0]);
    assert.deepStrictEqual(dq['blk.0.attn_v.bias'], [[32], 0]);
    assert.deepStrictEqual(dq['blk.0.attn_q.weight'], [[64, 64], 1]);
    assert.strictEqual(gq.kv.get('qwen2.embedding_length')!.value, 64);
    assert.strictEqual(gq.kv.get('general.file_type')!.value, 1);
    checkLayout(gq);

    const p = path.join(dir, 'phi3.gguf');
    makeModel(tiny({ out: p, arch: 'phi3', tied: true, type: 'bf16' }));
    const gp = readGguf(p);
    const dp = Object.fromEntries(gp.tensors.map((t) => [t.name, [t.dims, t.typeId]]));
    assert.deepStrictEqual(dp['blk.0.attn_qkv.weight'], [[64, 64 + 2 * 32], 30]);
    assert.deepStrictEqual(dp['blk.0.ffn_up.weight'], [[64, 2 * 96], 30]);
    assert.deepStrictEqual(dp['blk.0.ffn_down.weight'], [[96, 64], 30]);
    for (const gone of ['blk.0.ffn_gate.weight', 'blk.0.attn_q.weight', 'output.weight']) assert.ok(!(gone in dp), gone);
    assert.strictEqual(gp.kv.get('phi3.block_count')!.value, 2);
    checkLayout(gp);
  });

  it('is deterministic per seed, and the seed fixes the weights whatever the type', () => {
    const a = path.join(dir, 'a.gguf'), b = path.join(dir, 'b.gguf'), c = path.join(dir, 'c.gguf');
    makeModel(tiny({ out: a }));
    makeModel(tiny({ out: b }));
    makeModel(tiny({ out: c, seed: 2 }));
    assert.strictEqual(sha(a), sha(b));
    assert.notStrictEqual(sha(a), sha(c));
    const h = path.join(dir, 'h.gguf');
    makeModel(tiny({ out: h, type: 'f16' }));
    const ga = readGguf(a), gh = readGguf(h);
    for (const name of ['token_embd.weight', 'blk.1.ffn_down.weight']) {
      const x = tensorF32(a, ga, name), y = tensorF32(h, gh, name);
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= Math.abs(x[i]) * 2 ** -11 + 2 ** -24, name);
    }
  });

  it('honours --alignment', () => {
    const out = path.join(dir, 'align.gguf');
    makeModel(tiny({ out, alignment: 256 }));
    const g = readGguf(out);
    assert.strictEqual(g.alignment, 256);
    checkLayout(g);
  });

  it('encodes f16 and bf16 with round-to-nearest-even', () => {
    const cases: [number, number][] = [
      [0, 0], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e9, 0x7c00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [2 ** -24, 1], [2 ** -25, 0], [3 * 2 ** -25, 2], [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01], [0.1, 0x2e66],
      [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal rounds up to the smallest normal
    ];
    for (const [x, h] of cases) assert.strictEqual(f32ToF16Bits(x), h, `f16(${x})`);
    assert.strictEqual(f32ToF16Bits(NaN) & 0x7e00, 0x7e00);
    const bcases: [number, number][] = [[1, 0x3f80], [-2, 0xc000], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [Infinity, 0x7f80], [0.1, 0x3dcd]];
    for (const [x, b] of bcases) assert.strictEqual(f32ToBf16Bits(x), b, `bf16(${x})`);
    assert.strictEqual(f32ToBf16Bits(NaN) & 0x7fc0, 0x7fc0);
  });

  it('matches the native f16/bf16 conversion when the binding is built', function () {
    const b = tryBinding();
    if (!b) this.skip();
    const x = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 1.7) * 2 ** ((i % 40) - 26));
    for (const [type, enc] of [[GGML_TYPE.F16, f32ToF16Bits], [GGML_TYPE.BF16, f32ToBf16Bits]] as const) {
      const native = new Uint16Array(b.kernels.quantizeRow(type, x).buffer.slice(0));
      const ours = Uint16Array.from(x, enc);
      assert.deepStrictEqual(ours, native, `type ${type}`);
    }
  });

  it('builds a synthetic SentencePiece vocabulary every piece of which is reachable by merges', () => {
    for (const n of [260, 1000, 32000]) {
      const v = syntheticVocab(n);
      assert.strictEqual(v.tokens.length, n);
      assert.strictEqual(new Set(v.tokens).size, n);
      assert.deepStrictEqual(v.tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
      assert.strictEqual(v.tokens[258], '<0xFF>');
      assert.ok(v.types.subarray(3, 259).every((t) => t === 6));
      const set = new Set(v.tokens);
      for (let i = 259; i < n; i++) {
        const p = v.tokens[i];
        assert.strictEqual(v.types[i], 1);
        if ([...p].length > 1) assert.ok(set.has(p.slice(0, -1)), `${p} has no prefix piece`);
        if (i > 259) assert.ok(v.scores[i] < v.scores[i - 1]);
      }
    }
  });

  it('quantizes whole rows through the injected quantizer', () => {
    const out = path.join(dir, 'q.gguf');
    const calls: [number, number][] = [];
    makeModel(tiny({
      out, type: 'q8_0',
      quantizeRow: (type, src) => { calls.push([type, src.length]); return new Uint8Array((src.length / 32) * 34); },
    }));
    assert.ok(calls.length > 0 && calls.every(([t, n]) => t === GGML_TYPE.Q8_0 && n % 32 === 0));
    const g = readGguf(out);
    assert.strictEqual(g.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!.typeId, GGML_TYPE.Q8_0);
    assert.strictEqual(g.tensors.find((t) => t.name === 'blk.0.ffn_norm.weight')!.typeId, GGML_TYPE.F32);
    assert.strictEqual(g.kv.get('general.file_type')!.value, 7);
    checkLayout(g);
    // A quantizer that returns the wrong size is caught, and the partial file removed.
    const bad = path.join(dir, 'bad.gguf');
    assert.throws(() => makeModel(tiny({ out: bad, type: 'q8_0', quantizeRow: (_t, src) => new Uint8Array(src.length * 2) })), FlashdipError);
    assert.ok(!fs.existsSync(bad));
  });

  it('quantizes with the native quantizer when the binding is built', function () {
    const b = tryBinding();
    if (!b) this.skip();
    const f = path.join(dir, 'nf.gguf'), q = path.join(dir, 'nq.gguf');
    makeModel(tiny({ out: f }));
    for (const type of ['q8_0', 'q4_0'] as const) {
      makeModel(tiny({ out: q, type }));
      const gf = readGguf(f), gq = readGguf(q);
      checkLayout(gq);
      const t = gq.tensors.find((x) => x.name === 'blk.0.ffn_up.weight')!;
      const bytes = readTensorBytes(q, gq, t, ggmlTensorBytes(t.typeId, t.dims));
      const deq: Float32Array = b.kernels.dequantizeRow(t.typeId, new Uint8Array(bytes), t.dims[0] * t.dims[1]);
      const ref = tensorF32(f, gf, 'blk.0.ffn_up.weight');
      let err = 0, norm = 0;
      for (let i = 0; i < ref.length; i++) { err += (deq[i] - ref[i]) ** 2; norm += ref[i] ** 2; }
      assert.ok(Math.sqrt(err / norm) < (type === 'q8_0' ? 0.01 : 0.15), `${type}: relative error ${Math.sqrt(err / norm)}`);
    }
  });

  it('copies every tokenizer.* key, with its type, from --vocab-from', function () {
    const src = path.join(VOCAB_DIR, 'ggml-vocab-llama-spm.gguf');
    if (!fs.existsSync(src)) this.skip();
    const out = path.join(dir, 'spm.gguf');
    const res = makeModel(tiny({ out, vocab: undefined, vocabFrom: src, readGguf: testVocabReader }));
    const gs = readGguf(src), go = readGguf(out);
    const keys = [...gs.kv.keys()].filter((k) => k.startsWith('tokenizer.'));
    assert.ok(keys.length >= 5);
    for (const k of keys) assert.deepStrictEqual(go.kv.get(k), gs.kv.get(k), k);
    const n = (gs.kv.get('tokenizer.ggml.tokens')!.value as string[]).length;
    assert.strictEqual(res.vocab, n);
    assert.deepStrictEqual(go.tensors.find((t) => t.name === 'token_embd.weight')!.dims, [64, n]);
    assert.throws(() => makeModel(tiny({ out, vocab: 300, vocabFrom: src, readGguf: testVocabReader })), /does not match/);
  });

  it('reads --vocab-from with lib/gguf.ts when the binding is built', function () {
    const src = path.join(VOCAB_DIR, 'ggml-vocab-phi-3.gguf');
    if (!tryBinding() || !fs.existsSync(src)) this.skip();
    const out = path.join(dir, 'phi3-vocab.gguf');
    makeModel(tiny({ out, arch: 'phi3', vocab: undefined, vocabFrom: src }));
    const gs = readGguf(src), go = readGguf(out);
    for (const [k, v] of gs.kv) if (k.startsWith('tokenizer.')) assert.deepStrictEqual(go.kv.get(k), v, k);
  });

  it('rejects impossible shapes with ERR_INVALID_ARGUMENT', () => {
    const out = path.join(dir, 'x.gguf');
    const bad = (o: Partial<MakeModelOptions>, re: RegExp) =>
      assert.throws(() => makeModel(tiny({ out, ...o })), (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_INVALID_ARGUMENT' && re.test(e.message));
    bad({ heads: 5 }, /heads/);
    bad({ kvHeads: 3 }, /kv heads/);
    bad({ dim: 48, heads: 16 }, /even/);
    bad({ ffn: 100, type: 'q8_0', quantizeRow: () => new Uint8Array(0) }, /block size 32/);
    bad({ type: 'q4_k', quantizeRow: () => new Uint8Array(0) }, /block size 256/);
    bad({ vocab: 100 }, /vocab/);
    bad({ layers: 0 }, /layers/);
    bad({ arch: 'gpt2' as never }, /arch/);
    bad({ type: 'q3_m' as never }, /type/);
  });
});
