// Tokenizer layer 3: the spec it is built from, bad input, and long texts.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError } from '../../lib/errors';
import { readGgufMetadata } from '../../lib/gguf';
import { Tokenizer, TokenizerSpec, tokenizerSpecFromMetadata, TokenType } from '../../lib/tokenizer';
import { REFERENCE, readJson, SHARED, STORIES, tokenizerFor, vocabs } from './vocab-data';

function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FlashdipError, `not a FlashdipError: ${String(e)}`);
    assert.equal(e.code, code);
    if (message) assert.match(e.message, message);
    return true;
  });
}

// A tiny SentencePiece vocabulary written by hand: bytes, a few pieces with scores.
function tinySpm(extra: Partial<TokenizerSpec> = {}): Tokenizer {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
    scores.push(0);
  }
  for (const [t, s] of [['▁', -1], ['a', -2], ['b', -3], ['▁a', -4], ['ab', -5], ['▁ab', -6], ['<tool>', 0]] as const) {
    tokens.push(t);
    types.push(t === '<tool>' ? 4 : 1);
    scores.push(s);
  }
  return new Tokenizer({ model: 'llama', tokens, scores, tokenTypes: types, ...extra });
}

describe('tokenizer api', function () {
  it('maps GGUF metadata to a spec with llama.cpp defaults for absent keys', function () {
    const meta = readGgufMetadata(STORIES);
    const spec = tokenizerSpecFromMetadata(meta);
    assert.equal(spec.model, 'llama');
    assert.equal(spec.tokens.length, 512);
    assert.equal(spec.addBos, undefined); // absent in stories260K ...
    const tok = new Tokenizer(spec);
    assert.equal(tok.addBos, true); // ... and llama.cpp's SentencePiece default is to add BOS
    assert.equal(tok.addSpacePrefix, true);
    assert.equal(tok.separatorId, null); // 4294967295 in the file: out of range, so none
    assert.equal(tok.paddingId, null);
    assert.equal(tok.tokenType(1), TokenType.Control);
    assert.equal(tok.tokenType(3), TokenType.Byte);
    assert.equal(tok.tokenText(410), '▁');
    assert.deepEqual(Array.from(tok.tokenPiece(410)), [0x20]);
    assert.deepEqual(Array.from(tok.tokenPiece(410, { lstrip: true })), []);
    assert.deepEqual(Array.from(tok.tokenPiece(1)), Array.from(Buffer.from('<s>')));
    assert.deepEqual(Array.from(tok.tokenPiece(1, { special: false })), []);
    assert.deepEqual(Array.from(tok.tokenPiece(3 + 0xe4)), [0xe4]);
  });

  it('builds from a hand-written spec: merges by score, byte fallback, user-defined tokens', function () {
    const tok = tinySpm();
    const id = (t: string) => [...Array(tok.vocabSize).keys()].find((i) => tok.tokenText(i) === t)!;
    assert.deepEqual(tok.encode('ab'), [id('▁ab')]);
    assert.deepEqual(tok.encode('ba'), [id('▁'), id('b'), id('a')]);
    assert.deepEqual(tok.encode('é'), [id('▁'), 3 + 0xc3, 3 + 0xa9]);
    assert.deepEqual(tok.encode('a<tool>b'), [id('▁a'), id('<tool>'), id('▁'), id('b')]); // user-defined: always split out
    assert.deepEqual(tok.encode('<s>'), [id('▁'), 3 + 0x3c, 3 + 0x73, 3 + 0x3e]);
    assert.deepEqual(tok.encode('<s>', { parseSpecial: true }), [1]);
    assert.deepEqual(tok.encode('a', { addSpecial: true }), [1, id('▁a')]);
    assert.equal(tok.decode(tok.encode('a é b')), 'a é b');
    const noPrefix = tinySpm({ addSpacePrefix: false, addBos: false });
    assert.deepEqual(noPrefix.encode('ab', { addSpecial: true }), [id('ab')]);
  });

  it("falls back to the 'default' pre-tokenizer for names it does not know, as llama.cpp does", function () {
    const tok = new Tokenizer({ model: 'gpt2', pre: 'no-such-pre', tokens: ['a', 'b', 'ab'], merges: ['a b'] });
    assert.equal(tok.pre, 'default');
    assert.match(tok.warnings.join('\n'), /no-such-pre/);
    assert.deepEqual(tok.encode('ab'), [2]);
    assert.deepEqual(new Tokenizer({ model: 'gpt2', pre: 'llama-bpe', tokens: ['a'], merges: [] }).warnings, []);
  });

  it('splits with pre-tokenizers that cut at empty matches (superbpe digit groups)', function () {
    const tokens = ['1', '2', '3', '4', '5', '6', '7', '12', '123', '234', '567', '1234567'];
    const tok = new Tokenizer({ model: 'gpt2', pre: 'superbpe', tokens, merges: ['1 2', '12 3', '2 3', '23 4', '5 6', '56 7'] });
    // "1234567" -> "1" "234" "567": groups of three from the right.
    assert.deepEqual(tok.encode('1234567').map((i) => tokens[i]), ['1', '234', '567']);
  });

  it('rejects bad input with clear FlashdipErrors', function () {
    const tok = tokenizerFor(STORIES);
    throwsCode(() => tok.encode(42 as unknown as string), 'ERR_INVALID_ARGUMENT', /text: must be a string/);
    throwsCode(() => tok.encode(null as unknown as string), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.encode('x', { addSpecial: 1 } as unknown as object), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.encode('x', { parse_special: true } as unknown as object), 'ERR_INVALID_ARGUMENT', /unknown option/);
    throwsCode(() => tok.decode([512]), 'ERR_INVALID_ARGUMENT', /512 is not a token id/);
    throwsCode(() => tok.decode([-1]), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.decode([1.5]), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.decode([NaN]), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.decode(['1'] as unknown as number[]), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.decode(7 as unknown as number[]), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.tokenPiece(100000), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => tok.createStreamDecoder({ prefix: [9999] }), 'ERR_INVALID_ARGUMENT');
    const d = tok.createStreamDecoder();
    throwsCode(() => d.push(512), 'ERR_INVALID_ARGUMENT');
    assert.equal(d.push(410), ' '); // still usable after a rejected id
  });

  it('rejects vocabularies it cannot run, naming what is wrong', function () {
    throwsCode(() => new Tokenizer({ model: 't5', tokens: ['a'] }), 'ERR_UNSUPPORTED_ARCH', /t5/);
    throwsCode(() => new Tokenizer({ model: 'gpt2', pre: 'kimi-k2', tokens: ['a'], merges: [] }), 'ERR_UNSUPPORTED_ARCH', /kimi-k2/);
    throwsCode(() => new Tokenizer({ model: 'gpt2', tokens: ['a'] }), 'ERR_MODEL_INVALID', /merges/);
    throwsCode(() => new Tokenizer({ model: 'llama', tokens: [] }), 'ERR_MODEL_INVALID');
    throwsCode(() => new Tokenizer({ model: 'llama', tokens: ['a', 'b'], scores: [0] }), 'ERR_MODEL_INVALID');
    throwsCode(() => tokenizerSpecFromMetadata({}), 'ERR_MODEL_INVALID', /tokenizer.ggml.model/);
    throwsCode(() => tokenizerSpecFromMetadata({ 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': [1, 2] }), 'ERR_MODEL_INVALID');
  });

  it('tokenizes the perplexity texts exactly as the references (no BOS)', function () {
    const tok = tokenizerFor(STORIES);
    for (const f of ['perplexity_tinystories.json', 'perplexity_alice.json']) {
      const ref = readJson<{ text: string; tokens: number[] }>(path.join(REFERENCE, f));
      assert.deepEqual(tok.encode(ref.text), ref.tokens, f);
    }
  });

  it('round-trips a long text through every vocabulary', function () {
    const text = fs.readFileSync(path.join(SHARED, 'text/tinystories-sample.txt'), 'utf8').slice(0, 50000);
    for (const v of vocabs()) {
      const tok = tokenizerFor(v.gguf);
      const ids = tok.encode(text);
      const back = tok.decode(ids);
      // BPE vocabularies with clean_spaces may tidy " ," and the like; SentencePiece gives it all back.
      if (!tok.cleanSpaces) assert.equal(back, text, v.name);
      else assert.equal(back.replace(/ (?=[,.!?'])/g, ''), text.replace(/ (?=[,.!?'])/g, ''), v.name);
    }
  });
});
