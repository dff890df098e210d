// Hostile metadata in an otherwise valid stories260K: every count that sizes an allocation is checked
// against the tensors before anything is allocated, and implausible hyperparameters are refused at
// load with ERR_MODEL_INVALID (an unsupported tokenizer with ERR_UNSUPPORTED_ARCH), never accepted
// to compute garbage or failing later with another code.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError, loadModel, readGguf } from '../../lib';
import { GgufValueType, GgufWriter, metadataEntries } from '../../lib/gguf-writer';
import { rewriteGguf, STORIES, tmpFile } from '../helpers';

type Edit = { type: GgufValueType; value: unknown; elem?: GgufValueType } | null;  // null drops the key

// A copy of stories260K with some metadata keys replaced, added (edits) or dropped (null).
function variant(name: string, edits: Record<string, Edit>): string {
  const out = tmpFile(`${name}.gguf`);
  const h = readGguf(STORIES);
  const w = new GgufWriter(out, { alignment: h.alignment });
  for (const e of metadataEntries(h, STORIES, (k) => k !== 'general.alignment' && !(k in edits))) w.addKv(e.key, e.type, e.value, e.elem);
  for (const [key, e] of Object.entries(edits)) if (e) w.addKv(key, e.type, e.value, e.elem);
  for (const t of h.tensors) w.addTensor(t.name, t.dims, t.type);
  w.writeHeader();
  const fd = fs.openSync(STORIES, 'r');
  try {
    for (const t of h.tensors) {
      const b = Buffer.alloc(t.bytes);
      fs.readSync(fd, b, 0, t.bytes, h.dataOffset + t.offset);
      w.writeTensorData(t.name, b);
    }
  } finally {
    fs.closeSync(fd);
  }
  w.close();
  return out;
}

const u32 = (value: number): Edit => ({ type: GgufValueType.UINT32, value });
const f32 = (value: number): Edit => ({ type: GgufValueType.FLOAT32, value });

