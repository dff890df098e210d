// flashdip convert never loses data (the input, an existing output, or anything when it fails part
// way) and checks every dimension it uses against the tensors before it allocates or writes anything.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError, loadModel, readGguf } from '../../lib';
import { convert, ConvertOptions } from '../../lib/convert';
import { GGML_TYPE } from '../../lib/ggml-types';
import { GgufValueType as T } from '../../lib/gguf-writer';
import { quantizeRow } from '../../lib/kernels';
import { GgufEdit, maxAbsDiff, rewriteGguf, STORIES, tmpFile } from '../helpers';

const BIN = path.resolve(__dirname, '../../bin/flashdip.js');

function code(c: string, ...words: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof FlashdipError, String(e));
    assert.strictEqual(e.code, c, e.message);
    for (const w of words) assert.ok(e.message.includes(w), `'${w}' not in: ${e.message}`);
    return true;
  };
}

// A private folder per test, so that "no temporary file is left" means an empty listing.
let dirs = 0;
function freshDir(): string {
  const d = tmpFile(`convert-safety-${dirs++}`);
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d);
  return d;
}

function copyOfStories(dir: string): string {
  const f = path.join(dir, 'in.gguf');
  fs.copyFileSync(STORIES, f);
  fs.chmodSync(f, 0o644);
  return f;
}

async function greedy(file: string): Promise<number[]> {
  const m = await loadModel(file);
  const s = m.createSession({ contextSize: 64 });
  for await (const _ of s.generate([1, 403, 407], { maxTokens: 8, temperature: 0 }));
  const t = s.tokens.slice();
  await m.dispose();
  return t;
}

