// Issue 11: the KV cache of a gemma3-shaped model, whose sliding-window layers keep a ring of their
// window plus one batch. Makes a random-weight gemma3 file with Gemma 3 1B's attention shape (26
// layers, 5 of 6 sliding with a window of 512, 4 query heads and 1 KV head of 256 dims; a narrow
// residual, MLP and vocabulary, q8_0 weights, so that the KV cache dominates), fills one session of --ctx positions
// (f16 KV cache, batchSize 64) and reports the KV bytes the session reserves and the peak RSS of the
// process, each run in a child of its own. With --before DIR (a checkout of an earlier commit with its
// addon built) the runs alternate between DIR's lib and this checkout's.
//
//   npx ts-node bench/swa-kv.ts [--ctx 8192] [--runs 2] [--before DIR]
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { makeModel } from '../scripts/make-model';

const ROOT = path.resolve(__dirname, '..');
const SHAPE = { arch: 'gemma3' as const, dim: 256, layers: 26, heads: 4, kvHeads: 1, headDim: 256, ffn: 512, vocab: 512, slidingWindow: 512, seed: 7 };

interface Run { root: string; kvBytes: number; rssBeforeEval: number; maxRss: number; seconds: number }

async function child(root: string, file: string, ctx: number): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { loadModel } = require(path.join(root, 'lib')) as typeof import('../lib');
  const model = await loadModel(file);
  const session = model.createSession({ contextSize: ctx, kvCacheType: 'f16', batchSize: 64, threads: 1 });
  const rssBeforeEval = process.memoryUsage().rss;
  const t0 = performance.now();
  let x = 12345;
  for (let done = 0; done < ctx; done += 512) {
    const chunk = Array.from({ length: Math.min(512, ctx - done) }, () => ((x = (x * 1103515245 + 12345) >>> 0) % (SHAPE.vocab - 3)) + 3);
    await session.evaluate(chunk);
  }
  const seconds = (performance.now() - t0) / 1000;
  // The KV cache the session reserves, as the budget counts it (the native context's, which the
  // commit before this change has too).
  const kvBytes = (session as unknown as { native: { bytes(): { kv: number } } }).native.bytes().kv;
  const run: Run = { root, kvBytes, rssBeforeEval, maxRss: process.resourceUsage().maxRSS * 1024, seconds };
  process.stdout.write(JSON.stringify(run) + '\n');
  await session.dispose();
  await model.dispose();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ctx: { type: 'string' }, runs: { type: 'string' }, before: { type: 'string' }, child: { type: 'string' }, file: { type: 'string' } } });
  const ctx = Number(values.ctx ?? 8192);
  if (values.child) return child(values.child, values.file!, ctx);
  fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
  const file = path.join(ROOT, '.tmp', 'swa-kv-gemma3.gguf');
  makeModel({ ...SHAPE, ctx, type: 'q8_0', out: file });
  const roots = values.before ? [path.resolve(values.before), ROOT] : [ROOT];
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  try {
    for (let r = 0; r < Number(values.runs ?? 2); r++)
      for (const root of roots) {
        const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--child', root, '--file', file, '--ctx', String(ctx)],
          { cwd: ROOT, encoding: 'utf8' });
        const run = JSON.parse(out.trim().split('\n').pop()!) as Run;
        process.stdout.write(`${root === ROOT ? 'this checkout' : root}: ctx ${ctx}, KV ${mib(run.kvBytes)} MiB, RSS before eval ${mib(run.rssBeforeEval)} MiB, ` +
          `peak RSS ${mib(run.maxRss)} MiB, ${run.seconds.toFixed(1)} s\n`);
      }
  } finally {
    fs.rmSync(file, { force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`swa-kv: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
