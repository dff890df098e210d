// The public API: options, lifecycle, sessions sharing a model, abort, stop strings, seeds, and that
// inference leaves the JS thread free.
import * as assert from 'assert';
import { FlashdipError, loadModel, Model } from '../../lib';
import { collect, promptReferences, STORIES } from '../helpers';

const isCode = (code: string) => (e: unknown) => e instanceof FlashdipError && e.code === code;

describe('50 api', () => {
  let model: Model;
  const ref = promptReferences()[0];
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  it('rejects bad load, session and generate options with ERR_INVALID_ARGUMENT', async () => {
    await assert.rejects(loadModel(STORIES, { threads: -1 }), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(loadModel(STORIES, { thread: 2 } as never), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(loadModel(''), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => model.createSession({ contextSize: 0 }), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => model.createSession({ kvCacheType: 'q4' as never }), isCode('ERR_INVALID_ARGUMENT'));
    const s = model.createSession({ contextSize: 64 });
    await assert.rejects(collect(s.generate('hi', { maxTokens: -1 })), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(collect(s.generate('hi', { temperature: -1 })), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(collect(s.generate('hi', { topP: 2 })), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(collect(s.generate('hi', { stop: [''] })), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(collect(s.generate('hi', { method: 'fast' } as never)), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.evaluate([100000]), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.evaluate([1.5]), isCode('ERR_INVALID_ARGUMENT'));
    await s.dispose();
  });

  it('hugePages: weights copied into huge pages give the logits the mapping gives; refused with a memoryBudget', async () => {
    const logits = async (m: Model) => {
      const s = m.createSession({ kvCacheType: 'f32' });
      const out = await s.evaluate(ref.prompt_tokens);
      await s.dispose();
      return out;
    };
    const mapped = await loadModel(STORIES, { hugePages: false });
    const copied = await loadModel(STORIES, { hugePages: true });
    try {
      assert.strictEqual(mapped.info.weightsCopied, false);
      assert.strictEqual(copied.info.weightsCopied, true);
      assert.deepStrictEqual(await logits(copied), await logits(mapped));
    } finally {
      await mapped.dispose();
      await copied.dispose();
    }
    await assert.rejects(loadModel(STORIES, { hugePages: true, memoryBudget: '1GB' }), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(loadModel(STORIES, { hugePages: 1 as never }), isCode('ERR_INVALID_ARGUMENT'));
    const budgeted = await loadModel(STORIES, { memoryBudget: '1GB' });
    assert.strictEqual(budgeted.info.weightsCopied, false, 'under a budget the weights stay on flash');
    await budgeted.dispose();
  });

  it('generates the reference continuation and reports stats', async () => {
    const s = model.createSession({ kvCacheType: 'f32' });
    const { text, tokens } = await collect(s.generate(ref.prompt_text, { maxTokens: 64, temperature: 0 }));
    assert.deepStrictEqual(tokens, ref.generated_tokens);
    assert.strictEqual(text, ref.generated_text);
    const st = s.stats();
    assert.strictEqual(st.promptTokens, ref.prompt_tokens.length);
    assert.strictEqual(st.generatedTokens, 64);
    assert.strictEqual(st.contextUsed, ref.prompt_tokens.length + 63);
    assert.ok(st.decodeTokensPerSecond > 0 && st.residentBytes > 0);
    await s.dispose();
  });

  it('continues a sequence across generate calls, and reset starts over', async () => {
    const s = model.createSession({ kvCacheType: 'f32' });
    const a = await collect(s.generate(ref.prompt_text, { maxTokens: 20, temperature: 0 }));
    const b = await collect(s.generate([], { maxTokens: 44, temperature: 0 }));
    assert.deepStrictEqual([...a.tokens, ...b.tokens], ref.generated_tokens);
    s.reset();
    const c = await collect(s.generate(ref.prompt_text, { maxTokens: 5, temperature: 0 }));
    assert.deepStrictEqual(c.tokens, ref.generated_tokens.slice(0, 5));
    await s.dispose();
  });

  it('sessions share a model and do not disturb each other', async () => {
    const refs = promptReferences().slice(0, 3);
    const sessions = refs.map(() => model.createSession({ kvCacheType: 'f32' }));
    const results = await Promise.all(sessions.map((s, i) => collect(s.generate(refs[i].prompt_text, { maxTokens: 64, temperature: 0 }))));
    results.forEach((r, i) => assert.deepStrictEqual(r.tokens, refs[i].generated_tokens));
    for (const s of sessions) await s.dispose();
  });

  it('a seed reproduces sampled tokens', async () => {
    const run = async (seed: number) => {
      const s = model.createSession({ seed });
      const r = await collect(s.generate('Once upon a time', { maxTokens: 40, temperature: 1 }));
      await s.dispose();
      return r.tokens;
    };
    assert.deepStrictEqual(await run(7), await run(7));
    assert.notDeepStrictEqual(await run(7), await run(8));
  });

  it('stop strings end the text before the stop string, even across tokens', async () => {
    const s = model.createSession();
    const full = ref.generated_text;
    const stop = 'Lily. She';
    const r = await collect(s.generate(ref.prompt_text, { maxTokens: 64, temperature: 0, stop: [stop] }));
    assert.strictEqual(r.text, full.slice(0, full.indexOf(stop)));
    await s.dispose();
  });

  it('an AbortSignal stops generation with ERR_ABORTED', async () => {
    const s = model.createSession();
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of s.generate(ref.prompt_text, { maxTokens: 64, temperature: 0, signal: ac.signal })) if (++n === 3) ac.abort();
      })(),
      isCode('ERR_ABORTED'),
    );
    assert.strictEqual(n, 3);
    await s.dispose();
  });

  it('a full context gives ERR_CONTEXT_FULL and the session stays usable', async () => {
    const s = model.createSession({ contextSize: 16 });
    await assert.rejects(collect(s.generate(ref.prompt_text, { maxTokens: 64, temperature: 0 })), isCode('ERR_CONTEXT_FULL'));
    s.reset();
    assert.strictEqual((await collect(s.generate(ref.prompt_text, { maxTokens: 4, temperature: 0 }))).tokens.length, 4);
    await s.dispose();
  });

  it('one evaluation at a time per session: ERR_BUSY', async () => {
    const s = model.createSession();
    const first = s.evaluate(ref.prompt_tokens);
    await assert.rejects(s.evaluate([5]), isCode('ERR_BUSY'));
    await first;
    await s.dispose();
  });

  it('inference runs off the main thread: a timer keeps firing', async () => {
    const s = model.createSession({ contextSize: 2048, kvCacheType: 'f32', batchSize: 1 });
    const tokens = Array.from({ length: 1500 }, (_, i) => 259 + (i % 200));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    await s.evaluate(tokens);
    const ms = performance.now() - t0;
    clearInterval(timer);
    assert.ok(ms < 20 || ticks >= 2, `${ticks} timer ticks during a ${ms.toFixed(0)} ms evaluation`);
    await s.dispose();
  });

  it('disposed objects throw ERR_DISPOSED; dispose is idempotent', async () => {
    const m = await loadModel(STORIES);
    const s = m.createSession();
    await s.dispose();
    await s.dispose();
    await assert.rejects(s.evaluate([1]), isCode('ERR_DISPOSED'));
    const s2 = m.createSession();
    await m.dispose();
    await m.dispose();
    assert.ok(s2.disposed, 'disposing the model disposes its sessions');
    assert.throws(() => m.createSession(), isCode('ERR_DISPOSED'));
    assert.throws(() => m.tokenize('x'), isCode('ERR_DISPOSED'));
    await assert.rejects(collect(s2.generate('x')), isCode('ERR_DISPOSED'));
    {
      await using m2 = await loadModel(STORIES);
      assert.ok(!m2.disposed);
    }
  });
});
