// Dense parity with llama.cpp on the real stories260K model: prompt tokens, 64 greedy tokens and
// logits, for every reference; prefill logits at all positions; F16 KV cache against llama.cpp's.
import * as assert from 'assert';
import * as path from 'path';
import { loadModel, Model } from '../../lib';
import { maxAbsDiff, promptReferences, readJson, REFERENCE, STORIES } from '../helpers';

describe('40 model parity with llama.cpp (stories260K)', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  for (const ref of promptReferences()) {
    it(`greedy "${ref.id}": prompt tokens, 64 tokens, logits (f32 KV)`, async () => {
      assert.deepStrictEqual(model.tokenize(ref.prompt_text, { addSpecial: true }), ref.prompt_tokens);
      const session = model.createSession({ contextSize: 512, kvCacheType: 'f32' });
      const logits: Float32Array[] = [];
      const tokens: number[] = [];
      for await (const piece of session.generate(ref.prompt_tokens, {
        maxTokens: 64,
        temperature: 0,
        onLogits: (l) => logits.push(l.slice()),
      }))
        if (piece.token >= 0) tokens.push(piece.token);
      assert.deepStrictEqual(session.tokens.slice(ref.prompt_tokens.length), ref.generated_tokens);
      for (let k = 0; k < ref.first_logits.length; k++) {
        const d = maxAbsDiff(logits[k], ref.first_logits[k]);
        assert.ok(d <= 1e-3, `step ${k}: max |logit diff| ${d}`);
      }
      await session.dispose();
    });

    it(`greedy "${ref.id}" with an f16 KV cache matches llama.cpp's f16 run`, async () => {
      const session = model.createSession({ contextSize: 512, kvCacheType: 'f16' });
      const logits: Float32Array[] = [];
      for await (const _ of session.generate(ref.prompt_tokens, { maxTokens: 64, temperature: 0, onLogits: (l) => logits.push(l.slice()) }));
      const f16 = ref.llamacpp_default_kv_f16;
      assert.deepStrictEqual(session.tokens.slice(ref.prompt_tokens.length), f16.generated_tokens);
      for (let k = 0; k < f16.first_logits.length; k++) {
        const d = maxAbsDiff(logits[k], f16.first_logits[k]);
        assert.ok(d <= 0.05, `step ${k}: max |logit diff| ${d}`);
      }
      await session.dispose();
    });
  }

  it('prefill logits at every position of one batch', async () => {
    const ref = readJson(path.join(REFERENCE, 'prefill_all_positions.json'));
    const tokens: number[] = ref.prompt_tokens ?? ref.tokens;
    const logitsRef: number[][] = ref.logits ?? ref.all_logits;
    for (const batchSize of [64, 7, 1]) {
      const session = model.createSession({ contextSize: 512, kvCacheType: 'f32', batchSize });
      const all = await session.evaluate(tokens, { allLogits: true });
      const vocab = model.info.vocabSize;
      let worst = 0;
      for (let p = 0; p < tokens.length; p++) worst = Math.max(worst, maxAbsDiff(all.subarray(p * vocab, (p + 1) * vocab), logitsRef[p]));
      assert.ok(worst <= 1e-3, `batch ${batchSize}: max |logit diff| ${worst}`);
      await session.dispose();
    }
  });
});
