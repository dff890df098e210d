// Baseline AArch64 NEON sparse kernels (every AArch64 CPU: Cortex-A53/A57/A72, Apple M*); twins of
// scalar/sparse_scalar.cc. Same structure as x86/sparse_avx2.cc: output tiles that stay in L1, rows
// kGroup at a time, the next group prefetched. Rows are read with byte loads (vld1q_u8): they may
// start at any address.
#include <arm_neon.h>

#include <cstring>

#include "flashdip/quants.h"
#include "flashdip/sparse.h"
#include "kernels/gather_tiles.h"

namespace fd {
namespace sparse_impl {

namespace {

constexpr int64_t kTileBlocks = 64;  // 2048 outputs = 8 KiB of y per tile
constexpr int kGroup = kGatherGroup;

inline float load_scale(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// Adds c * (8 int8 values) to a[0..2).
inline void acc8(int8x8_t q, float s, float32x4_t* a) {
  const int16x8_t w = vmovl_s8(q);
  a[0] = vfmaq_n_f32(a[0], vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), s);
  a[1] = vfmaq_n_f32(a[1], vcvtq_f32_s32(vmovl_high_s16(w)), s);
}

struct KF32 {
  static constexpr int64_t BB = 128;
  static inline void acc(const uint8_t* p, float c, float32x4_t* a) {
    // byte loads: a row may start at any address (vld1q_f32 on a float* would claim 4-byte alignment)
    for (int t = 0; t < 8; ++t) a[t] = vfmaq_n_f32(a[t], vreinterpretq_f32_u8(vld1q_u8(p + 16 * t)), c);
  }
};

struct KF16 {
  static constexpr int64_t BB = 64;
  static inline void acc(const uint8_t* p, float c, float32x4_t* a) {
    for (int t = 0; t < 4; ++t) {
      const float16x8_t v = vreinterpretq_f16_u8(vld1q_u8(p + 16 * t));
      a[2 * t] = vfmaq_n_f32(a[2 * t], vcvt_f32_f16(vget_low_f16(v)), c);
      a[2 * t + 1] = vfmaq_n_f32(a[2 * t + 1], vcvt_high_f32_f16(v), c);
    }
  }
};

struct KQ8 {
  static constexpr int64_t BB = 34;
  static inline void acc(const uint8_t* p, float c, float32x4_t* a) {
    const float s = c * load_scale(p);
    const int8_t* q = reinterpret_cast<const int8_t*>(p + 2);
    const int8x16_t q0 = vld1q_s8(q), q1 = vld1q_s8(q + 16);
    acc8(vget_low_s8(q0), s, a);
    acc8(vget_high_s8(q0), s, a + 2);
    acc8(vget_low_s8(q1), s, a + 4);
    acc8(vget_high_s8(q1), s, a + 6);
  }
};

struct KQ4 {
  static constexpr int64_t BB = 18;
  static inline void acc(const uint8_t* p, float c, float32x4_t* a) {
    const float s = c * load_scale(p);
    const uint8x16_t q = vld1q_u8(p + 2);
    const int8x16_t e = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), e);  // 0..15
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), e);               // 16..31
    acc8(vget_low_s8(lo), s, a);
    acc8(vget_high_s8(lo), s, a + 2);
    acc8(vget_low_s8(hi), s, a + 4);
    acc8(vget_high_s8(hi), s, a + 6);
  }
};

