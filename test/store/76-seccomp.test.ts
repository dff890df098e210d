// Under a seccomp filter the store must not probe io_uring: Android's app policy kills the process
// on io_uring_setup (SIGSYS), Docker's default profile refuses it with EPERM. And where O_DIRECT is
// refused (FUSE: EINVAL), rows are read buffered. Each filter is installed by a small C program
// (seccomp-exec.c, compiled here with the system cc) that then execs the CLI on a converted model.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readGguf } from '../../lib/gguf';
import { dropPageCache, pageCacheResident } from '../../lib/page-cache';
import { STORIES, tmpFile } from '../helpers';

const BIN = path.resolve(__dirname, '../../bin/flashdip.js');

describe('76 the store under seccomp filters and without O_DIRECT', function () {
  this.timeout(120000);
  const helper = tmpFile('seccomp-exec');
  const dip = tmpFile('seccomp-stories.dip.gguf');
  // A budget small enough that the MLP rows come through the column store (as in test 72).
  const args = [BIN, 'run', '--model', dip, '--prompt', 'Once upon a time', '--max-tokens', '24', '--temperature', '0',
    '--ctx', '128', '--kv-type', 'f32', '--memory-budget', '1000000', '--json'];
  let reference: { tokens: number[]; engine: string };

  function run(wrapper: string[]): { tokens: number[]; engine: string } {
    const env = { ...process.env };
    delete env.FLASHDIP_IO;  // auto
    const [cmd, ...rest] = [...wrapper, process.execPath, ...args];
    const r = spawnSync(cmd, rest, { encoding: 'utf8', env, timeout: 60000 });
    assert.ok(r.status === 0 && r.signal === null, `${wrapper.join(' ') || 'unfiltered'}: exit ${r.status}, signal ${r.signal}\n${r.stderr}`);
    const out = JSON.parse(r.stdout);
    return { tokens: out.tokens, engine: out.stats.sparsity.ioEngine };
  }

  before(() => {
    // No compiler is a failure, not a skip: CI installs one.
    const cc = spawnSync('cc', ['-O2', '-Wall', '-o', helper, path.join(__dirname, 'seccomp-exec.c')], { encoding: 'utf8' });
    assert.ok(cc.status === 0, `cannot compile seccomp-exec.c with cc: ${cc.error ?? cc.stderr}`);
    const conv = spawnSync(process.execPath, [BIN, 'convert', STORIES, dip], { encoding: 'utf8' });
    assert.strictEqual(conv.status, 0, conv.stderr);
    reference = run([]);
    assert.ok(reference.tokens.length > 0);
    assert.ok(reference.engine !== '', 'the rows must come through the store');
  });
  after(() => {
    for (const f of [helper, dip]) fs.rmSync(f, { force: true });
  });

  it('a filter that kills on io_uring_setup (Android): completes with the same tokens on I/O threads', () => {
    const r = run([helper, 'kill']);
    assert.deepStrictEqual(r.tokens, reference.tokens);
    assert.ok(r.engine.startsWith('threads '), r.engine);
  });

  it('a filter that answers io_uring_setup with EPERM (Docker): same tokens on I/O threads', () => {
    const r = run([helper, 'eperm']);
    assert.deepStrictEqual(r.tokens, reference.tokens);
    assert.ok(r.engine.startsWith('threads '), r.engine);
  });

  it('O_DIRECT refused with EINVAL (FUSE, Termux shared storage): same tokens, buffered reads that leave no pages behind', () => {
    dropPageCache(dip);
    const r = run([helper, 'nodirect']);
    assert.deepStrictEqual(r.tokens, reference.tokens);
    assert.strictEqual(r.engine, 'threads buffered');
    // Page-cache hygiene: the MLP rows read buffered were dropped after the copy (without it, nearly
    // every row stays cached: the budget holds few of them, so most were read).
    const h = readGguf(dip);
    const mlp = h.tensors.filter((t) => t.name.includes('ffn_')).reduce((a, t) => a + t.bytes, 0);
    const resident = pageCacheResident(dip);
    assert.ok(mlp > h.fileSize / 3 && resident < h.fileSize - mlp / 2, `${resident} bytes of ${h.fileSize} cached (${mlp} of MLP rows)`);
  });
});
