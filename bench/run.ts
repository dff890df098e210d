// The benchmark: flashdip vs llama.cpp side by side (decode and prefill tokens/s per model, with
// ratios), the kernels (gather-GEMV and dense GEMV bandwidth against memcpy, top-k time), and DIP
// against flashdip's own dense on the ~1B model in DRAM; `--disk` and `--headline` run the budgeted
// on-disk scenarios instead (bench/disk.ts, bench/headline.ts).
//
//   npm run bench -- [--engines] [--kernels] [--dip] [--models a.gguf,b.gguf] [--threads N] [--tokens N]
//                    [--prompt-tokens N] [--reps N] [--warmup N] [--idle-wait S] [--make-models]
//                    [--skip-llamacpp] [--json] [--save FILE]
//   npm run bench -- --disk [MODEL.dip.gguf] [--tokens N] [--reps N] [--gamma G] [--read-block B] [--json]
//   npm run bench -- --headline [bench/headline.ts options]
//
// The reference engine is llama.cpp through node-llama-cpp, which is not a dependency of flashdip:
// it is installed on first use into bench/.deps/ (gitignored, ~700 MB). Every measurement runs in
// its own child process (bench/worker.ts), one engine at a time, the engines alternating within
// each repetition; the table reports the median of the repetitions because the machine is shared.
import { execFileSync, fork, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { DecodeStep, KernelResults, kernelTables } from './kernels';
import type { Job, Measurement } from './worker';

const ROOT = path.resolve(__dirname, '..');
const SHARED_DATA = path.resolve(ROOT, '../shared/data');
const DEPS = path.join(ROOT, 'bench', '.deps');
const DEPS_MODULES = path.join(DEPS, 'node_modules');
const LLAMA_CPP_PACKAGE = 'node-llama-cpp';
const LLAMA_CPP_VERSION = '3.22.1';
const MODELS_DIR = path.join(ROOT, '.tmp', 'bench');
const STORIES = path.join(SHARED_DATA, 'models', 'stories260K.gguf');
const LLAMA_SPM_VOCAB = path.join(SHARED_DATA, 'tokenizer', 'vocab', 'ggml-vocab-llama-spm.gguf');
// TinyLlama-1.1B's shape with random weights (scripts/make-model.ts).
const ONE_B_SHAPE = ['--arch', 'llama', '--dim', '2048', '--layers', '22', '--heads', '32', '--kv-heads', '4', '--ffn', '5632'];
const ONE_B_TYPES = ['q8_0', 'q4_0', 'q4_k_m']; // q4_k_m: make-model's mixture as llama.cpp's Q4_K_M
const WORKER_TIMEOUT_MS = 30 * 60 * 1000;
const oneBPath = (type: string): string => path.join(MODELS_DIR, `llama-1b-${type}.gguf`);
// The same models converted to the DIP layout (`flashdip convert IN OUT --type keep`).
const oneBDipPath = (type: string): string => path.join(MODELS_DIR, `llama-1b-${type}.dip.gguf`);
const SECTIONS = ['engines', 'kernels', 'dip'] as const;
type Section = (typeof SECTIONS)[number];

// The prompt: this text, tokenized once by flashdip's tokenizer (BOS first), cut to --prompt-tokens
// ids, repeated if too short; both engines get exactly these ids.
const PROMPT_TEXT =
  'Once upon a time, in a small village by the sea, there lived a little girl named Lily. ' +
  'Every morning she walked to the harbor to watch the fishing boats come home, and she ' +
  'counted the birds that followed them. One day she found a shiny blue shell on the sand. ';

const USAGE = `usage: npm run bench -- [sections] [options]
  sections (default: all three)
  --engines               flashdip vs llama.cpp per model (decode and prefill tok/s, ratios)
  --kernels               gather-GEMV and dense GEMV GB/s against memcpy, top-k microseconds
                          (native timing loops, single thread; in a child process)
  --dip                   dip (density 0.5) vs flashdip's dense on the ~1B DIP-layout models, all in
                          DRAM (no budget), interleaved, one worker process per measurement
  other scenarios (run alone; the options after them are theirs)
  --disk [MODEL]          bench/disk.ts: budgeted on disk, page cache dropped (default model
                          ${path.relative(ROOT, oneBDipPath('q4_0'))}); --tokens N --reps N --gamma G --read-block B --json
  --headline              bench/headline.ts: llama.cpp vs flashdip dip-ca, both capped at 650 MB in a
                          memory cgroup, page cache dropped (see --headline --help)
  options
  --models a.gguf,b.gguf  models to measure (default: ${path.relative(ROOT, STORIES)}, and
                          ${path.relative(ROOT, oneBPath('q8_0'))} / -q4_0 / -q4_k_m.gguf when present)
  --threads N             compute threads, the same for both engines (default 1)
  --tokens N              generated tokens per measurement (default 64)
  --prompt-tokens N       prompt length in tokens, BOS included (default 32)
  --reps N                repetitions; the table shows medians (default 3)
  --warmup N              tokens generated before each measurement (default 4)
  --make-models           generate the random-weight ~1B models (q8_0, q4_0) if missing
  --skip-llamacpp         measure flashdip only
  --idle-wait S           before each measurement, wait up to S seconds for a second in which
                          other processes use under a quarter of the CPUs (default 30; 0: never)
  --dip-models a,b        DIP-layout models for --dip (default: ${path.relative(ROOT, oneBDipPath('q4_0'))} and
                          -q8_0.dip.gguf when present)
  --quick-kernels         fewer repetitions in the kernel section
  --json                  print one JSON object instead of the tables
  --save FILE             also write that JSON object to FILE`;

interface Options {
  sections: Section[];
  models: string[];
  dipModels: string[];
  quickKernels: boolean;
  threads: number;
  tokens: number;
  promptTokens: number;
  reps: number;
  warmup: number;
  makeModels: boolean;
  skipLlamaCpp: boolean;
  /** Seconds to wait, before each measurement, for the other work on the machine to calm down. */
  idleWait: number;
  json: boolean;
  /** Also write the JSON report to this file. */
  save?: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      engines: { type: 'boolean', default: false },
      kernels: { type: 'boolean', default: false },
      dip: { type: 'boolean', default: false },
      'dip-models': { type: 'string' },
      'quick-kernels': { type: 'boolean', default: false },
      models: { type: 'string' },
      threads: { type: 'string', default: '1' },
      tokens: { type: 'string', default: '64' },
      'prompt-tokens': { type: 'string', default: '32' },
      reps: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '4' },
      'make-models': { type: 'boolean', default: false },
      'skip-llamacpp': { type: 'boolean', default: false },
      'idle-wait': { type: 'string', default: '30' },
      json: { type: 'boolean', default: false },
      save: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${v}`);
    return n;
  };
  const makeModels = values['make-models']!;
  let models: string[];
  if (values.models) models = values.models.split(',').filter(Boolean).map((m) => path.resolve(m));
  else models = [STORIES, ...ONE_B_TYPES.map(oneBPath).filter((p) => makeModels || fs.existsSync(p))];
  const chosen = SECTIONS.filter((x) => values[x]);
  const dipModels = values['dip-models']
    ? values['dip-models'].split(',').filter(Boolean).map((m) => path.resolve(m))
    : ONE_B_TYPES.map(oneBDipPath).filter((p) => fs.existsSync(p));
  return {
    sections: chosen.length ? chosen : [...SECTIONS],
    models,
    dipModels,
    quickKernels: values['quick-kernels']!,
    threads: int('threads', values.threads, 1),
    tokens: int('tokens', values.tokens, 2),
    promptTokens: int('prompt-tokens', values['prompt-tokens'], 1),
    reps: int('reps', values.reps, 1),
    warmup: int('warmup', values.warmup, 0),
    makeModels,
    skipLlamaCpp: values['skip-llamacpp']!,
    idleWait: int('idle-wait', values['idle-wait'], 0),
    json: values.json!,
    save: values.save,
  };
}

// Progress goes to stderr so that --json keeps stdout to one JSON object.
const log = (msg: string): void => void process.stderr.write(msg + '\n');

// ---------------------------------------------------------------------------------------------
// Setup: the reference engine and the generated models

function llamaCppInstalledVersion(): string | undefined {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(DEPS_MODULES, LLAMA_CPP_PACKAGE, 'package.json'), 'utf8'));
    return pkg.version;
  } catch {
    return undefined;
  }
}

// The llama.cpp release node-llama-cpp's prebuilt binaries were built from.
function llamaCppRelease(): string | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(DEPS_MODULES, LLAMA_CPP_PACKAGE, 'llama', 'llama.cpp.info.json'), 'utf8')).tag;
  } catch {
    return undefined;
  }
}

function ensureLlamaCpp(): void {
  if (llamaCppInstalledVersion() === LLAMA_CPP_VERSION) return;
  log(`installing ${LLAMA_CPP_PACKAGE}@${LLAMA_CPP_VERSION} into ${path.relative(ROOT, DEPS)} (prebuilt binaries, ~700 MB)...`);
  fs.mkdirSync(DEPS, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // Its postinstall loads the prebuilt binary and, if that fails, downloads llama.cpp's source and
  // builds it. The bench asks for build: 'never' anyway (a failing binary is then a clear error in
  // the worker), so install scripts are skipped.
  const r = spawnSync(npm, ['install', '--prefix', DEPS, `${LLAMA_CPP_PACKAGE}@${LLAMA_CPP_VERSION}`, '--no-save',
    '--ignore-scripts', '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || llamaCppInstalledVersion() !== LLAMA_CPP_VERSION)
    throw new Error(`npm install ${LLAMA_CPP_PACKAGE}@${LLAMA_CPP_VERSION} failed (exit ${r.status}); rerun with --skip-llamacpp to measure flashdip alone`);
}

function makeMissingModels(models: string[]): void {
  for (const type of ONE_B_TYPES) {
    const out = oneBPath(type);
    if (!models.includes(out) || fs.existsSync(out)) continue;
    fs.mkdirSync(MODELS_DIR, { recursive: true });
    // A real Llama-2 SentencePiece vocabulary when the shared data has it (node-llama-cpp loads
    // make-model's synthetic vocabulary too, but real ids make the prompt a realistic one).
    const vocab = fs.existsSync(LLAMA_SPM_VOCAB) ? ['--vocab-from', LLAMA_SPM_VOCAB] : ['--vocab', '32000'];
    const tmp = `${out}.partial`;
    log(`generating ${path.relative(ROOT, out)} (random weights, ${type})...`);
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register', path.join(ROOT, 'scripts', 'make-model.ts'),
      ...ONE_B_SHAPE, ...vocab, '--type', type, '--seed', '1', '--out', tmp], {
      cwd: ROOT, stdio: ['ignore', 2, 2], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
    });
    if (r.status !== 0) throw new Error(`make-model failed for ${out} (exit ${r.status})`);
    fs.renameSync(tmp, out);
  }
}

function promptTokens(model: string, count: number): number[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { readGgufMetadata, Tokenizer } = require('../lib') as typeof import('../lib');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { tokenizerSpecFromMetadata } = require('../lib/tokenizer') as typeof import('../lib/tokenizer');
  const tokenizer = new Tokenizer(tokenizerSpecFromMetadata(readGgufMetadata(model)));
  const withBos = tokenizer.encode(PROMPT_TEXT, { addSpecial: true });
  const body = tokenizer.encode(PROMPT_TEXT, { addSpecial: false });
  const ids = [...withBos];
  while (ids.length < count) ids.push(...body);
  return ids.slice(0, count);
}

// ---------------------------------------------------------------------------------------------
// Measurement

// The fraction of CPU time that was busy over the next `ms` milliseconds (Linux; 0 elsewhere).
async function cpuBusy(ms: number): Promise<number> {
  const sample = (): number[] | undefined => {
    try {
      const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]; // "cpu user nice system idle iowait ..."
      return line.trim().split(/\s+/).slice(1).map(Number);
    } catch {
      return undefined;
    }
  };
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  if (!a || !b) return 0;
  const d = b.map((x, i) => x - a[i]);
  const total = d.reduce((x, y) => x + y, 0);
  return total > 0 ? 1 - (d[3] + d[4]) / total : 0;
}

// The machine is shared: other builds and tests come and go. Waiting for a quiet second before each
// measurement does not make the machine ours, but it avoids starting in the middle of a compile.
async function waitForIdle(maxSeconds: number): Promise<number> {
  let busy = await cpuBusy(1000);
  for (let waited = 1; busy >= 0.25 && waited < maxSeconds; waited++) busy = await cpuBusy(1000);
  return busy;
}

function runWorker(job: Job): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'worker.ts'), [], {
      cwd: ROOT,
      execArgv: ['-r', 'ts-node/register'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
      stdio: ['ignore', 2, 2, 'ipc'], // the engines' own logs go to stderr
    });
    let reply: { ok: boolean; result?: Measurement; error?: string } | undefined;
    child.on('message', (m) => (reply = m as typeof reply));
    child.on('error', reject);
    // A wedged engine must not hang the whole run.
    const watchdog = setTimeout(() => child.kill('SIGKILL'), WORKER_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      if (reply?.ok) resolve(reply.result!);
      else reject(new Error(reply?.error ?? `worker exited with ${signal ?? `code ${code}`} before reporting`));
    });
    child.send(job);
  });
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

type EngineName = Job['engine'];

/** One measurement and the repetition it belongs to. */
type Run = Measurement & { rep: number; cpuBusyBefore?: number };

interface EngineSummary {
  decodeTokensPerSecond: number; // medians over the successful runs
  prefillTokensPerSecond: number;
  runs: Run[];
  errors: string[];
}

/** flashdip / llama.cpp: the median and range of the ratios of the two runs of each repetition. */
interface Ratio {
  median: number;
  min: number;
  max: number;
}

interface ModelResult {
  model: string;
  promptTokens: number;
  flashdip: EngineSummary;
  llamacpp?: EngineSummary;
  decodeRatio?: Ratio;
  /** The same per CPU second of each engine's process (decodeTokensPerCpuSecond). */
  decodeCpuRatio?: Ratio;
  prefillRatio?: Ratio;
  /** How many leading generated tokens the two engines agree on (first successful run of each). */
  sameTokens?: number;
}

function summarize(runs: Run[], errors: string[]): EngineSummary {
  return {
    decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)),
    prefillTokensPerSecond: median(runs.map((r) => r.prefillTokensPerSecond)),
    runs,
    errors,
  };
}

// The two engines of one repetition ran back to back, so they saw the same state of the machine:
// the ratio within each pair cancels much of the drift that the medians of each engine keep.
function pairedRatio(f: Run[], l: Run[], pick: (m: Measurement) => number): Ratio | undefined {
  const ratios: number[] = [];
  for (const a of f) {
    const b = l.find((x) => x.rep === a.rep);
    if (b && pick(b) > 0) ratios.push(pick(a) / pick(b));
  }
  if (ratios.length === 0) return undefined;
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

function commonPrefix(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

async function measureAll(opts: Options): Promise<ModelResult[]> {
  const engines: EngineName[] = opts.skipLlamaCpp ? ['flashdip'] : ['flashdip', 'llamacpp'];
  const jobs = opts.models.map((model) => {
    const prompt = promptTokens(model, opts.promptTokens);
    const contextSize = Math.ceil((prompt.length + opts.tokens + 1) / 256) * 256;
    return { model, prompt, contextSize };
  });
  const runs = new Map<string, Run[]>();
  const errors = new Map<string, string[]>();
  const key = (model: string, engine: EngineName): string => `${engine}\0${model}`;
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const { model, prompt, contextSize } of jobs) {
      // Alternate which engine goes first, so a drift in the machine's speed favours neither.
      const order = rep % 2 === 0 ? engines : [...engines].reverse();
      for (const engine of order) {
        const k = key(model, engine);
        log(`[rep ${rep + 1}/${opts.reps}] ${engine.padEnd(8)} ${path.basename(model)}`);
        try {
          const busy = opts.idleWait > 0 ? await waitForIdle(opts.idleWait) : undefined;
          const m = await runWorker({
            engine, model, threads: opts.threads, prompt, tokens: opts.tokens, contextSize,
            warmupTokens: opts.warmup, depsDir: DEPS_MODULES,
          });
          log(`    decode ${fmt(m.decodeTokensPerSecond)} tok/s, prefill ${fmt(m.prefillTokensPerSecond)} tok/s, ` +
            `load ${m.loadSeconds.toFixed(2)} s, max RSS ${(m.maxRssBytes / 2 ** 20).toFixed(0)} MiB` +
            (busy === undefined ? '' : `, CPU ${(busy * 100).toFixed(0)}% busy before`));
          runs.set(k, [...(runs.get(k) ?? []), { ...m, rep, cpuBusyBefore: busy }]);
        } catch (err) {
          const msg = String((err as Error).message ?? err);
          log(`    FAILED: ${msg.split('\n')[0]}`);
          errors.set(k, [...(errors.get(k) ?? []), msg]);
        }
      }
    }
  }
  return jobs.map(({ model, prompt }) => {
    const f = summarize(runs.get(key(model, 'flashdip')) ?? [], errors.get(key(model, 'flashdip')) ?? []);
    const result: ModelResult = { model, promptTokens: prompt.length, flashdip: f };
    if (!opts.skipLlamaCpp) {
      const l = summarize(runs.get(key(model, 'llamacpp')) ?? [], errors.get(key(model, 'llamacpp')) ?? []);
      result.llamacpp = l;
      result.decodeRatio = pairedRatio(f.runs, l.runs, (m) => m.decodeTokensPerSecond);
      result.decodeCpuRatio = pairedRatio(f.runs, l.runs, (m) => m.decodeTokensPerCpuSecond);
      result.prefillRatio = pairedRatio(f.runs, l.runs, (m) => m.prefillTokensPerSecond);
      if (f.runs.length && l.runs.length) result.sameTokens = commonPrefix(f.runs[0].generated, l.runs[0].generated);
    }
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// Report

function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  return {
    cpu,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    /** 1-minute load average before measuring: other work on a shared machine skews numbers. */
    loadAverage: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

function gitCommit(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    // Others work in the same tree: a dirty tree means the numbers may include uncommitted work.
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const ratio = (r: Ratio | undefined): string =>
  r === undefined ? '-' : `${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)})`;

function headerLines(opts: Options, header: ReturnType<typeof reportHeader>, busy: (number | undefined)[]): string[] {
  const lines: string[] = [];
  const m = header.machine;
  lines.push(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, node ${m.node}, load average ${m.loadAverage}`);
  lines.push(`commit:  ${header.commit}${header.dirty ? ' (+ uncommitted changes)' : ''}, ${header.date}`);
  lines.push(`engines: flashdip ${header.flashdipVersion}` +
    (opts.skipLlamaCpp || !opts.sections.includes('engines') ? '' : `, llama.cpp ${header.llamaCppRelease ?? '(release unknown)'} via ${LLAMA_CPP_PACKAGE} ${header.llamaCppVersion}`));
  lines.push(`run:     sections ${opts.sections.join(', ')}; threads ${opts.threads}, prompt ${opts.promptTokens} tokens, ${opts.tokens} generated (greedy), ` +
    `warm-up ${opts.warmup}, median of ${opts.reps} interleaved repetitions`);
  if (busy.length && busy.every((b): b is number => b !== undefined))
    lines.push(`         CPU busy (other processes) in the second before each measurement: median ${(median(busy) * 100).toFixed(0)}%, ` +
      `max ${(Math.max(...busy) * 100).toFixed(0)}%`);
  return lines;
}