describe('49 convert: data safety', function () {
  this.timeout(60000);
  const original = fs.readFileSync(STORIES);
  let converted: Buffer;
  before(async () => {
    const d = freshDir();
    await convert(STORIES, path.join(d, 'out.gguf'));
    converted = fs.readFileSync(path.join(d, 'out.gguf'));
  });

  it('convert X X is refused, naming both paths, and leaves X byte-identical', async () => {
    const d = freshDir(), x = copyOfStories(d);
    await assert.rejects(convert(x, x), code('ERR_INVALID_ARGUMENT', 'same file', x));
    assert.ok(fs.readFileSync(x).equals(original));
    assert.deepStrictEqual(fs.readdirSync(d), ['in.gguf']);
  });

  it('OUT a symbolic link to IN (or to a link to it) is refused and IN stays intact', async () => {
    const d = freshDir(), x = copyOfStories(d);
    fs.symlinkSync(x, path.join(d, 'link1.gguf'));
    fs.symlinkSync('link1.gguf', path.join(d, 'link2.gguf'));
    for (const out of ['link1.gguf', 'link2.gguf'])
      await assert.rejects(convert(x, path.join(d, out)), code('ERR_INVALID_ARGUMENT', 'same file', out));
    // The same through a relative path with '..' and through the input as a link.
    await assert.rejects(convert(path.join(d, 'link1.gguf'), path.join(d, '..', path.basename(d), 'in.gguf')), code('ERR_INVALID_ARGUMENT'));
    assert.ok(fs.readFileSync(x).equals(original));
    assert.deepStrictEqual(fs.readdirSync(d).sort(), ['in.gguf', 'link1.gguf', 'link2.gguf']);
  });

  it('OUT a hard link to IN is refused (same device and inode) and IN stays intact', async () => {
    const d = freshDir(), x = copyOfStories(d), h = path.join(d, 'hard.gguf');
    fs.linkSync(x, h);
    await assert.rejects(convert(x, h, { force: true }), code('ERR_INVALID_ARGUMENT', 'same file'));
    assert.ok(fs.readFileSync(x).equals(original));
    assert.deepStrictEqual(fs.readdirSync(d).sort(), ['hard.gguf', 'in.gguf']);
  });

  it('an existing OUT is refused (the message says --force) and left intact', async () => {
    const d = freshDir(), out = path.join(d, 'out.gguf');
    fs.writeFileSync(out, 'precious');
    await assert.rejects(convert(STORIES, out), code('ERR_INVALID_ARGUMENT', '--force', out));
    assert.strictEqual(fs.readFileSync(out, 'utf8'), 'precious');
    // A broken symbolic link is an existing name too.
    fs.symlinkSync('nowhere.gguf', path.join(d, 'dangling.gguf'));
    await assert.rejects(convert(STORIES, path.join(d, 'dangling.gguf')), code('ERR_INVALID_ARGUMENT', '--force'));
    assert.deepStrictEqual(fs.readdirSync(d).sort(), ['dangling.gguf', 'out.gguf']);
  });

  it('force replaces OUT by renaming a new file over it (never rewritten in place), with a normal mode', async () => {
    const d = freshDir(), out = path.join(d, 'out.gguf');
    fs.writeFileSync(out, 'previous output');
    const before = fs.statSync(out).ino;
    await convert(STORIES, out, { force: true });
    assert.notStrictEqual(fs.statSync(out).ino, before, 'rewritten in place, not renamed over');
    assert.ok(fs.readFileSync(out).equals(converted));
    assert.strictEqual(fs.statSync(out).mode & 0o777, 0o666 & ~process.umask());
    assert.deepStrictEqual(await greedy(out), await greedy(STORIES));
    // Through a symbolic link: the file it points to is replaced, the link stays.
    fs.symlinkSync('out.gguf', path.join(d, 'link.gguf'));
    await convert(STORIES, path.join(d, 'link.gguf'), { force: true });
    assert.ok(fs.lstatSync(path.join(d, 'link.gguf')).isSymbolicLink());
    assert.deepStrictEqual(fs.readdirSync(d).sort(), ['link.gguf', 'out.gguf']);
  });

  // A failure part way, after the output was created: an existing OUT stays as it was and nothing else
  // is left in the folder.
  const failures: [string, (input: string) => { options: ConvertOptions; check: (e: unknown) => boolean }][] = [
    ['onProgress throws', () => ({
      options: { onProgress: (done) => { if (done > 100_000) throw new Error('progress bar broke'); } },
      check: (e) => e instanceof Error && e.message === 'progress bar broke',
    })],
    ['the signal aborts', () => {
      const ac = new AbortController();
      return { options: { signal: ac.signal, onProgress: (done) => { if (done > 100_000) ac.abort(); } }, check: code('ERR_ABORTED') };
    }],
    ['the input is truncated while it is read', (input) => ({
      options: { onProgress: () => fs.truncateSync(input, 600_000) },
      check: code('ERR_GGUF_TRUNCATED'),
    })],
  ];
  for (const [what, make] of failures)
    it(`fails cleanly when ${what}: the old OUT intact, no temporary file`, async () => {
      const d = freshDir(), x = copyOfStories(d), out = path.join(d, 'out.gguf');
      fs.writeFileSync(out, 'previous output');
      const { options, check } = make(x);
      let progressed = 0;
      const onProgress = options.onProgress!;
      await assert.rejects(convert(x, out, { ...options, force: true, onProgress: (...a) => (progressed++, onProgress(...a)) }), check);
      assert.ok(progressed > 0, 'failed before writing');
      assert.strictEqual(fs.readFileSync(out, 'utf8'), 'previous output');
      assert.deepStrictEqual(fs.readdirSync(d).sort(), ['in.gguf', 'out.gguf']);
    });

  it('an output folder that does not exist is ERR_IO; a folder as OUT is refused', async () => {
    const d = freshDir();
    await assert.rejects(convert(STORIES, path.join(d, 'no', 'out.gguf')), code('ERR_IO'));
    await assert.rejects(convert(STORIES, d, { force: true }), code('ERR_INVALID_ARGUMENT', 'directory'));
    assert.deepStrictEqual(fs.readdirSync(d), []);
  });

  it('checks its options', async () => {
    for (const bad of [{ force: 1 }, { signal: {} }, { onProgress: 3 }, { forse: true }, { type: 'q3' }, { alignment: 100 }])
      await assert.rejects(convert(STORIES, tmpFile('never.gguf'), bad as never), code('ERR_INVALID_ARGUMENT'));
    assert.ok(!fs.existsSync(tmpFile('never.gguf')));
  });

  it('the CLI: `flashdip convert X X` and `convert X LINK` exit 1 with the code and leave X byte-identical', () => {
    const d = freshDir(), x = copyOfStories(d);
    fs.symlinkSync(x, path.join(d, 'link.gguf'));
    for (const out of [x, path.join(d, 'link.gguf')]) {
      const r = spawnSync(process.execPath, [BIN, 'convert', x, out], { encoding: 'utf8', timeout: 60000 });
      assert.strictEqual(r.signal, null);
      assert.strictEqual(r.status, 1, r.stderr);
      assert.match(r.stderr, /ERR_INVALID_ARGUMENT/);
      assert.ok(fs.readFileSync(x).equals(original));
    }
    assert.deepStrictEqual(fs.readdirSync(d).sort(), ['in.gguf', 'link.gguf']);
  });
});

