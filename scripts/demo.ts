// `npm run demo`: streams text from the embedded demo model (models/flashdip-demo.dip.gguf, a small llama
// model this project trained on public-domain books; README "The embedded demo model") twice: all in DRAM
// and dense, then with DIP-CA at MLP and attention density 0.5 under a memory budget that holds the
// static weights, the KV cache, scratch, a streaming buffer and half of the MLP and attention columns,
// which prints the column-cache hit rate and the realized density. No --model is given: every command
// uses the embedded model then. Extra arguments go to both runs (e.g. `npm run demo -- --prompt "The sea"`).
import { spawnSync } from 'child_process';
import * as path from 'path';
import { columnBudget } from '../lib';
import { DEFAULT_MODEL } from '../lib/default-model';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'flashdip.js');
const CTX = 128;

async function main(): Promise<void> {
  // What the engine reserves for the model and one session of this shape, plus half of the columns.
  const budget = await columnBudget(DEFAULT_MODEL, { cacheFraction: 0.5, sparsity: { method: 'dip-ca', density: 0.5 }, session: { contextSize: CTX } });
  const common = ['--prompt', 'It was a dark night, and', '--max-tokens', '64', '--temperature', '0.6', '--repeat-penalty', '1.1', '--seed', '1',
    '--threads', '1', '--ctx', String(CTX)];
  const runs: [string, string[]][] = [
    ['dense, everything in DRAM', []],
    [`DIP-CA at MLP and attention density 0.5 under a ${(budget / 2 ** 20).toFixed(2)} MiB memory budget (half of the MLP and attention columns)`,
      ['--method', 'dip-ca', '--density', '0.5', '--attn-density', '0.5', '--memory-budget', String(budget)]],
  ];
  let status = 0;
  for (const [what, extra] of runs) {
    const args = ['run', ...common, ...extra, ...process.argv.slice(2)];
    console.log(`\ndemo: ${what}\n$ flashdip ${args.map((a) => (/[\s,]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
    const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
    status ||= r.status ?? 1;
  }
  process.exitCode = status;
}

void main();
