// Kernel micro-benchmarks (flashdip/bench.h): one copy of the measuring code for the test binaries'
// --bench modes and the addon.
#include "flashdip/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "flashdip/kernels.h"
#include "flashdip/sparse.h"
#include "flashdip/types.h"
#include "flashdip/rng.h"

namespace fd {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// A store of store_bytes, every page touched (so the first timed pass does not pay the page faults).
std::vector<uint8_t> make_store(size_t store_bytes) {
  std::vector<uint8_t> store(store_bytes);
  for (size_t i = 0; i < store_bytes; i += 4096) store[i] = 1;
  return store;
}

// Fills the store with copies of `distinct` valid rows of `type` with n elements (Gaussian values,
// quantized): realistic scales, no subnormals. Returns the row size.
size_t fill_rows(std::vector<uint8_t>& store, uint32_t type, int64_t n, int distinct, Rng& rng) {
  const size_t rb = row_bytes(type, n);
  std::vector<float> src(static_cast<size_t>(n));
  std::vector<uint8_t> rows(rb * static_cast<size_t>(distinct));
  for (int r = 0; r < distinct; ++r) {
    for (auto& v : src) v = rng.gauss();
    quantize_row(type, src.data(), rows.data() + rb * static_cast<size_t>(r), n);
  }
  for (size_t off = 0, r = 0; off + rb <= store.size(); off += rb, r = (r + 1) % static_cast<size_t>(distinct))
    std::memcpy(store.data() + off, rows.data() + rb * r, rb);
  return rb;
}

double memcpy_once(const std::vector<uint8_t>& store, std::vector<uint8_t>& dst, int rep) {
  const size_t half = store.size() / 2, from = (rep & 1) ? half : 0;
  const double t0 = now();
  std::memcpy(dst.data(), store.data() + from, half);
  const double t = now() - t0;
  return t > 0 ? static_cast<double>(half) / t : 0;
}

volatile uint64_t g_sink = 0;

}  // namespace

double bench_memcpy(size_t store_bytes, int reps) {
  std::vector<uint8_t> store = make_store(store_bytes), dst(store_bytes / 2);
  std::memset(dst.data(), 0, dst.size());
  std::vector<double> bw;
  for (int r = 0; r < std::max(1, reps); ++r) bw.push_back(memcpy_once(store, dst, r));
  return median(bw);
}

GatherBench bench_gather(uint32_t type, int64_t m, double density, size_t store_bytes, int reps, uint64_t seed) {
  GatherBench out{m, 0, 0, 0, 0, 0};
  const size_t rb = row_bytes(type, m);
  if (!gather_row_type_supported(type) || m <= 0 || m % gather_unit(type) != 0 || rb == 0 || store_bytes < 2 * rb) return out;
  Rng rng(seed);
  std::vector<uint8_t> store = make_store(store_bytes), dst(store_bytes / 2);
  std::memset(dst.data(), 0, dst.size());
  fill_rows(store, type, m, 16, rng);
  const int64_t nrows = static_cast<int64_t>(store_bytes / rb);
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(nrows, std::llround(density * static_cast<double>(nrows))));
  std::vector<float> coef(static_cast<size_t>(k)), y(static_cast<size_t>(m), 0.0f);
  for (auto& c : coef) c = 0.001f * rng.gauss();
  std::vector<const void*> ptrs(static_cast<size_t>(k));
  std::vector<double> bw, mc, rd;
  for (int r = 0; r < std::max(1, reps); ++r) {
    // a fresh random `density` of the rows, ascending (as a mask)
    int64_t j = 0;
    for (int64_t i = 0; i < nrows && j < k; ++i)
      if (rng.below(nrows - i) < k - j) ptrs[static_cast<size_t>(j++)] = store.data() + static_cast<size_t>(i) * rb;
    mc.push_back(memcpy_once(store, dst, r));
    double t0 = now();
    gather_axpy(type, ptrs.data(), coef.data(), k, 0, m, y.data());
    double t = now() - t0;
    bw.push_back(t > 0 ? static_cast<double>(k) * static_cast<double>(rb) / t : 0);
    // A stricter reference than memcpy (which also writes): a plain read of the same rows, summing
    // 64-bit words (no decoding), in the same order.
    t0 = now();
    uint64_t acc[4] = {0, 0, 0, 0};
    for (const void* p : ptrs) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      for (size_t i = 0; i + 32 <= rb; i += 32) {
        uint64_t w[4];
        std::memcpy(w, b + i, 32);  // rows need not be 8-byte aligned
        acc[0] += w[0], acc[1] += w[1], acc[2] += w[2], acc[3] += w[3];
      }
    }
    t = now() - t0;
    g_sink = g_sink + acc[0] + acc[1] + acc[2] + acc[3];
    rd.push_back(t > 0 ? static_cast<double>(k) * static_cast<double>(rb - rb % 32) / t : 0);
  }
  g_sink = g_sink + static_cast<uint64_t>(y[0] != 0);
  out.row_bytes = rb;
  out.k = k;
  out.gather_bps = median(bw);
  out.memcpy_bps = median(mc);
  out.read_bps = median(rd);
  return out;
}

