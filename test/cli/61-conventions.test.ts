// The command-line conventions every command follows: --help describes each flag with its default
// and an example, --version, "did you mean", --model everywhere, numbers parsed one way (negative
// where allowed, a clear error naming the flag where not), errors that name the flag typed and end
// with their code, and file-system failures as ERR_IO.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SHARED, STORIES, tmpFile } from '../helpers';
import { cli } from './cli';
import { DEFAULT_MODEL } from '../../lib/default-model';

const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');
const COMMANDS = ['run', 'chat', 'ppl', 'calibrate', 'convert', 'simulate', 'sweep', 'bench', 'inspect'];

// `flashdip X --json` must fail with `code`, its message containing `message`; and (unless `text` is
// false, to save a process) the text form must print one line ending with "(code)".
function fails(args: string[], code: string, message: string | RegExp, text = true): void {
  const r = cli(...args, '--json');
  assert.strictEqual(r.signal, null);
  assert.strictEqual(r.status, 1, `${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  const err = JSON.parse(r.stdout).error;
  assert.strictEqual(err.code, code, `${args.join(' ')}: ${err.message}`);
  if (typeof message === 'string') assert.ok(err.message.includes(message), `${args.join(' ')}: ${err.message}`);
  else assert.match(err.message, message);
  if (!text) return;
  const plain = cli(...args);
  assert.strictEqual(plain.status, 1);
  assert.match(plain.stderr, new RegExp(`(^|\n)flashdip: [^\n]*\\(${code}\\)\n$`));
}

describe('61 cli: conventions', function () {
  this.timeout(120000);

  it('--help of every command: each flag has a description, its default (or "required") and an example', () => {
    for (const name of COMMANDS) {
      const r = cli(name, '--help');
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: flashdip ${name} `));
      assert.match(r.stdout, /\nExamples:\n {2}flashdip /);
      // One entry per flag: the line starting with '-' and its indented continuation lines.
      const options = r.stdout.split('\nOptions:\n')[1].split('\n\n')[0];
      const entries = options.split(/\n(?= {2}-)/).map((e) => e.replace(/\s+/g, ' ').trim());
      assert.ok(entries.length >= 2, options);
      for (const e of entries) {
        if (e.startsWith('-h, --help')) continue;
        const m = /^((?:-\w, )?--[\w-]+)( <[^>]+>)? (.+)$/.exec(e);
        assert.ok(m, `${name}: ${e}`);
        assert.ok(m[3].length > 20, `${name} ${m[1]}: no description`);
        assert.match(m[3], /\((default: [^)]|required)/, `${name} ${m[1]}: no default`);
        if (m[2]) assert.match(m[3], /e\.g\. \S/, `${name} ${m[1]}: no example`);
      }
      assert.ok(entries.some((e) => e.startsWith('--json')), `${name}: no --json`);
    }
    const top = cli('--help');
    assert.strictEqual(top.status, 0);
    for (const name of COMMANDS) assert.match(top.stdout, new RegExp(`\\n {2}${name} `));
  });

  it('--version prints the package version', () => {
    const r = cli('--version');
    assert.strictEqual(r.status, 0, r.stderr);
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));
    assert.strictEqual(r.stdout, `${pkg.version}\n`);
  });

  it('unknown flags and commands: "did you mean"', () => {
    fails(['run', '--model', STORIES, '--prompt', 'x', '--densty', '0.5'], 'ERR_INVALID_ARGUMENT', "unknown option '--densty' (did you mean --density?)");
    fails(['ppl', '--model', STORIES, '--txt', TEXT], 'ERR_INVALID_ARGUMENT', 'did you mean --text?');
    fails(['rnu', '--model', STORIES], 'ERR_INVALID_ARGUMENT', "unknown command 'rnu' (did you mean run?)");
    fails(['run', '--model', STORIES, '--prompt', 'x', 'extra'], 'ERR_INVALID_ARGUMENT', 'too many arguments');
  });

  it('negative numbers work where a flag allows them', () => {
    const r = cli('run', '--model', STORIES, '--prompt', 'Once', '--max-tokens', '4', '--presence-penalty', '-0.5', '--frequency-penalty', '-1', '--json');
    assert.strictEqual(r.status, 0, r.stderr + r.stdout);
    assert.strictEqual(JSON.parse(r.stdout).tokens.length, 4);
  });

  it('negative and out-of-range numbers where a flag does not allow them: ERR_INVALID_ARGUMENT naming the flag typed', () => {
    const cases: [string[], string][] = [
      [['run', '--model', STORIES, '--prompt', 'x', '--max-tokens', '-1'], '--max-tokens:'],
      [['run', '--model', STORIES, '--prompt', 'x', '--method', 'dip', '--density', '-0.5'], '--density:'],
      [['run', '--model', STORIES, '--prompt', 'x', '--seed', '-3'], '--seed:'],
      [['run', '--model', STORIES, '--prompt', 'x', '--top-p', '2'], '--top-p:'],
      [['run', '--model', STORIES, '--prompt', 'x', '--method', 'dip-ca', '--density', '0.5', '--gamma', '-1'], '--gamma:'],
      [['ppl', '--model', STORIES, '--text', TEXT, '--ctx', '-128'], '--ctx:'],
      [['calibrate', STORIES, '--text', TEXT, '--tokens', '-5', '-o', tmpFile('neg.json')], '--tokens:'],
      [['bench', '--model', STORIES, '--tokens', '-3'], '--tokens:'],
      [['run', '--model', STORIES, '--prompt', 'x', '--memory-budget', '-5MB'], '--memory-budget:'],
    ];
    for (const [args, flag] of cases) {
      fails(args, 'ERR_INVALID_ARGUMENT', flag);
      const r = cli(...args, '--json');
      const message = JSON.parse(r.stdout).error.message as string;
      assert.ok(message.startsWith(flag), message);
      assert.doesNotMatch(message, /sparsity\.|maxTokens|contextSize|argument is ambiguous/);
    }
  });

  it('malformed numbers (hex, exponents, junk, empty) are refused the same way by every command', () => {
    const cases: [string[], string][] = [
      [['run', '--model', STORIES, '--prompt', 'x', '--temperature'], '--temperature'],
      [['ppl', '--model', STORIES, '--text', TEXT, '--ctx'], '--ctx'],
      [['calibrate', STORIES, '--text', TEXT, '-o', tmpFile('bad.json'), '--density'], '--density'],
      [['simulate', '--model', STORIES, '--text', TEXT, '--max-tokens'], '--max-tokens'],
      [['sweep', '--model', STORIES, '--text', TEXT, '--out', tmpFile('bad'), '--densities'], '--densities'],
      [['bench', '--model', STORIES, '--prompt-tokens'], '--prompt-tokens'],
      [['convert', STORIES, tmpFile('bad.gguf'), '--align'], '--align'],
    ];
    for (const [args, flag] of cases)
      for (const value of ['0x10', '1e3', '5abc', '', 'Infinity', '1.5.2'])
        fails([...args, value], 'ERR_INVALID_ARGUMENT', `${flag}: expected a`, value === '0x10');
    fails(['sweep', '--model', STORIES, '--text', TEXT, '--out', tmpFile('bad'), '--densities', '0.5,1e-1'], 'ERR_INVALID_ARGUMENT',
      '--densities: expected a decimal number, got "1e-1"');
    fails(['sweep', '--model', STORIES, '--text', TEXT, '--out', tmpFile('bad'), '--budgets', '0x10%'], 'ERR_INVALID_ARGUMENT', '--budgets: expected a');
    for (const value of ['1e6', '0x1000', '10 parsecs'])
      fails(['run', '--model', STORIES, '--prompt', 'x', '--memory-budget', value], 'ERR_INVALID_ARGUMENT', '--memory-budget: cannot parse');
  });

  it('the model as --model or as the positional where one is taken', () => {
    const a = cli('inspect', '--model', STORIES, '--json');
    assert.strictEqual(a.status, 0, a.stderr);
    assert.strictEqual(JSON.parse(a.stdout).path, STORIES);
    fails(['inspect', STORIES, '--model', TEXT], 'ERR_INVALID_ARGUMENT', '--model: given twice');
    // No model: the embedded demo model, except for convert, which needs its input named.
    const e = cli('inspect', '--json');
    assert.strictEqual(e.status, 0, e.stderr);
    assert.strictEqual(JSON.parse(e.stdout).path, DEFAULT_MODEL);
    fails(['convert', '-o', tmpFile('none.dip.gguf')], 'ERR_INVALID_ARGUMENT', 'convert takes an input and an output path');
    const out = tmpFile('conv.dip.gguf');
    const c = cli('convert', '--model', STORIES, '-o', out, '--json');
    assert.strictEqual(c.status, 0, c.stderr);
    assert.strictEqual(JSON.parse(c.stdout).output, out);
    fs.rmSync(out);
    const d = cli('convert', STORIES, out, '--json');
    assert.strictEqual(d.status, 0, d.stderr);
    fs.rmSync(out);
    fails(['convert', STORIES], 'ERR_INVALID_ARGUMENT', 'an input and an output path');
  });

  it('file-system failures are ERR_IO naming the flag', () => {
    const missing = tmpFile('missing.txt');
    const noDir = path.join(tmpFile('no-such-dir'), 'out');
    fails(['ppl', '--model', STORIES, '--text', missing], 'ERR_IO', `--text: cannot read ${missing}`);
    fails(['simulate', '--model', STORIES, '--text', missing], 'ERR_IO', '--text: cannot read');
    fails(['calibrate', STORIES, '--text', missing, '-o', tmpFile('x.json')], 'ERR_IO', '--text: cannot read');
    fails(['calibrate', STORIES, '--text', TEXT, '-o', `${noDir}.json`], 'ERR_IO', '--out: cannot write');
    fails(['sweep', '--model', STORIES, '--text', TEXT, '--out', noDir, '--methods', 'dense'], 'ERR_IO', '--out: cannot write');
    fails(['sweep', '--model', missing, '--text', TEXT, '--out', tmpFile('s')], 'ERR_IO', '--model: cannot open');
    fails(['simulate', '--model', STORIES, '--text', TEXT, '--max-tokens', '20', '--trace', `${noDir}.json`], 'ERR_IO', '--trace: cannot write');
    fails(['simulate', '--model', STORIES, '--text', TEXT, '--device', `${noDir}.json`], 'ERR_IO', '--device: cannot read');
    fails(['ppl', '--model', STORIES, '--text', TEXT, '--thresholds', missing], 'ERR_IO', '--thresholds: cannot read');
    fails(['inspect', missing], 'ERR_IO', missing);
    fails(['convert', STORIES, `${noDir}.gguf`], 'ERR_IO', noDir);
    fails(['bench', '--model', missing], 'ERR_IO', missing);
  });

  it('--ctx beyond the trained context: refused naming the flags, accepted with --allow-context-beyond-training', () => {
    fails(['run', '--model', STORIES, '--prompt', 'Hi', '--max-tokens', '1', '--ctx', '4096'], 'ERR_INVALID_ARGUMENT',
      /--ctx: 4096 is beyond the 2048 tokens .*--allow-context-beyond-training/, false);
    const r = cli('run', '--model', STORIES, '--prompt', 'Hi', '--max-tokens', '1', '--ctx', '4096', '--allow-context-beyond-training', '--json');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(JSON.parse(r.stdout).stats.contextSize, 4096);
  });
});
