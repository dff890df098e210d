// Native tests for the element-wise and attention kernels (flashdip/ops.h): every SIMD ISA available
// on this CPU against the scalar twin on sizes 1 .. 3 x the vector tile + 1 and odd sizes, outputs
// poisoned with NaN (what a kernel must not write stays NaN, what it writes is not NaN), inputs it must
// not read poisoned with NaN too, and the vector expf against std::exp. Tolerances are stated (and
// derived) next to each test. Prints "N passed, M failed" last and exits non-zero on any failure.
//
//   test_ops               run the tests
//   test_ops --bench       also print per-op time, scalar vs SIMD, at the sizes of a 1B model (not a test)
//   test_ops -v            print every check with its measured error
//   test_ops --exp-sweep   also measure the vector expf against std::exp on every float in [-104, 89]
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

#include "flashdip/kernels.h"
#include "flashdip/ops.h"
#include "flashdip/quants.h"
#include "flashdip/types.h"
#include "flashdip/rng.h"

#include "check.h"

using namespace fd;
using namespace fd_test;
using ops_impl::OpsKernels;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const double kEps = 0x1p-24;      // unit roundoff of float (half an ulp of 1)
const double kUlp1 = 0x1p-23;     // an ulp of 1
const double kTiny = 0x1p-149;    // the smallest subnormal

// The SIMD tables to test: every available ISA but scalar (neon-dotprod shares neon's kernels).
std::vector<const OpsKernels*> simd_tables() {
  std::vector<const OpsKernels*> out;
  for (const std::string& isa : isas()) {
    const OpsKernels* t = ops_impl::ops_kernels_for(isa.c_str());
    if (!t || std::strcmp(t->isa, "scalar") == 0) continue;
    bool seen = false;
    for (const OpsKernels* o : out) seen = seen || o == t || std::strcmp(o->isa, t->isa) == 0;
    if (!seen) out.push_back(t);
  }
  return out;
}

const OpsKernels& scalar_table() { return *ops_impl::ops_kernels_for("scalar"); }

// A float array with 8 NaN guards on each side: the kernel sees data(), the guards must stay NaN.
struct Guarded {
  std::vector<float> buf;
  int64_t n;
  explicit Guarded(int64_t n_, float fill = kNaN) : buf(static_cast<size_t>(n_ + 16), kNaN), n(n_) {
    for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(8 + i)] = fill;
  }
  float* data() { return buf.data() + 8; }
  float& operator[](int64_t i) { return buf[static_cast<size_t>(8 + i)]; }
  bool guards_nan() const {
    for (int i = 0; i < 8; ++i)
      if (!std::isnan(buf[static_cast<size_t>(i)]) || !std::isnan(buf[static_cast<size_t>(8 + n + i)])) return false;
    return true;
  }
};

// Distance in ulps between two floats of the same sign class (ordered integer representation).
int64_t ulp_diff(float a, float b) {
  auto key = [](float f) {
    int32_t i;
    std::memcpy(&i, &f, 4);
    return i < 0 ? -static_cast<int64_t>(i & 0x7fffffff) : static_cast<int64_t>(i);
  };
  return std::llabs(key(a) - key(b));
}

std::vector<int64_t> sizes_upto(int64_t tile) {
  std::vector<int64_t> s;
  for (int64_t n = 1; n <= 3 * tile + 1; ++n) s.push_back(n);
  for (int64_t n : {63, 65, 127, 129, 255, 1000, 2048, 4099}) s.push_back(n);
  return s;
}

// ---- exp ------------------------------------------------------------------------------------------
// The vector expf against std::exp (the reference; glibc's expf is correctly rounded in nearly all
// cases). Bound: 2 ulp for normal results, 2 units of 2^-149 for subnormal ones (measured maximum over
// every float in [-104, 89] with --exp-sweep: see flashdip/ops.h), exact special values.
struct ExpErr {
  int64_t worst_ulp = 0;
  float worst_x = 0;
  double sub_worst = 0;  // in units of 2^-149, for subnormal references
  int64_t count = 0, over1 = 0, differ = 0;
};

