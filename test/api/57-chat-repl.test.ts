// The chat loop driven through streams, as `flashdip chat` will drive it: lines in, replies out,
// commands, cancel (Ctrl-C) keeps the loop alive, end of input ends it.
import * as assert from 'assert';
import { PassThrough } from 'stream';
import { loadModel, Model } from '../../lib';
import { chatRepl } from '../../lib/chat-repl';
import { STORIES } from '../helpers';

function sink(stream: PassThrough): { text: () => string; onData: (f: (chunk: string) => void) => void } {
  let text = '';
  const listeners: ((chunk: string) => void)[] = [];
  stream.on('data', (b: Buffer) => {
    text += b.toString('utf8');
    for (const f of listeners) f(b.toString('utf8'));
  });
  return { text: () => text, onData: (f) => listeners.push(f) };
}

describe('57 chat repl', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(async () => {
    await model.dispose();
  });

  it('answers each piped line in turn, runs the commands, and ends with the input', async () => {
    const chat = model.createChat({ contextSize: 256, system: 'Tell stories.' });
    const [input, output, err] = [new PassThrough(), new PassThrough(), new PassThrough()];
    const out = sink(output);
    const errs = sink(err);
    const repl = chatRepl({ chat, input, output, err, generate: { maxTokens: 6, temperature: 0 } });
    input.end('Once upon a time\n/stats\n\n/system Be short.\n/nope\n/reset\nThe cat\n');
    await repl.done;
    const lines = out.text().split('\n');
    assert.strictEqual(lines.length, 3, JSON.stringify(out.text())); // two replies, each ended by a newline
    assert.ok(lines[0].length > 0 && lines[1].length > 0 && lines[2] === '');
    assert.match(errs.text(), /turns 1, context \d+\/256, last turn: \d+ tokens evaluated, 0 reused/);
    assert.match(errs.text(), /\(system message set\)/);
    assert.match(errs.text(), /unknown command \/nope; commands: /);
    assert.match(errs.text(), /\(conversation reset\)/);
    // After /reset only the last turn is left, under the new system message.
    assert.deepStrictEqual(chat.history.map((m) => m.role + ':' + (m.role === 'assistant' ? '' : m.content)), [
      'system:Be short.', 'user:The cat', 'assistant:',
    ]);
    assert.strictEqual(chat.history[2].content, lines[1]);
    assert.strictEqual(repl.cancel(), false, 'nothing to cancel once done');
    await chat.dispose();
  });

  it('cancel() aborts the reply being written and the loop goes on; /exit ends it; a terminal gets a prompt', async () => {
    const chat = model.createChat({ contextSize: 256 });
    const [input, output, err] = [new PassThrough(), new PassThrough(), new PassThrough()];
    const out = sink(output);
    const errs = sink(err);
    const repl = chatRepl({ chat, input, output, err, isTTY: true, generate: { maxTokens: 40, temperature: 0 } });
    let cancelled: boolean | undefined;
    out.onData((chunk) => {
      if (cancelled === undefined && chunk !== '> ') cancelled = repl.cancel();
    });
    input.write('Once upon a time\n');
    input.write('The dog\n');
    input.write('/exit\n');
    input.write('never read\n');
    await repl.done;
    assert.strictEqual(cancelled, true);
    assert.strictEqual(errs.text().match(/\(reply cancelled\)/g)?.length, 1);
    const h = chat.history;
    assert.deepStrictEqual(h.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.ok(h[1].content.length > 0, 'the cancelled reply keeps what was written');
    assert.ok(!h.some((m) => m.content === 'never read'));
    assert.ok(out.text().startsWith('> ') && out.text().endsWith('> '), JSON.stringify(out.text()));
    await chat.dispose();
  });
});
