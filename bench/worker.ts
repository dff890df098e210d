// One measurement in a child process: load one model with one engine (flashdip or llama.cpp via
// node-llama-cpp), warm up, then time a greedy generation of N tokens after the given prompt.
// bench/run.ts forks this file once per (engine, model, repetition) and gets the result over IPC,
// so the two engines never share a process, a heap or a thread pool.
//
// Both engines are timed by the same loop (timeGeneration): prefill = from asking for the first
// token until it arrives (prompt evaluation + one sampling); decode = from the first token to the
// Nth, i.e. N-1 single-token steps including sampling and the engine's own JS overhead.
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';

export interface Job {
  engine: 'flashdip' | 'llamacpp';
  model: string;
  threads: number;
  /** Token ids of the prompt, BOS included: the same ids are given to both engines. */
  prompt: number[];
  tokens: number;
  contextSize: number;
  /** Tokens generated once before the measurement (touches every weight page, warms caches). */
  warmupTokens: number;
  /** node_modules folder that holds node-llama-cpp (only for engine 'llamacpp'). */
  depsDir: string;
  /** flashdip only: loadModel options besides threads (memoryBudget, sparsity, cache). */
  loadOptions?: Omit<import('../lib').LoadOptions, 'threads'>;
  /** flashdip only: the library to load, e.g. the compiled dist/index.js (default ../lib: this
   *  file's TypeScript sources, which need ts-node in the child). */
  flashdipEntry?: string;
}

export interface Measurement {
  engine: Job['engine'];
  model: string;
  threads: number;
  promptTokens: number;
  generatedTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Decode steps per CPU second of the whole process (user + system, all threads): with one compute
   *  thread this hardly depends on how many other processes share the cores, so the engines' ratio
   *  stays readable on a loaded machine (with more threads it counts their spinning too). */
  decodeTokensPerCpuSecond: number;
  loadSeconds: number;
  /** Peak resident set size of the child process, bytes. */
  maxRssBytes: number;
  /** The generated token ids (end-of-generation tokens suppressed or passed through, see below). */
  generated: number[];
  /** flashdip only: what session.stats() says about the same run (native time only). */
  engineStats?: Record<string, unknown>;
  /** Bytes this process had read from storage (/proc/self/io read_bytes: page-cache misses, mmap
   *  faults and preads alike) before the prompt, at the first token and at the last; Linux only. */
  ioReadBytes?: { start: number; firstToken: number; end: number };
}

