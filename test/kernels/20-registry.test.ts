// The kernel registry through the binding: kernels.info() lists every compiled (op, type, isa) kernel
// and which one dispatch runs, kernels.types() gives the type traits lib/ggml-types.ts is built from.
import * as assert from 'assert';
import { FlashdipError, kernels } from '../../lib';
import { GGML_TYPE, ggmlRowBytes, ggmlType, ggmlTypes } from '../../lib/ggml-types';

const FALLBACK: Record<string, string> = { avx2: 'scalar', neon: 'scalar', 'neon-dotprod': 'neon' };

describe('20 kernel registry', () => {
  const initial = kernels.info().isa;
  after(() => kernels.setIsa(initial));

  it('lists every kernel with a scalar twin, the gather and GEMV kernels among them', () => {
    const { kernels: list, available } = kernels.info();
    assert.ok(list.length > 0);
    const key = (k: { op: string; type: string }) => `${k.op}/${k.type}`;
    const scalar = new Set(list.filter((k) => k.isa === 'scalar').map(key));
    for (const k of list) {
      assert.ok(scalar.has(key(k)), `${k.function} has no scalar twin`);
      assert.strictEqual(k.available, available.includes(k.isa), k.function);
      assert.strictEqual(k.function, k.type ? `${k.op}_${k.type}__${k.isa.replace('-', '_')}` : `${k.op}__${k.isa}`);
    }
    const ops = new Set(list.map((k) => k.op));
    for (const op of ['gemv', 'gemm', 'gather', 'rmsnorm', 'attn_scores', 'collect_range']) assert.ok(ops.has(op), op);
    assert.deepStrictEqual(list.filter((k) => k.op === 'gather' && k.isa === 'scalar').map((k) => k.type).sort(), ['f16', 'f32', 'q4_0', 'q4_k', 'q5_k', 'q6_k', 'q8_0']);
  });

  it('marks as active, per (op, type), the ISA in use or the ISA it falls back to, and follows setIsa', () => {
    for (const isa of kernels.info().available) {
      assert.ok(kernels.setIsa(isa));
      const { kernels: list } = kernels.info();
      const chain: string[] = [isa];
      while (FALLBACK[chain[chain.length - 1]]) chain.push(FALLBACK[chain[chain.length - 1]]);
      for (const k of list) {
        const same = list.filter((o) => o.op === k.op && o.type === k.type);
        const want = chain.map((i) => same.find((o) => o.isa === i)).find(Boolean);
        assert.strictEqual(k.active, k === want, `${isa}: ${k.function} active=${k.active}`);
      }
    }
  });

  it('lib/ggml-types comes from the native type traits', () => {
    const types = ggmlTypes();
    assert.strictEqual(types.length, Object.keys(GGML_TYPE).length);
    for (const [name, id] of Object.entries(GGML_TYPE)) {
      assert.strictEqual(ggmlType(id).name, name.toLowerCase());
      assert.strictEqual(ggmlType(name), ggmlType(id));
    }
    const q4k = ggmlType('Q4_K');
    assert.deepStrictEqual([q4k.blockSize, q4k.blockBytes, q4k.canCompute, q4k.gatherRows], [256, 144, true, true]);
    assert.strictEqual(ggmlRowBytes(GGML_TYPE.Q8_0, 64), 68);
    const registered = (op: string) => new Set(kernels.info().kernels.filter((k) => k.op === op).map((k) => k.type));
    for (const t of types) {
      assert.strictEqual(t.canCompute, registered('gemv').has(t.name), `${t.name} canCompute`);
      assert.strictEqual(t.gatherRows, registered('gather').has(t.name), `${t.name} gatherRows`);
    }
    assert.deepStrictEqual(kernels.types(), types.map((t) => ({ ...t })));
    assert.throws(() => ggmlType(99), (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_UNSUPPORTED_TYPE');
  });
});
