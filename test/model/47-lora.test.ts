// LoRA adapters (llama.cpp's GGUF adapter format). Parity: each fixture of test/fixtures/lora
// (recorded by bench/lora-fixtures.ts with node-llama-cpp) names a random-weight f32 llama model
// and adapters that make-model and make-lora regenerate from their seeds; flashdip's logits after
// the prompt with the adapters must match llama.cpp's within 1e-3. Then the sparse path (DIP layout
// under a budget): density 1 equals dense with the adapter, and on a DIP layer the adapter sees the
// masked input. Then hostile adapters and options, which must give typed errors.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError, loadModel, Model } from '../../lib';
import { convert } from '../../lib/convert';
import { readGguf } from '../../lib/gguf';
import { splitBytes } from '../../lib/sparsity';
import { fixtureFiles, LoraFixture, LORA_FIXTURES, LORA_PROMPT } from '../../bench/lora-fixtures';
import { cli } from '../cli/cli';
import { GGML_TYPE } from '../../lib/ggml-types';
import { GgufWriter } from '../../lib/gguf-writer';
import { loraValues, makeLora } from '../../scripts/make-lora';
import { makeModel } from '../../scripts/make-model';
import { maxAbsDiff, readJson, sessionScratch, TMP, tmpFile } from '../helpers';

const fixtures = fs
  .readdirSync(LORA_FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => readJson<LoraFixture>(path.join(LORA_FIXTURES, f)));

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'ok', (e) => (e instanceof FlashdipError ? `${e.code}: ${e.message}` : `untyped: ${e}`));
}

function at(logits: Float32Array, ids: number[]): number[] {
  return ids.map((id) => logits[id]);
}