template <class K, int R>
inline void group(const uint8_t* const* rows, const float* coef, int64_t b0, int64_t nb, float* y,
                  const uint8_t* const* pf) {
  const uint8_t* p[R];
  const uint8_t* q[R];
  float c[R];
  for (int r = 0; r < R; ++r) {
    p[r] = rows[r] + b0 * K::BB;
    q[r] = pf[r];
    c[r] = coef[r];
  }
  float* yb = y + b0 * 32;
  for (int64_t b = 0; b < nb; ++b, yb += 32) {
    float32x4_t a[8];
    for (int t = 0; t < 8; ++t) a[t] = vld1q_f32(yb + 4 * t);
    for (int r = 0; r < R; ++r) K::acc(p[r] + b * K::BB, c[r], a);
    for (int r = 0; r < R; ++r) {
      __builtin_prefetch(q[r] + b * K::BB, 0, 3);
      if (K::BB > 64) __builtin_prefetch(q[r] + b * K::BB + 64, 0, 3);
    }
    for (int t = 0; t < 8; ++t) vst1q_f32(yb + 4 * t, a[t]);
  }
}

template <class K>
void gather(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_tiles<32, kTileBlocks, 1>(rows, k, m, K::BB, [&](auto R, int64_t j, int64_t t0, int64_t nb, const uint8_t* const* pf) {
    group<K, decltype(R)::value>(rows + j, coef + j, t0, nb, y, pf);
  });
}

// ---- k-quant rows: super-blocks of 256 outputs ---------------------------------------------------
// Per group of rows and super-block, the sub-block scales (times the coefficient) are unpacked first;
// then the super-block is walked 64 outputs (16 accumulators) at a time. q4_k's mins go into a
// per-sub-block bias subtracted once per group of rows; q6_k's -32 is subtracted from the bytes.
// The scales are unpacked with vector widening, not one byte at a time (which cost about a fifth of a
// row's super-block on x86, where it was measured).

// q4_k / q5_k: sc[0..8) = c d sc_j, mn[0..8) += c dmin m_j (k4_scales_mins on 32-bit words; the bytes
// go to a vector as one 64-bit word rather than through memory).
inline void k4_scales(const uint8_t* blk, float c, float* sc, float* mn) {
  uint32_t u[3];
  std::memcpy(u, blk + 4, 12);
  const uint64_t s8 = (u[0] & 0x3f3f3f3fu) | static_cast<uint64_t>((u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u)) << 32;
  const uint64_t m8 = (u[1] & 0x3f3f3f3fu) | static_cast<uint64_t>(((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u)) << 32;
  const float d = c * load_scale(blk), dm = c * load_scale(blk + 2);
  const uint16x8_t vs = vmovl_u8(vcreate_u8(s8)), vm = vmovl_u8(vcreate_u8(m8));
  vst1q_f32(sc, vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(vs))), d));
  vst1q_f32(sc + 4, vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(vs)), d));
  vst1q_f32(mn, vfmaq_n_f32(vld1q_f32(mn), vcvtq_f32_u32(vmovl_u16(vget_low_u16(vm))), dm));
  vst1q_f32(mn + 4, vfmaq_n_f32(vld1q_f32(mn + 4), vcvtq_f32_u32(vmovl_high_u16(vm)), dm));
}

struct KQ4K {
  static constexpr int64_t BB = 144;
  static constexpr int NS = 8;
  static constexpr bool kBias = true;
  static inline void scales(const uint8_t* blk, float c, float* sc, float* mn) { k4_scales(blk, c, sc, mn); }
  static inline void acc(const uint8_t* blk, int s, const float* sc, float32x4_t* a) {
    const uint8_t* q = blk + 4 + K_SCALE_SIZE + 32 * s;
    const float s0 = sc[2 * s], s1 = sc[2 * s + 1];
    const uint8x16_t m = vdupq_n_u8(0x0f);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t v = vld1q_u8(q + 16 * h);
      const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, m)), hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
      acc8(vget_low_s8(lo), s0, a + 4 * h);
      acc8(vget_high_s8(lo), s0, a + 4 * h + 2);
      acc8(vget_low_s8(hi), s1, a + 8 + 4 * h);
      acc8(vget_high_s8(hi), s1, a + 8 + 4 * h + 2);
    }
  }
};

