// The native column cache against a small, obviously-correct model of the same rules (PAPER.md
// "Column cache"), over thousands of random mask sequences: same hits, same cached sets (so the same
// evictions), never over capacity.
import * as assert from 'assert';
import { kernels } from '../../lib';
import { beladyHits } from '../../lib/belady';

type Policy = 'lru' | 'lfu' | 'none';

class ModelCache {
  readonly cached = new Set<number>();
  private readonly counter = new Map<number, number>();
  constructor(private readonly capacity: number, private readonly policy: Policy) {}

  access(mask: number[]): number {
    const inMask = new Set(mask);
    const hits = mask.filter((u) => this.cached.has(u)).length;
    if (this.policy === 'none' || this.capacity === 0) return hits;
    if (this.policy === 'lru') {
      for (const u of this.cached) if (!inMask.has(u)) this.counter.set(u, (this.counter.get(u) ?? 0) + 1);
      for (const u of mask) this.counter.set(u, 0);
    } else {
      for (const u of mask) this.counter.set(u, (this.counter.get(u) ?? 0) + 1);
    }
    const fresh = mask.filter((u) => !this.cached.has(u));
    const candidates = [...this.cached].filter((u) => !inMask.has(u));
    const c = (u: number) => this.counter.get(u) ?? 0;
    // LRU evicts the longest unused, LFU the least used; ties: the lower index first.
    candidates.sort((a, b) => (c(a) !== c(b) ? (this.policy === 'lru' ? c(b) - c(a) : c(a) - c(b)) : a - b));
    const evict = Math.min(candidates.length, Math.max(0, this.cached.size + fresh.length - this.capacity));
    for (const u of candidates.slice(0, evict)) this.cached.delete(u);
    for (const u of fresh) if (this.cached.size < this.capacity) this.cached.add(u);
    return hits;
  }
}

describe('70 column cache policies (property test against a model)', () => {
  let seed = 20261129;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const int = (n: number) => Math.floor(rnd() * n);

  for (const policy of ['lru', 'lfu', 'none'] as const) {
    it(`${policy}: 1500 random sequences give the same hits and cached sets`, () => {
      for (let trial = 0; trial < 1500; trial++) {
        const n = 1 + int(40);
        const capacity = int(n + 3);
        const steps = 1 + int(30);
        const density = rnd();
        const masks: number[][] = [];
        for (let t = 0; t < steps; t++) {
          const m: number[] = [];
          // Sometimes skewed toward low indices, so columns repeat as real activations do.
          for (let u = 0; u < n; u++) if (rnd() < (trial % 2 ? density : density * (1 - u / n) * 2)) m.push(u);
          masks.push(m);
        }
        const native = kernels.cacheSimulate(n, capacity, policy, masks.map((m) => Int32Array.from(m)));
        const model = new ModelCache(policy === 'none' ? 0 : Math.min(capacity, n), policy);
        for (let t = 0; t < steps; t++) {
          const hits = model.access(masks[t]);
          const cachedNative = [...native.cached[t]].flatMap((f, u) => (f ? [u] : []));
          const cachedModel = [...model.cached].sort((a, b) => a - b);
          const where = `trial ${trial} step ${t} (n ${n}, capacity ${capacity})`;
          assert.strictEqual(native.hits[t], hits, `hits, ${where}`);
          assert.deepStrictEqual(cachedNative, cachedModel, `cached set, ${where}`);
          assert.ok(cachedNative.length <= capacity, `over capacity, ${where}`);
        }
      }
    });
  }

  it('Belady: hand-worked sequences', () => {
    // capacity 2, masks 0 1 2 0 1 2 0: t2 evicts 1 (next use 4, not 0's 3), t3 hits 0, t4 evicts 0
    // (next use 6, not 2's 5), t5 hits 2, t6 misses: 2 hits.
    assert.deepStrictEqual(beladyHits([[0], [1], [2], [0], [1], [2], [0]], 2), { hits: 2, uses: 7 });
    assert.deepStrictEqual(beladyHits([[0], [1], [0]], 1), { hits: 0, uses: 3 });
    assert.deepStrictEqual(beladyHits([[0, 1], [0, 1, 2], [2]], 0), { hits: 0, uses: 6 });
  });

  it('Belady never has fewer hits than LRU or LFU on the same masks', () => {
    for (let trial = 0; trial < 400; trial++) {
      const n = 1 + int(30), capacity = int(n + 1), steps = 1 + int(40);
      const masks: number[][] = [];
      for (let t = 0; t < steps; t++) masks.push([...Array(n).keys()].filter((u) => rnd() < 0.4 * (1 - u / (2 * n))));
      const opt = beladyHits(masks, capacity).hits;
      for (const policy of ['lru', 'lfu'] as const) {
        const hits = kernels.cacheSimulate(n, capacity, policy, masks.map((m) => Int32Array.from(m))).hits.reduce((a, b) => a + b, 0);
        assert.ok(opt >= hits, `trial ${trial}: belady ${opt} < ${policy} ${hits}`);
      }
    }
  });

  it('top-k: the k highest scores, ties to the lower index, against a full sort', () => {
    for (let trial = 0; trial < 500; trial++) {
      const n = 1 + int(300);
      const a = Float32Array.from({ length: n }, () => (trial % 3 === 0 ? int(5) : rnd()));
      const k = int(n + 3);
      const want = [...a.keys()].sort((i, j) => (a[j] !== a[i] ? a[j] - a[i] : i - j)).slice(0, k).sort((i, j) => i - j);
      assert.deepStrictEqual([...kernels.topk(a, k)], want);
    }
  });
});
