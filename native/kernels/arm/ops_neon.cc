// Baseline AArch64 NEON element-wise and attention kernels (every AArch64 CPU: Cortex-A53/A57/A72,
// Apple M*); twins of scalar/ops_scalar.cc, contracts in flashdip/ops.h. Same structure as
// x86/ops_avx2.cc with 4-float vectors. f16 KV rows are widened with FCVTL (baseline ARMv8, no FP16
// arithmetic extension needed); the arithmetic stays in f32: half-precision FMAs would lose the
// accuracy the parity tests ask for, and the widening is cheap next to the FMAs.
// No inline library functions (std::max, std::sqrt) here, as in the AVX2 file.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "flashdip/quants.h"
#include "kernels/kernels_internal.h"

namespace fd {
namespace {

// ---- expf: the algorithm and constants of x86/ops_avx2.cc's exp8 ----------------------------------
constexpr float kExpLo = -104.0f, kExpHi = 89.0f;
constexpr float kLog2e = 0x1.715476p+0f;
constexpr float kLn2Hi = 0x1.62ep-1f, kLn2Lo = 0x1.0bfbe8p-15f;
constexpr float kC2 = 0x1p-1f, kC3 = 0x1.555556p-3f, kC4 = 0x1.555556p-5f, kC5 = 0x1.111112p-7f,
                kC6 = 0x1.6c16c2p-10f, kC7 = 0x1.a01a02p-13f;

inline float32x4_t exp4(float32x4_t x) {
  x = vmaxq_f32(x, vdupq_n_f32(kExpLo));  // FMAX/FMIN return NaN when either operand is NaN
  x = vminq_f32(x, vdupq_n_f32(kExpHi));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(kLog2e)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(kLn2Hi));
  r = vfmsq_f32(r, n, vdupq_n_f32(kLn2Lo));
  float32x4_t p = vdupq_n_f32(kC7);
  p = vfmaq_f32(vdupq_n_f32(kC6), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC5), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC4), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC3), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC2), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t k = vcvtq_s32_f32(n);  // n is integral; NaN gives 0, p is NaN anyway
  const int32x4_t k1 = vshrq_n_s32(k, 1), k2 = vsubq_s32(k, k1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
  return vmulq_f32(vmulq_f32(p, s1), s2);
}

// Adds the 4 float lanes of v to a double accumulator pair.
inline void add_pd(float32x4_t v, float64x2_t* a0, float64x2_t* a1) {
  *a0 = vaddq_f64(*a0, vcvt_f64_f32(vget_low_f32(v)));
  *a1 = vaddq_f64(*a1, vcvt_high_f64_f32(v));
}

// The 4 float sums of a[0..4) in one vector.
inline float32x4_t hsum4x4(const float32x4_t* a) {
  return vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3]));
}

}  // namespace

// ---- rmsnorm ------------------------------------------------------------------------------------

void rmsnorm_f32__neon(const float* x, const float* w, float* out, int64_t n, float eps) {
  float64x2_t a[4] = {vdupq_n_f64(0), vdupq_n_f64(0), vdupq_n_f64(0), vdupq_n_f64(0)};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
    add_pd(vmulq_f32(x0, x0), &a[0], &a[1]);
    add_pd(vmulq_f32(x1, x1), &a[2], &a[3]);
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t x0 = vld1q_f32(x + i);
    add_pd(vmulq_f32(x0, x0), &a[0], &a[1]);
  }
  double sum = vaddvq_f64(vaddq_f64(vaddq_f64(a[0], a[1]), vaddq_f64(a[2], a[3])));
  for (; i < n; ++i) {
    const float sq = x[i] * x[i];  // rounded to float first, as in the twin
    sum += static_cast<double>(sq);
  }
  const float ms = static_cast<float>(sum / static_cast<double>(n)) + eps;
  const float scale = 1.0f / vgetq_lane_f32(vsqrtq_f32(vdupq_n_f32(ms)), 0);  // IEEE sqrt, as std::sqrt
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
  for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// ---- rope ---------------------------------------------------------------------------------------

