// What chats need from the tokenizer: the chat template of the file, llama.cpp's end-of-generation
// set (FIM pad / repo / file separator included), and encodeSegments, which parses special tokens
// only in the template's own text.
import * as assert from 'assert';
import * as path from 'path';
import { readGgufMetadata } from '../../lib/gguf';
import { Tokenizer, TokenType, tokenizerSpecFromMetadata } from '../../lib/tokenizer';
import { SHARED } from '../helpers';

const VOCAB = path.join(SHARED, 'tokenizer/vocab');
function idOf(tok: Tokenizer, text: string): number {
  const ids = tok.encode(text, { parseSpecial: true });
  assert.strictEqual(ids.length, 1, text);
  return ids[0];
}
const load = (name: string) => new Tokenizer(tokenizerSpecFromMetadata(readGgufMetadata(path.join(VOCAB, `ggml-vocab-${name}.gguf`))));

describe('34 tokenizer: chat support', () => {
  const phi3 = load('phi-3');

  it('reads tokenizer.chat_template', () => {
    assert.ok(phi3.chatTemplate?.startsWith("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}"));
    assert.strictEqual(load('gpt-2').chatTemplate, undefined);
  });

  it('ends generation at llama.cpp EOG tokens, FIM pad, repo and file separator included', () => {
    const end = idOf(phi3, '<|end|>');
    assert.ok(phi3.isEndOfGeneration(end) && phi3.isEndOfGeneration(phi3.eosId!));
    assert.ok(!phi3.isEndOfGeneration(idOf(phi3, '<|user|>')));
    const tokens = ['<unk>', '<s>', '</s>', 'a', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>', '<|fim_prefix|>', '<fim_pad>', 'x'];
    const tok = new Tokenizer({ model: 'llama', tokens, tokenTypes: tokens.map((t) => (t.startsWith('<') ? 3 : 1)) });
    assert.deepStrictEqual([...tok.eogIds].sort((a, b) => a - b), [2, 4, 5, 6]);
    assert.ok(!tok.isEndOfGeneration(7)); // FIM prefix does not end generation
    // Ids from the metadata win over the texts.
    const byId = new Tokenizer({ model: 'llama', tokens, tokenTypes: tokens.map((t) => (t.startsWith('<') ? 3 : 1)), fimPadId: 8, fimRepId: null });
    assert.deepStrictEqual([...byId.eogIds].sort((a, b) => a - b), [2, 6, 8]);
  });

  const segments = (parts: string[]) => parts.map((text, i) => ({ text, parseSpecial: i % 2 === 0 }));

  it('encodeSegments equals encode(concatenation, parseSpecial) when the contents hold no special text', () => {
    const chats = [
      // Phi-3: rstrip of its control tokens reaches into the next content's leading spaces.
      { tok: phi3, parts: ['<s><|system|>\n', 'Be  nice.', '<|end|>\n<|user|>\n', '  Hi there\n', '<|end|>\n<|assistant|>\n', ' Grüße, 你好 👋', '<|end|>\n', '', '<|user|>'] },
      { tok: load('deepseek-coder'), parts: ['<｜begin▁of▁sentence｜>### Instruction:\n', 'write  code', '\n### Response:\n', ' ok\n\n', '\n<|EOT|>\n'] },
      { tok: load('llama-spm'), parts: ['<s>[INST] ', 'Hello', ' [/INST]', ' Hi there ', '</s><s>[INST] ', 'Another', ' [/INST]'] },
    ];
    for (const { tok, parts } of chats) {
      const whole = tok.encode(parts.join(''), { parseSpecial: true });
      assert.deepStrictEqual(tok.encodeSegments(segments(parts)), whole, parts.join(''));
      assert.deepStrictEqual(tok.encodeSegments(segments(parts), { addSpecial: true }), tok.encode(parts.join(''), { parseSpecial: true, addSpecial: true }));
    }
  });

  it('never makes a control token of text in a segment without parseSpecial', () => {
    const specials: string[] = [];
    for (let id = 0; id < phi3.vocabSize; id++) if (phi3.tokenType(id) !== TokenType.Normal && phi3.tokenType(id) !== TokenType.Byte) specials.push(phi3.tokenText(id));
    const content = specials.join(' ');
    const ids = phi3.encodeSegments([{ text: '<|user|>\n', parseSpecial: true }, { text: content }, { text: '<|end|>', parseSpecial: true }]);
    assert.strictEqual(ids[0], idOf(phi3, '<|user|>'));
    assert.strictEqual(ids[ids.length - 1], idOf(phi3, '<|end|>'));
    const inner = ids.slice(1, -1);
    assert.ok(inner.every((t) => phi3.tokenType(t) !== TokenType.Control), 'a control token came from the content');
    assert.strictEqual(phi3.decode(inner), content);
    // The same text with parseSpecial does give control tokens: the test can tell the difference.
    assert.ok(phi3.encode(content, { parseSpecial: true }).some((t) => phi3.tokenType(t) === TokenType.Control));
  });
});
