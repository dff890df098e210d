// Reference quantizers for q4_1, q5_0, q5_1, q2_k, q3_k and q5_k, after ggml's quantize_row_*_ref
// (no importance matrix): the same code choices and search loops (make_qkx2_quants for the affine
// k-quants, make_q3_quants for q3_k), so files written with them resemble llama-quantize's output.
// quantize_row (convert.cc) dispatches here. Scalar and deterministic on every ISA. Garbage input
// (NaN, inf, huge values) gives garbage codes for its block but never an undefined float -> int
// conversion: every rounding goes through round_clamp.
#include <cmath>
#include <cstring>

#include "flashdip/quants.h"
#include "kernels/kernels_internal.h"

namespace fd {
namespace {

// round(v) half away from zero, clamped to [lo, hi] in float; NaN gives the value nearest 0.
inline int round_clamp(float v, int lo, int hi) {
  const float r = std::round(v);
  if (r != r) return lo > 0 ? lo : (hi < 0 ? hi : 0);
  if (!(r >= static_cast<float>(lo))) return lo;
  if (r > static_cast<float>(hi)) return hi;
  return static_cast<int>(r);
}
// Truncation toward zero, clamped the same way (ggml's (int8_t)(v + 0.5f) for v >= 0).
inline int trunc_clamp(float v, int lo, int hi) { return round_clamp(std::trunc(v), lo, hi); }

// Packs the fifth bits of 32 codes q[0..31] (0..31) into qh and their low nibbles into qs, as q5_0/q5_1:
// element j < 16 in the low nibble of qs[j] with its fifth bit at qh bit j, element j + 16 in the high
// nibble with bit j + 16.
void pack_q5(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0xf) | ((q[j + 16] & 0xf) << 4));
    h |= static_cast<uint32_t>(q[j] >> 4) << j;
    h |= static_cast<uint32_t>(q[j + 16] >> 4) << (j + 16);
  }
  std::memcpy(qh, &h, 4);  // little-endian on every supported target
}

// Affine code of 32 elements: x ~ d * q + min with min = the block minimum, q = trunc((x - min)/d + 0.5).
// Shared by q4_1 (nmax 15) and q5_1 (nmax 31).
void affine32(const float* x, int nmax, uint16_t* d16, uint16_t* m16, uint8_t* q) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < 32; ++j) mn = std::fmin(mn, x[j]), mx = std::fmax(mx, x[j]);
  const float d = (mx - mn) / static_cast<float>(nmax);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d16 = fp32_to_fp16(d);
  *m16 = fp32_to_fp16(mn);
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(trunc_clamp((x[j] - mn) * id + 0.5f, 0, nmax));
}

// Symmetric code of 32 elements: the element of largest magnitude maps to -16, d = max / -16,
// q = trunc(x/d + 16.5) in 0..31 (as q4_0 with 5 bits).
void symmetric32_q5(const float* x, uint16_t* d16, uint8_t* q) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  const float d = max / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d16 = fp32_to_fp16(d);
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(trunc_clamp(x[j] * id + 16.5f, 0, 31));
}

