// The chat loop of `flashdip chat`, apart from the terminal: read a line, stream the reply, and the
// commands /reset, /stats, /system TEXT, /exit. The caller owns the process: it turns Ctrl-C into
// repl.cancel() (which aborts the reply being written) and exits when `done` resolves.
import * as readline from 'readline';
import type { Readable, Writable } from 'stream';
import type { Chat } from './chat';
import { FlashdipError } from './errors';
import type { GenerateOptions } from './session';

export interface ChatReplOptions {
  chat: Chat;
  input: Readable;
  /** Replies go here, one line each (and the "> " prompt on a terminal). */
  output: Writable;
  /** Notices, statistics and errors. */
  err: Writable;
  /** A terminal: show a prompt before each line. Default false (a pipe: only the replies are written). */
  isTTY?: boolean;
  /** Options of every reply (maxTokens, temperature...); the signal is the REPL's own. */
  generate?: Omit<GenerateOptions, 'signal'>;
}

export interface ChatRepl {
  /** Resolves when the input ends or /exit is read (rejects only on an error that is not a FlashdipError). */
  done: Promise<void>;
  /** Aborts the reply being written (what Ctrl-C does); false when no reply is being written. */
  cancel(): boolean;
}

const HELP = 'commands: /reset (forget the conversation), /stats, /system TEXT (replace the system message), /exit';

export function chatRepl(options: ChatReplOptions): ChatRepl {
  const { chat, input, output, err, isTTY = false, generate = {} } = options;
  let current: AbortController | undefined;
  const rl = readline.createInterface({ input, terminal: false, crlfDelay: Infinity });
  const prompt = () => {
    if (isTTY) output.write('> ');
  };

  async function command(line: string): Promise<boolean> {
    const [name, ...rest] = line.slice(1).split(' ');
    const arg = rest.join(' ').trim();
    switch (name) {
      case 'exit':
      case 'quit':
        return false;
      case 'reset':
        chat.reset();
        err.write('(conversation reset)\n');
        break;
      case 'system':
        chat.setSystem(arg || undefined);
        err.write(arg ? '(system message set)\n' : '(system message removed)\n');
        break;
      case 'stats':
        err.write(statsLine(chat) + '\n');
        break;
      default:
        err.write(`unknown command /${name}; ${HELP}\n`);
    }
    return true;
  }

  async function reply(text: string): Promise<void> {
    current = new AbortController();
    let wrote = false;
    try {
      for await (const piece of chat.send(text, { ...generate, signal: current.signal })) {
        if (piece.text) output.write(piece.text);
        wrote = true;
      }
      output.write('\n');
    } catch (e) {
      if (!(e instanceof FlashdipError)) throw e;
      if (wrote) output.write('\n');
      err.write(e.code === 'ERR_ABORTED' ? '(reply cancelled)\n' : `error: ${e.message} (${e.code})\n`);
    } finally {
      current = undefined;
    }
  }

  const done = (async () => {
    try {
      prompt();
      for await (const raw of rl) {
        const line = raw.trim();
        if (line.startsWith('/')) {
          if (!(await command(line))) break;
        } else if (line) {
          await reply(line);
        }
        prompt();
      }
    } finally {
      rl.close();
    }
  })();

  return {
    done,
    cancel() {
      if (!current || current.signal.aborted) return false;
      current.abort();
      return true;
    },
  };
}

function statsLine(chat: Chat): string {
  const s = chat.stats();
  const turns = chat.history.filter((m) => m.role === 'user').length;
  const sp = s.sparsity;
  return (
    `turns ${turns}, context ${s.contextUsed}/${s.contextSize}, last turn: ${s.lastTurn.evaluatedTokens} tokens evaluated, ` +
    `${s.lastTurn.reusedTokens} reused from the cache` +
    (s.lastTurn.droppedMessages ? `, ${s.lastTurn.droppedMessages} old messages dropped` : '') +
    `; prompt ${s.prefillTokensPerSecond.toFixed(1)} tok/s, generation ${s.decodeTokensPerSecond.toFixed(1)} tok/s` +
    (sp.method !== 'dense' ? `, ${sp.method} density ${sp.density.toFixed(2)}, hit rate ${(100 * sp.hitRate).toFixed(1)}%` : '')
  );
}