// Bytes fetched from storage by this process so far (all threads), or NaN where /proc has no io file.
function ioReadBytes(): number {
  try {
    const m = /^read_bytes:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

// The engine-specific part: generate(prompt) yields token ids forever (the caller stops it).
interface Engine {
  generate(prompt: number[], maxTokens: number): AsyncIterable<number>;
  reset(): Promise<void>;
  stats?(): Record<string, unknown>;
  dispose(): Promise<void>;
}

async function openFlashdip(job: Job): Promise<Engine> {
  // Loaded here, not at the top, so a llama.cpp child never loads flashdip's addon.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { loadModel } = require(job.flashdipEntry ?? '../lib') as typeof import('../lib');
  const model = await loadModel(job.model, { ...job.loadOptions, threads: job.threads });
  const session = model.createSession({ contextSize: job.contextSize, kvCacheType: 'f16' });
  // generate() stops at end-of-generation tokens; a speed run must produce exactly N tokens, so
  // they are masked out of the logits (llama.cpp's side passes them through instead: the cost
  // of a step does not depend on which token it is).
  const eog: number[] = [];
  for (let t = 0; t < model.tokenizer.vocabSize; t++) if (model.tokenizer.isEndOfGeneration(t)) eog.push(t);
  const onLogits = (logits: Float32Array): void => {
    for (const t of eog) logits[t] = -Infinity;
  };
  return {
    async *generate(prompt, maxTokens) {
      for await (const piece of session.generate(prompt, { maxTokens, temperature: 0, onLogits })) {
        if (piece.token >= 0) yield piece.token; // token -1: the decoder's final flush, not a step
      }
    },
    async reset() {
      session.reset();
    },
    stats: () => ({ ...session.stats() }),
    dispose: () => model.dispose(),
  };
}

async function openLlamaCpp(job: Job): Promise<Engine> {
  // node-llama-cpp is an ES module; TypeScript compiles import() to require() under CommonJS, so the
  // real dynamic import is reached through Function.
  const esmImport = new Function('u', 'return import(u)') as (u: string) => Promise<any>;
  const entry = path.join(job.depsDir, 'node-llama-cpp', 'dist', 'index.js');
  const { getLlama, LlamaLogLevel } = await esmImport(pathToFileURL(entry).href);
  // maxThreads 0: no pool-wide cap, so the context's `threads` is the exact number used.
  const llama = await getLlama({ build: 'never', gpu: false, maxThreads: 0, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: job.model });
  const context = await model.createContext({ contextSize: job.contextSize, threads: job.threads, sequences: 1 });
  const sequence = context.getSequence();
  return {
    async *generate(prompt, maxTokens) {
      let n = 0;
      for await (const token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
        yield token as number;
        if (++n >= maxTokens) return;
      }
    },
    reset: () => sequence.clearHistory(),
    async dispose() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function timeGeneration(engine: Engine, prompt: number[], n: number) {
  const tokens: number[] = [];
  const io = { start: ioReadBytes(), firstToken: NaN, end: NaN };
  const t0 = performance.now();
  let tFirst = t0;
  let cpuFirst = process.cpuUsage();
  for await (const token of engine.generate(prompt, n)) {
    if (tokens.length === 0) {
      tFirst = performance.now();
      cpuFirst = process.cpuUsage();
      io.firstToken = ioReadBytes();
    }
    tokens.push(token);
    if (tokens.length >= n) break;
  }
  const tEnd = performance.now();
  const cpu = process.cpuUsage(cpuFirst);
  io.end = ioReadBytes();
  return { tokens, prefillSeconds: (tFirst - t0) / 1000, decodeSeconds: (tEnd - tFirst) / 1000, decodeCpuSeconds: (cpu.user + cpu.system) / 1e6, io };
}

export async function measure(job: Job): Promise<Measurement> {
  const tLoad = performance.now();
  const engine = job.engine === 'flashdip' ? await openFlashdip(job) : await openLlamaCpp(job);
  const loadSeconds = (performance.now() - tLoad) / 1000;
  try {
    if (job.warmupTokens > 0) {
      await timeGeneration(engine, job.prompt, job.warmupTokens);
      await engine.reset();
    }
    const run = await timeGeneration(engine, job.prompt, job.tokens);
    const decodeSteps = Math.max(0, run.tokens.length - 1);
    return {
      engine: job.engine,
      model: job.model,
      threads: job.threads,
      promptTokens: job.prompt.length,
      generatedTokens: run.tokens.length,
      prefillSeconds: run.prefillSeconds,
      decodeSeconds: run.decodeSeconds,
      prefillTokensPerSecond: run.prefillSeconds > 0 ? job.prompt.length / run.prefillSeconds : 0,
      decodeTokensPerSecond: run.decodeSeconds > 0 ? decodeSteps / run.decodeSeconds : 0,
      decodeTokensPerCpuSecond: run.decodeCpuSeconds > 0 ? decodeSteps / run.decodeCpuSeconds : 0,
      loadSeconds,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      generated: run.tokens,
      engineStats: engine.stats?.(),
      ioReadBytes: Number.isFinite(run.io.start) ? run.io : undefined,
    };
  } finally {
    await engine.dispose();
  }
}

// As a forked child: take one job from the parent, send back { ok, result | error }, exit.
if (require.main === module) {
  process.once('message', (job: Job) => {
    measure(job).then(
      (result) => process.send!({ ok: true, result }, () => process.exit(0)),
      (err: Error) => process.send!({ ok: false, error: String(err?.stack ?? err) }, () => process.exit(1)),
    );
  });
}
