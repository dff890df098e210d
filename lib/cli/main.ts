// The flashdip command line: `flashdip <command> [options]`; every command takes --json.
import { parseArgs, ParseArgsConfig } from 'util';
import { FlashdipError, fromNative } from '../errors';
import { benchCommand } from './bench';
import { calibrateCommand } from './calibrate';
import { convertCommand } from './convert';
import { inspectCommand } from './inspect';
import { pplCommand } from './ppl';
import { runCommand } from './run';
import { simulateCommand } from './simulate';
import { sweepCommand } from './sweep';

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[], io: Io): Promise<number>;
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  json: boolean;
}

const COMMANDS: Record<string, Command> = {
  run: runCommand, ppl: pplCommand, calibrate: calibrateCommand, convert: convertCommand, simulate: simulateCommand, sweep: sweepCommand,
  bench: benchCommand, inspect: inspectCommand,
};

function help(): string {
  const lines = ['usage: flashdip <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `flashdip <command> --help` for its options. Every command takes --json.');
  return lines.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const io: Io = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    json: argv.includes('--json'),
  };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  try {
    if (!command) throw new FlashdipError('ERR_INVALID_ARGUMENT', `unknown command '${name}' (known: ${Object.keys(COMMANDS).join(', ')})`);
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`usage: ${command.usage}\n`);
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...command.options, json: { type: 'boolean' } },
        allowPositionals: command.allowPositionals ?? false,
        strict: true,
      });
    } catch (err) {
      throw new FlashdipError('ERR_INVALID_ARGUMENT', `${(err as Error).message}\nusage: ${command.usage}`);
    }
    return await command.run(parsed.values as Record<string, string | boolean | string[] | undefined>, parsed.positionals, io);
  } catch (err) {
    const e = err instanceof FlashdipError ? err : fromNative(err);
    if (io.json) io.out(JSON.stringify({ error: { code: e.code, message: e.message } }) + '\n');
    else io.err(`flashdip: ${e.message} (${e.code})\n`);
    return 1;
  }
}
