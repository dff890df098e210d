// The CLI contract: `flashdip run --json` reproduces llama.cpp's greedy tokens on every reference,
// `inspect` describes a file, and every failure prints a message and exits 1 (never a signal).
import * as assert from 'assert';
import { promptReferences, STORIES } from '../helpers';
import { BIN, cli } from './cli';

describe('60 cli', () => {
  for (const ref of promptReferences()) {
    it(`run --json "${ref.id}" gives llama.cpp's prompt tokens and 64 greedy tokens`, () => {
      const r = cli('run', '--model', STORIES, '--prompt', ref.prompt_text, '--max-tokens', '64', '--temperature', '0', '--json');
      assert.strictEqual(r.status, 0, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout);
      assert.deepStrictEqual(out.promptTokens, ref.prompt_tokens);
      assert.deepStrictEqual(out.tokens, ref.generated_tokens);
      assert.strictEqual(out.text, ref.generated_text);
      assert.ok(out.stats.decodeTokensPerSecond > 0);
    });
  }

  it('run --logits N includes the first N logit vectors', () => {
    const ref = promptReferences()[0];
    const r = cli('run', '--model', STORIES, '--prompt', ref.prompt_text, '--max-tokens', '4', '--temperature', '0', '--kv-type', 'f32', '--logits', '4', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.logits.length, 4);
    for (let k = 0; k < 4; k++) {
      const worst = Math.max(...out.logits[k].map((v: number, i: number) => Math.abs(v - ref.first_logits[k][i])));
      assert.ok(worst <= 1e-3, `step ${k}: ${worst}`);
    }
  });

  it('run prints the prompt then the continuation, and a one-line summary on stderr', () => {
    const r = cli('run', '--model', STORIES, '--prompt', 'Once upon a time', '--max-tokens', '8', '--temperature', '0');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.ok(r.stdout.startsWith('Once upon a time, there was a little girl'), r.stdout);
    assert.match(r.stderr, /^5 prompt tokens at [\d.]+ tok\/s, 8 generated at [\d.]+ tok\/s\n$/);
    const sparse = cli('run', '--model', STORIES, '--prompt', 'Once upon a time', '--max-tokens', '8', '--temperature', '0',
      '--method', 'dip', '--density', '0.5');
    assert.strictEqual(sparse.status, 0, sparse.stderr);
    // The standard-layout warning once, as a plain line; then the summary with hit rate and density.
    const lines = sparse.stderr.trimEnd().split('\n');
    assert.strictEqual(lines.length, 2, sparse.stderr);
    assert.match(lines[0], /^flashdip: warning: .* is in the standard GGUF layout/);
    assert.match(lines[1], /generated at [\d.]+ tok\/s, dip hit rate 100\.0%, density 0\.\d+$/);
  });

  it('inspect shows metadata, tensors and the static/MLP split', () => {
    const r = cli('inspect', STORIES, '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.tensors.length, 48);
    assert.strictEqual(out.metadata['general.architecture'], 'llama');
    assert.strictEqual(out.bytes.mlp, 5 * 3 * 64 * 172 * 4);
    const text = cli('inspect', STORIES);
    assert.strictEqual(text.status, 0);
    assert.match(text.stdout, /blk\.0\.ffn_down\.weight/);
  });

  const failures: [string, string[], string][] = [
    ['missing model file', ['run', '--model', '/nonexistent.gguf', '--prompt', 'x'], 'ERR_IO'],
    ['negative --max-tokens', ['run', '--model', STORIES, '--prompt', 'x', '--max-tokens', '-1'], 'ERR_INVALID_ARGUMENT'],
    ['non-numeric --temperature', ['run', '--model', STORIES, '--prompt', 'x', '--temperature', 'hot'], 'ERR_INVALID_ARGUMENT'],
    ['unknown flag', ['run', '--model', STORIES, '--prompt', 'x', '--fast'], 'ERR_INVALID_ARGUMENT'],
    ['unknown command', ['frobnicate'], 'ERR_INVALID_ARGUMENT'],
    ['missing --prompt', ['run', '--model', STORIES], 'ERR_INVALID_ARGUMENT'],
    ['--read-block without dip-ca', ['run', '--model', STORIES, '--prompt', 'x', '--method', 'dip', '--read-block', '64KiB'], 'ERR_INVALID_ARGUMENT'],
    ['not a GGUF file', ['inspect', BIN], 'ERR_GGUF_BAD_MAGIC'],
  ];
  for (const [what, args, code] of failures) {
    it(`${what}: exit 1 with ${code}`, () => {
      const r = cli(...args, '--json');
      assert.strictEqual(r.signal, null);
      assert.strictEqual(r.status, 1, r.stdout + r.stderr);
      assert.strictEqual(JSON.parse(r.stdout).error.code, code);
      const plain = cli(...args);
      assert.strictEqual(plain.status, 1);
      assert.match(plain.stderr, new RegExp(code));
    });
  }
});