void exp_measure(const OpsKernels& t, const std::vector<float>& xs, ExpErr* e) {
  std::vector<float> y(xs.size(), kNaN);
  t.exp(xs.data(), y.data(), static_cast<int64_t>(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    const float ref = std::exp(xs[i]);
    ++e->count;
    if (std::fabs(ref) < 0x1p-126f) {
      const double d = std::fabs(static_cast<double>(y[i]) - ref) / kTiny;
      e->sub_worst = std::max(e->sub_worst, d);
      continue;
    }
    const int64_t u = std::isnan(y[i]) ? 1 << 30 : ulp_diff(y[i], ref);
    if (u > 1) ++e->over1;
    if (u > 0) ++e->differ;
    if (u > e->worst_ulp) e->worst_ulp = u, e->worst_x = xs[i];
  }
}

void test_exp() {
  const float inf = std::numeric_limits<float>::infinity();
  for (const OpsKernels* t : simd_tables()) {
    tested(KernelOp::exp, TYPE_F32, t->isa);
    // A strided walk over the bit patterns of [-104, 89] (every 509th float: ~4.4M values).
    std::vector<float> xs;
    ExpErr e;
    for (uint32_t b = 0; b <= 0x42b20000u; b += 509) {  // +0 .. 89
      float f;
      std::memcpy(&f, &b, 4);
      xs.push_back(f);
      xs.push_back(-f * (104.0f / 89.0f));
      if (xs.size() >= 1 << 16) exp_measure(*t, xs, &e), xs.clear();
    }
    exp_measure(*t, xs, &e);
    check(e.worst_ulp <= 2 && e.sub_worst <= 2.0, "%s exp: worst %lld ulp at %a (%lld of %lld over 1 ulp), subnormal %.2f",
          t->isa, (long long)e.worst_ulp, e.worst_x, (long long)e.over1, (long long)e.count, e.sub_worst);
    // special values and the clamping edges, at every lane position (n = 1..17)
    const float sp[] = {0.0f, -0.0f, 1.0f, -1.0f, inf, -inf, 88.72283f, 88.72284f, 89.0f, 89.5f, 1e30f,
                        -87.33654f, -103.9f, -103.97208f, -104.0f, -104.5f, -1e30f, 0x1p-30f, -0x1p-30f};
    const float want[] = {1.0f, 1.0f, std::exp(1.0f), std::exp(-1.0f), inf, 0.0f, std::exp(88.72283f), inf, inf, inf, inf,
                          std::exp(-87.33654f), std::exp(-103.9f), std::exp(-103.97208f), 0.0f, 0.0f, 0.0f, 1.0f, 1.0f};
    const int ns = sizeof sp / sizeof sp[0];
    bool ok = true;
    for (int s = 0; s < ns; ++s)
      for (int64_t n = 1; n <= 17; ++n) {
        std::vector<float> x(static_cast<size_t>(n), 0.5f);
        Guarded y(n);
        x[static_cast<size_t>(n - 1)] = sp[s];
        t->exp(x.data(), y.data(), n);
        const float got = y[n - 1];
        const bool good = std::isinf(want[s]) || want[s] == 0 ? got == want[s]
                                                              : (ulp_diff(got, want[s]) <= 2 ||
                                                                 std::fabs(static_cast<double>(got) - want[s]) <= 2 * kTiny);
        if (!good || !y.guards_nan() || std::isnan(y[0])) {
          if (ok) std::fprintf(stderr, "%s exp(%a) = %a, want %a (n=%lld)\n", t->isa, sp[s], got, want[s], (long long)n);
          ok = false;
        }
      }
    check(ok, "%s exp special values, guards", t->isa);
    std::vector<float> x = {kNaN, 1.0f, kNaN, -kNaN, 2.0f, 3.0f, 4.0f, 5.0f, kNaN};
    std::vector<float> y(x.size());
    t->exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
    check(std::isnan(y[0]) && std::isnan(y[2]) && std::isnan(y[3]) && std::isnan(y[8]) && !std::isnan(y[1]),
          "%s exp(NaN) = NaN", t->isa);
    // in place
    std::vector<float> z = {1.0f, 2.0f, -3.0f, 0.25f, 7.0f, -9.0f, 11.0f, 0.0f, 13.0f, -0.5f, 2.5f};
    std::vector<float> ref(z.size());
    for (size_t i = 0; i < z.size(); ++i) ref[i] = std::exp(z[i]);
    t->exp(z.data(), z.data(), static_cast<int64_t>(z.size()));
    ok = true;
    for (size_t i = 0; i < z.size(); ++i) ok = ok && ulp_diff(z[i], ref[i]) <= 2;
    check(ok, "%s exp in place", t->isa);
  }
}

// Every float in [-104, 89] (not a test: documents the bound).
void exp_sweep() {
  for (const OpsKernels* t : simd_tables()) {
    ExpErr e;
    std::vector<float> xs;
    xs.reserve(1 << 20);
    auto flush = [&] { exp_measure(*t, xs, &e), xs.clear(); };
    for (uint32_t b = 0; b <= 0x42b20000u; ++b) {  // +0 .. 89
      float f;
      std::memcpy(&f, &b, 4);
      xs.push_back(f);
      if (xs.size() == 1 << 20) flush();
    }
    for (uint32_t b = 0x80000000u; b <= 0xc2d00000u; ++b) {  // -0 .. -104
      float f;
      std::memcpy(&f, &b, 4);
      xs.push_back(f);
      if (xs.size() == 1 << 20) flush();
    }
    flush();
    std::printf("exp sweep %-6s %lld floats in [-104, 89]: worst %lld ulp at %a, %.4f%% differ, %lld over 1 ulp; "
                "subnormal results within %.2f x 2^-149\n",
                t->isa, (long long)e.count, (long long)e.worst_ulp, e.worst_x,
                100.0 * static_cast<double>(e.differ) / static_cast<double>(e.count), (long long)e.over1, e.sub_worst);
  }
}

// ---- rmsnorm --------------------------------------------------------------------------------------
// Bound: 4 ulp of each output. The squares are the same floats and are summed in double, so the sums
// agree to ~n 2^-53 relative; the mean rounded to float (and the scale) can then differ by one
// rounding in rare cases: <= 1 ulp in the scale, + the two products' roundings.
void test_rmsnorm() {
  Rng rng(21);
  for (const OpsKernels* t : simd_tables()) {
    tested(KernelOp::rmsnorm, TYPE_F32, t->isa);
    int64_t worst = 0, differ = 0, total = 0;
    bool ok = true;
    for (int64_t n : sizes_upto(16)) {
      for (int rep = 0; rep < 2; ++rep) {
        const float mag = rep == 0 ? 1.0f : 300.0f;
        std::vector<float> x(static_cast<size_t>(n)), w(static_cast<size_t>(n));
        for (auto& v : x) v = rng.gauss() * mag;
        for (auto& v : w) v = 1.0f + 0.3f * rng.gauss();
        Guarded ref(n), got(n);
        scalar_table().rmsnorm(x.data(), w.data(), ref.data(), n, 1e-5f);
        t->rmsnorm(x.data(), w.data(), got.data(), n, 1e-5f);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t u = std::isnan(got[i]) ? 1 << 30 : ulp_diff(got[i], ref[i]);
          worst = std::max(worst, u);
          differ += u != 0;
          ++total;
        }
        ok = ok && got.guards_nan();
        // in place (out = x)
        std::vector<float> xi = x;
        t->rmsnorm(xi.data(), w.data(), xi.data(), n, 1e-5f);
        for (int64_t i = 0; i < n; ++i) ok = ok && ulp_diff(xi[static_cast<size_t>(i)], got[i]) == 0;
      }
    }
    check(ok && worst <= 4, "%s rmsnorm vs scalar: worst %lld ulp (%lld of %lld outputs differ), guards/in place %d",
          t->isa, (long long)worst, (long long)differ, (long long)total, (int)ok);
  }
}

