// Row conversions: dequantize_row for every readable type, reference quantize_row for the writable
// ones, and the activation quantizers (q8_0, q8_k). Scalar and deterministic on every ISA: these run
// once per tensor (convert, make-model) or once per token (activations), never in the weight stream.
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "flashdip/kernels.h"
#include "flashdip/quants.h"
#include "kernels/kernels_internal.h"

namespace fd {
namespace {

// Round half away from zero (as roundf) and clamp to [lo, hi], in float so that NaN and huge values
// (garbage input) never reach an undefined float -> int conversion; NaN gives 0 (or lo).
inline int code(float v, int lo, int hi) {
  const float r = std::round(v);
  if (r != r) return lo <= 0 && hi >= 0 ? 0 : lo;
  if (!(r >= static_cast<float>(lo))) return lo;
  if (r > static_cast<float>(hi)) return hi;
  return static_cast<int>(r);
}
// Truncation toward zero, clamped the same way.
inline int code_trunc(float v, int lo, int hi) { return code(std::trunc(v) , lo, hi); }

// ---- dequantize -------------------------------------------------------------------------------

void dequant_q4_0(const block_q4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = d * static_cast<float>((b[i].qs[j] & 0xf) - 8);
      y[j + QK4_0 / 2] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequant_q4_1(const block_q4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = d * static_cast<float>(b[i].qs[j] & 0xf) + m;
      y[j + QK4_1 / 2] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
    }
  }
}

template <class B>
inline uint32_t fifth_bits(const B& b) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);  // little-endian on every supported target
  return qh;
}

void dequant_q5_0(const block_q5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(b[i].d);
    const uint32_t qh = fifth_bits(b[i]);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int lo = (b[i].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = d * static_cast<float>(lo - 16);
      y[j + QK5_0 / 2] = d * static_cast<float>(hi - 16);
    }
  }
}

void dequant_q5_1(const block_q5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    const uint32_t qh = fifth_bits(b[i]);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int lo = (b[i].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = d * static_cast<float>(lo) + m;
      y[j + QK5_1 / 2] = d * static_cast<float>(hi) + m;
    }
  }
}

void dequant_q8_0(const block_q8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void dequant_q2_K(const block_q2_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    // element e: 128-chunk c = e/128, within it shift pair s = (e%128)/32, lane l = e%32;
    // q = (qs[32c + l] >> 2s) & 3; sub-block (of 16) = e/16 holds its scale/min nibbles.
    for (int e = 0; e < QK_K; ++e) {
      const int c = e / 128, s = (e % 128) / 32, l = e % 32;
      const int q = (b[i].qs[32 * c + l] >> (2 * s)) & 3;
      const uint8_t sc = b[i].scales[e / 16];
      *y++ = d * static_cast<float>(sc & 0xf) * static_cast<float>(q) - dmin * static_cast<float>(sc >> 4);
    }
  }
}

// Signed 6-bit scale j in [0,16) of a q3_k block: low 4 bits in scales[0..7] (two nibbles each),
// high 2 bits in scales[8..11] (four pairs each).
inline int q3_K_scale(const uint8_t* s, int j) {
  const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
  const int hi = (s[8 + (j % 4)] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

void dequant_q3_K(const block_q3_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    // element e: chunk c = e/128, shift pair s = (e%128)/32, lane l = e%32; low 2 bits at
    // (qs[32c + l] >> 2s) & 3; high bit is bit (4c + s) of hmask[l]; set means +0, clear means -4.
    for (int e = 0; e < QK_K; ++e) {
      const int c = e / 128, s = (e % 128) / 32, l = e % 32;
      const int lo = (b[i].qs[32 * c + l] >> (2 * s)) & 3;
      const int h = (b[i].hmask[l] >> (4 * c + s)) & 1;
      const int q = lo - (h ? 0 : 4);
      *y++ = d * static_cast<float>(q3_K_scale(b[i].scales, e / 16)) * static_cast<float>(q);
    }
  }
}

void dequant_q4_K(const block_q4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    // 64-element chunk c: sub-block 2c in the low nibbles of qs[32c..32c+31], 2c+1 in the high ones.
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      k4_scale_min(b[i].scales, 2 * c, &sc0, &m0);
      k4_scale_min(b[i].scales, 2 * c + 1, &sc1, &m1);
      const float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) y[l] = d0 * static_cast<float>(q[l] & 0xf) - mm0;
      for (int l = 0; l < 32; ++l) y[32 + l] = d1 * static_cast<float>(q[l] >> 4) - mm1;
      y += 64;
    }
  }
}