GemvBench bench_gemv(uint32_t type, int64_t n, int64_t rows, size_t store_bytes, int reps, uint64_t seed) {
  GemvBench out{n, rows, 0, 0, 0};
  const TypeTraits* tr = type_traits(type);
  const size_t rb = row_bytes(type, n);
  if (!tr || !tr->can_compute || !tr->can_quantize || rb == 0 || rows <= 0) return out;
  const size_t mb = rb * static_cast<size_t>(rows);
  const size_t copies = std::max<size_t>(1, store_bytes / mb);
  Rng rng(seed);
  std::vector<uint8_t> store = make_store(copies * mb);
  fill_rows(store, type, n, 64, rng);
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(rows));
  for (auto& v : x) v = rng.gauss();
  std::vector<uint8_t> xq(row_bytes(vec_dot_type(type), n) + 64);
  quantize_activation(type, x.data(), xq.data(), n);
  std::vector<double> bw;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const uint8_t* w = store.data() + (static_cast<size_t>(r) % copies) * mb;
    const double t0 = now();
    gemv(type, w, rb, n, rows, xq.data(), y.data());
    const double t = now() - t0;
    bw.push_back(t > 0 ? static_cast<double>(mb) / t : 0);
  }
  g_sink = g_sink + static_cast<uint64_t>(y[0] != 0);
  out.matrix_bytes = mb;
  out.median_bps = median(bw);
  out.best_bps = *std::max_element(bw.begin(), bw.end());
  return out;
}

TopkBench bench_topk(int64_t n, double keep, int reps, uint64_t seed) {
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(n, std::llround(keep * static_cast<double>(n))));
  TopkBench out{n, k, 0, 0, 0, 0};
  if (n <= 0) return out;
  Rng rng(seed);
  std::vector<float> a(static_cast<size_t>(n));
  for (auto& v : a) v = rng.gauss();
  std::vector<uint8_t> cached(static_cast<size_t>(n));
  for (auto& c : cached) c = rng.uniform() < 0.5;
  std::vector<int32_t> res(static_cast<size_t>(n)), idx(static_cast<size_t>(n));
  std::vector<uint8_t> ws(topk_workspace_bytes(n));
  auto time = [&](auto&& f) {
    std::vector<double> t;
    for (int r = 0; r < std::max(1, reps); ++r) {
      const double t0 = now();
      f();
      t.push_back((now() - t0) * 1e6);
    }
    return median(t);
  };
  out.dip_us = time([&] { topk_select(a.data(), n, k, nullptr, 1.0f, 0, false, res.data(), ws.data()); });
  out.ca_us = time([&] { topk_select(a.data(), n, k, cached.data(), 0.2f, 0, false, res.data(), ws.data()); });
  out.ca_top_us = time([&] { topk_select(a.data(), n, k, cached.data(), 0.2f, 64, false, res.data(), ws.data()); });
  out.nth_us = time([&] {
    for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(),
                     [&](int32_t x, int32_t y) { return std::fabs(a[static_cast<size_t>(x)]) > std::fabs(a[static_cast<size_t>(y)]); });
    std::sort(idx.begin(), idx.begin() + k);
  });
  g_sink = g_sink + static_cast<uint64_t>(res[0]) + static_cast<uint64_t>(idx[0]);
  return out;
}

}  // namespace fd
