// Child process for test 78: loads a model, evaluates, then changes its file (truncated between two
// evaluations or during one, renamed over, chmod 000) and reports what each later call gave. Run in a
// child so that a SIGBUS kills this process, not mocha. Prints one JSON line.
import * as fs from 'fs';
import { loadModel } from '../../lib';

interface Job {
  file: string;
  change: 'truncate-between' | 'truncate-during' | 'rewrite' | 'replace' | 'chmod';
  cut?: number;          // bytes to keep when truncating
  budget?: number;       // memoryBudget (MLP rows through the store of a converted file)
  replacement?: string;  // the file renamed over `file` (replace), or copied into it in place (rewrite)
  tokens?: number;       // prompt length of the evaluation that is truncated during
  hugePages?: boolean;   // loadModel's: false computes through the file's mapping (the SIGBUS guard's case)
}

function code(err: unknown): string {
  return String((err as { code?: string }).code) + ': ' + String((err as Error).message);
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return code(err);
  }
}

(async () => {
  const job = JSON.parse(process.argv[2]) as Job;
  process.removeAllListeners('warning');
  const model = await loadModel(job.file, {
    threads: 1, ...(job.budget ? { memoryBudget: job.budget } : {}), ...(job.hugePages !== undefined ? { hugePages: job.hugePages } : {}),
  });
  const session = model.createSession({ contextSize: job.tokens ? job.tokens + 64 : 128, kvCacheType: 'f32' });
  const gen = async (n: number): Promise<number[]> => {
    const out: number[] = [];
    for await (const piece of session.generate('Once upon a time', { maxTokens: n, temperature: 0 })) out.push(piece.token);
    return out;
  };
  const res: Record<string, unknown> = { before: await gen(8), engine: session.stats().sparsity.ioEngine };
  if (job.change === 'truncate-between' || job.change === 'rewrite') {
    session.reset();
    if (job.change === 'rewrite') fs.copyFileSync(job.replacement!, job.file);  // same inode, new bytes
    else fs.truncateSync(job.file, job.cut);
    res.first = await outcome(gen(8));
    res.second = await outcome(session.evaluate([1]));
  } else if (job.change === 'truncate-during') {
    session.reset();
    const prompt = Array.from({ length: job.tokens ?? 512 }, (_, i) => 1 + (i * 7) % 200);
    let settled = false;
    let truncatedWhilePending = false;
    const timer = setTimeout(() => {
      truncatedWhilePending = !settled;
      fs.truncateSync(job.file, job.cut);
    }, 50);
    res.first = await outcome(session.evaluate(prompt).finally(() => (settled = true)));
    clearTimeout(timer);
    res.truncatedWhilePending = truncatedWhilePending;
    res.second = await outcome(session.evaluate([1]));
  } else {
    if (job.change === 'replace') fs.renameSync(job.replacement!, job.file);
    else fs.chmodSync(job.file, 0);
    session.reset();
    res.after = await gen(8);
    res.newSession = await outcome((async () => {
      const s2 = model.createSession({ contextSize: 64 });
      await s2.evaluate([1]);
    })());
  }
  await model.dispose();
  process.stdout.write(JSON.stringify(res) + '\n');
})();
