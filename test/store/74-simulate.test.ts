// The hardware simulator: a hand-built trace gives the hand-computed figure, and on a real run its
// flash bytes per token equal what the column store actually read.
import * as assert from 'assert';
import { loadModel, simulate } from '../../lib';
import { checkDevice, countRequests, RunTrace } from '../../lib/simulate';
import { convert } from '../../lib/convert';
import { getBinding } from '../../lib/binding';
import { STORIES, tmpFile } from '../helpers';

describe('74 hardware simulator', () => {
  const trace = {
    layers: 1,
    // token 0: ug 2 hits 3 misses, down 4 hits 1 miss; token 1: ug 5 hits, down 5 hits
    counts: Int32Array.from([2, 3, 4, 1, 5, 0, 5, 0]),
    ugUnitBytes: 100,
    downUnitBytes: 50,
    staticBytes: 900,
    kvBytesPerPosition: 100,
    averageLength: 1,
    units: { ug: 8, down: 8 },
    cacheFraction: 0,
    masks: [],
  };

  it('a hand-built trace, concurrent transfers: T = 1 + max(3, 0.2) + max(0.5, 0.2), then 1 + 0.5 + 0.25', () => {
    const r = simulate(trace, { dramBandwidth: 1000, flashBandwidth: 100, concurrent: true });
    assert.strictEqual(r.tokens, 2);
    assert.ok(Math.abs(r.secondsPerToken - (4.5 + 1.75) / 2) < 1e-12);
    assert.ok(Math.abs(r.tokensPerSecond - 2 / 6.25) < 1e-12);
    assert.strictEqual(r.flashBytesPerToken, (300 + 50) / 2);
    assert.strictEqual(r.dramBytesPerToken, (200 + 200 + 500 + 250) / 2);
  });

  it('sequential transfers add up: (1 + 3.2 + 0.7) + (1 + 0.5 + 0.25)', () => {
    const r = simulate(trace, { dramBandwidth: 1000, flashBandwidth: 100, concurrent: false });
    assert.ok(Math.abs(r.secondsPerToken - 6.65 / 2) < 1e-12);
  });

  it('rejects a bad device profile', () => {
    assert.throws(() => simulate(trace, { dramBandwidth: 0, flashBandwidth: 1, concurrent: true }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => simulate(trace, { dramBandwidth: 1, flashBandwidth: 1 } as never), { code: 'ERR_INVALID_ARGUMENT' });
  });

  it("the simulator's flash bytes per token equal the store's measured reads (within 2%)", async () => {
    process.removeAllListeners('warning');
    const dip = tmpFile('sim.dip.gguf');
    await convert(STORIES, dip);
    const m = await loadModel(dip, { memoryBudget: 1_100_000, sparsity: { method: 'dip-ca', density: 0.5, gamma: 0.3 } });
    const s = m.createSession({ contextSize: 256, record: true });
    for await (const _ of s.generate('Once upon a time', { maxTokens: 60, temperature: 0 }));
    const measured = s.stats().sparsity.storeBytesPerToken;
    const r = simulate(s.trace(), { dramBandwidth: 60e9, flashBandwidth: 1e9, concurrent: true });
    assert.ok(measured > 0);
    assert.ok(Math.abs(r.flashBytesPerToken / measured - 1) <= 0.02, `simulated ${r.flashBytesPerToken} vs measured ${measured}`);
    await m.dispose();
  });

  // Requests counted: one layer, ug rows of 8 KiB and down rows of 1 KiB, no budgeted cache (capacity 0).
  const counted: RunTrace = {
    layers: 1,
    counts: Int32Array.from([0, 3, 0, 2]),
    ugUnitBytes: 8192,
    downUnitBytes: 1024,
    staticBytes: 1000,
    kvBytesPerPosition: 0,
    averageLength: 1,
    units: { ug: 64, down: 64 },
    cacheFraction: 0,
    policy: 'lfu',
    budgeted: true,
    // ug rows 0, 1 (adjacent: one read) and 10 (a gap of 8 rows = 64 KiB > 16 KiB: a second read);
    // down rows 3 and 20 (a gap of 16 rows = 16 KiB: read through, one request of 18 rows).
    masks: [Int32Array.from([0, 1, 10]), Int32Array.from([3, 20])],
  };

  it('counts the reads the store would issue: runs across gaps of at most 16 KiB, widened to the O_DIRECT alignment', () => {
    const b = countRequests(counted, 0);
    assert.deepStrictEqual([...b.requests], [2, 1]);
    assert.deepStrictEqual([...b.bytes], [3 * 8192, 18 * 1024]);
    const d = countRequests(counted, 4096);
    assert.deepStrictEqual([...d.requests], [2, 1]);
    // down: bytes [3072, 21504) widened to [0, 24576)
    assert.deepStrictEqual([...d.bytes], [3 * 8192, 24576]);
    // 512-byte blocks: [3072, 21504) is already aligned
    assert.deepStrictEqual([...countRequests(counted, 512).bytes], [3 * 8192, 18 * 1024]);
    assert.deepStrictEqual([...countRequests({ ...counted, budgeted: false }, 4096).requests], [0, 0]);
  });

  it('a measured profile charges each unit latency + max(bytes / bandwidth, (requests - 1) / iops), compute after the reads', () => {
    const dev = { dramBandwidth: 1e6, flashBandwidth: 1e5, concurrent: true, requestLatency: 0.01, iops: 10, direct: false };
    const r = simulate(counted, dev);
    // fixed 1000 / 1e6; ug: 0.01 + max(24576 / 1e5, 1 / 10) + 24576 / 1e6; down: 0.01 + max(18432 / 1e5, 0) + 2048 / 1e6
    const want = 0.001 + (0.01 + 0.24576 + 0.024576) + (0.01 + 0.18432 + 0.002048);
    assert.ok(Math.abs(r.secondsPerToken - want) < 1e-12, `${r.secondsPerToken} vs ${want}`);
    assert.strictEqual(r.requestsPerToken, 3);
    assert.strictEqual(r.readBytesPerToken, 3 * 8192 + 18 * 1024);
    // Without requestLatency/iops the byte-only model stands (no request figures).
    assert.strictEqual(simulate(counted, { dramBandwidth: 1e6, flashBandwidth: 1e5, concurrent: true }).requestsPerToken, undefined);
  });

  it('checks device profiles: unknown keys, half a request model, a foreign version are refused', () => {
    const ok = { dramBandwidth: 1, flashBandwidth: 1, concurrent: true };
    assert.throws(() => checkDevice({ ...ok, flashBandwith: 2 }), { code: 'ERR_INVALID_ARGUMENT', message: /unknown option 'flashBandwith'/ });
    assert.throws(() => checkDevice({ ...ok, iops: 1000 }), { code: 'ERR_INVALID_ARGUMENT', message: /together/ });
    assert.throws(() => checkDevice({ ...ok, iops: 1000, requestLatency: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /requestLatency/ });
    assert.throws(() => checkDevice({ ...ok, version: 2 }), { code: 'ERR_INVALID_ARGUMENT', message: /version 2/ });
    assert.strictEqual(checkDevice({ ...ok, iops: 1000, requestLatency: 1e-4 }).direct, true);
  });

  it("the counted requests and bytes (MLP and attention rows) equal the store's measured reads exactly (dense, dip, dip-ca, dip-ca with blocks)", async () => {
    process.removeAllListeners('warning');
    const dip = tmpFile('sim-req.dip.gguf');
    await convert(STORIES, dip);
    for (const sparsity of [{ method: 'dense' }, { method: 'dip', density: 0.5 }, { method: 'dip-ca', density: 0.5 }, { method: 'dip-ca', density: 0.5, readBlock: 4096 }] as const) {
      const m = await loadModel(dip, { memoryBudget: 1_100_000, sparsity });
      try {
        const s = m.createSession({ contextSize: 128, record: true });
        for await (const _ of s.generate('Once upon a time', { maxTokens: 40, temperature: 0 }));
        const st = s.stats().sparsity;
        const trace = s.trace();
        const tokens = trace.counts.length / (trace.layers * 4);
        const c = countRequests(trace, st.ioEngine.endsWith('direct') ? getBinding().file.directAlign(dip) : 0);
        const sum = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0);
        assert.ok(st.storeReadsPerToken > 0);
        // The converted file stores attention as rows too (layout version 2): the store reads them
        // through the same caches, and the replay counts their reads as well.
        assert.ok(trace.attnRows && c.attnRequests && c.attnBytes && sum(c.attnRequests) > 0, `${sparsity.method}: attention reads counted`);
        assert.strictEqual(sum(c.requests) + sum(c.attnRequests), Math.round(st.storeReadsPerToken * tokens), `${sparsity.method} requests`);
        assert.strictEqual(sum(c.bytes) + sum(c.attnBytes), Math.round((st.storeBytesPerToken + st.storeGapBytesPerToken) * tokens), `${sparsity.method} bytes`);
      } finally {
        await m.dispose();
      }
    }
  });
});