// ---- rope -----------------------------------------------------------------------------------------
// Bound per element: |got - ref| <= 2 eps (|x0 c| + |x1 s|) + 2^-140. Each result is within
// eps (|x0 c| + |x1 s|) (two products and a sum, or an FMA with one product) plus its own rounding
// (<= eps |result| <= eps (|x0 c| + |x1 s|)) of the exact value; the difference is at most twice that.
// Dimensions past rot and the guards around the heads must be left bit for bit.
void test_rope() {
  Rng rng(31);
  for (const OpsKernels* t : simd_tables()) {
    tested(KernelOp::rope, TYPE_F32, t->isa);
    double worst = 0;
    bool ok = true;
    int cases = 0;
    for (bool neox : {false, true})
      for (int64_t hd : {2, 4, 6, 8, 10, 14, 16, 18, 24, 32, 34, 48, 64, 66, 128})
        for (int64_t rot : {hd, hd - 2, hd / 2 / 2 * 2}) {
          if (rot <= 0) continue;
          for (int64_t heads : {1, 2, 3, 5}) {
            const int64_t n = heads * hd, half = rot / 2;
            std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
            for (int64_t i = 0; i < half; ++i) {
              const double th = rng.uniform() * 40.0 - 20.0;
              cs[static_cast<size_t>(i)] = static_cast<float>(std::cos(th));
              sn[static_cast<size_t>(i)] = static_cast<float>(std::sin(th));
            }
            Guarded x(n), ref(n), got(n);
            for (int64_t i = 0; i < n; ++i) x[i] = rng.gauss() * 3.0f;
            std::memcpy(ref.data(), x.data(), static_cast<size_t>(n) * 4);
            std::memcpy(got.data(), x.data(), static_cast<size_t>(n) * 4);
            scalar_table().rope(ref.data(), heads, hd, rot, cs.data(), sn.data(), neox);
            t->rope(got.data(), heads, hd, rot, cs.data(), sn.data(), neox);
            ok = ok && got.guards_nan();
            for (int64_t h = 0; h < heads; ++h) {
              for (int64_t i = 0; i < half; ++i) {
                const int64_t a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + half : 2 * i + 1);
                const double mag = std::fabs(x[a] * cs[static_cast<size_t>(i)]) + std::fabs(x[b] * sn[static_cast<size_t>(i)]) +
                                   std::fabs(x[a] * sn[static_cast<size_t>(i)]) + std::fabs(x[b] * cs[static_cast<size_t>(i)]);
                for (int64_t e : {a, b}) {
                  const double d = std::fabs(static_cast<double>(got[e]) - ref[e]);
                  if (std::isnan(got[e]) || d > 2 * kEps * mag + 0x1p-140) ok = false;
                  worst = std::max(worst, d / (kEps * mag + 1e-30));
                }
              }
              for (int64_t i = rot; i < hd; ++i) ok = ok && ulp_diff(got[h * hd + i], x[h * hd + i]) == 0;
            }
            ++cases;
          }
        }
    check(ok, "%s rope vs scalar (%d shapes): worst %.2f eps x (|x0 c| + |x1 s|) (bound 2), rest untouched", t->isa,
          cases, worst);
  }
}

// ---- softmax --------------------------------------------------------------------------------------
// Bound: |got - ref| <= 8 eps |ref| + 8 x 2^-149. Each exp is within 2 ulp (= 4 eps) of std::exp's
// (itself within 1/2 ulp), the double sums agree to ~n 2^-53 so the two 1/sum differ by <= 1 rounding
// (2 eps), plus the final product's rounding in each (2 eps); subnormal outputs get an absolute slack.
void test_softmax() {
  Rng rng(41);
  for (const OpsKernels* t : simd_tables()) {
    tested(KernelOp::softmax, TYPE_F32, t->isa);
    double worst = 0;
    bool ok = true;
    for (int64_t n : sizes_upto(8))
      for (float spread : {1.0f, 10.0f, 40.0f}) {
        Guarded ref(n), got(n);
        for (int64_t i = 0; i < n; ++i) ref[i] = got[i] = rng.gauss() * spread;
        scalar_table().softmax(ref.data(), n);
        t->softmax(got.data(), n);
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
          if (std::isnan(got[i]) || d > 8 * kEps * std::fabs(ref[i]) + 8 * kTiny) ok = false;
          worst = std::max(worst, d / (kEps * std::fabs(ref[i]) + kTiny));
          sum += got[i];
        }
        ok = ok && got.guards_nan() && std::fabs(sum - 1.0) < 1e-5;
      }
    // all equal, and a single element
    for (int64_t n : {1, 7, 8, 9, 33}) {
      Guarded x(n, -3.5f);
      t->softmax(x.data(), n);
      for (int64_t i = 0; i < n; ++i) ok = ok && std::fabs(x[i] - 1.0f / static_cast<float>(n)) <= 1e-7f;
      ok = ok && x.guards_nan();
    }
    check(ok, "%s softmax vs scalar: worst %.2f eps relative (bound 8), sums to 1, guards", t->isa, worst);
  }
}

