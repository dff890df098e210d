// flashdip bench end to end on stories260K: the shape and sanity of its JSON (no timing assertions:
// speed is measured by the bench scripts, never asserted by a test) and its argument errors.
import * as assert from 'assert';
import { STORIES } from '../helpers';
import { cli } from './cli';
import { DEFAULT_MODEL } from '../../lib/default-model';

describe('64 cli: bench', () => {
  it('--json: one object with tokens/s, hit rate, bytes per token and resident memory', () => {
    const r = cli('bench', '--model', STORIES, '--tokens', '12', '--prompt-tokens', '5', '--threads', '1', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    for (const key of ['decodeTokensPerSecond', 'prefillTokensPerSecond', 'hitRate', 'flashBytesPerToken', 'dramBytesPerToken',
      'storeBytesPerToken', 'residentBytes', 'maxResidentBytes', 'loadSeconds'])
      assert.ok(typeof out[key] === 'number' && Number.isFinite(out[key]) && out[key] >= 0, `${key}: ${out[key]}`);
    assert.ok(out.decodeTokensPerSecond > 0 && out.prefillTokensPerSecond > 0);
    assert.strictEqual(out.promptTokens, 5);
    assert.strictEqual(out.generatedTokens, 12);
    assert.strictEqual(out.threads, 1);
    assert.strictEqual(out.method, 'dense');
    assert.strictEqual(out.hitRate, 1);  // no budget: every MLP column is in DRAM
    assert.strictEqual(out.flashBytesPerToken, 0);
    assert.strictEqual(out.memoryBudget, null);
    assert.strictEqual(out.dropCache, null);
    assert.ok(out.residentBytes > 10 * 2 ** 20 && out.residentBytes < 2 ** 32, `residentBytes ${out.residentBytes}`);
  });

  it('dip-ca under a budget with --drop-cache: misses cost flash bytes, the cache drop is reported', () => {
    const r = cli('bench', '--model', STORIES, '--tokens', '16', '--method', 'dip-ca', '--density', '0.5', '--memory-budget', '1300000',
      '--drop-cache', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.method, 'dip-ca');
    assert.strictEqual(out.memoryBudget, 1300000);
    assert.ok(out.cacheFraction > 0 && out.cacheFraction < 1, `cacheFraction ${out.cacheFraction}`);
    assert.ok(out.hitRate > 0 && out.hitRate < 1, `hitRate ${out.hitRate}`);
    assert.ok(out.flashBytesPerToken > 0 && out.dramBytesPerToken > 0);
    assert.strictEqual(out.dropCache.method, 'fadvise');
    assert.ok(out.dropCache.residentAfter <= out.fileBytes);
  });

  it('the text report names what it measured', () => {
    const r = cli('bench', '--model', STORIES, '--tokens', '4');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /decode: +[\d.]+ tok\/s/);
    assert.match(r.stdout, /hit rate 100\.0%/);
  });

  it('bad flags exit 1 with ERR_INVALID_ARGUMENT; a missing file with ERR_IO', () => {
    // (each case is a process start: a few representative ones)
    const cases: [string[], string][] = [
      [['--tokens', 'many'], 'ERR_INVALID_ARGUMENT'],
      [['--density', '2', '--method', 'dip'], 'ERR_INVALID_ARGUMENT'],
      [['--ctx', '8', '--tokens', '16'], 'ERR_INVALID_ARGUMENT'],
      [['--no-such-flag'], 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [args, code] of cases) {
      const r = cli('bench', '--model', STORIES, ...args, '--json');
      assert.strictEqual(r.status, 1, `${args.join(' ')}: exit ${r.status}`);
      assert.strictEqual(JSON.parse(r.stdout).error.code, code, args.join(' '));
    }
    // No --model: the embedded demo model.
    const noModel = cli('bench', '--tokens', '4', '--prompt-tokens', '4', '--json');
    assert.strictEqual(noModel.status, 0, noModel.stderr);
    assert.strictEqual(JSON.parse(noModel.stdout).model, DEFAULT_MODEL);
    const missing = cli('bench', '--model', '/nonexistent/model.gguf', '--json');
    assert.strictEqual(missing.status, 1);
    assert.strictEqual(JSON.parse(missing.stdout).error.code, 'ERR_IO');
    const text = cli('bench', '--model', STORIES, '--tokens', '-3');
    assert.strictEqual(text.status, 1);
    assert.match(text.stderr, /ERR_INVALID_ARGUMENT/);
  });
});
