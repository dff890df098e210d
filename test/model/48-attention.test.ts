// DIP on attention inputs (sparsity.attentionDensity): the masks are the top-k of a scalar
// reference, density 1 is exactly dense attention, the standard layout and both converted layouts
// (version 1: MLP rows only; version 2: attention rows too) compute the same thing, the budget
// counts the attention rows, calibrated thresholds work for the attention masks, and bad options
// are refused.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { DEVICES, FlashdipError, loadModel, perplexity, readGguf, recordRun, simulate, SparsityOptions } from '../../lib';
import { convert } from '../../lib/convert';
import { dequantizeRow } from '../../lib/kernels';
import { splitBytes } from '../../lib/sparsity';
import { calibrate } from '../../lib/thresholds';
import { cli } from '../cli/cli';
import { readJson, REFERENCE, sessionScratch, STORIES, tmpFile } from '../helpers';

const isCode = (code: string, name?: string) => (e: unknown) =>
  e instanceof FlashdipError && e.code === code && (name === undefined || e.message.includes(name));

async function logits(file: string, tokens: number[], sparsity?: SparsityOptions, memoryBudget?: number): Promise<Float32Array> {
  const m = await loadModel(file, { sparsity, memoryBudget });
  try {
    const s = m.createSession({ kvCacheType: 'f32', contextSize: 128 });
    return (await s.evaluate(tokens, { allLogits: true })).slice();
  } finally {
    await m.dispose();
  }
}

function relDiff(a: Float32Array, ref: Float32Array): number {
  let mx = 0, d = 0;
  for (let i = 0; i < ref.length; i++) (mx = Math.max(mx, Math.abs(ref[i]))), (d = Math.max(d, Math.abs(a[i] - ref[i])));
  return d / mx;
}

// A tensor of the file as f32, [rows][ne0].
function tensor(file: string, name: string): Float32Array {
  const h = readGguf(file);
  const t = h.tensors.find((x) => x.name === name)!;
  const fd = fs.openSync(file, 'r');
  try {
    const buf = new Uint8Array(t.bytes);
    fs.readSync(fd, buf, 0, t.bytes, h.dataOffset + t.offset);
    return dequantizeRow(t.type, buf, t.dims.reduce((a, b) => a * b, 1));
  } finally {
    fs.closeSync(fd);
  }
}

// Checks that `mask` (ascending indices) is a top-k of |s|: k entries, and no dropped magnitude above a
// kept one beyond `tol` (relative to the largest), so near-ties may fall either way.
function assertTopK(mask: Int32Array, s: ArrayLike<number>, k: number, tol: number, what: string): void {
  assert.strictEqual(mask.length, k, `${what}: ${mask.length} kept, expected ${k}`);
  for (let i = 1; i < mask.length; i++) assert.ok(mask[i] > mask[i - 1], `${what}: not ascending`);
  const kept = new Set(mask);
  let minKept = Infinity, maxDropped = 0, max = 0;
  for (let i = 0; i < s.length; i++) {
    const r = Math.abs(s[i]);
    max = Math.max(max, r);
    if (kept.has(i)) minKept = Math.min(minKept, r);
    else maxDropped = Math.max(maxDropped, r);
  }
  assert.ok(maxDropped <= minKept + tol * max, `${what}: dropped ${maxDropped} > kept ${minKept}`);
}

