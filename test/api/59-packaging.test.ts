// Packaging: what the npm tarball holds, the flags both native builds share, and how the install
// script picks a binary. The tarball itself is installed and run by scripts/test-pack.sh (CI).
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { markAsUntransferable, MessageChannel } from 'worker_threads';
import { getBinding } from '../../lib/binding';
import { STORIES, TMP } from '../helpers';

const ROOT = path.resolve(__dirname, '../..');
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

/** binding.gyp is a Python literal; ours is JSON after its leading # comment lines. */
function gyp(): any {
  return JSON.parse(read('binding.gyp').replace(/^\s*#.*$/gm, ''));
}

/**
 * Whether V8 owns the memory of an ArrayBuffer: Node marks every external one (napi external buffers
 * and ArrayBuffers) untransferable, and postMessage then copies it instead of detaching it.
 */
function transfers(ab: ArrayBufferLike): boolean {
  const before = ab.byteLength;
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(ab, [ab as ArrayBuffer]);
  port1.close();
  port2.close();
  return before > 0 && ab.byteLength === 0;
}

/** The native files under a folder, relative to the repository. */
function walk(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

describe('59 packaging', () => {
  describe('the two native builds (binding.gyp for node-gyp/prebuildify, CMakeLists.txt for cmake-js)', () => {
    const cmake = read('CMakeLists.txt');
    const cmakeDefines = (cmake.match(/target_compile_definitions\(flashdip PRIVATE([^)]*)\)/) ?? [])[1] ?? '';
    const cmakeOptions = (cmake.match(/add_compile_options\((-W[^)]*)\)/) ?? [])[1] ?? '';

    it('both define NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED (no external ArrayBuffers: Electron memory cage)', () => {
      assert.ok(gyp().target_defaults.defines.includes('NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED'), 'binding.gyp');
      assert.ok(cmakeDefines.split(/\s+/).includes('NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED'), 'CMakeLists.txt');
    });

    it('no native source reaches the raw N-API external-buffer calls the define cannot hide', () => {
      const offenders = walk('native')
        .filter((f) => /\.(cc|h|inc)$/.test(f))
        .filter((f) => /napi_create_external_(arraybuffer|buffer)|napi_create_external\b/.test(read(f)));
      assert.deepEqual(offenders, []);
    });

    it('both define NDEBUG in Release and the same NAPI definitions', () => {
      const g = gyp().target_defaults;
      assert.deepEqual(g.configurations.Release.defines, ['NDEBUG']);
      assert.match(cmake, /set\(CMAKE_BUILD_TYPE Release\)/, 'CMake defaults to Release, which defines NDEBUG');
      assert.deepEqual([...g.defines].sort(), cmakeDefines.trim().split(/\s+/).sort());
    });

    it('both compile with the same warning and aliasing flags', () => {
      const pick = (flags: string[]) => flags.filter((f) => /^-W|^-fno-strict-aliasing$/.test(f)).sort();
      assert.deepEqual(pick(gyp().target_defaults.cflags_cc), pick(cmakeOptions.trim().split(/\s+/)));
    });

    it('no -march/-m flag applies outside the per-architecture kernel targets', () => {
      const g = gyp();
      assert.deepEqual(g.target_defaults.cflags_cc.filter((f: string) => /^-m/.test(f)), []);
      for (const t of g.targets) assert.equal(t.cflags_cc, undefined, `${t.target_name} sets flags for every arch`);
    });
  });

  describe('the binding hands V8 no external ArrayBuffer (Electron memory cage)', () => {
    it('the check sees an untransferable (external) buffer', () => {
      const ab = new ArrayBuffer(16);
      markAsUntransferable(ab);
      assert.equal(transfers(ab), false);
      assert.equal(transfers(new ArrayBuffer(16)), true);
    });

    it('kernels: quantizeRow, dequantizeRow, gemv, topk, cacheSimulate return V8-owned arrays', () => {
      const k = getBinding().kernels;
      const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
      const Q8_0 = 8;
      const q = k.quantizeRow(Q8_0, x);
      const sim = k.cacheSimulate(8, 4, 0, [Int32Array.of(1, 2), Int32Array.of(2, 3)]);
      const arrays = [k.dequantizeRow(Q8_0, q, 64), k.gemv(0, new Uint8Array(x.buffer.slice(0)), 64, 1, x), k.topk(x, 5), ...sim.cached, q];
      for (const a of arrays) assert.ok(transfers(a.buffer), a.constructor.name);
    });

    it('readGguf metadata arrays, and a recording context\'s trace, times, masks and histograms', async () => {
      const b = getBinding();
      const header = b.readGguf(STORIES);
      const typed = Object.values(header.metadata).filter((v): v is Float32Array | Int32Array => ArrayBuffer.isView(v));
      assert.ok(typed.length > 0, 'stories260K has typed metadata arrays');
      for (const a of typed) assert.ok(transfers(a.buffer), 'metadata');
      const model = await b.loadModel(STORIES, { threads: 1 });
      try {
        const info = model.info();
        const ctx = model.createContext({ contextSize: 32, record: 1, histograms: 1 });
        await ctx.eval(Int32Array.of(1, 403, 407), false, new Float32Array(info.vocabSize));
        const stats = ctx.stats(false);
        const hist = ctx.histograms();
        assert.ok(stats.trace && stats.times && stats.masks && hist);
        for (const a of [stats.trace, stats.times, ...stats.masks, ...hist.x, ...hist.h]) assert.ok(transfers(a.buffer), 'context');
        ctx.dispose();
      } finally {
        model.dispose();
      }
    });
  });

  describe('the npm tarball', function () {
    this.timeout(60000);
    let files: string[];
    before(() => {
      const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
      files = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    });

    it('holds what a source build needs: binding.gyp, the scripts it runs, every native source and header', () => {
      for (const f of ['binding.gyp', 'scripts/sources.js', 'scripts/install.js', 'LICENSE', 'README.md', 'bin/flashdip.js', 'dist/index.js', 'dist/index.d.ts']) {
        assert.ok(files.includes(f), f);
      }
      const native = walk('native').filter((f) => !f.startsWith('native/test/'));
      assert.deepEqual(native.filter((f) => !files.includes(f)), []);
      for (const group of ['core', 'x86', 'arm', 'arm-dotprod', 'addon']) {
        const listed = execFileSync(process.execPath, ['scripts/sources.js', group], { cwd: ROOT, encoding: 'utf8' }).trim().split(/\s+/);
        assert.deepEqual(listed.filter((f) => !files.includes(f)), [], group);
      }
    });

    it('holds the embedded demo model, and no other model file', () => {
      assert.ok(files.includes('models/flashdip-demo.dip.gguf'));
      assert.deepEqual(files.filter((f) => f.endsWith('.gguf')), ['models/flashdip-demo.dip.gguf']);
    });

    it('holds nothing else: no native tests, TypeScript sources, tests, benchmarks, other models or source maps', () => {
      const extra = files.filter((f) => f !== 'models/flashdip-demo.dip.gguf' &&
        /^(native\/test|lib|test|bench|scripts\/(?!sources\.js$|install\.js$))\/?|\.gguf$|\.map$|\.ts$(?<!\.d\.ts)/.test(f));
      assert.deepEqual(extra, []);
    });

    it('the install script is the package\'s install hook', () => {
      assert.equal(JSON.parse(read('package.json')).scripts.install, 'node scripts/install.js');
    });
  });

  describe('scripts/install.js picks a binary with node-gyp-build', function () {
    this.timeout(30000);
    // The binary the tests use (build/Release, or a prebuild when npm ci took one).
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const built: string = require('node-gyp-build').resolve(ROOT);
    let dir: string;
    before(() => {
      // A package folder with prebuilds for both Linux architectures and no build/.
      dir = path.join(TMP, `${process.pid}-prebuilds`);
      for (const arch of ['x64', 'arm64']) {
        fs.mkdirSync(path.join(dir, 'prebuilds', `linux-${arch}`), { recursive: true });
        fs.copyFileSync(built, path.join(dir, 'prebuilds', `linux-${arch}`, 'flashdip.napi.glibc.node'));
      }
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'flashdip' }));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Runs findBinary / buildEnv in a child that reports `platform` (node-gyp-build reads it at load). */
    function probe(platform: string): { file: string | null; loads: boolean; gypDefines: string | undefined } {
      const script = `
        Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platform)} });
        const m = require(${JSON.stringify(path.join(ROOT, 'scripts/install.js'))});
        const r = m.findBinary(${JSON.stringify(dir)});
        const env = m.buildEnv({});
        console.log(JSON.stringify({ file: r.file, loads: !!r.file && !r.error, gypDefines: env.GYP_DEFINES }));`;
      const env = { ...process.env };
      delete env.npm_config_platform;
      return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env }));
    }

    it('takes and loads the prebuild of this Linux machine', () => {
      const r = probe('linux');
      assert.equal(r.file, path.join(dir, 'prebuilds', `linux-${process.arch}`, 'flashdip.napi.glibc.node'));
      assert.ok(r.loads);
      assert.equal(r.gypDefines, undefined);
    });

    it('never maps Android (Termux) to a linux prebuild, and defines android_ndk_path for gyp there', () => {
      const r = probe('android');
      assert.equal(r.file, null);
      assert.equal(r.gypDefines, 'android_ndk_path=');
    });

    it('says what a source build needs, naming the platform', () => {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { sourceBuildMessage } = require(path.join(ROOT, 'scripts/install.js'));
      const msg: string = sourceBuildMessage('there is no prebuilt binary for this platform', { PATH: '' });
      assert.ok(msg.includes(`${process.platform}-${process.arch} (Node ${process.version}`), msg);
      assert.match(msg, /C\+\+17 compiler/);
      assert.match(msg, /apt-get install build-essential python3/);
      assert.match(msg, /pkg install nodejs-lts clang make python/);
      assert.match(msg, /Not found on this PATH: a C\+\+17 compiler \(c\+\+, g\+\+, clang\+\+\), make, python3/);
    });
  });
});