void dequant_q5_K(const block_q5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    // as q4_k; the fifth bit of element l of sub-block k is bit k of qh[l].
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      k4_scale_min(b[i].scales, 2 * c, &sc0, &m0);
      k4_scale_min(b[i].scales, 2 * c + 1, &sc1, &m1);
      const float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] & 0xf) | (((b[i].qh[l] >> (2 * c)) & 1) << 4);
        y[l] = d0 * static_cast<float>(v) - mm0;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] >> 4) | (((b[i].qh[l] >> (2 * c + 1)) & 1) << 4);
        y[32 + l] = d1 * static_cast<float>(v) - mm1;
      }
      y += 64;
    }
  }
}

void dequant_q6_K(const block_q6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    // 128-element chunk c, lane l < 32, quarter k < 4: element 128c + 32k + l;
    // low nibble: ql[64c + l + 32*(k&1)], high nibble if k >= 2; top 2 bits: (qh[32c + l] >> 2k) & 3.
    for (int c = 0; c < 2; ++c) {
      const uint8_t* ql = b[i].ql + 64 * c;
      const uint8_t* qh = b[i].qh + 32 * c;
      const int8_t* sc = b[i].scales + 8 * c;
      for (int k = 0; k < 4; ++k) {
        for (int l = 0; l < 32; ++l) {
          const uint8_t lb = ql[l + 32 * (k & 1)];
          const int lo = k < 2 ? (lb & 0xf) : (lb >> 4);
          const int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
          y[32 * k + l] = d * static_cast<float>(sc[2 * k + l / 16]) * static_cast<float>(q);
        }
      }
      y += 128;
    }
  }
}

void dequant_q8_K(const block_q8_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i)
    for (int j = 0; j < QK_K; ++j) *y++ = b[i].d * static_cast<float>(b[i].qs[j]);
}

// ---- quantize (reference quality) -------------------------------------------------------------

// q4_0: the element of largest magnitude maps to -8 exactly: d = max / -8, q = clamp(x/d + 8.5).
void quant_q4_0(const float* x, block_q4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK4_0; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int q0 = code_trunc(x[j] * id + 8.5f, 0, 15), q1 = code_trunc(x[j + 16] * id + 8.5f, 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// code(v, -127, 127) without library calls (round and fmax are calls unless the compiler may assume
// no NaNs, and this runs on every activation of every q8_0/q4_0 matmul: 5.5% of a 1B q4_0 decode
// with the calls, 3.3% without): NaN -> 0, clamp, then round half away from zero from the
// truncation and the exact remainder v - trunc(v).
inline int8_t code_s8(float v) {
  v = v != v ? 0.0f : v;
  v = std::min(std::max(v, -127.0f), 127.0f);
  const int q = static_cast<int>(v);
  const float rest = v - static_cast<float>(q);
  return static_cast<int8_t>(q + (rest >= 0.5f) - (rest <= -0.5f));
}

// q8_0: symmetric, d = amax / 127, q = round(x / d) in [-127, 127].
void quant_q8_0(const float* x, block_q8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));  // NaN never wins, as fmax
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = code_s8(x[j] * id);
  }
}

// Squared error of sub-block x[0..len) coded as s * q - m with q = clamp(round((x + m) / s), 0, qmax).
float affine_sse(const float* x, int len, float s, float m, int qmax, uint8_t* q_out) {
  const float is = s != 0.0f ? 1.0f / s : 0.0f;
  float err = 0.0f;
  for (int l = 0; l < len; ++l) {
    const int q = code((x[l] + m) * is, 0, qmax);
    if (q_out) q_out[l] = static_cast<uint8_t>(q);
    const float e = s * static_cast<float>(q) - m - x[l];
    err += e * e;
  }
  return err;
}

