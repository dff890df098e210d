// Child process for test 12: every way of opening a model, pointed at a FIFO with no writer. Run in a
// child so that a hang (open() blocking the JS thread) is a timeout of this process, not of mocha.
// Prints one JSON line: per call, the error code and message (or 'ok'), and how many 1 ms timer
// ticks the event loop ran while loadModel was pending.
import { loadModel, readGguf } from '../../lib';
import { readGgufAsync } from '../../lib/gguf';
import { pageCacheResident } from '../../lib/page-cache';

function outcome(err: unknown): { code: string; message: string } {
  const e = err as { code?: string; message?: string };
  return { code: String(e?.code), message: String(e?.message) };
}

(async () => {
  const fifo = process.argv[2];
  const out: Record<string, unknown> = {};
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = Date.now();
  const pending = loadModel(fifo);
  const returnedAfter = Date.now() - started;  // loadModel returned its promise without waiting on the file
  out.loadModel = await pending.then(() => ({ code: 'ok' }), outcome);
  out.loadModelMs = Date.now() - started;
  out.returnedAfterMs = returnedAfter;
  out.ticks = ticks;
  clearInterval(timer);
  out.readGgufAsync = await readGgufAsync(fifo).then(() => ({ code: 'ok' }), outcome);
  for (const [name, fn] of [['readGguf', readGguf], ['pageCacheResident', pageCacheResident]] as const) {
    try {
      fn(fifo);
      out[name] = { code: 'ok' };
    } catch (err) {
      out[name] = outcome(err);
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})();
