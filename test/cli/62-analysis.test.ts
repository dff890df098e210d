// The analysis commands end to end: simulate (with a trace file) and sweep (CSV + SVG).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { STORIES, SHARED, tmpFile } from '../helpers';
import { cli } from './cli';

const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');

describe('62 cli: simulate and sweep', () => {
  it('simulate --json: tokens/s on the paper device, hit rate beside the Belady optimum, a trace file', () => {
    const trace = tmpFile('trace.json');
    const r = cli('simulate', '--model', STORIES, '--text', TEXT, '--ctx', '128', '--max-tokens', '300', '--method', 'dip-ca',
      '--density', '0.5', '--memory-budget', '1300000', '--trace', trace, '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.tokens, 300 + 3);  // three windows, each with its BOS
    assert.ok(out.tokensPerSecond > 0 && out.flashBytesPerToken > 0);
    assert.ok(out.beladyHitRate >= out.hitRate - 1e-12, `${out.beladyHitRate} < ${out.hitRate}`);
    const t = JSON.parse(fs.readFileSync(trace, 'utf8'));
    assert.strictEqual(t.masks.length, 303 * 5 * 2);
    assert.strictEqual(t.counts.length, 303 * 5 * 4);
  });

  it('simulate: a device profile from a JSON file, and a bad one', () => {
    const dev = tmpFile('dev.json');
    fs.writeFileSync(dev, JSON.stringify({ dramBandwidth: 10e9, flashBandwidth: 0.5e9, concurrent: false }));
    const r = cli('simulate', '--model', STORIES, '--text', TEXT, '--max-tokens', '50', '--device', dev, '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    fs.writeFileSync(dev, JSON.stringify({ dramBandwidth: -1, flashBandwidth: 1, concurrent: true }));
    const bad = cli('simulate', '--model', STORIES, '--text', TEXT, '--device', dev, '--json');
    assert.strictEqual(bad.status, 1);
    assert.strictEqual(JSON.parse(bad.stdout).error.code, 'ERR_INVALID_ARGUMENT');
  });

  it('sweep writes a CSV row per run and an SVG with a curve per method', () => {
    const out = tmpFile('sweep');
    const r = cli('sweep', '--model', STORIES, '--text', TEXT, '--out', out, '--methods', 'dense,dip,glu', '--densities', '0.5,0.9',
      '--budgets', 'none,1400000', '--max-tokens', '200', '--ctx', '128', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const csv = fs.readFileSync(`${out}.csv`, 'utf8').trim().split('\n');
    assert.strictEqual(csv.length, 1 + 2 * (1 + 2 + 2));
    assert.match(csv[0], /^method,density,budget_bytes,memory_bytes,perplexity/);
    const svg = fs.readFileSync(`${out}.svg`, 'utf8');
    assert.match(svg, /^<svg /);
    assert.strictEqual((svg.match(/<polyline/g) ?? []).length >= 4, true);
    const bad = cli('sweep', '--model', STORIES, '--text', TEXT, '--out', out, '--methods', 'fast', '--json');
    assert.strictEqual(bad.status, 1);
  });
});
