// The calibrated-threshold variant (flashdip calibrate): thresholds that keep everything are dense,
// calibrated thresholds realize the target density on the calibration text, DIP-CA with a DIP table,
// the DIP layout (random-weight model, column store under a budget), tables for another shape and
// bad options refused.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { calibrate, FlashdipError, loadModel, Model, perplexity, ThresholdTable, writeThresholds } from '../../lib';
import { convert } from '../../lib/convert';
import { thresholdForFraction } from '../../lib/thresholds';
import { makeModel } from '../../scripts/make-model';
import { readJson, REFERENCE, sessionScratch, STORIES, tmpFile } from '../helpers';

const isCode = (code: string, name?: string) => (e: unknown) =>
  e instanceof FlashdipError && e.code === code && (name === undefined || e.message.includes(name));

const CTX = 128, TOKENS = 700;

describe('48 calibrated thresholds (stories260K)', function () {
  this.timeout(300000);
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
  const ppl = (sparsity: object, m: Model = model) => perplexity(m, text, { ctx: CTX, maxTokens: TOKENS, sparsity });
  const calib = (method: 'dip' | 'glu' | 'gate' | 'up', density: number, m: Model = model) =>
    calibrate(m, text, { method, density, ctx: CTX, tokens: TOKENS });
  const zeros = (t: ThresholdTable): ThresholdTable => ({
    ...t, thresholds: { ...(t.thresholds.x ? { x: t.thresholds.x.map(() => 0) } : {}), h: t.thresholds.h.map(() => 0) },
  });

  it('thresholdForFraction: exact on a histogram, 0 for keep 1, float32 values', () => {
    const hist = new Float64Array(1 << 15);
    const bin = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16;
    hist[bin(1)] = 50;  // bin [1, 1 + 2^-7)
    hist[bin(4)] = 50;  // bin [4, 4 + 2^-5)
    assert.strictEqual(thresholdForFraction(hist, 16, 1), 0);
    assert.strictEqual(thresholdForFraction(hist, 16, 0.5), 4);          // all of the top bin
    const t = thresholdForFraction(hist, 16, 0.25);                       // half of the top bin
    assert.ok(t > 4 && t < 4 + 2 ** -5, `${t}`);
    assert.strictEqual(Math.fround(t), t);
    assert.ok(thresholdForFraction(hist, 16, 0.75) >= 1 && thresholdForFraction(hist, 16, 0.75) < 4);
  });

  it('thresholds of 0 keep everything: exactly dense (every method, dip-ca too)', async () => {
    const dense = await ppl({ method: 'dense' });
    for (const method of ['dip', 'glu', 'gate', 'up'] as const) {
      const t = zeros(await calibrate(model, text, { method, density: 0.5, ctx: CTX, tokens: 200 }));
      for (const m of method === 'dip' ? (['dip', 'dip-ca'] as const) : [method]) {
        const r = await ppl({ method: m, thresholds: t });
        assert.ok(Math.abs(r.ppl / dense.ppl - 1) <= 1e-6, `${m}: ${r.ppl} vs ${dense.ppl}`);
        assert.strictEqual(r.density, 1);
        assert.ok(r.thresholds);
      }
    }
  });

  for (const method of ['dip', 'glu', 'gate', 'up'] as const)
    for (const density of [0.25, 0.75]) {
      it(`${method} at density ${density}: calibrated on the text, the same text realizes it within 2 points`, async () => {
        const t = await calib(method, density);
        assert.strictEqual(t.method, method);
        assert.strictEqual(t.thresholds.h.length, model.info.layers);
        assert.strictEqual(t.thresholds.x?.length, method === 'dip' ? model.info.layers : undefined);
        const r = await ppl({ thresholds: t });
        assert.strictEqual(r.method, method);  // the table's method by default
        assert.ok(Math.abs(r.density - density) <= 0.02, `realized ${r.density}`);
        assert.ok(Math.abs(r.keptX - t.keepX) <= 0.02 && Math.abs(r.keptH - t.keepH) <= 0.02, `x ${r.keptX}/${t.keepX} h ${r.keptH}/${t.keepH}`);
        const topk = await ppl({ method, density });
        assert.ok(r.ppl < 3 * topk.ppl && r.ppl > (await ppl({ method: 'dense' })).ppl, `${r.ppl} vs top-k ${topk.ppl}`);
      });
    }

  it('session.stats() reports the realized kept fractions per layer and overall', async () => {
    const t = await calib('dip', 0.5);
    const s = model.createSession({ contextSize: CTX, sparsity: { thresholds: t } });
    await s.evaluate(model.tokenize(text).slice(0, 100));
    const st = s.stats().sparsity;
    assert.strictEqual(st.thresholds, true);
    assert.strictEqual(st.layers.length, model.info.layers);
    let x = 0, h = 0;
    for (const l of st.layers) {
      assert.strictEqual(l.keptX, (l.ugHits + l.ugMisses) / (100 * model.info.dim));
      assert.strictEqual(l.keptH, (l.downHits + l.downMisses) / (100 * model.info.ffn));
      x += l.keptX / st.layers.length, h += l.keptH / st.layers.length;
    }
    assert.ok(Math.abs(st.keptX - x) < 1e-12 && Math.abs(st.keptH - h) < 1e-12);
    assert.ok(Math.abs(st.density - (2 * x + h) / 3) < 1e-12);
    await s.dispose();
  });

  it('dip-ca with a dip table: equals dip without a budget; under one it raises the hit rate', async () => {
    const t = await calib('dip', 0.5);
    const dip = await ppl({ thresholds: t });
    const ca = await ppl({ method: 'dip-ca', gamma: 0.2, thresholds: t });
    assert.strictEqual(ca.ppl, dip.ppl);
    const m = await loadModel(STORIES, { memoryBudget: 1_000_000 + (await sessionScratch(STORIES, CTX)) });
    try {
      const d = await ppl({ thresholds: t }, m);
      const c = await ppl({ method: 'dip-ca', gamma: 0.2, thresholds: t }, m);
      assert.ok(c.hitRate > d.hitRate, `dip-ca ${c.hitRate} vs dip ${d.hitRate}`);
      assert.ok(Math.abs(c.density - 0.5) <= 0.03, `${c.density}`);
    } finally {
      await m.dispose();
    }
  });

  it('a table from a file; a table for another shape is refused', async () => {
    const t = await calib('glu', 0.5);
    const file = tmpFile('glu.thresholds.json');
    writeThresholds(file, t);
    const a = await ppl({ thresholds: t });
    const m = await loadModel(STORIES, { sparsity: { method: 'glu', thresholds: file } });
    const b = await perplexity(m, text, { ctx: CTX, maxTokens: TOKENS });
    assert.strictEqual(a.ppl, b.ppl);
    await m.dispose();
    const other = tmpFile('other-shape.gguf');
    makeModel({ out: other, dim: 32, layers: 2, heads: 4, ffn: 96, vocab: 512, ctx: 128, seed: 2, vocabFrom: STORIES });
    await assert.rejects(loadModel(other, { sparsity: { thresholds: file } }), isCode('ERR_INVALID_ARGUMENT', 'sparsity.thresholds'));
    const o = await loadModel(other);
    assert.throws(() => o.createSession({ sparsity: { thresholds: t } }), isCode('ERR_INVALID_ARGUMENT', 'sparsity.thresholds'));
    await o.dispose();
    // Same layer count, another width: refused too.
    await assert.rejects(loadModel(STORIES, { sparsity: { thresholds: { ...t, model: { ...t.model, ffn: 128 } } } }),
      isCode('ERR_INVALID_ARGUMENT', 'ffn 128'));
  });

  it('bad options and bad tables: ERR_INVALID_ARGUMENT naming the option', async () => {
    const t = await calibrate(model, text, { method: 'dip', density: 0.5, ctx: CTX, tokens: 100 });
    const g = await calibrate(model, text, { method: 'glu', density: 0.5, ctx: CTX, tokens: 100 });
    const bad = tmpFile('bad.json');
    fs.writeFileSync(bad, '{ "format": ');
    const cases: [object, string][] = [
      [{ thresholds: t, density: 0.5 }, 'either thresholds'],
      [{ thresholds: t, keepX: 0.5 }, 'either thresholds'],
      [{ method: 'glu', thresholds: t }, 'sparsity.thresholds'],
      [{ method: 'dip', thresholds: g }, 'sparsity.thresholds'],
      [{ method: 'dense', thresholds: t }, 'sparsity.thresholds'],
      [{ thresholds: 42 }, 'sparsity.thresholds'],
      [{ thresholds: tmpFile('missing.json') }, 'cannot read'],
      [{ thresholds: bad }, 'not valid JSON'],
      [{ thresholds: { ...t, format: 'x' } }, 'format'],
      [{ thresholds: { ...t, version: 2 } }, 'version'],
      [{ thresholds: { ...t, thresholds: { x: t.thresholds.x, h: t.thresholds.h.slice(1) } } }, 'thresholds.h'],
      [{ thresholds: { ...t, thresholds: { x: t.thresholds.x!.map(() => -1), h: t.thresholds.h } } }, 'thresholds.x'],
      [{ thresholds: { ...t, thresholds: { h: t.thresholds.h } } }, 'thresholds.x'],
      [{ thresholds: { ...g, thresholds: { x: t.thresholds.x, h: g.thresholds.h } } }, 'thresholds.x'],
      [{ thresholds: { ...t, keepH: 0 } }, 'keepH'],
      [{ thresholds: { ...t, method: 'dip-ca' } }, 'method'],
      [{ thresholds: { ...t, model: { ...t.model, layers: 'five' } } }, 'model.layers'],
    ];
    for (const [sparsity, msg] of cases)
      await assert.rejects(loadModel(STORIES, { sparsity } as never), isCode('ERR_INVALID_ARGUMENT', msg), JSON.stringify(sparsity).slice(0, 200));
    for (const [opts, msg] of [
      [{ method: 'dip-ca' }, 'method'], [{ method: 'dense' }, 'method'], [{ density: 0 }, 'density'], [{ method: 'glu', keepX: 0.5 }, 'keepX'],
      [{ tokens: 0 }, 'tokens'], [{ ctx: 1 }, 'ctx'], [{ mode: 'sparse' }, 'mode'], [{ fast: true }, 'fast'],
    ] as [object, string][])
      await assert.rejects(calibrate(model, text, opts as never), isCode('ERR_INVALID_ARGUMENT', msg), JSON.stringify(opts));
    await assert.rejects(calibrate(model, '', {}), isCode('ERR_INVALID_ARGUMENT', 'text'));
  });
});

