// `flashdip chat` and `run --chat` through real child processes: lines from a pipe get a reply each
// and end of input exits 0; on a terminal (a pseudo-terminal from util-linux `script`) Ctrl-C stops
// the reply being written and the REPL answers the next line, Ctrl-C at the prompt or Ctrl-D exits 0;
// `run --chat` evaluates exactly model.tokenizeChat() of the prompt.
import * as assert from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel } from '../../lib';
import { makeModel } from '../../scripts/make-model';
import { SHARED, STORIES, tmpFile } from '../helpers';
import { BIN, cli, onTerminalArgs } from './cli';

const PHI3_VOCAB = path.join(SHARED, 'tokenizer/vocab/ggml-vocab-phi-3.gguf');

function chatPipe(input: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'chat', ...args], { input, encoding: 'utf8', timeout: 120000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `flashdip ARGS` on a pseudo-terminal: what is written goes to the terminal as typed keys. */
class Terminal {
  /** Those still running (ended after each test, also a failed one). */
  static readonly open = new Set<Terminal>();
  readonly child: ChildProcess;
  output = '';
  readonly done: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn('script', onTerminalArgs(args), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.output += s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.output += s));
    this.done = new Promise((resolve) => this.child.on('close', (status) => resolve(status)));
    Terminal.open.add(this);
    void this.done.then(() => Terminal.open.delete(this));
  }

  type(keys: string): void {
    this.child.stdin!.write(keys);
  }

  /** Waits until the output after `from` matches `re`; returns where the match ends. */
  async waitFor(re: RegExp, from = 0, timeoutMs = 60000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const m = re.exec(this.output.slice(from));
      if (m) return from + m.index + m[0].length;
      if (this.child.exitCode !== null) throw new Error(`the chat ended first:\n${this.output}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${re}:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe('65 cli: chat', function () {
  this.timeout(180000);
  const small = tmpFile('cli-chat-phi3.gguf');
  const big = tmpFile('cli-chat-phi3-big.gguf');

  before(() => {
    // As test/api/56: random weights, the real Phi-3 vocabulary and chat template.
    makeModel({ out: small, arch: 'phi3', dim: 64, layers: 2, heads: 4, ffn: 128, ctx: 4096, type: 'f32', seed: 7, vocabFrom: PHI3_VOCAB, quiet: true } as never);
    // ~80 MB: ~80 tokens/s on a quiet 2-core machine, and no end-of-generation token for hundreds of
    // greedy tokens, so a reply of --max-tokens 3000 lasts long enough to be interrupted.
    makeModel({ out: big, arch: 'phi3', dim: 256, layers: 4, heads: 4, ffn: 768, ctx: 4096, type: 'f32', seed: 3, vocabFrom: PHI3_VOCAB, quiet: true } as never);
  });
  afterEach(() => {
    for (const t of Terminal.open) t.child.kill('SIGKILL');
  });
  after(() => {
    fs.rmSync(small, { force: true });
    fs.rmSync(big, { force: true });
  });

  it('from a pipe: a reply per line, exit 0 at the end of the input', () => {
    const args = ['--model', small, '--max-tokens', '12', '--temperature', '0'];
    const json = chatPipe('Hello there\nWhat is a GGUF file?\n', ...args, '--json');
    assert.strictEqual(json.status, 0, json.stderr);
    const out = JSON.parse(json.stdout);
    assert.deepStrictEqual(out.messages.map((m: { role: string }) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.deepStrictEqual([out.messages[0].content, out.messages[2].content], ['Hello there', 'What is a GGUF file?']);
    assert.ok(out.messages[1].content.length > 0 && out.messages[3].content.length > 0, json.stdout);
    // The second turn evaluated only what was new: the end of the first reply and the new user message.
    assert.ok(out.stats.lastTurn.reusedTokens > 0, JSON.stringify(out.stats.lastTurn));

    // The text form streams the same replies (greedy), each ended by a newline, and no prompt.
    const text = chatPipe('Hello there\nWhat is a GGUF file?\n', ...args);
    assert.strictEqual(text.status, 0, text.stderr);
    assert.strictEqual(text.stdout, `${out.messages[1].content}\n${out.messages[3].content}\n`);
  });

  it('from a pipe: /system, /stats and /reset', () => {
    const r = chatPipe('/system You are brief.\nHello\n/stats\n/reset\n/stats\n', '--model', small, '--max-tokens', '4', '--temperature', '0');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /\(system message set\)\nturns 1, context \d+\/4096, .*\n\(conversation reset\)\nturns 0, /);
  });

  it('on a terminal: Ctrl-C stops the reply and the next line is answered; Ctrl-D exits 0', async () => {
    const t = new Terminal(['chat', '--model', big, '--max-tokens', '3000', '--temperature', '0']);
    let at = await t.waitFor(/\n> $/);
    t.type('Hello\n');
    // Mid-reply: the echoed line, then some of the reply.
    at = await t.waitFor(/Hello\r?\n[^]{40}/, at);
    t.type('\x03');
    at = await t.waitFor(/\(reply cancelled\)\r?\n> /, at);
    t.type('Tell me more\n');
    at = await t.waitFor(/Tell me more\r?\n[^]{40}/, at);
    t.type('\x03');
    at = await t.waitFor(/\(reply cancelled\)\r?\n> /, at);
    t.type('/stats\n');
    // Both turns are in the conversation, each reply cut short of its 3000 tokens.
    at = await t.waitFor(/turns 2, context (\d+)\/4096/, at);
    const used = Number(/turns 2, context (\d+)/.exec(t.output)![1]);
    assert.ok(used < 3000, t.output);
    await t.waitFor(/> $/, at);
    t.type('\x04');
    assert.strictEqual(await t.done, 0, t.output);
  });

  it('on a terminal: Ctrl-C at the prompt exits 0', async () => {
    const t = new Terminal(['chat', '--model', small, '--max-tokens', '4', '--temperature', '0']);
    let at = await t.waitFor(/\n> $/);
    t.type('Hello\n');
    await t.waitFor(/Hello\r?\n[^]*\n> $/, at);
    t.type('\x03');
    assert.strictEqual(await t.done, 0, t.output);
  });

  it('run --chat: the prompt tokens are model.tokenizeChat of the user message, with the generation prompt', async () => {
    const prompt = 'What is <|end|> a GGUF file?';
    const r = cli('run', '--model', small, '--chat', '--prompt', prompt, '--max-tokens', '4', '--temperature', '0', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const model = await loadModel(small);
    try {
      assert.deepStrictEqual(out.promptTokens, model.tokenizeChat([{ role: 'user', content: prompt }], { addGenerationPrompt: true }));
      const withSystem = JSON.parse(cli('run', '--model', small, '--chat', '--system', 'Be brief.', '--prompt', prompt, '--max-tokens', '1', '--json').stdout);
      assert.deepStrictEqual(withSystem.promptTokens, model.tokenizeChat(
        [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: prompt }], { addGenerationPrompt: true }));
    } finally {
      await model.dispose();
    }
  });

  it('run --chat --template on a model without a template; an unknown template names --template', async () => {
    const r = cli('run', '--model', STORIES, '--chat', '--template', 'chatml', '--prompt', 'Hi', '--max-tokens', '4', '--temperature', '0', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    const model = await loadModel(STORIES);
    try {
      assert.strictEqual(model.chatTemplate, undefined);
      assert.deepStrictEqual(JSON.parse(r.stdout).promptTokens,
        model.tokenizeChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true, template: 'chatml' }));
    } finally {
      await model.dispose();
    }
    const text = cli('run', '--model', STORIES, '--chat', '--template', 'chatml', '--prompt', 'Hi', '--max-tokens', '4', '--temperature', '0');
    assert.ok(text.stdout.startsWith('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'), text.stdout);

    for (const command of [['run', '--chat', '--prompt', 'Hi'], ['chat']]) {
      const bad = cli(...command, '--model', STORIES, '--template', 'no-such-template', '--json');
      assert.strictEqual(bad.status, 1, bad.stderr);
      const err = JSON.parse(bad.stdout).error;
      assert.strictEqual(err.code, 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /^--template: "no-such-template" is neither a built-in template \(chatml, /);
    }
    const noChat = cli('run', '--model', STORIES, '--template', 'chatml', '--prompt', 'Hi', '--json');
    assert.strictEqual(noChat.status, 1);
    assert.match(JSON.parse(noChat.stdout).error.message, /--template needs --chat/);
  });

  // (That each flag has a description, a default and an example is test 61's, for every command.)
  it('chat --help: the model, sparsity and generation flags of run, and --system and --template', () => {
    const r = cli('chat', '--help');
    assert.strictEqual(r.status, 0, r.stderr);
    const flags = (text: string) => new Set([...text.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]));
    const chat = flags(r.stdout);
    const run = flags(cli('run', '--help').stdout);
    for (const f of run) if (f !== '--prompt' && f !== '--logits' && f !== '--chat') assert.ok(chat.has(f), `chat has no ${f}`);
    for (const f of ['--system', '--template', '--max-tokens', '--temperature', '--seed', '--memory-budget']) assert.ok(chat.has(f), f);
  });
});
