// Scalar twins of the dense GEMV/GEMM kernels: the oracle every SIMD kernel is tested against.
//
// Arithmetic contract shared with the SIMD versions: integer dot products inside a block are exact
// (int32); each block contributes float terms (scale * integer sum) accumulated in float. SIMD
// kernels may reorder the float accumulation (and use FMA) but must not change the integer parts.
#include <cstring>

#include "kernels/kernels_internal.h"

namespace fd {
namespace {

inline const uint8_t* row_at(const void* w, size_t row_stride, int64_t r) {
  return static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * row_stride;
}

// Loops rows (outer) and tokens (inner) so each weight row is read from memory once for all tokens.
template <class Dot>
void gemm_rows(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
               size_t xq_stride, int64_t ntok, float* y, size_t y_stride, Dot dot) {
  const uint8_t* x0 = static_cast<const uint8_t*>(xq);
  for (int64_t r = 0; r < nrows; ++r) {
    const uint8_t* wr = row_at(w, row_stride, r);
    for (int64_t t = 0; t < ntok; ++t)
      y[static_cast<size_t>(t) * y_stride + r] = dot(wr, x0 + static_cast<size_t>(t) * xq_stride, n);
  }
}

float dot_f32(const uint8_t* w, const uint8_t* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float a, b;
    std::memcpy(&a, w + 4 * i, 4);
    std::memcpy(&b, x + 4 * i, 4);
    acc += a * b;
  }
  return acc;
}

float dot_f16(const uint8_t* w, const uint8_t* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float b;
    std::memcpy(&b, x + 4 * i, 4);
    acc += load_fp16(w + 2 * i) * b;
  }
  return acc;
}

float dot_bf16(const uint8_t* w, const uint8_t* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    float b;
    std::memcpy(&h, w + 2 * i, 2);
    std::memcpy(&b, x + 4 * i, 4);
    acc += bf16_to_fp32(h) * b;
  }
  return acc;
}

float dot_q8_0(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q8_0* wb = reinterpret_cast<const block_q8_0*>(w);
  const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int32_t s = 0;
    for (int j = 0; j < QK8_0; ++j) s += wb[i].qs[j] * xb[i].qs[j];
    acc += fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d) * static_cast<float>(s);
  }
  return acc;
}

float dot_q4_0(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q4_0* wb = reinterpret_cast<const block_q4_0*>(w);
  const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    int32_t s = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      s += ((wb[i].qs[j] & 0xf) - 8) * xb[i].qs[j];
      s += ((wb[i].qs[j] >> 4) - 8) * xb[i].qs[j + 16];
    }
    acc += fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d) * static_cast<float>(s);
  }
  return acc;
}

// Per super-block: sumi = sum_j sc_j * dot(q_j, a_j), summ = sum_j m_j * (sum of a_j); both exact.
// term = d * dx * sumi - dmin * dx * summ.
float dot_q4_k(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q4_K* wb = reinterpret_cast<const block_q4_K*>(w);
  const block_q8_K* xb = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      k4_scale_min(wb[i].scales, 2 * c, &sc0, &m0);
      k4_scale_min(wb[i].scales, 2 * c + 1, &sc1, &m1);
      const uint8_t* q = wb[i].qs + 32 * c;
      const int8_t* a = xb[i].qs + 64 * c;
      int32_t s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q[l] & 0xf) * a[l];
        s1 += (q[l] >> 4) * a[32 + l];
      }
      sumi += sc0 * s0 + sc1 * s1;
      const block_q8_K& xa = xb[i];  // packed: read bsums by value, never through an int16_t*
      summ += m0 * (xa.bsums[4 * c] + xa.bsums[4 * c + 1]) + m1 * (xa.bsums[4 * c + 2] + xa.bsums[4 * c + 3]);
    }
    const float dx = xb[i].d;
    acc += fp16_to_fp32(wb[i].d) * dx * static_cast<float>(sumi);
    acc -= fp16_to_fp32(wb[i].dmin) * dx * static_cast<float>(summ);
  }
  return acc;
}

// The 32 codes of a q5_0 / q5_1 block, 0..31: nibble | fifth bit << 4 (see block_q5_0).
template <class B>
inline void q5_codes(const B& b, int q[32]) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (b.qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
    q[j + 16] = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
  }
}

