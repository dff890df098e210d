// Native tests for the dense kernels: conversions, hand-built blocks, quantizer round trips, and every
// SIMD ISA available on this CPU against the scalar twin (and the scalar twin against a float64 dot of
// the dequantized operands). Prints "N passed, M failed" last and exits non-zero on any failure.
//
//   test_kernels           run the tests
//   test_kernels --bench   also print single-thread GEMV throughput per ISA and type (not a test)
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

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace fd;
using namespace fd_test;

namespace {

// ---- deterministic random numbers ------------------------------------------------------------
float u2f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- 1. half-precision conversions -----------------------------------------------------------

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hw_fp32_to_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
#endif

void test_half() {
  struct Case {
    float f;
    uint16_t h;
  };
  const Case cases[] = {
      {0.0f, 0x0000},         {-0.0f, 0x8000},         {1.0f, 0x3c00},        {-2.0f, 0xc000},
      {65504.0f, 0x7bff},     {65519.99f, 0x7bff},     {65520.0f, 0x7c00},    {1e9f, 0x7c00},
      {-1e9f, 0xfc00},        {0x1p-24f, 0x0001},      {0x1p-25f, 0x0000},    {0x1.8p-24f, 0x0002},
      {0x1.4p-24f, 0x0001},   {0x1p-14f, 0x0400},      {0x1.ff8p-15f, 0x03ff}, {0x1.ffcp-15f, 0x0400}, {0x1.ffbp-15f, 0x03ff},
      {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x1.8p-10f, 0x3c02}, {1.0f + 0x1p-10f, 0x3c01},
      {std::numeric_limits<float>::infinity(), 0x7c00},
  };
  bool ok = true;
  for (const Case& c : cases) {
    const uint16_t h = fp32_to_fp16(c.f);
    if (h != c.h) std::fprintf(stderr, "fp32_to_fp16(%a) = %04x, want %04x\n", c.f, h, c.h), ok = false;
  }
  check(ok, "fp32_to_fp16 known values");
  check(std::isnan(fp16_to_fp32(fp32_to_fp16(kNaN))), "fp16 NaN stays NaN");
  // Every half: decode -> encode is the identity (NaNs stay NaN).
  ok = true;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
    if (nan ? !std::isnan(f) : fp32_to_fp16(f) != h) ok = false;
  }
  check(ok, "fp16 decode/encode identity over all 65536 halves");
  check(fp16_to_fp32(0x0001) == 0x1p-24f && fp16_to_fp32(0x7bff) == 65504.0f && fp16_to_fp32(0xc000) == -2.0f,
        "fp16_to_fp32 known values");
#if defined(__x86_64__)
  // Against the F16C hardware conversion (round to nearest even) on random bit patterns.
  if (std::strstr(kernels_available_isas(), "avx2")) {
    Rng rng(7);
    int bad = 0;
    for (int i = 0; i < 2000000; ++i) {
      const float f = u2f(static_cast<uint32_t>(rng.next()));
      if (std::isnan(f)) continue;
      if (fp32_to_fp16(f) != hw_fp32_to_fp16(f)) ++bad;
    }
    check(bad == 0, "fp32_to_fp16 matches F16C on 2M random floats (%d differ)", bad);
  }
#endif
  // bf16
  check(fp32_to_bf16(1.0f) == 0x3f80 && bf16_to_fp32(0x3f80) == 1.0f, "bf16 1.0");
  check(fp32_to_bf16(u2f(0x3f808000)) == 0x3f80, "bf16 tie to even (down)");
  check(fp32_to_bf16(u2f(0x3f818000)) == 0x3f82, "bf16 tie to even (up)");
  check(fp32_to_bf16(u2f(0x3f808001)) == 0x3f81, "bf16 above tie rounds up");
  check(fp32_to_bf16(u2f(0x7f7fffff)) == 0x7f80, "bf16 overflow to inf");
  check(std::isnan(bf16_to_fp32(fp32_to_bf16(kNaN))), "bf16 NaN stays NaN");
  ok = true;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(f) && fp32_to_bf16(f) != h) ok = false;
  }
  check(ok, "bf16 decode/encode identity");
}

// ---- 2. hand-built blocks ----------------------------------------------------------------------
// Each packer below is written from the format description, element by element (independently of
// the library's dequantizers), with small integer codes and power-of-two scales so every expected
// value is exact in float.

bool expect_row(uint32_t type, const void* blk, int n, const std::vector<float>& want) {
  std::vector<float> got(n, kNaN);
  dequantize_row(type, blk, got.data(), n);
  for (int i = 0; i < n; ++i)
    if (got[i] != want[i]) {
      std::fprintf(stderr, "%s element %d: got %g want %g\n", type_name(type), i, got[i], want[i]);
      return false;
    }
  return true;
}

