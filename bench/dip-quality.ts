// Perplexity of every sparsity method at MLP densities 0.25-0.9 on stories260K, and the column-cache
// hit rates of DIP and DIP-CA with half of every MLP matrix cached. Deterministic (no timing), so it
// can run on a busy machine. Usage: npx ts-node bench/dip-quality.ts [--text FILE] [--tokens N] [--json]
import * as fs from 'fs';
import * as path from 'path';
import { execSync } from 'child_process';
import { columnBudget, DEVICES, loadModel, perplexity, recordRun, simulate } from '../lib';

const root = path.join(__dirname, '..');
const shared = path.join(root, '..', 'shared', 'data');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const modelPath = path.join(shared, 'models', 'stories260K.gguf');
const textPath = opt('--text', path.join(shared, 'text', 'tinystories-sample.txt'));
const maxTokens = Number(opt('--tokens', '8192'));
const ctx = 256;

(async () => {
  process.removeAllListeners('warning');
  process.on('warning', () => {});
  const text = fs.readFileSync(textPath, 'utf8');
  const model = await loadModel(modelPath);
  const rows: { method: string; density: number; ppl: number }[] = [];
  const dense = await perplexity(model, text, { ctx, maxTokens });
  rows.push({ method: 'dense', density: 1, ppl: dense.ppl });
  for (const method of ['dip', 'dip-ca', 'glu', 'gate', 'up'] as const)
    for (const density of [0.25, 0.5, 0.75, 0.9]) {
      const r = await perplexity(model, text, { ctx, maxTokens, sparsity: { method, density, ...(method === 'dip-ca' ? { gamma: 0.2 } : {}) } });
      rows.push({ method, density, ppl: r.ppl });
    }
  await model.dispose();

  // Half of every column matrix cached (MLP, and attention rows on a file converted with them).
  const budget = await columnBudget(modelPath, { cacheFraction: 0.5, session: { contextSize: ctx, kvCacheType: 'f32' } });
  const hits: { method: string; policy: string; hitRate: number; belady: number; ppl: number; flashBytesPerToken: number; phoneTokensPerSecond: number }[] = [];
  for (const policy of ['lru', 'lfu'] as const)
    for (const [method, extra] of [['dense', {}], ['dip', {}], ['dip-ca', { gamma: 0.2 }], ['dip-ca', { gamma: 0 }]] as const) {
      const m = await loadModel(modelPath, { memoryBudget: budget, cache: { policy }, sparsity: { method, ...(method === 'dense' ? {} : { density: 0.5 }), ...extra } });
      const r = await perplexity(m, text, { ctx, maxTokens });
      const sim = simulate(await recordRun(m, text, { ctx, maxTokens }), DEVICES.phone);
      hits.push({
        method: method + ('gamma' in extra ? ` (gamma ${extra.gamma})` : ''), policy, hitRate: r.hitRate, belady: sim.beladyHitRate,
        ppl: r.ppl, flashBytesPerToken: r.flashBytesPerToken, phoneTokensPerSecond: sim.tokensPerSecond,
      });
      await m.dispose();
    }
  const commit = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
  if (args.includes('--json')) {
    console.log(JSON.stringify({ commit, text: path.basename(textPath), tokens: dense.tokens, ctx, rows, hits }));
    return;
  }
  console.log(`stories260K, ${dense.tokens} tokens of ${path.basename(textPath)}, chunks of ${ctx - 1} + BOS, commit ${commit}\n`);
  console.log('| method | 0.25 | 0.5 | 0.75 | 0.9 |');
  console.log('| --- | --- | --- | --- | --- |');
  console.log(`| dense | ${dense.ppl.toFixed(3)} | | | |`);
  for (const method of ['dip', 'dip-ca', 'glu', 'gate', 'up'])
    console.log(`| ${method} | ${rows.filter((r) => r.method === method).map((r) => r.ppl.toFixed(3)).join(' | ')} |`);
  console.log(`\nHalf of every MLP matrix cached (memoryBudget ${budget} bytes), MLP density 0.5:\n`);
  console.log('| method | policy | hit rate | Belady optimum | flash KiB/token | simulated phone tok/s | perplexity |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const h of hits)
    console.log(
      `| ${h.method} | ${h.policy} | ${(100 * h.hitRate).toFixed(1)}% | ${(100 * h.belady).toFixed(1)}% | ` +
        `${(h.flashBytesPerToken / 1024).toFixed(1)} | ${h.phoneTokensPerSecond.toFixed(0)} | ${h.ppl.toFixed(3)} |`,
    );
})();