// q5_k: q4_k's scales and mins; the fifth bits (qh) are set into bit 4 of the nibbles in bytes.
struct KQ5K {
  static constexpr int64_t BB = 176;
  static constexpr int NS = 8;
  static constexpr bool kBias = true;
  static inline void scales(const uint8_t* blk, float c, float* sc, float* mn) { k4_scales(blk, c, sc, mn); }
  static inline void acc(const uint8_t* blk, int s, const float* sc, float32x4_t* a) {
    const uint8_t* qh = blk + 4 + K_SCALE_SIZE;
    const uint8_t* q = qh + 32 + 32 * s;
    const float s0 = sc[2 * s], s1 = sc[2 * s + 1];
    const uint8x16_t m = vdupq_n_u8(0x0f), b4 = vdupq_n_u8(0x10);
    const uint8x16_t u1 = vdupq_n_u8(static_cast<uint8_t>(1 << (2 * s))), u2 = vdupq_n_u8(static_cast<uint8_t>(2 << (2 * s)));
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t v = vld1q_u8(q + 16 * h), hb = vld1q_u8(qh + 16 * h);
      const int8x16_t lo = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, m), vandq_u8(vtstq_u8(hb, u1), b4)));
      const int8x16_t hi = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), vandq_u8(vtstq_u8(hb, u2), b4)));
      acc8(vget_low_s8(lo), s0, a + 4 * h);
      acc8(vget_high_s8(lo), s0, a + 4 * h + 2);
      acc8(vget_low_s8(hi), s1, a + 8 + 4 * h);
      acc8(vget_high_s8(hi), s1, a + 8 + 4 * h + 2);
    }
  }
};

struct KQ6K {
  static constexpr int64_t BB = 210;
  static constexpr int NS = 16;
  static constexpr bool kBias = false;
  static inline void scales(const uint8_t* blk, float c, float* sc, float*) {
    const float d = c * load_scale(blk + 208);
    const int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(blk + 192));
    const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_high_s8(v);
    vst1q_f32(sc, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
    vst1q_f32(sc + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d));
    vst1q_f32(sc + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
    vst1q_f32(sc + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d));
  }
  // Step s: half n = s / 2, quarters g = 2 (s % 2) and g + 1 (see the scalar twin).
  static inline void acc(const uint8_t* blk, int s, const float* sc, float32x4_t* a) {
    const int n = s >> 1;
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    const int8x16_t off = vdupq_n_s8(32);
    const float* sg = sc + 8 * n + 4 * (s & 1);
    for (int h = 0; h < 2; ++h) {  // l in [16h, 16h + 16)
      const uint8x16_t qa = vld1q_u8(blk + 64 * n + 16 * h), qb = vld1q_u8(blk + 64 * n + 32 + 16 * h);
      const uint8x16_t qh = vld1q_u8(blk + 128 + 32 * n + 16 * h);
      uint8x16_t v0, v1;
      if ((s & 1) == 0) {
        v0 = vorrq_u8(vandq_u8(qa, m4), vshlq_n_u8(vandq_u8(qh, vdupq_n_u8(0x03)), 4));
        v1 = vorrq_u8(vandq_u8(qb, m4), vshlq_n_u8(vandq_u8(qh, vdupq_n_u8(0x0c)), 2));
      } else {
        v0 = vorrq_u8(vshrq_n_u8(qa, 4), vandq_u8(qh, vdupq_n_u8(0x30)));
        v1 = vorrq_u8(vshrq_n_u8(qb, 4), vshrq_n_u8(vandq_u8(qh, vdupq_n_u8(0xc0)), 2));
      }
      const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(v0), off), w1 = vsubq_s8(vreinterpretq_s8_u8(v1), off);
      acc8(vget_low_s8(w0), sg[h], a + 4 * h);
      acc8(vget_high_s8(w0), sg[h], a + 4 * h + 2);
      acc8(vget_low_s8(w1), sg[2 + h], a + 8 + 4 * h);
      acc8(vget_high_s8(w1), sg[2 + h], a + 8 + 4 * h + 2);
    }
  }
};