// q4_k: each sub-block of 32 gets an affine code x ~ sc*d*q - m*dmin (q in 0..15, sc and m 6-bit).
// First pass: exact per-sub-block range (min clamped to <= 0, the format cannot add an offset).
// Then d = max scale / 63, dmin = max offset / 63 (stored as fp16), and each sub-block's 6-bit
// (sc, m) is chosen among the neighbours of the rounded values by least squared error.
void quant_q4_K(const float* x, block_q4_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float scale[8], offs[8];
    float max_scale = 0.0f, max_offs = 0.0f;
    for (int j = 0; j < 8; ++j) {
      const float* xs = x + 32 * j;
      float mn = xs[0], mx = xs[0];
      for (int l = 1; l < 32; ++l) mn = std::fmin(mn, xs[l]), mx = std::fmax(mx, xs[l]);
      if (mn > 0.0f) mn = 0.0f;
      scale[j] = (mx - mn) / 15.0f;
      offs[j] = -mn;
      max_scale = std::fmax(max_scale, scale[j]);
      max_offs = std::fmax(max_offs, offs[j]);
    }
    const uint16_t d16 = fp32_to_fp16(max_scale / 63.0f), dmin16 = fp32_to_fp16(max_offs / 63.0f);
    const float d = fp16_to_fp32(d16), dmin = fp16_to_fp32(dmin16);
    const float id = d != 0.0f ? 1.0f / d : 0.0f, idmin = dmin != 0.0f ? 1.0f / dmin : 0.0f;
    uint8_t sc[8], mm[8], q[QK_K];
    for (int j = 0; j < 8; ++j) {
      const int s0 = code(scale[j] * id, 0, 63), m0 = code(offs[j] * idmin, 0, 63);
      float best = std::numeric_limits<float>::infinity();
      sc[j] = static_cast<uint8_t>(s0), mm[j] = static_cast<uint8_t>(m0);  // kept if every error is NaN
      for (int ds = -1; ds <= 1; ++ds) {
        for (int dm = -1; dm <= 1; ++dm) {
          const int s = s0 + ds, m = m0 + dm;
          if (s < 0 || s > 63 || m < 0 || m > 63) continue;
          const float err = affine_sse(x + 32 * j, 32, d * s, dmin * m, 15, nullptr);
          if (err < best) best = err, sc[j] = static_cast<uint8_t>(s), mm[j] = static_cast<uint8_t>(m);
        }
      }
      affine_sse(x + 32 * j, 32, d * sc[j], dmin * mm[j], 15, q + 32 * j);
    }
    b[i].d = d16;
    b[i].dmin = dmin16;
    std::memset(b[i].scales, 0, sizeof b[i].scales);
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        b[i].scales[j] |= sc[j];
        b[i].scales[j + 4] |= mm[j];
      } else {
        b[i].scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xf) | ((mm[j] & 0xf) << 4));
        b[i].scales[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
        b[i].scales[j] |= static_cast<uint8_t>((mm[j] >> 4) << 6);
      }
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        b[i].qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

// q6_k: each sub-block of 16 is symmetric with its largest-magnitude element mapping to -32
// (q in [-32, 31]); the 16 sub-block scales are coded as int8 against d = max |scale| / 127.
void quant_q6_K(const float* x, block_q6_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float scale[16], amax_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f, max = 0.0f;
      for (int l = 0; l < 16; ++l)
        if (std::fabs(x[16 * j + l]) > amax) amax = std::fabs(x[16 * j + l]), max = x[16 * j + l];
      scale[j] = max / -32.0f;
      amax_scale = std::fmax(amax_scale, std::fabs(scale[j]));
    }
    const uint16_t d16 = fp32_to_fp16(amax_scale / 127.0f);
    const float d = fp16_to_fp32(d16);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t q[QK_K];  // biased by +32: 0..63
    for (int j = 0; j < 16; ++j) {
      const int s = code(scale[j] * id, -127, 127);
      b[i].scales[j] = static_cast<int8_t>(s);
      const float eff = d * static_cast<float>(s);
      const float ie = eff != 0.0f ? 1.0f / eff : 0.0f;
      for (int l = 0; l < 16; ++l) {
        const int v = code(x[16 * j + l] * ie, -32, 31);
        q[16 * j + l] = static_cast<uint8_t>(v + 32);
      }
    }
    b[i].d = d16;
    for (int c = 0; c < 2; ++c) {
      const uint8_t* qc = q + 128 * c;
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = qc[l], q2 = qc[l + 32], q3 = qc[l + 64], q4 = qc[l + 96];
        b[i].ql[64 * c + l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
        b[i].ql[64 * c + l + 32] = static_cast<uint8_t>((q2 & 0xf) | ((q4 & 0xf) << 4));
        b[i].qh[32 * c + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace

// q8_0 activations: as the q8_0 weight quantizer (d = amax / 127 stored as fp16, q = round(x / d)).
void quantize_row_q8_0_act(const float* x, block_q8_0* y, int64_t n) { quant_q8_0(x, y, n / QK8_0); }

// q8_k activations: the element of largest magnitude maps to -127 (d = -max / 127, float32 scale),
// q = round(x / d) in [-127, 127] (as current ggml; never -128, which keeps every int8 x int8 pair
// sum inside int16); bsums hold the sums of each 16 quants for the k-quant min terms.
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < QK_K; ++j) {
      y[i].qs[j] = static_cast<int8_t>(code(iscale * x[j], -127, 127));
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(s);
    }
    y[i].d = 1.0f / iscale;
  }
}

