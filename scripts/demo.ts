// `npm run demo`: generates a small random-weight llama model (once, into .tmp/) and runs
// `flashdip run` on it, so a fresh checkout shows the whole path working without any download.
// Random weights produce gibberish; point `flashdip run --model` at a real GGUF for real text.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { makeModel } from './make-model';

const root = path.join(__dirname, '..');
const model = path.join(root, '.tmp', 'demo', 'demo-llama-q8_0.gguf');
if (!fs.existsSync(model)) {
  fs.mkdirSync(path.dirname(model), { recursive: true });
  console.log(`demo: writing a random-weight llama model to ${path.relative(root, model)}`);
  makeModel({ out: model, arch: 'llama', dim: 512, layers: 8, heads: 8, kvHeads: 4, ffn: 1536, vocab: 2048, ctx: 1024, type: 'q8_0', seed: 1 });
}
const args = ['run', '--model', model, '--prompt', 'Once upon a time', '--max-tokens', '48', '--temperature', '0.8', '--seed', '1', ...process.argv.slice(2)];
console.log(`demo: flashdip ${args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
const r = spawnSync(process.execPath, [path.join(root, 'bin', 'flashdip.js'), ...args], { stdio: 'inherit' });
process.exitCode = r.status ?? 1;
