// Scalar twins (the oracles) of the sparse kernels in flashdip/sparse.h: written for clarity, one row
// and one element at a time. The SIMD versions are tested against these.
#include <cmath>
#include <cstring>

#include "flashdip/quants.h"
#include "flashdip/sparse.h"

namespace fd {
namespace sparse_impl {

namespace {

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

// ---- gather-GEMV --------------------------------------------------------------------------------

void gather_f32__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    const float c = coef[j];
    for (int64_t i = 0; i < m; ++i) y[i] += c * load_f32(r + 4 * i);
  }
}

void gather_f16__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    const float c = coef[j];
    for (int64_t i = 0; i < m; ++i) y[i] += c * fp16_to_fp32(load_u16(r + 2 * i));
  }
}

void gather_q8_0__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    for (int64_t b = 0; b < m / QK8_0; ++b) {
      const uint8_t* blk = r + b * static_cast<int64_t>(sizeof(block_q8_0));
      const float s = coef[j] * load_fp16(blk);  // x_j * d folded into one scale
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
      float* yb = y + b * QK8_0;
      for (int t = 0; t < QK8_0; ++t) yb[t] += s * static_cast<float>(q[t]);
    }
  }
}

void gather_q4_0__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    for (int64_t b = 0; b < m / QK4_0; ++b) {
      const uint8_t* blk = r + b * static_cast<int64_t>(sizeof(block_q4_0));
      const float s = coef[j] * load_fp16(blk);
      const uint8_t* q = blk + 2;
      float* yb = y + b * QK4_0;
      for (int t = 0; t < QK4_0 / 2; ++t) {
        yb[t] += s * static_cast<float>((q[t] & 0xf) - 8);
        yb[t + QK4_0 / 2] += s * static_cast<float>((q[t] >> 4) - 8);
      }
    }
  }
}

// q4_k: super-blocks of 256 outputs, 8 sub-blocks of 32 with 6-bit scale and min each: the value is
// d * sc * q - dmin * mn; sub-blocks 2p and 2p + 1 take the low and the high nibbles of qs[32p .. 32p + 31].
void gather_q4_k__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    for (int64_t b = 0; b < m / QK_K; ++b) {
      const uint8_t* blk = r + b * static_cast<int64_t>(sizeof(block_q4_K));
      const float d = coef[j] * load_fp16(blk), dmin = coef[j] * load_fp16(blk + 2);
      uint8_t sc[8], mn[8];
      k4_scales_mins(blk + 4, sc, mn);
      const uint8_t* q = blk + 4 + K_SCALE_SIZE;
      float* yb = y + b * QK_K;
      for (int p = 0; p < 4; ++p) {
        const float s0 = d * sc[2 * p], m0 = dmin * mn[2 * p], s1 = d * sc[2 * p + 1], m1 = dmin * mn[2 * p + 1];
        for (int l = 0; l < 32; ++l) {
          yb[64 * p + l] += s0 * static_cast<float>(q[32 * p + l] & 0xf) - m0;
          yb[64 * p + 32 + l] += s1 * static_cast<float>(q[32 * p + l] >> 4) - m1;
        }
      }
    }
  }
}

// q5_k: as q4_k with a fifth bit per value: bit 2p of qh[l] for the low nibble of qs[32p + l], bit
// 2p + 1 for its high nibble (values 0..31).
void gather_q5_k__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    for (int64_t b = 0; b < m / QK_K; ++b) {
      const uint8_t* blk = r + b * static_cast<int64_t>(sizeof(block_q5_K));
      const float d = coef[j] * load_fp16(blk), dmin = coef[j] * load_fp16(blk + 2);
      uint8_t sc[8], mn[8];
      k4_scales_mins(blk + 4, sc, mn);
      const uint8_t* qh = blk + 4 + K_SCALE_SIZE;
      const uint8_t* q = qh + QK_K / 8;
      float* yb = y + b * QK_K;
      for (int p = 0; p < 4; ++p) {
        const float s0 = d * sc[2 * p], m0 = dmin * mn[2 * p], s1 = d * sc[2 * p + 1], m1 = dmin * mn[2 * p + 1];
        for (int l = 0; l < 32; ++l) {
          const int lo = (q[32 * p + l] & 0xf) | (((qh[l] >> (2 * p)) & 1) << 4);
          const int hi = (q[32 * p + l] >> 4) | (((qh[l] >> (2 * p + 1)) & 1) << 4);
          yb[64 * p + l] += s0 * static_cast<float>(lo) - m0;
          yb[64 * p + 32 + l] += s1 * static_cast<float>(hi) - m1;
        }
      }
    }
  }
}

