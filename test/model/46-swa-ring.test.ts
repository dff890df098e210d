// The sliding-window layers' KV cache as a ring (issue 11). gemma2 and gemma3 random-weight models
// with a window of 8 run for 25 prompt tokens and 48 greedy tokens (~9 windows); the reference is
// llama.cpp, recorded by bench/arch-fixtures.ts into test/fixtures/swa (the greedy tokens and the top
// logits of every step), which keeps the whole sequence. With batch sizes 1, 3 and 64 the rings hold
// 8, 10 and 71 positions, so they wrap many times (71: once); every step's logits must stay within
// 1e-3 of llama.cpp's. Then the rewinds the API offers (truncate within what the ring keeps, truncate
// further back, which evaluates the kept tokens again, and reset) must give the same tokens and
// logits, and the KV cache reported in the budget must be the ring-sized one.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel, Model, Session } from '../../lib';
import { convert } from '../../lib/convert';
import { ArchFixture, fixtureModel, SWA_FIXTURES } from '../../bench/arch-fixtures';
import { readJson, tmpFile } from '../helpers';

const fixtures = fs
  .readdirSync(SWA_FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => readJson<ArchFixture>(path.join(SWA_FIXTURES, f)));

const WINDOW = 8;
const CONTEXT = 128;

// Generates greedily from the session's sequence (the prompt when given), checking each step's
// logits against the fixture's steps from `from` on; returns the tokens generated.
async function greedy(session: Session, fx: ArchFixture, from: number, count: number, prompt: number[] = []): Promise<number[]> {
  const steps = fx.steps!;
  let worst = 0, step = from;
  const before = session.tokens.length;
  for await (const _ of session.generate(prompt, {
    maxTokens: count,
    temperature: 0,
    onLogits: (l) => {
      const s = steps[step++];
      s.ids.forEach((id, i) => { worst = Math.max(worst, Math.abs(l[id] - s.logits[i])); });
    },
  }));
  assert.ok(worst <= 1e-3, `${fx.id}: max |logit diff| ${worst} over steps ${from}..${step - 1}`);
  return session.tokens.slice(before + prompt.length);
}

