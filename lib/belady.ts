// Belady's optimal column cache, offline, for analysis: on a recorded mask sequence, with the same
// mask-first admission as the real cache, evict the cached column whose next use is farthest (never:
// infinitely far; ties: the lower index). Its hit rate is the best any policy could do on that trace.

/** Hits of the optimal policy over masks[0..T) (ascending unit indices) with `capacity` slots. */
export function beladyHits(masks: readonly ArrayLike<number>[], capacity: number): { hits: number; uses: number } {
  // uses of each unit, in time order, and a cursor to the next one after "now"
  const times = new Map<number, number[]>();
  masks.forEach((m, t) => {
    for (let i = 0; i < m.length; i++) {
      let list = times.get(m[i]);
      if (!list) times.set(m[i], (list = []));
      list.push(t);
    }
  });
  const cursor = new Map<number, number>();
  const nextUse = (u: number, t: number) => {
    const list = times.get(u)!;
    let c = cursor.get(u) ?? 0;
    while (c < list.length && list[c] <= t) c++;
    cursor.set(u, c);
    return c < list.length ? list[c] : Infinity;
  };
  const cached = new Set<number>();
  let hits = 0, uses = 0;
  masks.forEach((m, t) => {
    const inMask = new Set<number>();
    const fresh: number[] = [];
    for (let i = 0; i < m.length; i++) {
      inMask.add(m[i]);
      if (cached.has(m[i])) hits++;
      else fresh.push(m[i]);
    }
    uses += m.length;
    if (capacity <= 0) return;
    const evict = Math.max(0, cached.size + fresh.length - capacity);
    if (evict > 0) {
      const candidates = [...cached].filter((u) => !inMask.has(u)).map((u) => ({ u, next: nextUse(u, t) }));
      candidates.sort((a, b) => (a.next !== b.next ? b.next - a.next : a.u - b.u));
      for (const c of candidates.slice(0, evict)) cached.delete(c.u);
    }
    for (const u of fresh) if (cached.size < capacity) cached.add(u);
  });
  return { hits, uses };
}