constexpr int64_t kTileSuper = 8;  // 2048 outputs, as kTileBlocks

template <class K, int R>
inline void group_k(const uint8_t* const* rows, const float* coef, int64_t s0, int64_t ns, float* y,
                    const uint8_t* const* pf) {
  const uint8_t* p[R];
  const uint8_t* q[R];
  for (int r = 0; r < R; ++r) p[r] = rows[r] + s0 * K::BB, q[r] = pf[r];
  float* yb = y + s0 * QK_K;
  for (int64_t b = 0; b < ns; ++b) {
    float sc[R][K::NS];
    float bias[8] = {};
    for (int r = 0; r < R; ++r) {
      K::scales(p[r] + b * K::BB, coef[r], sc[r], bias);
      for (int64_t o = 0; o < K::BB; o += 64) __builtin_prefetch(q[r] + b * K::BB + o, 0, 3);
    }
    for (int s = 0; s < 4; ++s, yb += 64) {
      float32x4_t a[16];
      for (int t = 0; t < 16; ++t) a[t] = vld1q_f32(yb + 4 * t);
      if (K::kBias)
        for (int t = 0; t < 8; ++t)
          a[t] = vsubq_f32(a[t], vdupq_n_f32(bias[2 * s])), a[t + 8] = vsubq_f32(a[t + 8], vdupq_n_f32(bias[2 * s + 1]));
      for (int r = 0; r < R; ++r) K::acc(p[r] + b * K::BB, s, sc[r], a);
      for (int t = 0; t < 16; ++t) vst1q_f32(yb + 4 * t, a[t]);
    }
  }
}

template <class K>
void gather_k(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_tiles<QK_K, kTileSuper, 1>(rows, k, m, K::BB, [&](auto R, int64_t j, int64_t s0, int64_t ns, const uint8_t* const* pf) {
    group_k<K, decltype(R)::value>(rows + j, coef + j, s0, ns, y, pf);
  });
}

}  // namespace

void gather_f32__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KF32>(rows, coef, k, m, y);
}
void gather_f16__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KF16>(rows, coef, k, m, y);
}
void gather_q8_0__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KQ8>(rows, coef, k, m, y);
}
void gather_q4_0__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KQ4>(rows, coef, k, m, y);
}
void gather_q4_k__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_k<KQ4K>(rows, coef, k, m, y);
}
void gather_q5_k__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_k<KQ5K>(rows, coef, k, m, y);
}
void gather_q6_k__neon(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_k<KQ6K>(rows, coef, k, m, y);
}

// ---- top-k primitives ---------------------------------------------------------------------------
void abs_hist__scalar(const float* a, int64_t n, uint32_t* s, uint32_t* hist);
void weight_hist__scalar(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, bool alpha_blend,
                         uint32_t pthr, int64_t peq, uint32_t* hist);

namespace {
// Digit-1 histogram of 4 scores into two interleaved sub-histograms.
inline void hist4(uint32x4_t u, uint32_t (*h)[1024]) {
  const uint32x4_t d = vshrq_n_u32(u, 21);
  ++h[0][vgetq_lane_u32(d, 0)];
  ++h[1][vgetq_lane_u32(d, 1)];
  ++h[0][vgetq_lane_u32(d, 2)];
  ++h[1][vgetq_lane_u32(d, 3)];
}
}  // namespace

