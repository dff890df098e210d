// AVX2 + FMA + F16C element-wise and attention kernels (Haswell / Zen 1 and later); twins of
// scalar/ops_scalar.cc, contracts in flashdip/ops.h. Every load and store is unaligned; tails shorter
// than a vector go through an 8-float buffer (so they see the same vector code) or a scalar loop.
// No inline library functions here (std::max, std::sqrt): an out-of-line copy compiled with -mavx2
// could be the one the linker keeps for the scalar code too (see flashdip/quants.h).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "flashdip/quants.h"
#include "kernels/kernels_internal.h"

namespace fd {
namespace {

// ---- expf ---------------------------------------------------------------------------------------
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (Cody-Waite: ln 2 =
// kLn2Hi + kLn2Lo, kLn2Hi with 12 significant bits so n * kLn2Hi is exact for |n| < 2^12), exp(r) by
// its Taylor polynomial of degree 7 (truncation error < r^8/8! < 5.2e-9 relative, 0.05 ulp), and 2^n
// applied as two exact power-of-two factors 2^(n>>1) * 2^(n - (n>>1)) so that results in the subnormal
// range are rounded once and overflow gives +inf. x is clamped to [-104, 89] first (exp(-104) rounds to
// 0, exp(89) to +inf); NaN stays NaN (vmaxps/vminps return their second operand when one is NaN).
// Measured against std::exp over every float in [-104, 89]: see flashdip/ops.h.
constexpr float kExpLo = -104.0f, kExpHi = 89.0f;
constexpr float kLog2e = 0x1.715476p+0f;
constexpr float kLn2Hi = 0x1.62ep-1f, kLn2Lo = 0x1.0bfbe8p-15f;
constexpr float kC2 = 0x1p-1f, kC3 = 0x1.555556p-3f, kC4 = 0x1.555556p-5f, kC5 = 0x1.111112p-7f,
                kC6 = 0x1.6c16c2p-10f, kC7 = 0x1.a01a02p-13f;

inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(kExpLo), x);
  x = _mm256_min_ps(_mm256_set1_ps(kExpHi), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC7);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i k = _mm256_cvtps_epi32(n);  // n is integral; NaN gives garbage, p is NaN anyway
  const __m256i k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

inline double hsum_pd(__m256d a) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

inline float hsum_ps(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// The 8 float sums of a[0..8) in one vector: [sum a[0], ..., sum a[7]].
inline __m256 hsum8x8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Adds the 8 float lanes of v to two double accumulators.
inline void add_pd(__m256 v, __m256d* a0, __m256d* a1) {
  *a0 = _mm256_add_pd(*a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  *a1 = _mm256_add_pd(*a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

}  // namespace

// ---- rmsnorm ------------------------------------------------------------------------------------

void rmsnorm_f32__avx2(const float* x, const float* w, float* out, int64_t n, float eps) {
  // The float squares (rounded as in the twin) summed in 16 double lanes.
  __m256d a[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    add_pd(_mm256_mul_ps(x0, x0), &a[0], &a[1]);
    add_pd(_mm256_mul_ps(x1, x1), &a[2], &a[3]);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + i);
    add_pd(_mm256_mul_ps(x0, x0), &a[0], &a[1]);
  }
  double sum = hsum_pd(_mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3])));
  for (; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float ms = static_cast<float>(sum / static_cast<double>(n)) + eps;
  const float scale = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(ms)));  // IEEE sqrt, as std::sqrt
  const __m256 vs = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// ---- rope ---------------------------------------------------------------------------------------

void rope_f32__avx2(float* vec, int64_t heads, int64_t head_dim, int64_t rot, const float* cs, const float* sn,
                    bool neox) {
  const int64_t half = rot / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = vec + h * head_dim;
    int64_t i = 0;
    if (neox) {
      for (; i + 8 <= half; i += 8) {
        const __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + half + i);
        const __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
        _mm256_storeu_ps(v + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
        _mm256_storeu_ps(v + half + i, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
      }
      for (; i < half; ++i) {
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs[i] - x1 * sn[i];
        v[i + half] = x0 * sn[i] + x1 * cs[i];
      }
    } else {
      // 4 pairs per vector: [x0 x1 x0 x1 ...] against [c c c' c' ...]; fmaddsub subtracts in the even
      // lanes (x0 c - x1 s) and adds in the odd ones (x1 c + x0 s), with xs = pairs swapped.
      const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
      for (; i + 4 <= half; i += 4) {
        const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cs + i)), dup);
        const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sn + i)), dup);
        const __m256 x = _mm256_loadu_ps(v + 2 * i);
        const __m256 xs = _mm256_permute_ps(x, 0xb1);
        _mm256_storeu_ps(v + 2 * i, _mm256_fmaddsub_ps(x, c, _mm256_mul_ps(xs, s)));
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