describe('47 LoRA adapters', function () {
  this.timeout(120000);
  const dir = path.join(TMP, `${process.pid}-lora`);
  before(() => fs.mkdirSync(dir, { recursive: true }));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('has the one- and two-adapter fixtures', () => {
    assert.deepStrictEqual(fixtures.map((f) => f.id), ['one', 'two']);
  });

  for (const fx of fixtures) {
    it(`${fx.id}: logits match llama.cpp within 1e-3 (${fx.what}; ${fx.llamaCpp.release})`, async () => {
      const files = fixtureFiles(fx, dir);
      const model = await loadModel(files.model);
      try {
        const adapters = await Promise.all(files.adapters.map((f) => model.loadLora(f)));
        const s = model.createSession({ contextSize: 128, kvCacheType: 'f32', loras: adapters.map((adapter, i) => ({ adapter, scale: fx.adapters[i].scale })) });
        const withLora = at(await s.evaluate(fx.promptTokens), fx.logitIds);
        const d = maxAbsDiff(withLora, fx.logits);
        assert.ok(d <= 1e-3, `with the adapters: max |logit diff| ${d}`);
        // Without them: llama.cpp's base logits, and far from the adapted ones (the test can fail).
        s.reset();
        s.setLoras([]);
        const base = at(await s.evaluate(fx.promptTokens), fx.logitIds);
        assert.ok(maxAbsDiff(base, fx.baseLogits) <= 1e-3, 'without the adapters');
        assert.ok(maxAbsDiff(base, fx.logits) > 0.1, 'the adapters change the logits');
        // setLoras back: the same as creating the session with them.
        s.reset();
        s.setLoras(adapters.map((adapter, i) => ({ adapter, scale: fx.adapters[i].scale })));
        assert.ok(maxAbsDiff(at(await s.evaluate(fx.promptTokens), fx.logitIds), withLora) <= 1e-6, 'setLoras');
        await s.dispose();
      } finally {
        await model.dispose();
      }
    });
  }

  it('the adapter scale: the default from loadLora, a session scale overrides it, scale 0 is the base model', async () => {
    const fx = fixtures.find((f) => f.id === 'one')!;
    const files = fixtureFiles(fx, dir);
    const model = await loadModel(files.model);
    try {
      const logits = async (loras: object[]) => {
        const s = model.createSession({ contextSize: 128, kvCacheType: 'f32', loras: loras as never });
        const l = at(await s.evaluate(fx.promptTokens), fx.logitIds);
        await s.dispose();
        return l;
      };
      const a = await model.loadLora(files.adapters[0], { scale: fx.adapters[0].scale });
      assert.strictEqual(a.scale, 0.75);
      assert.strictEqual(a.alpha, 16);
      assert.strictEqual(a.tensors, 2 * (2 * 7 + 1));
      assert.ok(maxAbsDiff(await logits([{ adapter: a }]), fx.logits) <= 1e-3);
      const b = await model.loadLora(files.adapters[0]);
      assert.ok(maxAbsDiff(await logits([{ adapter: b, scale: 0.75 }]), fx.logits) <= 1e-3);
      assert.ok(maxAbsDiff(await logits([{ adapter: b, scale: 0 }]), fx.baseLogits) <= 1e-3);
    } finally {
      await model.dispose();
    }
  });

  it('f16 and q8_0 adapters give the f32 adapter\'s logits within their rounding', async () => {
    const fx = fixtures.find((f) => f.id === 'one')!;
    const files = fixtureFiles(fx, dir);
    const model = await loadModel(files.model);
    try {
      const logits = async (type: 'f32' | 'f16' | 'q8_0') => {
        const out = path.join(dir, `rank32-${type}.gguf`);
        makeLora({ base: files.model, out, rank: 32, alpha: 32, seed: 5, std: 0.08, type });
        const adapter = await model.loadLora(out);
        const s = model.createSession({ contextSize: 128, kvCacheType: 'f32', loras: [{ adapter }] });
        const l = at(await s.evaluate(fx.promptTokens), fx.logitIds);
        await s.dispose();
        return l;
      };
      const f32 = await logits('f32');
      assert.ok(maxAbsDiff(f32, fx.baseLogits) > 0.1);
      assert.ok(maxAbsDiff(await logits('f16'), f32) <= 1e-2, 'f16');
      assert.ok(maxAbsDiff(await logits('q8_0'), f32) <= 5e-2, 'q8_0');
    } finally {
      await model.dispose();
    }
  });

  it('CLI: --lora FILE[:SCALE] (repeatable) on run gives the API\'s logits; bad scales and files are typed errors', () => {
    const fx = fixtures.find((f) => f.id === 'two')!;
    const files = fixtureFiles(fx, dir);
    const args = ['run', '-m', files.model, '-p', LORA_PROMPT, '-n', '1', '--temperature', '0', '--kv-type', 'f32', '--ctx', '128', '--logits', '1', '--json'];
    const r = cli(...args, '--lora', `${files.adapters[0]}:${fx.adapters[0].scale}`, '--lora', `${files.adapters[1]}:${fx.adapters[1].scale}`);
    assert.strictEqual(r.status, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.deepStrictEqual(out.promptTokens, fx.promptTokens);
    assert.ok(maxAbsDiff(fx.logitIds.map((id) => out.logits[0][id]), fx.logits) <= 1e-3);
    // Without a scale the adapter applies at 1: not the fixture's logits.
    const one = JSON.parse(cli(...args, '--lora', files.adapters[0]).stdout);
    assert.ok(maxAbsDiff(fx.logitIds.map((id) => one.logits[0][id]), fx.logits) > 1e-2);
    for (const [bad, code] of [[`${files.adapters[0]}:-1`, 'ERR_INVALID_ARGUMENT'], [path.join(dir, 'none.gguf'), 'ERR_IO'], [files.model, 'ERR_MODEL_INVALID']]) {
      const e = cli(...args, '--lora', bad);
      assert.strictEqual(e.status, 1, e.stderr);
      assert.strictEqual(JSON.parse(e.stdout).error.code, code, bad);
    }
    // ppl and simulate pass the adapters through to their sessions.
    const text = path.join(dir, 'text.txt');
    fs.writeFileSync(text, LORA_PROMPT.repeat(4));
    const ppl = (...extra: string[]) => {
      const p = cli('ppl', '-m', files.model, '--text', text, '--ctx', '64', '--json', ...extra);
      assert.strictEqual(p.status, 0, p.stderr);
      return JSON.parse(p.stdout).ppl as number;
    };
    assert.notStrictEqual(ppl('--lora', files.adapters[0]), ppl());
    const sim = cli('simulate', '-m', files.model, '--text', text, '--ctx', '64', '--json', '--lora', files.adapters[1]);
    assert.strictEqual(sim.status, 0, sim.stderr);
    for (const cmd of ['run', 'ppl', 'simulate', 'bench', 'chat']) {
      const h = cli(cmd, '--help');
      assert.match(h.stdout + h.stderr, /--lora <FILE\[:SCALE\]>/, cmd);
    }
  });

  // llama.cpp 3.22.1 cannot load make-model's phi3 files (bench/arch-fixtures.ts), so phi3's fused
  // attn_qkv and gate_up adapters are checked between the two layouts: the standard layout (matmul +
  // adapter) and the DIP layout (gathered rows + the adapter in its original orientation) must
  // agree, and the adapter must matter.
  it('phi3 (fused qkv and gate_up): the standard and DIP layouts agree with the adapter', async () => {
    const src = path.join(dir, 'phi3.gguf'), dip = path.join(dir, 'phi3.dip.gguf'), ad = path.join(dir, 'phi3-lora.gguf');
    makeModel({ out: src, arch: 'phi3', dim: 64, layers: 2, heads: 4, kvHeads: 4, ffn: 128, vocab: 300, ctx: 64, seed: 8 });
    makeLora({ base: src, out: ad, rank: 8, alpha: 8, seed: 12, std: 0.1 });
    await convert(src, dip, { type: 'f32' });
    const tokens = [1, 17, 42, 99, 250];
    const logits = async (file: string, withLora: boolean) => {
      const model = await loadModel(file);
      try {
        const loras = withLora ? [{ adapter: await model.loadLora(ad) }] : [];
        // attn_qkv, attn_output, the fused ffn_up and ffn_down of 2 layers, and the head: 9 pairs.
        if (withLora) assert.strictEqual(loras[0].adapter.tensors, 18);
        const s = model.createSession({ contextSize: 64, kvCacheType: 'f32', loras });
        return (await s.evaluate(tokens)).slice();
      } finally {
        await model.dispose();
      }
    };
    const std = await logits(src, true), dipl = await logits(dip, true);
    assert.ok(maxAbsDiff(std, dipl) <= 1e-4, `${maxAbsDiff(std, dipl)}`);
    assert.ok(maxAbsDiff(std, await logits(src, false)) > 1e-2);
  });

  describe('the sparse path (DIP layout under a memory budget)', () => {
    let model: Model;
    let fx: LoraFixture;
    let files: { model: string; adapters: string[] };
    let mlpBytes: number, adapterBytes: number;
    before(async () => {
      fx = fixtures.find((f) => f.id === 'one')!;
      files = fixtureFiles(fx, dir);
      const dip = path.join(dir, 'one.dip.gguf');
      await convert(files.model, dip, { type: 'f32' });
      // The static weights, the KV cache (128 f16 positions), a layer's buffer, the adapter of the
      // fixture (its A and B in f32: (n_in + n_out) * rank floats per matrix) and half the column rows
      // (MLP and attention).
      const split = splitBytes(readGguf(dip));
      mlpBytes = split.mlp + split.attn;
      const { dim, ffn, layers, heads } = fx.model;
      const kvDim = fx.model.kvHeads! * (dim / heads);
      const perLayer = (dim + dim) + 2 * (dim + kvDim) + (dim + dim) + 2 * (dim + ffn) + (ffn + dim);
      adapterBytes = (perLayer * layers + dim + 32000) * fx.adapters[0].rank! * 4;
      const kv = 2 * layers * 128 * kvDim * 2;
      const scratch = await sessionScratch(dip, 128);
      model = await loadModel(dip, { memoryBudget: split.static + kv + scratch + split.mlpLayer + adapterBytes + (split.mlp + split.attn) / 2 });
    });
    after(() => model.dispose());

    it('dense and DIP at density 1 with the adapter equal llama.cpp', async () => {
      const adapter = await model.loadLora(files.adapters[0], { scale: fx.adapters[0].scale });
      for (const sparsity of [{ method: 'dense' }, { method: 'dip', density: 1 }, { method: 'dip-ca', density: 1 }]) {
        const s = model.createSession({ contextSize: 128, kvCacheType: 'f32', sparsity: sparsity as never, loras: [{ adapter }] });
        const d = maxAbsDiff(at(await s.evaluate(fx.promptTokens), fx.logitIds), fx.logits);
        assert.ok(d <= 1e-3, `${sparsity.method}: ${d}`);
        await s.dispose();
      }
      adapter.dispose();
    });

    // One token through a one-adapter-matrix adapter on the last layer's ffn_down: the h-mask of that
    // layer does not depend on the adapter. An adapter whose A keeps only the kept columns of h (the
    // rest zeroed, from the recorded mask) must give the same logits as the full adapter, which
    // differs from it on the masked columns: the adapter saw m ⊙ h, computed only on the kept columns.
    it('on a DIP layer at density 0.5 the adapter sees the masked input only', async () => {
      const last = fx.model.layers - 1;
      const name = `blk.${last}.ffn_down.weight`;
      const rank = 4, F = fx.model.ffn, D = fx.model.dim;
      const aDims = [F, rank], bDims = [rank, D];
      const A = loraValues(9, `${name}.lora_a`, aDims, 0.5), B = loraValues(9, `${name}.lora_b`, bDims, 0.5);
      const write = (file: string, a: Float32Array) => {
        const w = new GgufWriter(file);
        w.addString('general.architecture', 'llama');
        w.addString('general.type', 'adapter');
        w.addString('adapter.type', 'lora');
        w.addTensor(`${name}.lora_a`, aDims, GGML_TYPE.F32);
        w.addTensor(`${name}.lora_b`, bDims, GGML_TYPE.F32);
        w.writeHeader();
        w.writeTensorData(`${name}.lora_a`, a);
        w.writeTensorData(`${name}.lora_b`, B);
        w.close();
        return file;
      };
      const token = [fx.promptTokens[0]];
      const sparsity = { method: 'dip', keepX: 0.5, keepH: 0.5 } as const;
      const run = async (file: string | undefined, record = false) => {
        const loras = file ? [{ adapter: await model.loadLora(file) }] : [];
        const s = model.createSession({ contextSize: 16, kvCacheType: 'f32', sparsity, loras, record });
        const l = (await s.evaluate(token)).slice();
        const trace = record ? s.trace() : undefined;
        await s.dispose();
        loras.forEach((x) => x.adapter.dispose());
        return { l, trace };
      };
      const full = await run(write(path.join(dir, 'down-full.gguf'), A), true);
      const mask = full.trace!.masks![(0 * fx.model.layers + last) * 2 + 1];
      assert.strictEqual(mask.length, F / 2);
      const kept = new Set(mask);
      const masked = Float32Array.from(A, (v, i) => (kept.has(i % F) ? v : 0));  // A is [rank rows][F]
      const onlyKept = await run(write(path.join(dir, 'down-kept.gguf'), masked));
      const dropped = Float32Array.from(A, (v, i) => (kept.has(i % F) ? 0 : v));
      const onlyDropped = await run(write(path.join(dir, 'down-dropped.gguf'), dropped));
      const none = await run(undefined);
      assert.ok(maxAbsDiff(full.l, onlyKept.l) <= 1e-5, `the kept columns alone: ${maxAbsDiff(full.l, onlyKept.l)}`);
      assert.ok(maxAbsDiff(onlyDropped.l, none.l) <= 1e-6, 'the masked columns contribute nothing');
      assert.ok(maxAbsDiff(full.l, none.l) > 1e-2, `the adapter matters: ${maxAbsDiff(full.l, none.l)}`);
    });

    it('the adapters loaded when a session is made are taken out of its column cache share', async () => {
      const s0 = model.createSession({ contextSize: 128 });
      const before = s0.cacheFraction;
      assert.strictEqual(before, 1);
      await s0.dispose();
      const adapter = await model.loadLora(files.adapters[0]);
      assert.strictEqual(adapter.bytes, adapterBytes);
      const s1 = model.createSession({ contextSize: 128, loras: [{ adapter }] });
      assert.strictEqual(model.memory().budget!.adapters, adapterBytes);
      assert.ok(Math.abs(s1.cacheFraction - 0.5) < 1e-9, `${before} -> ${s1.cacheFraction} (${mlpBytes} bytes of MLP)`);
      // An adapter loaded after the session was made does not fit what it set aside.
      const later = await model.loadLora(files.adapters[0]);
      assert.match(await codeOf((async () => s1.setLoras([{ adapter }, { adapter: later }]))()), /^ERR_BUDGET_TOO_SMALL/);
      s1.setLoras([]);
      s1.setLoras([{ adapter: later }]);
      await s1.dispose();
      adapter.dispose();
      later.dispose();
    });
  });

  describe('hostile adapters and options give typed errors', () => {
    let model: Model;
    let base: string;
    before(async () => {
      base = tmpFile('lora-hostile-base.gguf');
      makeModel({ out: base, arch: 'llama', dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 300, ctx: 64, seed: 3 });
      model = await loadModel(base);
    });
    after(async () => {
      await model.dispose();
      fs.rmSync(base, { force: true });
    });
    const adapterFile = (name: string, build: (w: GgufWriter) => void) => {
      const file = path.join(dir, name);
      const w = new GgufWriter(file);
      build(w);
      w.close();
      return file;
    };
    const meta = (w: GgufWriter, arch = 'llama') => {
      w.addString('general.architecture', arch);
      w.addString('general.type', 'adapter');
      w.addString('adapter.type', 'lora');
    };
    const pair = (w: GgufWriter, name: string, a: number[], b: number[], type: number = GGML_TYPE.F32) => {
      w.addTensor(`${name}.lora_a`, a, type);
      w.addTensor(`${name}.lora_b`, b, type);
    };
    const finish = (w: GgufWriter, names: [string, number][]) => {
      w.writeHeader();
      for (const [n, bytes] of names) w.writeTensorData(n, new Uint8Array(bytes));
    };

    it('another base: an adapter made for another architecture, or for other shapes', async () => {
      const other = tmpFile('lora-other-base.gguf');
      makeModel({ out: other, arch: 'llama', dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64, vocab: 300, ctx: 64, seed: 3 });
      const forOther = path.join(dir, 'for-other.gguf');
      makeLora({ base: other, out: forOther, rank: 4 });
      fs.rmSync(other, { force: true });
      assert.match(await codeOf(model.loadLora(forOther)), /^ERR_MODEL_INVALID: .*lora_a' has shape \[32, 4\], expected \[64, rank\]/);
      const qwen = adapterFile('qwen.gguf', (w) => { meta(w, 'qwen2'); pair(w, 'blk.0.attn_q.weight', [64, 4], [4, 64]); finish(w, [['blk.0.attn_q.weight.lora_a', 1024], ['blk.0.attn_q.weight.lora_b', 1024]]); });
      assert.match(await codeOf(model.loadLora(qwen)), /^ERR_MODEL_INVALID: .*architecture 'qwen2' but the model is 'llama'/);
      assert.match(await codeOf(model.loadLora(base)), /^ERR_MODEL_INVALID: .*not an adapter/);
    });

    it('shape mismatches, unknown targets, unpaired tensors, no tensors', async () => {
      const cases: [string, (w: GgufWriter) => void, RegExp][] = [
        ['rank', (w) => { meta(w); pair(w, 'blk.0.attn_q.weight', [64, 4], [8, 64]); finish(w, [['blk.0.attn_q.weight.lora_a', 1024], ['blk.0.attn_q.weight.lora_b', 2048]]); }, /lora_b' has shape \[8, 64\], expected \[4, 64\]/],
        ['n_out', (w) => { meta(w); pair(w, 'blk.0.attn_k.weight', [64, 4], [4, 64]); finish(w, [['blk.0.attn_k.weight.lora_a', 1024], ['blk.0.attn_k.weight.lora_b', 1024]]); }, /expected \[4, 32\]/],
        ['block', (w) => { meta(w); pair(w, 'blk.2.attn_q.weight', [64, 4], [4, 64]); finish(w, [['blk.2.attn_q.weight.lora_a', 1024], ['blk.2.attn_q.weight.lora_b', 1024]]); }, /targets 'blk\.2\.attn_q\.weight', which this llama model does not have/],
        ['qkv', (w) => { meta(w); pair(w, 'blk.0.attn_qkv.weight', [64, 4], [4, 128]); finish(w, [['blk.0.attn_qkv.weight.lora_a', 1024], ['blk.0.attn_qkv.weight.lora_b', 2048]]); }, /does not have/],
        ['unpaired', (w) => { meta(w); w.addTensor('blk.0.attn_q.weight.lora_b', [4, 64], GGML_TYPE.F32); finish(w, [['blk.0.attn_q.weight.lora_b', 1024]]); }, /lora_a' is missing/],
        ['other-tensor', (w) => { meta(w); w.addTensor('blk.0.attn_q.weight', [64, 64], GGML_TYPE.F32); finish(w, [['blk.0.attn_q.weight', 16384]]); }, /neither a \.lora_a nor a \.lora_b/],
        ['empty', (w) => { meta(w); w.writeHeader(); }, /has no LoRA tensors/],
        ['alpha', (w) => { meta(w); w.addF32('adapter.lora.alpha', NaN); pair(w, 'blk.0.attn_q.weight', [64, 4], [4, 64]); finish(w, [['blk.0.attn_q.weight.lora_a', 1024], ['blk.0.attn_q.weight.lora_b', 1024]]); }, /alpha must be finite/],
        ['adapter-type', (w) => { w.addString('general.architecture', 'llama'); w.addString('general.type', 'adapter'); w.addString('adapter.type', 'control_vector'); w.writeHeader(); }, /adapter\.type is 'control_vector'/],
      ];
      for (const [name, build, re] of cases) {
        const msg = await codeOf(model.loadLora(adapterFile(`${name}.gguf`, build)));
        assert.match(msg, /^ERR_MODEL_INVALID: /, name);
        assert.match(msg, re, name);
      }
    });

    it('a type it cannot compute with, and a truncated file', async () => {
      const iq = adapterFile('iq.gguf', (w) => { meta(w); pair(w, 'blk.0.attn_q.weight', [64, 32], [32, 64], GGML_TYPE.IQ4_NL); finish(w, [['blk.0.attn_q.weight.lora_a', 36 * 32], ['blk.0.attn_q.weight.lora_b', 18 * 64]]); });
      assert.match(await codeOf(model.loadLora(iq)), /^ERR_UNSUPPORTED_TYPE: .*iq4_nl/);
      const good = path.join(dir, 'good.gguf');
      makeLora({ base, out: good, rank: 4 });
      const bytes = fs.readFileSync(good);
      const cut = path.join(dir, 'cut.gguf');
      fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
      assert.match(await codeOf(model.loadLora(cut)), /^ERR_GGUF_TRUNCATED/);
      fs.writeFileSync(cut, bytes.subarray(0, 40));
      assert.match(await codeOf(model.loadLora(cut)), /^ERR_GGUF_TRUNCATED/);
      assert.match(await codeOf(model.loadLora(path.join(dir, 'missing.gguf'))), /^ERR_IO/);
    });

    it('NaN, negative and infinite scales, foreign and disposed adapters, setLoras while generating', async () => {
      const good = path.join(dir, 'good2.gguf');
      makeLora({ base, out: good, rank: 4 });
      for (const scale of [NaN, -1, Infinity, '1'])
        assert.match(await codeOf(model.loadLora(good, { scale: scale as number })), /^ERR_INVALID_ARGUMENT: scale/);
      const adapter = await model.loadLora(good);
      for (const scale of [NaN, -0.5, -Infinity]) {
        assert.throws(() => model.createSession({ loras: [{ adapter, scale }] }), { code: 'ERR_INVALID_ARGUMENT' });
        const s = model.createSession();
        assert.throws(() => s.setLoras([{ adapter, scale }]), { code: 'ERR_INVALID_ARGUMENT' });
        await s.dispose();
      }
      assert.throws(() => model.createSession({ loras: [{ adapter: {} as never }] }), { code: 'ERR_INVALID_ARGUMENT' });
      assert.throws(() => model.createSession({ loras: adapter as never }), { code: 'ERR_INVALID_ARGUMENT' });
      const other = await loadModel(base);
      try {
        assert.throws(() => other.createSession({ loras: [{ adapter }] }), /loaded for another model/);
      } finally {
        await other.dispose();
      }
      const s = model.createSession({ loras: [{ adapter }] });
      const gen = s.generate([1, 5, 9], { maxTokens: 4 });
      await gen.next();
      assert.throws(() => s.setLoras([]), { code: 'ERR_BUSY' });
      await gen.return(undefined);
      s.setLoras([]);
      assert.deepStrictEqual(s.loras, []);
      adapter.dispose();
      adapter.dispose();  // idempotent
      assert.throws(() => s.setLoras([{ adapter }]), { code: 'ERR_DISPOSED' });
      await s.dispose();
    });
  });
});
