// Fuzzing harness (issue 9): mutates stories260K and a converted copy of it, and runs every mutant
// through readGguf, loadModel, a short greedy generation and convert, in child processes watched for
// signals, hangs and memory. Counts the outcomes of each stage by error code and flags what must
// never happen on any file: a signal, a hang, a peak RSS above the limit, ERR_INTERNAL,
// ERR_INVALID_ARGUMENT, or an error that is not a FlashdipError. Exits 1 if anything is flagged.
//
//   npx ts-node scripts/fuzz.ts [--seconds 60] [--seed S] [--json] [--out DIR] [--batch 40]
//                               [--timeout 30] [--rss-limit-mb 1024] [--only N]
//
// Mutant i of seed S is a pure function of (S, i), so a flagged mutant is written again, by the
// parent, as a reproducer file under --out (default /tmp/flashdip-fuzz-S); `--only i` reruns one.
// A child runs a batch of mutants and reports on fd 3, synchronously, each mutant before it starts
// and its outcome after, so a crash or a hang is pinned on the mutant that caused it.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { convert } from '../lib/convert';
import { FlashdipError } from '../lib/errors';
import { readGguf } from '../lib/gguf';
import { loadModel } from '../lib/model';
import { STORIES } from '../test/helpers';

const STAGES = ['readGguf', 'loadModel', 'generate', 'convert'] as const;
type Stage = (typeof STAGES)[number];
const FORBIDDEN = new Set(['ERR_INTERNAL', 'ERR_INVALID_ARGUMENT', 'UNTYPED']);

// ---- deterministic randomness ----------------------------------------------------------------

// mulberry32: small, fast, good enough to pick mutations; seeded per mutant.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function mix(seed: number, i: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.imul(h, 0x7feb352d) >>> 0;
}

// ---- where the header fields are ---------------------------------------------------------------

// A numeric field of the header: its byte offset, width and kind, so it can be set to boundary values.
interface Field { at: number; size: 1 | 2 | 4 | 8; kind: 'int' | 'float'; what: string }
interface Seed { name: string; bytes: Buffer; fields: Field[]; values: Field[]; headerEnd: number }

// Walks a GGUF header (v3, little-endian) recording every numeric field: counts, string and array
// lengths, value types, metadata numbers, tensor dims, types and offsets.
function headerFields(b: Buffer): { fields: Field[]; end: number } {
  const fields: Field[] = [];
  let p = 0;
  const field = (size: Field['size'], kind: Field['kind'], what: string) => { fields.push({ at: p, size, kind, what }); p += size; };
  const str = (what: string) => { const n = Number(b.readBigUInt64LE(p)); field(8, 'int', `${what} length`); const s = b.toString('utf8', p, p + n); p += n; return s; };
  const SIZES: Record<number, [Field['size'], Field['kind']]> = {
    0: [1, 'int'], 1: [1, 'int'], 2: [2, 'int'], 3: [2, 'int'], 4: [4, 'int'], 5: [4, 'int'], 6: [4, 'float'],
    7: [1, 'int'], 10: [8, 'int'], 11: [8, 'int'], 12: [8, 'float'],
  };
  p = 8;
  const nTensors = Number(b.readBigUInt64LE(p)); field(8, 'int', 'tensor count');
  const nKv = Number(b.readBigUInt64LE(p)); field(8, 'int', 'kv count');
  for (let i = 0; i < nKv; i++) {
    const key = str('key');
    const type = b.readUInt32LE(p); field(4, 'int', `${key} type`);
    if (type === 9) {
      const et = b.readUInt32LE(p); field(4, 'int', `${key} element type`);
      const n = Number(b.readBigUInt64LE(p)); field(8, 'int', `${key} array length`);
      for (let j = 0; j < n; j++) {
        if (et === 8) str(`${key}[${j}]`);
        else if (j < 4 || j === n - 1) field(SIZES[et][0], SIZES[et][1], `${key}[${j}]`);
        else p += SIZES[et][0];
      }
    } else if (type === 8) str(key);
    else field(SIZES[type][0], SIZES[type][1], key);
  }
  for (let i = 0; i < nTensors; i++) {
    const name = str('tensor name');
    const nd = b.readUInt32LE(p); field(4, 'int', `${name} n_dims`);
    for (let j = 0; j < nd; j++) field(8, 'int', `${name} ne[${j}]`);
    field(4, 'int', `${name} type`);
    field(8, 'int', `${name} offset`);
  }
  return { fields, end: p };
}

