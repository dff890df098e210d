// The embedded demo model (models/flashdip-demo.dip.gguf): loadModel() without a path loads it, it is the
// DIP layout of a trained llama model with its own vocabulary, and on book text it never trained on (the
// end of a Gutenberg book: the recipe holds out the last 5% of every file) its perplexity is far below a
// random model's. It runs sparse under a budget. Training is not part of the tests (scripts/finetune).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_MODEL, loadModel, perplexity, readGguf } from '../../lib';
import { SHARED } from '../helpers';

describe('50 the embedded demo model', function () {
  this.timeout(120000);

  it('loadModel() with no path loads it, in the DIP layout', async () => {
    const model = await loadModel();
    try {
      assert.strictEqual(model.info.path, DEFAULT_MODEL);
      assert.strictEqual(model.info.arch, 'llama');
      assert.strictEqual(model.info.vocabSize, 2048);
      const g = readGguf(DEFAULT_MODEL);
      assert.strictEqual(g.metadata['flashdip.layout'], 'dip-input-major');
      assert.strictEqual(g.metadata['general.name'], 'flashdip-demo');
      assert.ok(fs.statSync(DEFAULT_MODEL).size < 8 * 2 ** 20, 'a few MB');
    } finally {
      await model.dispose();
    }
  });

  it('is trained: held-out perplexity far below a uniform guess, and DIP at density 0.75 within 5% of it', async () => {
    const book = fs.readFileSync(path.join(SHARED, 'text/gutenberg/alice-in-wonderland.txt'), 'utf8');
    const heldOut = book.slice(book.length - 4000); // inside the last 5%, which training never saw
    const model = await loadModel();
    try {
      const dense = await perplexity(model, heldOut, { ctx: 128, maxTokens: 1024 });
      // A uniform guess over the 2048 tokens is perplexity 2048.
      assert.ok(dense.ppl < DEMO_MAX_PPL, `dense.ppl ${dense.ppl}`);
      const sparse = await perplexity(model, heldOut, { ctx: 128, maxTokens: 1024, sparsity: { method: 'dip', density: 0.75 } });
      // DIP at 0.75 costs this model about nothing (40.7 and 40.8 for the model shipped with this test).
      assert.ok(sparse.ppl < 1.05 * dense.ppl, `dip 0.75 perplexity ${sparse.ppl}, dense ${dense.ppl}`);
    } finally {
      await model.dispose();
    }
  });
});

// The shipped model scores 40.3 on the held-out text (README) and 40.7 on this excerpt; a model trained
// less (step 200 of the schedule scored 87 on the held-out text) or broken fails, a uniform guess is 2048.
const DEMO_MAX_PPL = 50;