void test_known_blocks() {
  {  // q4_0: x = d * (q - 8); element j low nibble of qs[j], element j + 16 high nibble
    block_q4_0 b{};
    b.d = fp32_to_fp16(0.5f);
    std::vector<float> want(32);
    for (int e = 0; e < 32; ++e) {
      const int q = (e * 7 + 3) % 16;
      b.qs[e % 16] |= static_cast<uint8_t>(e < 16 ? q : q << 4);
      want[e] = 0.5f * static_cast<float>(q - 8);
    }
    check(expect_row(TYPE_Q4_0, &b, 32, want), "q4_0 hand-built block");
  }
  {  // q4_1: x = d * q + m
    block_q4_1 b{};
    b.d = fp32_to_fp16(0.25f);
    b.m = fp32_to_fp16(-3.0f);
    std::vector<float> want(32);
    for (int e = 0; e < 32; ++e) {
      const int q = (e * 5 + 1) % 16;
      b.qs[e % 16] |= static_cast<uint8_t>(e < 16 ? q : q << 4);
      want[e] = 0.25f * static_cast<float>(q) - 3.0f;
    }
    check(expect_row(TYPE_Q4_1, &b, 32, want), "q4_1 hand-built block");
  }
  {  // q5_0 / q5_1: fifth bit of element e is bit e of the little-endian word qh
    block_q5_0 b{};
    block_q5_1 b1{};
    b.d = fp32_to_fp16(2.0f);
    b1.d = fp32_to_fp16(0.5f);
    b1.m = fp32_to_fp16(1.0f);
    std::vector<float> want(32), want1(32);
    uint32_t qh = 0;
    for (int e = 0; e < 32; ++e) {
      const int q = (e * 11 + 5) % 32;
      b.qs[e % 16] |= static_cast<uint8_t>(e < 16 ? (q & 15) : (q & 15) << 4);
      b1.qs[e % 16] |= static_cast<uint8_t>(e < 16 ? (q & 15) : (q & 15) << 4);
      qh |= static_cast<uint32_t>(q >> 4) << e;
      want[e] = 2.0f * static_cast<float>(q - 16);
      want1[e] = 0.5f * static_cast<float>(q) + 1.0f;
    }
    const uint8_t le[4] = {static_cast<uint8_t>(qh), static_cast<uint8_t>(qh >> 8), static_cast<uint8_t>(qh >> 16),
                           static_cast<uint8_t>(qh >> 24)};
    std::memcpy(b.qh, le, 4);
    std::memcpy(b1.qh, le, 4);
    check(expect_row(TYPE_Q5_0, &b, 32, want), "q5_0 hand-built block");
    check(expect_row(TYPE_Q5_1, &b1, 32, want1), "q5_1 hand-built block");
  }
  {  // q8_0
    block_q8_0 b{};
    b.d = fp32_to_fp16(-0.125f);
    std::vector<float> want(32);
    for (int e = 0; e < 32; ++e) {
      const int q = e * 8 - 128;
      b.qs[e] = static_cast<int8_t>(q);
      want[e] = -0.125f * static_cast<float>(q);
    }
    check(expect_row(TYPE_Q8_0, &b, 32, want), "q8_0 hand-built block");
  }
  {  // q2_k: element e = 128c + 32s + l: bits 2s..2s+1 of qs[32c + l]; sub-block e/16: scales nibbles
    block_q2_K b{};
    b.d = fp32_to_fp16(0.5f);
    b.dmin = fp32_to_fp16(0.25f);
    std::vector<float> want(256);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(((j * 3) % 16) | (((15 - j) % 16) << 4));
    for (int e = 0; e < 256; ++e) {
      const int q = (e * 3 + e / 7) % 4, c = e / 128, s = (e % 128) / 32, l = e % 32;
      b.qs[32 * c + l] |= static_cast<uint8_t>(q << (2 * s));
      const int sc = (e / 16 * 3) % 16, m = (15 - e / 16) % 16;
      want[e] = 0.5f * sc * q - 0.25f * m;
    }
    check(expect_row(TYPE_Q2_K, &b, 256, want), "q2_k hand-built block");
  }
  {  // q3_k: q in [-4, 3] = low2 - (hbit ? 0 : 4); 6-bit signed scales (s - 32), s in [0, 63]
    block_q3_K b{};
    b.d = fp32_to_fp16(0.5f);
    int s6[16];
    for (int j = 0; j < 16; ++j) s6[j] = (j * 13 + 7) % 64;
    for (int j = 0; j < 16; ++j) {
      const int lo = s6[j] & 15, hi = s6[j] >> 4;
      b.scales[j % 8] |= static_cast<uint8_t>(j < 8 ? lo : lo << 4);
      b.scales[8 + j % 4] |= static_cast<uint8_t>(hi << (2 * (j / 4)));
    }
    std::vector<float> want(256);
    for (int e = 0; e < 256; ++e) {
      const int q = (e * 5 + 2) % 8 - 4;  // [-4, 3]
      const int low2 = q & 3, hbit = q >= 0 ? 1 : 0;
      const int c = e / 128, s = (e % 128) / 32, l = e % 32;
      b.qs[32 * c + l] |= static_cast<uint8_t>(low2 << (2 * s));
      b.hmask[l] |= static_cast<uint8_t>(hbit << (4 * c + s));
      want[e] = 0.5f * static_cast<float>(s6[e / 16] - 32) * static_cast<float>(q);
    }
    check(expect_row(TYPE_Q3_K, &b, 256, want), "q3_k hand-built block");
  }
  // q4_k / q5_k: 8 sub-blocks of 32, 6-bit (sc, m) packed in 12 bytes:
  //   j < 4: sc = s[j] & 63, m = s[j+4] & 63; j >= 4: low 4 bits in s[j+4] (sc low nibble, m high
  //   nibble), top 2 bits in bits 6..7 of s[j-4] (sc) and s[j] (m).
  auto pack_k4_scales = [](uint8_t* s, const int* sc, const int* m) {
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        s[j] |= static_cast<uint8_t>(sc[j]);
        s[j + 4] |= static_cast<uint8_t>(m[j]);
      } else {
        s[j + 4] |= static_cast<uint8_t>((sc[j] & 15) | ((m[j] & 15) << 4));
        s[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
        s[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
      }
    }
  };
  {
    block_q4_K b{};
    block_q5_K b5{};
    b.d = fp32_to_fp16(0.5f);
    b.dmin = fp32_to_fp16(0.125f);
    b5.d = fp32_to_fp16(0.25f);
    b5.dmin = fp32_to_fp16(0.5f);
    int sc[8], m[8];
    for (int j = 0; j < 8; ++j) sc[j] = (j * 23 + 5) % 64, m[j] = (j * 37 + 60) % 64;
    pack_k4_scales(b.scales, sc, m);
    pack_k4_scales(b5.scales, sc, m);
    std::vector<float> want(256), want5(256);
    for (int e = 0; e < 256; ++e) {
      // element e: chunk c = e/64, sub-block e/32; low nibble of qs[32c + l] if (e%64) < 32 else high
      const int q = (e * 7 + e / 32) % 16, q5 = (e * 13 + 3) % 32;
      const int c = e / 64, l = e % 32, hi = (e % 64) >= 32;
      b.qs[32 * c + l] |= static_cast<uint8_t>(hi ? q << 4 : q);
      b5.qs[32 * c + l] |= static_cast<uint8_t>(hi ? (q5 & 15) << 4 : (q5 & 15));
      b5.qh[l] |= static_cast<uint8_t>((q5 >> 4) << (e / 32));
      want[e] = 0.5f * sc[e / 32] * q - 0.125f * m[e / 32];
      want5[e] = 0.25f * sc[e / 32] * q5 - 0.5f * m[e / 32];
    }
    check(expect_row(TYPE_Q4_K, &b, 256, want), "q4_k hand-built block");
    check(expect_row(TYPE_Q5_K, &b5, 256, want5), "q5_k hand-built block");
  }
  {  // q6_k: element e = 128c + 32k + l; low nibble in ql[64c + 32(k&1) + l] (high half if k >= 2);
     // top two bits at bits 2k..2k+1 of qh[32c + l]; x = d * scales[e/16] * (q - 32)
    block_q6_K b{};
    b.d = fp32_to_fp16(0.5f);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j * 17 - 128);
    std::vector<float> want(256);
    for (int e = 0; e < 256; ++e) {
      const int q = (e * 29 + 11) % 64;
      const int c = e / 128, k = (e % 128) / 32, l = e % 32;
      b.ql[64 * c + 32 * (k & 1) + l] |= static_cast<uint8_t>(k >= 2 ? (q & 15) << 4 : (q & 15));
      b.qh[32 * c + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
      want[e] = 0.5f * b.scales[e / 16] * static_cast<float>(q - 32);
    }
    check(expect_row(TYPE_Q6_K, &b, 256, want), "q6_k hand-built block");
  }
  {  // f16 / bf16 / f32 rows
    const uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};
    check(expect_row(TYPE_F16, h, 4, {1.0f, -2.0f, 0x1p-24f, 65504.0f}), "f16 row");
    const uint16_t bf[3] = {0x3f80, 0xc040, 0x4049};
    check(expect_row(TYPE_BF16, bf, 3, {1.0f, -3.0f, 3.140625f}), "bf16 row");
    const float f[2] = {1.5f, -7.25f};
    check(expect_row(TYPE_F32, f, 2, {1.5f, -7.25f}), "f32 row");
  }
}

// ---- 3. quantize -> dequantize round trips ----------------------------------------------------

