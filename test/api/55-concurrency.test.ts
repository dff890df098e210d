// Concurrency contracts: one open generator per session, dispose while a step runs, and a worker
// thread terminated while it generates or loads (AsyncWorker completion on a dying environment).
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError, loadModel, Model, Piece } from '../../lib';
import { STORIES } from '../helpers';

const isCode = (code: string) => (e: unknown) => e instanceof FlashdipError && e.code === code;
// The built JavaScript (npm test builds it first): worker threads load it without ts-node.
const DIST = path.resolve(__dirname, '../../dist/index.js');

async function tokensOf(it: AsyncIterable<Piece>): Promise<number[]> {
  const out: number[] = [];
  for await (const p of it) if (p.token >= 0) out.push(p.token);
  return out;
}

describe('55 concurrency', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  it('a second generate or evaluate while a generator is open gets ERR_BUSY, and the open one stays exact', async () => {
    const prompt = 'Once upon a time';
    const ref = model.createSession({ contextSize: 256 });
    const expected = await tokensOf(ref.generate(prompt, { maxTokens: 24, temperature: 0 }));
    await ref.dispose();

    const s = model.createSession({ contextSize: 256 });
    const g1 = s.generate(prompt, { maxTokens: 24, temperature: 0 });
    const got: number[] = [];
    for (let step = 0; ; step++) {
      const r = await g1.next();
      if (r.done) break;
      got.push(r.value.token);
      // Between two steps of g1 (no native step running), another generator and evaluate are refused.
      if (step % 3 === 0) {
        const g2 = s.generate(' and then', { maxTokens: 4, temperature: 0 });
        await assert.rejects(g2.next(), isCode('ERR_BUSY'));
        await assert.rejects(s.evaluate([1]), isCode('ERR_BUSY'));
        assert.throws(() => s.reset(), isCode('ERR_BUSY'));
      }
    }
    assert.deepStrictEqual(got, expected);
    // Finished: the session is free again.
    assert.ok((await tokensOf(s.generate(' The end', { maxTokens: 4, temperature: 0 }))).length > 0);
    await s.dispose();
  });

  it('break, return() and a thrown generator release the session', async () => {
    const s = model.createSession({ contextSize: 256 });
    for await (const _ of s.generate('Once upon a time', { maxTokens: 50 })) break;
    await s.evaluate([1]);
    const g = s.generate(' and', { maxTokens: 50 });
    await g.next();
    await g.return(undefined);
    const ac = new AbortController();
    const g3 = s.generate(' then', { maxTokens: 50, signal: ac.signal });
    await g3.next();
    ac.abort();
    await assert.rejects(g3.next(), isCode('ERR_ABORTED'));
    assert.ok((await tokensOf(s.generate(' a', { maxTokens: 3 }))).length > 0);
    s.reset();
    await s.dispose();
  });

  it('two generators advanced alternately: the second is refused and the first matches a lone run', async () => {
    const s = model.createSession({ contextSize: 256 });
    const a = s.generate('Lily went', { maxTokens: 10, temperature: 0 });
    const b = s.generate(' to the park', { maxTokens: 10, temperature: 0 });
    const first = await a.next();
    await assert.rejects(b.next(), isCode('ERR_BUSY'));
    const rest = [first.value as Piece];
    for (let r = await a.next(); !r.done; r = await a.next()) rest.push(r.value);
    const lone = model.createSession({ contextSize: 256 });
    assert.deepStrictEqual(rest.map((p) => p.token).filter((t) => t >= 0), await tokensOf(lone.generate('Lily went', { maxTokens: 10, temperature: 0 })));
    await lone.dispose();
    await s.dispose();
  });

  it('dispose() while a step runs and while stats are polled: the step settles, later calls get ERR_DISPOSED', async () => {
    for (let round = 0; round < 20; round++) {
      const s = model.createSession({ contextSize: 1024, record: true });
      const g = s.generate('Once upon a time', { maxTokens: 200 });
      await g.next();
      const poll = setInterval(() => {
        try {
          s.stats();
          s.trace();
        } catch (err) {
          if (!isCode('ERR_DISPOSED')(err)) throw err;
        }
      }, 0);
      try {
        const step = g.next();  // a native step is queued now
        await new Promise((r) => setTimeout(r, round % 4));
        await s.dispose();
        // The step settles: with its piece (then the next step is refused) or refused itself (then
        // the generator is finished).
        const settled = await step.then(() => 'ok', (e) => e);
        if (settled === 'ok') await assert.rejects(g.next(), isCode('ERR_DISPOSED'));
        else assert.ok(isCode('ERR_DISPOSED')(settled), String(settled));
        assert.deepStrictEqual(await g.next(), { done: true, value: undefined });
      } finally {
        clearInterval(poll);
      }
      assert.throws(() => s.stats(), isCode('ERR_DISPOSED'));
      assert.throws(() => s.trace(), isCode('ERR_DISPOSED'));
      await assert.rejects(s.evaluate([1]), isCode('ERR_DISPOSED'));
      await assert.rejects(s.generate('x').next(), isCode('ERR_DISPOSED'));
    }
    // Disposing the model under a running evaluate is just as clean.
    const m2 = await loadModel(STORIES);
    const s2 = m2.createSession({ contextSize: 1024 });
    const ev = s2.evaluate(Array.from({ length: 900 }, (_, i) => 1 + (i % 400)));
    await m2.dispose();
    await ev.then(() => undefined, (e) => assert.ok(isCode('ERR_DISPOSED')(e), String(e)));
    await assert.rejects(s2.evaluate([1]), isCode('ERR_DISPOSED'));
  });

  // Run in a child process, so that an abort shows up as a failed test with its output.
  function runChild(code: string): void {
    assert.ok(fs.existsSync(DIST), `${DIST} is missing: build the TypeScript first (npx tsc -p tsconfig.json)`);
    const r = spawnSync(process.execPath, ['-e', code], {
      env: { ...process.env, FD_DIST: DIST, FD_MODEL: STORIES },
      encoding: 'utf8',
      timeout: 240000,
    });
    assert.ok(r.status === 0 && r.signal === null, `child ended with status ${r.status} signal ${r.signal}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /done/);
  }

  it('terminating a worker thread that is generating never kills the process (40 random points)', function () {
    this.timeout(240000);
    runChild(`
      const { Worker } = require('worker_threads');
      const body = \`
        const { parentPort, workerData } = require('worker_threads');
        const { loadModel } = require(workerData.dist);
        (async () => {
          const model = await loadModel(workerData.model);
          const s = model.createSession({ contextSize: 512, record: workerData.i % 2 === 1 });
          parentPort.postMessage('ready');
          for (;;) {
            for await (const p of s.generate('Once upon a time', { maxTokens: 120 })) if (p.token < 0) break;
            s.stats();
            s.reset();
          }
        })();\`;
      (async () => {
        for (let i = 0; i < 40; i++) {
          const w = new Worker(body, { eval: true, workerData: { dist: process.env.FD_DIST, model: process.env.FD_MODEL, i } });
          await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
          await new Promise((r) => setTimeout(r, Math.random() * 20));
          await w.terminate();
        }
        console.log('done');
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
  });

  it('terminating a worker thread during loadModel never kills the process (30 random points)', function () {
    this.timeout(240000);
    runChild(`
      const { Worker } = require('worker_threads');
      const body = \`
        const { parentPort, workerData } = require('worker_threads');
        const { loadModel } = require(workerData.dist);
        parentPort.postMessage('started');
        (async () => { for (;;) { const m = await loadModel(workerData.model); m.createSession({ contextSize: 64 }); await m.dispose(); } })();\`;
      (async () => {
        for (let i = 0; i < 30; i++) {
          const w = new Worker(body, { eval: true, workerData: { dist: process.env.FD_DIST, model: process.env.FD_MODEL } });
          await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          await w.terminate();
        }
        console.log('done');
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
  });
});