void rope_f32__neon(float* vec, int64_t heads, int64_t head_dim, int64_t rot, const float* cs, const float* sn,
                    bool neox) {
  const int64_t half = rot / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = vec + h * head_dim;
    int64_t i = 0;
    if (neox) {
      for (; i + 4 <= half; i += 4) {
        const float32x4_t a = vld1q_f32(v + i), b = vld1q_f32(v + half + i);
        const float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(sn + i);
        vst1q_f32(v + i, vfmsq_f32(vmulq_f32(a, c), b, s));
        vst1q_f32(v + half + i, vfmaq_f32(vmulq_f32(b, c), a, s));
      }
      for (; i < half; ++i) {
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs[i] - x1 * sn[i];
        v[i + half] = x0 * sn[i] + x1 * cs[i];
      }
    } else {
      for (; i + 4 <= half; i += 4) {
        float32x4x2_t x = vld2q_f32(v + 2 * i);  // de-interleaved: val[0] = x0 of 4 pairs, val[1] = x1
        const float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(sn + i);
        float32x4x2_t y;
        y.val[0] = vfmsq_f32(vmulq_f32(x.val[0], c), x.val[1], s);
        y.val[1] = vfmaq_f32(vmulq_f32(x.val[1], c), x.val[0], s);
        vst2q_f32(v + 2 * i, y);
      }
      for (; i < half; ++i) {
        const float x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = x0 * cs[i] - x1 * sn[i];
        v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

// ---- exp, softmax, silu_mul ---------------------------------------------------------------------

void exp_f32__neon(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, exp4(vld1q_f32(x + i)));
  if (i < n) {
    float b[4] = {0, 0, 0, 0};
    std::memcpy(b, x + i, static_cast<size_t>(n - i) * sizeof(float));
    vst1q_f32(b, exp4(vld1q_f32(b)));
    std::memcpy(y + i, b, static_cast<size_t>(n - i) * sizeof(float));
  }
}

void softmax_f32__neon(float* x, int64_t n) {
  float32x4_t m = vdupq_n_f32(-INFINITY);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
  float mx = vmaxvq_f32(m);
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const float32x4_t vm = vdupq_n_f32(mx);
  float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
  for (i = 0; i + 4 <= n; i += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vm));
    vst1q_f32(x + i, e);
    add_pd(e, &s0, &s1);
  }
  if (i < n) {  // padding lanes: exp(-inf) = 0 adds nothing to the sum
    float b[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    std::memcpy(b, x + i, static_cast<size_t>(n - i) * sizeof(float));
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(b), vm));
    vst1q_f32(b, e);
    std::memcpy(x + i, b, static_cast<size_t>(n - i) * sizeof(float));
    add_pd(e, &s0, &s1);
  }
  const float inv = static_cast<float>(1.0 / vaddvq_f64(vaddq_f64(s0, s1)));
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

namespace {
inline void silu_mul4(const float* g, const float* u, float* gs, float* h) {
  const float32x4_t vg = vld1q_f32(g), vu = vld1q_f32(u);
  const float32x4_t s = vdivq_f32(vg, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(vg))));
  vst1q_f32(gs, s);
  vst1q_f32(h, vmulq_f32(s, vu));
}
}  // namespace

void silu_mul_f32__neon(float* g, const float* u, float* h, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) silu_mul4(g + i, u + i, g + i, h + i);
  if (i < n) {
    float bg[4] = {0, 0, 0, 0}, bu[4] = {0, 0, 0, 0}, bh[4];
    const size_t bytes = static_cast<size_t>(n - i) * sizeof(float);
    std::memcpy(bg, g + i, bytes);
    std::memcpy(bu, u + i, bytes);
    silu_mul4(bg, bu, bg, bh);
    std::memcpy(g + i, bg, bytes);
    std::memcpy(h + i, bh, bytes);
  }
}

// ---- attention ----------------------------------------------------------------------------------

namespace {

template <bool F16>
inline float32x4_t load4(const uint8_t* row, int64_t i) {
  if (F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(row + 2 * i))));
  return vld1q_f32(reinterpret_cast<const float*>(row + 4 * i));
}

template <bool F16>
inline float load1(const uint8_t* row, int64_t i) {
  if (F16) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    return fp16_to_fp32(h);
  }
  float f;
  std::memcpy(&f, row + 4 * i, 4);
  return f;
}