// ---- silu_mul -------------------------------------------------------------------------------------
// Bound: |g' - ref| <= 8 eps |ref| + 8 x 2^-149, |h - ref| <= 10 eps |ref| + 8 x 2^-149 x max(1, |u|).
// exp within 2 ulp (4 eps) of std::exp's (+1 eps), 1 + e adds one rounding, the division one more, in
// each version: ~8 eps between the two; the product with u one more rounding on each side.
void test_silu_mul() {
  Rng rng(51);
  const float inf = std::numeric_limits<float>::infinity();
  for (const OpsKernels* t : simd_tables()) {
    tested(KernelOp::silu_mul, TYPE_F32, t->isa);
    double worst_g = 0, worst_h = 0;
    bool ok = true;
    for (int64_t n : sizes_upto(8))
      for (int mode = 0; mode < 3; ++mode) {
        std::vector<float> g0(static_cast<size_t>(n)), u(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          float v = rng.gauss() * (mode == 0 ? 1.0f : mode == 1 ? 8.0f : 40.0f);
          if (mode == 2 && i % 5 == 3) v = (i % 2 ? -1.0f : 1.0f) * (80.0f + 30.0f * static_cast<float>(rng.uniform()));
          g0[static_cast<size_t>(i)] = v;
          u[static_cast<size_t>(i)] = rng.gauss();
        }
        Guarded gr(n), hr(n), gg(n), hg(n);
        for (int64_t i = 0; i < n; ++i) gr[i] = gg[i] = g0[static_cast<size_t>(i)];
        scalar_table().silu_mul(gr.data(), u.data(), hr.data(), n);
        t->silu_mul(gg.data(), u.data(), hg.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double dg = std::fabs(static_cast<double>(gg[i]) - gr[i]), dh = std::fabs(static_cast<double>(hg[i]) - hr[i]);
          const double um = std::max(1.0, std::fabs(static_cast<double>(u[static_cast<size_t>(i)])));
          if (std::isnan(gg[i]) || std::isnan(hg[i]) || dg > 8 * kEps * std::fabs(gr[i]) + 8 * kTiny ||
              dh > 10 * kEps * std::fabs(hr[i]) + 8 * kTiny * um)
            ok = false;
          worst_g = std::max(worst_g, dg / (kEps * std::fabs(gr[i]) + kTiny));
          worst_h = std::max(worst_h, dh / (kEps * std::fabs(hr[i]) + kTiny * um));
        }
        ok = ok && gg.guards_nan() && hg.guards_nan();
        // h = u (the unfused MLP writes h over the up projection)
        std::vector<float> ga = g0, ua = u;
        t->silu_mul(ga.data(), ua.data(), ua.data(), n);
        for (int64_t i = 0; i < n; ++i) ok = ok && ulp_diff(ua[static_cast<size_t>(i)], hg[i]) == 0 && ulp_diff(ga[static_cast<size_t>(i)], gg[i]) == 0;
      }
    // limits: silu(+inf) = inf, silu(-inf) = NaN (-inf / inf) in both, silu(-200) = -0
    std::vector<float> g = {inf, -200.0f, 0.0f, 200.0f, -0.0f}, u = {1, 1, 1, 1, 1}, h(5);
    std::vector<float> gr = g, hr(5);
    t->silu_mul(g.data(), u.data(), h.data(), 5);
    scalar_table().silu_mul(gr.data(), u.data(), hr.data(), 5);
    ok = ok && g[0] == inf && g[1] == 0.0f && g[2] == 0.0f && g[3] == 200.0f && g[4] == 0.0f;
    check(ok, "%s silu_mul vs scalar: worst g %.2f eps, h %.2f eps (bounds 8, 10), h = u, limits, guards", t->isa,
          worst_g, worst_h);
  }
}

// ---- attention ------------------------------------------------------------------------------------
// K/V rows in one exact-size allocation (the last row ends at the end of it, so ASan catches an
// over-read), rows stride > hd elements with NaN in between (an element past hd must not be read).
struct KvRows {
  std::vector<uint8_t> mem;
  std::vector<float> val;  // [len][hd], the exact f32 values of the rows
  size_t stride = 0;
  void build(uint32_t type, int64_t len, int64_t hd, int64_t pad, Rng& rng) {
    const size_t el = type == TYPE_F32 ? 4 : 2;
    stride = static_cast<size_t>(hd + pad) * el;
    mem.assign(len > 0 ? (static_cast<size_t>(len - 1) * stride + static_cast<size_t>(hd) * el) : 0, 0);
    val.assign(static_cast<size_t>(len * hd), 0.0f);
    for (int64_t j = 0; j < len; ++j)
      for (int64_t i = 0; i < hd + pad; ++i) {
        if (j == len - 1 && i >= hd) break;
        uint8_t* p = mem.data() + static_cast<size_t>(j) * stride + static_cast<size_t>(i) * el;
        float v = i < hd ? rng.gauss() * (rng.uniform() < 0.05 ? 6.0f : 1.0f) : kNaN;
        if (type == TYPE_F16) {
          const uint16_t h = fp32_to_fp16(v);
          std::memcpy(p, &h, 2);
          v = fp16_to_fp32(h);
        } else {
          std::memcpy(p, &v, 4);
        }
        if (i < hd) val[static_cast<size_t>(j * hd + i)] = v;
      }
  }
};

double gamma_n(int64_t n) { return static_cast<double>(n) * kEps / (1.0 - static_cast<double>(n) * kEps); }

