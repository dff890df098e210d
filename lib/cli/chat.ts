// `flashdip chat`: chatRepl (lib/chat-repl.ts) on stdin and stdout. Ctrl-C is the command's own (it
// is not `interruptible`, so main's handler stays out): as in llama.cpp's interactive mode, Ctrl-C
// while a reply is being written stops that reply and the REPL goes on; Ctrl-C when none is (at the
// prompt, or a second Ctrl-C before the reply has stopped) ends the chat like Ctrl-D, with status 0.
import { PassThrough, Writable } from 'stream';
import type { Chat } from '../chat';
import { resolveChatTemplate } from '../chat-template';
import { chatRepl } from '../chat-repl';
import { loadModel } from '../model';
import type { GenerateOptions } from '../session';
import type { Command, Io } from './command';
import { CHAT_FLAGS, GENERATE_FLAGS, generateOptionsFromFlags, loadLoraFlags, loadOptionsFromFlags, loraFlags, MODEL_FLAGS, modelFlag, sessionOptionsFromFlags } from './flags';

function writable(write: (text: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      write(chunk.toString());
      callback();
    },
  });
}

export const chatCommand: Command = {
  name: 'chat',
  summary: 'chat with a model: a line in, a streamed reply out (a terminal, or the lines of a pipe)',
  flags: [...MODEL_FLAGS, ...CHAT_FLAGS, ...GENERATE_FLAGS],
  examples: [
    'flashdip chat --model phi-3-mini-instruct.gguf --system "You are brief." --temperature 0.7',
    'printf "Hello!\\nWhat is a GGUF file?\\n" | flashdip chat -m model.gguf --template chatml --max-tokens 128',
  ],
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const generate = generateOptionsFromFlags(v);
    const sessionOptions = sessionOptionsFromFlags(v);
    const template = typeof v.template === 'string' ? resolveChatTemplate(v.template, '--template') : undefined;
    const system = v.system as string | undefined;
    const loras = loraFlags(v);
    const model = await loadModel(file, loadOptionsFromFlags(v));
    try {
      const chat = model.createChat({ ...sessionOptions, system, template, loras: await loadLoraFlags(model, loras) });
      return await repl(chat, generate, io);
    } finally {
      await model.dispose();
    }
  },
};

async function repl(chat: Chat, generate: Omit<GenerateOptions, 'signal'>, io: Io): Promise<number> {
  const tty = process.stdin.isTTY === true;
  // stdin through a stream of our own, which Ctrl-C can end as Ctrl-D does.
  const input = new PassThrough();
  process.stdin.pipe(input);
  const end = (): void => {
    process.stdin.unpipe(input);
    process.stdin.pause();
    input.end();
  };
  if (tty) io.err('flashdip: Ctrl-C stops a reply; Ctrl-C at the prompt or Ctrl-D ends; /reset, /stats, /system TEXT, /exit\n');
  // With --json the replies are not streamed: the conversation is printed as JSON at the end.
  const r = chatRepl({ chat, input, output: writable(io.json ? () => {} : io.out), err: writable(io.err), isTTY: tty && !io.json, generate });
  const onInterrupt = (): void => {
    if (r.cancel()) return;
    end();
  };
  process.on('SIGINT', onInterrupt);
  try {
    await r.done;
  } finally {
    process.off('SIGINT', onInterrupt);
    end();
  }
  if (tty && !io.json) io.out('\n');
  if (io.json) io.out(JSON.stringify({ messages: chat.history, stats: chat.stats() }) + '\n');
  return 0;
}
