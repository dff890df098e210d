// The progress bar of the long commands: drawn on a terminal (a pseudo-terminal from util-linux
// `script`), never into a pipe nor with --json, so machine output stays clean.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { SHARED, STORIES, tmpFile } from '../helpers';
import { cli, onTerminalArgs } from './cli';

const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');
const BAR = /ppl \[[█░]+\] +\d+% \| \d+\/\d+ tokens \| ETA /;

// Runs the CLI on a pseudo-terminal: stdout and stderr both arrive in the result's stdout.
function onTerminal(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('script', onTerminalArgs(args), { encoding: 'utf8', timeout: 120000 });
  return { status: r.status, output: r.stdout };
}

describe('67 cli: progress bar', function () {
  this.timeout(120000);
  const ppl = ['ppl', '--model', STORIES, '--text', TEXT, '--ctx', '64', '--max-tokens', '2000'];

  it('ppl on a terminal draws a bar with an ETA that ends at 100%, then prints the result', () => {
    const r = onTerminal(...ppl);
    assert.strictEqual(r.status, 0, r.output);
    assert.match(r.output, BAR);
    assert.match(r.output, /ppl \[█+\] 100% \| 2000\/2000 tokens/);
    assert.match(r.output, /perplexity \d+\.\d+ over 2000 tokens/);
  });

  it('no bar into a pipe, nor on a terminal with --json', () => {
    const piped = cli(...ppl);
    assert.strictEqual(piped.status, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /ETA|\x1b/);
    assert.match(piped.stdout, /^perplexity /);
    const json = onTerminal(...ppl, '--json');
    assert.strictEqual(json.status, 0, json.output);
    assert.doesNotMatch(json.output, /ETA|\x1b\[/);
    assert.strictEqual(JSON.parse(json.output.trim().split('\n').pop()!).tokens, 2000);
  });

  it('sweep on a terminal: one bar over all runs, each finished run still reported', () => {
    const out = tmpFile('progress-sweep');
    const r = onTerminal('sweep', '--model', STORIES, '--text', TEXT, '--out', out, '--methods', 'dense,dip', '--densities', '0.5',
      '--ctx', '64', '--max-tokens', '300');
    assert.strictEqual(r.status, 0, r.output);
    assert.match(r.output, /sweep \[█+\] 100% \| 1200\/1200 tokens/);
    assert.match(r.output, /dense density 1 budget none: ppl/);
    assert.match(r.output, /dip density 0.5 budget none: ppl/);
  });
});
