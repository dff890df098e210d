// Native tests for the sparse kernels (flashdip/sparse.h): the scalar gather-GEMV against a float64
// reference built from dequantize_row, every SIMD ISA available on this CPU against the scalar twin
// (odd sizes, unaligned rows each in its own exact-size allocation, NaN guards around y), and the top-k
// against a full sort by (score desc, index asc) with many ties, NaN/inf inputs, DIP-CA weights and
// protected columns, and DIP-CA's block reads against a step-by-step reference. Prints "N passed,
// M failed" last and exits non-zero on any failure.
//
//   test_sparse           run the tests
//   test_sparse --bench   also print gather-GEMV bandwidth vs memcpy and top-k times (not a test)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "flashdip/bench.h"
#include "flashdip/kernels.h"
#include "flashdip/quants.h"
#include "flashdip/sparse.h"
#include "flashdip/types.h"
#include "flashdip/rng.h"

#include "check.h"

using namespace fd;
using namespace fd_test;

namespace {

// The gather row types: those with a registered gather kernel (every type has a scalar twin, test_kernels
// checks that).
std::vector<uint32_t> gather_types() {
  std::vector<uint32_t> out;
  for (uint32_t t = 0; t < TYPE_COUNT; ++t)
    if (kernel_selected(KernelOp::gather, t, Isa::scalar)) out.push_back(t);
  return out;
}
const std::vector<uint32_t> kTypes = gather_types();

// One quantized row per heap allocation, starting at a random (odd) offset and ending exactly at the
// end of its allocation, so that ASan sees any over-read.
struct Rows {
  std::vector<uint8_t*> mem;
  std::vector<const uint8_t*> ptr;
  std::vector<std::vector<float>> deq;  // dequantized values (float64 reference input)
  Rows() = default;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows() {
    for (uint8_t* p : mem) std::free(p);
  }
  void build(uint32_t type, int64_t nrows, int64_t m, Rng& rng) {
    const size_t rb = row_bytes(type, m);
    std::vector<float> src(static_cast<size_t>(m));
    for (int64_t r = 0; r < nrows; ++r) {
      for (auto& v : src) v = rng.gauss() * (rng.uniform() < 0.05 ? 8.0f : 1.0f);
      const size_t off = static_cast<size_t>(rng.below(7));
      uint8_t* p = static_cast<uint8_t*>(std::malloc(rb + off + 1));
      mem.push_back(p);
      // quantize_row/dequantize_row want naturally aligned blocks: go through an aligned copy
      std::vector<uint64_t> aligned((rb + 7) / 8);
      quantize_row(type, src.data(), aligned.data(), m);
      std::memcpy(p + off, aligned.data(), rb);
      ptr.push_back(p + off);
      std::vector<float> d(static_cast<size_t>(m));
      dequantize_row(type, aligned.data(), d.data(), m);
      deq.push_back(std::move(d));
    }
  }
};

// ---- gather-GEMV ------------------------------------------------------------------------------------

// The scalar twin against a float64 sum of dequantized rows; y's neighbours must stay NaN.
void test_gather_reference() {
  Rng rng(11);
  for (uint32_t type : kTypes) {
    for (int64_t mb : {1, 2, 3, 7, 65}) {
      const int64_t m = mb * gather_unit(type);
      Rows rows;
      rows.build(type, 9, m, rng);
      for (int64_t k : {0, 1, 2, 5, 9}) {
        std::vector<float> coef(static_cast<size_t>(k));
        for (auto& c : coef) c = rng.gauss();
        std::vector<float> y(static_cast<size_t>(m + 16), std::numeric_limits<float>::quiet_NaN());
        float* yy = y.data() + 8;
        std::vector<double> ref(static_cast<size_t>(m)), mag(static_cast<size_t>(m));
        for (int64_t i = 0; i < m; ++i) yy[i] = rng.gauss(), ref[i] = yy[i], mag[i] = std::fabs(yy[i]);
        for (int64_t j = 0; j < k; ++j)
          for (int64_t i = 0; i < m; ++i) {
            const double t = static_cast<double>(coef[j]) * rows.deq[j][i];
            ref[i] += t;
            mag[i] += std::fabs(t);
            if (type == TYPE_Q4_K || type == TYPE_Q5_K) {  // d sc q - dmin m rounds at the scale of both terms (here and in dequantize_row)
              const uint8_t* blk = rows.ptr[j] + i / QK_K * row_bytes(type, QK_K);
              uint8_t sc, mn;
              k4_scale_min(blk + 4, static_cast<int>(i % QK_K / 32), &sc, &mn);
              mag[i] += 2.0 * std::fabs(coef[j] * load_fp16(blk + 2) * mn);
            }
          }
        sparse_impl::sparse_kernels_for("scalar")->gather[type](rows.ptr.data(), coef.data(), k, m, yy);
        tested(KernelOp::gather, type, "scalar");
        double worst = 0;
        bool guards = true;
        for (int i = 0; i < 8; ++i) guards = guards && std::isnan(y[i]) && std::isnan(yy[m + i]);
        for (int64_t i = 0; i < m; ++i) worst = std::max(worst, std::fabs(yy[i] - ref[i]) / (mag[i] + 1e-30));
        check(guards && worst < 1e-6, "gather scalar vs f64: %s m=%lld k=%lld rel err %.3g guards %d", type_name(type),
              (long long)m, (long long)k, worst, (int)guards);
      }
    }
  }
}

// Every ISA through the public entry points (pointer list and indexed, with offsets) vs the scalar twin.
void test_gather_isas() {
  const std::vector<std::string> list = isas();
  Rng rng(12);
  const int64_t ks[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 31, 257, 300};
  for (uint32_t type : kTypes) {
    const int64_t unit = gather_unit(type);  // 32 outputs, or a k-quant super-block of 256
    const int64_t tile = unit == 32 ? 64 : 8;  // units per output tile in the SIMD kernels
    const int64_t mbs[] = {1, 2, 3, 5, 7, 15, 17, 31, 33, tile - 1, tile, tile + 1, 2 * tile + 1, 3 * (tile + 1)};
    for (int64_t mb : mbs) {
      const int64_t m = mb * unit;
      Rows rows;
      rows.build(type, 300, m, rng);
      const size_t rb = row_bytes(type, m);
      // a contiguous copy of the same rows for the indexed form (stride with padding, odd base)
      const size_t stride = rb + 5;
      std::vector<uint8_t> flat(stride * 300 + 3);
      for (int r = 0; r < 300; ++r) std::memcpy(flat.data() + 3 + stride * r, rows.ptr[r], rb);
      std::vector<float> xfull(300);
      for (auto& v : xfull) v = rng.gauss();
      for (int64_t k : ks) {
        if (k > 0 && m > 1024 && k > 13 && k != 257) continue;  // keep the run short
        std::vector<int32_t> idx(static_cast<size_t>(k));
        std::vector<const void*> ptrs(static_cast<size_t>(k));
        std::vector<float> coef(static_cast<size_t>(k));
        for (int64_t j = 0; j < k; ++j) {
          idx[j] = static_cast<int32_t>(rng.below(300));
          ptrs[j] = rows.ptr[idx[j]];
          coef[j] = xfull[idx[j]];
        }
        const int64_t offset = mb > 2 ? unit * rng.below(mb / 2) : 0;
        const int64_t mm = m - offset - (mb > 4 ? unit * rng.below(2) : 0);
        std::vector<float> y0(static_cast<size_t>(mm));
        for (auto& v : y0) v = rng.gauss();
        std::vector<float> ref;
        std::vector<double> mag(static_cast<size_t>(mm));
        // |terms|, plus for q4_0 the 8 * |x d| of each block (the kernels may add s * q and -8 s apart)
        for (int64_t j = 0; j < k; ++j)
          for (int64_t i = 0; i < mm; ++i) {
            mag[i] += std::fabs(coef[j] * rows.deq[idx[j]][offset + i]);
            if (type == TYPE_Q4_0)
              mag[i] += 16.0 * std::fabs(coef[j] * load_fp16(rows.ptr[idx[j]] + (offset + i) / 32 * sizeof(block_q4_0)));
            if (type == TYPE_Q4_K || type == TYPE_Q5_K) {  // the mins, added apart (2 |x dmin m|)
              const uint8_t* blk = rows.ptr[idx[j]] + (offset + i) / QK_K * row_bytes(type, QK_K);
              uint8_t sc, mn;
              k4_scale_min(blk + 4, static_cast<int>((offset + i) % QK_K / 32), &sc, &mn);
              mag[i] += 2.0 * std::fabs(coef[j] * load_fp16(blk + 2) * mn);
            }
          }
        for (const std::string& isa : list) {
          kernels_set_isa(isa.c_str());
          tested(KernelOp::gather, type, isa);
          for (int form = 0; form < 2; ++form) {
            std::vector<float> y(static_cast<size_t>(mm + 16), std::numeric_limits<float>::quiet_NaN());
            float* yy = y.data() + 8;
            std::memcpy(yy, y0.data(), sizeof(float) * mm);
            if (form == 0)
              gather_axpy(type, ptrs.data(), coef.data(), k, offset, mm, yy);
            else
              gather_axpy_indexed(type, flat.data() + 3, stride, idx.data(), xfull.data(), k, offset, mm, yy);
            if (isa == "scalar" && form == 0) {
              ref.assign(yy, yy + mm);
              continue;
            }
            bool guards = true;
            for (int i = 0; i < 8; ++i) guards = guards && std::isnan(y[i]) && std::isnan(yy[mm + i]);
            double worst = 0;
            for (int64_t i = 0; i < mm; ++i) {
              const double tol = 4.0 * (k + 2) * 6e-8 * (mag[i] + std::fabs(y0[i])) + 1e-30;
              const double e = std::fabs(static_cast<double>(yy[i]) - ref[i]);
              worst = std::max(worst, std::isnan(yy[i]) ? 1e30 : e / tol);
            }
            check(guards && worst <= 1.0, "gather %s %s form %d m=%lld off=%lld k=%lld err/tol %.3g guards %d",
                  isa.c_str(), type_name(type), form, (long long)mm, (long long)offset, (long long)k, worst,
                  (int)guards);
          }
        }
      }
    }
  }
  kernels_set_isa(list.back().c_str());
}

void test_gather_edge() {
  float y[32];
  for (auto& v : y) v = 1.0f;
  gather_axpy(TYPE_Q2_K, nullptr, nullptr, 3, 0, 0, y);  // m = 0: nothing
  check(y[0] == 1.0f, "gather m=0 is a no-op");
  check(!gather_row_type_supported(TYPE_Q2_K) && gather_row_type_supported(TYPE_Q4_0) && gather_row_type_supported(TYPE_Q4_K),
        "gather supported types");
  check(gather_unit(TYPE_F32) == 32 && gather_unit(TYPE_Q4_0) == 32 && gather_unit(TYPE_Q6_K) == 256, "gather units");
#ifdef NDEBUG
  const void* p = y;
  float c = 1.0f;
  gather_axpy(TYPE_Q2_K, &p, &c, 1, 0, 32, y);
  check(std::isnan(y[0]) && std::isnan(y[31]), "gather: unsupported type fills y with NaN");
#endif
}

// ---- top-k ------------------------------------------------------------------------------------------

// The header's rules, written independently, then a full sort.
std::vector<int32_t> topk_reference(const std::vector<float>& a, int64_t k, const uint8_t* cached, float gamma,
                                    int64_t fixed_top_n, bool alpha) {
  const int64_t n = static_cast<int64_t>(a.size());
  std::vector<float> r(a.size()), s(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = std::isnan(a[i]) ? 0.0f : std::fabs(a[i]);
  auto by_score = [](const std::vector<float>& v) {
    return [&v](int32_t x, int32_t y) { return v[x] != v[y] ? v[x] > v[y] : x < y; };
  };
  if (std::isnan(gamma) || gamma > 1.0f) gamma = 1.0f;
  if (gamma < 0.0f) gamma = 0.0f;
  std::vector<int32_t> order(a.size());
  for (size_t i = 0; i < a.size(); ++i) order[i] = static_cast<int32_t>(i);
  if (!cached || gamma >= 1.0f) {
    s = r;
  } else {
    std::vector<uint8_t> prot(a.size(), 0);
    std::sort(order.begin(), order.end(), by_score(r));
    for (int64_t i = 0; i < std::min(std::max<int64_t>(fixed_top_n, 0), n); ++i) prot[order[i]] = 1;
    for (size_t i = 0; i < a.size(); ++i) {
      if (prot[i])
        s[i] = r[i];
      else if (cached[i])
        s[i] = alpha ? std::fma(gamma, r[i], 1.0f - gamma) : r[i];
      else
        s[i] = gamma * r[i];
      if (std::isnan(s[i])) s[i] = 0.0f;
    }
  }
  std::sort(order.begin(), order.end(), by_score(s));
  const int64_t kk = std::min(std::max<int64_t>(k, 0), n);
  std::vector<int32_t> out(order.begin(), order.begin() + kk);
  std::sort(out.begin(), out.end());
  return out;
}

void fill_values(std::vector<float>& a, int dist, Rng& rng) {
  static const float small[] = {0.0f, -0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 2.0f, 3.0f};
  for (auto& v : a) {
    switch (dist) {
      case 0: v = rng.gauss(); break;
      case 1: v = small[rng.below(8)]; break;  // many ties
      case 2: v = rng.gauss() * 1e-3f + (rng.uniform() < 0.5 ? 1.0f : 0.0f); break;  // close values
      case 3: {  // specials
        const double u = rng.uniform();
        v = u < 0.1 ? std::numeric_limits<float>::quiet_NaN()
            : u < 0.15 ? -std::numeric_limits<float>::quiet_NaN()
            : u < 0.2 ? std::numeric_limits<float>::infinity()
            : u < 0.25 ? -std::numeric_limits<float>::infinity()
            : u < 0.3 ? std::numeric_limits<float>::denorm_min() * static_cast<float>(rng.below(4))
            : u < 0.4 ? small[rng.below(8)] : rng.gauss();
        break;
      }
      case 4: v = 1.0f; break;  // all equal
      default: break;
    }
  }
  if (dist == 5)  // misleads a sample of every 4th score (exercises the fallback of the sampled select)
    for (size_t i = 0; i < a.size(); ++i) a[i] = (i % 4 == 0 ? 100.0f : 0.0f) + rng.gauss();
}

void test_topk() {
  const std::vector<std::string> list = isas();
  Rng rng(21);
  const int64_t ns[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257, 1000, 2047, 2048, 4099, 5632};
  const float gammas[] = {0.0f, 0.2f, 0.5f, 1.0f, std::numeric_limits<float>::quiet_NaN(), -1.0f, 2.0f};
  int cases = 0;
  for (int64_t n : ns) {
    for (int dist = 0; dist < 6; ++dist) {
      std::vector<float> a(static_cast<size_t>(n));
      fill_values(a, dist, rng);
      std::vector<uint8_t> cached(static_cast<size_t>(n));
      for (auto& c : cached) c = rng.uniform() < 0.5 ? 0 : static_cast<uint8_t>(1 + rng.below(255));
      const int64_t kraw[] = {0, 1, 2, n / 2, n - 1, n, n + 5, rng.below(n + 1), -3};
      for (int64_t k : kraw) {
        for (int variant = 0; variant < 6; ++variant) {
          const uint8_t* cp = variant == 0 ? nullptr : cached.data();
          const float gamma = variant == 0 ? 1.0f : gammas[rng.below(7)];
          const int64_t ftn = variant < 2 ? 0 : variant == 2 ? 1 : variant == 3 ? rng.below(n + 2) : variant == 4 ? n : n / 4;
          const bool alpha = (variant & 1) != 0;
          const std::vector<int32_t> ref = topk_reference(a, k, cp, gamma, ftn, alpha);
          for (const std::string& isa : list) {
            kernels_set_isa(isa.c_str());
            for (int ws = 0; ws < 2; ++ws) {
              std::vector<int32_t> out(static_cast<size_t>(n + 8), -12345);
              std::vector<uint8_t> work(ws ? topk_workspace_bytes(n) + 4 : 0);
              const int64_t c = topk_select(a.data(), n, k, cp, gamma, ftn, alpha, out.data(), ws ? work.data() + 4 : nullptr);
              bool ok = c == static_cast<int64_t>(ref.size());
              for (size_t i = 0; ok && i < ref.size(); ++i) ok = out[i] == ref[i];
              for (size_t i = ref.size(); ok && i < out.size(); ++i) ok = out[i] == -12345;
              ++cases;
              if (!check(ok, "topk %s n=%lld k=%lld dist=%d gamma=%g ftn=%lld alpha=%d cached=%d ws=%d: got %lld",
                         isa.c_str(), (long long)n, (long long)k, dist, gamma, (long long)ftn, (int)alpha, cp != nullptr,
                         ws, (long long)c))
                return;
            }
          }
        }
      }
    }
  }
  // A big one with a known answer: n = 14336 gaussians, every ISA agrees with the full sort.
  std::vector<float> a(14336);
  fill_values(a, 0, rng);
  std::vector<uint8_t> cached(a.size());
  for (auto& c : cached) c = rng.uniform() < 0.3;
  const std::vector<int32_t> ref = topk_reference(a, 7168, cached.data(), 0.2f, 100, false);
  for (const std::string& isa : list) {
    kernels_set_isa(isa.c_str());
    std::vector<int32_t> out(7168);
    topk_select(a.data(), 14336, 7168, cached.data(), 0.2f, 100, false, out.data(), nullptr);
    check(out == ref, "topk %s n=14336 dip-ca", isa.c_str());
    // the sampled select with cache state and protected columns runs every top-k primitive
    for (KernelOp op : {KernelOp::abs_hist, KernelOp::weight_hist, KernelOp::emit, KernelOp::collect, KernelOp::collect_range})
      tested(op, TYPE_NONE, isa);
  }
  kernels_set_isa(list.back().c_str());
  std::printf("topk: %d cases against a full sort\n", cases);
}

// ---- DIP-CA block reads ----------------------------------------------------------------------------

// dipca_block_misses written out step by step with full sorts (sparse.h states the rule).
std::vector<int32_t> block_misses_reference(const std::vector<float>& a, const std::vector<int32_t>& mask,
                                            const uint8_t* cached, int64_t block, double cover, int64_t ftn) {
  const int64_t n = static_cast<int64_t>(a.size());
  if (block <= 1) return mask;
  std::vector<float> r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = std::isnan(a[i]) ? 0.0f : std::fabs(a[i]);
  std::vector<int32_t> order(a.size());
  for (size_t i = 0; i < a.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return r[x] != r[y] ? r[x] > r[y] : x < y; });
  std::vector<uint8_t> prot(a.size(), 0);
  for (int64_t i = 0; i < std::min(std::max<int64_t>(ftn, 0), n); ++i) prot[order[i]] = 1;
  auto free_col = [&](int64_t i) { return !cached[i] && !prot[i]; };
  const int64_t nb = (n + block - 1) / block;
  std::vector<double> mass(nb, 0.0);
  std::vector<int64_t> cols(nb, 0);
  int64_t m = 0;
  for (int32_t i : mask)
    if (free_col(i)) mass[i / block] += r[i], ++m;
  if (m == 0) return mask;
  for (int64_t i = 0; i < n; ++i) cols[i / block] += free_col(i);
  std::vector<int64_t> blocks(nb);
  for (int64_t b = 0; b < nb; ++b) blocks[b] = b;
  std::sort(blocks.begin(), blocks.end(), [&](int64_t x, int64_t y) { return mass[x] != mass[y] ? mass[x] > mass[y] : x < y; });
  std::vector<uint8_t> taken(nb, 0);
  int64_t have = 0;
  for (int64_t j = 0; j < nb && static_cast<double>(have) < std::max(1.0, cover) * m; ++j) taken[blocks[j]] = 1, have += cols[blocks[j]];
  std::vector<int32_t> out;
  for (int32_t i : mask)
    if (!free_col(i)) out.push_back(i);
  int64_t added = 0;
  for (int32_t i : order)  // by r descending, ties lower index
    if (added < m && free_col(i) && taken[i / block]) out.push_back(i), ++added;
  std::sort(out.begin(), out.end());
  return out;
}

void test_block_misses() {
  Rng rng(33);
  int cases = 0;
  for (int64_t n : {1, 2, 5, 16, 17, 100, 257, 1000, 2048, 5632}) {
    for (int dist = 0; dist < 6; ++dist) {
      std::vector<float> a(static_cast<size_t>(n));
      fill_values(a, dist, rng);
      std::vector<uint8_t> cached(static_cast<size_t>(n));
      const double frac = rng.uniform();
      for (auto& c : cached) c = rng.uniform() < frac;
      for (int rep = 0; rep < 6; ++rep) {
        const int64_t k = 1 + rng.below(n);
        const float gamma = rep == 0 ? 1.0f : rep == 1 ? 0.05f : 0.2f;
        const int64_t ftn = rep == 3 ? rng.below(k + 1) : 0;
        const int64_t block = rep == 4 ? 1 : 1 + rng.below(std::max<int64_t>(2, n / 3));
        const double cover = rep == 5 ? 1e9 : 1.0 + 3.0 * rng.uniform() * (rng.uniform() < 0.5);
        std::vector<int32_t> mask(static_cast<size_t>(k));
        topk_select(a.data(), n, k, cached.data(), gamma, ftn, false, mask.data(), nullptr);
        const std::vector<int32_t> ref = block_misses_reference(a, mask, cached.data(), block, cover, ftn);
        std::vector<int32_t> got = mask;
        dipca_block_misses(a.data(), n, got.data(), k, cached.data(), block, cover, ftn);
        ++cases;
        if (!check(got == ref, "block misses n=%lld k=%lld dist=%d block=%lld cover=%g ftn=%lld", (long long)n, (long long)k, dist,
                   (long long)block, cover, (long long)ftn))
          return;
        // A block of one column, or a cover that takes every block, leaves DIP-CA's mask as it was (not
        // checked on the specials: gamma * r rounds tiny r to equal values, so DIP-CA's order among
        // uncached columns can differ from r's there).
        if (block == 1 || (cover >= 1e9 && dist != 3))
          if (!check(got == mask, "block misses n=%lld block=%lld cover=%g changed the mask", (long long)n, (long long)block, cover))
            return;
      }
    }
  }
  std::printf("block misses: %d cases against the step-by-step reference\n", cases);
}

// ---- benchmark ----------------------------------------------------------------------------------------
// The measuring code is shared with the addon (flashdip/bench.h); this prints it for every ISA.

void bench() {
  const size_t store_bytes = size_t(256) << 20;  // well beyond the L3 (rows come from DRAM)
  std::printf("\nbench: gather-GEMV at density 0.5, rows from a 256 MiB store (DRAM), single thread, GB/s of rows\n");
  std::printf("(memcpy: bytes read per second by one 128 MiB memcpy; read: a plain sum over the same rows)\n");
  std::printf("%-8s %-6s %6s %8s %7s %8s %8s %8s %9s %8s\n", "isa", "type", "m", "rowbytes", "k", "gather", "memcpy",
              "read", "g/memcpy", "g/read");
  for (size_t i = 0; i < kernel_count(); ++i) {  // every registered gather kernel this CPU runs
    const KernelInfo& kern = kernel_info(i);
    if (kern.op != KernelOp::gather || !isa_available(kern.isa)) continue;
    const std::string isa = isa_name(kern.isa);
    const uint32_t type = kern.type;
    kernels_set_isa(isa.c_str());
    for (int64_t m : {int64_t(2048), int64_t(7168), int64_t(11264)}) {
      if (row_bytes(type, m) < 1024) continue;
      const GatherBench g = bench_gather(type, m, 0.5, store_bytes, isa == "scalar" ? 3 : 7, 5);
      std::printf("%-8s %-6s %6lld %8zu %7lld %8.2f %8.2f %8.2f %9.2f %8.2f\n", isa.c_str(), type_name(type),
                  (long long)m, g.row_bytes, (long long)g.k, g.gather_bps / 1e9, g.memcpy_bps / 1e9, g.read_bps / 1e9,
                  g.gather_bps / g.memcpy_bps, g.gather_bps / g.read_bps);
    }
  }
  std::printf("\nbench: top-k (k = n/2), median of 201 calls, microseconds\n");
  std::printf("%-8s %6s %10s %10s %10s %12s\n", "isa", "n", "dip", "dip-ca", "ca+top64", "std::nth");
  for (const std::string& isa : isas()) {
    kernels_set_isa(isa.c_str());
    for (int64_t n : {int64_t(5632), int64_t(14336)}) {
      const TopkBench t = bench_topk(n, 0.5, 201, 5);
      std::printf("%-8s %6lld %10.2f %10.2f %10.2f %12.2f\n", isa.c_str(), (long long)n, t.dip_us, t.ca_us, t.ca_top_us, t.nth_us);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("sparse kernels: isa %s, available %s\n", kernels_isa(), kernels_available_isas());
  test_gather_reference();
  test_gather_isas();
  test_gather_edge();
  test_topk();
  test_block_misses();
  check_registry_tested("test_sparse");
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) bench();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