// ggml's make_qkx2_quants: the affine code x ~ scale * L - min (L in 0..nmax, min >= 0) of n elements
// minimizing the weighted error (absolute if use_mad, else squared), searching nstep + 1 scales around
// the range's and refitting scale and min by weighted least squares for each. Returns the scale and
// writes the min (as a positive offset) and the codes.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::fmin(min, x[i]);
    max = std::fmax(max, x[i]);
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (!(max > min)) {  // constant block (or NaN): all codes 0
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best = 0.0f;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(round_clamp(iscale * (x[i] - min), 0, nmax));
    const float diff = scale * L[i] + min - x[i];
    best += weights[i] * (use_mad ? std::fabs(diff) : diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * (x[i] - min), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0.0f;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        err += weights[i] * (use_mad ? std::fabs(diff) : diff * diff);
      }
      if (err < best) {
        std::memcpy(L, Laux, static_cast<size_t>(n));
        best = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// ggml's make_q3_quants with do_rmse: the symmetric code x ~ scale * L (L in -nmax..nmax-1) of n
// elements, starting from the largest magnitude at -nmax and moving single codes while the weighted
// (x^2) least-squares fit improves. Writes L + nmax; returns the scale.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
  if (!(amax >= 1e-15f)) {  // ggml's GROUP_MAX_EPS; NaN too
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp(iscale * x[i], -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0.0f) {
        float sl2 = suml2 - w * L[i] * L[i];
        const int nl = round_clamp(x[i] * sl2 / slx, -nmax, nmax - 1);
        if (nl != L[i]) {
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Packs 256 2-bit codes as q2_k/q3_k's qs: in each 128-element half c, byte 32c + l holds elements
// 128c + l, +32, +64, +96 at bit pairs 0, 2, 4, 6.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int c = 0; c < 2; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * c + l;
      qs[32 * c + l] = static_cast<uint8_t>((q[0] & 3) | ((q[32] & 3) << 2) | ((q[64] & 3) << 4) | ((q[96] & 3) << 6));
    }
}

}  // namespace

// q8_1 activations (for q4_1 / q5_1 weights), as ggml's quantize_row_q8_1_ref: q8_0's codes
// (d = amax / 127, q = round(x / d)) and s = d * sum(q) for the weights' min term.
void quantize_row_q8_1_act(const float* x, block_q8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < QK8_0; ++j) {
      y[i].qs[j] = static_cast<int8_t>(round_clamp(x[j] * id, -127, 127));
      sum += y[i].qs[j];
    }
    y[i].d = fp32_to_fp16(d);
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

// q4_1: x = d * q + m with m the block minimum and d = (max - min) / 15.
void quant_q4_1(const float* x, block_q4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    uint8_t q[32];
    uint16_t d, m;
    affine32(x, 15, &d, &m, q);
    b[i].d = d, b[i].m = m;
    for (int j = 0; j < 16; ++j) b[i].qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  }
}

// q5_0: x = d * (q - 16), the element of largest magnitude at -16.
void quant_q5_0(const float* x, block_q5_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
    uint8_t q[32];
    uint16_t d;
    symmetric32_q5(x, &d, q);
    b[i].d = d;
    pack_q5(q, b[i].qs, b[i].qh);
  }
}

// q5_1: x = d * q + m with m the block minimum and d = (max - min) / 31.
void quant_q5_1(const float* x, block_q5_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
    uint8_t q[32];
    uint16_t d, m;
    affine32(x, 31, &d, &m, q);
    b[i].d = d, b[i].m = m;
    pack_q5(q, b[i].qs, b[i].qh);
  }
}

// q2_k: each sub-block of 16 gets an affine 2-bit code (make_qkx2_quants weighted by |x|, absolute
// error); the 16 scales and mins are coded in 4 bits against d = max scale / 15 and dmin = max min / 15,
// then the codes are recomputed with the coded scales.
void quant_q2_K(const float* x, block_q2_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::fmax(max_scale, scales[j]);
      max_min = std::fmax(max_min, mins[j]);
    }
    if (max_scale > 0.0f) {
      const float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; ++j) b[i].scales[j] = static_cast<uint8_t>(round_clamp(iscale * scales[j], 0, 15));
      b[i].d = fp32_to_fp16(max_scale / 15.0f);
    } else {
      for (int j = 0; j < 16; ++j) b[i].scales[j] = 0;
      b[i].d = fp32_to_fp16(0.0f);
    }
    if (max_min > 0.0f) {
      const float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; ++j) b[i].scales[j] |= static_cast<uint8_t>(round_clamp(iscale * mins[j], 0, 15) << 4);
      b[i].dmin = fp32_to_fp16(max_min / 15.0f);
    } else {
      b[i].dmin = fp32_to_fp16(0.0f);
    }
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int j = 0; j < 16; ++j) {
      const float ds = d * static_cast<float>(b[i].scales[j] & 0xf);
      if (ds == 0.0f) continue;  // keeps make_qkx2_quants' codes, as ggml
      const float dm = dmin * static_cast<float>(b[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l) L[16 * j + l] = static_cast<uint8_t>(round_clamp((x[16 * j + l] + dm) / ds, 0, 3));
    }
    pack_2bit(L, b[i].qs);
  }
}

