// The planner end to end on stories260K (a budget that caches half the MLP), plan files as user input,
// --plan on the commands that load a model, probe-disk, and Ctrl-C during a plan.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel, perplexity, readGguf, readPlan } from '../../lib';
import { checkDevice } from '../../lib/simulate';
import { splitBytes } from '../../lib/sparsity';
import { SHARED, STORIES, tmpFile } from '../helpers';
import { spawnSync } from 'child_process';
import { cli, onTerminalArgs, Running } from './cli';

const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');
const CTX = 64;
const TOKENS = 252;  // four windows of 63

// The budget that leaves half of the MLP in the column cache: static weights, the f32 KV cache of a
// CTX window (what ppl and the planner use), one layer's streaming buffer, then half the MLP.
function halfMlpBudget(): number {
  const h = readGguf(STORIES);
  const b = splitBytes(h);
  const md = h.metadata as Record<string, number>;
  const layers = md['llama.block_count'], kvHeads = md['llama.attention.head_count_kv'];
  const headDim = md['llama.embedding_length'] / md['llama.attention.head_count'];
  const kv = 2 * layers * kvHeads * headDim * 4 * CTX;
  return b.static + kv + b.mlpLayer + Math.floor(b.mlp / 2);
}

describe('68 cli: plan', function () {
  this.timeout(600000);
  const budget = halfMlpBudget();
  const planFile = tmpFile('plan.json');
  let out: any;

  before(() => {
    // A small grid keeps this short; the default grid adds densities, gammas, read blocks and calibration.
    const r = cli('plan', '--model', STORIES, '--text', TEXT, '--memory-budget', String(budget), '--max-ppl-increase', '0.10',
      '--ctx', String(CTX), '--max-tokens', String(TOKENS), '--densities', '0.8,0.65,0.5', '--gammas', '0.2,0.5', '--read-blocks', '0',
      '--calibrate', 'no', '-o', planFile, '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    out = JSON.parse(r.stdout);
  });

  it('picks a sparse configuration within 10% of dense perplexity, the fastest predicted among those', () => {
    assert.ok(out.dense.ppl > 1);
    assert.strictEqual(out.configurations, 1 + 3 + 3 * 2);
    assert.notStrictEqual(out.chosen.sparsity.method, 'dense', JSON.stringify(out.chosen));
    assert.ok(out.chosen.ppl <= 1.1 * out.dense.ppl, `${out.chosen.ppl} vs dense ${out.dense.ppl}`);
    assert.ok(Math.abs(out.chosen.pplIncrease - (out.chosen.ppl / out.dense.ppl - 1)) < 1e-12);
    // The front: fastest first, perplexity falling; every entry within the bound on it is no faster than the choice.
    for (let i = 1; i < out.front.length; i++) {
      assert.ok(out.front[i].tokensPerSecond <= out.front[i - 1].tokensPerSecond);
      assert.ok(out.front[i].ppl < out.front[i - 1].ppl);
    }
    for (const e of out.front) if (e.pplIncrease <= 0.1) assert.ok(e.tokensPerSecond <= out.chosen.tokensPerSecond);
    assert.ok(out.front.some((e: any) => e.ppl === out.chosen.ppl && e.tokensPerSecond === out.chosen.tokensPerSecond));
  });

  it('writes a versioned plan that ppl --plan reproduces exactly, and loadModel(path, plan) takes', async () => {
    const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
    assert.deepStrictEqual(Object.keys(plan).sort(), ['cache', 'memoryBudget', 'sparsity', 'version']);
    assert.strictEqual(plan.version, 1);
    assert.strictEqual(plan.memoryBudget, budget);
    assert.deepStrictEqual(plan.sparsity, out.chosen.sparsity);
    const r = cli('ppl', '--model', STORIES, '--text', TEXT, '--ctx', String(CTX), '--max-tokens', String(TOKENS), '--plan', planFile, '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(JSON.parse(r.stdout).ppl, out.chosen.ppl);
    process.removeAllListeners('warning');
    const m = await loadModel(STORIES, plan);
    try {
      assert.strictEqual((await perplexity(m, fs.readFileSync(TEXT, 'utf8'), { ctx: CTX, maxTokens: TOKENS })).ppl, out.chosen.ppl);
    } finally {
      await m.dispose();
    }
  });

  it('plan files are checked: unknown keys, versions, bad options, budget or sparsity flags beside --plan', () => {
    const good = { version: 1, memoryBudget: budget, sparsity: { method: 'dip', density: 0.5 }, cache: {} };
    assert.deepStrictEqual(readPlan('plan', good), good);
    const bad = (p: unknown, message: RegExp) => assert.throws(() => readPlan('plan', p), { code: 'ERR_INVALID_ARGUMENT', message });
    bad({ ...good, chosen: {} }, /unknown option 'chosen'/);
    bad({ ...good, version: 2 }, /plan.version: must be 1/);
    bad({ memoryBudget: budget, sparsity: {} }, /plan.version: must be 1/);
    bad({ version: 1, sparsity: {} }, /memoryBudget/);
    bad({ ...good, sparsity: { method: 'dip', density: 2 } }, /sparsity.density/);
    bad({ ...good, sparsity: { method: 'dip', dnsity: 0.5 } }, /unknown option 'dnsity'/);
    bad([good], /must be a plan object/);
    const file = tmpFile('bad-plan.json');
    fs.writeFileSync(file, '{ "version": 1, ');
    bad(file, /not valid JSON/);
    assert.throws(() => readPlan('plan', tmpFile('no-such-plan.json')), { code: 'ERR_IO' });
    fs.writeFileSync(file, JSON.stringify({ ...good, version: 3 }));
    for (const args of [['--plan', file], ['--plan', planFile, '--density', '0.5'], ['--plan', planFile, '--memory-budget', '2MB']]) {
      const r = cli('ppl', '--model', STORIES, '--text', TEXT, '--max-tokens', '20', ...args, '--json');
      assert.strictEqual(r.status, 1, r.stdout);
      const e = JSON.parse(r.stdout).error;
      assert.strictEqual(e.code, 'ERR_INVALID_ARGUMENT');
      assert.match(e.message, /^--plan/);
    }
  });

  it('probe-disk: a device profile the simulator takes, measured on a given file', () => {
    const file = tmpFile('probe.bin');
    fs.writeFileSync(file, Buffer.alloc(16 * 2 ** 20, 7));
    const profile = tmpFile('disk.json');
    const r = cli('probe-disk', '--file', file, '-o', profile, '--json');
    fs.rmSync(file, { force: true });
    assert.strictEqual(r.status, 0, r.stderr);
    const d = JSON.parse(fs.readFileSync(profile, 'utf8'));
    assert.deepStrictEqual(JSON.parse(r.stdout), d);
    checkDevice(d);
    assert.strictEqual(d.format, 'flashdip-device');
    for (const k of ['dramBandwidth', 'staticBandwidth', 'flashBandwidth', 'requestLatency', 'iops']) assert.ok(d[k] > 0, `${k} ${d[k]}`);
    const sim = cli('simulate', '--model', STORIES, '--text', TEXT, '--ctx', String(CTX), '--max-tokens', '50', '--method', 'dip-ca', '--memory-budget', String(budget),
      '--device', profile, '--json');
    assert.strictEqual(sim.status, 0, sim.stderr);
    assert.ok(JSON.parse(sim.stdout).requestsPerToken > 0);
  });

  it('on a terminal: one bar over every pass (scoring, recording, calibrating) ending at 100%, each configuration reported', () => {
    const r = spawnSync('script', onTerminalArgs(['plan', '--model', STORIES, '--text', TEXT, '--memory-budget', String(budget), '--ctx', String(CTX),
      '--max-tokens', '100', '--simulate-tokens', '50', '--methods', 'dip', '--densities', '0.5', '-o', tmpFile('tty-plan.json')]),
    { encoding: 'utf8', timeout: 120000 });
    assert.strictEqual(r.status, 0, r.stdout);
    // dense and dip top-k: 100 scored + 50 recorded each; dip with thresholds: 100 calibrated + 100 + 50.
    assert.match(r.stdout, /plan \[█+\] 100% \| 550\/550 tokens/);
    assert.match(r.stdout, /dense: ppl/);
    assert.match(r.stdout, /dip thresholds 0.50: ppl/);
    assert.match(r.stdout, /chosen \(within \+10.0%\)/);
  });

  it('Ctrl-C: the configurations done so far, "partial": true, no plan written, exit 130', async () => {
    const file = tmpFile('interrupted-plan.json');
    fs.rmSync(file, { force: true });
    const p = new Running(['plan', '--model', STORIES, '--text', TEXT, '--memory-budget', String(budget), '--ctx', String(CTX), '--max-tokens', '2000',
      '-o', file, '--json']);
    await p.waitFor((r) => /dense: ppl/.test(r.stderr));
    p.interrupt();
    const r = await p.done;
    assert.strictEqual(r.status, 130, r.stderr);
    const o = JSON.parse(r.stdout);
    assert.strictEqual(o.partial, true);
    assert.ok(o.configurations >= 1 && o.dense.ppl > 1);
    assert.ok(!fs.existsSync(file));
  });
});
