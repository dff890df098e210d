// stats() and trace() are safe at any time: polled every millisecond while a long evaluate with
// `record: true` runs, each snapshot is consistent. scripts/test-asan-addon.sh runs this file against
// an AddressSanitizer build of the addon (a racing read there is a heap error, not just a wrong number).
import * as assert from 'assert';
import { loadModel, Model, Session } from '../../lib';
import { STORIES } from '../helpers';

describe('56 stats poll', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  function snapshot(s: Session, layers: number, last: { tokens: number; units: number }): void {
    const tr = s.trace();
    const tokens = tr.counts.length / (layers * 4);
    assert.ok(Number.isInteger(tokens), `trace length ${tr.counts.length} is not tokens * layers * 4`);
    // The token count of the same snapshot (averageLength = (tokens + 1) / 2) agrees with the trace.
    assert.strictEqual(tokens > 0 ? 2 * tr.averageLength - 1 : 0, tokens, 'trace length = tokens * layers * 4');
    assert.strictEqual(tr.masks.length, tokens * layers * 2, 'masks: two per token and layer');
    assert.strictEqual(tr.times?.length, tokens * layers * 2, 'times: two per token and layer');
    // Each trace entry counts the mask beside it: hits + misses = kept units.
    for (let i = 0; i < tr.masks.length; i++) assert.strictEqual(tr.counts[2 * i] + tr.counts[2 * i + 1], tr.masks[i].length);
    assert.ok(tokens >= last.tokens, `trace tokens went back from ${last.tokens} to ${tokens}`);
    const st = s.stats().sparsity;
    let units = 0;
    for (const l of st.layers) units += l.ugHits + l.ugMisses + l.downHits + l.downMisses;
    assert.ok(units >= last.units, `unit counts went back from ${last.units} to ${units}`);
    last.tokens = tokens;
    last.units = units;
  }

  it('stats() and trace() polled every millisecond during a 1,500-token evaluate give consistent snapshots', async function () {
    this.timeout(600000);
    const layers = model.info.layers;
    const s = model.createSession({ contextSize: 1600, record: true, sparsity: { method: 'dip', density: 0.5 } });
    const tokens = Array.from({ length: 1500 }, (_, i) => 1 + ((i * 37) % 500));
    const last = { tokens: 0, units: 0 };
    let polls = 0;
    let failure: unknown;
    const timer = setInterval(() => {
      try {
        snapshot(s, layers, last);
        polls++;
      } catch (err) {
        failure ??= err;
      }
    }, 1);
    try {
      // Several calls, so the poll also sees the idle gaps between them.
      for (let at = 0; at < tokens.length; at += 500) await s.evaluate(tokens.slice(at, at + 500));
    } finally {
      clearInterval(timer);
    }
    if (failure) throw failure;
    snapshot(s, layers, last);
    assert.strictEqual(last.tokens, 1500);
    assert.ok(polls >= 3, `only ${polls} polls ran during the evaluation`);
    // Idle, the counters and the trace tell the same story.
    const tr = s.trace();
    let traced = 0;
    for (const c of tr.counts) traced += c;
    assert.strictEqual(last.units, traced);
    await s.dispose();
  });
});
