// Context sizes: beyond the trained context only when asked for, and a huge KV cache is reserved,
// not zero-filled on the JS thread (createSession returns at once; RAM grows with the positions used).
import * as assert from 'assert';
import { FlashdipError, loadModel, Model } from '../../lib';
import { residentBytes } from '../../lib/session';
import { STORIES } from '../helpers';

const isCode = (code: string, re?: RegExp) => (e: unknown) => e instanceof FlashdipError && e.code === code && (!re || re.test(e.message));

describe('57 context size', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  it('a context beyond the trained one needs allowContextBeyondTraining: ERR_INVALID_ARGUMENT saying so', async () => {
    const trained = model.info.contextLength;
    assert.throws(() => model.createSession({ contextSize: trained + 1 }), isCode('ERR_INVALID_ARGUMENT', /allowContextBeyondTraining: true/));
    assert.throws(() => model.createSession({ contextSize: 16777216 }), isCode('ERR_INVALID_ARGUMENT', /trained/));
    assert.throws(() => model.createSession({ contextSize: trained + 1, allowContextBeyondTraining: 'yes' as never }), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => model.createSession({ contextSize: (1 << 24) + 1, allowContextBeyondTraining: true }), isCode('ERR_INVALID_ARGUMENT'));
    const s = model.createSession({ contextSize: trained });
    assert.strictEqual(s.contextSize, trained);
    await s.dispose();
    const beyond = model.createSession({ contextSize: trained + 100, allowContextBeyondTraining: true });
    await beyond.evaluate([1, 2, 3]);
    await beyond.dispose();
  });

  it('createSession with a 16M-token context returns in under a second, without touching the KV cache', async function () {
    this.timeout(60000);
    const rss0 = residentBytes();
    const t0 = performance.now();
    const s = model.createSession({ contextSize: 16777216, allowContextBeyondTraining: true });
    const ms = performance.now() - t0;
    const grown = residentBytes() - rss0;
    // f16 KV: 2 * 5 layers * 16M positions * 32 * 2 bytes = 10.7 GB reserved.
    assert.ok(ms < 1000, `createSession took ${ms.toFixed(0)} ms`);
    assert.ok(grown < 256 * 2 ** 20, `resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MB`);
    // It works: evaluation writes the first positions only.
    const logits = await s.evaluate([1, 400, 300]);
    assert.ok(logits.every(Number.isFinite));
    assert.strictEqual(s.stats().contextUsed, 3);
    await s.dispose();
  });
});
