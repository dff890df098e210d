// The hardware simulator: a hand-built trace gives the hand-computed figure, and on a real run its
// flash bytes per token equal what the column store actually read.
import * as assert from 'assert';
import { loadModel, simulate } from '../../lib';
import { convert } from '../../lib/convert';
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
});