void abs_hist__neon(const float* a, int64_t n, uint32_t* s, uint32_t* hist) {
  uint32_t h[2][1024];
  if (hist) std::memset(h, 0, sizeof h);
  const uint32_t* au = reinterpret_cast<const uint32_t*>(a);
  const uint32x4_t absmask = vdupq_n_u32(0x7fffffffu), inf = vdupq_n_u32(0x7f800000u);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32x4_t u = vandq_u32(vld1q_u32(au + i), absmask);
    u = vbicq_u32(u, vcgtq_u32(u, inf));  // NaN -> 0
    vst1q_u32(s + i, u);
    if (hist) hist4(u, h);
  }
  if (hist)
    for (int b = 0; b < 1024; b += 4)
    vst1q_u32(hist + b, vaddq_u32(vld1q_u32(hist + b), vaddq_u32(vld1q_u32(h[0] + b), vld1q_u32(h[1] + b))));
  if (i < n) abs_hist__scalar(a + i, n - i, s + i, hist);
}

void weight_hist__neon(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, bool alpha_blend,
                       uint32_t pthr, int64_t peq, uint32_t* hist) {
  weight_hist__scalar(s, n, cached, gamma, alpha_blend, pthr, peq, hist);
}

int64_t emit__neon(const uint32_t* s, int64_t n, uint32_t thr, int64_t eq, int32_t* out, int64_t cap) {
  // Skips runs of 4 unselected scores with one compare; selected lanes are written one by one.
  const uint32x4_t vt = vdupq_n_u32(thr);
  int64_t c = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t v = vld1q_u32(s + i);
    const uint32x4_t sel = eq > 0 ? vcgeq_u32(v, vt) : vcgtq_u32(v, vt);
    if (vmaxvq_u32(sel) == 0) continue;
    for (int l = 0; l < 4 && c < cap; ++l) {
      const uint32_t x = s[i + l];
      if (x > thr || (x == thr && eq > 0)) {
        if (x == thr) --eq;
        out[c++] = static_cast<int32_t>(i + l);
      }
    }
  }
  for (; i < n && c < cap; ++i) {
    if (s[i] > thr || (s[i] == thr && eq > 0)) {
      if (s[i] == thr) --eq;
      out[c++] = static_cast<int32_t>(i);
    }
  }
  return c;
}

int64_t collect__neon(const uint32_t* s, int64_t n, int shift, uint32_t prefix, uint32_t* cand) {
  // Skips runs of 4 non-matching values with one compare; matches are copied one by one.
  const int32x4_t sh = vdupq_n_s32(-shift);
  const uint32x4_t vp = vdupq_n_u32(prefix);
  int64_t c = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t v = vld1q_u32(s + i);
    if (vmaxvq_u32(vceqq_u32(vshlq_u32(v, sh), vp)) == 0) continue;
    for (int l = 0; l < 4; ++l) {  // branch-free; c <= i + l
      const uint32_t x = s[i + l];
      cand[c] = x;
      c += (x >> shift) == prefix;
    }
  }
  for (; i < n; ++i)
    if ((s[i] >> shift) == prefix) cand[c++] = s[i];
  return c;
}

int64_t collect_range__neon(const uint32_t* s, int64_t n, uint32_t lo, uint32_t hi, uint32_t* cand,
                            int64_t* above) {
  const uint32x4_t vlo = vdupq_n_u32(lo), vhi = vdupq_n_u32(hi);
  uint32x4_t acc = vdupq_n_u32(0);  // per lane: values above hi (gt is all-ones: subtract it)
  int64_t c = 0, i = 0, a = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t v = vld1q_u32(s + i);
    const uint32x4_t gt = vcgtq_u32(v, vhi);
    acc = vsubq_u32(acc, gt);
    if (vmaxvq_u32(vbicq_u32(vcgeq_u32(v, vlo), gt)) == 0) continue;
    for (int l = 0; l < 4; ++l) {  // branch-free; c <= i + l
      const uint32_t x = s[i + l];
      cand[c] = x;
      c += x >= lo && x <= hi;
    }
  }
  a += vaddvq_u32(acc);
  for (; i < n; ++i) {
    a += s[i] > hi;
    if (s[i] >= lo && s[i] <= hi) cand[c++] = s[i];
  }
  *above = a;
  return c;
}

}  // namespace sparse_impl
}  // namespace fd
