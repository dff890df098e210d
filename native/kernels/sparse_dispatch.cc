// The ISA-independent parts of the sparse algorithms (flashdip/sparse.h): chunking of the gather rows,
// the radix select. The per-ISA kernels come from the dispatch table (sparse_kernels(), built from the
// kernel registry; it follows kernels_isa()).
#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "flashdip/kernels.h"
#include "flashdip/quants.h"
#include "flashdip/sparse.h"
#include "flashdip/sparsity.h"

namespace fd {

using sparse_impl::sparse_kernels;
using sparse_impl::SparseKernels;

// ---- gather-GEMV --------------------------------------------------------------------------------

namespace {

void fill_nan(float* y, int64_t m) {
  for (int64_t i = 0; i < m; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
}

constexpr int64_t kChunk = 256;  // rows per call of a kernel (pointer and coefficient arrays on the stack)

using sparse_impl::GatherFn;

// The gather kernel of a row type in the ISA in use; nullptr when the registry has none.
GatherFn gather_fn(uint32_t type) { return type < TYPE_COUNT ? sparse_kernels().gather[type] : nullptr; }

}  // namespace

bool gather_row_type_supported(uint32_t type) { return gather_fn(type) != nullptr; }

int64_t gather_unit(uint32_t type) {
  const TypeTraits* tr = type_traits(type);
  return tr && tr->block_size > 32 ? tr->block_size : 32;
}

void gather_axpy(uint32_t type, const void* const* rows, const float* coef, int64_t k, int64_t offset,
                 int64_t m, float* y) {
  if (m <= 0) return;
  const GatherFn f = gather_fn(type);
  assert(f && "gather_axpy: unsupported row type");
  assert(m % gather_unit(type) == 0 && offset % gather_unit(type) == 0 && offset >= 0 &&
         "gather_axpy: m and offset must be multiples of gather_unit(type)");
  if (!f) return fill_nan(y, m);
  if (k <= 0) return;
  const size_t off = row_bytes(type, offset);
  const uint8_t* p[kChunk];
  for (int64_t j0 = 0; j0 < k; j0 += kChunk) {
    const int64_t c = std::min(kChunk, k - j0);
    for (int64_t j = 0; j < c; ++j) p[j] = static_cast<const uint8_t*>(rows[j0 + j]) + off;
    f(p, coef + j0, c, m, y);
  }
}

void gather_axpy_indexed(uint32_t type, const void* base, size_t row_stride, const int32_t* idx,
                         const float* x, int64_t k, int64_t offset, int64_t m, float* y) {
  if (m <= 0) return;
  const GatherFn f = gather_fn(type);
  assert(f && "gather_axpy_indexed: unsupported row type");
  assert(m % gather_unit(type) == 0 && offset % gather_unit(type) == 0 && offset >= 0 &&
         "gather_axpy_indexed: m and offset must be multiples of gather_unit(type)");
  if (!f) return fill_nan(y, m);
  if (k <= 0) return;
  const uint8_t* b = static_cast<const uint8_t*>(base) + row_bytes(type, offset);
  const uint8_t* p[kChunk];
  float c[kChunk];
  for (int64_t j0 = 0; j0 < k; j0 += kChunk) {
    const int64_t cnt = std::min(kChunk, k - j0);
    for (int64_t j = 0; j < cnt; ++j) {
      const int64_t i = idx[j0 + j];
      p[j] = b + static_cast<size_t>(i) * row_stride;
      c[j] = x[i];
    }
    f(p, c, cnt, m, y);
  }
}

// ---- top-k --------------------------------------------------------------------------------------

namespace {

constexpr int kHist1 = 1024;  // digit 1: bits 30..21 (scores are non-negative, at most +inf)
constexpr int kHist2 = 2048;  // digit 2: bits 20..10
constexpr int kHist3 = 1024;  // digit 3: bits 9..0
constexpr int64_t kSampledMinN = 2048;  // from here on, select_sampled (measured faster)

// Finds, walking buckets from the top, the bucket where the running count reaches k (1 <= k <= total).
// Returns the bucket; *need = how many of that bucket are still wanted (1..hist[b]).
int walk(const uint32_t* hist, int nb, int64_t k, int64_t* need) {
  int64_t above = 0;
  for (int b = nb - 1; b > 0; --b) {
    if (above + static_cast<int64_t>(hist[b]) >= k) {
      *need = k - above;
      return b;
    }
    above += hist[b];
  }
  *need = k - above;
  return 0;
}

// The k-th highest value of s[0..n) (1 <= k <= n) given hist1 (digit 1 of s): returns thr and *eq such
// that {s > thr} plus the first *eq of {s == thr} are exactly the k winners. cand has room for n.
uint32_t select_threshold(const SparseKernels& t, const uint32_t* s, int64_t n, int64_t k, const uint32_t* hist1,
                          uint32_t* cand, int64_t* eq) {
  int64_t need;
  const int b1 = walk(hist1, kHist1, k, &need);
  const int64_t nc = t.collect(s, n, 21, static_cast<uint32_t>(b1), cand);  // the values in bucket b1
  uint32_t h2[kHist2] = {};
  for (int64_t i = 0; i < nc; ++i) ++h2[(cand[i] >> 10) & (kHist2 - 1)];
  const int b2 = walk(h2, kHist2, need, &need);
  const uint32_t prefix2 = (static_cast<uint32_t>(b1) << 11) | static_cast<uint32_t>(b2);
  const int64_t nc2 = t.collect(cand, nc, 10, prefix2, cand);  // in place: writes never pass reads
  uint32_t h3[kHist3] = {};
  for (int64_t i = 0; i < nc2; ++i) ++h3[cand[i] & (kHist3 - 1)];
  const int b3 = walk(h3, kHist3, need, &need);
  *eq = need;
  return (prefix2 << 10) | static_cast<uint32_t>(b3);
}

// Large n: the digit-1 histogram of every 4th score locates the k-th highest within a few buckets;
// one pass then counts the scores above that range and collects those inside it, and the exact
// threshold is found among the candidates. Returns false (caller falls back to the full histogram)
// when the sample misled, which the counts reveal exactly. hist is scratch (kHist1 entries).
bool select_sampled(const SparseKernels& t, const uint32_t* s, int64_t n, int64_t k, uint32_t* hist,
                    uint32_t* cand, uint32_t* thr, int64_t* eq) {
  std::memset(hist, 0, kHist1 * sizeof(uint32_t));
  int64_t ns = 0;
  for (int64_t i = 0; i < n; i += 4, ++ns) ++hist[s[i] >> 21];
  // rank of the k-th value within the sample, with a margin of ~4 standard deviations
  const double kk = static_cast<double>(k) * static_cast<double>(ns) / static_cast<double>(n);
  const double q = kk / static_cast<double>(ns);
  const int64_t margin = static_cast<int64_t>(4.0 * std::sqrt(kk * (1.0 - q)) + 8.0);
  const int64_t r_hi = std::max<int64_t>(static_cast<int64_t>(kk) - margin, 1);
  const int64_t r_lo = std::min<int64_t>(static_cast<int64_t>(kk) + margin, ns);
  int64_t unused;
  const int b_hi = walk(hist, kHist1, r_hi, &unused);
  const int b_lo = walk(hist, kHist1, r_lo, &unused);
  const uint32_t lo = static_cast<uint32_t>(b_lo) << 21, hi = (static_cast<uint32_t>(b_hi + 1) << 21) - 1;
  int64_t above;
  const int64_t nc = t.collect_range(s, n, lo, hi, cand, &above);
  if (above >= k || above + nc < k) return false;
  // the k - above highest among the candidates (every score equal to the threshold is a candidate)
  std::memset(hist, 0, kHist1 * sizeof(uint32_t));
  for (int64_t i = 0; i < nc; ++i) ++hist[cand[i] >> 21];
  *thr = select_threshold(t, cand, nc, k - above, hist, cand, eq);
  return true;
}

struct Workspace {
  uint32_t* s;
  uint32_t* cand;
  uint32_t* hist;
};

Workspace carve(void* ws, int64_t n) {
  uint32_t* p = static_cast<uint32_t*>(ws);
  return Workspace{p, p + n, p + 2 * n};
}

thread_local std::vector<uint32_t> t_workspace;

}  // namespace

size_t topk_workspace_bytes(int64_t n) {
  if (n < 0) n = 0;
  return (2 * static_cast<size_t>(n) + kHist1) * sizeof(uint32_t);
}

int64_t topk_select(const float* a, int64_t n, int64_t k, const uint8_t* cached, float gamma,
                    int64_t fixed_top_n, bool alpha_blend, int32_t* out, void* workspace) {
  if (n <= 0 || k <= 0) return 0;
  if (k >= n) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(i);
    return n;
  }
  if (!workspace) {
    const size_t words = topk_workspace_bytes(n) / sizeof(uint32_t);
    if (t_workspace.size() < words) t_workspace.resize(words);
    workspace = t_workspace.data();
  }
  const SparseKernels& t = sparse_kernels();
  Workspace w = carve(workspace, n);
  if (!(gamma < 1.0f)) gamma = 1.0f;  // NaN counts as 1
  if (gamma < 0.0f || gamma == 0.0f) gamma = 0.0f;
  const bool weighted = cached && gamma < 1.0f && fixed_top_n < n;
  const bool sampled = n >= kSampledMinN;
  // The threshold of the kk highest scores in w.s: sampled for large n (the full histogram is only
  // built if the sample misled), else from the full histogram the score pass built.
  auto threshold = [&](int64_t kk, int64_t* eq) {
    uint32_t thr;
    if (sampled) {
      if (select_sampled(t, w.s, n, kk, w.hist, w.cand, &thr, eq)) return thr;
      std::memset(w.hist, 0, kHist1 * sizeof(uint32_t));
      for (int64_t i = 0; i < n; ++i) ++w.hist[w.s[i] >> 21];
    }
    return select_threshold(t, w.s, n, kk, w.hist, w.cand, eq);
  };
  std::memset(w.hist, 0, kHist1 * sizeof(uint32_t));
  t.abs_hist(a, n, w.s, sampled ? nullptr : w.hist);
  if (weighted) {
    uint32_t pthr = 0x7fffffffu;  // above every score (at most +inf = 0x7f800000): nothing protected
    int64_t peq = 0;
    if (fixed_top_n > 0) pthr = threshold(fixed_top_n, &peq);
    std::memset(w.hist, 0, kHist1 * sizeof(uint32_t));
    t.weight_hist(w.s, n, cached, gamma, alpha_blend, pthr, peq, sampled ? nullptr : w.hist);
  }
  int64_t eq;
  const uint32_t thr = threshold(k, &eq);
  const int64_t c = t.emit(w.s, n, thr, eq, out, k);
  assert(c == k);
  (void)c;
  return k;
}

int64_t dipca_block_misses(const float* a, int64_t n, int32_t* mask, int64_t k, const uint8_t* cached, int64_t block,
                           double cover, int64_t fixed_top_n) {
  if (block <= 1 || k <= 0 || n <= 0) return 0;
  thread_local std::vector<uint8_t> prot;         // [n] protected
  thread_local std::vector<int32_t> idx, kept;    // scratch, [n]
  thread_local std::vector<double> mass;          // [blocks] sum of r over the misses
  thread_local std::vector<int64_t> free_cols;    // [blocks] uncached, unprotected columns
  prot.assign(static_cast<size_t>(n), 0);
  if (fixed_top_n > 0) {
    idx.resize(static_cast<size_t>(n));
    const int64_t p = topk_abs(a, n, fixed_top_n, idx.data(), nullptr);
    for (int64_t i = 0; i < p; ++i) prot[static_cast<size_t>(idx[static_cast<size_t>(i)])] = 1;
  }
  auto r = [&](int64_t i) { return score_magnitude(a[i]); };
  auto is_free = [&](int64_t i) { return !cached[i] && !prot[static_cast<size_t>(i)]; };
  const int64_t nb = (n + block - 1) / block;
  mass.assign(static_cast<size_t>(nb), 0.0);
  free_cols.assign(static_cast<size_t>(nb), 0);
  int64_t m = 0;
  for (int64_t i = 0; i < k; ++i)
    if (is_free(mask[i])) {
      mass[static_cast<size_t>(mask[i] / block)] += r(mask[i]);
      ++m;
    }
  if (m == 0) return 0;
  for (int64_t i = 0; i < n; ++i) free_cols[static_cast<size_t>(i / block)] += is_free(i);
  // Blocks by mass (ties: lower block), taken until they hold cover * m free columns.
  idx.resize(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) idx[static_cast<size_t>(b)] = static_cast<int32_t>(b);
  std::sort(idx.begin(), idx.begin() + nb, [&](int32_t x, int32_t y) { return mass[x] > mass[y] || (mass[x] == mass[y] && x < y); });
  const double want = std::max(1.0, cover) * static_cast<double>(m);
  int64_t taken = 0, have = 0;
  while (taken < nb && static_cast<double>(have) < want) have += free_cols[static_cast<size_t>(idx[static_cast<size_t>(taken++)])];
  // Candidates: the free columns of the taken blocks; the m highest r (ties: lower index) replace the misses.
  kept.clear();
  for (int64_t j = 0; j < taken; ++j) {
    const int64_t b = idx[static_cast<size_t>(j)];
    for (int64_t i = b * block; i < std::min(n, (b + 1) * block); ++i)
      if (is_free(i)) kept.push_back(static_cast<int32_t>(i));
  }
  auto higher = [&](int32_t x, int32_t y) { return r(x) > r(y) || (r(x) == r(y) && x < y); };
  std::nth_element(kept.begin(), kept.begin() + (m - 1), kept.end(), higher);
  kept.resize(static_cast<size_t>(m));
  for (int64_t i = 0; i < k; ++i)
    if (!is_free(mask[i])) kept.push_back(mask[i]);
  std::sort(kept.begin(), kept.end());
  std::copy(kept.begin(), kept.end(), mask);
  return m;
}

}  // namespace fd
