// The GGUF reader through the binding: metadata of the real model, and typed errors (never a crash)
// for missing, truncated and corrupted files.
import * as assert from 'assert';
import * as fs from 'fs';
import { FlashdipError, loadModel, readGguf } from '../../lib';
import { STORIES, tmpFile } from '../helpers';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FlashdipError, `not a FlashdipError: ${err}`);
    return err.code;
  }
  return 'ok';
}

describe('10 gguf reader', () => {
  const original = fs.readFileSync(STORIES);

  it('reads the header and metadata of stories260K', () => {
    const h = readGguf(STORIES);
    assert.strictEqual(h.version, 3);
    assert.strictEqual(h.tensors.length, 48);
    assert.strictEqual(Object.keys(h.metadata).length, 19);
    assert.strictEqual(h.metadata['general.architecture'], 'llama');
    assert.strictEqual(h.metadata['llama.embedding_length'], 64);
    assert.strictEqual(h.metadata['llama.attention.head_count_kv'], 4);
    assert.strictEqual((h.metadata['tokenizer.ggml.tokens'] as string[]).length, 512);
    assert.ok(h.metadata['tokenizer.ggml.scores'] instanceof Float32Array);
    const q = h.tensors.find((t) => t.name === 'blk.0.attn_k.weight')!;
    assert.deepStrictEqual(q.dims, [64, 32]);
    assert.strictEqual(q.typeName, 'f32');
    assert.strictEqual(q.bytes, 64 * 32 * 4);
  });

  it('missing file and directory: ERR_IO', async () => {
    assert.strictEqual(codeOf(() => readGguf('/nonexistent/model.gguf')), 'ERR_IO');
    assert.strictEqual(codeOf(() => readGguf('/tmp')), 'ERR_IO');
    await assert.rejects(loadModel('/nonexistent/model.gguf'), { code: 'ERR_IO' });
  });

  it('bad magic and bad version', () => {
    const f = tmpFile('magic.gguf');
    const b = Buffer.from(original);
    b.write('GGML', 0, 'latin1');
    fs.writeFileSync(f, b);
    assert.strictEqual(codeOf(() => readGguf(f)), 'ERR_GGUF_BAD_MAGIC');
    const v = Buffer.from(original);
    v.writeUInt32LE(1, 4);
    fs.writeFileSync(f, v);
    assert.strictEqual(codeOf(() => readGguf(f)), 'ERR_GGUF_BAD_VERSION');
    fs.rmSync(f);
  });

  it('every cut through the header, and cuts through the data, give ERR_GGUF_TRUNCATED', async () => {
    const f = tmpFile('cut.gguf');
    const headerEnd = readGguf(STORIES).dataOffset;
    const cuts: number[] = [];
    for (let c = 0; c <= headerEnd + 64; c++) cuts.push(c);
    for (let c = headerEnd + 64; c < original.length; c += 4099) cuts.push(c);
    cuts.push(original.length - 1);
    for (const cut of cuts) {
      fs.writeFileSync(f, original.subarray(0, cut));
      const code = codeOf(() => readGguf(f));
      if (code !== 'ERR_GGUF_TRUNCATED') assert.fail(`cut at ${cut}: ${code}`);
    }
    // And the async loader reports the same, without crashing.
    for (const cut of [0, 3, 100, headerEnd - 1, original.length - 1]) {
      fs.writeFileSync(f, original.subarray(0, cut));
      await assert.rejects(loadModel(f), (e: FlashdipError) => e instanceof FlashdipError && e.code === 'ERR_GGUF_TRUNCATED');
    }
    fs.rmSync(f);
  });

  it('random corruption of the header: a model or a typed error, never a crash', async () => {
    const f = tmpFile('mut.gguf');
    const headerEnd = readGguf(STORIES).dataOffset;
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let rejected = 0;
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(original);
      for (let e = 0; e < 3; e++) b[Math.floor(rnd() * headerEnd)] = Math.floor(rnd() * 256);
      fs.writeFileSync(f, b);
      try {
        const m = await loadModel(f);
        await m.dispose();
      } catch (err) {
        assert.ok(err instanceof FlashdipError, `mutation ${i}: ${err}`);
        rejected++;
      }
    }
    assert.ok(rejected > 0);
    fs.rmSync(f);
  });
});
