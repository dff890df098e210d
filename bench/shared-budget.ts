// One memoryBudget per model: peak RSS of 1 and 4 sessions generating at once on one budgeted model,
// each run in its own child process (test/store/rss-child.ts), and the refusal of sessions beyond
// the budget. Deterministic in memory, not timed: it can run on a busy machine.
// Usage: npx ts-node --transpile-only bench/shared-budget.ts [--model FILE.dip.gguf] [--ctx N] [--tokens N] [--method M]
// Without --model it makes a ~160M-parameter random q8_0 llama (make-model, llama-spm vocabulary)
// and converts it with --type keep into .tmp/bench/shared-budget.dip.gguf.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel } from '../lib';
import { convert } from '../lib/convert';
import { makeModel } from '../scripts/make-model';

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const ctx = Number(opt('--ctx', '128'));
const tokens = Number(opt('--tokens', '64'));
const method = opt('--method', 'dip-ca');
const mib = (x: number) => (x / 2 ** 20).toFixed(1);

async function model(): Promise<string> {
  const given = opt('--model', '');
  if (given) return given;
  const dir = path.join(root, '.tmp', 'bench');
  const out = path.join(dir, 'shared-budget.dip.gguf');
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(dir, { recursive: true });
  const src = path.join(dir, 'shared-budget.gguf');
  makeModel({
    out: src, arch: 'llama', dim: 768, layers: 12, heads: 12, ffn: 3072, ctx: 2048, type: 'q8_0', seed: 7,
    vocabFrom: path.join(root, '..', 'shared', 'data', 'tokenizer', 'vocab', 'ggml-vocab-llama-spm.gguf'),
  });
  await convert(src, out, { type: 'keep' });
  fs.rmSync(src);
  return out;
}

function child(file: string, budget: number, sessions: number) {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'test', 'store', 'rss-child.ts'),
    file, String(budget), method, String(tokens), String(sessions), String(ctx)], { encoding: 'utf8', cwd: root });
  if (r.status !== 0) return { error: r.stderr.trim().split('\n').pop() ?? '' };
  return JSON.parse(r.stdout) as { base: number; peak: number; growth: number; generatedAll: number[]; memory: { budget: { cacheFraction: number } } };
}

(async () => {
  process.removeAllListeners('warning');
  const file = await model();
  const probe = await loadModel(file, { memoryBudget: 1e12 });
  const bytes = probe.memory().bytes;
  probe.createSession({ contextSize: ctx });
  const b = probe.memory().budget!;
  const per = b.kvCache + b.scratch;
  await probe.dispose();
  const fixed = bytes.static + bytes.mlpLayer;
  console.log(`${path.basename(file)}: ${mib(fs.statSync(file).size)} MiB; static ${mib(bytes.static)}, MLP ${mib(bytes.mlp)}, ` +
    `streaming buffer ${mib(bytes.mlpLayer)}, embedding streamed ${mib(bytes.streamed)} MiB; a session (contextSize ${ctx}, f16): ` +
    `KV ${mib(b.kvCache)} + scratch ${mib(b.scratch)} MiB; ${method}, ${tokens} tokens each, greedy`);
  console.log('\n| budget | sessions | peak RSS | RSS growth | cache fraction | vs 1 session |');
  console.log('|---|---|---|---|---|---|');
  for (const [label, budget] of [
    ['room for 4 sessions + 30% of the MLP', Math.floor(fixed + 4 * per + 0.3 * bytes.mlp)],
    ['room for 1 session + 30% of the MLP: 3 more squeeze the cache', Math.floor(fixed + per + 0.3 * bytes.mlp)],
    ['room for 1 session + 10% of the MLP: a 4th does not fit', Math.floor(fixed + per + 0.1 * bytes.mlp)],
  ] as const) {
    const one = child(file, budget, 1);
    if ('error' in one) throw new Error(one.error);
    for (const [n, r] of [[1, one], [4, child(file, budget, 4)]] as const) {
      if ('error' in r) {
        console.log(`| ${mib(budget)} MiB (${label}) | ${n} | refused: ${r.error.replace(/\|/g, '/')} | | | |`);
        continue;
      }
      console.log(`| ${mib(budget)} MiB (${label}) | ${n} | ${mib(r.peak)} MiB | ${mib(r.growth)} MiB | ${r.memory.budget.cacheFraction.toFixed(3)} | ${(r.peak / one.peak).toFixed(3)}x |`);
    }
  }
})();
