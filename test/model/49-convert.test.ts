// flashdip convert: the input-major DIP layout computes what the original computes (float
// summation order for --type keep on F32; the quantization bound otherwise), for every architecture,
// and DIP on it gives the same perplexity as on the standard layout.
import * as assert from 'assert';
import * as path from 'path';
import { FlashdipError, loadModel, perplexity, readGguf } from '../../lib';
import { convert } from '../../lib/convert';
import { splitBytes } from '../../lib/sparsity';
import { ARCHS, makeModel } from '../../scripts/make-model';
import { promptReferences, readJson, REFERENCE, sessionScratch, STORIES, tmpFile } from '../helpers';

async function logits(file: string, tokens: number[]): Promise<Float32Array> {
  const m = await loadModel(file);
  const s = m.createSession({ kvCacheType: 'f32', contextSize: 128 });
  const l = (await s.evaluate(tokens, { allLogits: true })).slice();
  await m.dispose();
  return l;
}

function relDiff(a: Float32Array, ref: Float32Array): number {
  let mx = 0, d = 0;
  for (let i = 0; i < ref.length; i++) (mx = Math.max(mx, Math.abs(ref[i]))), (d = Math.max(d, Math.abs(a[i] - ref[i])));
  return d / mx;
}

describe('49 convert to the DIP layout', function () {
  this.timeout(120000);
  const dip = tmpFile('stories-dip.gguf');
  before(async () => {
    process.removeAllListeners('warning');
    await convert(STORIES, dip);
  });

  it('keeps metadata and non-MLP, non-attention tensors, adds the layout keys and four row tensors per layer', () => {
    const a = readGguf(STORIES), b = readGguf(dip);
    assert.strictEqual(b.metadata['flashdip.layout'], 'dip-input-major');
    assert.strictEqual(b.metadata['flashdip.layout_version'], 2);
    assert.strictEqual(b.alignment, 4096);
    for (const t of a.tensors.filter((t) => !/(ffn_(gate|up|down)|attn_(q|k|v|output))\.weight$/.test(t.name)))
      assert.deepStrictEqual(b.tensors.find((u) => u.name === t.name)?.dims, t.dims, t.name);
    assert.deepStrictEqual(b.tensors.find((t) => t.name === 'blk.0.ffn_gate_up.dip.weight')?.dims, [2 * 172, 64]);
    assert.deepStrictEqual(b.tensors.find((t) => t.name === 'blk.0.ffn_down.dip.weight')?.dims, [64, 172]);
    assert.deepStrictEqual(b.tensors.find((t) => t.name === 'blk.0.attn_qkv.dip.weight')?.dims, [64 + 2 * 32, 64]);
    assert.deepStrictEqual(b.tensors.find((t) => t.name === 'blk.0.attn_output.dip.weight')?.dims, [64, 64]);
    for (const t of b.tensors) assert.strictEqual((b.dataOffset + t.offset) % 4096, 0, t.name);
  });

  it('--type keep: same logits up to summation order (1e-5 of the largest), same greedy tokens', async () => {
    const ref = promptReferences()[0];
    assert.ok(relDiff(await logits(dip, ref.prompt_tokens), await logits(STORIES, ref.prompt_tokens)) <= 1e-5);
    const m = await loadModel(dip);
    const s = m.createSession({ kvCacheType: 'f32' });
    for await (const _ of s.generate(ref.prompt_tokens, { maxTokens: 64, temperature: 0 }));
    assert.deepStrictEqual(s.tokens.slice(ref.prompt_tokens.length), ref.generated_tokens);
    await m.dispose();
  });

  it('DIP and DIP-CA give the same perplexity on both layouts', async () => {
    const text = readJson(path.join(REFERENCE, 'perplexity_tinystories.json')).text;
    for (const sparsity of [{ method: 'dip', density: 0.5 }, { method: 'dip-ca', density: 0.5, gamma: 0.3 }] as const) {
      // The converted file's embedding table is read per token, not held, and its attention rows share
      // the cache with the MLP: the budget that gives the MLP the same cache fraction (each with its
      // session's scratch, which the budget counts).
      const scratchA = await sessionScratch(STORIES, 128), scratchB = await sessionScratch(dip, 128);
      const a = await loadModel(STORIES, { sparsity, memoryBudget: 900_000 + scratchA });
      const pa = await perplexity(a, text, { ctx: 128, maxTokens: 500 });
      const split = splitBytes(readGguf(dip)), std = a.defaults.bytes;
      const b = await loadModel(dip, { sparsity, memoryBudget: Math.round(900_000 + scratchB - std.static + split.static + pa.cacheFraction * split.attn) });
      const pb = await perplexity(b, text, { ctx: 128, maxTokens: 500 });
      assert.ok(Math.abs(pa.cacheFraction - pb.cacheFraction) < 1e-6);
      assert.ok(Math.abs(pa.ppl / pb.ppl - 1) <= 1e-5, `${sparsity.method}: ${pa.ppl} vs ${pb.ppl}`);
      await a.dispose();
      await b.dispose();
    }
  });

  for (const arch of ARCHS)
    for (const [from, to, bound] of [['f32', 'f16', 2e-3], ['q8_0', 'keep', 8e-2], ['f32', 'q4_0', 0.6]] as const) {
      it(`${arch} ${from} -> ${to}: logits within ${bound} of the original`, async () => {
        const src = tmpFile(`${arch}-${from}.gguf`), out = tmpFile(`${arch}-${from}-${to}.dip.gguf`);
        makeModel({ out: src, arch, dim: 128, layers: 2, heads: 4, kvHeads: 2, ffn: 256, vocab: 300, ctx: 128, type: from, seed: 5 });
        await convert(src, out, { type: to });
        const toks = [1, 5, 9, 200, 33, 7];
        const d = relDiff(await logits(out, toks), await logits(src, toks));
        assert.ok(d <= bound, `relative logit difference ${d}`);
      });
    }

  it('rejects bad options and converted input (a file problem: ERR_MODEL_INVALID)', async () => {
    await assert.rejects(convert(STORIES, tmpFile('x.gguf'), { type: 'q3' as never }), (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_INVALID_ARGUMENT');
    await assert.rejects(convert(STORIES, tmpFile('x.gguf'), { alignment: 100 }), (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_INVALID_ARGUMENT');
    await assert.rejects(convert(dip, tmpFile('x.gguf')), (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_MODEL_INVALID' && /already in the DIP layout/.test(e.message));
  });
});
