// Tokenizer layer 4: the hand-written pre-tokenizer scanners against the regexes they stand for,
// and inputs that could make a regex or a merge loop blow up.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { preTokenize } from '../../lib/tokenizer/pretokenize';
import { WS_CLASS } from '../../lib/tokenizer/unicode';
import { readJson, STORIES, TOKENIZER_DATA, tokenizerFor, vocabs } from './vocab-data';

const WS = `[${WS_CLASS}]`;
const NWS = `[^${WS_CLASS}]`;
// llama.cpp's regexes for these two scanners (\s spelled as llama.cpp's whitespace set).
const GPT2_RE = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS_CLASS}\\p{L}\\p{N}]+|${WS}+(?!${NWS})|${WS}+`, 'gu');
const LLAMA3_RE = new RegExp(
  `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${WS_CLASS}\\p{L}\\p{N}]+[\\r\\n]*|${WS}*[\\r\\n]+|${WS}+(?!${NWS})|${WS}+`,
  'gu',
);

function regexSplit(text: string, re: RegExp): string[] {
  const out: string[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index! > last) out.push(text.slice(last, m.index));
    out.push(m[0]);
    last = m.index! + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function samples(): string[] {
  const texts = readJson<{ strings: string[] }>(path.join(TOKENIZER_DATA, 'oracle/index.json')).strings.slice();
  const inp = fs.readFileSync(path.join(TOKENIZER_DATA, 'vocab/ggml-vocab-gpt-2.gguf.inp'), 'utf8').split('\n__ggml_vocab_test__\n');
  texts.push(...inp);
  // Random strings over the characters the scanners treat specially.
  const pool = [..."aZé字1٣ '\r\n\t\u00a0\u2003\u0085\u200b!?.,sStTreREvVmMlLdD-_😀\u0301"];
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  for (let k = 0; k < 3000; k++) {
    let s = '';
    const n = 1 + Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) s += pool[Math.floor(rand() * pool.length)];
    texts.push(s);
  }
  return texts;
}

describe('tokenizer pre-tokenizers', function () {
  it("splits like GPT-2's regex (llama.cpp's custom scanner)", function () {
    for (const t of samples()) assert.deepEqual(preTokenize(t, 'gpt2'), regexSplit(t, GPT2_RE), JSON.stringify(t));
  });

  it("splits like Llama 3's regex (llama.cpp's custom scanner)", function () {
    for (const t of samples()) assert.deepEqual(preTokenize(t, 'llama3'), regexSplit(t, LLAMA3_RE), JSON.stringify(t));
  });

  it('keeps every character, in order, for every pre-tokenizer family', function () {
    const families = ['default', 'llama3', 'deepseek-llm', 'deepseek3-llm', 'deepseek-coder', 'falcon', 'starcoder', 'gpt2', 'qwen2', 'poro', 'viking', 'tekken', 'chameleon', 'gpt4o', 'bailingmoe', 'seed-coder', 'superbpe'];
    for (const f of families) for (const t of samples().slice(0, 200)) assert.equal(preTokenize(t, f).join(''), t, `${f} ${JSON.stringify(t)}`);
  });

  it('never hangs on long runs (spaces, letters, digits, newlines, quotes, emoji, special-token text)', function () {
    this.timeout(120000);
    const n = 50000;
    const inputs = [' '.repeat(n) + 'x', 'a'.repeat(n), '7'.repeat(n), '\n'.repeat(n), "'".repeat(n), '😀'.repeat(n / 4), ' \t'.repeat(n / 2) + 'x', '\u00a0'.repeat(n) + 'x', '<s></s>'.repeat(n / 7)];
    for (const v of [...vocabs().map((x) => x.gguf), STORIES]) {
      const tok = tokenizerFor(v);
      for (const t of inputs) {
        const ids = tok.encode(t, { parseSpecial: true });
        const d = tok.createStreamDecoder({ prefix: [] });
        let text = '';
        for (const id of ids) text += d.push(id);
        text += d.flush();
        assert.equal(text, tok.decode(ids), `${path.basename(v)} ${JSON.stringify(t.slice(0, 8))}`);
      }
    }
  });
});