// Per block: d * dx * (q . a) + m * s, with s = dx * sum(a) from the q8_1 activation block.
float dot_q4_1(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q4_1* wb = reinterpret_cast<const block_q4_1*>(w);
  const block_q8_1* xb = reinterpret_cast<const block_q8_1*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    int32_t s = 0;
    for (int j = 0; j < QK4_1 / 2; ++j) {
      s += (wb[i].qs[j] & 0xf) * xb[i].qs[j];
      s += (wb[i].qs[j] >> 4) * xb[i].qs[j + 16];
    }
    acc += fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d) * static_cast<float>(s);
    acc += fp16_to_fp32(wb[i].m) * fp16_to_fp32(xb[i].s);
  }
  return acc;
}

// Per block: d * dx * ((q - 16) . a).
float dot_q5_0(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q5_0* wb = reinterpret_cast<const block_q5_0*>(w);
  const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    int q[32];
    q5_codes(wb[i], q);
    int32_t s = 0;
    for (int j = 0; j < QK5_0; ++j) s += (q[j] - 16) * xb[i].qs[j];
    acc += fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d) * static_cast<float>(s);
  }
  return acc;
}

// Per block: d * dx * (q . a) + m * s, as q4_1.
float dot_q5_1(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q5_1* wb = reinterpret_cast<const block_q5_1*>(w);
  const block_q8_1* xb = reinterpret_cast<const block_q8_1*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    int q[32];
    q5_codes(wb[i], q);
    int32_t s = 0;
    for (int j = 0; j < QK5_1; ++j) s += q[j] * xb[i].qs[j];
    acc += fp16_to_fp32(wb[i].d) * fp16_to_fp32(xb[i].d) * static_cast<float>(s);
    acc += fp16_to_fp32(wb[i].m) * fp16_to_fp32(xb[i].s);
  }
  return acc;
}

// Per super-block: sumi = sum_j (scales[j] & 15) * (q_j . a_j), summ = sum_j (scales[j] >> 4) * bsums[j]
// over the 16 sub-blocks of 16 (exact); term = d * dx * sumi - dmin * dx * summ. Element e's code:
// (qs[32 (e / 128) + e % 32] >> 2 ((e % 128) / 32)) & 3.
float dot_q2_k(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q2_K* wb = reinterpret_cast<const block_q2_K*>(w);
  const block_q8_K* xb = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        s += ((wb[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) * xb[i].qs[e];
      }
      const block_q8_K& xa = xb[i];  // packed: read bsums by value
      sumi += (wb[i].scales[j] & 0xf) * s;
      summ += (wb[i].scales[j] >> 4) * xa.bsums[j];
    }
    const float dx = xb[i].d;
    acc += fp16_to_fp32(wb[i].d) * dx * static_cast<float>(sumi);
    acc -= fp16_to_fp32(wb[i].dmin) * dx * static_cast<float>(summ);
  }
  return acc;
}

// Signed 6-bit scale j in [0, 16) of a q3_k block (low 4 bits in scales[0..7], high 2 in scales[8..11]).
inline int q3_k_scale(const uint8_t* s, int j) {
  const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
  return (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// Per super-block: sumi = sum_j scale_j * (q_j . a_j) over the 16 sub-blocks of 16, q in -4..3 (low 2
// bits as q2_k, minus 4 where the element's bit e / 32 of hmask[e % 32] is clear); term = d * dx * sumi.
float dot_q3_k(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q3_K* wb = reinterpret_cast<const block_q3_K*>(w);
  const block_q8_K* xb = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        const int lo = (wb[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        const int h = (wb[i].hmask[e % 32] >> (e / 32)) & 1;
        s += (lo - (h ? 0 : 4)) * xb[i].qs[e];
      }
      sumi += q3_k_scale(wb[i].scales, j) * s;
    }
    acc += fp16_to_fp32(wb[i].d) * xb[i].d * static_cast<float>(sumi);
  }
  return acc;
}

// As q4_k with 5-bit codes: the fifth bit of element l of sub-block k is bit k of qh[l].
float dot_q5_k(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q5_K* wb = reinterpret_cast<const block_q5_K*>(w);
  const block_q8_K* xb = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      k4_scale_min(wb[i].scales, 2 * c, &sc0, &m0);
      k4_scale_min(wb[i].scales, 2 * c + 1, &sc1, &m1);
      const uint8_t* q = wb[i].qs + 32 * c;
      const int8_t* a = xb[i].qs + 64 * c;
      int32_t s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += ((q[l] & 0xf) | (((wb[i].qh[l] >> (2 * c)) & 1) << 4)) * a[l];
        s1 += ((q[l] >> 4) | (((wb[i].qh[l] >> (2 * c + 1)) & 1) << 4)) * a[32 + l];
      }
      sumi += sc0 * s0 + sc1 * s1;
      const block_q8_K& xa = xb[i];
      summ += m0 * (xa.bsums[4 * c] + xa.bsums[4 * c + 1]) + m1 * (xa.bsums[4 * c + 2] + xa.bsums[4 * c + 3]);
    }
    const float dx = xb[i].d;
    acc += fp16_to_fp32(wb[i].d) * dx * static_cast<float>(sumi);
    acc -= fp16_to_fp32(wb[i].dmin) * dx * static_cast<float>(summ);
  }
  return acc;
}

