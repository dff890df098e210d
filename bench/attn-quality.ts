// DIP on attention inputs (sparsity.attentionDensity) on stories260K: perplexity for attention
// densities 1, 0.75, 0.5 crossed with MLP densities 1, 0.75, 0.5, with everything in DRAM (dip) and
// on the converted file (attention rows, layout version 2) under a budget that caches half of every
// column matrix, MLP and attention (dip-ca, gamma 0.2, LFU): hit rate, flash bytes per token and the
// simulated phone speed beside the perplexity. Deterministic (no timing), so it can run on a busy
// machine. Usage: npx ts-node bench/attn-quality.ts [--text FILE] [--tokens N] [--gamma G] [--budgeted-only] [--json]
import { execSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { columnBudget, DEVICES, loadModel, perplexity, recordRun, simulate, SparsityOptions } from '../lib';
import { convert } from '../lib/convert';

const root = path.join(__dirname, '..');
const shared = path.join(root, '..', 'shared', 'data');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const modelPath = path.join(shared, 'models', 'stories260K.gguf');
const textPath = opt('--text', path.join(shared, 'text', 'tinystories-sample.txt'));
const maxTokens = Number(opt('--tokens', '8192'));
const gamma = Number(opt('--gamma', '0.2'));
const ctx = 256;
const DENSITIES = [1, 0.75, 0.5];

(async () => {
  process.removeAllListeners('warning');
  process.on('warning', () => {});
  const text = fs.readFileSync(textPath, 'utf8');
  const dip = path.join(os.tmpdir(), `flashdip-attn-quality-${process.pid}.dip.gguf`);
  await convert(modelPath, dip);
  try {
    // Everything in DRAM: dip (MLP density 1 is dense) on the standard file.
    const inDram: { mlp: number; attn: number; ppl: number; keptAttn: number }[] = [];
    const model = await loadModel(modelPath);
    for (const mlp of args.includes('--budgeted-only') ? [] : DENSITIES)
      for (const attn of DENSITIES) {
        const sparsity: SparsityOptions = { method: mlp === 1 ? 'dense' : 'dip', ...(mlp === 1 ? {} : { density: mlp }), attentionDensity: attn };
        const r = await perplexity(model, text, { ctx, maxTokens, sparsity });
        inDram.push({ mlp, attn, ppl: r.ppl, keptAttn: r.keptAttn });
      }
    await model.dispose();

    // The converted file under a budget holding half of every column matrix (MLP and attention rows).
    const budget = await columnBudget(dip, { cacheFraction: 0.5, session: { contextSize: ctx, kvCacheType: 'f32' } });
    const budgeted: { mlp: number; attn: number; ppl: number; hitRate: number; flashBytesPerToken: number; phone: number; cacheFraction: number }[] = [];
    for (const mlp of DENSITIES)
      for (const attn of DENSITIES) {
        const m = await loadModel(dip, { memoryBudget: budget, cache: { policy: 'lfu' }, sparsity: { method: 'dip-ca', density: mlp, gamma, attentionDensity: attn } });
        const r = await perplexity(m, text, { ctx, maxTokens });
        const sim = simulate(await recordRun(m, text, { ctx, maxTokens }), DEVICES.phone);
        budgeted.push({ mlp, attn, ppl: r.ppl, hitRate: r.hitRate, flashBytesPerToken: r.flashBytesPerToken, phone: sim.tokensPerSecond, cacheFraction: r.cacheFraction });
        await m.dispose();
      }
    const commit = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
    if (args.includes('--json')) {
      console.log(JSON.stringify({ commit, text: path.basename(textPath), tokens: maxTokens, ctx, gamma, budget, bytes, inDram, budgeted }));
      return;
    }
    console.log(`stories260K, ${maxTokens} tokens of ${path.basename(textPath)}, chunks of ${ctx - 1} + BOS, commit ${commit}\n`);
    if (inDram.length) {
      console.log('Perplexity, everything in DRAM (dip; MLP density 1 = dense MLP), standard file:\n');
      console.log('| MLP density \\ attention density | 1 | 0.75 | 0.5 |');
      console.log('| --- | --- | --- | --- |');
      for (const mlp of DENSITIES)
        console.log(`| ${mlp} | ${inDram.filter((r) => r.mlp === mlp).map((r) => r.ppl.toFixed(3)).join(' | ')} |`);
    }
    console.log(`\nConverted file (attention rows), memoryBudget ${budget} bytes: half of every MLP and attention matrix cached ` +
      `(cache fraction ${budgeted[0].cacheFraction.toFixed(3)}), dip-ca gamma ${gamma}, LFU:\n`);
    console.log('| MLP density | attention density | perplexity | hit rate | flash KiB/token | simulated phone tok/s |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of budgeted)
      console.log(`| ${r.mlp} | ${r.attn} | ${r.ppl.toFixed(3)} | ${(100 * r.hitRate).toFixed(1)}% | ${(r.flashBytesPerToken / 1024).toFixed(1)} | ${r.phone.toFixed(0)} |`);
  } finally {
    fs.rmSync(dip, { force: true });
  }
})();
