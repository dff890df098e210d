// Ctrl-C through a real child process: the first SIGINT stops the work and prints what was done
// (exit 130), a second one exits at once. A random-weight model big enough that the work lasts many
// seconds, so the signal always lands mid-way.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { makeModel } from '../../scripts/make-model';
import { SHARED, STORIES, tmpFile } from '../helpers';
import { Running } from './cli';

const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');
const STARTED = /Ctrl-C to stop/;

describe('66 cli: Ctrl-C', function () {
  this.timeout(180000);
  const model = tmpFile('interrupt.gguf');

  before(() => {
    // ~57 MB of f32 weights: ~50 tokens/s decode and ~700 tokens/s scoring on a quiet 2-core machine.
    makeModel({ out: model, dim: 512, layers: 4, heads: 8, ffn: 1536, vocab: 512, ctx: 2048, type: 'f32', seed: 3, vocabFrom: STORIES });
  });
  after(() => fs.rmSync(model, { force: true }));

  it('run: the prompt and the text so far, a partial summary, exit 130', async () => {
    const p = new Running(['run', '--model', model, '--prompt', 'Once upon a time', '--max-tokens', '2000', '--temperature', '0']);
    await p.waitFor((r) => r.stdout.length > 'Once upon a time'.length + 5);
    const at = p.interrupt();
    const r = await p.done;
    assert.strictEqual(r.status, 130, r.stderr);
    assert.ok(r.exitedAt - at < 5000, `took ${r.exitedAt - at} ms to stop`);
    assert.ok(r.stdout.startsWith('Once upon a time') && r.stdout.endsWith('\n'), r.stdout);
    assert.match(r.stderr, /partial \(interrupted\): 5 prompt tokens .* (\d+) generated/);
    const generated = Number(/(\d+) generated/.exec(r.stderr)![1]);
    assert.ok(generated > 0 && generated < 2000, r.stderr);
  });

  it('run --json: the result so far with "partial": true', async () => {
    const p = new Running(['run', '--model', model, '--prompt', 'Once upon a time', '--max-tokens', '2000', '--temperature', '0', '--json']);
    await p.waitFor((r) => STARTED.test(r.stderr));
    await new Promise((r) => setTimeout(r, 500));
    p.interrupt();
    const r = await p.done;
    assert.strictEqual(r.status, 130, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.partial, true);
    assert.ok(out.tokens.length < 2000);
    assert.strictEqual(out.stats.generatedTokens, out.tokens.length);
  });

  it('ppl --json: the score over the windows done, "partial": true; text output says partial', async () => {
    const p = new Running(['ppl', '--model', model, '--text', TEXT, '--ctx', '128', '--json']);
    await p.waitFor((r) => STARTED.test(r.stderr));
    await new Promise((r) => setTimeout(r, 1500));
    const at = p.interrupt();
    const r = await p.done;
    assert.strictEqual(r.status, 130, r.stderr);
    assert.ok(r.exitedAt - at < 5000, `took ${r.exitedAt - at} ms to stop`);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.partial, true);
    assert.ok(out.chunks >= 1 && out.tokens === out.chunks * 127, `${out.chunks} windows, ${out.tokens} tokens`);
    assert.ok(Number.isFinite(out.ppl) && out.ppl > 1);

    const t = new Running(['ppl', '--model', model, '--text', TEXT, '--ctx', '128']);
    await t.waitFor((x) => STARTED.test(x.stderr));
    await new Promise((x) => setTimeout(x, 1500));
    t.interrupt();
    const text = await t.done;
    assert.strictEqual(text.status, 130, text.stderr);
    assert.match(text.stdout, /^partial \(interrupted\): perplexity [\d.]+ over \d+ tokens/);
  });

  it('sweep: writes the finished rows (CSV, SVG) and says it stopped', async () => {
    const out = tmpFile('interrupted-sweep');
    const p = new Running(['sweep', '--model', model, '--text', TEXT, '--out', out, '--methods', 'dense,dip,glu', '--densities', '0.5,0.75',
      '--ctx', '128', '--max-tokens', '1500']);
    await p.waitFor((r) => /^dense density 1 budget none: ppl/m.test(r.stderr));
    p.interrupt();
    const r = await p.done;
    assert.strictEqual(r.status, 130, r.stderr);
    assert.match(r.stdout, /stopped \(interrupted\)/);
    const rows = fs.readFileSync(`${out}.csv`, 'utf8').trim().split('\n').slice(1);
    assert.ok(rows.length >= 1 && rows.length < 5, rows.join('\n'));
    assert.match(rows[0], /^dense,1,/);
    assert.match(fs.readFileSync(`${out}.svg`, 'utf8'), /^<svg /);
  });

  it('a second Ctrl-C exits at once', async () => {
    // Windows of 2048 tokens take seconds each: the first SIGINT waits for the window to end, the
    // second does not.
    const p = new Running(['ppl', '--model', model, '--text', TEXT, '--ctx', '2048', '--json']);
    await p.waitFor((r) => STARTED.test(r.stderr));
    await new Promise((r) => setTimeout(r, 300));
    p.interrupt();
    await p.waitFor((r) => /interrupted; stopping/.test(r.stderr));
    const at = p.interrupt();
    const r = await p.done;
    // Ended by SIGINT's default action, as Unix programs are (a shell reports exit status 130).
    assert.strictEqual(r.signal, 'SIGINT', `status ${r.status}: ${r.stderr}`);
    assert.ok(r.exitedAt - at < 1000, `took ${r.exitedAt - at} ms to exit`);
    assert.strictEqual(r.stdout, '');
  });
});