// Bound: |got - ref| <= 2 gamma_{hd+1} scale sum_i |q_i k_i| + 2 eps |ref|: the two versions sum the same
// products in different orders (recursive vs 8/4 lanes and a tree), each within gamma_hd sum |terms|
// of the exact dot, plus the roundings of the products and of the scaling.
// GeGLU: ggml's f16-table GELU (input and output rounded to f16, saturated outside (-10, 10)) times u.
void test_gelu_mul() {
  const float xs[] = {0.0f, 1.0f, -1.0f, 0.3f, 2.5f, -3.7f, 9.99f, 10.0f, 12.0f, -10.0f, -11.0f, 1e-3f};
  const int64_t n = static_cast<int64_t>(sizeof(xs) / sizeof(xs[0]));
  std::vector<float> g(xs, xs + n), u(static_cast<size_t>(n)), h(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) u[static_cast<size_t>(i)] = 0.5f + 0.25f * static_cast<float>(i);
  gelu_mul_f32(g.data(), u.data(), h.data(), n);
  bool ok = true, near = true;
  for (int64_t i = 0; i < n; ++i) {
    const float x = xs[i];
    auto gelu = [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * v * (1 + 0.044715 * v * v))); };
    const double exact = gelu(x);
    float want;
    if (x <= -10.0f) want = 0.0f;
    else if (x >= 10.0f) want = x;
    else want = fp16_to_fp32(fp32_to_fp16(static_cast<float>(gelu(fp16_to_fp32(fp32_to_fp16(x))))));
    const size_t k = static_cast<size_t>(i);
    // The table's entry: GELU at the f16 rounding of x, rounded to f16 (within a half ulp of that,
    // as float and double tanh may round differently).
    if (x > -10.0f && x < 10.0f && std::fabs(g[k] - want) > 1e-3 * std::fabs(want)) ok = false;
    if ((x <= -10.0f || x >= 10.0f) && g[k] != want) ok = false;
    if (h[k] != g[k] * u[k]) ok = false;
    // Near the exact GELU: relative 1e-3 where it is not tiny (the far left tail is steep in x).
    near = near && std::fabs(g[k] - exact) <= 2e-3 * std::fabs(exact) + 2e-6;
  }
  check(ok && g[0] == 0.0f && g[1] == fp16_to_fp32(fp32_to_fp16(0.8411920f)), "gelu_mul: f16-table GELU (saturated outside (-10, 10)), h = g * u");
  check(near, "gelu_mul: within f16 rounding of the exact tanh GELU");
}

void test_attn_scores() {
  Rng rng(61);
  for (const OpsKernels* t : simd_tables())
    for (uint32_t type : {TYPE_F32, TYPE_F16}) {
      tested(KernelOp::attn_scores, type, t->isa);
      const int slot = type == TYPE_F32 ? ops_impl::KV_F32 : ops_impl::KV_F16;
      double worst = 0;
      bool ok = true;
      int cases = 0;
      for (int64_t hd : {1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 64, 65, 128, 520})
        for (int64_t len : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 100, 257})
          for (int64_t nq : {1, 3, 4}) {
            if (hd > 33 && len > 25 && nq != 4) continue;  // keep the run short under qemu
            const int64_t pad = 1 + (hd + len) % 3, ss = len + 1 + len % 4;
            KvRows k;
            k.build(type, len, hd, pad, rng);
            std::vector<float> q(static_cast<size_t>(nq * hd));
            for (auto& v : q) v = rng.gauss();
            const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
            Guarded ref(nq * ss), got(nq * ss);
            scalar_table().attn_scores[slot](q.data(), nq, hd, k.mem.data(), k.stride, len, scale, ref.data(), ss);
            t->attn_scores[slot](q.data(), nq, hd, k.mem.data(), k.stride, len, scale, got.data(), ss);
            ok = ok && got.guards_nan();
            for (int64_t g = 0; g < nq; ++g) {
              for (int64_t j = 0; j < len; ++j) {
                double mag = 0;
                for (int64_t i = 0; i < hd; ++i)
                  mag += std::fabs(static_cast<double>(q[static_cast<size_t>(g * hd + i)]) * k.val[static_cast<size_t>(j * hd + i)]);
                mag *= scale;
                const float r = ref[g * ss + j], o = got[g * ss + j];
                const double d = std::fabs(static_cast<double>(o) - r);
                if (std::isnan(o) || d > 2 * gamma_n(hd + 1) * mag + 2 * kEps * std::fabs(r)) ok = false;
                worst = std::max(worst, d / (gamma_n(hd + 1) * mag + 1e-30));
              }
              for (int64_t j = len; j < ss; ++j) ok = ok && std::isnan(got[g * ss + j]);  // not written
            }
            ++cases;
          }
      check(ok, "%s attn_scores %s vs scalar (%d shapes): worst %.3f gamma_{hd+1} sum|q k| (bound 2), unwritten stay NaN",
            t->isa, type_name(type), cases, worst);
    }
}