// Scores of 8 rows at a time (8 independent FMA chains), reduced 4 at a time by hsum4x4.
template <bool F16>
void scores(const float* q, int64_t nq, int64_t hd, const void* k, size_t ks, int64_t len, float scale, float* s,
            int64_t ss) {
  const uint8_t* kb = static_cast<const uint8_t*>(k);
  const int64_t hd4 = hd / 4 * 4;
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const uint8_t* rows = kb + static_cast<size_t>(j) * ks;
    for (int64_t g = 0; g < nq; ++g) {
      const float* qg = q + g * hd;
      float32x4_t a[8];
      for (int r = 0; r < 8; ++r) a[r] = vdupq_n_f32(0);
      for (int64_t i = 0; i < hd4; i += 4) {
        const float32x4_t qv = vld1q_f32(qg + i);
        for (int r = 0; r < 8; ++r) a[r] = vfmaq_f32(a[r], load4<F16>(rows + r * ks, i), qv);
      }
      float32x4_t d0 = hsum4x4(a), d1 = hsum4x4(a + 4);
      if (hd4 < hd) {
        float t[8];
        for (int r = 0; r < 8; ++r) {
          float e = 0;
          for (int64_t i = hd4; i < hd; ++i) e += qg[i] * load1<F16>(rows + r * ks, i);
          t[r] = e;
        }
        d0 = vaddq_f32(d0, vld1q_f32(t));
        d1 = vaddq_f32(d1, vld1q_f32(t + 4));
      }
      vst1q_f32(s + g * ss + j, vmulq_n_f32(d0, scale));
      vst1q_f32(s + g * ss + j + 4, vmulq_n_f32(d1, scale));
    }
  }
  for (; j < len; ++j) {
    const uint8_t* row = kb + static_cast<size_t>(j) * ks;
    for (int64_t g = 0; g < nq; ++g) {
      const float* qg = q + g * hd;
      float32x4_t a = vdupq_n_f32(0);
      for (int64_t i = 0; i < hd4; i += 4) a = vfmaq_f32(a, load4<F16>(row, i), vld1q_f32(qg + i));
      float d = vaddvq_f32(a);
      for (int64_t i = hd4; i < hd; ++i) d += qg[i] * load1<F16>(row, i);
      s[g * ss + j] = d * scale;
    }
  }
}

// out[g][i0 .. i0 + 4 NV) for G query heads: G x NV accumulators over all rows, each V chunk loaded
// (and widened) once for the G heads.
template <bool F16, int G, int NV>
inline void values_chunk(const float* p, int64_t ps, const uint8_t* vb, size_t vs, int64_t len, int64_t i0,
                         float* out, int64_t hd) {
  float32x4_t a[G][NV];
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < NV; ++t) a[g][t] = vdupq_n_f32(0);
  for (int64_t j = 0; j < len; ++j) {
    const uint8_t* row = vb + static_cast<size_t>(j) * vs;
    float32x4_t v[NV];
    for (int t = 0; t < NV; ++t) v[t] = load4<F16>(row, i0 + 4 * t);
    for (int g = 0; g < G; ++g) {
      const float pg = p[g * ps + j];
      for (int t = 0; t < NV; ++t) a[g][t] = vfmaq_n_f32(a[g][t], v[t], pg);
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < NV; ++t) vst1q_f32(out + g * hd + i0 + 4 * t, a[g][t]);
}

template <bool F16, int G, int NV>
void values_heads(const float* p, int64_t ps, const uint8_t* vb, size_t vs, int64_t len, float* out, int64_t hd) {
  int64_t i = 0;
  for (; i + 4 * NV <= hd; i += 4 * NV) values_chunk<F16, G, NV>(p, ps, vb, vs, len, i, out, hd);
  for (; i + 4 <= hd; i += 4) values_chunk<F16, G, 1>(p, ps, vb, vs, len, i, out, hd);
  for (; i < hd; ++i)
    for (int g = 0; g < G; ++g) {
      float a = 0;
      for (int64_t j = 0; j < len; ++j) a += p[g * ps + j] * load1<F16>(vb + static_cast<size_t>(j) * vs, i);
      out[g * hd + i] = a;
    }
}

template <bool F16>
void values(const float* p, int64_t ps, int64_t nq, int64_t hd, const void* v, size_t vs, int64_t len, float* out) {
  const uint8_t* vb = static_cast<const uint8_t*>(v);
  int64_t g = 0;
  for (; g + 4 <= nq; g += 4) values_heads<F16, 4, 4>(p + g * ps, ps, vb, vs, len, out + g * hd, hd);
  for (; g + 2 <= nq; g += 2) values_heads<F16, 2, 4>(p + g * ps, ps, vb, vs, len, out + g * hd, hd);
  for (; g < nq; ++g) values_heads<F16, 1, 4>(p + g * ps, ps, vb, vs, len, out + g * hd, hd);
}

}  // namespace

void attn_scores_f32__neon(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                           float scale, float* s, int64_t s_stride) {
  scores<false>(q, nq, hd, k, k_stride, len, scale, s, s_stride);
}
void attn_scores_f16__neon(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                           float scale, float* s, int64_t s_stride) {
  scores<true>(q, nq, hd, k, k_stride, len, scale, s, s_stride);
}
void attn_values_f32__neon(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, size_t v_stride,
                           int64_t len, float* out) {
  values<false>(p, p_stride, nq, hd, v, v_stride, len, out);
}
void attn_values_f16__neon(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, size_t v_stride,
                           int64_t len, float* out) {
  values<true>(p, p_stride, nq, hd, v, v_stride, len, out);
}

}  // namespace fd