describe('49 convert: every dimension checked against the tensors', function () {
  this.timeout(60000);
  const u32 = (value: number) => ({ type: T.UINT32, value });
  const hostile: [string, GgufEdit, string[]][] = [
    ['feed_forward_length 171 for tensors of 172', { metadata: { 'llama.feed_forward_length': u32(171) } }, ['feed_forward_length 171', '[64, 172]']],
    ['feed_forward_length 0', { metadata: { 'llama.feed_forward_length': u32(0) } }, ['feed_forward_length is 0']],
    ['feed_forward_length -1 (i32)', { metadata: { 'llama.feed_forward_length': { type: T.INT32, value: -1 } } }, ['feed_forward_length is -1']],
    ['feed_forward_length NaN (f32)', { metadata: { 'llama.feed_forward_length': { type: T.FLOAT32, value: NaN } } }, ['feed_forward_length is NaN']],
    ['feed_forward_length 2^63 (u64)', { metadata: { 'llama.feed_forward_length': { type: T.UINT64, value: 1n << 63n } } }, ['feed_forward_length']],
    ['no feed_forward_length', { metadata: { 'llama.feed_forward_length': null } }, ['feed_forward_length is undefined']],
    ['embedding_length 65 for rows of 64', { metadata: { 'llama.embedding_length': u32(65) } }, ['embedding_length is 65']],
    ['block_count 4 for 5 layers of tensors', { metadata: { 'llama.block_count': u32(4) } }, ['blk.4.', 'block_count 4']],
    ['block_count 8,000,000 for 5 layers', { metadata: { 'llama.block_count': u32(8_000_000) } }, ['layer 5 of 8000000']],
    ['ffn_up of 171 rows beside ffn_gate of 172', { dims: { 'blk.2.ffn_up.weight': [64, 171] } }, ['blk.2.ffn_up.weight has shape [64, 171]']],
    ['ffn_down of [172, 32]', { dims: { 'blk.1.ffn_down.weight': [172, 32] } }, ['blk.1.ffn_down.weight has shape [172, 32], expected [172, 64]']],
    ['ffn_gate with a third dimension', { dims: { 'blk.0.ffn_gate.weight': [64, 172, 1] } }, ['blk.0.ffn_gate.weight has shape [64, 172, 1]']],
  ];
  for (const [what, edit, words] of hostile)
    it(`${what}: ERR_MODEL_INVALID before any output`, async () => {
      const d = freshDir(), src = rewriteGguf(STORIES, path.join(d, 'hostile.gguf'), edit), out = path.join(d, 'out.gguf');
      await assert.rejects(convert(src, out), code('ERR_MODEL_INVALID', ...words));
      assert.deepStrictEqual(fs.readdirSync(d), ['hostile.gguf']);
    });

  for (const [name, type] of [['blk.3.ffn_down.weight', 24], ['blk.0.ffn_gate.weight', 20]] as const)
    it(`an MLP tensor of a type convert cannot read (${name} type ${type}): ERR_UNSUPPORTED_TYPE before any output`, async () => {
      const d = freshDir(), src = rewriteGguf(STORIES, path.join(d, 'hostile.gguf'), { types: { [name]: type } });
      await assert.rejects(convert(src, path.join(d, 'out.gguf')), code('ERR_UNSUPPORTED_TYPE', name));
      assert.deepStrictEqual(fs.readdirSync(d), ['hostile.gguf']);
    });

  it('--type keep on q4_0 gate and up rows beside an FFN width of 172 (2F no multiple of 32): f16 rows for that layer', async () => {
    const h = readGguf(STORIES);
    const fd = fs.openSync(STORIES, 'r');
    const edit: Record<string, number> = {}, data: Record<string, Uint8Array> = {};
    for (const name of ['blk.3.ffn_gate.weight', 'blk.3.ffn_up.weight']) {
      const t = h.tensors.find((u) => u.name === name)!;
      const f32 = Buffer.alloc(t.bytes);
      fs.readSync(fd, f32, 0, t.bytes, h.dataOffset + t.offset);
      edit[name] = GGML_TYPE.Q4_0;
      data[name] = quantizeRow(GGML_TYPE.Q4_0, new Float32Array(f32.buffer, f32.byteOffset, t.bytes / 4));
    }
    fs.closeSync(fd);
    const d = freshDir(), src = rewriteGguf(STORIES, path.join(d, 'q4gate.gguf'), { types: edit, data });
    const out = path.join(d, 'out.gguf');
    const r = await convert(src, out);
    const types = new Map(readGguf(out).tensors.map((u) => [u.name, u.type]));
    assert.strictEqual(types.get('blk.3.ffn_gate_up.dip.weight'), GGML_TYPE.F16);
    assert.match(r.tensors.find((t) => t.name === 'blk.3.ffn_gate_up.dip.weight')!.fallback!, /q4_0 rows need a multiple of 32 values, these have 344/);
    assert.strictEqual(types.get('blk.2.ffn_gate_up.dip.weight'), GGML_TYPE.F32);
    assert.strictEqual(r.layers, 5);
    // Same logits as the source, up to f16 rounding of the dequantized q4_0 values.
    const logits = async (file: string) => {
      const m = await loadModel(file);
      const l = (await m.createSession({ contextSize: 32, kvCacheType: 'f32' }).evaluate([1, 403, 407, 261])).slice();
      await m.dispose();
      return l;
    };
    const a = await logits(src), b = await logits(out);
    const top = a.reduce((x, y) => Math.max(x, Math.abs(y)), 0);
    // (and of the q8_0 activations the source's q4_0 GEMVs use: two matrices, so 4e-3 where one took 2e-3)
    assert.ok(top > 0 && maxAbsDiff(a, b) / top <= 4e-3, `relative difference ${maxAbsDiff(a, b) / top}`);
    // An explicit type that cannot hold the rows is the caller's: an argument error.
    await assert.rejects(convert(STORIES, path.join(d, 'q4.gguf'), { type: 'q4_0' }), code('ERR_INVALID_ARGUMENT', 'multiple of 32'));
  });

  // A header string replaced by one of another length, in a copy whose data section is 4096-aligned:
  // the padding before it absorbs the difference, so every tensor stays where it was.
  function patchHeaderString(d: string, from: string, to: string): string {
    const src = rewriteGguf(STORIES, path.join(d, 'aligned.gguf'), { alignment: 4096 });
    const b = fs.readFileSync(src), dataOffset = readGguf(src).dataOffset;
    const enc = (s: string) => { const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(Buffer.byteLength(s))); return Buffer.concat([l, Buffer.from(s)]); };
    const i = b.indexOf(enc(from));
    assert.ok(i > 0 && i < dataOffset, `${from} not in the header`);
    let head = Buffer.concat([b.subarray(0, i), enc(to), b.subarray(i + enc(from).length, dataOffset)]);
    const delta = head.length - dataOffset;
    assert.ok(head.subarray(head.length - Math.max(delta, 0)).every((x) => x === 0), 'not enough padding');
    head = delta > 0 ? head.subarray(0, dataOffset) : Buffer.concat([head, Buffer.alloc(-delta)]);
    fs.rmSync(src);
    const out = path.join(d, 'hostile.gguf');
    fs.writeFileSync(out, Buffer.concat([head, b.subarray(dataOffset)]));
    return out;
  }
  for (const [what, from, to] of [
    ['a tensor name of 64 bytes', 'output_norm.weight', `output_norm.${'x'.repeat(45)}.weight`],
    ['an empty metadata key', 'general.name', ''],
  ])
    it(`${what} (read, but not writable as GGUF): ERR_MODEL_INVALID, nothing left`, async () => {
      const d = freshDir(), src = patchHeaderString(d, from, to);
      assert.ok(readGguf(src).tensors.length > 0);
      await assert.rejects(convert(src, path.join(d, 'out.gguf')), code('ERR_MODEL_INVALID', 'cannot be written as GGUF'));
      assert.deepStrictEqual(fs.readdirSync(d), ['hostile.gguf']);
    });

  it('feed_forward_length 2^31: the process survives (a child process) and gets ERR_MODEL_INVALID', () => {
    const d = freshDir();
    const src = rewriteGguf(STORIES, path.join(d, 'hostile.gguf'), { metadata: { 'llama.feed_forward_length': u32(2 ** 31) } });
    const script = `require(${JSON.stringify(path.resolve(__dirname, '../../lib/convert'))}).convert(process.argv[1], process.argv[2])
      .then(() => console.log('{"ok":true}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script, src, path.join(d, 'out.gguf')],
      { encoding: 'utf8', timeout: 60000, cwd: path.resolve(__dirname, '../..') });
    assert.strictEqual(r.signal, null, r.stderr);
    assert.strictEqual(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.strictEqual(res.code, 'ERR_MODEL_INVALID', r.stdout);
    assert.match(res.message, /feed_forward_length 2147483648/);
    assert.deepStrictEqual(fs.readdirSync(d), ['hostile.gguf']);
  });
});
