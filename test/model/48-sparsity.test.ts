// DIP and friends on the standard layout: equivalences, the optimized density split, the cache
// accounting, and option validation.
import * as assert from 'assert';
import * as path from 'path';
import { FlashdipError, loadModel, Model, perplexity } from '../../lib';
import { splitDensity } from '../../lib/sparsity';
import { readJson, REFERENCE, sessionScratch, STORIES } from '../helpers';

const isCode = (code: string, name?: string) => (e: unknown) =>
  e instanceof FlashdipError && e.code === code && (name === undefined || e.message.includes(name));

describe('48 sparsity methods (stories260K)', () => {
  let model: Model;
  let text: string;
  before(async () => {
    process.removeAllListeners('warning');
    model = await loadModel(STORIES);
    text = readJson(path.join(REFERENCE, 'perplexity_tinystories.json')).text;
  });
  after(async () => {
    await model.dispose();
  });
  const ppl = (sparsity: object, cache?: object) => perplexity(model, text, { ctx: 128, maxTokens: 700, sparsity, cache });

  it('the optimized split matches the paper', () => {
    for (const [rho, kx, kh] of [[0.25, 0.314, 0.122], [0.5, 0.574, 0.351], [0.75, 0.799, 0.651]]) {
      const s = splitDensity(rho);
      assert.ok(Math.abs(s.keepX - kx) < 1e-3 && Math.abs(s.keepH - kh) < 1e-3, `${rho}: ${JSON.stringify(s)}`);
      assert.ok(Math.abs((2 * s.keepX + s.keepH) / 3 - rho) < 1e-12);
    }
  });

  it('dip at density 1 equals dense; dip-ca with gamma 1 equals dip', async () => {
    const dense = await ppl({ method: 'dense' });
    const dip1 = await ppl({ method: 'dip', density: 1 });
    assert.ok(Math.abs(dip1.ppl / dense.ppl - 1) <= 1e-6, `${dip1.ppl} vs ${dense.ppl}`);
    for (const policy of ['lru', 'lfu'] as const) {
      const dip = await ppl({ method: 'dip', density: 0.5 }, { policy });
      const ca = await ppl({ method: 'dip-ca', density: 0.5, gamma: 1 }, { policy });
      assert.strictEqual(ca.ppl, dip.ppl);
      assert.ok(dip.ppl > dense.ppl);
    }
  });

  it('with everything in DRAM (no budget) dip-ca equals dip: no column is down-weighted', async () => {
    const dip = await ppl({ method: 'dip', density: 0.5 });
    const ca = await ppl({ method: 'dip-ca', density: 0.5, gamma: 0 });
    assert.strictEqual(ca.ppl, dip.ppl);
  });

  it('pruning costs perplexity in the expected order: more density, less loss', async () => {
    const dense = (await ppl({ method: 'dense' })).ppl;
    let last = Infinity;
    for (const density of [0.25, 0.5, 0.75, 0.9]) {
      const p = (await ppl({ method: 'dip', density })).ppl;
      assert.ok(p < last && p > dense, `density ${density}: ${p}`);
      last = p;
    }
  });

  it('dip-ca with gamma < 1 raises the cache hit rate over dip at the same budget', async () => {
    const m = await loadModel(STORIES, { memoryBudget: 1_000_000 + (await sessionScratch(STORIES, 128)) });
    try {
      const dip = await perplexity(m, text, { ctx: 128, maxTokens: 700, sparsity: { method: 'dip', density: 0.5 } });
      const ca = await perplexity(m, text, { ctx: 128, maxTokens: 700, sparsity: { method: 'dip-ca', density: 0.5, gamma: 0.2 } });
      assert.ok(dip.cacheFraction > 0 && dip.cacheFraction < 1, `${dip.cacheFraction}`);
      assert.ok(ca.hitRate > dip.hitRate, `dip-ca ${ca.hitRate} vs dip ${dip.hitRate}`);
      assert.ok(ca.flashBytesPerToken < dip.flashBytesPerToken);
    } finally {
      await m.dispose();
    }
  });

  it('with a budget of at least the model, dense streaming misses only on the first token', async () => {
    const m = await loadModel(STORIES, { memoryBudget: '64MB' });
    try {
      const s = m.createSession({ contextSize: 128 });
      for await (const _ of s.generate('Once upon a time', { maxTokens: 20, temperature: 0 }));
      const st = s.stats().sparsity;
      assert.strictEqual(st.cacheFraction, 1);
      for (const l of st.layers) {
        assert.strictEqual(l.ugMisses, m.info.dim);
        assert.strictEqual(l.downMisses, m.info.ffn);
        assert.ok(l.ugHits > 0 && l.downHits > 0);
      }
      await s.dispose();
    } finally {
      await m.dispose();
    }
  });

  it('bad options: ERR_INVALID_ARGUMENT naming the option; a budget below the static part: ERR_BUDGET_TOO_SMALL', async () => {
    const bad: [object, string][] = [
      [{ sparsity: { method: 'dip', density: 0 } }, 'density'],
      [{ sparsity: { method: 'dip', density: 1.5 } }, 'density'],
      [{ sparsity: { method: 'dip-ca', gamma: -0.1 } }, 'gamma'],
      [{ sparsity: { method: 'dip-ca', gamma: 2 } }, 'gamma'],
      [{ sparsity: { method: 'fast' } }, 'method'],
      [{ sparsity: { method: 'dip', readBlock: '64KiB' } }, 'readBlock'],
      [{ sparsity: { method: 'dip-ca', readBlock: 'lots' } }, 'readBlock'],
      [{ sparsity: { method: 'dip-ca', readBlock: '64KiB', readCover: 0.5 } }, 'readCover'],
      [{ cache: { policy: 'mru' } }, 'policy'],
      [{ memoryBudget: 'lots' }, 'memoryBudget'],
      [{ memoryBudget: -5 }, 'memoryBudget'],
    ];
    for (const [opts, name] of bad) await assert.rejects(loadModel(STORIES, opts as never), isCode('ERR_INVALID_ARGUMENT', name), JSON.stringify(opts));
    const m = await loadModel(STORIES, { memoryBudget: '10KB' });
    assert.throws(() => m.createSession(), isCode('ERR_BUDGET_TOO_SMALL', 'needs'));
    await m.dispose();
  });
});
