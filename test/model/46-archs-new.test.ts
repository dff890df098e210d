// Parity with llama.cpp for qwen3, gemma, gemma2, gemma3 (and a llama control): each
// fixture of test/fixtures/archs (recorded by bench/arch-fixtures.ts with node-llama-cpp) names a
// random-weight f32 model that make-model regenerates from its seed; flashdip must tokenize the
// prompt the same, generate the same 16 greedy tokens and give the same logits after the prompt
// within 1e-3 (f32 KV cache). The sliding-window fixtures have a window (8) shorter than the prompt.
// DIP and DIP-CA then run on a GeGLU MLP (gemma3) in the DIP layout under a memory budget.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel } from '../../lib';
import { convert } from '../../lib/convert';
import { ArchFixture, FIXTURES, fixtureModel } from '../../bench/arch-fixtures';
import { GGML_TYPE } from '../../lib/ggml-types';
import { GgufValueType, GgufWriter } from '../../lib/gguf-writer';
import { syntheticVocab } from '../../scripts/make-model';
import { maxAbsDiff, readJson, tmpFile } from '../helpers';

const fixtures = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => readJson<ArchFixture>(path.join(FIXTURES, f)));

describe('46 new architectures: parity with llama.cpp (random weights)', function () {
  this.timeout(120000);
  const files: string[] = [];
  after(() => files.forEach((f) => fs.rmSync(f, { force: true })));

  it('has a fixture for each new architecture', () => {
    assert.deepStrictEqual(fixtures.map((f) => f.model.arch).filter((a) => a !== 'llama').sort(), ['gemma', 'gemma2', 'gemma3', 'qwen3']);
  });

  it('refuses LongRoPE files (Phi-3.5, Phi-4-mini) with ERR_UNSUPPORTED_ARCH, and value_length != key_length with ERR_MODEL_INVALID', async () => {
    const write = (name: string, extra: (w: GgufWriter) => void, tensor: string) => {
      const file = tmpFile(name);
      files.push(file);
      const w = new GgufWriter(file);
      w.addString('general.architecture', 'phi3');
      for (const [k, v] of [['embedding_length', 64], ['block_count', 1], ['attention.head_count', 4], ['feed_forward_length', 128]] as const)
        w.addU32(`phi3.${k}`, v);
      const v = syntheticVocab(260);
      w.addString('tokenizer.ggml.model', 'llama');
      w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, v.tokens);
      w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, v.scores);
      w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, v.types);
      extra(w);
      w.addTensor(tensor, [8], GGML_TYPE.F32);
      w.writeHeader();
      w.writeTensorData(tensor, new Float32Array(8).fill(1));
      w.close();
      return file;
    };
    const code = async (file: string) => loadModel(file).then(() => 'loaded', (e) => `${e.code}: ${e.message}`);
    const longrope = await code(write('longrope.gguf', () => {}, 'rope_factors_long.weight'));
    assert.match(longrope, /^ERR_UNSUPPORTED_ARCH: .*LongRoPE/);
    const vlen = await code(write('vlen.gguf', (w) => { w.addU32('phi3.attention.key_length', 16); w.addU32('phi3.attention.value_length', 32); }, 'x'));
    assert.match(vlen, /^ERR_MODEL_INVALID: .*value_length 32 differs from key_length 16/);
  });

  it('dip and dip-ca on a GeGLU MLP (gemma3, DIP layout, under a budget): density 1 is dense, keeping half prunes', async () => {
    const fx = fixtures.find((f) => f.id === 'gemma3')!;
    const src = tmpFile('arch-gemma3-src.gguf'), dip = tmpFile('arch-gemma3.dip.gguf');
    files.push(src, dip);
    fixtureModel(fx.model, src);
    await convert(src, dip, { type: 'f32' });
    // ~9.3 MB of static weights (the 32000-token embedding) and the KV cache, and about half the MLP rows.
    const model = await loadModel(dip, { memoryBudget: 9_600_000 });
    try {
      const logits = async (sparsity: object) => {
        const s = model.createSession({ contextSize: 128, kvCacheType: 'f32', sparsity });
        const l = (await s.evaluate(fx.promptTokens)).slice();
        const st = s.stats().sparsity;
        await s.dispose();
        return { l, st };
      };
      const dense = await logits({ method: 'dense' });
      let d = 0;
      fx.logitIds.forEach((id, i) => { d = Math.max(d, Math.abs(dense.l[id] - fx.logits[i])); });
      assert.ok(d <= 1e-3, `dense DIP layout vs llama.cpp: ${d}`);
      for (const method of ['dip', 'dip-ca']) {
        const full = await logits({ method, density: 1 });
        assert.ok(maxAbsDiff(full.l, dense.l) <= 1e-4, `${method} at density 1`);
        const half = await logits({ method, keepX: 0.5, keepH: 0.5, gamma: 0.5 });
        const diff = maxAbsDiff(half.l, dense.l);
        assert.ok(Number.isFinite(diff) && diff > 1e-3, `${method} keeping half changes the logits (${diff})`);
        for (const layer of half.st.layers) {
          // Per token: half of x's columns and half of h's.
          const ug = (layer.ugHits + layer.ugMisses) / fx.promptTokens.length;
          const down = (layer.downHits + layer.downMisses) / fx.promptTokens.length;
          assert.deepStrictEqual([ug, down], [fx.model.dim / 2, fx.model.ffn / 2], method);
        }
        // Attention DIP on the attention rows (q/k norms, GQA): half of the q/k/v input's columns.
        const attn = await logits({ method, density: 1, attentionDensity: 0.5 });
        assert.ok(maxAbsDiff(attn.l, dense.l) > 1e-3, `${method} with attention density 0.5 changes the logits`);
        for (const layer of attn.st.layers)
          assert.strictEqual((layer.qkvHits + layer.qkvMisses) / fx.promptTokens.length, fx.model.dim / 2);
      }
    } finally {
      await model.dispose();
    }
  });

  for (const fx of fixtures) {
    describe(`${fx.id} (${fx.what}; ${fx.llamaCpp.release})`, () => {
      let file: string;
      before(() => {
        file = tmpFile(`arch-${fx.id}.gguf`);
        files.push(file);
        fixtureModel(fx.model, file);
      });

      it('prompt tokens, 16 greedy tokens, logits within 1e-3 (f32 KV)', async () => {
        const model = await loadModel(file);
        try {
          assert.strictEqual(model.info.arch, fx.model.arch);
          assert.deepStrictEqual(model.tokenize(fx.prompt, { addSpecial: true }), fx.promptTokens);
          const session = model.createSession({ contextSize: 128, kvCacheType: 'f32' });
          let first: Float32Array | undefined;
          for await (const _ of session.generate(fx.promptTokens, {
            maxTokens: fx.greedyTokens.length,
            temperature: 0,
            onLogits: (l) => { first ??= l.slice(); },
          }));
          assert.deepStrictEqual(session.tokens.slice(fx.promptTokens.length), fx.greedyTokens);
          let d = 0;
          fx.logitIds.forEach((id, i) => { d = Math.max(d, Math.abs(first![id] - fx.logits[i])); });
          assert.ok(d <= 1e-3, `max |logit diff| ${d}`);
          await session.dispose();
        } finally {
          await model.dispose();
        }
      });
    });
  }
});