std::vector<float> gaussian(Rng& rng, int64_t n, float scale, bool outliers) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = scale * rng.gauss();
  if (outliers)
    for (int64_t i = 0; i < n; i += 97) v[static_cast<size_t>(i)] *= 12.0f;
  return v;
}

// q8_0 codes are round-half-away-from-zero of x * 127 / amax clamped to [-127, 127] (NaN -> 0): the
// quantizer's inlined rounding against std::round on ties, near-ties, NaN, infinities and random blocks.
void test_q8_0_rounding() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<std::vector<float>> blocks = {
      {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -1.5f, 126.5f, -126.5f, 0.49999997f, -0.49999997f, 2.4999998f, -0.0f, 0.0f, nan},
      {1.0f, nan, -nan, 0.25f},
      {inf, 1.0f, -3.0f},
      {-inf, 5.0f},
  };
  Rng rng(5);
  for (int b = 0; b < 200; ++b) {
    std::vector<float> v(32);
    for (auto& x : v) x = rng.gauss() * (b % 3 == 0 ? 1e-30f : 1.0f);
    blocks.push_back(v);
  }
  bool ok = true;
  for (std::vector<float> v : blocks) {
    v.resize(32, 0.0f);
    block_q8_0 got;
    quantize_row(TYPE_Q8_0, v.data(), &got, 32);
    float amax = 0.0f;
    for (float x : v) amax = std::fmax(amax, std::fabs(x));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float r = std::round(v[j] * id);
      const int want = r != r ? 0 : r < -127.0f ? -127 : r > 127.0f ? 127 : static_cast<int>(r);
      ok = ok && got.qs[j] == want;
    }
  }
  check(ok, "q8_0 codes round half away from zero, NaN to 0, clamped");
}

void test_roundtrip() {
  // Relative RMS error bounds (error RMS / signal RMS) on N(0,1) data, and the reason for each:
  //   f16: 11-bit significand, rel. error <= 2^-11 per element -> RMS well below 5e-4.
  //   bf16: 8-bit significand, <= 2^-8 per element -> below 4e-3.
  //   q8_0: step amax/127 with amax ~ 2.5 sigma over 32 -> RMS ~ step/sqrt(12) ~ 0.006; bound 0.01.
  //   q4_0: step amax/8 -> ~0.09 sigma; bound 0.12.
  //   q4_k: step range/15 over 32 elements (~4.1 sigma) -> ~0.08 plus 6-bit scale/min coding; bound 0.11.
  //   q6_k: step amax/32 over 16 elements (~2 sigma) -> ~0.02 plus int8 scale coding; bound 0.03.
  //   q8_k: step amax/128 over 256 elements (~3 sigma) -> ~0.007; bound 0.01.
  struct T {
    uint32_t type;
    double rms_bound;
  };
  const T types[] = {{TYPE_F32, 0.0},    {TYPE_F16, 5e-4},   {TYPE_BF16, 4e-3}, {TYPE_Q8_0, 0.01},
                     {TYPE_Q4_0, 0.12},  {TYPE_Q4_K, 0.11},  {TYPE_Q6_K, 0.03}, {TYPE_Q8_K, 0.01},
                     {TYPE_Q4_1, 0.12},  {TYPE_Q5_0, 0.06},  {TYPE_Q5_1, 0.06}, {TYPE_Q2_K, 0.45},
                     {TYPE_Q3_K, 0.25},  {TYPE_Q5_K, 0.06}};
  Rng rng(42);
  for (const T& t : types) {
    for (int pass = 0; pass < 2; ++pass) {
      const int64_t n = 256 * 37;
      const std::vector<float> x = gaussian(rng, n, pass ? 1e-3f : 1.0f, false);
      const size_t bytes = t.type == TYPE_Q8_K ? static_cast<size_t>(n / 256) * sizeof(block_q8_K) : row_bytes(t.type, n);
      std::vector<uint8_t> q(bytes, 0xAB), q2(bytes, 0xCD);
      quantize_row(t.type, x.data(), q.data(), n);
      quantize_row(t.type, x.data(), q2.data(), n);
      check(q == q2, "%s quantize_row is deterministic", type_name(t.type));
      std::vector<float> y(static_cast<size_t>(n), kNaN);
      dequantize_row(t.type, q.data(), y.data(), n);
      double se = 0, ss = 0, worst = 0;
      bool finite = true;
      for (int64_t i = 0; i < n; ++i) {
        const double e = static_cast<double>(y[i]) - x[i];
        if (!std::isfinite(y[i])) finite = false;
        se += e * e;
        ss += static_cast<double>(x[i]) * x[i];
        worst = std::fmax(worst, std::fabs(e));
      }
      const double rel = std::sqrt(se / ss);
      check(finite && rel <= t.rms_bound, "%s round trip (scale %g): relative RMS error %.3g > %.3g",
            type_name(t.type), pass ? 1e-3 : 1.0, rel, t.rms_bound);
      std::printf("  roundtrip %-5s scale %-6g rel RMS error %.3e  worst |error| / RMS(x) %.3e\n", type_name(t.type),
                  pass ? 1e-3 : 1.0, rel, worst / std::sqrt(ss / static_cast<double>(n)));
    }
  }
  // Per-block max error bounds where the quantizer guarantees one:
  //   q8_0: |x - x'| <= d/2 + 127 * |d - fp16(d)| <= amax/127 * (0.5 + 127 * 2^-11) -> use 0.57 amax/127.
  //   q4_0: the largest element is exact-ish (-8 d); others round to nearest except the +8 clamp, which
  //         costs at most one step: |x - x'| <= |d| (1 + 16 * 2^-11) with |d| = amax/8.
  {
    const int64_t n = 32 * 200;
    const std::vector<float> x = gaussian(rng, n, 1.0f, true);
    std::vector<uint8_t> q8(row_bytes(TYPE_Q8_0, n)), q4(row_bytes(TYPE_Q4_0, n));
    quantize_row(TYPE_Q8_0, x.data(), q8.data(), n);
    quantize_row(TYPE_Q4_0, x.data(), q4.data(), n);
    std::vector<float> y8(n), y4(n);
    dequantize_row(TYPE_Q8_0, q8.data(), y8.data(), n);
    dequantize_row(TYPE_Q4_0, q4.data(), y4.data(), n);
    bool ok8 = true, ok4 = true;
    for (int64_t b = 0; b < n / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
      for (int j = 0; j < 32; ++j) {
        const size_t i = static_cast<size_t>(b * 32 + j);
        if (!(std::fabs(y8[i] - x[i]) <= 0.57f * amax / 127.0f)) ok8 = false;
        if (!(std::fabs(y4[i] - x[i]) <= (amax / 8.0f) * (1.0f + 16.0f / 2048.0f))) ok4 = false;
      }
    }
    check(ok8, "q8_0 per-element error <= 0.57 amax/127");
    check(ok4, "q4_0 per-element error <= amax/8 (1 + 2^-7)");
  }
  // Per-element bounds of the 32-element affine and 5-bit types, over an odd number of blocks:
  //   q4_1 / q5_1: q = round((x - min) / d), d = range / nmax: |x - x'| <= d/2 plus the fp16 rounding
  //                of d (nmax * |d| 2^-11) and of min (|min| 2^-11).
  //   q5_0: as q4_0 with 16 levels a side: |x - x'| <= |d| (1 + 32 * 2^-11) with |d| = amax/16.
  {
    const int64_t n = 32 * 201;
    const std::vector<float> x = gaussian(rng, n, 1.0f, true);
    const uint32_t ts[] = {TYPE_Q4_1, TYPE_Q5_1, TYPE_Q5_0};
    for (uint32_t t : ts) {
      std::vector<uint8_t> q(row_bytes(t, n));
      quantize_row(t, x.data(), q.data(), n);
      std::vector<float> y(n, kNaN);
      dequantize_row(t, q.data(), y.data(), n);
      bool ok = true;
      for (int64_t b = 0; b < n / 32; ++b) {
        float mn = x[b * 32], mx = x[b * 32], amax = 0;
        for (int j = 0; j < 32; ++j) {
          const float v = x[b * 32 + j];
          mn = std::fmin(mn, v), mx = std::fmax(mx, v), amax = std::fmax(amax, std::fabs(v));
        }
        const float nmax = t == TYPE_Q4_1 ? 15.0f : 31.0f, d = (mx - mn) / nmax;
        const float bound = t == TYPE_Q5_0 ? (amax / 16.0f) * (1.0f + 32.0f / 2048.0f)
                                           : d * (0.5f + nmax / 2048.0f) + std::fabs(mn) / 2048.0f + 1e-6f;
        for (int j = 0; j < 32; ++j) ok = ok && std::fabs(y[b * 32 + j] - x[b * 32 + j]) <= bound;
      }
      check(ok, "%s per-element error within its bound over %lld blocks", type_name(t), (long long)(n / 32));
    }
  }
  {  // garbage input (NaN, inf, huge) must not crash or trip UBSan; blocks without it stay accurate
    const int64_t n = 512;
    std::vector<float> x = gaussian(rng, n, 1.0f, false);
    x[3] = kNaN, x[40] = std::numeric_limits<float>::infinity(), x[77] = -1e38f, x[100] = 3e38f;
    const uint32_t ts[] = {TYPE_F16,  TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q6_K, TYPE_Q8_K,
                           TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q2_K, TYPE_Q3_K, TYPE_Q5_K};
    for (uint32_t t : ts) {
      std::vector<uint8_t> q(t == TYPE_Q8_K ? 2 * sizeof(block_q8_K) : row_bytes(t, n));
      quantize_row(t, x.data(), q.data(), n);
      std::vector<float> y(n, kNaN);
      dequantize_row(t, q.data(), y.data(), n);
      // the second 256 elements hold no garbage: they decode as when quantized on their own
      std::vector<uint8_t> q2(q.size() / 2);
      quantize_row(t, x.data() + 256, q2.data(), 256);
      std::vector<float> y2(256, kNaN);
      dequantize_row(t, q2.data(), y2.data(), 256);
      bool ok = true;
      for (int64_t i = 256; i < n; ++i) ok = ok && y[i] == y2[i - 256] && std::fabs(y[i] - x[i]) < 1.5f;
      check(ok, "%s quantizes NaN/inf input without harm to other blocks", type_name(t));
    }
  }
  {  // all-zero blocks must give zeros (no NaN from 0/0)
    const int64_t n = 256;
    std::vector<float> z(n, 0.0f);
    const uint32_t ts[] = {TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q6_K, TYPE_Q8_K, TYPE_Q4_1,
                           TYPE_Q5_0, TYPE_Q5_1, TYPE_Q2_K, TYPE_Q3_K, TYPE_Q5_K};
    for (uint32_t t : ts) {
      std::vector<uint8_t> q(t == TYPE_Q8_K ? sizeof(block_q8_K) : row_bytes(t, n));
      quantize_row(t, z.data(), q.data(), n);
      std::vector<float> y(n, kNaN);
      dequantize_row(t, q.data(), y.data(), n);
      bool ok = true;
      for (float v : y) ok = ok && v == 0.0f;
      check(ok, "%s zeros round trip to zeros", type_name(t));
    }
  }
}