// Per super-block: sumi = sum_j scale_j * dot(q_j - 32, a_j) over the 16 sub-blocks (exact);
// term = d * dx * sumi.
float dot_q6_k(const uint8_t* w, const uint8_t* x, int64_t n) {
  const block_q6_K* wb = reinterpret_cast<const block_q6_K*>(w);
  const block_q8_K* xb = reinterpret_cast<const block_q8_K*>(x);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t sumi = 0;
    for (int c = 0; c < 2; ++c) {
      const uint8_t* ql = wb[i].ql + 64 * c;
      const uint8_t* qh = wb[i].qh + 32 * c;
      const int8_t* sc = wb[i].scales + 8 * c;
      const int8_t* a = xb[i].qs + 128 * c;
      for (int k = 0; k < 4; ++k) {
        int32_t s0 = 0, s1 = 0;  // lanes 0..15 and 16..31 (two sub-blocks)
        for (int l = 0; l < 32; ++l) {
          const uint8_t lb = ql[l + 32 * (k & 1)];
          const int lo = k < 2 ? (lb & 0xf) : (lb >> 4);
          const int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
          (l < 16 ? s0 : s1) += q * a[32 * k + l];
        }
        sumi += sc[2 * k] * s0 + sc[2 * k + 1] * s1;
      }
    }
    acc += fp16_to_fp32(wb[i].d) * xb[i].d * static_cast<float>(sumi);
  }
  return acc;
}

}  // namespace

#define FD_SCALAR_GEMM(name, type)                                                                 \
  void gemm_##name##__scalar(const void* w, size_t row_stride, int64_t n, int64_t nrows,          \
                             const void* xq, size_t xq_stride, int64_t ntok, float* y,            \
                             size_t y_stride) {                                                   \
    gemm_rows(w, row_stride, n, nrows, xq, xq_stride, ntok, y, y_stride, dot_##name);             \
  }                                                                                                \
  FD_GEMV_FROM_GEMM(name, scalar)
FD_SCALAR_GEMM(q8_0, TYPE_Q8_0)
FD_SCALAR_GEMM(q4_0, TYPE_Q4_0)
FD_SCALAR_GEMM(q4_k, TYPE_Q4_K)
FD_SCALAR_GEMM(q6_k, TYPE_Q6_K)
FD_SCALAR_GEMM(q4_1, TYPE_Q4_1)
FD_SCALAR_GEMM(q5_0, TYPE_Q5_0)
FD_SCALAR_GEMM(q5_1, TYPE_Q5_1)
FD_SCALAR_GEMM(q2_k, TYPE_Q2_K)
FD_SCALAR_GEMM(q3_k, TYPE_Q3_K)
FD_SCALAR_GEMM(q5_k, TYPE_Q5_K)
FD_SCALAR_GEMM(f32, TYPE_F32)
FD_SCALAR_GEMM(f16, TYPE_F16)
FD_SCALAR_GEMM(bf16, TYPE_BF16)
#undef FD_SCALAR_GEMM

}  // namespace fd