void exp_f32__avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(b, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_storeu_ps(b, exp8(_mm256_loadu_ps(b)));
    std::memcpy(y + i, b, static_cast<size_t>(n - i) * sizeof(float));
  }
}

void softmax_f32__avx2(float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  float mx = _mm_cvtss_f32(m4);
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const __m256 vm = _mm256_set1_ps(mx);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    add_pd(e, &s0, &s1);
  }
  if (i < n) {  // padding lanes: exp(-inf) = 0 adds nothing to the sum
    float b[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    std::memcpy(b, x + i, static_cast<size_t>(n - i) * sizeof(float));
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(b), vm));
    _mm256_storeu_ps(b, e);
    std::memcpy(x + i, b, static_cast<size_t>(n - i) * sizeof(float));
    add_pd(e, &s0, &s1);
  }
  const float inv = static_cast<float>(1.0 / hsum_pd(_mm256_add_pd(s0, s1)));
  const __m256 vi = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
  for (; i < n; ++i) x[i] *= inv;
}

namespace {
inline void silu_mul8(const float* g, const float* u, float* gs, float* h) {
  const __m256 vg = _mm256_loadu_ps(g), vu = _mm256_loadu_ps(u);
  const __m256 e = exp8(_mm256_xor_ps(vg, _mm256_set1_ps(-0.0f)));
  const __m256 s = _mm256_div_ps(vg, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  _mm256_storeu_ps(gs, s);
  _mm256_storeu_ps(h, _mm256_mul_ps(s, vu));
}
}  // namespace

void silu_mul_f32__avx2(float* g, const float* u, float* h, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) silu_mul8(g + i, u + i, g + i, h + i);
  if (i < n) {
    float bg[8] = {0, 0, 0, 0, 0, 0, 0, 0}, bu[8] = {0, 0, 0, 0, 0, 0, 0, 0}, bh[8];
    const size_t bytes = static_cast<size_t>(n - i) * sizeof(float);
    std::memcpy(bg, g + i, bytes);
    std::memcpy(bu, u + i, bytes);
    silu_mul8(bg, bu, bg, bh);
    std::memcpy(g + i, bg, bytes);
    std::memcpy(h + i, bh, bytes);
  }
}

// ---- attention ----------------------------------------------------------------------------------