// ---- 4. kernels: every ISA against the scalar twin --------------------------------------------

// Size of an activation row for n inputs of weight type wtype.
size_t act_bytes(uint32_t wtype, int64_t n) {
  const uint32_t at = vec_dot_type(wtype);
  if (at == TYPE_Q8_K) return static_cast<size_t>(n / QK_K) * sizeof(block_q8_K);
  return row_bytes(at, n);
}

// Float value of the quantized activations (to compute a float64 reference dot).
std::vector<float> act_values(uint32_t wtype, const uint8_t* xq, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  const uint32_t at = vec_dot_type(wtype);
  if (at == TYPE_Q8_1) {  // q8_0's values (s is not an element)
    for (int64_t b = 0; b < n / 32; ++b) {
      block_q8_1 blk;
      std::memcpy(&blk, xq + static_cast<size_t>(b) * sizeof blk, sizeof blk);
      for (int j = 0; j < 32; ++j) v[static_cast<size_t>(b * 32 + j)] = fp16_to_fp32(blk.d) * blk.qs[j];
    }
    return v;
  }
  dequantize_row(at, xq, v.data(), n);  // q8_k is supported by dequantize_row for tests
  return v;
}

// q4_1 / q5_1 take the min term from the activation block's s = fp16(d * sum(q)) (as llama.cpp), not
// from the elements: the float64 reference adds m * (s - d * sum(q)) per block to match.
double q8_1_sum_correction(uint32_t wtype, const uint8_t* wrow, const uint8_t* xq, int64_t n) {
  if (vec_dot_type(wtype) != TYPE_Q8_1) return 0.0;
  double c = 0.0;
  const size_t wb = type_traits(wtype)->block_bytes;
  for (int64_t b = 0; b < n / 32; ++b) {
    block_q8_1 blk;
    std::memcpy(&blk, xq + static_cast<size_t>(b) * sizeof blk, sizeof blk);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += blk.qs[j];
    const double m = load_fp16(wrow + static_cast<size_t>(b) * wb + 2);  // q4_1 / q5_1: m after d
    c += m * (static_cast<double>(fp16_to_fp32(blk.s)) - static_cast<double>(fp16_to_fp32(blk.d)) * sum);
  }
  return c;
}