// Bound: |got - ref| <= 2 gamma_{len+1} sum_j |p_j v_j|: both sum over j in order (FMA or a product and
// a sum), each within gamma_{len+1} sum |terms| of the exact value.
void test_attn_values() {
  Rng rng(71);
  for (const OpsKernels* t : simd_tables())
    for (uint32_t type : {TYPE_F32, TYPE_F16}) {
      tested(KernelOp::attn_values, type, t->isa);
      const int slot = type == TYPE_F32 ? ops_impl::KV_F32 : ops_impl::KV_F16;
      double worst = 0;
      bool ok = true;
      int cases = 0;
      for (int64_t hd : {1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 31, 32, 33, 48, 64, 65, 128, 520})
        for (int64_t len : {0, 1, 2, 3, 5, 8, 9, 17, 25, 100, 257})
          for (int64_t nq : {1, 2, 3, 4, 5, 7, 8, 9}) {
            if ((hd > 33 || len > 25) && nq % 4 != 3 && nq != 8) continue;  // keep the run short under qemu
            const int64_t pad = 1 + (hd + len) % 3, ps = len + 1 + len % 5;
            KvRows v;
            v.build(type, len, hd, pad, rng);
            // probabilities (any non-negative weights will do), NaN past len: must not be read
            std::vector<float> p(static_cast<size_t>(nq * ps), kNaN);
            for (int64_t g = 0; g < nq; ++g)
              for (int64_t j = 0; j < len; ++j) p[static_cast<size_t>(g * ps + j)] = static_cast<float>(rng.uniform());
            Guarded ref(nq * hd), got(nq * hd);
            scalar_table().attn_values[slot](p.data(), ps, nq, hd, v.mem.data(), v.stride, len, ref.data());
            t->attn_values[slot](p.data(), ps, nq, hd, v.mem.data(), v.stride, len, got.data());
            ok = ok && got.guards_nan();
            for (int64_t g = 0; g < nq; ++g)
              for (int64_t i = 0; i < hd; ++i) {
                double mag = 0;
                for (int64_t j = 0; j < len; ++j)
                  mag += std::fabs(static_cast<double>(p[static_cast<size_t>(g * ps + j)]) * v.val[static_cast<size_t>(j * hd + i)]);
                const float r = ref[g * hd + i], o = got[g * hd + i];
                const double d = std::fabs(static_cast<double>(o) - r);
                if (std::isnan(o) || d > 2 * gamma_n(len + 1) * mag) ok = false;
                worst = std::max(worst, d / (gamma_n(len + 1) * mag + 1e-30));
              }
            ++cases;
          }
      check(ok, "%s attn_values %s vs scalar (%d shapes): worst %.3f gamma_{len+1} sum|p v| (bound 2), unread p/V past len/hd",
            t->isa, type_name(type), cases, worst);
    }
}

// ---- the scalar twins against float64 references ----------------------------------------------------
void test_scalar_reference() {
  Rng rng(81);
  const OpsKernels& s = scalar_table();
  // rmsnorm
  {
    const int64_t n = 37;
    std::vector<float> x(n), w(n), y(n);
    for (auto& v : x) v = rng.gauss();
    for (auto& v : w) v = rng.gauss();
    s.rmsnorm(x.data(), w.data(), y.data(), n, 1e-6f);
    double ms = 0;
    for (float v : x) ms += static_cast<double>(v) * v;
    const double sc = 1.0 / std::sqrt(ms / n + 1e-6);
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok = ok && std::fabs(y[i] - x[i] * sc * w[i]) <= 4 * kEps * std::fabs(x[i] * sc * w[i]) + 1e-30;
    check(ok, "scalar rmsnorm vs float64");
    tested(KernelOp::rmsnorm, TYPE_F32, "scalar");
  }
  // softmax
  {
    std::vector<float> x = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    std::vector<double> e(x.size());
    double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) sum += e[i] = std::exp(static_cast<double>(x[i]) - 3.0);
    s.softmax(x.data(), 5);
    bool ok = true;
    for (size_t i = 0; i < x.size(); ++i) ok = ok && std::fabs(x[i] - e[i] / sum) <= 4 * kEps * (e[i] / sum);
    check(ok, "scalar softmax vs float64");
    tested(KernelOp::softmax, TYPE_F32, "scalar");
  }
  // rope: a rotation keeps the norm of each pair; rotating by (cos, sin) of 90 degrees swaps
  {
    std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8};
    const float c[2] = {0.0f, 1.0f}, sn[2] = {1.0f, 0.0f};
    s.rope(v.data(), 2, 4, 4, c, sn, false);
    check(v[0] == -2 && v[1] == 1 && v[2] == 3 && v[3] == 4 && v[4] == -6 && v[5] == 5, "scalar rope (normal) known values");
    std::vector<float> w = {1, 2, 3, 4};
    s.rope(w.data(), 1, 4, 4, c, sn, true);
    check(w[0] == -3 && w[2] == 1 && w[1] == 2 && w[3] == 4, "scalar rope (neox) known values");
    tested(KernelOp::rope, TYPE_F32, "scalar");
  }
  // attention: scores and values against float64 on one small case
  {
    const int64_t hd = 5, len = 3;
    std::vector<float> q(hd), k(len * hd), sc(len), out(hd);
    for (auto& v : q) v = rng.gauss();
    for (auto& v : k) v = rng.gauss();
    s.attn_scores[ops_impl::KV_F32](q.data(), 1, hd, k.data(), hd * 4, len, 0.5f, sc.data(), len);
    bool ok = true;
    for (int64_t j = 0; j < len; ++j) {
      double d = 0;
      for (int64_t i = 0; i < hd; ++i) d += static_cast<double>(q[i]) * k[j * hd + i];
      ok = ok && std::fabs(sc[j] - 0.5 * d) <= 1e-5;
    }
    s.attn_values[ops_impl::KV_F32](sc.data(), len, 1, hd, k.data(), hd * 4, len, out.data());
    for (int64_t i = 0; i < hd; ++i) {
      double d = 0;
      for (int64_t j = 0; j < len; ++j) d += static_cast<double>(sc[j]) * k[j * hd + i];
      ok = ok && std::fabs(out[i] - d) <= 1e-5;
    }
    check(ok, "scalar attention vs float64");
    // the same with the K/V rows in f16 (values exact in f16: the conversion adds no error)
    std::vector<uint16_t> k16(k.size());
    for (size_t i = 0; i < k.size(); ++i) k16[i] = fp32_to_fp16(k[i]), k[i] = fp16_to_fp32(k16[i]);
    std::vector<float> sc16(len), out16(hd), sc32(len), out32(hd);
    s.attn_scores[ops_impl::KV_F16](q.data(), 1, hd, k16.data(), hd * 2, len, 0.5f, sc16.data(), len);
    s.attn_scores[ops_impl::KV_F32](q.data(), 1, hd, k.data(), hd * 4, len, 0.5f, sc32.data(), len);
    s.attn_values[ops_impl::KV_F16](sc32.data(), len, 1, hd, k16.data(), hd * 2, len, out16.data());
    s.attn_values[ops_impl::KV_F32](sc32.data(), len, 1, hd, k.data(), hd * 4, len, out32.data());
    check(sc16 == sc32 && out16 == out32, "scalar attention with f16 rows = with their f32 values");
    for (uint32_t type : {TYPE_F32, TYPE_F16})
      tested(KernelOp::attn_scores, type, "scalar"), tested(KernelOp::attn_values, type, "scalar");
  }
  // exp and silu_mul against float64
  {
    const std::vector<float> x = {-104.0f, -87.5f, -20.25f, -1.0f, -0x1p-20f, 0.0f, 0.3f, 1.0f, 10.5f, 88.0f};
    std::vector<float> y(x.size()), g(x.begin() + 1, x.end()), h(g.size()), u(g.size(), 1.5f);  // silu: x >= -88
    s.exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
    s.silu_mul(g.data(), u.data(), h.data(), static_cast<int64_t>(g.size()));
    bool ok_exp = true, ok_silu = true;
    for (size_t i = 0; i < x.size(); ++i) {
      const double e = std::exp(static_cast<double>(x[i]));
      ok_exp = ok_exp && std::fabs(y[i] - e) <= 2 * kEps * e + 2 * kTiny;
    }
    for (size_t i = 0; i < g.size(); ++i) {
      const double xi = x[i + 1], si = xi / (1.0 + std::exp(-xi));
      ok_silu = ok_silu && std::fabs(g[i] - si) <= 8 * kEps * std::fabs(si) + kTiny &&
                std::fabs(h[i] - 1.5 * si) <= 10 * kEps * std::fabs(1.5 * si) + kTiny;
    }
    check(ok_exp, "scalar exp vs float64");
    check(ok_silu, "scalar silu_mul vs float64");
    tested(KernelOp::exp, TYPE_F32, "scalar");
    tested(KernelOp::silu_mul, TYPE_F32, "scalar");
  }
}