describe('46 sliding-window KV ring: parity with llama.cpp over many wraps, rewinds, KV bytes', function () {
  this.timeout(240000);
  const files: string[] = [];
  after(() => files.forEach((f) => fs.rmSync(f, { force: true })));

  it('has a long-run fixture with per-step logits for gemma2 and gemma3, window 8, sequence > 8 windows', () => {
    assert.deepStrictEqual(fixtures.map((f) => f.model.arch), ['gemma2', 'gemma3']);
    for (const fx of fixtures) {
      assert.strictEqual(fx.model.slidingWindow, WINDOW);
      assert.strictEqual(fx.steps!.length, fx.greedyTokens.length);
      assert.ok(fx.promptTokens.length + fx.greedyTokens.length > 8 * WINDOW);
    }
  });

  for (const fx of fixtures) {
    describe(`${fx.id} (${fx.llamaCpp.release})`, () => {
      let file: string;
      let model: Model;
      const P = fx.promptTokens.length, G = fx.greedyTokens.length;
      before(async () => {
        file = tmpFile(`swa-${fx.id}.gguf`);
        files.push(file);
        fixtureModel(fx.model, file);
        model = await loadModel(file);
      });
      after(async () => { await model?.dispose(); });

      for (const batchSize of [1, 3, 64]) {
        it(`batchSize ${batchSize} (ring of ${Math.min(CONTEXT, WINDOW + batchSize - 1)}): the greedy tokens and every step's logits`, async () => {
          const session = model.createSession({ contextSize: CONTEXT, kvCacheType: 'f32', batchSize });
          try {
            assert.deepStrictEqual(await greedy(session, fx, 0, G, fx.promptTokens), fx.greedyTokens);
          } finally {
            await session.dispose();
          }
        });
      }

      for (const batchSize of [5, 32]) {
        it(`the whole sequence in one evaluate, batchSize ${batchSize} (prefill batches across the ring, on threads): every step's logits`, async () => {
          const session = model.createSession({ contextSize: CONTEXT, kvCacheType: 'f32', batchSize });
          try {
            const seq = [...fx.promptTokens, ...fx.greedyTokens.slice(0, G - 1)];
            const all = await session.evaluate(seq, { allLogits: true });
            const V = model.info.vocabSize;
            let worst = 0;
            fx.steps!.forEach((s, k) => s.ids.forEach((id, i) => { worst = Math.max(worst, Math.abs(all[(P - 1 + k) * V + id] - s.logits[i])); }));
            assert.ok(worst <= 1e-3, `max |logit diff| ${worst}`);
          } finally {
            await session.dispose();
          }
        });
      }

      it('f16 KV cache: a ring of 8 (batchSize 1) gives the tokens and logits of no ring (batchSize 128 >= contextSize)', async () => {
        const run = async (batchSize: number) => {
          const session = model.createSession({ contextSize: CONTEXT, kvCacheType: 'f16', batchSize });
          const logits: Float32Array[] = [];
          try {
            for await (const _ of session.generate(fx.promptTokens, { maxTokens: G, temperature: 0, onLogits: (l) => { logits.push(l.slice()); } }));
            return { tokens: session.tokens.slice(P), logits };
          } finally {
            await session.dispose();
          }
        };
        const ring = await run(1), full = await run(128);
        assert.deepStrictEqual(ring.tokens, full.tokens);
        let worst = 0;
        ring.logits.forEach((l, k) => l.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - full.logits[k][i])); }));
        assert.ok(worst <= 1e-3, `max |logit diff| ${worst}`);
      });

      it('truncate within the ring keeps the cache, further back evaluates again, reset starts over: the same tokens', async () => {
        const batchSize = 3;
        const session = model.createSession({ contextSize: CONTEXT, kvCacheType: 'f32', batchSize });
        try {
          assert.deepStrictEqual(await greedy(session, fx, 0, G, fx.promptTokens), fx.greedyTokens);
          // The last greedy token is sampled, not evaluated: P + G - 1 positions are cached.
          assert.strictEqual(session.cachedTokens, P + G - 1);
          // Back by batchSize positions: the ring (window + batchSize - 1 slots) still holds the window.
          let n = P + G - 1 - batchSize;
          session.truncate(n);
          assert.strictEqual(session.cachedTokens, n);
          const next = fx.greedyTokens[n - P];
          assert.deepStrictEqual(await greedy(session, fx, n - P + 1, P + G - n - 1, [next]), fx.greedyTokens.slice(n - P + 1));
          assert.strictEqual(session.cachedTokens, P + G - 1);
          // Back by more than the ring keeps: the cache is emptied and the n tokens evaluated again.
          n = P + 10;
          session.truncate(n);
          assert.strictEqual(session.cachedTokens, 0);
          assert.deepStrictEqual(session.tokens, [...fx.promptTokens, ...fx.greedyTokens.slice(0, 10)]);
          assert.deepStrictEqual(await greedy(session, fx, 10, G - 10), fx.greedyTokens.slice(10));
          // Into the prompt: the rings have wrapped since, so this too starts over.
          session.truncate(5);
          assert.strictEqual(session.cachedTokens, 0);
          assert.deepStrictEqual(await greedy(session, fx, 0, G, fx.promptTokens.slice(5)), fx.greedyTokens);
          // Every token cached (the last sampled one dropped): the logits after them are still held;
          // then one fewer: the last cached token is evaluated again for its logits.
          session.truncate(P + G - 1);
          assert.strictEqual(session.cachedTokens, P + G - 1);
          assert.deepStrictEqual(await greedy(session, fx, G - 1, 1), fx.greedyTokens.slice(G - 1));
          session.truncate(P + G - 2);
          assert.deepStrictEqual(await greedy(session, fx, G - 2, 2), fx.greedyTokens.slice(G - 2));
          session.reset();
          assert.deepStrictEqual(await greedy(session, fx, 0, G, fx.promptTokens), fx.greedyTokens);
        } finally {
          await session.dispose();
        }
      });
    });
  }

  it('gemma3 (5 of 6 layers sliding): the KV cache counted in the budget is ring-sized, and the DIP layout under a budget keeps parity', async () => {
    const fx = fixtures.find((f) => f.model.arch === 'gemma3')!;
    const src = tmpFile('swa-gemma3-src.gguf'), dip = tmpFile('swa-gemma3.dip.gguf');
    files.push(src, dip);
    fixtureModel(fx.model, src);
    await convert(src, dip, { type: 'f32' });
    const model = await loadModel(dip, { memoryBudget: 12_000_000 });
    try {
      const layers = fx.model.layers, swa = layers - Math.floor(layers / 6);  // gemma3: every 6th layer is full
      const row = (fx.model.kvHeads ?? fx.model.heads) * fx.model.headDim! * 4;  // f32
      const kv = (batchSize: number, ctx: number) => 2 * row * ((layers - swa) * ctx + swa * Math.min(ctx, WINDOW + batchSize - 1));
      for (const [batchSize, ctx] of [[1, CONTEXT], [3, CONTEXT], [64, CONTEXT], [4, 8], [16, 2048]]) {
        const session = model.createSession({ contextSize: ctx, kvCacheType: 'f32', batchSize, allowContextBeyondTraining: true });
        const counted = model.memory().budget!.kvCache;
        await session.dispose();
        assert.strictEqual(counted, kv(batchSize, ctx), `batchSize ${batchSize}, contextSize ${ctx}`);
      }
      // 5 of 6 layers hold 10 of 128 positions: 2 * 256 * (128 + 50) bytes, not 2 * 256 * 768.
      assert.strictEqual(kv(3, CONTEXT), 2 * 256 * 178);
      // A budget that holds the ring-sized cache of a 2048-position session but not a full one.
      const full = 2 * row * layers * 2048;
      assert.ok(kv(16, 2048) < full / 4);
      // Dense on the DIP layout (attention rows from the column store) over the wraps.
      const session = model.createSession({ contextSize: CONTEXT, kvCacheType: 'f32', batchSize: 3, sparsity: { method: 'dense' } });
      try {
        assert.deepStrictEqual(await greedy(session, fx, 0, fx.greedyTokens.length, fx.promptTokens), fx.greedyTokens);
        // The simulator's KV read per token at the run's average length (36.5 positions): the full
        // layer reads them all, the sliding ones at most their ring of 10.
        const t = session.trace();
        assert.strictEqual(t.averageLength, 36.5);
        assert.ok(Math.abs(t.kvBytesPerPosition * t.averageLength - 2 * 256 * (36.5 + 5 * 10)) < 1e-6, String(t.kvBytesPerPosition));
      } finally {
        await session.dispose();
      }
    } finally {
      await model.dispose();
    }
  });
});