function loadSeed(name: string, file: string): Seed {
  const bytes = fs.readFileSync(file);
  const { fields, end } = headerFields(bytes);
  return { name, bytes, fields, values: fields.filter((f) => !f.what.endsWith(' length') || f.what.includes('array')), headerEnd: end };
}

// ---- mutations -------------------------------------------------------------------------------

const INT_EDGES: bigint[] = [0n, 1n, 2n, 3n, 31n, 32n, 255n, 256n, 4096n, 65535n, 65536n, (1n << 31n) - 1n, 1n << 31n,
  (1n << 32n) - 1n, 1n << 32n, 1n << 53n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, (1n << 64n) - 2n];
const FLOAT_EDGES = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e-45, -1e-5, 3.4e38, 1e300, -1e300];

function setInt(b: Buffer, f: Field, v: bigint): void {
  const bits = BigInt(f.size * 8);
  const u = ((v % (1n << bits)) + (1n << bits)) % (1n << bits);
  for (let k = 0; k < f.size; k++) b[f.at + k] = Number((u >> BigInt(8 * k)) & 0xffn);
}

interface Mutant { seed: string; ops: string[]; bytes: Buffer }

function mutate(seeds: Seed[], seed: number, i: number): Mutant {
  const r = rng(mix(seed, i));
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const s = seeds[i % seeds.length];
  const b = Buffer.from(s.bytes);
  let cut = b.length;  // truncations apply last, so every edit lands inside the file
  const ops: string[] = [];
  // Most bugs are in the header: aim 80% of the byte-level mutations at it.
  const pos = (len: number) => (r() < 0.8 ? Math.floor(r() * s.headerEnd) : Math.floor(r() * len));
  const n = 1 + Math.floor(r() * r() * 4);
  for (let k = 0; k < n; k++) {
    const m = pick(['edge', 'edge', 'edge', 'flip', 'overwrite', 'splice', 'truncate'] as const);
    if (m === 'edge') {
      // Mostly values (metadata numbers, dims, types, offsets, counts); string lengths less often,
      // since nearly any change to one is a truncation.
      const f = r() < 0.75 ? pick(s.values) : pick(s.fields);
      if (f.kind === 'float') {
        const v = pick(FLOAT_EDGES);
        if (f.size === 4) b.writeFloatLE(v, f.at); else b.writeDoubleLE(v, f.at);
        ops.push(`${f.what} = ${v}`);
      } else {
        const v = r() < 0.15 ? -1n : r() < 0.3 ? BigInt(Math.floor(r() * 1000)) : pick(INT_EDGES);
        setInt(b, f, v);
        ops.push(`${f.what} = ${v}`);
      }
    } else if (m === 'flip') {
      const at = pos(b.length), bit = Math.floor(r() * 8);
      b[at] ^= 1 << bit;
      ops.push(`flip bit ${bit} at ${at}`);
    } else if (m === 'overwrite') {
      const at = pos(b.length), len = 1 + Math.floor(r() * 16);
      for (let j = 0; j < len && at + j < b.length; j++) b[at + j] = Math.floor(r() * 256);
      ops.push(`overwrite ${len} bytes at ${at}`);
    } else if (m === 'splice') {
      // One field's bytes copied over another's of the same width (a dim into a count, an offset into a dim...).
      const to = r() < 0.75 ? pick(s.values) : pick(s.fields), same = s.fields.filter((f) => f.size === to.size && f !== to), from = same.length ? pick(same) : to;
      b.copy(b, to.at, from.at, from.at + from.size);
      ops.push(`${to.what} := ${from.what}`);
    } else {
      const len = r() < 0.5 ? Math.floor(r() * (s.headerEnd + 64)) : Math.floor(r() * s.bytes.length);
      cut = Math.min(cut, len);
      ops.push(`truncate to ${len}`);
    }
  }
  return { seed: s.name, ops, bytes: b.subarray(0, cut) };
}