// ---- dispatch: the public entry points follow kernels_isa() --------------------------------------------
void test_dispatch() {
  const std::string initial = kernels_isa();
  for (const std::string& isa : isas()) {
    check(kernels_set_isa(isa.c_str()), "set ISA %s", isa.c_str());
    const OpsKernels& t = ops_impl::ops_kernels();
    const std::string want = isa == "neon-dotprod" ? "neon" : isa;
    check(want == t.isa && &t == ops_impl::ops_kernels_for(isa.c_str()), "ops follow ISA %s (got %s)", isa.c_str(), t.isa);
    // one call through each public entry point agrees with the table's kernel
    std::vector<float> x = {0.5f, -1.0f, 2.0f, 0.25f, 3.0f, -2.0f, 1.5f, 0.75f, -0.5f}, y(9), z(9), w(9, 1.0f);
    rmsnorm_f32(x.data(), w.data(), y.data(), 9, 1e-5f);
    t.rmsnorm(x.data(), w.data(), z.data(), 9, 1e-5f);
    check(std::memcmp(y.data(), z.data(), sizeof(float) * 9) == 0, "rmsnorm_f32 dispatches to %s", t.isa);
  }
  kernels_set_isa(initial.c_str());
  check(ops_impl::ops_kernels_for("no-such-isa") == nullptr, "unknown ISA has no ops table");
  // unsupported KV type: NaN, not stale values
  std::vector<float> s(4, 0.0f), q(2, 1.0f), o(2, 0.0f);
  std::vector<uint8_t> k(16);
#ifdef NDEBUG
  attn_scores(TYPE_Q8_0, q.data(), 1, 2, k.data(), 8, 2, 1.0f, s.data(), 2);
  attn_values(TYPE_Q8_0, s.data(), 2, 1, 2, k.data(), 8, 2, o.data());
  check(std::isnan(s[0]) && std::isnan(s[1]) && std::isnan(o[0]) && std::isnan(o[1]), "attention on an unsupported KV type gives NaN");
#endif
  // len = 0: values are zeros
  std::vector<float> out(6, kNaN);
  attn_values(TYPE_F16, nullptr, 0, 2, 3, nullptr, 6, 0, out.data());
  bool zero = true;
  for (float v : out) zero = zero && v == 0.0f;
  check(zero, "attn_values with len 0 writes zeros");
}

// ---- benchmark (not a test) ---------------------------------------------------------------------------
using Clock = std::chrono::steady_clock;

// Best-of time per call, ns: the op `f` run `reps` times per sample, samples alternating between the
// scalar and SIMD versions so that a shared machine's load hits both alike.
template <class F>
double time_ns(F&& f, int reps) {
  const auto t0 = Clock::now();
  for (int r = 0; r < reps; ++r) f();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / reps;
}

