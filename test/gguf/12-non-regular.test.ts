// A FIFO, a device or a directory given as a model is refused with ERR_IO before anything blocks on
// it (open() of a FIFO with no writer never returns), and loadModel reads the header off the JS thread.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel, readGguf } from '../../lib';
import { FlashdipError } from '../../lib/errors';
import { readGgufAsync } from '../../lib/gguf';
import { STORIES, tmpFile } from '../helpers';

const BIN = path.resolve(__dirname, '../../bin/flashdip.js');

async function rejection(p: Promise<unknown>): Promise<FlashdipError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FlashdipError, String(err));
    return err;
  }
  throw new Error('expected a rejection');
}

describe('12 non-regular files are refused without blocking', function () {
  this.timeout(60000);
  const fifo = tmpFile('model.fifo');
  before(() => {
    fs.rmSync(fifo, { force: true });
    const r = spawnSync('mkfifo', [fifo]);
    assert.strictEqual(r.status, 0, `mkfifo: ${r.error ?? r.stderr}`);
  });
  after(() => fs.rmSync(fifo, { force: true }));

  it('a FIFO with no writer: loadModel, readGgufAsync, readGguf and pageCacheResident refuse it promptly with ERR_IO, loadModel without blocking the event loop', () => {
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fifo-child.ts'), fifo],
      { encoding: 'utf8', timeout: 30000 });
    assert.ok(r.status === 0 && r.signal === null, `the child hung or died: exit ${r.status}, signal ${r.signal}\n${r.stderr}`);
    const out = JSON.parse(r.stdout);
    for (const call of ['loadModel', 'readGgufAsync', 'readGguf', 'pageCacheResident']) {
      assert.strictEqual(out[call].code, 'ERR_IO', `${call}: ${JSON.stringify(out[call])}`);
      assert.ok(out[call].message.includes(fifo) && out[call].message.includes('FIFO'), out[call].message);
    }
    // loadModel handed back its promise at once and the 1 ms timer ran while it was pending.
    assert.ok(out.returnedAfterMs < 1000 && out.loadModelMs < 5000, JSON.stringify(out));
  });

  it('the CLI: inspect on a FIFO exits with ERR_IO', () => {
    const r = spawnSync(process.execPath, [BIN, 'inspect', fifo, '--json'], { encoding: 'utf8', timeout: 30000 });
    assert.ok(r.signal === null && r.status !== 0, `exit ${r.status}, signal ${r.signal}`);
    assert.ok(/ERR_IO/.test(r.stdout + r.stderr) && (r.stdout + r.stderr).includes('FIFO'), r.stdout + r.stderr);
  });

  for (const [what, file, kind] of [['/dev/zero', '/dev/zero', 'a character device'], ['a directory', path.dirname(STORIES), 'a directory']]) {
    it(`${what} is refused by loadModel, readGgufAsync and readGguf (ERR_IO, saying what it is)`, async () => {
      for (const e of [await rejection(loadModel(file)), await rejection(readGgufAsync(file)), await rejection((async () => readGguf(file))())]) {
        assert.strictEqual(e.code, 'ERR_IO', e.message);
        assert.ok(e.message.includes(file) && e.message.includes(kind), e.message);
      }
    });
  }

  it('a regular file still reads the same through readGgufAsync as through readGguf', async () => {
    assert.deepStrictEqual(await readGgufAsync(STORIES), readGguf(STORIES));
  });
});
