// Random-weight models of every architecture and every computable tensor type (made by
// scripts/make-model.ts with one seed, so all types quantize the same weights):
// - each runs prompt evaluation and generation;
// - its logits stay within the documented bound of the F32 model's (QUANT_BOUNDS, relative to the
//   largest F32 logit; measured on these random-weight models, where 4-bit noise is at its worst);
// - every SIMD ISA gives the scalar twin's logits (summation order for float types; for integer
//   types the rare flip of a rounded activation after a tiny upstream difference).
import * as assert from 'assert';
import { kernels, loadModel } from '../../lib';
import { ggmlType } from '../../lib/ggml-types';
import { ARCHS, makeModel, WEIGHT_TYPES, WeightType } from '../../scripts/make-model';
import { tmpFile } from '../helpers';

// Measured worst case on these shapes (llama/qwen2/phi3; the qwen3 and gemma ones are within them): f16 1.2e-3, bf16 7.7e-3, q8_0 3.3e-2,
// q6_k 0.10, q4_0 0.36, q4_k 0.34, q5_0 0.20, q5_1 0.18, q5_k 0.18, q4_1 0.49, q3_k 0.60, q2_k 1.16
// (2 bits on random weights: the logits keep little of the f32 model's).
export const QUANT_BOUNDS: Record<WeightType, number> = {
  f32: 0, f16: 4e-3, bf16: 2e-2, q8_0: 6e-2, q6_k: 0.18, q4_0: 0.55, q4_k: 0.55,
  q5_0: 0.3, q5_1: 0.3, q5_k: 0.3, q4_1: 0.75, q3_k: 0.9, q2_k: 1.8,
};
// Kernel for kernel, SIMD and scalar agree to float summation order (native/test/test_kernels.cc).
// Through a whole model the integer types can differ more: a last-bit difference upstream can
// flip the rounding of one quantized activation (seen up to 1.5e-2 on NEON for q4_k).
const SIMD_BOUND: Partial<Record<WeightType, number>> = {
  f32: 1e-5, f16: 1e-5, bf16: 1e-5, q8_0: 3e-2, q6_k: 3e-2, q4_0: 3e-2, q4_k: 3e-2,
  q4_1: 3e-2, q5_0: 3e-2, q5_1: 3e-2, q2_k: 5e-2, q3_k: 5e-2, q5_k: 3e-2,
};
// Gemma's GeGLU rounds the GELU's input and output to f16, as llama.cpp's table does: a last-bit
// difference upstream can flip one rounding there, even for float weights (seen up to 3.2e-5).
const GEGLU_FLOAT_SIMD_BOUND = 1e-4;
const simdBound = (arch: string, type: WeightType): number =>
  arch.startsWith('gemma') ? Math.max(SIMD_BOUND[type]!, GEGLU_FLOAT_SIMD_BOUND) : SIMD_BOUND[type]!;
// The types make-model writes that the engine computes with (make-model also writes types that only
// convert reads).
const TYPES = WEIGHT_TYPES.filter((t) => ggmlType(t).canCompute);
const PROMPT = Array.from({ length: 12 }, (_, i) => 3 + ((i * 37) % 300));

async function logitsOf(path: string): Promise<Float32Array> {
  const m = await loadModel(path);
  const s = m.createSession({ kvCacheType: 'f32', contextSize: 64 });
  const l = (await s.evaluate(PROMPT, { allLogits: true })).slice();
  let n = 0;
  for await (const p of s.generate([], { maxTokens: 8, temperature: 0 })) if (p.token >= 0) n++;
  assert.ok(n > 0, 'generates');
  await m.dispose();
  return l;
}

function relDiff(a: Float32Array, ref: Float32Array): number {
  let mx = 0, d = 0;
  for (let i = 0; i < ref.length; i++) {
    mx = Math.max(mx, Math.abs(ref[i]));
    d = Math.max(d, Math.abs(a[i] - ref[i]));
  }
  return d / mx;
}

describe('45 architectures x tensor types (random weights)', function () {
  this.timeout(120000);
  const isas = kernels.info().available;
  const best = kernels.info().isa;
  after(() => kernels.setIsa(best));

  for (const arch of ARCHS) {
    describe(arch, () => {
      let ref: Float32Array;
      const paths: Partial<Record<WeightType, string>> = {};
      before(() => {
        for (const type of TYPES) {
          paths[type] = tmpFile(`${arch}-${type}.gguf`);
          makeModel({ out: paths[type]!, arch, dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512, vocab: 320, ctx: 128, type, seed: 3, tied: arch === 'qwen2' });
        }
      });
      for (const type of TYPES) {
        it(`${type}: runs, within ${QUANT_BOUNDS[type]} of f32, every ISA equals scalar`, async () => {
          kernels.setIsa('scalar');
          const scalar = await logitsOf(paths[type]!);
          if (type === 'f32') ref = scalar;
          const err = relDiff(scalar, ref);
          assert.ok(err <= QUANT_BOUNDS[type]!, `relative logit error ${err} > ${QUANT_BOUNDS[type]}`);
          for (const isa of isas.filter((i) => i !== 'scalar')) {
            assert.ok(kernels.setIsa(isa));
            const d = relDiff(await logitsOf(paths[type]!), scalar);
            assert.ok(d <= simdBound(arch, type), `${isa} vs scalar: ${d}`);
          }
          kernels.setIsa(best);
        });
      }
    });
  }
});