function table(results: ModelResult[], opts: Options): string {
  const lines: string[] = [];
  lines.push('### flashdip vs llama.cpp');
  lines.push('');
  const rows: string[][] = [[
    'model', 'decode flashdip', 'decode llama.cpp', 'decode ratio', 'per CPU-s',
    'prefill flashdip', 'prefill llama.cpp', 'prefill ratio', 'same tokens',
  ]];
  for (const r of results) {
    const l = r.llamacpp;
    const failed = (s: EngineSummary | undefined, v: number): string => (s && s.runs.length === 0 && s.errors.length ? 'failed' : fmt(v));
    rows.push([
      path.basename(r.model),
      failed(r.flashdip, r.flashdip.decodeTokensPerSecond), l ? failed(l, l.decodeTokensPerSecond) : '-', ratio(r.decodeRatio), ratio(r.decodeCpuRatio),
      failed(r.flashdip, r.flashdip.prefillTokensPerSecond), l ? failed(l, l.prefillTokensPerSecond) : '-', ratio(r.prefillRatio),
      r.sameTokens === undefined ? '-' : `${r.sameTokens}/${opts.tokens}`,
    ]);
  }
  // Without llama.cpp only the model and flashdip's two columns are left.
  if (opts.skipLlamaCpp) rows.forEach((row, i) => (rows[i] = [row[0], row[1], row[5]]));
  // A Markdown table, aligned so it also reads well in a terminal.
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]): string => '| ' + row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ') + ' |';
  lines.push(line(rows[0]));
  lines.push('|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
  for (const row of rows.slice(1)) lines.push(line(row));
  lines.push('');
  if (opts.skipLlamaCpp) lines.push('tok/s, median of the repetitions');
  else {
    lines.push('tok/s: median per engine. ratio: flashdip / llama.cpp (above 1: flashdip is faster), the median (and');
    lines.push('range) of the ratios within each repetition. same tokens: leading greedy tokens identical in both');
    lines.push('engines (flashdip masks end-of-text, llama.cpp passes it). per CPU-s: the decode ratio in tokens per');
    lines.push('CPU second of each engine\'s process (steady under load with 1 thread; with more it counts spinning).');
  }
  for (const r of results)
    for (const s of [r.flashdip, r.llamacpp])
      for (const e of s?.errors ?? []) lines.push(`error (${path.basename(r.model)}): ${e.split('\n')[0]}`);
  return lines.join('\n');
}