void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case TYPE_F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case TYPE_F16: {
      const uint8_t* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = load_fp16(p + 2 * i);
      return;
    }
    case TYPE_BF16: {
      const uint8_t* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    }
    case TYPE_Q4_0: dequant_q4_0(static_cast<const block_q4_0*>(src), dst, n / QK4_0); return;
    case TYPE_Q4_1: dequant_q4_1(static_cast<const block_q4_1*>(src), dst, n / QK4_1); return;
    case TYPE_Q5_0: dequant_q5_0(static_cast<const block_q5_0*>(src), dst, n / QK5_0); return;
    case TYPE_Q5_1: dequant_q5_1(static_cast<const block_q5_1*>(src), dst, n / QK5_1); return;
    case TYPE_Q8_0: dequant_q8_0(static_cast<const block_q8_0*>(src), dst, n / QK8_0); return;
    case TYPE_Q2_K: dequant_q2_K(static_cast<const block_q2_K*>(src), dst, n / QK_K); return;
    case TYPE_Q3_K: dequant_q3_K(static_cast<const block_q3_K*>(src), dst, n / QK_K); return;
    case TYPE_Q4_K: dequant_q4_K(static_cast<const block_q4_K*>(src), dst, n / QK_K); return;
    case TYPE_Q5_K: dequant_q5_K(static_cast<const block_q5_K*>(src), dst, n / QK_K); return;
    case TYPE_Q6_K: dequant_q6_K(static_cast<const block_q6_K*>(src), dst, n / QK_K); return;
    case TYPE_Q8_K: dequant_q8_K(static_cast<const block_q8_K*>(src), dst, n / QK_K); return;  // tests
    default:
      assert(!"dequantize_row: type cannot be dequantized");
      for (int64_t i = 0; i < n; ++i) dst[i] = std::numeric_limits<float>::quiet_NaN();
  }
}

void quantize_row(uint32_t type, const float* src, void* dst, int64_t n) {
  uint8_t* p = static_cast<uint8_t*>(dst);
  switch (type) {
    case TYPE_F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case TYPE_F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case TYPE_BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case TYPE_Q4_0: quant_q4_0(src, static_cast<block_q4_0*>(dst), n / QK4_0); return;
    case TYPE_Q8_0: quant_q8_0(src, static_cast<block_q8_0*>(dst), n / QK8_0); return;
    case TYPE_Q4_1: quant_q4_1(src, static_cast<block_q4_1*>(dst), n / QK4_1); return;   // kernels/quantize.cc
    case TYPE_Q5_0: quant_q5_0(src, static_cast<block_q5_0*>(dst), n / QK5_0); return;
    case TYPE_Q5_1: quant_q5_1(src, static_cast<block_q5_1*>(dst), n / QK5_1); return;
    case TYPE_Q2_K: quant_q2_K(src, static_cast<block_q2_K*>(dst), n / QK_K); return;
    case TYPE_Q3_K: quant_q3_K(src, static_cast<block_q3_K*>(dst), n / QK_K); return;
    case TYPE_Q5_K: quant_q5_K(src, static_cast<block_q5_K*>(dst), n / QK_K); return;
    case TYPE_Q4_K: quant_q4_K(src, static_cast<block_q4_K*>(dst), n / QK_K); return;
    case TYPE_Q6_K: quant_q6_K(src, static_cast<block_q6_K*>(dst), n / QK_K); return;
    case TYPE_Q8_K: quantize_row_q8_K(src, static_cast<block_q8_K*>(dst), n); return;  // tests
    default:
      assert(!"quantize_row: type cannot be quantized");  // caller checks traits.can_quantize
      return;
  }
}

}  // namespace fd
