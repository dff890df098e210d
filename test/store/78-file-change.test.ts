// A model file that changes while loaded never kills the process: truncated between two evaluations
// or during one, whichever region it loses (token embedding, attention, output head, MLP; the
// standard layout read through the mapping, and a converted file whose MLP rows come through the
// store by pread), the next evaluation gives ERR_IO and so does every later one. A file renamed over
// or made unreadable keeps working on the inode that was opened. Each case runs in a child process
// (file-change-child.ts), so a SIGBUS fails the test instead of killing mocha.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { convert } from '../../lib/convert';
import { readGguf } from '../../lib/gguf';
import { makeModel } from '../../scripts/make-model';
import { STORIES, tmpFile } from '../helpers';

interface Result {
  before: number[];
  engine: string;
  first?: string;
  second?: string;
  truncatedWhilePending?: boolean;
  after?: number[];
  newSession?: string;
}

function runChild(job: Record<string, unknown>): Result {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'file-change-child.ts'), JSON.stringify(job)],
    { encoding: 'utf8', timeout: 120000 });
  assert.ok(r.status === 0 && r.signal === null, `the child died: exit ${r.status}, signal ${r.signal}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Result;
}

// Where tensor `name` starts in the file, and its size.
function tensorAt(file: string, name: string): { start: number; bytes: number } {
  const h = readGguf(file);
  const t = h.tensors.find((x) => x.name === name);
  assert.ok(t, `${file} has no tensor ${name}`);
  return { start: h.dataOffset + t.offset, bytes: t.bytes };
}

describe('78 a model file that changes while loaded', function () {
  this.timeout(300000);
  const copy = tmpFile('changing.gguf');
  const dipStories = tmpFile('changing-stories.dip.gguf');
  const big = tmpFile('changing-big.gguf');
  const dipBig = tmpFile('changing-big.dip.gguf');
  const other = tmpFile('changing-other.gguf');
  before(async () => {
    process.removeAllListeners('warning');
    await convert(STORIES, dipStories);
    // Big enough that evaluating 512 tokens takes a while on one thread, so the file can be cut in the middle.
    makeModel({ out: big, dim: 256, layers: 8, heads: 8, ffn: 768, vocab: 512, ctx: 1024, seed: 5 });
    await convert(big, dipBig);
  });
  after(() => {
    for (const f of [copy, dipStories, big, dipBig, other]) fs.rmSync(f, { force: true });
  });

  function assertErrIo(r: Result, what: string): void {
    assert.ok(r.before.length === 8, what);
    assert.match(r.first!, /^ERR_IO: /, `${what}: first call after the change: ${r.first}`);
    assert.match(r.second!, /^ERR_IO: .*changed while it was loaded/, `${what}: the call after that: ${r.second}`);
  }

  const between: Array<[string, () => string, (f: string) => number, number?]> = [
    ['standard layout: token embedding', () => STORIES, (f) => tensorAt(f, 'token_embd.weight').start + 4096],
    ['standard layout: output head', () => STORIES, (f) => { const t = tensorAt(f, 'output.weight'); return t.start + t.bytes / 2; }],
    ['standard layout: attention', () => STORIES, (f) => tensorAt(f, 'blk.2.attn_q.weight').start],
    ['standard layout: MLP', () => STORIES, (f) => { const t = tensorAt(f, 'blk.4.ffn_down.weight'); return t.start + t.bytes / 2; }],
    ['converted, MLP rows through the store: MLP', () => dipStories, (f) => { const t = tensorAt(f, 'blk.2.ffn_gate_up.dip.weight'); return t.start + t.bytes / 2; }, 1_000_000],
    ['converted, embedding read a row at a time by the store', () => dipStories, (f) => tensorAt(f, 'token_embd.weight').start + 4096, 1_000_000],
  ];
  // Without a budget the weights are copied into huge pages where the kernel offers them (a cut file
  // then faults nowhere: the size check catches it); hugePages: false computes through the mapping,
  // where a read of a lost page is a SIGBUS that the guard turns into zeros and ERR_IO.
  const mappings = (budget?: number) => (budget ? [{}] : [{}, { hugePages: false }]);
  const named = (what: string, m: { hugePages?: boolean }) => (m.hugePages === false ? `${what}, hugePages: false` : what);
  for (const [what, source, cutAt, budget] of between)
    for (const m of mappings(budget))
      it(`truncated between evaluations (${named(what, m)}): ERR_IO from generate, then from evaluate`, () => {
        fs.copyFileSync(source(), copy);
        const r = runChild({ file: copy, change: 'truncate-between', cut: cutAt(copy), budget, ...m });
        if (budget) assert.ok(r.engine !== '', 'the rows must come through the store');
        assertErrIo(r, what);
      });

  const during: Array<[string, () => string, (f: string) => number, number?]> = [
    ['standard layout, attention and everything after', () => big, (f) => tensorAt(f, 'blk.0.attn_q.weight').start],
    ['standard layout, the last layers\' MLP and the rest', () => big, (f) => tensorAt(f, 'blk.6.ffn_up.weight').start],
    ['converted under a budget, MLP rows by pread', () => dipBig, (f) => tensorAt(f, 'blk.3.ffn_gate_up.dip.weight').start, 28_000_000],
  ];
  for (const [what, source, cutAt, budget] of during)
    for (const m of mappings(budget))
      it(`truncated during an evaluation (${named(what, m)}): ERR_IO from that evaluation and the next`, () => {
        fs.copyFileSync(source(), copy);
        const r = runChild({ file: copy, change: 'truncate-during', cut: cutAt(copy), tokens: 512, budget, ...m });
        if (budget) assert.ok(r.engine !== '', 'the rows must come through the store');
        assert.ok(r.truncatedWhilePending, 'the file was cut while the evaluation ran');
        assertErrIo(r, what);
      });

  it('written in place while loaded (another model of the same size copied over it): ERR_IO, not a silently different model', () => {
    fs.copyFileSync(STORIES, copy);
    // Same size and layout, other weights: only the file's modification time tells.
    const h = readGguf(STORIES);
    const bytes = fs.readFileSync(STORIES);
    const w = tensorAt(STORIES, 'blk.0.attn_q.weight');
    for (let i = w.start; i < w.start + w.bytes; i += 4) bytes.writeFloatLE(0.5, i);
    fs.writeFileSync(other, bytes);
    assert.strictEqual(fs.statSync(other).size, h.fileSize);
    const r = runChild({ file: copy, change: 'rewrite', replacement: other });
    assertErrIo(r, 'rewritten');
  });

  for (const budget of [undefined, 1_400_000]) {
    const layout = budget ? 'converted, through the store' : 'standard layout';
    it(`renamed over while loaded (${layout}): keeps generating from the file it opened`, () => {
      fs.copyFileSync(budget ? dipStories : STORIES, copy);
      fs.writeFileSync(other, 'not a model');
      const r = runChild({ file: copy, change: 'replace', replacement: other, budget });
      assert.deepStrictEqual(r.after, r.before);
      // A new session reads as the first does: through the mapping, or the model's column store, which
      // opened the file when the model was loaded.
      assert.strictEqual(r.newSession, 'ok');
    });
    it(`chmod 000 while loaded (${layout}): keeps generating`, () => {
      fs.copyFileSync(budget ? dipStories : STORIES, copy);
      const r = runChild({ file: copy, change: 'chmod', budget });
      assert.deepStrictEqual(r.after, r.before);
      // The column store opened the file when the model was loaded: a new session does not open it again.
      assert.strictEqual(r.newSession, 'ok');
      fs.chmodSync(copy, 0o600);
    });
  }
});