// ---- the child: runs a batch ----------------------------------------------------------------

type Outcome = Partial<Record<Stage, string>>;

function codeOf(err: unknown): string {
  return err instanceof FlashdipError ? err.code : 'UNTYPED';
}

async function runOne(file: string, converted: boolean, tmp: string, internal = false): Promise<{ outcome: Outcome; messages: Partial<Record<Stage, string>> }> {
  const outcome: Outcome = {}, messages: Partial<Record<Stage, string>> = {};
  const stage = async (name: Stage, fn: () => Promise<unknown> | unknown): Promise<boolean> => {
    try {
      await fn();
      outcome[name] = 'ok';
      return true;
    } catch (err) {
      outcome[name] = codeOf(err);
      messages[name] = String((err as Error)?.message ?? err).slice(0, 300);
      return false;
    }
  };
  await stage('readGguf', () => {
    if (internal) throw new FlashdipError('ERR_INTERNAL', 'injected by FLASHDIP_FUZZ_INJECT');
    return readGguf(file);
  });
  let model: Awaited<ReturnType<typeof loadModel>> | undefined;
  // A converted file is loaded under a budget, so its MLP rows go through the column store.
  await stage('loadModel', async () => { model = await loadModel(file, converted ? { memoryBudget: 900_000, sparsity: { method: 'dip', density: 0.5 } } : {}); });
  if (model) {
    const m = model;
    await stage('generate', async () => {
      // 64 positions whatever the file says it was trained for (a mutated context_length of 2 is the
      // file's claim, not the harness's mistake: the caller opts in, as a user could).
      const s = m.createSession({ contextSize: 64, allowContextBeyondTraining: true });
      for await (const _ of s.generate('Once upon a time', { maxTokens: 8, temperature: 0 }));
    });
    await m.dispose();
  }
  const out = path.join(tmp, 'out.gguf');
  await stage('convert', () => convert(file, out, { force: true }));
  fs.rmSync(out, { force: true });
  return { outcome, messages };
}

function vmHwm(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS * 1024;
}

function resetHwm(): void {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); } catch { /* not Linux: peak over the batch */ }
}

// FLASHDIP_FUZZ_INJECT=KIND:I makes the child misbehave on mutant I, so the harness's own test can
// check that each kind of failure is caught and pinned on the right mutant.
function selfTest(kind: string): void {
  if (kind === 'abort') process.abort();
  if (kind === 'hang') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  if (kind === 'rss') {
    const keep: Buffer[] = [];
    for (let k = 0; k < 64; k++) keep.push(Buffer.alloc(16 * 2 ** 20, 1));
    (globalThis as Record<string, unknown>).fuzzSelfTest = keep;
  }
}

