// flashdip against flashdip: the same models decoded by two builds of the package (e.g. main and a
// branch, each a checkout with its own native build), side by side in one run, with ratios.
//
//   npx ts-node bench/ab.ts --a /tmp/flashdip-main --b . [--models a.gguf,b.gguf] [--threads N]
//                           [--tokens N] [--prompt-tokens N] [--reps N] [--warmup N] [--json]
//
// Every measurement is a fresh child process (bench/ab-worker.ts) that loads <root>/lib of one build
// (its own TypeScript and its own .node), greedy, f16 KV cache. Within each repetition the two builds
// run back to back and which goes first alternates; the table shows each build's median and the
// ratio b / a as the median (min-max) of the per-repetition ratios, for decode tokens per wall second
// (JS sampling included) and per CPU second of the process (one thread: steady under load).
import { fork } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import type { AbJob, AbMeasurement } from './ab-worker';

const ROOT = path.resolve(__dirname, '..');
const STORIES = path.resolve(ROOT, '../shared/data/models/stories260K.gguf');
const PROMPT_TEXT =
  'Once upon a time, in a small village by the sea, there lived a little girl named Lily. ' +
  'Every morning she walked to the harbor to watch the fishing boats come home, and she ' +
  'counted the birds that followed them. One day she found a shiny blue shell on the sand. ';

function runWorker(job: AbJob): Promise<AbMeasurement> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'ab-worker.ts'), [], {
      cwd: ROOT,
      execArgv: ['-r', 'ts-node/register'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let reply: { ok: boolean; result?: AbMeasurement; error?: string } | undefined;
    child.on('message', (m) => (reply = m as typeof reply));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (reply?.ok) resolve(reply.result!);
      else reject(new Error(reply?.error ?? `worker exited with ${signal ?? `code ${code}`} before reporting`));
    });
    child.send(job);
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      a: { type: 'string' },
      b: { type: 'string', default: ROOT },
      models: { type: 'string', default: STORIES },
      threads: { type: 'string', default: '1' },
      tokens: { type: 'string', default: '64' },
      'prompt-tokens': { type: 'string', default: '32' },
      reps: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '4' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.a) throw new Error('usage: ts-node bench/ab.ts --a ROOT_A [--b ROOT_B] [--models ...] (see the header)');
  const roots = { a: path.resolve(values.a), b: path.resolve(values.b!) };
  const models = values.models!.split(',').map((m) => path.resolve(m));
  const reps = Number(values.reps), promptTokens = Number(values['prompt-tokens']), tokens = Number(values.tokens);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { loadModel } = require(path.join(roots.b, 'lib')) as typeof import('../lib');
  const rows: string[] = [];
  const report: Record<string, unknown>[] = [];
  for (const model of models) {
    const m = await loadModel(model);
    let prompt = m.tokenize(PROMPT_TEXT, { addSpecial: true });
    await m.dispose();
    while (prompt.length < promptTokens) prompt = prompt.concat(prompt.slice(1));
    prompt = prompt.slice(0, promptTokens);
    const job = (root: string): AbJob => ({
      root, model, threads: Number(values.threads), prompt, tokens,
      contextSize: promptTokens + tokens + Number(values.warmup) + 8, warmupTokens: Number(values.warmup),
    });
    const runs: Record<'a' | 'b', AbMeasurement[]> = { a: [], b: [] };
    for (let r = 0; r < reps; r++) {
      const order: ('a' | 'b')[] = r % 2 ? ['b', 'a'] : ['a', 'b'];
      for (const which of order) runs[which].push(await runWorker(job(roots[which])));
    }
    const native = (x: AbMeasurement) => x.decodeTokensPerCpuSecond;
    const loop = (x: AbMeasurement) => x.decodeTokensPerSecond;
    const ratios = (f: (x: AbMeasurement) => number) => runs.b.map((x, i) => f(x) / f(runs.a[i]));
    const fmtRatio = (rs: number[]) =>
      `${median(rs).toFixed(2)}x (${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
    let same = 0;
    while (same < runs.a[0].generated.length && runs.a[0].generated[same] === runs.b[0].generated[same]) same++;
    const entry = {
      model: path.basename(model),
      decodeA: median(runs.a.map(loop)), decodeB: median(runs.b.map(loop)), decodeRatio: median(ratios(loop)),
      cpuA: median(runs.a.map(native)), cpuB: median(runs.b.map(native)), cpuRatio: median(ratios(native)),
      sameTokens: same, runs,
    };
    report.push(entry);
    const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
    rows.push(
      `| ${entry.model.padEnd(22)} | ${f(entry.decodeA).padStart(8)} | ${f(entry.decodeB).padStart(8)} | ${fmtRatio(ratios(loop)).padStart(18)} ` +
        `| ${f(entry.cpuA).padStart(9)} | ${f(entry.cpuB).padStart(9)} | ${fmtRatio(ratios(native)).padStart(18)} | ${String(same).padStart(3)}/${runs.a[0].generated.length} |`,
    );
  }
  if (values.json) {
    console.log(JSON.stringify({ roots, reps, promptTokens, tokens, threads: Number(values.threads), report }, null, 1));
    return;
  }
  console.log(`machine: ${os.cpus()[0]?.model}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(2)}`);
  console.log(`a: ${roots.a}\nb: ${roots.b}`);
  console.log(`run: threads ${values.threads}, prompt ${promptTokens} tokens, ${tokens} generated (greedy, f16 KV), median of ${reps} alternating repetitions\n`);
  console.log('| model                  | tok/s a  | tok/s b  |  wall ratio b/a    | tok/cpu-s a | tok/cpu-s b |  CPU ratio b/a   | same tokens |');
  console.log('|------------------------|---------:|---------:|-------------------:|----------:|----------:|-------------------:|------------:|');
  for (const r of rows) console.log(r);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