describe('48 calibrated thresholds on the DIP layout (random-weight model)', function () {
  this.timeout(300000);
  const src = tmpFile('thr-random.gguf'), dip = tmpFile('thr-random.dip.gguf');
  let text: string;
  before(async () => {
    process.removeAllListeners('warning');
    makeModel({ out: src, dim: 128, layers: 2, heads: 4, kvHeads: 2, ffn: 320, vocab: 512, ctx: 256, type: 'f32', seed: 7, vocabFrom: STORIES });
    await convert(src, dip);
    text = readJson(path.join(REFERENCE, 'perplexity_tinystories.json')).text;
  });

  it('zero thresholds are dense; calibrated ones realize the density through the column store, as on the standard layout', async () => {
    const m = await loadModel(dip);
    const dense = await perplexity(m, text, { ctx: CTX, maxTokens: 400 });
    const t = await calibrate(m, text, { method: 'dip', density: 0.5, ctx: CTX, tokens: 400 });
    const z = await perplexity(m, text, { ctx: CTX, maxTokens: 400, sparsity: { thresholds: { ...t, thresholds: { x: [0, 0], h: [0, 0] } } } });
    assert.ok(Math.abs(z.ppl / dense.ppl - 1) <= 1e-6, `${z.ppl} vs ${dense.ppl}`);
    await m.dispose();
    // Under a budget the kept rows (a varying number per token) come through the column store.
    const budget = 2_050_000;
    const a = await loadModel(dip, { memoryBudget: budget, sparsity: { thresholds: t } });
    const b = await loadModel(src, { memoryBudget: budget, sparsity: { thresholds: t } });
    try {
      assert.ok(a.info.dipLayout);
      const pa = await perplexity(a, text, { ctx: CTX, maxTokens: 400 });
      const pb = await perplexity(b, text, { ctx: CTX, maxTokens: 400 });
      assert.ok(pa.cacheFraction > 0 && pa.cacheFraction < 1, `${pa.cacheFraction}`);
      assert.ok(Math.abs(pa.density - 0.5) <= 0.02, `realized ${pa.density}`);
      assert.ok(Math.abs(pa.ppl / pb.ppl - 1) <= 1e-4, `${pa.ppl} vs ${pb.ppl}`);
      assert.ok(Math.abs(pa.density - pb.density) <= 1e-3);
      const s = a.createSession({ contextSize: CTX });
      await s.evaluate(a.tokenize(text).slice(0, 50));
      assert.ok(s.stats().sparsity.storeBytesPerToken > 0);
      await s.dispose();
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});