async function child(argv: string[]): Promise<void> {
  const [seedsJson, seedStr, fromStr, countStr] = argv;
  const files: { name: string; file: string }[] = JSON.parse(seedsJson);
  const seeds = files.map((f) => loadSeed(f.name, f.file));
  const seed = Number(seedStr), from = Number(fromStr), count = Number(countStr);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flashdip-fuzz-child-'));
  const report = (o: object) => fs.writeSync(3, JSON.stringify(o) + '\n');
  const inj = /^(abort|hang|rss|internal):(\d+)$/.exec(process.env.FLASHDIP_FUZZ_INJECT ?? '');
  const inject = inj ? { kind: inj[1], at: Number(inj[2]) } : undefined;
  process.removeAllListeners('warning');
  process.on('warning', () => {});
  try {
    for (let i = from; i < from + count; i++) {
      const m = mutate(seeds, seed, i);
      const file = path.join(tmp, 'mutant.gguf');
      fs.writeFileSync(file, m.bytes);
      if (global.gc) global.gc();
      resetHwm();
      report({ start: i });
      if (inject?.at === i) selfTest(inject.kind);
      const r = await runOne(file, m.seed === 'converted', tmp, inject?.at === i && inject.kind === 'internal');
      report({ done: i, ...r, rss: vmHwm() });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- the parent ------------------------------------------------------------------------------

export interface Flag { mutant: number; seed: string; ops: string[]; why: string; stage?: Stage; message?: string; reproducer: string }

function parseArgs(argv: string[]): Record<string, string | boolean> {
  const o: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (key === 'json' || key === 'help') o[key] = true;
    else {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      o[key] = argv[++i];
    }
  }
  return o;
}

function num(o: Record<string, string | boolean>, key: string, def: number): number {
  if (o[key] === undefined) return def;
  const v = Number(o[key]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${key} must be a non-negative number`);
  return v;
}

const USAGE = `usage: ts-node scripts/fuzz.ts [--seconds 60] [--seed S] [--json] [--out DIR] [--batch 40] [--timeout 30] [--rss-limit-mb 1024] [--only N]`;

// Runs mutants [from, from + count) in one child; resolves with the index to continue from.
function runBatch(
  seedFiles: string, seed: number, from: number, count: number, opts: { timeoutMs: number; rssLimit: number; inject?: string },
  onDone: (i: number, r: { outcome: Outcome; messages: Partial<Record<Stage, string>>; rss: number }) => void,
  onFlag: (i: number, why: string) => void,
): Promise<number> {
  const self = __filename;
  const args = self.endsWith('.ts') ? ['-r', require.resolve('ts-node/register/transpile-only')] : [];
  const c: ChildProcess = spawn(process.execPath, ['--expose-gc', ...args, self, '--child', seedFiles, String(seed), String(from), String(count)],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { ...process.env, FLASHDIP_FUZZ_INJECT: opts.inject ?? '' } });
  let current = -1, next = from, buf = '', stderr = '', killedFor = '';
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { killedFor = 'hang'; c.kill('SIGKILL'); }, ms);
  };
  arm(Math.max(opts.timeoutMs, 120_000));  // start-up (ts-node on a busy machine takes seconds)
  const watch = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${c.pid}/status`, 'utf8'));
      if (m && Number(m[1]) * 1024 > opts.rssLimit) { killedFor = 'rss'; c.kill('SIGKILL'); }
    } catch { /* exited */ }
  }, 20);
  c.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  (c.stdio[3] as NodeJS.ReadableStream).on('data', (d) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (msg.start !== undefined) { current = msg.start; arm(opts.timeoutMs); }
      else { onDone(msg.done, msg); current = -1; next = msg.done + 1; }
    }
  });
  return new Promise((resolve) => {
    c.on('exit', (status, signal) => {
      if (timer) clearTimeout(timer);
      clearInterval(watch);
      if (current >= 0) {
        const why = killedFor === 'hang' ? `hang (no result in ${opts.timeoutMs / 1000} s)`
          : killedFor === 'rss' ? `RSS above ${opts.rssLimit / 2 ** 20} MB`
            : signal ? `signal ${signal}` : `child exited with status ${status}`;
        onFlag(current, `${why}${stderr ? `; stderr: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
        resolve(current + 1);
      } else {
        if (status !== 0 || signal) onFlag(next, `child failed outside a mutant (status ${status}, signal ${signal}): ${stderr.trim().slice(-500)}`);
        resolve(status !== 0 || signal ? next + 1 : next);
      }
    });
  });
}

export interface FuzzOptions {
  seconds?: number;        // run batches until this much time has passed (default 60)
  seed?: number;           // default: from the clock
  batch?: number;          // mutants per child process (default 40)
  timeoutSeconds?: number; // per mutant (default 30)
  rssLimitMB?: number;     // peak RSS of a child above this is flagged (default 1024)
  out?: string;            // folder for reproducers (default /tmp/flashdip-fuzz-SEED)
  only?: number;           // run just this mutant
  inject?: string;         // FLASHDIP_FUZZ_INJECT for the children (the harness's own test)
  log?: (line: string) => void;
}

export interface FuzzResult {
  seed: number;
  seconds: number;
  mutants: number;
  maxRssMB: number;
  counts: Record<Stage, Record<string, number>>;
  flagged: number;
  flags: Flag[];
  outDir: string;
}

