// The fine-tuning recipe (scripts/finetune): trains a few LoRA steps with DIP's masks on a tiny random model
// (PyTorch >= 1.13 with numpy: $FLASHDIP_PYTHON, else python3 on the PATH, else the system's
// /usr/bin/python3, whichever imports them first; CI installs Debian's python3-torch), writes the adapter GGUF with the project's
// writer, and checks that flashdip loads it and that its logits with the adapter are the PyTorch model's
// within 1e-4 (f32): dense, with DIP masks on the standard layout, and on the DIP layout. This checks the
// mechanics (masks, LoRA placement and scale, file format), not the quality of the training.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel } from '../../lib';
import { convert } from '../../lib/convert';
import { readGguf } from '../../lib/gguf';
import { makeModel } from '../../scripts/make-model';
import { maxAbsDiff, SHARED, TMP } from '../helpers';

const REPO = path.resolve(__dirname, '../..');
const RECIPE = path.join(REPO, 'scripts/finetune/recipe.py');

// The first interpreter that has torch and numpy (a pyenv python3 on the PATH may not see the system's
// packages). None is a failure that says what to install, not a skipped test.
const PYTHON = (() => {
  const candidates = [process.env.FLASHDIP_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  const found = candidates.find((c) => spawnSync(c, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0);
  return { found, candidates };
})();

function python(args: string[]): string {
  if (!PYTHON.found) throw new Error(`no python with torch and numpy among ${PYTHON.candidates.join(', ')} (Debian: apt-get install python3-torch python3-numpy)`);
  const r = spawnSync(PYTHON.found, [RECIPE, ...args], { cwd: REPO, encoding: 'utf8', timeout: 600000 });
  if (r.error) throw r.error;
  assert.strictEqual(r.status, 0, `recipe.py ${args[0]} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('finetune recipe (PyTorch LoRA with DIP masks)', function () {
  this.timeout(900000);
  const dir = path.join(TMP, `${process.pid}-finetune`);
  const base = path.join(dir, 'tiny.gguf');
  const adapter = path.join(dir, 'adapter.gguf');
  const work = path.join(dir, 'work');
  const KEEP_X = 0.5, KEEP_H = 0.25;
  let tokens: number[];

  before(function () {
    fs.mkdirSync(dir, { recursive: true });
    makeModel({ out: base, arch: 'llama', dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 192, vocab: 512, ctx: 64, type: 'f32', seed: 7 });
    const text = fs.readFileSync(path.join(SHARED, 'text/gutenberg/alice-in-wonderland.txt'), 'utf8').slice(2000, 8000);
    fs.writeFileSync(path.join(dir, 'train.txt'), text);
    // A few steps with the masks on, a learning rate high enough that the adapter clearly moves the logits.
    python(['finetune', '--base', base, '--text', path.join(dir, 'train.txt'), '--out', adapter, '--work', work,
      '--keep-x', String(KEEP_X), '--keep-h', String(KEEP_H), '--steps', '4', '--batch', '2', '--ctx', '32',
      '--lr', '0.05', '--rank', '4', '--alpha', '8', '--seed', '3']);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes an adapter in llama.cpp's format", () => {
    const g = readGguf(adapter);
    assert.strictEqual(g.metadata['general.type'], 'adapter');
    assert.strictEqual(g.metadata['adapter.type'], 'lora');
    assert.strictEqual(g.metadata['general.architecture'], 'llama');
    assert.strictEqual(g.metadata['adapter.lora.alpha'], 8);
    const names = g.tensors.map((t) => t.name);
    assert.ok(names.includes('blk.0.ffn_down.weight.lora_a') && names.includes('blk.1.attn_q.weight.lora_b'), names.join(' '));
    const a = g.tensors.find((t) => t.name === 'blk.0.ffn_up.weight.lora_a')!;
    const b = g.tensors.find((t) => t.name === 'blk.0.ffn_up.weight.lora_b')!;
    assert.deepStrictEqual([a.dims, b.dims], [[64, 4], [4, 192]]);
  });

  async function flashdipLogits(file: string, sparsity: object | undefined, withAdapter: boolean): Promise<Float32Array> {
    const model = await loadModel(file);
    try {
      const loras = withAdapter ? [{ adapter: await model.loadLora(adapter) }] : [];
      const s = model.createSession({ sparsity: sparsity as never, loras, threads: 1, kvCacheType: 'f32' });
      return Float32Array.from(await s.evaluate(tokens, { allLogits: true }));
    } finally {
      await model.dispose();
    }
  }

  function torchLogits(name: string, extra: string[], withAdapter = true): Float32Array {
    const out = path.join(dir, `${name}.f32`);
    python(['logits', '--base-dir', path.join(work, 'base'), ...(withAdapter ? ['--lora-dir', path.join(work, 'lora')] : []),
      '--tokens', tokens.join(','), '--out', out, ...extra]);
    return readF32(out);
  }

  it("flashdip's logits with the adapter are PyTorch's within 1e-4: dense, DIP masks, DIP layout", async () => {
    const model = await loadModel(base);
    tokens = model.tokenize('Alice was beginning to get very tired of sitting by her sister on the bank');
    await model.dispose();
    assert.ok(tokens.length >= 10);

    const dense = torchLogits('dense', []);
    const denseBase = torchLogits('dense-base', [], false);
    assert.strictEqual(dense.length, tokens.length * 512);
    assert.ok(maxAbsDiff(dense, denseBase) > 1e-2, `the adapter changes the logits (${maxAbsDiff(dense, denseBase)})`);
    assert.ok(maxAbsDiff(await flashdipLogits(base, undefined, false), denseBase) <= 1e-4, 'base model, dense');
    const d = maxAbsDiff(await flashdipLogits(base, undefined, true), dense);
    assert.ok(d <= 1e-4, `dense with the adapter: max |diff| ${d}`);

    const dip = torchLogits('dip', ['--keep-x', String(KEEP_X), '--keep-h', String(KEEP_H)]);
    assert.ok(maxAbsDiff(dip, dense) > 1e-2, 'the masks change the logits');
    const sp = { method: 'dip', keepX: KEEP_X, keepH: KEEP_H };
    const d2 = maxAbsDiff(await flashdipLogits(base, sp, true), dip);
    assert.ok(d2 <= 1e-4, `DIP masks with the adapter: max |diff| ${d2}`);

    const dipFile = path.join(dir, 'tiny.dip.gguf');
    await convert(base, dipFile, { type: 'keep' });
    const d3 = maxAbsDiff(await flashdipLogits(dipFile, sp, true), dip);
    assert.ok(d3 <= 1e-4, `DIP layout with the adapter: max |diff| ${d3}`);
  });
});
