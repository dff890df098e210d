// The `onProgress(done, total)` option of the long computations: called as the work goes with counts
// that only grow, never past the total, and ending at it; anything but a function is refused.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { calibrate, DEVICES, FlashdipError, loadModel, Model, perplexity, recordRun } from '../../lib';
import { convert } from '../../lib/convert';
import { sweep } from '../../lib/sweep';
import { SHARED, STORIES, tmpFile } from '../helpers';

const TEXT = fs.readFileSync(path.join(SHARED, 'text', 'tinystories-sample.txt'), 'utf8');

type Calls = [number, number][];
function recorder(): { calls: Calls; onProgress: (done: number, total: number) => void } {
  const calls: Calls = [];
  return { calls, onProgress: (done, total) => calls.push([done, total]) };
}

// Counts strictly increase under one fixed total and end at it; `expectedTotal` when known.
function assertProgress(calls: Calls, minCalls: number, expectedTotal?: number): void {
  assert.ok(calls.length >= minCalls, `${calls.length} calls, expected >= ${minCalls}`);
  const total = calls[0][1];
  if (expectedTotal !== undefined) assert.strictEqual(total, expectedTotal);
  for (let i = 0; i < calls.length; i++) {
    assert.strictEqual(calls[i][1], total, `total changed at call ${i}`);
    assert.ok(calls[i][0] > (i > 0 ? calls[i - 1][0] : 0), `count did not grow at call ${i}: ${JSON.stringify(calls.slice(0, i + 1))}`);
  }
  assert.strictEqual(calls[calls.length - 1][0], total);
}

const invalid = (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_INVALID_ARGUMENT' && /onProgress/.test(e.message);

describe('44 model: progress callbacks', function () {
  this.timeout(120000);
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  it('perplexity: tokens scored after each window, ending at the tokens of the text', async () => {
    const p = recorder();
    const r = await perplexity(model, TEXT, { ctx: 64, maxTokens: 500, onProgress: p.onProgress });
    assertProgress(p.calls, Math.ceil(500 / 63), 500);
    assert.strictEqual(p.calls.length, r.chunks);
    const s = recorder();
    await perplexity(model, TEXT, { ctx: 64, maxTokens: 300, mode: 'sliding', stride: 16, onProgress: s.onProgress });
    assertProgress(s.calls, 10, 300);
    await assert.rejects(perplexity(model, TEXT, { maxTokens: 10, onProgress: 1 as never }), invalid);
  });

  it('recordRun and calibrate: tokens run after each window', async () => {
    const r = recorder();
    await recordRun(model, TEXT, { ctx: 64, maxTokens: 300, onProgress: r.onProgress });
    assertProgress(r.calls, 5, 300);
    const c = recorder();
    await calibrate(model, TEXT, { ctx: 64, tokens: 300, onProgress: c.onProgress });
    assertProgress(c.calls, 5, 300);
    await assert.rejects(recordRun(model, TEXT, { maxTokens: 10, onProgress: 'x' as never }), invalid);
    await assert.rejects(calibrate(model, TEXT, { tokens: 10, onProgress: {} as never }), invalid);
  });

  it('sweep: tokens over all runs (each scores and records the text), ending at 2 x tokens x runs', async () => {
    const p = recorder();
    const rows = await sweep(STORIES, TEXT, {
      methods: ['dense', 'dip'], densities: [0.5], budgets: [undefined, 1400000], device: DEVICES.phone, ctx: 64, maxTokens: 100,
      onProgress: p.onProgress,
    });
    assert.strictEqual(rows.length, 4);
    assertProgress(p.calls, 4 * 2 * 2, 2 * 100 * 4);
  });

  it('convert: bytes written after each tensor, ending at the tensor data size', async () => {
    const p = recorder();
    await convert(STORIES, tmpFile('progress.dip.gguf'), { onProgress: p.onProgress });
    assertProgress(p.calls, 10);
    await assert.rejects(convert(STORIES, tmpFile('progress-bad.dip.gguf'), { onProgress: 2 as never }), invalid);
  });
});
