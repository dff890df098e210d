// Runs the CLI as a user does: `node bin/flashdip.js ...` in a child process. bin/ runs the compiled
// dist/ when it is up to date (`npx tsc -p tsconfig.json`, which `npm test` does first), else the
// sources through ts-node (~1.4 s more per process).
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as path from 'path';

export const BIN = path.resolve(__dirname, '../../bin/flashdip.js');

export interface CliResult {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The arguments of util-linux `script` that run `flashdip ARGS` on a pseudo-terminal: -q quiet, -f
 * flush at once, -e the child's exit status, -c the command, no typescript file. `exec`: script runs
 * the command with $SHELL -c, and a shell that stays (dash does) gets the terminal's SIGINT too and
 * exits 130 after its child, whatever the child's own status.
 */
export function onTerminalArgs(args: string[]): string[] {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return ['-qfec', `exec ${command}`, '/dev/null'];
}

/** A CLI process running in the background, its output collected as it comes. */
export class Running {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly done: Promise<CliResult & { exitedAt: number }>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.done = new Promise((resolve) =>
      this.child.on('close', (status, signal) => resolve({ status, signal, stdout: this.stdout, stderr: this.stderr, exitedAt: Date.now() })));
  }

  /** Resolves when the output so far passes `test`; rejects if the process ends first or after timeoutMs. */
  async waitFor(test: (r: Running) => boolean, timeoutMs = 120000): Promise<void> {
    const t0 = Date.now();
    let ended = false;
    void this.done.then(() => (ended = true));
    while (!test(this)) {
      if (ended) throw new Error(`the process ended first:\n${this.stdout}\n${this.stderr}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out:\n${this.stdout}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  interrupt(): number {
    this.child.kill('SIGINT');
    return Date.now();
  }
}
