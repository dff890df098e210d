import * as assert from 'assert';
import { FlashdipError } from '../lib/errors';
import { DEFAULT_SAMPLER_OPTIONS, Sampler, SamplerOptions, Xoshiro128, argmax, resolveSamplerOptions } from '../lib/sampler';

// Only the filter under test: every other filter disabled.
const plain: SamplerOptions = { temperature: 1, topK: 0, topP: 1, minP: 0 };

function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, Math.log);
}

// Frequencies of each token over `draws` samples.
function histogram(s: Sampler, logits: Float32Array, draws: number): number[] {
  const h = new Array(logits.length).fill(0);
  for (let i = 0; i < draws; i++) h[s.sample(logits)]++;
  return h.map((c) => c / draws);
}

// The set of tokens that can be drawn (non-zero frequency).
function support(s: Sampler, logits: Float32Array, draws = 4000): number[] {
  return histogram(s, logits, draws).flatMap((f, i) => (f > 0 ? [i] : []));
}

function isInvalid(fn: () => unknown, name: string) {
  assert.throws(fn, (e: unknown) => e instanceof FlashdipError && e.code === 'ERR_INVALID_ARGUMENT' && e.message.startsWith(name));
}

describe('sampler', () => {
  describe('greedy (temperature 0)', () => {
    it('picks the argmax, the lowest index on ties, never NaN', () => {
      const s = new Sampler({ temperature: 0 });
      assert.strictEqual(s.sample(new Float32Array([1, 3, 3, 2])), 1);
      assert.strictEqual(s.sample(new Float32Array([-5, -1, -1])), 1);
      assert.strictEqual(s.sample(new Float32Array([NaN, -Infinity, 0.5, NaN])), 2);
      assert.strictEqual(argmax(new Float32Array([2, 2, 2])), 0);
      assert.throws(() => s.sample(new Float32Array([NaN, -Infinity])), FlashdipError);
    });

    it('ignores the other filters and the PRNG', () => {
      const logits = new Float32Array([0.1, 0.7, 0.2, 0.7]);
      for (const seed of [1, 2, 3]) {
        const s = new Sampler({ temperature: 0, topK: 1, topP: 0.1, minP: 0.9, seed });
        assert.strictEqual(s.sample(logits), 1);
      }
    });

    it('top-k 1 is greedy at any temperature', () => {
      const s = new Sampler({ ...plain, topK: 1, temperature: 5, seed: 9 });
      const logits = new Float32Array([0.1, 0.7, 0.2, 0.7]);
      for (let i = 0; i < 100; i++) assert.strictEqual(s.sample(logits), 1);
    });
  });

  describe('PRNG', () => {
    it('same seed gives the same tokens; another seed others; reset() restarts', () => {
      const logits = Float32Array.from({ length: 500 }, (_, i) => Math.sin(i * 12.9898) * 3);
      const run = (s: Sampler) => Array.from({ length: 200 }, () => s.sampleAndAccept(logits));
      const a = new Sampler({ seed: 42, repeatPenalty: 1.1 });
      const b = new Sampler({ seed: 42, repeatPenalty: 1.1 });
      const c = new Sampler({ seed: 43, repeatPenalty: 1.1 });
      const ra = run(a);
      assert.deepStrictEqual(run(b), ra);
      assert.notDeepStrictEqual(run(c), ra);
      a.reset();
      assert.deepStrictEqual(run(a), ra);
    });

    it('xoshiro128** is uniform enough and seeds with both halves of a safe integer', () => {
      const r = new Xoshiro128(7);
      const bins = new Array(10).fill(0);
      for (let i = 0; i < 100000; i++) {
        const u = r.nextFloat();
        assert.ok(u >= 0 && u < 1);
        bins[Math.floor(u * 10)]++;
      }
      for (const b of bins) assert.ok(Math.abs(b - 10000) < 500, `bin ${b}`);
      assert.notStrictEqual(new Xoshiro128(1).nextU32(), new Xoshiro128(1 + 2 ** 32).nextU32());
    });
  });

  describe('filters, against hand-computed cases', () => {
    // p = [0.5, 0.3, 0.15, 0.05]
    const p4 = logitsOf([0.5, 0.3, 0.15, 0.05]);

    it('top-k keeps the k largest logits, lower index on ties', () => {
      assert.deepStrictEqual(support(new Sampler({ ...plain, topK: 2, seed: 1 }), new Float32Array([1, 5, 3, 4, 2])), [1, 3]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topK: 2, seed: 1 }), new Float32Array([1, 1, 1, 1])), [0, 1]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topK: 10, seed: 1 }), p4), [0, 1, 2, 3]);
    });

    it('top-p keeps the shortest prefix reaching p', () => {
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.45, seed: 1 }), p4), [0]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.75, seed: 1 }), p4), [0, 1]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.81, seed: 1 }), p4), [0, 1, 2]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.99, seed: 1 }), p4), [0, 1, 2, 3]);
    });

    it('top-p without top-k: ties by index, -Infinity and NaN never kept', () => {
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.5, seed: 1 }), new Float32Array([1, 1, 1, 1])), [0, 1]);
      const odd = new Float32Array([-Infinity, 2, NaN, 2, 1]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.5, seed: 1 }), odd), [1, 3]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.99, seed: 1 }), odd), [1, 3, 4]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, seed: 1 }), odd), [1, 3, 4]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topK: 4, seed: 1 }), odd), [1, 3, 4]);
    });

    it('top-p renormalizes over the top-k survivors (top-k runs first)', () => {
      // Over the top 3: [0.5, 0.3, 0.15] / 0.95 -> cumulative 0.526, 0.842: p = 0.83 keeps 2.
      // Over all four: cumulative 0.5, 0.8, 0.95: p = 0.83 keeps 3.
      assert.deepStrictEqual(support(new Sampler({ ...plain, topK: 3, topP: 0.83, seed: 1 }), p4), [0, 1]);
      assert.deepStrictEqual(support(new Sampler({ ...plain, topP: 0.83, seed: 1 }), p4), [0, 1, 2]);
    });

    it('min-p keeps tokens with p >= minP * p_max', () => {
      assert.deepStrictEqual(support(new Sampler({ ...plain, minP: 0.2, seed: 1 }), p4), [0, 1, 2]); // >= 0.1
      assert.deepStrictEqual(support(new Sampler({ ...plain, minP: 0.5, seed: 1 }), p4), [0, 1]); // >= 0.25
      assert.deepStrictEqual(support(new Sampler({ ...plain, minP: 1, seed: 1 }), p4), [0]);
      // With top-k and top-p too: the shortest of the prefixes wins.
      assert.deepStrictEqual(support(new Sampler({ ...plain, topK: 3, topP: 0.99, minP: 0.5, seed: 1 }), p4), [0, 1]);
    });

    it('draws in proportion to the survivors probabilities', () => {
      const f = histogram(new Sampler({ ...plain, topK: 3, seed: 5 }), p4, 40000);
      // [0.5, 0.3, 0.15] / 0.95
      for (const [i, want] of [[0, 0.5 / 0.95], [1, 0.3 / 0.95], [2, 0.15 / 0.95], [3, 0]]) {
        assert.ok(Math.abs(f[i] - want) < 0.01, `token ${i}: ${f[i]} vs ${want}`);
      }
    });

    it('temperature scales the logits, after the filters', () => {
      const two = logitsOf([0.25, 0.75]);
      const at = (temperature: number) => histogram(new Sampler({ ...plain, temperature, seed: 3 }), two, 40000)[1];
      assert.ok(Math.abs(at(1) - 0.75) < 0.01);
      assert.ok(Math.abs(at(0.5) - 0.9) < 0.01); // 9:1
      assert.ok(Math.abs(at(1e6) - 0.5) < 0.01);
      // min-p decided on the untempered logits: a huge temperature flattens, but token 3 stays out.
      const f = histogram(new Sampler({ ...plain, minP: 0.2, temperature: 1e6, seed: 4 }), p4, 30000);
      assert.strictEqual(f[3], 0);
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(f[i] - 1 / 3) < 0.015, `token ${i}: ${f[i]}`);
    });

    it('agrees with a brute-force sort on random logits for every filter combination', () => {
      const n = 1000;
      let state = 12345;
      const rnd = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
      const logits = Float32Array.from({ length: n }, () => (rnd() - 0.5) * 12);
      const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b);
      const m = logits[order[0]];
      for (const [topK, topP, minP] of [[0, 0.5, 0], [0, 0.9, 0], [50, 0.9, 0], [0, 1, 0.01], [200, 0.95, 0.05], [7, 1, 0], [0, 0.999, 0]]) {
        const k = topK > 0 ? Math.min(topK, n) : n;
        const z = order.slice(0, k).reduce((acc, i) => acc + Math.exp(logits[i] - m), 0);
        let keep = k;
        if (topP < 1) {
          let cum = 0;
          for (let j = 0; j < k; j++) { cum += Math.exp(logits[order[j]] - m) / z; if (cum >= topP) { keep = j + 1; break; } }
        }
        if (minP > 0) keep = Math.min(keep, order.filter((i) => logits[i] >= m + Math.log(minP)).length);
        const allowed = new Set(order.slice(0, keep));
        const s = new Sampler({ temperature: 3, topK, topP, minP, seed: 11 });
        const seen = new Set<number>();
        for (let d = 0; d < 3000; d++) {
          const t = s.sample(logits);
          assert.ok(allowed.has(t), `topK ${topK} topP ${topP} minP ${minP}: token ${t} not allowed`);
          seen.add(t);
        }
        if (keep <= 20) assert.strictEqual(seen.size, keep, `topK ${topK} topP ${topP} minP ${minP}`);
      }
    });

    it('handles a 128k vocabulary with top-k without sorting it', () => {
      const n = 128 * 1024;
      const logits = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) * 10 + (i % 13) * 0.01);
      const top = new Set([...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, 40));
      const s = new Sampler({ seed: 1 }); // defaults: top-k 40, top-p 0.95, min-p 0.05
      for (let i = 0; i < 50; i++) assert.ok(top.has(s.sample(logits)));
    });
  });

  describe('penalties (llama.cpp semantics)', () => {
    const greedy = (o: SamplerOptions, history: number[], logits: number[]) => {
      const s = new Sampler({ temperature: 0, ...o });
      for (const t of history) s.accept(t);
      const x = new Float32Array(logits);
      const copy = x.slice();
      const t = s.sample(x);
      assert.deepStrictEqual(x, copy, 'logits are not modified');
      return t;
    };

    it('repeat penalty divides positive logits and multiplies negative ones', () => {
      // 2 -> 1 (divided), so 1.5 wins.
      assert.strictEqual(greedy({}, [0], [2, -2, 1.5]), 0);
      assert.strictEqual(greedy({ repeatPenalty: 2 }, [0], [2, -2, 1.5]), 2);
      // -1 -> -2 (multiplied; dividing would give -0.5 and keep token 0 ahead).
      assert.strictEqual(greedy({ repeatPenalty: 2 }, [0], [-1, -1.5]), 1);
      // A token seen several times is penalized once.
      assert.strictEqual(greedy({ repeatPenalty: 2 }, [0, 0, 0], [2, 0.9]), 0);
    });

    it('frequency counts occurrences in the window; presence counts once', () => {
      assert.strictEqual(greedy({ frequencyPenalty: 0.2 }, [0, 0, 0], [3, 2.5]), 1); // 3 - 0.6
      assert.strictEqual(greedy({ frequencyPenalty: 0.2, repeatLastN: 2 }, [0, 0, 0], [3, 2.5]), 0); // 3 - 0.4
      assert.strictEqual(greedy({ frequencyPenalty: 0.2, repeatLastN: 2 }, [0, 1, 1], [3, 2.5]), 0); // token 0 left the window
      assert.strictEqual(greedy({ presencePenalty: 0.6 }, [0, 0, 0], [3, 2.5]), 1); // 3 - 0.6
      assert.strictEqual(greedy({ presencePenalty: 0.4 }, [0, 0, 0], [3, 2.5]), 0); // 3 - 0.4, not 3 - 1.2
      assert.strictEqual(greedy({ repeatLastN: 0, repeatPenalty: 100 }, [0], [3, 2.5]), 0); // disabled
      // Tokens outside the vocabulary are ignored.
      assert.strictEqual(greedy({ repeatPenalty: 2 }, [7], [3, 2.5]), 0);
    });
  });

  describe('options', () => {
    it('fills in llama.cpp defaults', () => {
      const o = resolveSamplerOptions({ seed: 5 });
      assert.deepStrictEqual({ ...o }, { ...DEFAULT_SAMPLER_OPTIONS, seed: 5 });
      assert.ok(Number.isSafeInteger(resolveSamplerOptions().seed));
      assert.strictEqual(resolveSamplerOptions({ topK: undefined }).topK, 40);
    });

    it('rejects bad values with ERR_INVALID_ARGUMENT naming the option', () => {
      isInvalid(() => new Sampler({ temperature: -0.1 }), 'temperature');
      isInvalid(() => new Sampler({ temperature: NaN }), 'temperature');
      isInvalid(() => new Sampler({ temperature: Infinity }), 'temperature');
      isInvalid(() => new Sampler({ topK: -1 }), 'topK');
      isInvalid(() => new Sampler({ topK: 1.5 }), 'topK');
      isInvalid(() => new Sampler({ topP: 0 }), 'topP');
      isInvalid(() => new Sampler({ topP: 1.01 }), 'topP');
      isInvalid(() => new Sampler({ minP: -0.1 }), 'minP');
      isInvalid(() => new Sampler({ minP: 1.1 }), 'minP');
      isInvalid(() => new Sampler({ repeatPenalty: 0 }), 'repeatPenalty');
      isInvalid(() => new Sampler({ repeatLastN: -1 }), 'repeatLastN');
      isInvalid(() => new Sampler({ frequencyPenalty: NaN }), 'frequencyPenalty');
      isInvalid(() => new Sampler({ presencePenalty: Infinity }), 'presencePenalty');
      isInvalid(() => new Sampler({ seed: -1 }), 'seed');
      isInvalid(() => new Sampler({ seed: 0.5 }), 'seed');
      isInvalid(() => new Sampler({ top_k: 5 } as unknown as SamplerOptions), 'top_k');
      isInvalid(() => new Sampler({ topK: '5' as unknown as number }), 'topK');
      const s = new Sampler({ seed: 1 });
      isInvalid(() => s.sample([1, 2] as unknown as Float32Array), 'logits');
      isInvalid(() => s.sample(new Float32Array(0)), 'logits');
      isInvalid(() => s.accept(-1), 'token');
      isInvalid(() => s.reset(-2), 'seed');
    });
  });
});