describe('48 attention DIP (stories260K)', function () {
  this.timeout(300000);
  const v2 = tmpFile('attn-v2.dip.gguf'), v1 = tmpFile('attn-v1.dip.gguf');
  let text: string;
  const toks = [1, 403, 407, 261, 378, 285, 60, 412, 306, 429, 289, 281];
  before(async () => {
    process.removeAllListeners('warning');
    await convert(STORIES, v2);
    await convert(STORIES, v1, { attention: false });
    text = readJson(path.join(REFERENCE, 'perplexity_tinystories.json')).text;
  });

  it('convert: layout version 2 stores q/k/v bundled and W_o as rows; attention: false keeps version 1', () => {
    const b = readGguf(v2), a = readGguf(v1);
    assert.strictEqual(b.metadata['flashdip.layout_version'], 2);
    assert.strictEqual(a.metadata['flashdip.layout_version'], 1);
    assert.deepStrictEqual(b.tensors.find((t) => t.name === 'blk.0.attn_qkv.dip.weight')?.dims, [64 + 2 * 32, 64]);
    assert.deepStrictEqual(b.tensors.find((t) => t.name === 'blk.0.attn_output.dip.weight')?.dims, [64, 64]);
    assert.ok(!b.tensors.some((t) => /attn_(q|k|v|output)\.weight$/.test(t.name)));
    assert.ok(a.tensors.some((t) => t.name === 'blk.0.attn_q.weight') && !a.tensors.some((t) => t.name.includes('attn_qkv.dip')));
    // The CLI's --mlp-only is attention: false.
    const out = tmpFile('attn-cli-v1.dip.gguf');
    const r = cli('convert', STORIES, out, '--mlp-only', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(JSON.parse(r.stdout).attention, false);
    assert.strictEqual(readGguf(out).metadata['flashdip.layout_version'], 1);
    fs.rmSync(out);
  });

  it('density 1 (or the option absent) is exactly dense attention, on every layout', async () => {
    for (const file of [STORIES, v1, v2])
      for (const base of [{ method: 'dense' }, { method: 'dip', density: 0.5 }] as SparsityOptions[]) {
        const a = await logits(file, toks, base);
        const b = await logits(file, toks, { ...base, attentionDensity: 1 });
        assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `${file} ${base.method}: not bit-identical`);
      }
    // Dense on the standard layout is what it was: the llama.cpp reference logits (40-parity holds the bound).
    assert.ok(relDiff(await logits(v2, toks), await logits(STORIES, toks)) <= 1e-5);
  });

  it('the masks are a top-k of |x| of a scalar reference (layer 0, first token: the q/k/v input and W_o input)', async () => {
    const dim = 64, kvDim = 32, hd = 8, group = 2, eps = 9.999999747378752e-6;
    for (const [file, density] of [[STORIES, 0.5], [v2, 0.5], [STORIES, 0.3], [v2, 0.75]] as const) {
      const m = await loadModel(file, { sparsity: { attentionDensity: density } });
      const s = m.createSession({ kvCacheType: 'f32', contextSize: 16, record: true });
      await s.evaluate([1]);
      const tr = s.trace();
      await m.dispose();
      assert.ok(tr.attnMasks && tr.attnCounts, 'attention masks recorded');
      assert.strictEqual(tr.attnMasks.length, 5 * 2);
      // Scalar reference: x = RMSNorm(embedding of BOS) * attn_norm; v = W_v (masked x); at the first
      // position the attention output of head h is v of its KV head h / group.
      const e = tensor(STORIES, 'token_embd.weight').subarray(dim, 2 * dim);
      const w = tensor(STORIES, 'blk.0.attn_norm.weight');
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += e[i] * e[i];
      const scale = 1 / Math.sqrt(ss / dim + eps);
      const x = Array.from(e, (v, i) => v * scale * w[i]);
      const kIn = Math.floor(density * dim);
      assertTopK(tr.attnMasks[0], x, kIn, 1e-6, `${file} ${density} q/k/v input`);
      const xm = x.map((v, i) => (tr.attnMasks![0].includes(i) ? v : 0));
      const wv = tensor(STORIES, 'blk.0.attn_v.weight');  // [kvDim][dim]
      const v = Array.from({ length: kvDim }, (_, o) => xm.reduce((a, xi, i) => a + wv[o * dim + i] * xi, 0));
      const att = Array.from({ length: 64 }, (_, i) => v[Math.floor(Math.floor(i / hd) / group) * hd + (i % hd)]);
      assertTopK(tr.attnMasks[1], att, Math.floor(density * 64), 1e-5, `${file} ${density} W_o input`);
      // Without a budget every unit is a hit, k of them per token and layer.
      assert.deepStrictEqual(Array.from(tr.attnCounts.subarray(0, 4)), [kIn, 0, Math.floor(density * 64), 0]);
    }
  });

  it('attention DIP gives the same logits and perplexity on the standard, version 1 and version 2 layouts', async () => {
    for (const sparsity of [{ attentionDensity: 0.5 }, { method: 'dip', density: 0.5, attentionDensity: 0.6 },
      { method: 'dip-ca', density: 0.75, gamma: 0.3, attentionDensity: 0.5 }] as SparsityOptions[]) {
      const ref = await logits(STORIES, toks, sparsity);
      assert.ok(!Buffer.from(ref.buffer).equals(Buffer.from((await logits(STORIES, toks, { ...sparsity, attentionDensity: 1 })).buffer)));
      for (const file of [v1, v2]) assert.ok(relDiff(await logits(file, toks, sparsity), ref) <= 1e-5, `${file} ${JSON.stringify(sparsity)}`);
    }
    const p = await Promise.all([STORIES, v2].map(async (f) => {
      const m = await loadModel(f, { sparsity: { method: 'dip', density: 0.5, attentionDensity: 0.5 } });
      const r = await perplexity(m, text, { ctx: 128, maxTokens: 300 });
      await m.dispose();
      return r;
    }));
    assert.ok(Math.abs(p[0].ppl / p[1].ppl - 1) <= 1e-5, `${p[0].ppl} vs ${p[1].ppl}`);
    assert.strictEqual(p[0].keptAttn, 0.5);
    assert.strictEqual(p[1].keptAttn, 0.5);
    // A budget that holds every column (version 2, store and all) changes nothing.
    const big = await logits(v2, toks, { method: 'dip-ca', density: 0.5, attentionDensity: 0.5 }, 50_000_000);
    assert.ok(relDiff(big, await logits(v2, toks, { method: 'dip-ca', density: 0.5, attentionDensity: 0.5 })) <= 1e-6);
  });

  it('the budget counts the attention rows: static shrinks, the columns share the cache, misses are read', async () => {
    const s1 = splitBytes(readGguf(v1)), s2 = splitBytes(readGguf(v2));
    const attnRows = readGguf(v2).tensors.filter((t) => /attn_(qkv|output)\.dip\.weight$/.test(t.name)).reduce((a, t) => a + t.bytes, 0);
    assert.strictEqual(s1.attn, 0);
    assert.strictEqual(s2.attn, attnRows);
    assert.strictEqual(s2.mlp, s1.mlp);
    assert.strictEqual(s1.static - s2.static, 5 * (64 + 32 + 32 + 64) * 64 * 4);  // f32 q, k, v, o of 5 layers, now rows
    // perplexity's f32 KV cache of 128 positions and the session's scratch, which the model's budget counts
    const kv = 2 * 5 * 128 * 32 * 4, scratch = await sessionScratch(v2, 128);
    const budget = s2.static + kv + scratch + s2.mlpLayer + Math.ceil((s2.mlp + s2.attn) / 2);
    const m = await loadModel(v2, { memoryBudget: budget, sparsity: { method: 'dip-ca', density: 0.5, attentionDensity: 0.5 } });
    // The engine's split (the model's one column store) agrees with the header's.
    const mem = m.memory();
    assert.strictEqual(mem.bytes.attn, s2.attn);
    assert.strictEqual(mem.bytes.static, s2.static);
    const r = await perplexity(m, text, { ctx: 128, maxTokens: 300 });
    const s = m.createSession({ contextSize: 128, record: true });
    await s.evaluate(toks);
    const st = s.stats().sparsity;
    await m.dispose();
    assert.ok(Math.abs(r.cacheFraction - 0.5) < 1e-3, `cache fraction ${r.cacheFraction}`);
    // A recorded run over several windows keeps every window's attention counts, and the simulator
    // counts their bytes: its flash bytes are the misses of all four units at their sizes.
    const m2 = await loadModel(v2, { memoryBudget: budget, sparsity: { method: 'dip-ca', density: 0.5, attentionDensity: 0.5 } });
    const rec = await recordRun(m2, text, { ctx: 64, maxTokens: 300 });
    await m2.dispose();
    assert.strictEqual(rec.attnCounts?.length, rec.counts.length);
    let recFlash = 0;
    for (let i = 0; i < rec.counts.length; i += 4)
      recFlash += rec.counts[i + 1] * rec.ugUnitBytes + rec.counts[i + 3] * rec.downUnitBytes +
        rec.attnCounts![i + 1] * rec.qkvUnitBytes! + rec.attnCounts![i + 3] * rec.oUnitBytes!;
    const sim = simulate(rec, DEVICES.phone);
    assert.ok(Math.abs(sim.flashBytesPerToken / (recFlash / sim.tokens) - 1) < 1e-9);
    assert.ok(rec.attnCounts!.some((v, i) => i % 2 === 1 && v > 0), 'attention misses recorded');
    let attnMisses = 0, attnUnits = 0, flash = 0;
    const raw = st.layers;
    for (const l of raw) {
      attnMisses += l.qkvMisses + l.oMisses;
      attnUnits += l.qkvHits + l.qkvMisses + l.oHits + l.oMisses;
    }
    assert.ok(attnMisses > 0, 'attention columns are read from flash');
    assert.strictEqual(attnUnits, toks.length * 5 * (32 + 32));
    // What the store read is what the accounting says was missed (MLP and attention rows).
    assert.ok(Math.abs(st.storeBytesPerToken / st.flashBytesPerToken - 1) <= 0.02, `${st.storeBytesPerToken} vs ${st.flashBytesPerToken}`);
    // Flash bytes are the misses of all four units at their sizes in the file.
    for (const l of raw) flash += l.ugMisses * 2 * 172 * 4 + l.downMisses * 64 * 4 + l.qkvMisses * 128 * 4 + l.oMisses * 64 * 4;
    assert.ok(Math.abs(st.flashBytesPerToken - flash / toks.length) < 1e-6 * flash, `${st.flashBytesPerToken} vs ${flash / toks.length}`);
    // On version 1 attention is static: every attention unit is a hit, whatever the budget.
    const m1 = await loadModel(v1, { memoryBudget: budget + s1.static - s2.static, sparsity: { method: 'dip-ca', density: 0.5, attentionDensity: 0.5 } });
    const s1s = m1.createSession({ contextSize: 128 });
    await s1s.evaluate(toks);
    for (const l of s1s.stats().sparsity.layers) assert.strictEqual(l.qkvMisses + l.oMisses, 0);
    await m1.dispose();
  });

  it('calibrated thresholds serve the attention masks (dense and masked calibration)', async () => {
    for (const mode of ['dense', 'masked'] as const) {
      const m = await loadModel(STORIES);
      const table = await calibrate(m, text, { method: 'dip', density: 0.75, attentionDensity: 0.5, tokens: 600, ctx: 128, mode });
      await m.dispose();
      assert.strictEqual(table.attentionDensity, 0.5);
      assert.strictEqual(table.thresholds.attnIn?.length, 5);
      assert.strictEqual(table.thresholds.attnOut?.length, 5);
      assert.ok(table.thresholds.attnIn!.every((t) => t > 0));
      const file = tmpFile(`attn-thr-${mode}.json`);
      fs.writeFileSync(file, JSON.stringify(table));
      const p = await Promise.all([STORIES, v2].map(async (f) => {
        const mm = await loadModel(f, { sparsity: { thresholds: file } });
        const r = await perplexity(mm, text, { ctx: 128, maxTokens: 600 });
        await mm.dispose();
        return r;
      }));
      assert.ok(Math.abs(p[0].ppl / p[1].ppl - 1) <= 1e-5);
      assert.ok(p[0].thresholds && Math.abs(p[0].keptAttn - 0.5) < 0.1, `kept ${p[0].keptAttn}`);
      await assert.rejects(loadModel(STORIES, { sparsity: { thresholds: file, attentionDensity: 0.5 } }), isCode('ERR_INVALID_ARGUMENT', 'attentionDensity'));
    }
  });

  it('the old layout warns that attention DIP saves no bandwidth there; bad values are refused, in the API and the CLI', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '');
    process.on('warning', onWarning);
    const m = await loadModel(v1, { sparsity: { attentionDensity: 0.5 } });
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    await m.dispose();
    assert.ok(warnings.includes('FLASHDIP_ATTENTION_STANDARD_LAYOUT'), warnings.join());
    for (const bad of [0, -0.5, 1.5, NaN, '0.5'])
      await assert.rejects(loadModel(STORIES, { sparsity: { attentionDensity: bad as number } }), isCode('ERR_INVALID_ARGUMENT', 'sparsity.attentionDensity'));
    for (const bad of ['0', '2', 'half', '1e-1']) {
      const r = cli('ppl', '--model', STORIES, '--text', path.join(REFERENCE, 'perplexity_tinystories.json'), '--attn-density', bad, '--json');
      assert.notStrictEqual(r.status, 0, bad);
      assert.strictEqual(JSON.parse(r.stdout).error.code, 'ERR_INVALID_ARGUMENT');
      assert.match(JSON.parse(r.stdout).error.message, /^--attn-density: /);
    }
    const ok = cli('ppl', '--model', STORIES, '--text', path.join(REFERENCE, '..', '..', 'text', 'tinystories-sample.txt'), '--ctx', '64',
      '--max-tokens', '200', '--attn-density', '0.5', '--json');
    assert.strictEqual(ok.status, 0, ok.stderr);
    const j = JSON.parse(ok.stdout);
    assert.strictEqual(j.keepAttn, 0.5);
    assert.strictEqual(j.keptAttn, 0.5);
  });
});
