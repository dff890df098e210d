// The headline benchmark: a model larger than the memory it may use. The ~1.1B Q8_0 model (1.17 GB)
// on disk, the page cache of the model files dropped before every run, and each configuration's
// process held to the same memory cap by a cgroup v1 memory controller:
//   llama.cpp (node-llama-cpp, mmap, dense)  on llama-1b-q8_0.gguf
//   flashdip dense streaming (method dense) under the memoryBudget, on llama-1b-q8_0.dip.gguf
//   flashdip dip-ca at MLP density 0.5 (optionally attention DIP), the same memoryBudget and file
//   (the same model converted to the DIP layout with `flashdip convert IN OUT --type keep`).
// The configurations run interleaved (the order reversed every other repetition); decode speeds are
// given as ratios against flashdip's dense streaming. With --ppl-model, the perplexity of each
// configuration on a small model (stories260K) with the same sparsity settings and the same cached
// fraction of every column matrix is printed beside it.
// Each run is a fresh child process (bench/worker.ts) started inside its own cgroup (a shell writes
// its pid to cgroup.procs, then execs node, so every page the child touches is charged to it).
//
//   npm run bench -- --headline [options]      (or: npx ts-node bench/headline.ts [options])
//
// Needs root for the cgroup (/sys/fs/cgroup/memory writable); --no-cgroup runs without the cap.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import type { Job, Measurement } from './worker';

const ROOT = path.resolve(__dirname, '..');
const MODELS_DIR = path.join(ROOT, '.tmp', 'bench');
const DEPS_MODULES = path.join(ROOT, 'bench', '.deps', 'node_modules');
const CGROUP_ROOT = '/sys/fs/cgroup/memory';
const PROMPT_TEXT =
  'Once upon a time, in a small village by the sea, there lived a little girl named Lily. ' +
  'Every morning she walked to the harbor to watch the fishing boats come home, and she ' +
  'counted the birds that followed them. One day she found a shiny blue shell on the sand. ';

const USAGE = `usage: npm run bench -- --headline [options]
  --model FILE            llama.cpp's model (default .tmp/bench/llama-1b-q8_0.gguf)
  --dip-model FILE        flashdip's model, the same converted with --type keep
                          (default .tmp/bench/llama-1b-q8_0.dip.gguf; made from --model if missing)
  --cap BYTES             the memory cap of each engine's process, cgroup memory.limit_in_bytes
                          (default 650MB = 650000000 bytes)
  --budget BYTES          flashdip's memoryBudget (default: the cap)
  --density R --gamma G   flashdip dip-ca's MLP density and gamma (default 0.5, 0.2)
  --read-block B          flashdip dip-ca's block reads (sparsity.readBlock, e.g. 64KiB; default off)
  --attn-density R        flashdip's attention density (sparsity.attentionDensity; default 1: dense attention);
                          the --dip-model must be converted with attention rows (layout version 2) to save reads
  --llamacpp-tokens N     tokens llama.cpp generates (default 8: ~0.5 tok/s under the cap here)
  --flashdip-tokens N     tokens flashdip generates (default 32)
  --prompt-tokens N       prompt length, BOS included (default 16)
  --reps N                repetitions, configurations interleaved (default 1)
  --threads N             compute threads of every engine (default 1)
  --timeout S             kill a run after S seconds (default 1800)
  --skip-llamacpp / --skip-dense / --skip-flashdip
                          leave out llama.cpp, flashdip's dense streaming, flashdip dip-ca
  --ppl-model FILE        a small GGUF (e.g. ../shared/data/models/stories260K.gguf): converted to the DIP layout
                          in a temporary file, each configuration's perplexity on --ppl-text is measured with
                          its sparsity settings and the cache fraction its headline run had (default: none)
  --ppl-text FILE         text for --ppl-model (default ../shared/data/text/tinystories-sample.txt)
  --ppl-tokens N          tokens of --ppl-text (default 8192; chunks of 255 + BOS)
  --no-cgroup             no memory cap (for comparison; the page cache is still dropped)
  --ts-worker             run the worker under ts-node as before (the TypeScript compiler in every capped
                          process: ~100 MiB more RSS); by default it runs compiled, as a user's program would
  --json                  one JSON object on stdout`;

