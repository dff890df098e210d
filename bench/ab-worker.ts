// One measurement for bench/ab.ts in a child process: load <root>/lib (that build's TypeScript and its
// own .node), warm up, then time a greedy generation. Besides wall time it records the process's CPU
// time over the decode loop: with one thread, CPU seconds per token hardly depend on how many other
// processes share the machine, so the ratio of two builds stays readable under load.
import * as path from 'path';

export interface AbJob {
  root: string;
  model: string;
  threads: number;
  prompt: number[];
  tokens: number;
  contextSize: number;
  warmupTokens: number;
}

export interface AbMeasurement {
  decodeTokensPerSecond: number;
  /** Decode steps per CPU second of this process (user + system). */
  decodeTokensPerCpuSecond: number;
  /** session.stats(): native time only. */
  nativeDecodeTokensPerSecond: number;
  generated: number[];
}

async function measure(job: AbJob): Promise<AbMeasurement> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { loadModel } = require(path.join(job.root, 'lib')) as typeof import('../lib');
  const model = await loadModel(job.model, { threads: job.threads });
  try {
    const session = model.createSession({ contextSize: job.contextSize, kvCacheType: 'f16' });
    const eog: number[] = [];
    for (let t = 0; t < model.tokenizer.vocabSize; t++) if (model.tokenizer.isEndOfGeneration(t)) eog.push(t);
    const onLogits = (logits: Float32Array): void => {
      for (const t of eog) logits[t] = -Infinity;
    };
    const run = async (n: number) => {
      const tokens: number[] = [];
      let t0 = 0, c0 = process.cpuUsage();
      for await (const piece of session.generate(job.prompt, { maxTokens: n, temperature: 0, onLogits })) {
        if (piece.token < 0) continue;
        if (tokens.length === 0) (t0 = performance.now()), (c0 = process.cpuUsage());
        tokens.push(piece.token);
      }
      const c = process.cpuUsage(c0);
      return { tokens, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
    };
    if (job.warmupTokens > 0) {
      await run(job.warmupTokens);
      session.reset();
    }
    const r = await run(job.tokens);
    const steps = Math.max(0, r.tokens.length - 1);
    return {
      decodeTokensPerSecond: steps / r.wall,
      decodeTokensPerCpuSecond: steps / r.cpu,
      nativeDecodeTokensPerSecond: session.stats().decodeTokensPerSecond,
      generated: r.tokens,
    };
  } finally {
    await model.dispose();
  }
}

if (require.main === module) {
  process.once('message', (job: AbJob) => {
    measure(job).then(
      (result) => process.send!({ ok: true, result }, () => process.exit(0)),
      (err: Error) => process.send!({ ok: false, error: String(err?.stack ?? err) }, () => process.exit(1)),
    );
  });
}