// q6_k: super-blocks of 256 outputs, 16 sub-blocks of 16 with int8 scales: d * sc * (q - 32), q of 6
// bits (ggml's layout: in each half of 128, the low 4 bits of l, l + 32, l + 64, l + 96 are the low and
// high nibbles of ql[l] and ql[l + 32], the high 2 bits the four bit pairs of qh[l]).
void gather_q6_k__scalar(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  for (int64_t j = 0; j < k; ++j) {
    const uint8_t* r = rows[j];
    for (int64_t b = 0; b < m / QK_K; ++b) {
      const uint8_t* blk = r + b * static_cast<int64_t>(sizeof(block_q6_K));
      const float d = coef[j] * load_fp16(blk + 208);
      const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
      float* yb = y + b * QK_K;
      for (int n = 0; n < 2; ++n) {
        const uint8_t* ql = blk + 64 * n;
        const uint8_t* qh = blk + 128 + 32 * n;
        for (int l = 0; l < 32; ++l) {
          const int q[4] = {(ql[l] & 0xf) | ((qh[l] & 3) << 4), (ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4),
                            (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4), (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)};
          for (int g = 0; g < 4; ++g) {
            const float s = d * static_cast<float>(sc[8 * n + 2 * g + l / 16]);
            yb[128 * n + 32 * g + l] += s * static_cast<float>(q[g] - 32);
          }
        }
      }
    }
  }
}

// ---- top-k primitives ---------------------------------------------------------------------------

void abs_hist__scalar(const float* a, int64_t n, uint32_t* s, uint32_t* hist) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = float_bits(a[i]) & 0x7fffffffu;
    const uint32_t r = u > 0x7f800000u ? 0u : u;  // NaN scores 0
    s[i] = r;
    if (hist) ++hist[r >> 21];
  }
}

namespace {
template <bool kAlpha>
void weight_hist_impl(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, uint32_t pthr, int64_t peq,
                      uint32_t* hist) {
  const float blend = 1.0f - gamma;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t raw = s[i];
    bool prot = raw > pthr;
    if (raw == pthr && peq > 0) {
      prot = true;
      --peq;
    }
    // selects rather than branches: cached[] is random from one index to the next
    const float r = bits_float(raw);
    const float cv = kAlpha ? std::fma(gamma, r, blend) : r;
    const float v = cached[i] ? cv : gamma * r;
    uint32_t w = float_bits(v);
    w = w > 0x7f800000u ? 0u : w;  // NaN (0 * inf) scores 0; scores are never negative
    w = prot ? raw : w;
    s[i] = w;
    if (hist) ++hist[w >> 21];
  }
}
}  // namespace

void weight_hist__scalar(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, bool alpha_blend,
                         uint32_t pthr, int64_t peq, uint32_t* hist) {
  if (alpha_blend)
    weight_hist_impl<true>(s, n, cached, gamma, pthr, peq, hist);
  else
    weight_hist_impl<false>(s, n, cached, gamma, pthr, peq, hist);
}

int64_t emit__scalar(const uint32_t* s, int64_t n, uint32_t thr, int64_t eq, int32_t* out, int64_t cap) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (s[i] > thr || (s[i] == thr && eq > 0)) {
      if (s[i] == thr) --eq;
      if (c == cap) break;  // only on a broken precondition
      out[c++] = static_cast<int32_t>(i);
    }
  }
  return c;
}

int64_t collect__scalar(const uint32_t* s, int64_t n, int shift, uint32_t prefix, uint32_t* cand) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) {  // branch-free (c <= i: safe in place and within cand + n)
    const uint32_t v = s[i];
    cand[c] = v;
    c += (v >> shift) == prefix;
  }
  return c;
}

int64_t collect_range__scalar(const uint32_t* s, int64_t n, uint32_t lo, uint32_t hi, uint32_t* cand,
                              int64_t* above) {
  int64_t c = 0, a = 0;
  for (int64_t i = 0; i < n; ++i) {  // branch-free: ~1 in 5 values is a candidate, at random
    const uint32_t v = s[i];
    a += v > hi;
    cand[c] = v;  // c <= i < n; overwritten unless kept
    c += v >= lo && v <= hi;
  }
  *above = a;
  return c;
}

}  // namespace sparse_impl
}  // namespace fd