namespace {

template <bool F16>
inline __m256 load8(const uint8_t* row, int64_t i) {
  if (F16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  return _mm256_loadu_ps(reinterpret_cast<const float*>(row + 4 * i));
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

// Scores of 8 rows at a time: the 8 dot products of one query head accumulate in 8 registers (8
// independent FMA chains) and are reduced together by hsum8x8 into one vector of 8 scores.
template <bool F16>
void scores(const float* q, int64_t nq, int64_t hd, const void* k, size_t ks, int64_t len, float scale, float* s,
            int64_t ss) {
  const uint8_t* kb = static_cast<const uint8_t*>(k);
  const int64_t hd8 = hd / 8 * 8;
  const __m256 vscale = _mm256_set1_ps(scale);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const uint8_t* rows = kb + static_cast<size_t>(j) * ks;
    for (int64_t g = 0; g < nq; ++g) {
      const float* qg = q + g * hd;
      __m256 a[8];
      for (int r = 0; r < 8; ++r) a[r] = _mm256_setzero_ps();
      for (int64_t i = 0; i < hd8; i += 8) {
        const __m256 qv = _mm256_loadu_ps(qg + i);
        for (int r = 0; r < 8; ++r) a[r] = _mm256_fmadd_ps(load8<F16>(rows + r * ks, i), qv, a[r]);
      }
      __m256 d = hsum8x8(a);
      if (hd8 < hd) {
        float t[8];
        for (int r = 0; r < 8; ++r) {
          float e = 0;
          for (int64_t i = hd8; i < hd; ++i) e += qg[i] * load1<F16>(rows + r * ks, i);
          t[r] = e;
        }
        d = _mm256_add_ps(d, _mm256_loadu_ps(t));
      }
      _mm256_storeu_ps(s + g * ss + j, _mm256_mul_ps(d, vscale));
    }
  }
  for (; j < len; ++j) {
    const uint8_t* row = kb + static_cast<size_t>(j) * ks;
    for (int64_t g = 0; g < nq; ++g) {
      const float* qg = q + g * hd;
      __m256 a = _mm256_setzero_ps();
      for (int64_t i = 0; i < hd8; i += 8) a = _mm256_fmadd_ps(load8<F16>(row, i), _mm256_loadu_ps(qg + i), a);
      float d = hsum_ps(a);
      for (int64_t i = hd8; i < hd; ++i) d += qg[i] * load1<F16>(row, i);
      s[g * ss + j] = d * scale;
    }
  }
}

// out[g][i0 .. i0 + 8 NV) for G query heads: G x NV accumulators over all rows, each V chunk loaded
// (and converted) once for the G heads.
template <bool F16, int G, int NV>
inline void values_chunk(const float* p, int64_t ps, const uint8_t* vb, size_t vs, int64_t len, int64_t i0,
                         float* out, int64_t hd) {
  __m256 a[G][NV];
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < NV; ++t) a[g][t] = _mm256_setzero_ps();
  for (int64_t j = 0; j < len; ++j) {
    const uint8_t* row = vb + static_cast<size_t>(j) * vs;
    __m256 v[NV];
    for (int t = 0; t < NV; ++t) v[t] = load8<F16>(row, i0 + 8 * t);
    for (int g = 0; g < G; ++g) {
      const __m256 pg = _mm256_broadcast_ss(p + g * ps + j);
      for (int t = 0; t < NV; ++t) a[g][t] = _mm256_fmadd_ps(v[t], pg, a[g][t]);
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < NV; ++t) _mm256_storeu_ps(out + g * hd + i0 + 8 * t, a[g][t]);
}

// G heads: chunks of 8 NV outputs, then of 8, then the last hd % 8 outputs one by one.
template <bool F16, int G, int NV>
void values_heads(const float* p, int64_t ps, const uint8_t* vb, size_t vs, int64_t len, float* out, int64_t hd) {
  int64_t i = 0;
  for (; i + 8 * NV <= hd; i += 8 * NV) values_chunk<F16, G, NV>(p, ps, vb, vs, len, i, out, hd);
  for (; i + 8 <= hd; i += 8) values_chunk<F16, G, 1>(p, ps, vb, vs, len, i, out, hd);
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
  for (; g + 4 <= nq; g += 4) values_heads<F16, 4, 2>(p + g * ps, ps, vb, vs, len, out + g * hd, hd);
  for (; g + 2 <= nq; g += 2) values_heads<F16, 2, 4>(p + g * ps, ps, vb, vs, len, out + g * hd, hd);
  for (; g < nq; ++g) values_heads<F16, 1, 4>(p + g * ps, ps, vb, vs, len, out + g * hd, hd);
}

}  // namespace

void attn_scores_f32__avx2(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                           float scale, float* s, int64_t s_stride) {
  scores<false>(q, nq, hd, k, k_stride, len, scale, s, s_stride);
}
void attn_scores_f16__avx2(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                           float scale, float* s, int64_t s_stride) {
  scores<true>(q, nq, hd, k, k_stride, len, scale, s, s_stride);
}
void attn_values_f32__avx2(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, size_t v_stride,
                           int64_t len, float* out) {
  values<false>(p, p_stride, nq, hd, v, v_stride, len, out);
}
void attn_values_f16__avx2(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, size_t v_stride,
                           int64_t len, float* out) {
  values<true>(p, p_stride, nq, hd, v, v_stride, len, out);
}

}  // namespace fd
