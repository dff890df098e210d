// flashdip calibrate end to end, and --thresholds on ppl, run, simulate and sweep.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SHARED, STORIES, tmpFile } from '../helpers';
import { cli } from './cli';

const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');

describe('64 cli: calibrate and --thresholds', function () {
  this.timeout(300000);
  const table = tmpFile('cli-glu.json');

  it('calibrate writes a table; ppl --thresholds realizes its density on the same text', () => {
    const r = cli('calibrate', STORIES, '--text', TEXT, '--method', 'glu', '--density', '0.5', '--tokens', '500', '--ctx', '128', '-o', table, '--json');
    assert.strictEqual(r.status, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.out, table);
    const t = JSON.parse(fs.readFileSync(table, 'utf8'));
    assert.strictEqual(t.format, 'flashdip-thresholds');
    assert.strictEqual(t.version, 1);
    assert.deepStrictEqual({ ...t.model, name: undefined }, { arch: 'llama', layers: 5, dim: 64, ffn: 172, name: undefined });
    assert.strictEqual(t.method, 'glu');
    assert.strictEqual(t.keepH, 0.5);
    assert.strictEqual(t.thresholds.h.length, 5);
    assert.strictEqual(t.calibration.text, 'tinystories-sample.txt');
    const p = cli('ppl', '--model', STORIES, '--text', TEXT, '--ctx', '128', '--max-tokens', '500', '--thresholds', table, '--json');
    assert.strictEqual(p.status, 0, p.stderr);
    const pr = JSON.parse(p.stdout);
    assert.strictEqual(pr.method, 'glu');
    assert.ok(pr.thresholds && Math.abs(pr.density - 0.5) <= 0.02, `${pr.density}`);
    const human = cli('ppl', '--model', STORIES, '--text', TEXT, '--ctx', '128', '--max-tokens', '100', '--thresholds', table);
    assert.match(human.stdout, /calibrated thresholds.*realized density/);
  });

  it('run, simulate and sweep take --thresholds', () => {
    const run = cli('run', '--model', STORIES, '--prompt', 'Once upon a time', '--max-tokens', '8', '--temperature', '0', '--thresholds', table, '--json');
    assert.strictEqual(run.status, 0, run.stderr);
    const st = JSON.parse(run.stdout).stats.sparsity;
    assert.ok(st.thresholds && st.method === 'glu' && st.keptH > 0 && st.keptH < 1, JSON.stringify(st).slice(0, 300));
    const sim = cli('simulate', '--model', STORIES, '--text', TEXT, '--max-tokens', '100', '--ctx', '128', '--thresholds', table, '--json');
    assert.strictEqual(sim.status, 0, sim.stderr);
    const out = tmpFile('sweep-thr');
    const sw = cli('sweep', '--model', STORIES, '--text', TEXT, '--out', out, '--methods', 'glu', '--densities', '0.5', '--thresholds', table,
      '--max-tokens', '100', '--ctx', '128', '--json');
    assert.strictEqual(sw.status, 0, sw.stderr);
    const rows = JSON.parse(sw.stdout).rows;
    assert.deepStrictEqual(rows.map((r: { method: string }) => r.method), ['glu', 'glu+thr']);
    assert.ok(Math.abs(rows[1].realizedDensity - 0.5) < 0.05);
  });

  it('bad tables and flags: exit 1 with ERR_INVALID_ARGUMENT', () => {
    const bad = tmpFile('cli-bad.json');
    fs.writeFileSync(bad, JSON.stringify({ format: 'flashdip-thresholds', version: 1 }));
    for (const args of [
      ['ppl', '--model', STORIES, '--text', TEXT, '--thresholds', bad],
      ['ppl', '--model', STORIES, '--text', TEXT, '--thresholds', table, '--method', 'dip'],
      ['ppl', '--model', STORIES, '--text', TEXT, '--thresholds', table, '--density', '0.5'],
      ['calibrate', STORIES, '--text', TEXT, '--method', 'dip-ca', '-o', tmpFile('x.json')],
      ['calibrate', STORIES, '--text', TEXT, '--density', '2', '-o', tmpFile('x.json')],
      ['calibrate', STORIES, '--text', TEXT],
      ['sweep', '--model', STORIES, '--text', TEXT, '--out', tmpFile('s'), '--thresholds', bad],
    ]) {
      const r = cli(...args, '--json');
      assert.strictEqual(r.status, 1, args.join(' '));
      assert.strictEqual(JSON.parse(r.stdout).error.code, 'ERR_INVALID_ARGUMENT', args.join(' ') + r.stdout);
    }
  });
});
