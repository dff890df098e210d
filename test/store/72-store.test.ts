// The column store of a converted model under a budget: it computes what the mapping computes, its
// measured reads equal the cache accounting, and the process's VmRSS stays within the budget plus
// a fixed overhead.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel, perplexity } from '../../lib';
import { getBinding } from '../../lib/binding';
import { convert } from '../../lib/convert';
import { makeModel } from '../../scripts/make-model';
import { readJson, REFERENCE, sessionScratch, STORIES, tmpFile } from '../helpers';

describe('72 column store (converted model under a budget)', function () {
  this.timeout(300000);
  const dip = tmpFile('store-stories.dip.gguf');
  let text: string;
  before(async () => {
    process.removeAllListeners('warning');
    // The MLP store against the mapping: attention stays as it was (layout version 1), so both files
    // give the MLP the same cache fraction (48-attention covers attention rows in the store).
    await convert(STORIES, dip, { attention: false });
    text = readJson(path.join(REFERENCE, 'perplexity_tinystories.json')).text;
  });

  for (const sparsity of [{ method: 'dense' }, { method: 'dip', density: 0.5 }, { method: 'dip-ca', density: 0.5, gamma: 0.2 }] as const) {
    it(`${sparsity.method}: same perplexity through the store; reads equal the accounting`, async () => {
      const stored = await loadModel(dip, { sparsity, memoryBudget: 1_300_000 });
      // The store reads the (untied) embedding table a row per token, so it is not part of the budget's
      // static share there; the mapped model gets the same cache by a budget larger by that much.
      const streamed = stored.defaults.bytes.streamed;
      assert.strictEqual(streamed, 512 * 64 * 4);
      const mapped = await loadModel(STORIES, { sparsity, memoryBudget: 1_300_000 + streamed });
      const a = await perplexity(mapped, text, { ctx: 128, maxTokens: 400 });
      const b = await perplexity(stored, text, { ctx: 128, maxTokens: 400 });
      // (After the perplexity run: a second session would take its share of the model's budget.)
      const s = stored.createSession({ contextSize: 128, kvCacheType: 'f32' });
      assert.ok(b.cacheFraction > 0 && b.cacheFraction < 1, `cache fraction ${b.cacheFraction}`);
      assert.strictEqual(a.cacheFraction, b.cacheFraction);
      assert.ok(Math.abs(a.ppl / b.ppl - 1) <= 1e-6, `${a.ppl} vs ${b.ppl}`);
      assert.ok(Math.abs(a.hitRate - b.hitRate) < 1e-12);
      // Measured store reads per token against the accounting (misses x row bytes).
      for await (const _ of s.generate('Once upon a time', { maxTokens: 40, temperature: 0 }));
      const st = s.stats().sparsity;
      assert.ok(st.flashBytesPerToken > 0);
      assert.ok(Math.abs(st.storeBytesPerToken / st.flashBytesPerToken - 1) <= 0.02, `${st.storeBytesPerToken} vs ${st.flashBytesPerToken}`);
      await mapped.dispose();
      await stored.dispose();
    });
  }

  it('every I/O engine (io_uring, I/O threads, the caller alone; O_DIRECT or buffered) reads the same rows; time splits into I/O and compute', async () => {
    const sparsity = { method: 'dip-ca', density: 0.5, gamma: 0.2 } as const;
    const model = await loadModel(dip, { sparsity, memoryBudget: 1_300_000 });
    const saved = process.env.FLASHDIP_IO;
    const runs: { ppl: number; engine: string; bytes: number }[] = [];
    try {
      for (const engine of ['sync', 'threads', 'uring']) {
        process.env.FLASHDIP_IO = engine;
        const r = await perplexity(model, text, { ctx: 128, maxTokens: 200 });
        const s = model.createSession({ contextSize: 64, record: true });
        const ids = model.tokenize('Once upon a time, there was a little girl');
        await s.evaluate(ids);
        const st = s.stats().sparsity;
        if (st.ioEngine.endsWith(' direct')) {
          // O_DIRECT reads whole aligned blocks (512 bytes where the device takes them, else 4096);
          // what is not a row is counted as gap bytes.
          const align = getBinding().file.directAlign(dip);
          assert.ok(align === 512 || align === 4096, `alignment ${align}`);
          const blocks = ((st.storeBytesPerToken + st.storeGapBytesPerToken) * ids.length) / align;
          assert.ok(st.storeGapBytesPerToken > 0 && Math.abs(blocks - Math.round(blocks)) < 1e-6, `${blocks} blocks`);
        }
        // 'uring' falls back to threads where the kernel (or qemu, or seccomp) refuses io_uring.
        const used = st.ioEngine.split(' ')[0];
        assert.ok(engine === 'uring' ? ['uring', 'threads'].includes(used) : used === engine, `${engine}: ${st.ioEngine}`);
        assert.ok(st.computeSecondsPerToken > 0 && st.ioSecondsPerToken >= 0);
        assert.ok(st.storeReadsPerToken > 0);
        for (const l of st.layers) assert.ok(l.seconds > 0 && l.ioWaitSeconds >= 0 && l.ioWaitSeconds <= l.seconds);
        const tr = s.trace();
        const layers = model.info.layers;
        assert.strictEqual(tr.times!.length, (tr.counts.length / (layers * 4)) * layers * 2);
        for (let i = 0; i < tr.times!.length; i += 2) assert.ok(tr.times![i] > 0 && tr.times![i + 1] <= tr.times![i]);
        runs.push({ ppl: r.ppl, engine: st.ioEngine, bytes: st.storeBytesPerToken });
        await s.dispose();
      }
    } finally {
      if (saved === undefined) delete process.env.FLASHDIP_IO;
      else process.env.FLASHDIP_IO = saved;
      await model.dispose();
    }
    // Keeping the page cache (dropPageCache: false) reads buffered instead of O_DIRECT: same rows.
    const kept = await loadModel(dip, { sparsity, memoryBudget: 1_300_000, cache: { dropPageCache: false } });
    const s = kept.createSession({ contextSize: 64, record: true });
    await s.evaluate(kept.tokenize('Once upon a time, there was a little girl'));
    const keptStats = s.stats().sparsity;
    assert.ok(keptStats.ioEngine.endsWith(' buffered'), keptStats.ioEngine);
    await s.dispose();  // its share of the model's budget would shrink the cache the perplexity run gets
    runs.push({ ppl: (await perplexity(kept, text, { ctx: 128, maxTokens: 200 })).ppl, engine: 'buffered', bytes: keptStats.storeBytesPerToken });
    await kept.dispose();
    for (const r of runs.slice(1)) {
      assert.strictEqual(r.ppl, runs[0].ppl, `${r.engine} vs ${runs[0].engine}`);
      assert.strictEqual(r.bytes, runs[0].bytes);
    }
    const bad = await loadModel(dip, { sparsity, memoryBudget: 1_300_000 });
    process.env.FLASHDIP_IO = 'fast';
    try {
      assert.throws(() => bad.createSession({ contextSize: 64 }), (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT');
    } finally {
      if (saved === undefined) delete process.env.FLASHDIP_IO;
      else process.env.FLASHDIP_IO = saved;
      await bad.dispose();
    }
  });

  it('dip-ca block reads: a cover that takes every block is plain dip-ca; 64 KiB blocks read in fewer requests, still as accounted', async () => {
    const base = { method: 'dip-ca', density: 0.5, gamma: 0.2 } as const;
    const plain = await loadModel(dip, { sparsity: base, memoryBudget: 1_300_000 });
    const all = await loadModel(dip, { sparsity: { ...base, readBlock: '4KiB', readCover: 1e9 }, memoryBudget: 1_300_000 });
    const a = await perplexity(plain, text, { ctx: 128, maxTokens: 300 });
    const b = await perplexity(all, text, { ctx: 128, maxTokens: 300 });
    assert.strictEqual(a.ppl, b.ppl);
    assert.strictEqual(a.hitRate, b.hitRate);
    await plain.dispose();
    await all.dispose();

    const src = tmpFile('blocks.gguf'), out = tmpFile('blocks.dip.gguf');
    makeModel({ out: src, arch: 'llama', dim: 512, layers: 6, heads: 8, kvHeads: 4, ffn: 2048, vocab: 512, ctx: 256, type: 'q8_0', seed: 5 });
    await convert(src, out, { type: 'q8_0' });
    const budget = Math.floor(fs.statSync(out).size / 2) + (await sessionScratch(out, 64));
    const run = async (extra: object) => {
      const m = await loadModel(out, { sparsity: { ...base, ...extra }, memoryBudget: budget });
      const s = m.createSession({ contextSize: 64 });
      for (let t = 0; t < 24; t++) await s.evaluate([1 + ((t * 37) % 500)]);
      const st = s.stats().sparsity;
      await m.dispose();
      return st;
    };
    const rows = await run({});
    const blocks = await run({ readBlock: '64KiB' });
    assert.ok(blocks.storeReadsPerToken < rows.storeReadsPerToken / 2, `${blocks.storeReadsPerToken} vs ${rows.storeReadsPerToken} requests per token`);
    assert.ok(Math.abs(blocks.storeBytesPerToken / blocks.flashBytesPerToken - 1) <= 0.02);
    assert.ok(Math.abs(blocks.keptX - rows.keptX) < 1e-9 && Math.abs(blocks.keptH - rows.keptH) < 1e-9);
  });

  it('VmRSS stays within the budget plus a fixed overhead while generating 256 tokens (half the model as budget)', async () => {
    const src = tmpFile('rss.gguf'), out = tmpFile('rss.dip.gguf');
    makeModel({ out: src, arch: 'llama', dim: 512, layers: 8, heads: 8, kvHeads: 4, ffn: 2048, vocab: 2048, ctx: 512, type: 'q8_0', seed: 4 });
    await convert(src, out, { type: 'q8_0' });
    fs.rmSync(src);
    const size = fs.statSync(out).size;
    const budget = Math.floor(size / 2);
    const OVERHEAD = 16 * 2 ** 20;  // scratch, the tokenizer's tables, V8 garbage: fixed, not per token
    for (const method of ['dense', 'dip-ca']) {
      const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'rss-child.ts'), out, String(budget), method, '256'], { encoding: 'utf8' });
      assert.strictEqual(r.status, 0, r.stderr);
      const res = JSON.parse(r.stdout);
      assert.strictEqual(res.generated, 256);
      assert.ok(res.cacheFraction < 1);
      assert.ok(res.growth <= budget + OVERHEAD, `${method}: RSS grew ${(res.growth / 2 ** 20).toFixed(1)} MiB for a ${(budget / 2 ** 20).toFixed(1)} MiB budget`);
    }
  });
});
