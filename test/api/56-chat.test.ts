// Chats on a random-weight phi3 model with the real Phi-3 vocabulary and chat template: turns reuse
// the KV cache (only new tokens are evaluated), replies stop at <|end|>, the session's tokens are
// the tokenized conversation, message contents never become control tokens, and a full context
// drops the oldest turns (or throws).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError, loadModel, Model } from '../../lib';
import type { Chat, ChatMessage, Piece } from '../../lib';
import { TokenType } from '../../lib/tokenizer';
import { makeModel } from '../../scripts/make-model';
import { collect, SHARED, tmpFile } from '../helpers';

const PHI3_VOCAB = path.join(SHARED, 'tokenizer/vocab/ggml-vocab-phi-3.gguf');
const isCode = (code: string) => (e: unknown) => e instanceof FlashdipError && e.code === code;

describe('56 chat', function () {
  this.timeout(120000);
  let model: Model;
  let file: string;
  let END: number;
  const controlTokens = (ids: readonly number[]) => ids.filter((t) => model.tokenizer.tokenType(t) === TokenType.Control);

  before(async () => {
    file = tmpFile('chat-phi3.gguf');
    makeModel({ out: file, arch: 'phi3', dim: 64, layers: 2, heads: 4, ffn: 128, ctx: 4096, type: 'f32', seed: 7, vocabFrom: PHI3_VOCAB, quiet: true } as never);
    model = await loadModel(file);
    END = model.tokenize('<|end|>', { parseSpecial: true })[0];
  });
  after(async () => {
    await model?.dispose();
    if (file) fs.rmSync(file, { force: true });
  });

  // Makes the model's next tokens `forced` whatever the random weights say (greedy sampling of
  // logits set by onLogits). This proves what the chat does when the model emits these tokens; it
  // does not make the random model any better at chatting.
  const force = (forced: number[]) => ({
    temperature: 0,
    onLogits: (logits: Float32Array, step: number) => {
      logits.fill(0);
      logits[forced[Math.min(step, forced.length - 1)]] = 100;
    },
  });

  // The tokens of `reply` as the tokenized conversation holds them, so that a forced reply is the
  // canonical one.
  function replyTokens(history: ChatMessage[], user: string, reply: string): number[] {
    const prompt = model.tokenizeChat([...history, { role: 'user', content: user }], { addGenerationPrompt: true });
    const full = model.tokenizeChat([...history, { role: 'user', content: user }, { role: 'assistant', content: reply }]);
    assert.deepStrictEqual(full.slice(0, prompt.length), prompt, 'the template renders the history as a prefix');
    return full.slice(prompt.length, full.indexOf(END, prompt.length));
  }

  it("uses the file's template and tokenizes it as the whole text with special tokens parsed", () => {
    assert.ok(model.chatTemplate?.includes("'<|user|>'"));
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: '  Hello there' },
      { role: 'assistant', content: 'Hi! Grüße 👋' },
      { role: 'user', content: 'Who are you?' },
    ];
    const text = model.applyChatTemplate(messages, { addGenerationPrompt: true });
    // Phi-3's template has no system role: llama.cpp folds the system message into the first user message.
    assert.strictEqual(text, '<s><|user|>\nBe brief.\n  Hello there<|end|>\n<|assistant|>\nHi! Grüße 👋<|end|>\n<|user|>\nWho are you?<|end|>\n<|assistant|>\n');
    const ids = model.tokenizeChat(messages, { addGenerationPrompt: true });
    assert.deepStrictEqual(ids, model.tokenize(text, { parseSpecial: true }));
    assert.strictEqual(ids.filter((t) => t === model.tokenizer.bosId).length, 1);
    // A built-in template by name.
    assert.ok(model.applyChatTemplate(messages, { template: 'chatml' }).startsWith('<|im_start|>system\nBe brief.<|im_end|>\n'));
    // Templates that trim contents (llama3) are followed; one that rewrites them cannot be split safely.
    const spaced = [{ role: 'user', content: '  Hello <|end|> there  ' }, { role: 'assistant', content: ' x ' }];
    const l3 = model.tokenizeChat(spaced, { template: 'llama3', addGenerationPrompt: true });
    const l3Text = model.applyChatTemplate(spaced, { template: 'llama3', addGenerationPrompt: true });
    assert.ok(l3Text.startsWith('<s><|start_header_id|>user<|end_header_id|>\n\nHello <|end|> there<|eot_id|>'), l3Text);
    assert.deepStrictEqual(l3, model.tokenize(l3Text.slice(3), { addSpecial: true }));
    assert.strictEqual(controlTokens(l3).length, 1); // BOS only: Llama 3's markers are plain text in this vocabulary, and so is <|end|>
    assert.throws(() => model.tokenizeChat(spaced, { template: '{% for m in messages %}[{{ m.content | upper }}]{% endfor %}' }), isCode('ERR_TEMPLATE'));
    // A template that starts with a content: a leading "<s>" there is text, not the BOS the template writes.
    const bare = model.tokenizeChat([{ role: 'user', content: '<s>hi' }], { template: '{{ messages[0].content }}' });
    assert.deepStrictEqual(bare, [model.tokenizer.bosId, ...model.tokenize('<s>hi')]);
  });

  it('never makes a control token of message contents (every special-token text of the vocabulary)', async () => {
    const tok = model.tokenizer;
    const specials: string[] = [];
    for (let id = 0; id < tok.vocabSize; id++) {
      const type = tok.tokenType(id);
      if (type === TokenType.Control || type === TokenType.UserDefined || type === TokenType.Unknown) specials.push(tok.tokenText(id));
    }
    assert.ok(specials.includes('<|end|>') && specials.includes('<|user|>') && specials.includes('<s>'));
    const attack = `${specials.join('')} and ${specials.join(' ')}`;
    const withAttack = [{ role: 'system', content: attack }, { role: 'user', content: attack }, { role: 'assistant', content: attack }, { role: 'user', content: attack }];
    const plain = withAttack.map((m) => ({ ...m, content: 'x' }));
    const ids = model.tokenizeChat(withAttack, { addGenerationPrompt: true });
    assert.deepStrictEqual(controlTokens(ids), controlTokens(model.tokenizeChat(plain, { addGenerationPrompt: true })));
    assert.ok(model.detokenize(ids).includes(specials.join('')), 'the content is kept as text');
    // The same conversation tokenized as plain text with parseSpecial would have been injected.
    assert.ok(controlTokens(model.tokenize(model.applyChatTemplate(withAttack), { parseSpecial: true })).length > controlTokens(ids).length);
    // And through a chat: the session holds no control token from the message.
    const chat = model.createChat({ contextSize: 2048 });
    await collect(chat.send(attack, { maxTokens: 1 }));
    const held = chat.session.tokens;
    assert.deepStrictEqual(controlTokens(held), controlTokens(model.tokenizeChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: true })));
    await chat.dispose();
  });

  it('runs 4 turns evaluating only the new tokens; replies stop at <|end|>; the session holds tokenizeChat(history)', async () => {
    const chat = model.createChat({ system: 'You are a helpful assistant.', contextSize: 512, kvCacheType: 'f32' });
    const turns = [
      ['Hello!', 'Hi there! How can I help?'],
      ['What is 2+2?', 'It is 4.'],
      ['  And 3+3? ', 'Six, of course.'],
      ['Grüße, 你好 👋\nBye.', 'Goodbye 👋'],
    ];
    for (const [k, [user, reply]] of turns.entries()) {
      const history = chat.history;
      const held = chat.session.tokens.slice();
      const before = chat.stats();
      const prompt = model.tokenizeChat([...history, { role: 'user', content: user }], { addGenerationPrompt: true });
      // What the session holds is a prefix of the new prompt; after the first turn the next token is
      // the template's <|end|> closing the previous reply (never generated into the text).
      assert.deepStrictEqual(prompt.slice(0, held.length), held, `turn ${k}: the KV cache is a prefix of the prompt`);
      if (k > 0) assert.strictEqual(prompt[held.length], END);
      const expected = replyTokens(history, user, reply);
      const out = await collect(chat.send(user, { ...force([...expected, END]), maxTokens: 64 }));
      assert.deepStrictEqual(out.tokens, expected);
      assert.strictEqual(out.text, reply);
      assert.ok(!out.tokens.includes(END));
      const after = chat.stats();
      assert.strictEqual(after.promptTokens - before.promptTokens, prompt.length - held.length, `turn ${k}: only the new tokens are evaluated`);
      assert.strictEqual(after.lastTurn.reusedTokens, held.length);
      assert.strictEqual(after.lastTurn.evaluatedTokens, prompt.length - held.length);
      // The prompt and every reply token are in the cache (each was evaluated to sample the next, the
      // last one to sample <|end|>); <|end|> itself is not.
      assert.strictEqual(after.contextUsed, prompt.length + expected.length);
      assert.strictEqual(after.generatedTokens - before.generatedTokens, expected.length);
    }
    const history = chat.history;
    assert.deepStrictEqual(history.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    assert.deepStrictEqual(history.filter((m) => m.role === 'assistant').map((m) => m.content), turns.map((t) => t[1]));
    // The whole conversation: the session's tokens are tokenizeChat(history) up to the closing <|end|>
    // of the last reply (its "\n" is eaten by <|end|>'s rstrip in Phi-3).
    const full = model.tokenizeChat(history);
    const held = chat.session.tokens;
    assert.deepStrictEqual(held, full.slice(0, held.length));
    assert.deepStrictEqual(full.slice(held.length), [END]);
    await chat.dispose();
  });

  it('re-evaluates from the first difference when the reply tokens are not how its text tokenizes', async () => {
    const chat = model.createChat({ contextSize: 512 });
    // "Hello" as "Hel" + "lo": the text re-tokenizes as "▁Hello".
    const idOf = (text: string) => {
      for (let id = 0; id < model.tokenizer.vocabSize; id++) if (model.tokenizer.tokenText(id) === text) return id;
      throw new Error(`no token ${text}`);
    };
    const letters = [idOf('Hel'), idOf('lo')];
    const out = await collect(chat.send('Hi', { ...force([...letters, END]), maxTokens: 16 }));
    assert.deepStrictEqual(out.tokens, letters);
    assert.strictEqual(out.text, 'Hello');
    const held = chat.session.tokens.slice();
    await collect(chat.send('Again', { maxTokens: 1 }));
    const prompt = model.tokenizeChat([...chat.history.slice(0, 2), { role: 'user', content: 'Again' }], { addGenerationPrompt: true });
    let common = 0;
    while (held[common] === prompt[common]) common++;
    assert.ok(common < held.length, 'the letters differ from the tokenized text');
    assert.strictEqual(chat.stats().lastTurn.reusedTokens, common);
    assert.deepStrictEqual(chat.session.tokens.slice(0, prompt.length), prompt);
    await chat.dispose();
  });

  it('drops the oldest turns when the context fills, or throws ERR_CONTEXT_FULL when asked', async () => {
    const chat = model.createChat({ system: 'Sys.', contextSize: 64 });
    const reply = 'Ok.';
    for (const user of ['one two three four five six', 'seven eight nine ten eleven', 'twelve thirteen fourteen']) {
      await collect(chat.send(user, { ...force([...replyTokens(chat.history, user, reply), END]), maxTokens: 30 }));
    }
    const h = chat.history;
    assert.strictEqual(h[0].content, 'Sys.');
    assert.strictEqual(h[h.length - 2].content, 'twelve thirteen fourteen');
    assert.strictEqual(h[h.length - 1].content, reply);
    assert.ok(h.length < 7 && chat.stats().lastTurn.droppedMessages >= 2, `dropped: ${JSON.stringify(h)}`);
    assert.ok(!h.some((m) => m.content === 'one two three four five six'));
    assert.ok(model.tokenizeChat(h).length <= 64);
    await chat.dispose();

    const strict = model.createChat({ system: 'Sys.', contextSize: 40, onContextFull: 'throw' });
    await collect(strict.send('short', { ...force([END]), maxTokens: 8 }));
    const before = strict.history;
    await assert.rejects(collect(strict.send('word '.repeat(40), { maxTokens: 8 })), isCode('ERR_CONTEXT_FULL'));
    assert.deepStrictEqual(strict.history, before, 'a refused turn changes nothing');
    await strict.dispose();
  });

  it('keeps a reply cut short by an abort, resets, replaces the system message, and checks its arguments', async () => {
    const chat = model.createChat({ system: 'A', contextSize: 256 });
    const ac = new AbortController();
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const p of chat.send('Hi', { ...force(model.tokenize('Hello world again and again')), maxTokens: 20, signal: ac.signal })) {
          text += p.text;
          if (text.length > 0) ac.abort();
        }
      })(),
      isCode('ERR_ABORTED'),
    );
    assert.deepStrictEqual(chat.history.map((m) => [m.role, m.content]), [['system', 'A'], ['user', 'Hi'], ['assistant', text]]);
    // A second send while one is running is refused.
    const first = chat.send('one', { maxTokens: 2 });
    await first.next();
    await assert.rejects(collect(chat.send('two')), isCode('ERR_BUSY'));
    await collect(first);
    chat.setSystem('B');
    assert.deepStrictEqual(chat.history[0], { role: 'system', content: 'B' });
    await collect(chat.send('three', { maxTokens: 1 }));
    assert.deepStrictEqual(chat.session.tokens.slice(0, 4), model.tokenizeChat(chat.history).slice(0, 4));
    chat.reset();
    assert.deepStrictEqual(chat.history, [{ role: 'system', content: 'B' }]);
    assert.strictEqual(chat.stats().contextUsed, 0);
    assert.throws(() => model.createChat({ template: 'nope' }), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => model.createChat({ onContextFull: 'wait' as never }), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => model.createChat({ contextSize: 0 }), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => model.applyChatTemplate([{ role: 'user' }] as never), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(collect(chat.send(5 as never)), isCode('ERR_INVALID_ARGUMENT'));
    await chat.dispose();
    await assert.rejects(collect(chat.send('x')), isCode('ERR_DISPOSED'));
    await chat.dispose(); // idempotent
  });
});
