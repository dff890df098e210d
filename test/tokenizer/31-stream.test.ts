// Tokenizer layer 2: the streaming detokenizer. Pushing ids one at a time must give the same text as
// decoding them at once, never emit half a UTF-8 character, and follow the reference's rules for
// the SentencePiece leading space (generated_text vs full_text).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '../../lib/tokenizer';
import { REFERENCE, readJson, STORIES, tokenizerFor, vocabs } from './vocab-data';

function streamAll(tok: Tokenizer, ids: readonly number[], options?: Parameters<Tokenizer['createStreamDecoder']>[0]): { text: string; chunks: string[] } {
  const d = tok.createStreamDecoder(options);
  const chunks = ids.map((id) => d.push(id));
  chunks.push(d.flush());
  return { text: chunks.join(''), chunks };
}

// A lone surrogate would mean a character was split between two chunks.
function assertWholeCharacters(chunks: string[]): void {
  for (const c of chunks) assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(c), `split surrogate in ${JSON.stringify(c)}`);
  for (const c of chunks) assert.ok(!c.includes('\uFFFD'), `replacement character in ${JSON.stringify(c)}`);
}

describe('tokenizer streaming decode', function () {
  for (const v of vocabs()) {
    it(`${v.name}: streaming every oracle case gives llama_detokenize's text, in whole characters`, function () {
      const tok = tokenizerFor(v.gguf);
      for (const c of v.oracle.cases) {
        const { text, chunks } = streamAll(tok, c.ids, { prefix: [] });
        assert.equal(text, c.detok, JSON.stringify(c.text));
        assertWholeCharacters(chunks);
      }
    });
  }

  describe('stories260K (SentencePiece with byte fallback)', function () {
    let tok: Tokenizer;
    before(function () {
      tok = tokenizerFor(STORIES);
    });

    it('holds emoji bytes back until the character is complete', function () {
      const ids = tok.encode('😀😃');
      assert.deepEqual(ids, [410, 243, 162, 155, 131, 243, 162, 155, 134]); // ▁ then <0xF0><0x9F><0x98><0x80> ...
      const d = tok.createStreamDecoder();
      assert.deepEqual(ids.map((id) => d.push(id)), [' ', '', '', '', '😀', '', '', '', '😃']);
      assert.equal(d.flush(), '');
    });

    it('holds CJK bytes back until the character is complete', function () {
      const ids = tok.encode('你好');
      const d = tok.createStreamDecoder({ prefix: [] });
      const out = ids.map((id) => d.push(id));
      assert.deepEqual(out.filter((s) => s !== ''), ['你', '好']);
      assert.equal(out.join('') + d.flush(), '你好');
    });

    it('flushes an unfinished character as U+FFFD', function () {
      const [space, b1, b2] = tok.encode('你'); // ▁ <0xE4> <0xBD> <0xA0>
      const d = tok.createStreamDecoder({ prefix: [] });
      assert.equal(d.push(space) + d.push(b1) + d.push(b2), '');
      assert.equal(d.flush(), '\uFFFD');
    });

    it('gives generated_text after the prompt, and decode(prompt + generated) gives full_text', function () {
      const files = fs.readdirSync(REFERENCE).filter((f) => f.startsWith('prompt_'));
      assert.ok(files.length >= 8);
      for (const f of files) {
        const ref = readJson<{ prompt_text: string; prompt_tokens: number[]; generated_tokens: number[]; generated_text: string; full_text: string }>(path.join(REFERENCE, f));
        assert.deepEqual(tok.encode(ref.prompt_text, { addSpecial: true }), ref.prompt_tokens, f);
        const { text, chunks } = streamAll(tok, ref.generated_tokens, { prefix: ref.prompt_tokens });
        assert.equal(text, ref.generated_text, f);
        assertWholeCharacters(chunks);
        assert.equal(tok.decode([...ref.prompt_tokens, ...ref.generated_tokens]), ref.full_text, f);
      }
    });

    it('keeps every leading space without a prefix (a continuation), strips the first with one', function () {
      const ids = tok.encode('Once upon a time');
      assert.equal(streamAll(tok, ids).text, ' Once upon a time');
      assert.equal(streamAll(tok, ids, { prefix: [] }).text, 'Once upon a time');
      assert.equal(streamAll(tok, ids, { prefix: [tok.bosId!] }).text, 'Once upon a time');
      assert.equal(streamAll(tok, ids.slice(2), { prefix: [tok.bosId!, ...ids.slice(0, 2)] }).text, tok.decode(ids).slice(tok.decode(ids.slice(0, 2)).length));
    });

    it('renders special tokens only with unparseSpecial, and drops BOS/EOS with removeSpecial', function () {
      const ids = [tok.bosId!, ...tok.encode('Hi'), tok.eosId!];
      assert.equal(streamAll(tok, ids, { prefix: [] }).text, 'Hi');
      assert.equal(streamAll(tok, ids, { prefix: [], unparseSpecial: true }).text, '<s> Hi</s>');
      assert.equal(tok.decode(ids, { unparseSpecial: true }), '<s> Hi</s>');
      // llama.cpp: a removed BOS leaves the next token's space in place; stories260K adds no EOS.
      assert.equal(tok.decode(ids, { unparseSpecial: true, removeSpecial: true }), ' Hi</s>');
      assert.equal(streamAll(tok, ids, { prefix: [], unparseSpecial: true, removeSpecial: true }).text, 'Hi</s>');
    });
  });

  describe('byte-level BPE with clean_spaces (gpt-2)', function () {
    it('tidies spaces like llama_detokenize even when the pattern spans tokens', function () {
      const tok = tokenizerFor(vocabs().find((v) => v.name === 'ggml-vocab-gpt-2')!.gguf);
      assert.equal(tok.cleanSpaces, true);
      const texts = [
        "Hello , world . It ' s fine , isn 't it ? Yes ! we 're here , they 've gone ' quote ' and I 'm ok",
        " ' ' ,, . ?! 's 'm 're 've 'll 'd 't",
        'no spaces at all',
        '  ',
      ];
      for (const t of texts) {
        const ids = tok.encode(t);
        const whole = tok.decode(ids);
        if (t === texts[0]) assert.equal(whole, "Hello, world. It's fine, isn 't it? Yes! we're here, they've gone'quote'and I'm ok");
        const { text, chunks } = streamAll(tok, ids, { prefix: [] });
        assert.equal(text, whole, t);
        assertWholeCharacters(chunks);
        // One byte-level token at a time, too: split ids further by re-encoding single characters.
        const byChar = [...t].flatMap((ch) => tok.encode(ch));
        assert.equal(streamAll(tok, byChar, { prefix: [] }).text, tok.decode(byChar), t);
      }
    });

    it('holds a multi-token emoji back until complete', function () {
      const tok = tokenizerFor(vocabs().find((v) => v.name === 'ggml-vocab-gpt-2')!.gguf);
      const ids = tok.encode('🐶');
      assert.ok(ids.length > 1);
      const d = tok.createStreamDecoder();
      const out = ids.map((id) => d.push(id));
      assert.deepEqual(out.slice(0, -1).filter((s) => s !== ''), []);
      assert.equal(out.join('') + d.flush(), '🐶');
    });
  });
});