// |component| weights for the error scale: for q4_k the terms d*sc*q and dmin*m are accumulated
// separately, so the scale must be sum(|d sc q| + |dmin m|) |x|, not sum |w x| (which can cancel):
// dequantizing a copy with d := |d| and dmin := -|dmin| gives exactly |d| sc q + |dmin| m.
// The affine types (q4_1, q5_1: x = d q + m; q2_k, q5_k: as q4_k) the same way.
std::vector<float> abs_components(uint32_t type, const uint8_t* row, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  // byte offsets of the fp16 (scale, offset) pair in a block, and whether the offset is subtracted
  size_t d_off = 0, m_off = 0;
  bool affine = true, minus = true;
  switch (type) {
    case TYPE_Q4_K: d_off = offsetof(block_q4_K, d), m_off = offsetof(block_q4_K, dmin); break;
    case TYPE_Q5_K: d_off = offsetof(block_q5_K, d), m_off = offsetof(block_q5_K, dmin); break;
    case TYPE_Q2_K: d_off = offsetof(block_q2_K, d), m_off = offsetof(block_q2_K, dmin); break;
    case TYPE_Q4_1: d_off = offsetof(block_q4_1, d), m_off = offsetof(block_q4_1, m), minus = false; break;
    case TYPE_Q5_1: d_off = offsetof(block_q5_1, d), m_off = offsetof(block_q5_1, m), minus = false; break;
    default: affine = false;
  }
  if (affine) {
    std::vector<uint8_t> copy(row, row + row_bytes(type, n));
    const size_t bb = type_traits(type)->block_bytes;
    for (int64_t b = 0; b < n / type_traits(type)->block_size; ++b) {
      uint8_t* blk = copy.data() + static_cast<size_t>(b) * bb;
      blk[d_off + 1] &= 0x7f;  // fp16 sign bits (little-endian high bytes)
      blk[m_off + 1] = static_cast<uint8_t>(minus ? blk[m_off + 1] | 0x80 : blk[m_off + 1] & 0x7f);
    }
    dequantize_row(type, copy.data(), v.data(), n);
  } else {
    dequantize_row(type, row, v.data(), n);
    for (auto& x : v) x = std::fabs(x);
  }
  return v;
}

// Random weights: either quantized from Gaussian floats (realistic) or raw random codes with sane
// fp16 scales (covers every bit pattern of the quants, e.g. q8_0 -128).
std::vector<uint8_t> make_weights(Rng& rng, uint32_t type, int64_t n, int64_t rows, bool raw) {
  const size_t rb = row_bytes(type, n);
  std::vector<uint8_t> w(rb * static_cast<size_t>(rows) + 64);
  if (!raw || type == TYPE_F32 || type == TYPE_F16 || type == TYPE_BF16) {
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<float> x = gaussian(rng, n, raw ? 100.0f : 0.05f, raw);
      quantize_row(type, x.data(), w.data() + rb * static_cast<size_t>(r), n);
    }
    return w;
  }
  for (size_t i = 0; i < rb * static_cast<size_t>(rows); ++i) w[i] = static_cast<uint8_t>(rng.next());
  auto scale = [&](int lo_exp, int hi_exp) {  // random-sign fp16 in [2^lo, 2^hi)
    const float m = 1.0f + static_cast<float>(rng.uniform());
    const float v = std::ldexp(m, rng.range(lo_exp, hi_exp - 1));
    return fp32_to_fp16(rng.next() & 1 ? -v : v);
  };
  const int64_t nb = n / type_traits(type)->block_size;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = w.data() + rb * static_cast<size_t>(r);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = row + static_cast<size_t>(b) * type_traits(type)->block_bytes;
      uint16_t h;
      switch (type) {
        case TYPE_Q8_0:
        case TYPE_Q4_0:
        case TYPE_Q5_0: h = scale(-12, 2), std::memcpy(blk, &h, 2); break;
        case TYPE_Q4_1:
        case TYPE_Q5_1:  // d then m
          h = scale(-12, 2), std::memcpy(blk, &h, 2);
          h = scale(-12, 2), std::memcpy(blk + 2, &h, 2);
          break;
        case TYPE_Q5_K:
          h = scale(-14, -4), std::memcpy(blk + offsetof(block_q5_K, d), &h, 2);
          h = scale(-14, -4), std::memcpy(blk + offsetof(block_q5_K, dmin), &h, 2);
          break;
        case TYPE_Q2_K:
          h = scale(-14, -4), std::memcpy(blk + offsetof(block_q2_K, d), &h, 2);
          h = scale(-14, -4), std::memcpy(blk + offsetof(block_q2_K, dmin), &h, 2);
          break;
        case TYPE_Q3_K: h = scale(-14, -4), std::memcpy(blk + offsetof(block_q3_K, d), &h, 2); break;
        case TYPE_Q4_K:
          h = scale(-14, -4), std::memcpy(blk + offsetof(block_q4_K, d), &h, 2);
          h = scale(-14, -4), std::memcpy(blk + offsetof(block_q4_K, dmin), &h, 2);
          break;
        case TYPE_Q6_K: h = scale(-14, -4), std::memcpy(blk + offsetof(block_q6_K, d), &h, 2); break;
        default: break;
      }
    }
  }
  return w;
}

struct ErrStats {
  double sum = 0, worst = 0;  // error / tolerance
  int64_t count = 0;
  bool ok = true;
  void add(double err, double tol) {
    const double r = tol > 0 ? err / tol : (err == 0 ? 0 : std::numeric_limits<double>::infinity());
    if (!(r <= 1.0)) ok = false;  // also catches NaN
    if (!(r <= worst)) worst = std::isnan(r) ? std::numeric_limits<double>::infinity() : std::fmax(worst, r);
    sum += std::isfinite(r) ? r : 0;
    ++count;
  }
};

// Tolerance for a float-accumulated dot of `terms` float terms whose absolute values sum to S.
// Sequential or blocked summation of k terms errs by at most (k-1) u S (u = 2^-24); the scalar twin
// and a SIMD kernel each obey such a bound, and each term's own product/scale rounding (d*dx, the
// int->float conversion, FMA vs. separate multiply) adds a few u per term, so
// |simd - scalar| <= 2 (terms + 8) u S. terms = blocks (x2 for q4_k: sum and min terms) for integer
// types, elements for float types; S is computed in float64 from the dequantized operands.
double dot_tolerance(int64_t terms, double S) { return 2.0 * static_cast<double>(terms + 8) * 0x1p-24 * S; }

int64_t float_terms(uint32_t type, int64_t n) {
  const uint32_t bs = type_traits(type)->block_size;
  if (bs == 1) return n;
  const bool two = type == TYPE_Q4_K || type == TYPE_Q5_K || type == TYPE_Q2_K || type == TYPE_Q4_1 || type == TYPE_Q5_1;
  return (n / bs) * (two ? 2 : 1);  // the affine types add a scale term and a min term per block
}

// The weight types with dense kernels: those with a registered scalar gemv.
std::vector<uint32_t> compute_types() {
  std::vector<uint32_t> out;
  for (uint32_t t = 0; t < TYPE_COUNT; ++t)
    if (kernel_selected(KernelOp::gemv, t, Isa::scalar)) out.push_back(t);
  return out;
}
const std::vector<uint32_t> kComputeTypes = compute_types();

std::vector<int64_t> test_blocks(uint32_t type) {
  // Tiles: decode runs 1 or 4 rows x 1 token (AVX2 q4_0: 4 rows as 2 row pairs), prompt 2 rows x 4
  // tokens (plus row/token remainders, which take the 1-row path);
  // along n the AVX2 q4_0/q8_0 kernels step 4 blocks (scale groups) over 2 accumulators with a
  // single-block tail, the others one block (8 elements for float types). So 1..3 x (tile + 1) =
  // 1..15 blocks covers every remainder; then the odd sizes. Row counts cover 1..13, tokens 1..9.
  std::vector<int64_t> v;
  for (int64_t b = 1; b <= 15; ++b) v.push_back(b);
  const int64_t odd[] = {17, 31, 33, 127, 129};
  for (int64_t b : odd) v.push_back(b);
  if (type_traits(type)->block_size == 1)
    for (int64_t b : {16, 23, 24, 25, 63, 64, 65, 1023, 4097}) v.push_back(b);
  return v;
}