void bench() {
  const std::vector<const OpsKernels*> simd = simd_tables();
  if (simd.empty()) return;
  const OpsKernels& s = scalar_table();
  Rng rng(99);
  auto randv = [&](int64_t n, float mag) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = rng.gauss() * mag;
    return v;
  };
  // Shapes of the random 1B model (dim 2048, ffn 5632, 32 heads / 4 KV heads of 64) at a context of 512.
  const int64_t dim = 2048, ffn = 5632, hd = 64, heads = 32, group = 8, ctx = 512;
  std::vector<float> x = randv(dim, 1), w = randv(dim, 1), out(dim);
  std::vector<float> qv = randv(heads * hd, 1), cs(hd / 2), sn(hd / 2);
  for (int64_t i = 0; i < hd / 2; ++i) cs[i] = std::cos(0.1f * i), sn[i] = std::sin(0.1f * i);
  std::vector<float> sm0 = randv(ctx, 3), sm(ctx);
  std::vector<float> g0 = randv(ffn, 2), u = randv(ffn, 1), g(ffn), h(ffn);
  std::vector<float> ex = randv(4096, 10), ey(4096);
  Rng r2(5);
  KvRows k32, k16;
  k32.build(TYPE_F32, ctx, hd, 4 * hd - hd, r2);  // rows of a 4-KV-head cache: stride 4 hd
  k16.build(TYPE_F16, ctx, hd, 4 * hd - hd, r2);
  std::vector<float> q = randv(group * hd, 1), sc(group * ctx), p(group * ctx), o(group * hd);
  for (auto& v : p) v = static_cast<float>(rng.uniform()) / ctx;

  std::printf("\nper-op time, one thread (best of 7 alternating samples; ns per call):\n");
  std::printf("%-34s %12s", "op (1B-model shape)", "scalar");
  for (const OpsKernels* t : simd) std::printf(" %12s %8s", t->isa, "speedup");
  std::printf("\n");
  auto row = [&](const char* name, int reps, auto fn) {
    double best_s = 1e300;
    std::vector<double> best(simd.size(), 1e300);
    for (int sample = 0; sample < 7; ++sample) {
      best_s = std::min(best_s, time_ns([&] { fn(s); }, reps));
      for (size_t i = 0; i < simd.size(); ++i) best[i] = std::min(best[i], time_ns([&] { fn(*simd[i]); }, reps));
    }
    std::printf("%-34s %12.0f", name, best_s);
    for (size_t i = 0; i < simd.size(); ++i) std::printf(" %12.0f %7.2fx", best[i], best_s / best[i]);
    std::printf("\n");
  };
  row("rmsnorm n=2048", 200, [&](const OpsKernels& t) { t.rmsnorm(x.data(), w.data(), out.data(), dim, 1e-5f); });
  row("rope normal 32 heads x 64", 200, [&](const OpsKernels& t) {
    t.rope(qv.data(), heads, hd, hd, cs.data(), sn.data(), false);
  });
  row("rope neox 32 heads x 64", 200, [&](const OpsKernels& t) {
    t.rope(qv.data(), heads, hd, hd, cs.data(), sn.data(), true);
  });
  row("softmax n=512", 200, [&](const OpsKernels& t) {
    std::memcpy(sm.data(), sm0.data(), sizeof(float) * ctx);
    t.softmax(sm.data(), ctx);
  });
  row("exp n=4096", 100, [&](const OpsKernels& t) { t.exp(ex.data(), ey.data(), 4096); });
  row("silu_mul n=5632", 100, [&](const OpsKernels& t) {
    std::memcpy(g.data(), g0.data(), sizeof(float) * ffn);
    t.silu_mul(g.data(), u.data(), h.data(), ffn);
  });
  row("attn_scores f32 8 q x 64, len 512", 20, [&](const OpsKernels& t) {
    t.attn_scores[ops_impl::KV_F32](q.data(), group, hd, k32.mem.data(), k32.stride, ctx, 0.125f, sc.data(), ctx);
  });
  row("attn_scores f16 8 q x 64, len 512", 20, [&](const OpsKernels& t) {
    t.attn_scores[ops_impl::KV_F16](q.data(), group, hd, k16.mem.data(), k16.stride, ctx, 0.125f, sc.data(), ctx);
  });
  row("attn_values f32 8 q x 64, len 512", 20, [&](const OpsKernels& t) {
    t.attn_values[ops_impl::KV_F32](p.data(), ctx, group, hd, k32.mem.data(), k32.stride, ctx, o.data());
  });
  row("attn_values f16 8 q x 64, len 512", 20, [&](const OpsKernels& t) {
    t.attn_values[ops_impl::KV_F16](p.data(), ctx, group, hd, k16.mem.data(), k16.stride, ctx, o.data());
  });
  row("attention f16 (all three), len 512", 20, [&](const OpsKernels& t) {
    t.attn_scores[ops_impl::KV_F16](q.data(), group, hd, k16.mem.data(), k16.stride, ctx, 0.125f, sc.data(), ctx);
    for (int64_t gq = 0; gq < group; ++gq) t.softmax(sc.data() + gq * ctx, ctx);
    t.attn_values[ops_impl::KV_F16](sc.data(), ctx, group, hd, k16.mem.data(), k16.stride, ctx, o.data());
  });
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) g_verbose = g_verbose || std::strcmp(argv[i], "-v") == 0;
  test_scalar_reference();
  test_exp();
  test_rmsnorm();
  test_rope();
  test_softmax();
  test_silu_mul();
  test_gelu_mul();
  test_attn_scores();
  test_attn_values();
  test_dispatch();
  check_registry_tested("test_ops");
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--bench") == 0) bench();
    if (std::strcmp(argv[i], "--exp-sweep") == 0) exp_sweep();
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
