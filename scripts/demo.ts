// `npm run demo`: streams text from the embedded demo model (models/flashdip-demo.dip.gguf, a small llama
// model this project trained on public-domain books; README "The embedded demo model") twice: all in DRAM
// and dense, then with DIP-CA at MLP density 0.5 under a memory budget that holds the static weights, the KV
// cache, a streaming buffer and half of the MLP columns, which prints the column-cache hit rate and the
// realized density. No --model is given: every command uses the
// embedded model then. Extra arguments go to both runs (e.g. `npm run demo -- --prompt "The sea"`).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_MODEL } from '../lib/default-model';
import { readGguf } from '../lib/gguf';
import { splitBytes } from '../lib/sparsity';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'flashdip.js');
const CTX = 128;
const header = readGguf(DEFAULT_MODEL);
const m = header.metadata;
const kvDim = (Number(m['llama.embedding_length']) / Number(m['llama.attention.head_count'])) * Number(m['llama.attention.head_count_kv']);
const kvBytes = CTX * Number(m['llama.block_count']) * kvDim * 2 * 2; // K and V, f16
const bytes = splitBytes(header);
const budget = bytes.static + kvBytes + bytes.mlpLayer + Math.round(bytes.mlp / 2);
const common = ['--prompt', 'It was a dark night, and', '--max-tokens', '64', '--temperature', '0.7', '--seed', '1', '--threads', '1', '--ctx', String(CTX)];
const runs: [string, string[]][] = [
  ['dense, everything in DRAM', []],
  [`DIP-CA at MLP density 0.5 under a ${(budget / 2 ** 20).toFixed(2)} MiB memory budget (half of the MLP columns)`,
    ['--method', 'dip-ca', '--density', '0.5', '--memory-budget', String(budget)]],
];
let status = 0;
for (const [what, extra] of runs) {
  const args = ['run', ...common, ...extra, ...process.argv.slice(2)];
  console.log(`\ndemo: ${what}\n$ flashdip ${args.map((a) => (/[\s,]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
  status ||= r.status ?? 1;
}
process.exitCode = status;
