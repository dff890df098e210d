// Top-k against calibrated thresholds (flashdip calibrate) for dip, glu, gate and up at MLP densities
// 0.25-0.9 on stories260K: perplexity on the evaluation text, with the realized density beside each.
// Thresholds are calibrated on another file (default: Peter Pan from the Gutenberg set) and, for
// comparison, on held-out TinyStories (the part of the evaluation file after the scored tokens).
// Deterministic (no timing). Usage:
//   npx ts-node bench/calibrated.ts [--text FILE] [--calib FILE] [--tokens N] [--calib-tokens N] [--json]
import * as fs from 'fs';
import * as path from 'path';
import { execSync } from 'child_process';
import { loadModel, perplexity } from '../lib';
import { calibrate } from '../lib/thresholds';

const root = path.join(__dirname, '..');
const shared = path.join(root, '..', 'shared', 'data');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const modelPath = path.join(shared, 'models', 'stories260K.gguf');
const textPath = opt('--text', path.join(shared, 'text', 'tinystories-sample.txt'));
const calibPath = opt('--calib', path.join(shared, 'text', 'gutenberg', 'peter-pan.txt'));
const maxTokens = Number(opt('--tokens', '4096'));
const calibTokens = Number(opt('--calib-tokens', '4096'));
const ctx = 256;
const METHODS = ['dip', 'glu', 'gate', 'up'] as const;
const DENSITIES = [0.25, 0.5, 0.75, 0.9];

interface Cell { ppl: number; density: number }
interface Row { method: string; density: number; topk: Cell; other: Cell; heldOut: Cell }

(async () => {
  process.removeAllListeners('warning');
  process.on('warning', () => {});
  const text = fs.readFileSync(textPath, 'utf8');
  const calibText = fs.readFileSync(calibPath, 'utf8');
  const model = await loadModel(modelPath);
  // Held-out TinyStories: the tokens after the scored ones, as text.
  const all = model.tokenize(text);
  const heldOutText = model.detokenize(all.slice(maxTokens + 1, maxTokens + 1 + calibTokens));
  const dense = await perplexity(model, text, { ctx, maxTokens });
  const cell = (r: { ppl: number; density: number }): Cell => ({ ppl: r.ppl, density: r.density });
  const rows: Row[] = [];
  for (const method of METHODS)
    for (const density of DENSITIES) {
      const topk = await perplexity(model, text, { ctx, maxTokens, sparsity: { method, density } });
      const tOther = await calibrate(model, calibText, { method, density, tokens: calibTokens, ctx });
      const other = await perplexity(model, text, { ctx, maxTokens, sparsity: { thresholds: tOther } });
      const tHeld = await calibrate(model, heldOutText, { method, density, tokens: calibTokens, ctx });
      const heldOut = await perplexity(model, text, { ctx, maxTokens, sparsity: { thresholds: tHeld } });
      rows.push({ method, density, topk: cell(topk), other: cell(other), heldOut: cell(heldOut) });
      if (!args.includes('--json')) process.stderr.write(`${method} ${density} done\n`);
    }
  await model.dispose();
  const commit = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
  if (args.includes('--json')) {
    console.log(JSON.stringify({ commit, text: path.basename(textPath), calib: path.basename(calibPath), tokens: dense.tokens, ctx, dense: dense.ppl, rows }));
    return;
  }
  console.log(
    `stories260K, perplexity on ${dense.tokens} tokens of ${path.basename(textPath)} (chunks of ${ctx - 1} + BOS), dense ${dense.ppl.toFixed(3)}; ` +
      `thresholds calibrated (mode masked) on ${calibTokens} tokens of ${path.basename(calibPath)} or of held-out ${path.basename(textPath)}; commit ${commit}\n`,
  );
  console.log(`| method | target density | top-k ppl (density) | thresholds from ${path.basename(calibPath)} | thresholds from held-out TinyStories |`);
  console.log('| --- | --- | --- | --- | --- |');
  const f = (c: Cell) => `${c.ppl.toFixed(3)} (${c.density.toFixed(3)})`;
  for (const r of rows) console.log(`| ${r.method} | ${r.density} | ${f(r.topk)} | ${f(r.other)} | ${f(r.heldOut)} |`);
})();
