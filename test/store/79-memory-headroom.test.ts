// Weights copied into huge pages by default (loadModel's hugePages) only where they fit: a model larger
// than the memory a process may take must still run through its mapping, whose pages the kernel can
// drop and read again, not be copied into anonymous memory the OOM killer then takes back. A child
// process runs in a memory cgroup smaller than the model (needs root and cgroup v1 or v2, as CI has).
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { makeModel } from '../../scripts/make-model';
import { tmpFile } from '../helpers';

const DIST = path.resolve(__dirname, '../../dist/index.js');
const LIMIT = 250_000_000;

// A fresh memory cgroup with LIMIT (v1 where /sys/fs/cgroup/memory exists, else v2); undefined when
// cgroups cannot be made here (not root, or no writable memory controller).
function makeCgroup(): { procs: string; remove: () => void } | undefined {
  const v1 = '/sys/fs/cgroup/memory';
  const dir = fs.existsSync(v1) ? path.join(v1, `flashdip-test-${process.pid}`) : `/sys/fs/cgroup/flashdip-test-${process.pid}`;
  try {
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, fs.existsSync(v1) ? 'memory.limit_in_bytes' : 'memory.max'), String(LIMIT));
  } catch {
    try { fs.rmdirSync(dir); } catch { /* not made */ }
    return undefined;
  }
  return { procs: path.join(dir, 'cgroup.procs'), remove: () => fs.rmdirSync(dir) };
}

describe('79 weights copied only where they fit', () => {
  const model = tmpFile('headroom-235mb.gguf');
  before(function () {
    this.timeout(120000);
    // f32, ~235 MB: more than 80% of the cgroup's 250 MB, far less than this machine's memory.
    makeModel({ out: model, dim: 512, layers: 14, heads: 8, ffn: 2048, vocab: 512, ctx: 256, seed: 3 });
  });
  after(() => fs.rmSync(model, { force: true }));

  it('in a memory cgroup smaller than the model: not copied, generates through the mapping; outside it, copied', function () {
    this.timeout(120000);
    assert.ok(fs.existsSync(DIST), `${DIST} is missing: build the TypeScript first (npx tsc -p tsconfig.json)`);
    const code = `require(${JSON.stringify(DIST)}).loadModel(${JSON.stringify(model)}, { threads: 1 }).then(async (m) => {
      const s = m.createSession({ contextSize: 64 });
      let n = 0;
      for await (const _ of s.generate('Once upon', { maxTokens: 4, temperature: 0 })) n++;
      console.log(JSON.stringify({ copied: m.info.weightsCopied, generated: n }));
      await m.dispose();
    })`;
    const outside = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 100000 });
    assert.strictEqual(outside.status, 0, `${outside.signal} ${outside.stderr}`);
    const thp = /\[(always|madvise)\]/.test(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'));
    assert.deepStrictEqual(JSON.parse(outside.stdout), { copied: thp, generated: 4 });

    const cg = makeCgroup();
    assert.ok(cg, 'a memory cgroup could not be made (this test needs root and cgroup v1 or v2)');
    try {
      // The shell joins the cgroup, then becomes node: everything the child maps or allocates is charged.
      const r = spawnSync('sh', ['-c', `echo $$ > ${cg.procs} && exec "$0" -e "$1"`, process.execPath, code], { encoding: 'utf8', timeout: 100000 });
      assert.strictEqual(r.status, 0, `killed or failed in a ${LIMIT / 1e6} MB cgroup: ${r.signal} ${r.stderr}`);
      assert.deepStrictEqual(JSON.parse(r.stdout), { copied: false, generated: 4 });
    } finally {
      cg.remove();
    }
  });
});
