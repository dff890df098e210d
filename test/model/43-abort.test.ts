// The `signal` option of the long computations: checked before each window (sweep: each run), an
// aborted signal ends them with ERR_ABORTED carrying the result over the work finished (`partial`).
// A stand-in signal that turns aborted after a given number of checks makes the point of the abort
// exact, so the partial result can be compared with a complete run over the same windows.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { calibrate, DEVICES, FlashdipError, loadModel, Model, perplexity, PerplexityResult, recordRun, RunTrace } from '../../lib';
import { sweep, SweepRow } from '../../lib/sweep';
import { SHARED, STORIES } from '../helpers';

const TEXT = fs.readFileSync(path.join(SHARED, 'text', 'tinystories-sample.txt'), 'utf8');
const CTX = 64;

// Not aborted for the first `checks` reads of `aborted`, aborted from then on. Each function reads it
// once when checking its options, then before each window.
function abortAfter(checks: number): AbortSignal {
  let reads = 0;
  return { get aborted() { return reads++ >= checks; }, reason: new Error('test') } as unknown as AbortSignal;
}

async function partialOf<T>(p: Promise<unknown>): Promise<T | undefined> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FlashdipError && err.code === 'ERR_ABORTED', String(err));
    return err.partial as T | undefined;
  }
  assert.fail('expected ERR_ABORTED');
}

describe('43 model: aborting long computations', function () {
  this.timeout(120000);
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  it('perplexity: the score of the windows done, equal to a run over just those tokens', async () => {
    assert.strictEqual(await partialOf(perplexity(model, TEXT, { ctx: CTX, signal: AbortSignal.abort() })), undefined);
    const partial = await partialOf<PerplexityResult>(perplexity(model, TEXT, { ctx: CTX, signal: abortAfter(1 + 2) }));
    assert.ok(partial);
    const whole = await perplexity(model, TEXT, { ctx: CTX, maxTokens: 2 * (CTX - 1) });
    assert.strictEqual(partial.chunks, 2);
    assert.strictEqual(partial.tokens, 2 * (CTX - 1));
    assert.strictEqual(partial.sumLogProb, whole.sumLogProb);
    assert.strictEqual(partial.ppl, whole.ppl);
    await assert.rejects(perplexity(model, TEXT, { signal: {} as AbortSignal }), (e: FlashdipError) => e.code === 'ERR_INVALID_ARGUMENT');
  });

  it('recordRun: the trace of the windows run', async () => {
    const partial = await partialOf<RunTrace>(recordRun(model, TEXT, { ctx: CTX, signal: abortAfter(1 + 3) }));
    const whole = await recordRun(model, TEXT, { ctx: CTX, maxTokens: 3 * (CTX - 1) });
    assert.ok(partial);
    assert.deepStrictEqual(partial.counts, whole.counts);
    assert.strictEqual(partial.masks.length, whole.masks.length);
  });

  it('calibrate: ERR_ABORTED without a partial table', async () => {
    assert.strictEqual(await partialOf(calibrate(model, TEXT, { ctx: CTX, tokens: 1000, signal: abortAfter(2) })), undefined);
  });

  it('sweep: the rows finished before the abort', async () => {
    const options = { methods: ['dense', 'dip'] as const, densities: [0.5, 0.75], budgets: [undefined], device: DEVICES.phone, ctx: CTX, maxTokens: 2 * (CTX - 1) };
    const all = await sweep(STORIES, TEXT, { ...options, methods: [...options.methods] });
    assert.strictEqual(all.length, 3);
    // Reads: sweep's option check; for the first run sweep's check, then perplexity's and recordRun's
    // option checks and one before each of their 2 windows; the second run's check aborts.
    const rows = await partialOf<SweepRow[]>(sweep(STORIES, TEXT, { ...options, methods: [...options.methods], signal: abortAfter(1 + 1 + 3 + 3) }));
    assert.ok(rows);
    assert.strictEqual(rows.length, 1);
    assert.deepStrictEqual({ ...rows[0], tokensPerSecond: 0 }, { ...all[0], tokensPerSecond: 0 });
  });
});