function reportHeader(opts: Options) {
  const { commit, dirty } = gitCommit();
  return {
    machine: machine(),
    commit,
    dirty,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    flashdipVersion: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string,
    llamaCppVersion: opts.skipLlamaCpp ? undefined : llamaCppInstalledVersion(),
    llamaCppRelease: opts.skipLlamaCpp ? undefined : llamaCppRelease(),
  };
}

// ---------------------------------------------------------------------------------------------
// DIP against flashdip's own dense, everything in DRAM

interface DipResult {
  model: string;
  variants: { label: string; decodeTokensPerSecond: number; prefillTokensPerSecond: number; maxRssBytes: number; runs: Run[]; errors: string[] }[];
  /** dip / dense: median (min-max) of the per-repetition ratios. */
  decodeRatio?: Ratio;
  /** The same per CPU second of each engine's process (decodeTokensPerCpuSecond). */
  decodeCpuRatio?: Ratio;
  prefillRatio?: Ratio;
}

const DIP_VARIANTS: { label: string; loadOptions: Job['loadOptions'] }[] = [
  { label: 'dense', loadOptions: { sparsity: { method: 'dense' } } },
  { label: 'dip 0.5', loadOptions: { sparsity: { method: 'dip', density: 0.5 } } },
];

async function measureDip(opts: Options): Promise<DipResult[]> {
  const out: DipResult[] = [];
  const runs = new Map<string, Run[]>();
  const errors = new Map<string, string[]>();
  const key = (model: string, label: string) => `${label}\0${model}`;
  const jobs = opts.dipModels.map((model) => {
    const prompt = promptTokens(model, opts.promptTokens);
    return { model, prompt, contextSize: Math.ceil((prompt.length + opts.tokens + 1) / 256) * 256 };
  });
  for (let rep = 0; rep < opts.reps; rep++)
    for (const { model, prompt, contextSize } of jobs) {
      const order = rep % 2 === 0 ? DIP_VARIANTS : [...DIP_VARIANTS].reverse();
      for (const v of order) {
        const k = key(model, v.label);
        log(`[dip rep ${rep + 1}/${opts.reps}] ${v.label.padEnd(8)} ${path.basename(model)}`);
        try {
          const busy = opts.idleWait > 0 ? await waitForIdle(opts.idleWait) : undefined;
          const m = await runWorker({
            engine: 'flashdip', model, threads: opts.threads, prompt, tokens: opts.tokens, contextSize,
            warmupTokens: opts.warmup, depsDir: DEPS_MODULES, loadOptions: v.loadOptions,
          });
          log(`    decode ${fmt(m.decodeTokensPerSecond)} tok/s, prefill ${fmt(m.prefillTokensPerSecond)} tok/s, max RSS ${(m.maxRssBytes / 2 ** 20).toFixed(0)} MiB`);
          runs.set(k, [...(runs.get(k) ?? []), { ...m, rep, cpuBusyBefore: busy }]);
        } catch (err) {
          const msg = String((err as Error).message ?? err);
          log(`    FAILED: ${msg.split('\n')[0]}`);
          errors.set(k, [...(errors.get(k) ?? []), msg]);
        }
      }
    }
  for (const { model } of jobs) {
    const variants = DIP_VARIANTS.map((v) => {
      const r = runs.get(key(model, v.label)) ?? [];
      return {
        label: v.label, ...summarize(r, errors.get(key(model, v.label)) ?? []),
        maxRssBytes: median(r.map((x) => x.maxRssBytes)),
      };
    });
    out.push({
      model, variants,
      decodeRatio: pairedRatio(variants[1].runs, variants[0].runs, (m) => m.decodeTokensPerSecond),
      prefillRatio: pairedRatio(variants[1].runs, variants[0].runs, (m) => m.prefillTokensPerSecond),
    });
  }
  return out;
}