// q3_k: each sub-block of 16 gets a symmetric 3-bit code (make_q3_quants); the 16 scales are coded as
// signed 6-bit values against d = max |scale| / 32 (the largest at -32), then the codes are recomputed
// with the coded scales. Code q in 0..7 is stored as its low 2 bits in qs and its bit 2 in hmask
// (element e's bit is bit e / 32 of hmask[e % 32]).
void quant_q3_K(const float* x, block_q3_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    int8_t L[QK_K];
    float scales[16];
    float amax = 0.0f, max_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) amax = std::fabs(scales[j]), max_scale = scales[j];
    }
    std::memset(b[i].scales, 0, sizeof b[i].scales);
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = round_clamp(iscale * scales[j], -32, 31) + 32;
        if (j < 8)
          b[i].scales[j] = static_cast<uint8_t>(l & 0xf);
        else
          b[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xf) << 4);
        b[i].scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      b[i].d = fp32_to_fp16(1.0f / iscale);
    } else {
      b[i].d = fp32_to_fp16(0.0f);
    }
    const float d = fp16_to_fp32(b[i].d);
    uint8_t q[QK_K];
    for (int j = 0; j < 16; ++j) {
      const int lo = j < 8 ? (b[i].scales[j] & 0xf) : (b[i].scales[j - 8] >> 4);
      const int sc = (lo | (((b[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float ds = d * static_cast<float>(sc);
      for (int l = 0; l < 16; ++l)
        q[16 * j + l] = static_cast<uint8_t>(ds != 0.0f ? round_clamp(x[16 * j + l] / ds, -4, 3) + 4 : L[16 * j + l]);
    }
    std::memset(b[i].hmask, 0, sizeof b[i].hmask);
    for (int e = 0; e < QK_K; ++e)
      if (q[e] > 3) {
        b[i].hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
        q[e] = static_cast<uint8_t>(q[e] - 4);
      }
    pack_2bit(q, b[i].qs);
  }
}

// q5_k: each sub-block of 32 gets an affine 5-bit code (make_qkx2_quants weighted by rms(x) + |x|,
// squared error); the 8 scales and mins are coded in 6 bits against d = max scale / 63 and
// dmin = max min / 63, then the codes are recomputed with the coded scales.
void quant_q5_K(const float* x, block_q5_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    uint8_t L[QK_K], Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0.0f;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32.0f);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
      scales[j] = make_qkx2_quants(32, 31, xs, weights, L + 32 * j, &mins[j], Laux, -0.5f, 0.1f, 15, false);
      max_scale = std::fmax(max_scale, scales[j]);
      max_min = std::fmax(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    uint8_t sc[8], mm[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>(round_clamp(inv_scale * scales[j], 0, 63));
      mm[j] = static_cast<uint8_t>(round_clamp(inv_min * mins[j], 0, 63));
    }
    std::memset(b[i].scales, 0, sizeof b[i].scales);
    for (int j = 0; j < 8; ++j) {  // the packing k4_scale_min reads
      if (j < 4) {
        b[i].scales[j] = sc[j];
        b[i].scales[j + 4] = mm[j];
      } else {
        b[i].scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xf) | ((mm[j] & 0xf) << 4));
        b[i].scales[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
        b[i].scales[j] |= static_cast<uint8_t>((mm[j] >> 4) << 6);
      }
    }
    b[i].d = fp32_to_fp16(max_scale / 63.0f);
    b[i].dmin = fp32_to_fp16(max_min / 63.0f);
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t s, m;
      k4_scale_min(b[i].scales, j, &s, &m);
      const float ds = d * static_cast<float>(s);
      if (ds == 0.0f) continue;  // keeps make_qkx2_quants' codes, as ggml
      const float dm = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) L[32 * j + l] = static_cast<uint8_t>(round_clamp((x[32 * j + l] + dm) / ds, 0, 31));
    }
    // 64-element chunk c: sub-block 2c in the low nibbles of qs[32c..], 2c+1 in the high ones; the fifth
    // bit of element l of sub-block k is bit k of qh[l].
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t q0 = L[64 * c + l], q1 = L[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((q0 & 0xf) | ((q1 & 0xf) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((q0 >> 4) << (2 * c)) | ((q1 >> 4) << (2 * c + 1)));
      }
  }
}

}  // namespace fd