interface Options {
  model: string;
  dipModel: string;
  cap: number;
  budget: number;
  density: number;
  gamma: number;
  readBlock: number;
  attnDensity: number | undefined;
  llamaTokens: number;
  flashTokens: number;
  promptTokens: number;
  reps: number;
  threads: number;
  timeout: number;
  skipLlama: boolean;
  skipDense: boolean;
  skipFlash: boolean;
  pplModel: string | undefined;
  pplText: string;
  pplTokens: number;
  cgroup: boolean;
  tsWorker: boolean;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: path.join(MODELS_DIR, 'llama-1b-q8_0.gguf') },
      'dip-model': { type: 'string' },
      cap: { type: 'string', default: '650MB' },
      budget: { type: 'string' },
      density: { type: 'string', default: '0.5' },
      gamma: { type: 'string', default: '0.2' },
      'read-block': { type: 'string' },
      'attn-density': { type: 'string' },
      'llamacpp-tokens': { type: 'string', default: '8' },
      'flashdip-tokens': { type: 'string', default: '32' },
      'prompt-tokens': { type: 'string', default: '16' },
      reps: { type: 'string', default: '1' },
      threads: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '1800' },
      'skip-llamacpp': { type: 'boolean', default: false },
      'skip-dense': { type: 'boolean', default: false },
      'skip-flashdip': { type: 'boolean', default: false },
      'ppl-model': { type: 'string' },
      'ppl-text': { type: 'string', default: path.join(ROOT, '..', 'shared', 'data', 'text', 'tinystories-sample.txt') },
      'ppl-tokens': { type: 'string', default: '8192' },
      'no-cgroup': { type: 'boolean', default: false },
      'ts-worker': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { parseBytes } = require('../lib/options') as typeof import('../lib/options');
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${v}`);
    return n;
  };
  const num = (name: string, v: string | undefined, lo: number, hi: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n > hi) throw new Error(`--${name}: expected a number in [${lo}, ${hi}], got ${v}`);
    return n;
  };
  const model = path.resolve(values.model!);
  const cap = parseBytes('--cap', values.cap)!;
  return {
    model,
    dipModel: path.resolve(values['dip-model'] ?? model.replace(/\.gguf$/, '') + '.dip.gguf'),
    cap,
    budget: values.budget === undefined ? cap : parseBytes('--budget', values.budget)!,
    density: num('density', values.density, 0.01, 1),
    gamma: num('gamma', values.gamma, 0, 1),
    readBlock: values['read-block'] === undefined ? 0 : parseBytes('--read-block', values['read-block'])!,
    attnDensity: values['attn-density'] === undefined ? undefined : num('attn-density', values['attn-density'], 0.01, 1),
    llamaTokens: int('llamacpp-tokens', values['llamacpp-tokens'], 2),
    flashTokens: int('flashdip-tokens', values['flashdip-tokens'], 2),
    promptTokens: int('prompt-tokens', values['prompt-tokens'], 1),
    reps: int('reps', values.reps, 1),
    threads: int('threads', values.threads, 1),
    timeout: int('timeout', values.timeout, 10),
    skipLlama: values['skip-llamacpp']!,
    skipDense: values['skip-dense']!,
    skipFlash: values['skip-flashdip']!,
    pplModel: values['ppl-model'] === undefined ? undefined : path.resolve(values['ppl-model']),
    pplText: path.resolve(values['ppl-text']!),
    pplTokens: int('ppl-tokens', values['ppl-tokens'], 256),
    cgroup: !values['no-cgroup'],
    tsWorker: values['ts-worker']!,
    json: values.json!,
  };
}

const log = (msg: string): void => void process.stderr.write(msg + '\n');
const mib = (b: number | undefined): string => (b === undefined || !Number.isFinite(b) ? '-' : `${(b / 2 ** 20).toFixed(0)} MiB`);

// ---------------------------------------------------------------------------------------------
// The memory cgroup (v1) of one run

function swapBytes(): number {
  try {
    return fs.readFileSync('/proc/swaps', 'utf8').trim().split('\n').slice(1)
      .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[2] ?? 0) * 1024, 0);
  } catch {
    return 0;
  }
}

class MemoryCgroup {
  readonly dir: string;
  /** memsw (memory + swap) is limited too, only when the machine has swap. */
  readonly memsw: boolean;

  constructor(name: string, limit: number) {
    this.dir = path.join(CGROUP_ROOT, name);
    if (!fs.existsSync(path.join(CGROUP_ROOT, 'memory.limit_in_bytes')))
      throw new Error(`${CGROUP_ROOT} is not a cgroup v1 memory hierarchy (rerun with --no-cgroup to measure without the cap)`);
    fs.mkdirSync(this.dir);
    live.add(this);
    this.write('memory.limit_in_bytes', limit);
    this.memsw = swapBytes() > 0 && fs.existsSync(path.join(this.dir, 'memory.memsw.limit_in_bytes'));
    if (this.memsw) this.write('memory.memsw.limit_in_bytes', limit); // after limit_in_bytes (memsw >= mem)
    const set = Number(this.read('memory.limit_in_bytes'));
    // The kernel rounds the limit down to whole pages.
    if (Math.abs(set - limit) > 4096) throw new Error(`${this.dir}: memory.limit_in_bytes reads ${set}, not ${limit}`);
  }

  write(file: string, value: number | string): void {
    fs.writeFileSync(path.join(this.dir, file), String(value));
  }

  read(file: string): string {
    return fs.readFileSync(path.join(this.dir, file), 'utf8').trim();
  }

  stat(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const line of this.read('memory.stat').split('\n')) {
      const [k, v] = line.split(' ');
      out[k] = Number(v);
    }
    return out;
  }

  /** Removes the cgroup: kills what is left in it, then rmdir (retried while the kernel lets go). */
  remove(): void {
    if (!live.has(this)) return;
    try {
      for (const pid of this.read('cgroup.procs').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } catch {
      // the directory is already gone
    }
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(this.dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        spawnSync('sleep', ['0.1']);
        if (i === 49) log(`warning: could not remove ${this.dir}: ${(err as Error).message}`);
      }
    }
    live.delete(this);
  }
}

// Every cgroup still present is removed however this process ends (error, Ctrl-C, kill).
const live = new Set<MemoryCgroup>();
const cleanup = (): void => {
  for (const cg of [...live]) cg.remove();
  for (const copy of privateCopies.values()) fs.rmSync(path.dirname(copy), { recursive: true, force: true });
  privateCopies.clear();
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });

// ---------------------------------------------------------------------------------------------
// One run

/** What a run measures: llama.cpp, flashdip's dense streaming, or flashdip dip-ca (the sparse one). */
type Config = 'llamacpp' | 'dense' | 'dip-ca';
const engineOf = (c: Config): Job['engine'] => (c === 'llamacpp' ? 'llamacpp' : 'flashdip');

interface RunResult {
  config: Config;
  rep: number;
  ok: boolean;
  error?: string;
  measurement?: Measurement;
  wallSeconds: number;
  /** The model file's page cache before the run (file: the path measured, a private copy if the
   *  original could not be dropped). */
  pageCache: { method: string; residentBefore: number; residentAfter: number; file: string; privateCopy: boolean };
  cgroup?: {
    limitBytes: number;
    memswLimited: boolean;
    /** memory.max_usage_in_bytes: the peak of anonymous memory + page cache charged to the run. */
    maxUsageBytes: number;
    /** Peak of memory.stat total_rss (anonymous memory) and total_cache, sampled every 250 ms. */
    maxRssBytes: number;
    maxCacheBytes: number;
    /** memory.failcnt: how often usage hit the limit (each time the kernel had to reclaim). */
    failcnt: number;
    oomKills: number;
  };
}

// Private copies of model files whose pages another process keeps in the page cache (a file that
// is mapped by a running process cannot be dropped: the run would read it warm, from someone else's
// memory, uncharged). Removed when this process ends (cleanup above).
const privateCopies = new Map<string, string>();

function dropModelCache(file: string): RunResult['pageCache'] & { file: string; privateCopy: boolean } {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { dropPageCache } = require('../lib/page-cache') as typeof import('../lib/page-cache');
  const size = fs.statSync(file).size;
  const copy = privateCopies.get(file);
  if (copy) return { ...dropPageCache(copy), file: copy, privateCopy: true };
  const r = dropPageCache(file);
  if (r.residentAfter <= 0.01 * size) return { ...r, file, privateCopy: false };
  log(`    ${mib(r.residentAfter)} of ${path.basename(file)} stayed in the page cache (another process maps it): ` +
    'measuring a private copy instead');
  const dir = fs.mkdtempSync(path.join(path.dirname(file), 'headline-copy-'));
  const dst = path.join(dir, path.basename(file));
  privateCopies.set(file, dst);
  fs.copyFileSync(file, dst);
  const fd = fs.openSync(dst, 'r');
  fs.fsyncSync(fd); // written pages are dirty until flushed, and dirty pages cannot be dropped
  fs.closeSync(fd);
  const d = dropPageCache(dst);
  return { ...d, residentBefore: r.residentAfter, file: dst, privateCopy: true };
}

// The worker as a user's program runs: plain JavaScript, flashdip from its compiled dist/. Under
// ts-node (--ts-worker) every capped process also holds the TypeScript compiler: ~100 MiB of RSS
// (measured: a process with ts-node and lib/ loaded, 153 MiB; with dist/ loaded, 49 MiB), which
// the cap then takes from the engine's page cache.
let compiled: { worker: string; entry: string } | undefined;
function compiledWorker(): { worker: string; entry: string } {
  if (compiled) return compiled;
  log('compiling lib/ to dist/ (tsc -p tsconfig.json) and bench/worker.ts to .tmp/headline/worker.js...');
  const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.json failed (exit ${r.status})`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require('typescript') as typeof import('typescript');
  const js = ts.transpileModule(fs.readFileSync(path.join(__dirname, 'worker.ts'), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  const dir = path.join(ROOT, '.tmp', 'headline');
  fs.mkdirSync(dir, { recursive: true });
  const worker = path.join(dir, 'worker.js');
  fs.writeFileSync(worker, js.outputText);
  compiled = { worker, entry: path.join(ROOT, 'dist', 'index.js') };
  return compiled;
}

/** flashdip's sparsity options of a configuration (the same in the headline run and for its perplexity). */
function sparsityOf(opts: Options, config: Config): import('../lib').SparsityOptions {
  return config === 'dip-ca'
    ? { method: 'dip-ca', density: opts.density, gamma: opts.gamma, readBlock: opts.readBlock, attentionDensity: opts.attnDensity }
    : { method: 'dense' };
}

async function runOne(opts: Options, config: Config, rep: number, prompt: number[]): Promise<RunResult> {
  const engine = engineOf(config);
  const model = engine === 'llamacpp' ? opts.model : opts.dipModel;
  const tokens = engine === 'llamacpp' ? opts.llamaTokens : opts.flashTokens;
  const job: Job = {
    engine, model, threads: opts.threads, prompt, tokens, contextSize: 256, warmupTokens: 0, depsDir: DEPS_MODULES,
    loadOptions: engine === 'flashdip' ? { memoryBudget: opts.budget, sparsity: sparsityOf(opts, config) } : undefined,
    flashdipEntry: opts.tsWorker ? undefined : compiledWorker().entry,
  };
  const pageCache = dropModelCache(model);
  job.model = pageCache.file;
  const cg = opts.cgroup ? new MemoryCgroup(`flashdip-bench-${process.pid}-${config}-${rep}`, opts.cap) : undefined;
  const t0 = performance.now();
  let maxRss = 0, maxCache = 0;
  const sample = (): void => {
    if (!cg) return;
    try {
      const st = cg.stat();
      maxRss = Math.max(maxRss, st.total_rss ?? st.rss ?? 0);
      maxCache = Math.max(maxCache, st.total_cache ?? st.cache ?? 0);
    } catch {
      // removed meanwhile
    }
  };
  try {
    const node = opts.tsWorker
      ? [process.execPath, '-r', 'ts-node/register/transpile-only', path.join(__dirname, 'worker.ts')]
      : [process.execPath, compiledWorker().worker];
    // The shell joins the cgroup, then becomes node: the child is charged from its first page on.
    const argv = cg ? ['sh', '-c', `echo $$ > "${cg.dir}/cgroup.procs" && exec "$@"`, 'sh', ...node] : node;
    const child = spawn(argv[0], argv.slice(1), {
      cwd: ROOT, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' }, stdio: ['ignore', 2, 2, 'ipc'],
    });
    const sampler = setInterval(sample, 250);
    const watchdog = setTimeout(() => child.kill('SIGKILL'), opts.timeout * 1000);
    const reply = await new Promise<{ ok: boolean; result?: Measurement; error?: string }>((resolve) => {
      let msg: { ok: boolean; result?: Measurement; error?: string } | undefined;
      child.on('message', (m) => (msg = m as typeof msg));
      child.on('error', (err) => resolve({ ok: false, error: String(err) }));
      child.on('exit', (code, signal) => resolve(msg ?? { ok: false, error: `worker exited with ${signal ?? `code ${code}`} before reporting` }));
      child.send(job);
    });
    clearInterval(sampler);
    clearTimeout(watchdog);
    sample();
    const result: RunResult = {
      config, rep, ok: reply.ok, error: reply.error, measurement: reply.result, wallSeconds: (performance.now() - t0) / 1000, pageCache,
    };
    if (cg) {
      const oom = /oom_kill (\d+)/.exec(cg.read('memory.oom_control'));
      result.cgroup = {
        limitBytes: Number(cg.read('memory.limit_in_bytes')),
        memswLimited: cg.memsw,
        maxUsageBytes: Number(cg.read('memory.max_usage_in_bytes')),
        maxRssBytes: maxRss,
        maxCacheBytes: maxCache,
        failcnt: Number(cg.read('memory.failcnt')),
        oomKills: oom ? Number(oom[1]) : 0,
      };
      if (result.cgroup.oomKills > 0 && !reply.ok) result.error = `killed by the cgroup's OOM killer (${reply.error})`;
    }
    return result;
  } finally {
    cg?.remove();
  }
}

// ---------------------------------------------------------------------------------------------

function promptTokens(model: string, count: number): number[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { readGgufMetadata, Tokenizer } = require('../lib') as typeof import('../lib');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { tokenizerSpecFromMetadata } = require('../lib/tokenizer') as typeof import('../lib/tokenizer');
  const tokenizer = new Tokenizer(tokenizerSpecFromMetadata(readGgufMetadata(model)));
  const ids = tokenizer.encode(PROMPT_TEXT, { addSpecial: true });
  const body = tokenizer.encode(PROMPT_TEXT, { addSpecial: false });
  while (ids.length < count) ids.push(...body);
  return ids.slice(0, count);
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function gitCommit(): string {
  const r = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() !== '';
  return (r.stdout.trim() || 'unknown') + (dirty ? ' (+ uncommitted changes)' : '');
}

interface EngineSummary {
  runs: RunResult[];
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  /** Decode tok/s over dense streaming's from the same repetition, median over repetitions (NaN without both). */
  vsDense: number;
  /** Bytes read from storage per decode step (/proc/<child>/io read_bytes between the first and last token). */
  readBytesPerToken: number;
  maxUsageBytes: number;
  maxRssBytes: number;
  hitRate?: number;
  storeBytesPerToken?: number;
  /** flashdip: bytes read between the rows (gaps read through, O_DIRECT's alignment) and read requests, per token. */
  storeGapBytesPerToken?: number;
  storeReadsPerToken?: number;
  /** flashdip: seconds per token waiting for the store's reads, and the rest (compute, page faults included). */
  ioSecondsPerToken?: number;
  computeSecondsPerToken?: number;
  /** flashdip: the fraction of every column matrix the budget left to the cache (the perplexity runs use it). */
  cacheFraction?: number;
  /** Perplexity on --ppl-model with the same settings (undefined without --ppl-model). */
  ppl?: Perplexity;
}

interface FlashdipStats {
  sparsity?: {
    hitRate: number; storeBytesPerToken: number; storeGapBytesPerToken: number; storeReadsPerToken: number;
    ioSecondsPerToken: number; computeSecondsPerToken: number; cacheFraction: number;
  };
}

function summarize(runs: RunResult[], dense: RunResult[]): EngineSummary {
  const ok = runs.filter((r) => r.ok && r.measurement);
  const m = ok.map((r) => r.measurement!);
  const sp = (x: Measurement) => (x.engineStats as FlashdipStats | undefined)?.sparsity;
  const stat = (f: (s: NonNullable<FlashdipStats['sparsity']>) => number) =>
    m.some((x) => sp(x)) ? median(m.filter((x) => sp(x)).map((x) => f(sp(x)!))) : undefined;
  const ratios = ok.flatMap((r) => {
    const d = dense.find((x) => x.rep === r.rep && x.ok && x.measurement);
    return d ? [r.measurement!.decodeTokensPerSecond / d.measurement!.decodeTokensPerSecond] : [];
  });
  return {
    runs,
    decodeTokensPerSecond: median(m.map((x) => x.decodeTokensPerSecond)),
    prefillTokensPerSecond: median(m.map((x) => x.prefillTokensPerSecond)),
    vsDense: median(ratios),
    readBytesPerToken: median(m.filter((x) => x.ioReadBytes && x.generatedTokens > 1)
      .map((x) => (x.ioReadBytes!.end - x.ioReadBytes!.firstToken) / (x.generatedTokens - 1))),
    maxUsageBytes: median(ok.map((r) => r.cgroup?.maxUsageBytes ?? NaN)),
    maxRssBytes: median(m.map((x) => x.maxRssBytes)),
    hitRate: stat((s) => s.hitRate),
    storeBytesPerToken: stat((s) => s.storeBytesPerToken),
    storeGapBytesPerToken: stat((s) => s.storeGapBytesPerToken),
    storeReadsPerToken: stat((s) => s.storeReadsPerToken),
    ioSecondsPerToken: stat((s) => s.ioSecondsPerToken),
    computeSecondsPerToken: stat((s) => s.computeSecondsPerToken),
    cacheFraction: stat((s) => s.cacheFraction),
  };
}

// ---------------------------------------------------------------------------------------------
// Perplexity beside the speed: the same sparsity settings on a small model (--ppl-model), converted
// to the DIP layout, under a budget that leaves the column cache the fraction of every matrix the
// headline run had (the 1.1B model is random-weight: its perplexity means nothing).

interface Perplexity {
  ppl: number;
  /** The small model's memoryBudget (bytes) and the cache fraction it gave. */
  budget?: number;
  cacheFraction?: number;
  hitRate?: number;
  /** What was measured: budgeted on the converted file, or dense in DRAM (llama.cpp's row). */
  how: string;
}

async function perplexities(opts: Options, summaries: Map<Config, EngineSummary>): Promise<Map<Config, Perplexity>> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { loadModel, perplexity } = require('../lib') as typeof import('../lib');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { convert } = require('../lib/convert') as typeof import('../lib/convert');
  const out = new Map<Config, Perplexity>();
  const text = fs.readFileSync(opts.pplText, 'utf8');
  const ctx = 256;
  const dip = path.join(os.tmpdir(), `flashdip-headline-ppl-${process.pid}.dip.gguf`);
  log(`perplexity on ${path.basename(opts.pplText)} with ${path.basename(opts.pplModel!)} (converted with attention rows)...`);
  await convert(opts.pplModel!, dip);
  try {
    // The budget's fixed part as the engine counts it (static + streaming buffer + a session's f32
    // KV cache and scratch at ctx), as bench/attn-quality.ts does; the cache gets the fraction.
    const probe = await loadModel(dip, { memoryBudget: 1e12 });
    const bytes = probe.memory().bytes;
    probe.createSession({ contextSize: ctx, kvCacheType: 'f32' });
    const session = probe.memory().budget!;
    await probe.dispose();
    const fixed = bytes.static + bytes.mlpLayer + session.kvCache + session.scratch;
    for (const [config, s] of summaries) {
      if (config === 'llamacpp') {
        // llama.cpp computes the dense model (its activations quantized to 8 bits as flashdip's standard layout does).
        const m = await loadModel(opts.pplModel!);
        const r = await perplexity(m, text, { ctx, maxTokens: opts.pplTokens });
        out.set(config, { ppl: r.ppl, how: 'dense in DRAM (flashdip, standard file)' });
        await m.dispose();
        continue;
      }
      if (s.cacheFraction === undefined || !Number.isFinite(s.cacheFraction)) continue;  // the run failed
      const budget = fixed + Math.ceil(s.cacheFraction * (bytes.mlp + bytes.attn));
      const m = await loadModel(dip, { memoryBudget: budget, sparsity: sparsityOf(opts, config) });
      const r = await perplexity(m, text, { ctx, maxTokens: opts.pplTokens });
      out.set(config, { ppl: r.ppl, budget, cacheFraction: r.cacheFraction, hitRate: r.hitRate, how: 'budgeted, converted file' });
      await m.dispose();
    }
  } finally {
    fs.rmSync(dip, { force: true });
  }
  return out;
}

const CONFIG_NAMES: Record<Config, string> = { llamacpp: 'llama.cpp', dense: 'flashdip dense streaming', 'dip-ca': 'flashdip dip-ca' };

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (!opts.skipLlama && !fs.existsSync(path.join(DEPS_MODULES, 'node-llama-cpp', 'package.json')))
    throw new Error('node-llama-cpp is not installed in bench/.deps: run `npm run bench -- --engines` once, or pass --skip-llamacpp');
  if (!fs.existsSync(opts.model)) throw new Error(`model not found: ${opts.model} (npm run bench -- --make-models)`);
  if (opts.pplModel && !fs.existsSync(opts.pplModel)) throw new Error(`--ppl-model not found: ${opts.pplModel}`);
  if (opts.pplModel && !fs.existsSync(opts.pplText)) throw new Error(`--ppl-text not found: ${opts.pplText}`);
  const configs: Config[] = [
    ...(opts.skipLlama ? [] : ['llamacpp' as const]),
    ...(opts.skipDense ? [] : ['dense' as const]),
    ...(opts.skipFlash ? [] : ['dip-ca' as const]),
  ];
  if (configs.length === 0) throw new Error('nothing to run: every configuration is skipped');
  const flash = configs.some((c) => engineOf(c) === 'flashdip');
  if (flash && !fs.existsSync(opts.dipModel)) {
    log(`converting ${path.relative(ROOT, opts.model)} to the DIP layout (--type keep): ${path.relative(ROOT, opts.dipModel)}...`);
    const tmp = opts.dipModel.replace(/\.gguf$/, '') + '.partial.gguf';
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'flashdip.js'), 'convert', opts.model, tmp, '--type', 'keep'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error(`flashdip convert failed (exit ${r.status})`);
    fs.renameSync(tmp, opts.dipModel);
  }
  if (!opts.skipFlash && opts.attnDensity !== undefined) {
    // Attention DIP saves reads only on a file converted with attention rows (layout version 2).
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { readGguf } = require('../lib/gguf') as typeof import('../lib/gguf');
    if (readGguf(opts.dipModel).metadata['flashdip.layout_version'] !== 2)
      throw new Error(`${opts.dipModel} has no attention rows (converted before them or with --mlp-only): convert ${opts.model} again ` +
        '(flashdip convert IN OUT --type keep --force) or pass another --dip-model');
  }
  const prompt = promptTokens(opts.model, opts.promptTokens);
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const commit = gitCommit();
  const swap = swapBytes();
  const load0 = os.loadavg()[0];
  if (!opts.tsWorker) compiledWorker();  // before the first run's page cache is dropped
  const runs: RunResult[] = [];
  for (let rep = 0; rep < opts.reps; rep++)
    for (const config of rep % 2 === 0 ? configs : [...configs].reverse()) {
      log(`[rep ${rep + 1}/${opts.reps}] ${CONFIG_NAMES[config]}: page cache dropped, ${opts.cgroup ? `cgroup cap ${mib(opts.cap)}` : 'no cap'}, ` +
        `${config === 'llamacpp' ? opts.llamaTokens : opts.flashTokens} tokens, load average ${os.loadavg()[0].toFixed(2)}...`);
      const r = await runOne(opts, config, rep, prompt);
      const m = r.measurement;
      const st = (m?.engineStats as FlashdipStats | undefined)?.sparsity;
      log(r.ok && m
        ? `    decode ${m.decodeTokensPerSecond.toFixed(2)} tok/s, prefill ${m.prefillTokensPerSecond.toFixed(2)} tok/s, load ${m.loadSeconds.toFixed(1)} s, ` +
          `max RSS ${mib(m.maxRssBytes)}${r.cgroup ? `, cgroup peak ${mib(r.cgroup.maxUsageBytes)} (failcnt ${r.cgroup.failcnt})` : ''}` +
          (st ? `, I/O wait ${(1000 * st.ioSecondsPerToken).toFixed(0)} ms/token, the rest ${(1000 * st.computeSecondsPerToken).toFixed(0)} ms/token` : '') +
          `, ${r.wallSeconds.toFixed(0)} s`
        : `    FAILED: ${String(r.error).split('\n')[0]}`);
      runs.push(r);
    }
  const load1 = os.loadavg()[0];
  const denseRuns = runs.filter((r) => r.config === 'dense');
  const summaries = new Map<Config, EngineSummary>(configs.map((c) => [c, summarize(runs.filter((r) => r.config === c), denseRuns)]));
  if (opts.pplModel) for (const [c, p] of await perplexities(opts, summaries)) summaries.get(c)!.ppl = p;
  const llamacpp = summaries.get('llamacpp'), dense = summaries.get('dense'), flashdip = summaries.get('dip-ca');
  const ratio = llamacpp && flashdip ? flashdip.decodeTokensPerSecond / llamacpp.decodeTokensPerSecond : undefined;
  const report = {
    date, commit,
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryBytes: os.totalmem(), swapBytes: swap, kernel: os.release(), node: process.version },
    loadAverage: { start: load0, end: load1 },
    options: opts, llamacpp, dense, flashdip, decodeRatio: ratio, vsDenseStreaming: flashdip?.vsDense,
  };
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const fileMiB = (f: string) => (fs.existsSync(f) ? `${(fs.statSync(f).size / 2 ** 20).toFixed(0)} MiB` : '?');
  const lines: string[] = [];
  lines.push(`headline: ${path.basename(opts.model)} (${fileMiB(opts.model)}) on disk, page cache dropped before each run, ` +
    (opts.cgroup ? `each run's process capped at ${opts.cap} bytes (${mib(opts.cap)}) by a memory cgroup` : 'NO memory cap (--no-cgroup)'));
  lines.push(`machine:  ${report.machine.cpu}, ${report.machine.cores} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, swap ${swap ? mib(swap) + ' (memsw limited too)' : 'none'}, ` +
    `linux ${os.release()}, node ${process.version}, load average ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end`);
  lines.push(`commit:   ${commit}, ${date}`);
  lines.push(`runs:     ${opts.reps} per configuration, interleaved, ${opts.threads} thread(s), prompt ${prompt.length} tokens, greedy; ` +
    `llama.cpp ${opts.llamaTokens} tokens, flashdip ${opts.flashTokens} tokens`);
  lines.push('');
  const pplCell = (s: EngineSummary) => (s.ppl ? s.ppl.ppl.toFixed(3) : '-');
  const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : (1000 * x).toFixed(0));
  const row = (config: Config, s: EngineSummary | undefined, model: string, what: string) =>
    s && !s.runs.some((r) => r.ok) ? `| ${CONFIG_NAMES[config]} | ${what} | ${path.basename(model)} | failed (see below) | | | | | | | | | | | | ${pplCell(s)} |` :
    s ? `| ${CONFIG_NAMES[config]} | ${what} | ${path.basename(model)} | ${s.decodeTokensPerSecond.toFixed(2)} | ` +
      `${Number.isFinite(s.vsDense) ? s.vsDense.toFixed(2) + 'x' : '-'} | ${s.prefillTokensPerSecond.toFixed(2)} | ` +
      `${s.hitRate === undefined ? '-' : (100 * s.hitRate).toFixed(1) + '%'} | ${mib(s.readBytesPerToken)} | ` +
      `${s.storeBytesPerToken === undefined ? '-' : mib(s.storeBytesPerToken)} | ` +
      `${s.storeGapBytesPerToken === undefined ? '-' : mib(s.storeGapBytesPerToken)} | ` +
      `${s.storeReadsPerToken === undefined ? '-' : s.storeReadsPerToken.toFixed(0)} | ${ms(s.ioSecondsPerToken)} | ${ms(s.computeSecondsPerToken)} | ` +
      `${mib(s.maxRssBytes)} | ${mib(s.maxUsageBytes)} | ${pplCell(s)} |` : undefined;
  const budget = `memoryBudget ${mib(opts.budget)}`;
  lines.push('| engine | configuration | model | decode tok/s | vs dense streaming | prefill tok/s | hit rate | disk read / token | ' +
    'store read / token | gap read / token | requests / token | I/O wait ms/token | the rest ms/token | max RSS | cgroup peak | perplexity |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const l of [
    row('llamacpp', llamacpp, opts.model, 'dense, mmap'),
    row('dense', dense, opts.dipModel, `dense, ${budget}`),
    row('dip-ca', flashdip, opts.dipModel, `dip-ca density ${opts.density} gamma ${opts.gamma}${opts.readBlock ? `, readBlock ${opts.readBlock / 1024} KiB` : ''}` +
      `${opts.attnDensity !== undefined ? `, attention density ${opts.attnDensity}` : ''}, ${budget}`),
  ]) if (l) lines.push(l);
  lines.push('');
  if (flashdip && dense) lines.push(`decode ratio flashdip dip-ca / flashdip dense streaming: ${Number.isFinite(flashdip.vsDense) ? flashdip.vsDense.toFixed(2) + 'x' : '-'} (median over repetitions of the same repetition's ratio)`);
  if (ratio !== undefined) lines.push(`decode ratio flashdip dip-ca / llama.cpp: ${Number.isFinite(ratio) ? ratio.toFixed(2) + 'x' : '-'}`);
  if (opts.pplModel) {
    lines.push(`perplexity: ${path.basename(opts.pplModel)} on ${opts.pplTokens} tokens of ${path.basename(opts.pplText)}, chunks of 255 + BOS; ` +
      'flashdip\'s configurations on the model converted with attention rows, under a budget that leaves the cache the fraction ' +
      'of every matrix its headline run had, with its sparsity settings; llama.cpp\'s: flashdip dense in DRAM on the standard file.');
    for (const [c, s] of summaries) if (s.ppl)
      lines.push(`- ${CONFIG_NAMES[c]}: ${s.ppl.ppl.toFixed(3)} (${s.ppl.how}${s.ppl.budget !== undefined ? `, budget ${s.ppl.budget} bytes, cache fraction ` +
        `${s.ppl.cacheFraction!.toFixed(3)} (headline ${s.cacheFraction!.toFixed(3)}), hit rate ${(100 * s.ppl.hitRate!).toFixed(1)}%` : ''})`);
  }
  lines.push('');
  lines.push('How it was measured:');
  lines.push(`- Each run is a fresh child process (bench/worker.ts${opts.tsWorker ? ' under ts-node' : ', compiled to JavaScript, flashdip from dist/'}) ` +
    'started inside its own cgroup v1 memory cgroup');
  lines.push(`  (${CGROUP_ROOT}/flashdip-bench-<pid>-<configuration>-<rep>, memory.limit_in_bytes = the cap${swap ? ', memory.memsw.limit_in_bytes too' : '; no swap, so memsw is not limited'});`);
  lines.push('  a shell writes its pid to cgroup.procs and execs node, so the runtime, the engine, its anonymous memory and the');
  lines.push('  page cache it reads are all charged to the cap. The cgroup is removed after the run.');
  lines.push('- Before each run the model file is dropped from the page cache with posix_fadvise(DONTNEED); when over 1% of it');
  lines.push('  stays (another process maps it), the run measures a private copy (fsync\'d, dropped, deleted at the end).');
  lines.push('- decode tok/s: (N-1) single-token steps from the first to the last token; prefill: the prompt until the first token');
  lines.push('  (both include cold reads: no warm-up). The loop is the same for every configuration (bench/worker.ts).');
  lines.push('  vs dense streaming: decode tok/s over flashdip dense streaming\'s in the same repetition, median over repetitions.');
  lines.push('- disk read / token: /proc/<child>/io read_bytes between the first and the last token, divided by the steps');
  lines.push("  (everything the process fetched from storage: mmap faults for llama.cpp, flashdip's reads of missed rows");
  lines.push('  and any static weights the kernel had to evict under the cap). store read / token: flashdip\'s own count of the row');
  lines.push('  bytes it read; gap read: the bytes between rows read through (runs merged over gaps) and O_DIRECT\'s alignment,');
  lines.push('  so store + gap is what the device is asked for; requests: the reads issued.');
  lines.push('- I/O wait: flashdip\'s time waiting for the store\'s reads per token (prompt and decode); the rest: everything else');
  lines.push('  in the engine per token (compute, page faults on the static weights included).');
  lines.push('- hit rate: the fraction of column units (MLP, and attention rows) found in flashdip\'s DRAM cache (session.stats()).');
  lines.push('- max RSS: the child\'s peak resident set (getrusage; file pages mapped included); cgroup peak: memory.max_usage_in_bytes');
  lines.push('  (anonymous memory + page cache charged to the run, at most the cap).');
  for (const r of runs) {
    const c = r.cgroup;
    lines.push(`- ${CONFIG_NAMES[r.config]} rep ${r.rep + 1}: page cache ${mib(r.pageCache.residentBefore)} -> ${mib(r.pageCache.residentAfter)} of the model before the run` +
      (r.pageCache.privateCopy ? ' (a private copy: another process kept the original in the page cache)' : '') +
      (c ? `; cgroup peak ${mib(c.maxUsageBytes)} (anonymous peak ${mib(c.maxRssBytes)}, page cache peak ${mib(c.maxCacheBytes)}), ` +
        `limit hit ${c.failcnt} times, OOM kills ${c.oomKills}` : '') + `; ${r.wallSeconds.toFixed(0)} s` + (r.ok ? '' : `; FAILED: ${String(r.error).split('\n')[0]}`));
  }
  console.log(lines.join('\n'));
}

main().catch((err) => {
  cleanup();
  console.error(`headline: ${(err as Error).message ?? err}`);
  process.exit(1);
});