function dipTable(results: DipResult[], opts: Options): string {
  const lines = ['### dip (density 0.5) vs flashdip dense, the ~1B DIP-layout models in DRAM (no budget)', ''];
  const rows: string[][] = [['model', 'decode dense', 'decode dip', 'decode ratio', 'prefill dense', 'prefill dip', 'prefill ratio', 'max RSS MiB dense / dip']];
  for (const r of results) {
    const [d, p] = r.variants;
    rows.push([path.basename(r.model), fmt(d.decodeTokensPerSecond), fmt(p.decodeTokensPerSecond), ratio(r.decodeRatio),
      fmt(d.prefillTokensPerSecond), fmt(p.prefillTokensPerSecond), ratio(r.prefillRatio),
      `${(d.maxRssBytes / 2 ** 20).toFixed(0)} / ${(p.maxRssBytes / 2 ** 20).toFixed(0)}`]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]): string => '| ' + row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ') + ' |';
  lines.push(line(rows[0]));
  lines.push('|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
  for (const row of rows.slice(1)) lines.push(line(row));
  lines.push('');
  lines.push(`tok/s, median of ${opts.reps} repetitions, ${opts.threads} thread(s); ratio = dip / dense, median (min-max) of the ratios within each`);
  lines.push('repetition. dip keeps keep_x 0.574 of the MLP inputs and keep_h 0.351 of the intermediate units (MLP density 0.5);');
  lines.push('attention, embeddings and the LM head stay dense, so the ratio is bounded by the MLP share of the bytes.');
  for (const r of results) for (const v of r.variants) for (const e of v.errors) lines.push(`error (${path.basename(r.model)}, ${v.label}): ${e.split('\n')[0]}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Kernels (native timing loops, in a child process)

function measureKernelsChild(opts: Options): KernelResults {
  const args = ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'kernels.ts'), '--child', ...(opts.quickKernels ? ['--quick'] : [])];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 2], maxBuffer: 16 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`the kernel benchmark failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(r.stdout) as KernelResults;
}

// The decode step the top-k is compared with: the dip section's measurement when there is one, else
// one short flashdip run (dip 0.5, everything in DRAM) on the first ~1B model found.
async function decodeStep(opts: Options, dip: DipResult[] | undefined): Promise<DecodeStep | undefined> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { readGgufMetadata } = require('../lib') as typeof import('../lib');
  const fromModel = (model: string, method: string, tps: number): DecodeStep | undefined => {
    if (!(tps > 0)) return undefined;
    const md = readGgufMetadata(model) as Record<string, unknown>;
    const arch = String(md['general.architecture']);
    return {
      model: path.basename(model), method, secondsPerToken: 1 / tps,
      layers: Number(md[`${arch}.block_count`]), dim: Number(md[`${arch}.embedding_length`]), ffn: Number(md[`${arch}.feed_forward_length`]),
    };
  };
  const first = dip?.find((r) => r.variants[1].runs.length > 0);
  if (first) return fromModel(first.model, 'dip 0.5, in DRAM', first.variants[1].decodeTokensPerSecond);
  const model = [...opts.dipModels, ...ONE_B_TYPES.map(oneBPath)].find((m) => fs.existsSync(m));
  if (!model) return undefined;
  log(`[kernels] decode step: flashdip dip 0.5 on ${path.basename(model)}, 8 tokens`);
  try {
    const prompt = promptTokens(model, 8);
    const m = await runWorker({
      engine: 'flashdip', model, threads: 1, prompt, tokens: 8, contextSize: 256, warmupTokens: 2, depsDir: DEPS_MODULES,
      loadOptions: { sparsity: { method: 'dip', density: 0.5 } },
    });
    return fromModel(model, 'dip 0.5, in DRAM', m.decodeTokensPerSecond);
  } catch (err) {
    log(`    FAILED: ${String((err as Error).message ?? err).split('\n')[0]}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The other scenarios, each a script of its own

function runScript(file: string, args: string[]): never {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, file), ...args], { cwd: ROOT, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--headline')) runScript('headline.ts', argv.filter((a) => a !== '--headline'));
  if (argv.includes('--disk')) {
    const rest = argv.filter((a) => a !== '--disk');
    const hasModel = rest.length > 0 && !rest[0].startsWith('--');
    runScript('disk.ts', hasModel ? rest : [oneBDipPath('q4_0'), ...rest]);
  }
  const opts = parseOptions(argv);
  const engines = opts.sections.includes('engines');
  if (engines && !opts.skipLlamaCpp) ensureLlamaCpp();
  if (engines && opts.makeModels) makeMissingModels(opts.models);
  if (engines)
    for (const m of opts.models) if (!fs.existsSync(m)) throw new Error(`model not found: ${m}${ONE_B_TYPES.some((t) => oneBPath(t) === m) ? ' (generate it with --make-models)' : ''}`);
  for (const m of opts.dipModels) if (!fs.existsSync(m)) throw new Error(`DIP model not found: ${m}`);
  if (opts.sections.includes('dip') && opts.dipModels.length === 0)
    log(`no DIP-layout model for --dip: convert one, e.g. npx flashdip convert ${path.relative(ROOT, oneBPath('q4_0'))} ${path.relative(ROOT, oneBDipPath('q4_0'))} --type keep`);
  // Taken before measuring: the commit and the machine's load as the run found them.
  const header = reportHeader(opts);
  const results = engines ? await measureAll(opts) : undefined;
  const dip = opts.sections.includes('dip') && opts.dipModels.length ? await measureDip(opts) : undefined;
  let kernels: KernelResults | undefined;
  let step: DecodeStep | undefined;
  if (opts.sections.includes('kernels')) {
    step = await decodeStep(opts, dip);
    if (opts.idleWait > 0) await waitForIdle(opts.idleWait);
    log('[kernels] gather-GEMV, GEMV, top-k (about a minute)');
    kernels = measureKernelsChild(opts);
  }
  const { json: _j, save: _s, ...options } = opts;
  const report = JSON.stringify({ ...header, options, results, dip, kernels, decodeStep: step }, null, 2);
  if (opts.save) fs.writeFileSync(opts.save, report + '\n');
  if (opts.json) {
    console.log(report);
    return;
  }
  const busy = [...(results ?? []).flatMap((r) => [...r.flashdip.runs, ...(r.llamacpp?.runs ?? [])]),
    ...(dip ?? []).flatMap((r) => r.variants.flatMap((v) => v.runs))].map((x) => x.cpuBusyBefore);
  const out = [...headerLines(opts, header, busy), ''];
  if (results) out.push(table(results, opts), '');
  if (dip) out.push(dipTable(dip, opts), '');
  if (kernels) out.push('### kernels', '', kernelTables(kernels, step), '');
  console.log(out.join('\n'));
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message ?? err}`);
  process.exit(1);
});
