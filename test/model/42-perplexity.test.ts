// Dense perplexity against llama.cpp's teacher-forced references (chunks of 255 tokens + BOS).
import * as assert from 'assert';
import * as path from 'path';
import { loadModel, Model, perplexity } from '../../lib';
import { logProb } from '../../lib/perplexity';
import { readJson, REFERENCE, STORIES } from '../helpers';

describe('42 perplexity (stories260K)', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  for (const name of ['perplexity_tinystories.json', 'perplexity_alice.json']) {
    it(`${name}: same tokens, sum of log-probs within 0.01, perplexity within 1e-4 relative`, async () => {
      const ref = readJson(path.join(REFERENCE, name));
      assert.deepStrictEqual(model.tokenize(ref.text), ref.tokens);
      const r = await perplexity(model, ref.text, { ctx: 256 });
      assert.strictEqual(r.tokens, ref.n_tokens);
      assert.ok(Math.abs(r.sumLogProb - ref.sum_logprob) <= 0.01, `sum ${r.sumLogProb} vs ${ref.sum_logprob}`);
      assert.ok(Math.abs(r.ppl / ref.perplexity - 1) <= 1e-4, `ppl ${r.ppl} vs ${ref.perplexity}`);
    });
  }

  it('log-softmax is computed stably in float64', () => {
    const l = new Float32Array([1000, 1000]);
    assert.ok(Math.abs(logProb(l, 0) - Math.log(0.5)) < 1e-12);
  });

  it('sliding windows score every token once, with more context than chunks', async () => {
    const ref = readJson(path.join(REFERENCE, 'perplexity_tinystories.json'));
    const chunked = await perplexity(model, ref.text, { ctx: 128, maxTokens: 600 });
    const sliding = await perplexity(model, ref.text, { ctx: 128, mode: 'sliding', stride: 64, maxTokens: 600 });
    assert.strictEqual(sliding.tokens, 600);
    assert.strictEqual(chunked.tokens, 600);
    assert.ok(sliding.ppl < chunked.ppl, `sliding ${sliding.ppl} should beat chunked ${chunked.ppl}`);
  });

  it('rejects bad options', async () => {
    await assert.rejects(perplexity(model, 'x', { ctx: 1 }), { code: 'ERR_INVALID_ARGUMENT' });
    await assert.rejects(perplexity(model, 'x', { mode: 'window' as never }), { code: 'ERR_INVALID_ARGUMENT' });
  });
});