void test_kernels_against_scalar() {
  const std::vector<std::string> isas = fd_test::isas();
  std::printf("  ISAs available: %s (default %s)\n", kernels_available_isas(), kernels_isa());
  check(!kernels_set_isa("no-such-isa"), "kernels_set_isa refuses unknown ISA");
  for (const std::string& isa : isas) {
    check(kernels_set_isa(isa.c_str()) && std::strcmp(kernels_isa(), isa.c_str()) == 0, "select %s", isa.c_str());
  }

  Rng rng(1234);
  const int64_t row_counts[] = {1, 3, 4, 5, 9};
  const int64_t tok_counts[] = {1, 2, 3, 4, 5, 9};
  for (uint32_t type : kComputeTypes) {
    const int64_t bs = type_traits(type)->block_size;
    ErrStats vs_exact;  // scalar twin vs float64 dot of dequantized operands
    std::vector<ErrStats> vs_scalar(isas.size());
    bool poison_ok = true;
    for (int64_t nb : test_blocks(type)) {
      const int64_t n = nb * bs;
      for (int raw = 0; raw < 2; ++raw) {
        if (nb > 33 && raw) continue;
        const int64_t rows = row_counts[(nb + raw) % 5] + (nb > 33 ? 0 : 4);
        const int64_t ntok = tok_counts[(nb * 3 + raw) % 6];
        const size_t packed = row_bytes(type, n);
        // Weights start 2 mod 32 from an aligned address (the usual case: 2-byte aligned blocks); in
        // the raw pass 1 mod 32 with rows padded by 7 bytes, so blocks sit at odd and even addresses
        // and the row stride differs from the row size. Activations are also at an odd address there.
        const size_t rb = packed + (raw ? 7 : 0);
        std::vector<uint8_t> wbuf = make_weights(rng, type, n, rows, raw);
        std::vector<uint8_t> wmis(rb * static_cast<size_t>(rows) + 34, 0xEE);
        uint8_t* w = wmis.data() + (32 - (reinterpret_cast<uintptr_t>(wmis.data()) & 31)) % 32 + (raw ? 1 : 2);
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(w + rb * static_cast<size_t>(r), wbuf.data() + packed * static_cast<size_t>(r), packed);
        // Activations: ntok rows, the stride padded by one block to catch stride mistakes.
        const size_t ab = act_bytes(type, n);
        const size_t xs = ab + (vec_dot_type(type) == TYPE_Q8_K ? sizeof(block_q8_K) : 64);
        std::vector<uint8_t> xqbuf(xs * static_cast<size_t>(ntok) + 1, 0x5a);
        uint8_t* const xq = xqbuf.data() + raw;
        for (int64_t t = 0; t < ntok; ++t) {
          const std::vector<float> x = gaussian(rng, n, 1.0f, t % 2 == 1);
          quantize_activation(type, x.data(), xq + xs * static_cast<size_t>(t), n);
        }
        // Reference: float64 dot of dequantized operands, and its error scale S.
        std::vector<double> exact(static_cast<size_t>(rows * ntok)), S(static_cast<size_t>(rows * ntok));
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<float> wv(static_cast<size_t>(n));
          dequantize_row(type, w + rb * static_cast<size_t>(r), wv.data(), n);
          const std::vector<float> wa = abs_components(type, w + rb * static_cast<size_t>(r), n);
          for (int64_t t = 0; t < ntok; ++t) {
            const std::vector<float> xv = act_values(type, xq + xs * static_cast<size_t>(t), n);
            double e = 0, s = 0;
            for (int64_t i = 0; i < n; ++i) e += static_cast<double>(wv[i]) * xv[i], s += std::fabs(static_cast<double>(wa[i]) * xv[i]);
            e += q8_1_sum_correction(type, w + rb * static_cast<size_t>(r), xq + xs * static_cast<size_t>(t), n);
            exact[t * rows + r] = e;
            S[t * rows + r] = s;
          }
        }
        const size_t ys = static_cast<size_t>(rows) + 3;  // gaps between token rows must stay untouched
        auto run = [&](const std::string& isa, bool use_gemv, std::vector<float>& y) {
          y.assign(ys * static_cast<size_t>(ntok), kNaN);
          kernels_set_isa(isa.c_str());
          tested(use_gemv ? KernelOp::gemv : KernelOp::gemm, type, isa);
          if (use_gemv) {
            for (int64_t t = 0; t < ntok; ++t)
              gemv(type, w, rb, n, rows, xq + xs * static_cast<size_t>(t), y.data() + ys * static_cast<size_t>(t));
          } else {
            gemm(type, w, rb, n, rows, xq, xs, ntok, y.data(), ys);
          }
          for (int64_t t = 0; t < ntok; ++t)
            for (size_t g = static_cast<size_t>(rows); g < ys; ++g)
              if (!std::isnan(y[ys * static_cast<size_t>(t) + g])) poison_ok = false;
        };
        std::vector<float> ref_gemv, ref_gemm, y;
        run("scalar", true, ref_gemv);
        run("scalar", false, ref_gemm);
        const double terms = static_cast<double>(float_terms(type, n));
        for (int64_t t = 0; t < ntok; ++t)
          for (int64_t r = 0; r < rows; ++r) {
            const size_t k = static_cast<size_t>(t * rows + r), o = ys * static_cast<size_t>(t) + static_cast<size_t>(r);
            const double tol = dot_tolerance(static_cast<int64_t>(terms), S[k]);
            vs_exact.add(std::fabs(ref_gemv[o] - exact[k]), tol);
            vs_exact.add(std::fabs(ref_gemm[o] - exact[k]), tol);
          }
        for (size_t ii = 0; ii < isas.size(); ++ii) {
          if (isas[ii] == "scalar") continue;
          for (int use_gemv = 0; use_gemv < 2; ++use_gemv) {
            run(isas[ii], use_gemv, y);
            const std::vector<float>& ref = use_gemv ? ref_gemv : ref_gemm;
            for (int64_t t = 0; t < ntok; ++t)
              for (int64_t r = 0; r < rows; ++r) {
                const size_t k = static_cast<size_t>(t * rows + r), o = ys * static_cast<size_t>(t) + static_cast<size_t>(r);
                ErrStats& st = vs_scalar[ii];
                const bool was_ok = st.ok;
                st.add(std::fabs(static_cast<double>(y[o]) - ref[o]), dot_tolerance(static_cast<int64_t>(terms), S[k]));
                if (was_ok && !st.ok)
                  std::fprintf(stderr, "  %s %s %s n=%lld rows=%lld ntok=%lld raw=%d r=%lld t=%lld: %.9g vs scalar %.9g (S %.3g)\n",
                               isas[ii].c_str(), type_name(type), use_gemv ? "gemv" : "gemm", (long long)n, (long long)rows,
                               (long long)ntok, raw, (long long)r, (long long)t, y[o], ref[o], S[k]);
              }
          }
        }
      }
    }
    {  // empty calls write nothing
      std::vector<float> y(4, kNaN);
      const std::vector<uint8_t> dummy(4096);
      gemv(type, dummy.data(), 0, bs, 0, dummy.data(), y.data());
      gemm(type, dummy.data(), 0, bs, 3, dummy.data(), 0, 0, y.data(), 1);
      if (!(std::isnan(y[0]) && std::isnan(y[3]))) poison_ok = false;
    }
    check(poison_ok, "%s: kernels write only their outputs (poisoned gaps intact)", type_name(type));
    check(vs_exact.ok, "%s: scalar twin vs float64 dot (worst err/tol %.3g)", type_name(type), vs_exact.worst);
    std::printf("  %-5s scalar vs float64  avg err/tol %.2e worst %.2e\n", type_name(type),
                vs_exact.sum / static_cast<double>(vs_exact.count), vs_exact.worst);
    for (size_t ii = 0; ii < isas.size(); ++ii) {
      if (isas[ii] == "scalar") continue;
      const ErrStats& st = vs_scalar[ii];
      check(st.ok, "%s %s vs scalar (worst err/tol %.3g)", isas[ii].c_str(), type_name(type), st.worst);
      std::printf("  %-5s %-12s vs scalar  avg err/tol %.2e worst %.2e (%lld outputs)\n", type_name(type),
                  isas[ii].c_str(), st.sum / static_cast<double>(st.count), st.worst, (long long)st.count);
    }
  }
  kernels_set_isa(isas.back().c_str());
}