async function loadCode(file: string): Promise<string> {
  try {
    const m = await loadModel(file);
    await m.dispose();
    return 'loaded';
  } catch (err) {
    assert.ok(err instanceof FlashdipError, String(err));
    return err.code;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

describe('41 hostile metadata', () => {
  it('block counts that do not match the tensors are ERR_MODEL_INVALID', async () => {
    assert.strictEqual(await loadCode(variant('blocks-4', { 'llama.block_count': u32(4) })), 'ERR_MODEL_INVALID');
    assert.strictEqual(await loadCode(variant('blocks-6', { 'llama.block_count': u32(6) })), 'ERR_MODEL_INVALID');
    assert.strictEqual(await loadCode(variant('blocks-1', { 'llama.block_count': u32(1) })), 'ERR_MODEL_INVALID');
  });

  it('a block count of 8,000,000 in a 1.2 MB file is refused before anything is allocated (peak RSS < 300 MB)', function () {
    this.timeout(120000);
    const file = variant('blocks-8m', { 'llama.block_count': u32(8_000_000) });
    try {
      // A child of its own, so the peak resident set is this load's alone.
      const dist = path.resolve(__dirname, '../../dist/index.js');
      assert.ok(fs.existsSync(dist), `${dist} is missing: build the TypeScript first (npx tsc -p tsconfig.json)`);
      const code = `require(${JSON.stringify(dist)}).loadModel(${JSON.stringify(file)}).then(
        () => console.log(JSON.stringify({ code: 'loaded', maxRSS: process.resourceUsage().maxRSS })),
        (e) => console.log(JSON.stringify({ code: e.code, maxRSS: process.resourceUsage().maxRSS })))`;
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 100000 });
      assert.strictEqual(r.status, 0, `${r.signal} ${r.stderr}`);
      const { code: got, maxRSS } = JSON.parse(r.stdout);
      assert.strictEqual(got, 'ERR_MODEL_INVALID');
      assert.ok(maxRSS < 300 * 1024, `peak RSS ${Math.round(maxRSS / 1024)} MB`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('a vocabulary that differs from the embedding rows is ERR_MODEL_INVALID', async () => {
    const h = readGguf(STORIES);
    const tokens = h.metadata['tokenizer.ggml.tokens'] as string[];
    const scores = Array.from(h.metadata['tokenizer.ggml.scores'] as Float32Array);
    const types = Array.from(h.metadata['tokenizer.ggml.token_type'] as Int32Array);
    const vocab = (n: number): Record<string, Edit> => ({
      'tokenizer.ggml.tokens': { type: GgufValueType.ARRAY, elem: GgufValueType.STRING, value: Array.from({ length: n }, (_, i) => tokens[i] ?? `<extra_${i}>`) },
      'tokenizer.ggml.scores': { type: GgufValueType.ARRAY, elem: GgufValueType.FLOAT32, value: Array.from({ length: n }, (_, i) => scores[i] ?? 0) },
      'tokenizer.ggml.token_type': { type: GgufValueType.ARRAY, elem: GgufValueType.INT32, value: Array.from({ length: n }, (_, i) => types[i] ?? 1) },
    });
    assert.strictEqual(await loadCode(variant('vocab-small', vocab(tokens.length - 12))), 'ERR_MODEL_INVALID');
    assert.strictEqual(await loadCode(variant('vocab-big', vocab(tokens.length + 1))), 'ERR_MODEL_INVALID');
    assert.strictEqual(await loadCode(variant('vocab-same', vocab(tokens.length))), 'loaded');
  });

  it('non-finite or non-positive rms epsilon, rope scaling and rope base are ERR_MODEL_INVALID', async () => {
    for (const v of [Infinity, -Infinity, NaN, -1e-5, 0])
      assert.strictEqual(await loadCode(variant('eps', { 'llama.attention.layer_norm_rms_epsilon': f32(v) })), 'ERR_MODEL_INVALID', `eps ${v}`);
    for (const v of [Infinity, NaN, -2])
      assert.strictEqual(await loadCode(variant('scale', { 'llama.rope.scale_linear': f32(v) })), 'ERR_MODEL_INVALID', `scale_linear ${v}`);
    for (const v of [Infinity, NaN, -4])
      assert.strictEqual(
        await loadCode(variant('factor', { 'llama.rope.scaling.type': { type: GgufValueType.STRING, value: 'linear' }, 'llama.rope.scaling.factor': f32(v) })),
        'ERR_MODEL_INVALID',
        `scaling.factor ${v}`,
      );
    for (const v of [Infinity, NaN, 0, -10000])
      assert.strictEqual(await loadCode(variant('base', { 'llama.rope.freq_base': f32(v) })), 'ERR_MODEL_INVALID', `freq_base ${v}`);
    // llama.cpp reads a rope scale of 0 as "not set"; so does flashdip. Plausible values load.
    assert.strictEqual(await loadCode(variant('scale0', { 'llama.rope.scale_linear': f32(0) })), 'loaded');
    assert.strictEqual(await loadCode(variant('ok', { 'llama.rope.scale_linear': f32(2), 'llama.attention.layer_norm_rms_epsilon': f32(1e-6) })), 'loaded');
  });

  it('token types outside llama.cpp set (0..6) are ERR_MODEL_INVALID at load', async () => {
    const n = (readGguf(STORIES).metadata['tokenizer.ggml.tokens'] as string[]).length;
    const types = (v: number): Record<string, Edit> => ({
      'tokenizer.ggml.token_type': { type: GgufValueType.ARRAY, elem: GgufValueType.INT32, value: new Array(n).fill(v) },
    });
    assert.strictEqual(await loadCode(variant('types99', types(99))), 'ERR_MODEL_INVALID');
    assert.strictEqual(await loadCode(variant('types-1', types(-1))), 'ERR_MODEL_INVALID');
    assert.strictEqual(await loadCode(variant('types0', types(0))), 'loaded');
  });

  it('a tokenizer model flashdip does not implement is ERR_UNSUPPORTED_ARCH', async () => {
    const model = (v: string): Record<string, Edit> => ({ 'tokenizer.ggml.model': { type: GgufValueType.STRING, value: v } });
    assert.strictEqual(await loadCode(variant('t5', model('t5'))), 'ERR_UNSUPPORTED_ARCH');
    assert.strictEqual(await loadCode(variant('bert', model('bert'))), 'ERR_UNSUPPORTED_ARCH');
  });

  it('weights that hold NaN: generate gives ERR_MODEL_INVALID, not an argument error (found by scripts/fuzz.ts)', async () => {
    const nan = new Float32Array(64).fill(NaN);
    const file = rewriteGguf(STORIES, tmpFile('nan-norm.gguf'), { data: { 'output_norm.weight': new Uint8Array(nan.buffer) } });
    const model = await loadModel(file);
    try {
      const session = model.createSession();
      await assert.rejects(async () => {
        for await (const _ of session.generate('Once', { maxTokens: 2, temperature: 0 })) void _;
      }, (e: FlashdipError) => e.code === 'ERR_MODEL_INVALID' && /no finite logit/.test(e.message));
    } finally {
      await model.dispose();
      fs.rmSync(file, { force: true });
    }
  });
});