export async function fuzz(options: FuzzOptions = {}): Promise<FuzzResult> {
  const seconds = options.seconds ?? 60, batch = Math.max(1, Math.floor(options.batch ?? 40));
  const seed = (options.seed ?? (Date.now() ^ (process.pid << 16))) >>> 0;
  const timeoutMs = (options.timeoutSeconds ?? 30) * 1000, rssLimit = (options.rssLimitMB ?? 1024) * 2 ** 20;
  const outDir = options.out ?? path.join(os.tmpdir(), `flashdip-fuzz-${seed}`);
  fs.mkdirSync(outDir, { recursive: true });

  // The two seeds: stories260K and its converted copy (made here, so it is this build's layout).
  const converted = path.join(outDir, 'seed-converted.gguf');
  await convert(STORIES, converted, { force: true });
  const seedList = [{ name: 'stories260K', file: STORIES }, { name: 'converted', file: converted }];
  const seeds = seedList.map((s) => loadSeed(s.name, s.file));
  const seedFiles = JSON.stringify(seedList);

  const counts: Record<Stage, Record<string, number>> = { readGguf: {}, loadModel: {}, generate: {}, convert: {} };
  const flags: Flag[] = [];
  let mutants = 0, maxRss = 0;
  const flag = (i: number, why: string, stage?: Stage, message?: string) => {
    const m = mutate(seeds, seed, i);
    const reproducer = path.join(outDir, `mutant-${i}.gguf`);
    fs.writeFileSync(reproducer, m.bytes);
    flags.push({ mutant: i, seed: m.seed, ops: m.ops, why, stage, message, reproducer });
    options.log?.(`FLAG mutant ${i} (${m.seed}: ${m.ops.join('; ')}): ${why}${stage ? ` in ${stage}` : ''}${message ? `: ${message}` : ''} -> ${reproducer}`);
  };
  const onDone = (i: number, r: { outcome: Outcome; messages: Partial<Record<Stage, string>>; rss: number }) => {
    mutants++;
    maxRss = Math.max(maxRss, r.rss);
    for (const st of STAGES) {
      const c = r.outcome[st];
      if (c === undefined) continue;
      counts[st][c] = (counts[st][c] ?? 0) + 1;
      if (FORBIDDEN.has(c)) flag(i, c, st, r.messages[st]);
    }
    if (r.rss > rssLimit) flag(i, `peak RSS ${(r.rss / 2 ** 20).toFixed(0)} MB`);
  };

  const t0 = Date.now();
  const only = options.only;
  let next = only ?? 0;
  do {
    // A batch is finished even when a mutant kills its child: a new child takes the rest.
    const end = next + (only !== undefined ? 1 : batch);
    while (next < end)
      next = await runBatch(seedFiles, seed, next, end - next, { timeoutMs, rssLimit, inject: options.inject },
        onDone, (i, why) => { mutants++; flag(i, why); });
  } while (only === undefined && Date.now() - t0 < seconds * 1000);
  return { seed, seconds: (Date.now() - t0) / 1000, mutants, maxRssMB: Math.round(maxRss / 2 ** 20), counts, flagged: flags.length, flags, outDir };
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) { console.log(USAGE); return 0; }
  const r = await fuzz({
    seconds: num(o, 'seconds', 60), seed: o.seed !== undefined ? num(o, 'seed', 0) : undefined, batch: num(o, 'batch', 40),
    timeoutSeconds: num(o, 'timeout', 30), rssLimitMB: num(o, 'rss-limit-mb', 1024),
    out: typeof o.out === 'string' ? o.out : undefined, only: o.only !== undefined ? num(o, 'only', 0) : undefined,
    log: o.json ? undefined : (line) => console.error(line),
  });
  if (o.json) {
    console.log(JSON.stringify(r));
  } else {
    console.log(`fuzz: seed ${r.seed}, ${r.mutants} mutants in ${r.seconds.toFixed(0)} s, peak child RSS ${r.maxRssMB} MB, ${r.flagged} flagged`);
    for (const st of STAGES)
      console.log(`  ${st.padEnd(10)} ${Object.entries(r.counts[st]).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`);
    if (r.flagged) console.log(`reproducers in ${r.outDir}; rerun one with --seed ${r.seed} --only N`);
  }
  return r.flagged ? 1 : 0;
}

if (require.main === module && process.argv[2] === '--child') {
  child(process.argv.slice(3)).then(() => process.exit(0), (err) => { console.error(err); process.exit(70); });
} else if (require.main === module) {
  main().then((code) => { process.exitCode = code; }, (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 2; });
}
