// The merge queue of both BPE loops: a binary min-heap on (key, left), with two payload fields,
// kept in typed arrays so a 500 KB text (one SentencePiece fragment) makes no garbage per pair.
// SentencePiece pushes -score (best score first), BPE pushes the merge rank; ties go to the
// leftmost pair, as llama.cpp's comparators order them.
export class PairQueue {
  size = 0;
  private key = new Float64Array(64);
  private lefts = new Int32Array(64);
  private rights = new Int32Array(64);
  private a = new Int32Array(64);
  private b = new Int32Array(64);

  // The entry popped last.
  topLeft = 0;
  topRight = 0;
  topA = 0;
  topB = 0;

  clear(): void {
    this.size = 0;
  }

  push(key: number, left: number, right: number, a: number, b: number): void {
    if (this.size === this.key.length) this.grow();
    const K = this.key, L = this.lefts, R = this.rights, A = this.a, B = this.b;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (K[p] < key || (K[p] === key && L[p] <= left)) break;
      K[i] = K[p]; L[i] = L[p]; R[i] = R[p]; A[i] = A[p]; B[i] = B[p];
      i = p;
    }
    K[i] = key; L[i] = left; R[i] = right; A[i] = a; B[i] = b;
  }

  /** Removes the first entry into top*; false when empty. */
  pop(): boolean {
    if (this.size === 0) return false;
    const K = this.key, L = this.lefts, R = this.rights, A = this.a, B = this.b;
    this.topLeft = L[0]; this.topRight = R[0]; this.topA = A[0]; this.topB = B[0];
    const n = --this.size;
    if (n === 0) return true;
    const key = K[n], left = L[n], right = R[n], a = A[n], b = B[n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (K[r] < K[c] || (K[r] === K[c] && L[r] < L[c]))) c = r;
      if (key < K[c] || (key === K[c] && left <= L[c])) break;
      K[i] = K[c]; L[i] = L[c]; R[i] = R[c]; A[i] = A[c]; B[i] = B[c];
      i = c;
    }
    K[i] = key; L[i] = left; R[i] = right; A[i] = a; B[i] = b;
    return true;
  }

  private grow(): void {
    const n = this.key.length * 2;
    const k = new Float64Array(n); k.set(this.key); this.key = k;
    const l = new Int32Array(n); l.set(this.lefts); this.lefts = l;
    const r = new Int32Array(n); r.set(this.rights); this.rights = r;
    const a = new Int32Array(n); a.set(this.a); this.a = a;
    const b = new Int32Array(n); b.set(this.b); this.b = b;
  }
}
