// The flashdip command line: `flashdip <command> [options]`; every command takes --json. Parsing is
// commander's: each Command (command.ts) becomes a commander command with its flags, help text,
// "did you mean" suggestions and --version. Errors print one line ending with their code and exit 1;
// Ctrl-C in an interruptible command prints what was done and exits 130.
import * as fs from 'fs';
import * as path from 'path';
import { Command as Commander, CommanderError, Option } from 'commander';
import { FlashdipError, fromNative } from '../errors';
import { benchCommand } from './bench';
import { calibrateCommand } from './calibrate';
import { chatCommand } from './chat';
import type { Command, Flag, Io, Values } from './command';
import { convertCommand } from './convert';
import { inspectCommand } from './inspect';
import { planCommand } from './plan';
import { pplCommand } from './ppl';
import { probeDiskCommand } from './probe-disk';
import { runCommand } from './run';
import { simulateCommand } from './simulate';
import { sweepCommand } from './sweep';

export type { Command, Io } from './command';

const COMMANDS: Command[] = [
  runCommand, chatCommand, pplCommand, calibrateCommand, convertCommand, simulateCommand, sweepCommand, planCommand, probeDiskCommand, benchCommand,
  inspectCommand,
];

/** Exit status after Ctrl-C (128 + SIGINT), as shells report a process ended by it. */
export const EXIT_INTERRUPTED = 130;

const JSON_FLAG: Flag = { name: 'json', description: 'print one JSON object on stdout instead of text', default: 'off' };

function version(): string {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
}

function option(f: Flag): Option {
  const notes = [f.default === 'required' ? 'required' : `default: ${f.default}`, ...(f.example !== undefined ? [`e.g. ${f.example}`] : [])];
  const o = new Option(`${f.short ? `-${f.short}, ` : ''}--${f.name}${f.arg ? ` <${f.arg}>` : ''}`, `${f.description} (${notes.join('; ')})`);
  if (f.multiple) o.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
  return o;
}

// Rewrites an API option name at the head of a message ('sparsity.density: ...'), and dotted or
// camelCase names anywhere in it, to the flag the user typed.
function nameFlags(message: string, flags: Flag[]): string {
  for (const f of flags) {
    for (const api of typeof f.api === 'string' ? [f.api] : f.api ?? []) {
      if (message.startsWith(`${api}:`)) message = `--${f.name}${message.slice(api.length)}`;
      if (/[.A-Z]/.test(api)) message = message.replace(new RegExp(`(?<![\\w.-])${api.replace(/\./g, '\\.')}(?![\\w])`, 'g'), `--${f.name}`);
    }
  }
  return message;
}

// commander's "error: unknown option '--fast'\n(Did you mean --fas?)" as one line.
function commanderMessage(err: CommanderError): string {
  return err.message.replace(/^error: /, '').replace(/\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)').replace(/\n/g, ' ');
}

// Warnings the library emits with a FLASHDIP_* code (e.g. FLASHDIP_STANDARD_LAYOUT from loadModel)
// are printed once each as a plain line, not in Node's "(node:123) Warning:" format; others pass.
function captureWarnings(io: Io): () => void {
  const original = process.emitWarning;
  const seen = new Set<string>();
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]): void {
    const opts = rest[0];
    const code = typeof opts === 'object' && opts !== null ? (opts as { code?: string }).code : typeof rest[1] === 'string' ? rest[1] : undefined;
    if (typeof code === 'string' && code.startsWith('FLASHDIP_')) {
      if (!seen.has(code)) io.err(`flashdip: warning: ${typeof warning === 'string' ? warning : warning.message}\n`);
      seen.add(code);
      return;
    }
    (original as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  return () => {
    process.emitWarning = original;
  };
}

// The first SIGINT aborts the signal (the command stops and prints what it has); a second ends the
// process at once, by SIGINT's default action (a shell reports 130). Not process.exit(): at exit,
// Node joins libuv's worker threads, so it would wait for the native step in progress.
function onInterrupt(controller: AbortController, io: Io): () => void {
  const handler = (): void => {
    if (controller.signal.aborted) {
      process.off('SIGINT', handler);
      process.kill(process.pid, 'SIGINT');
      return;
    }
    io.err('\nflashdip: interrupted; stopping (Ctrl-C again to quit at once)\n');
    controller.abort(new FlashdipError('ERR_ABORTED', 'interrupted'));
  };
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

function program(io: Io, controller: AbortController, result: { code: number }, current: { flags: Flag[] }): Commander {
  const root = new Commander('flashdip')
    .description('On-device LLM inference for GGUF Llama-family models under a DRAM budget')
    .usage('<command> [options]')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', '\nRun `flashdip <command> --help` for its flags. Every command takes --json.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => {} })
    .showSuggestionAfterError(true);
  for (const spec of COMMANDS) {
    const flags = [...spec.flags, JSON_FLAG];
    const cmd = root.command(spec.name).description(spec.summary).allowExcessArguments(false);
    if (spec.positionals) cmd.arguments(spec.positionals);
    for (const f of flags) cmd.addOption(option(f));
    cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  ${e}`).join('\n')}\n`);
    cmd.hook('preAction', () => {
      current.flags = flags;
    });
    cmd.action(async (...args: unknown[]) => {
      const c = args[args.length - 1] as Commander;
      const opts = c.opts();
      const values: Values = {};
      for (const o of c.options) values[o.long!.slice(2)] = opts[o.attributeName()];
      const stop = spec.interruptible ? onInterrupt(controller, io) : () => {};
      try {
        result.code = await spec.run(values, c.processedArgs.filter((a): a is string => typeof a === 'string'), io);
        if (controller.signal.aborted) result.code = EXIT_INTERRUPTED;
      } finally {
        stop();
      }
    });
  }
  return root;
}

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const io: Io = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    json: argv.includes('--json'),
    started: (what) => io.err(`flashdip: ${what} (Ctrl-C to stop)\n`),
    signal: controller.signal,
  };
  const result = { code: 0 };
  const current = { flags: [] as Flag[] };
  const root = program(io, controller, result, current);
  if (argv.length === 0) {
    io.out(root.helpInformation());
    return 1;
  }
  const restore = captureWarnings(io);
  try {
    await root.parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return err.exitCode;
      err = new FlashdipError('ERR_INVALID_ARGUMENT', commanderMessage(err));
    }
    const e = err instanceof FlashdipError ? err : fromNative(err);
    const message = nameFlags(e.message, current.flags);
    const code = e.code === 'ERR_ABORTED' && controller.signal.aborted ? EXIT_INTERRUPTED : 1;
    if (io.json) io.out(JSON.stringify({ error: { code: e.code, message } }) + '\n');
    else io.err(`flashdip: ${message} (${e.code})\n`);
    return code;
  } finally {
    restore();
  }
}