void test_dispatch_misc() {
  check(vec_dot_type(TYPE_Q4_0) == TYPE_Q8_0 && vec_dot_type(TYPE_Q8_0) == TYPE_Q8_0, "vec_dot_type q4_0/q8_0");
  check(vec_dot_type(TYPE_Q4_K) == TYPE_Q8_K && vec_dot_type(TYPE_Q6_K) == TYPE_Q8_K && vec_dot_type(TYPE_Q5_K) == TYPE_Q8_K &&
            vec_dot_type(TYPE_Q3_K) == TYPE_Q8_K && vec_dot_type(TYPE_Q2_K) == TYPE_Q8_K,
        "vec_dot_type k-quants");
  check(vec_dot_type(TYPE_Q5_0) == TYPE_Q8_0 && vec_dot_type(TYPE_Q4_1) == TYPE_Q8_1 && vec_dot_type(TYPE_Q5_1) == TYPE_Q8_1,
        "vec_dot_type q5_0 / q4_1 / q5_1");
  {  // q3_k_scales (the kernels' word-wise unpacking) against the element-wise definition
    Rng rng(11);
    bool ok = true;
    for (int it = 0; it < 1000; ++it) {
      uint8_t s[12];
      for (auto& b : s) b = static_cast<uint8_t>(rng.next());
      int8_t got[16];
      q3_k_scales(s, got);
      for (int j = 0; j < 16; ++j) {
        const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
        ok = ok && got[j] == (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      }
    }
    check(ok, "q3_k_scales unpacks the 16 signed 6-bit scales");
  }
  {  // q8_1 activations: q8_0's codes and scale, s = d * sum(q)
    Rng rng(9);
    const std::vector<float> x = gaussian(rng, 96, 1.0f, true);
    std::vector<uint8_t> a1(row_bytes(TYPE_Q8_1, 96)), a0(row_bytes(TYPE_Q8_0, 96));
    quantize_activation(TYPE_Q4_1, x.data(), a1.data(), 96);
    quantize_activation(TYPE_Q4_0, x.data(), a0.data(), 96);
    bool ok = true;
    for (int b = 0; b < 3; ++b) {
      block_q8_1 p;
      block_q8_0 q;
      std::memcpy(&p, a1.data() + b * sizeof p, sizeof p);
      std::memcpy(&q, a0.data() + b * sizeof q, sizeof q);
      int sum = 0;
      for (int j = 0; j < 32; ++j) ok = ok && p.qs[j] == q.qs[j], sum += p.qs[j];
      ok = ok && p.d == q.d && std::fabs(fp16_to_fp32(p.s) - sum * fp16_to_fp32(q.d)) <= std::fabs(sum * fp16_to_fp32(q.d)) * 0x1p-10f;
    }
    check(ok, "q8_1 activations: q8_0 codes and scale, s = d * sum(q)");
  }
  check(vec_dot_type(TYPE_F32) == TYPE_F32 && vec_dot_type(TYPE_F16) == TYPE_F32 && vec_dot_type(TYPE_BF16) == TYPE_F32,
        "vec_dot_type float types");
  for (uint32_t t : kComputeTypes) {
    const TypeTraits* tr = type_traits(t);
    check(tr && tr->can_compute && tr->can_quantize && tr->can_dequantize, "%s traits", type_name(t));
  }
}

// ---- the kernel registry -------------------------------------------------------------------------
// The registry is the only list of kernels: every entry has a scalar twin for its (op, type), no entry
// is registered twice, dispatch runs an ISA's own entry or its fallback's, and the type traits agree
// with it. (That every entry is tested: check_registry_tested at the end of each test binary.)
void test_registry() {
  const size_t n = kernel_count();
  check(n > 0, "the registry lists %zu kernels", n);
  for (size_t i = 0; i < n; ++i) {
    const KernelInfo& k = kernel_info(i);
    const KernelInfo* twin = kernel_selected(k.op, k.type, Isa::scalar);
    check(twin && twin->isa == Isa::scalar && twin->op == k.op && twin->type == k.type,
          "%s has a scalar twin (%s %s)", k.function, kernel_op_name(k.op), k.type == TYPE_NONE ? "-" : type_name(k.type));
    bool dup = false;
    for (size_t j = 0; j < i; ++j) {
      const KernelInfo& o = kernel_info(j);
      dup = dup || (o.op == k.op && o.type == k.type && o.isa == k.isa);
    }
    check(!dup, "%s is registered once", k.function);
    for (const std::string& name : isas()) {  // what dispatch runs for this (op, type) at each ISA
      Isa isa;
      check(isa_from_name(name.c_str(), &isa), "ISA %s parses", name.c_str());
      const KernelInfo* sel = kernel_selected(k.op, k.type, isa);
      const KernelInfo* own = nullptr;
      for (size_t j = 0; j < n; ++j) {
        const KernelInfo& o = kernel_info(j);
        if (o.op == k.op && o.type == k.type && o.isa == isa) own = &o;
      }
      const KernelInfo* want = own ? own : isa == Isa::scalar ? nullptr : kernel_selected(k.op, k.type, isa_fallback(isa));
      check(sel && sel == want, "%s %s at %s: dispatch runs %s", kernel_op_name(k.op),
            k.type == TYPE_NONE ? "-" : type_name(k.type), name.c_str(), sel ? sel->function : "nothing");
    }
  }
  for (size_t op = 0; op < static_cast<size_t>(KernelOp::count); ++op) {
    bool any = false;
    for (size_t i = 0; i < n; ++i) any = any || (kernel_info(i).op == static_cast<KernelOp>(op) && kernel_info(i).isa == Isa::scalar);
    check(any, "op %s has registered kernels", kernel_op_name(static_cast<KernelOp>(op)));
  }
  // The one ISA list and parser.
  for (size_t i = 0; i < static_cast<size_t>(Isa::count); ++i) {
    Isa isa = Isa::count;
    check(isa_from_name(isa_name(static_cast<Isa>(i)), &isa) && isa == static_cast<Isa>(i), "ISA %s round trips",
          isa_name(static_cast<Isa>(i)));
  }
  Isa unchanged = Isa::avx2;
  check(!isa_from_name("no-such-isa", &unchanged) && !isa_from_name("", &unchanged) && !isa_from_name(nullptr, &unchanged) &&
            !isa_from_name("AVX2", &unchanged) && unchanged == Isa::avx2,
        "isa_from_name refuses unknown names");
  check(isa_available(Isa::scalar) && isas().front() == "scalar", "scalar is always available");
  std::string joined;
  for (const std::string& s : isas()) joined += (joined.empty() ? "" : ",") + s;
  check(joined == kernels_available_isas(), "kernels_available_isas() = %s is the registry's list %s", kernels_available_isas(),
        joined.c_str());
  // Type traits against the registry: can_compute means dense kernels are registered, and the gather
  // row types are those with a gather kernel.
  for (uint32_t t = 0; t < TYPE_COUNT; ++t) {
    const TypeTraits* tr = type_traits(t);
    const bool dense = kernel_selected(KernelOp::gemv, t, Isa::scalar) && kernel_selected(KernelOp::gemm, t, Isa::scalar);
    check((tr && tr->can_compute) == dense, "type %u (%s): can_compute %d, dense kernels registered %d", t, type_name(t),
          tr && tr->can_compute, (int)dense);
    check(gather_row_type_supported(t) == (kernel_selected(KernelOp::gather, t, Isa::scalar) != nullptr),
          "type %u (%s): gather support follows the registry", t, type_name(t));
  }
  // The active kernel follows kernels_set_isa.
  for (const std::string& name : isas()) {
    kernels_set_isa(name.c_str());
    Isa isa;
    isa_from_name(name.c_str(), &isa);
    check(kernel_active(KernelOp::gemv, TYPE_Q8_0) == kernel_selected(KernelOp::gemv, TYPE_Q8_0, isa),
          "kernel_active follows kernels_set_isa(%s)", name.c_str());
  }
  kernels_set_isa(isas().back().c_str());
}

// ---- benchmark (not a test) -------------------------------------------------------------------
void bench() {
  const int64_t n = 2048, rows = 5632;
  std::printf("\nsingle-thread GEMV, %lld x %lld (n x rows), GB/s of weight bytes from DRAM (best of 200):\n", (long long)n,
              (long long)rows);
  Rng rng(5);
  for (uint32_t type : kComputeTypes) {
    std::printf("  %-5s %7.1f MB:", type_name(type), row_bytes(type, n) * rows / 1e6);
    for (size_t i = 0; i < kernel_count(); ++i) {  // every registered gemv kernel of the type this CPU runs
      const KernelInfo& k = kernel_info(i);
      if (k.op != KernelOp::gemv || k.type != type || !isa_available(k.isa)) continue;
      kernels_set_isa(isa_name(k.isa));
      // shared with the addon (flashdip/bench.h): weights cycle over 256 MiB, so they come from DRAM
      const GemvBench g = bench_gemv(type, n, rows, size_t(256) << 20, 200, 5);
      std::printf("  %s %6.2f GB/s", isa_name(k.isa), g.best_bps / 1e9);
    }
    std::printf("\n");
  }
  // The same GEMV over a matrix larger than the last-level cache (as in decode, where every weight
  // byte of a token comes from DRAM), for the types of the 1B benchmark models.
  const int64_t big_rows = 65536;
  std::printf("\nsingle-thread GEMV from DRAM, %lld x %lld, GB/s of weight bytes (best of 10):\n", (long long)n,
              (long long)big_rows);
  for (uint32_t type : {TYPE_Q8_0, TYPE_Q4_0}) {
    const size_t rb = row_bytes(type, n);
    std::vector<uint8_t> w = make_weights(rng, type, n, big_rows, false);
    std::vector<uint8_t> xq(act_bytes(type, n));
    const std::vector<float> x = gaussian(rng, n, 1.0f, false);
    quantize_activation(type, x.data(), xq.data(), n);
    std::vector<float> y(big_rows);
    std::printf("  %-5s %7.1f MB:", type_name(type), rb * big_rows / 1e6);
    for (const std::string& name : isas()) {
      const char* isa = name.c_str();
      if (name == "scalar" || !kernels_set_isa(isa)) continue;
      double best = 1e30;
      for (int it = 0; it < 10; ++it) {
        const auto t0 = std::chrono::steady_clock::now();
        gemv(type, w.data(), rb, n, big_rows, xq.data(), y.data());
        best = std::fmin(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::printf("  %s %6.2f GB/s", isa, static_cast<double>(rb * big_rows) / best / 1e9);
    }
    std::printf("\n");
  }
  // Prompt evaluation: gemm over 32 tokens, reported as tokens/s and weight-bytes x tokens / s.
  const int64_t ntok = 32;
  std::printf("\nsingle-thread GEMM, %lld tokens (tokens/s; effective GB/s = weight bytes x tokens / s):\n",
              (long long)ntok);
  for (uint32_t type : kComputeTypes) {
    const size_t rb = row_bytes(type, n);
    std::vector<uint8_t> w = make_weights(rng, type, n, rows, false);
    const size_t xs = act_bytes(type, n);
    std::vector<uint8_t> xq(xs * ntok);
    for (int64_t t = 0; t < ntok; ++t) {
      const std::vector<float> x = gaussian(rng, n, 1.0f, false);
      quantize_activation(type, x.data(), xq.data() + xs * t, n);
    }
    std::vector<float> y(rows * ntok);
    std::printf("  %-5s:", type_name(type));
    for (const std::string& isa : isas()) {
      kernels_set_isa(isa.c_str());
      double best = 1e30;
      for (int it = 0; it < 5; ++it) {
        const auto t0 = std::chrono::steady_clock::now();
        gemm(type, w.data(), rb, n, rows, xq.data(), xs, ntok, y.data(), rows);
        best = std::fmin(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::printf("  %s %7.1f tok/s (%6.1f GB/s)", isa.c_str(), ntok / best,
                  static_cast<double>(rb * rows) * ntok / best / 1e9);
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  {  // first use picks the ISA: FLASHDIP_ISA if this CPU has it, else the best available one
    const char* env = std::getenv("FLASHDIP_ISA");
    const std::string initial = kernels_isa();
    bool env_ok = false;
    for (const std::string& isa : isas()) env_ok = env_ok || (env && isa == env);
    check(env_ok ? initial == env : initial == isas().back(), "initial ISA %s (FLASHDIP_ISA=%s, available %s)",
          initial.c_str(), env ? env : "", kernels_available_isas());
  }
  test_half();
  test_known_blocks();
  test_roundtrip();
  test_q8_0_rounding();
  test_dispatch_misc();
  test_registry();
  test_kernels_against_scalar();
  check_registry_tested("test_kernels");
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) bench();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
