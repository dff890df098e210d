// AVX2 + FMA + F16C sparse kernels (Haswell / Zen 1 and later); twins of scalar/sparse_scalar.cc.
//
// Gather-GEMV: the outputs are cut into tiles of kTileBlocks * 32 floats that stay in L1; for each
// tile, rows are taken kGroup at a time, so each y vector is loaded and stored once per group of rows
// instead of once per row, and the next group's rows (or the next tile's first group) are prefetched
// while the current one is computed. Every load is unaligned (rows start anywhere).
#include <immintrin.h>

#include <cstring>

#include "flashdip/quants.h"
#include "flashdip/sparse.h"
#include "kernels/gather_tiles.h"

namespace fd {
namespace sparse_impl {

namespace {

constexpr int64_t kTileBlocks = 64;  // 2048 outputs = 8 KiB of y per tile
constexpr int kGroup = kGatherGroup;

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// One 32-element block of a row added to a[0..4): float rows scaled by the row's coefficient vc,
// quantized rows by *s = coefficient * block scale (precomputed per tile, see scales<>).
struct KF32 {
  static constexpr int64_t BB = 128;
  static constexpr bool kQuant = false, kBias = false;
  static inline void acc(const uint8_t* p, const float*, __m256 vc, __m256* a) {
    for (int t = 0; t < 4; ++t)
      a[t] = _mm256_fmadd_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(p + 32 * t)), vc, a[t]);
  }
};

struct KF16 {
  static constexpr int64_t BB = 64;
  static constexpr bool kQuant = false, kBias = false;
  static inline void acc(const uint8_t* p, const float*, __m256 vc, __m256* a) {
    for (int t = 0; t < 4; ++t) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * t));
      a[t] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), vc, a[t]);
    }
  }
};

struct KQ8 {
  static constexpr int64_t BB = 34;
  static constexpr bool kQuant = true, kBias = false;
  static inline void acc(const uint8_t* p, const float* sp, __m256, __m256* a) {
    const __m256 s = _mm256_broadcast_ss(sp);
    for (int t = 0; t < 4; ++t) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * t));
      a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), s, a[t]);
    }
  }
};

// q4_0: the bytes are zero-extended to 32-bit lanes straight from memory (vpmovzxbd m64), the low
// nibble of lane t is element t and the high nibble element t + 16; y gets s * q for the nibbles q in
// [0, 16) here and the -8 * s terms of the whole group once per block (group<> adds them).
struct KQ4 {
  static constexpr int64_t BB = 18;
  static constexpr bool kQuant = true, kBias = true;
  static inline void acc(const uint8_t* p, const float* sp, __m256, __m256* a) {
    const __m256 s = _mm256_broadcast_ss(sp);
    const __m256i m = _mm256_set1_epi32(0x0f);
    const __m256i b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2)));
    const __m256i b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 10)));
    a[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b0, m)), s, a[0]);
    a[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b1, m)), s, a[1]);
    a[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4)), s, a[2]);
    a[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4)), s, a[3]);
  }
};

// sc[b] = c * (fp16 scale of block b) for b < nb, 8 blocks per vcvtph2ps (the fp16 words are packed in
// general-purpose registers, keeping the SIMD ports for the main loop).
template <class K>
inline void scales(const uint8_t* p, float c, int64_t nb, float* sc) {
  const __m256 vc = _mm256_set1_ps(c);
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    uint64_t w[2] = {0, 0};
    for (int l = 0; l < 8; ++l) w[l >> 2] |= static_cast<uint64_t>(load_u16(p + (b + l) * K::BB)) << (16 * (l & 3));
    const __m128i h = _mm_set_epi64x(static_cast<long long>(w[1]), static_cast<long long>(w[0]));
    _mm256_storeu_ps(sc + b, _mm256_mul_ps(_mm256_cvtph_ps(h), vc));
  }
  for (; b < nb; ++b) sc[b] = c * _cvtsh_ss(load_u16(p + b * K::BB));
}

// R rows (at rows[r] + b0 blocks) over blocks [b0, b0 + nb) of y (nb <= kTileBlocks); pf[0..R) are
// prefetched over the same span of bytes (prefetches never fault, so any pointer will do).
template <class K, int R>
inline void group(const uint8_t* const* rows, const float* coef, int64_t b0, int64_t nb, float* y,
                  const uint8_t* const* pf) {
  const uint8_t* p[R];
  const uint8_t* q[R];
  __m256 vc[R];
  alignas(32) float sc[K::kQuant ? R : 1][K::kQuant ? kTileBlocks : 1];
  alignas(32) float bias[K::kBias ? kTileBlocks : 1];
  for (int r = 0; r < R; ++r) {
    p[r] = rows[r] + b0 * K::BB;
    q[r] = pf[r];
    vc[r] = _mm256_set1_ps(coef[r]);
    if (K::kQuant) scales<K>(p[r], coef[r], nb, sc[r]);
  }
  if (K::kBias) {
    // bias[b] = -8 * sum_r sc[r][b], rows added in order
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
      __m256 t = _mm256_loadu_ps(sc[0] + b);
      for (int r = 1; r < R; ++r) t = _mm256_add_ps(t, _mm256_loadu_ps(sc[r] + b));
      _mm256_storeu_ps(bias + b, _mm256_mul_ps(t, _mm256_set1_ps(-8.0f)));
    }
    for (; b < nb; ++b) {
      float t = sc[0][b];
      for (int r = 1; r < R; ++r) t += sc[r][b];
      bias[b] = -8.0f * t;
    }
  }
  const float* s0 = &sc[0][0];
  constexpr int64_t ss = K::kQuant ? kTileBlocks : 0;  // stride between rows of sc
  // Two blocks per step: 8 independent FMA chains (4 would leave the FMA units waiting on latency).
  float* yb = y + b0 * 32;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, yb += 64) {
    __m256 a[8];
    for (int t = 0; t < 8; ++t) a[t] = _mm256_loadu_ps(yb + 8 * t);
    if (K::kBias) {
      const __m256 v0 = _mm256_broadcast_ss(bias + b), v1 = _mm256_broadcast_ss(bias + b + 1);
      for (int t = 0; t < 4; ++t) a[t] = _mm256_add_ps(a[t], v0), a[t + 4] = _mm256_add_ps(a[t + 4], v1);
    }
    for (int r = 0; r < R; ++r) {
      K::acc(p[r] + b * K::BB, s0 + r * ss + b, vc[r], a);
      K::acc(p[r] + (b + 1) * K::BB, s0 + r * ss + b + 1, vc[r], a + 4);
    }
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(q[r] + b * K::BB), _MM_HINT_T0);
      if (K::BB > 32) _mm_prefetch(reinterpret_cast<const char*>(q[r] + b * K::BB + 64), _MM_HINT_T0);
      if (K::BB > 64) {
        _mm_prefetch(reinterpret_cast<const char*>(q[r] + b * K::BB + 128), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(q[r] + b * K::BB + 192), _MM_HINT_T0);
      }
    }
    for (int t = 0; t < 8; ++t) _mm256_storeu_ps(yb + 8 * t, a[t]);
  }
  if (b < nb) {
    __m256 a[4];
    for (int t = 0; t < 4; ++t) a[t] = _mm256_loadu_ps(yb + 8 * t);
    if (K::kBias) {
      const __m256 v0 = _mm256_broadcast_ss(bias + b);
      for (int t = 0; t < 4; ++t) a[t] = _mm256_add_ps(a[t], v0);
    }
    for (int r = 0; r < R; ++r) K::acc(p[r] + b * K::BB, s0 + r * ss + b, vc[r], a);
    for (int t = 0; t < 4; ++t) _mm256_storeu_ps(yb + 8 * t, a[t]);
  }
}

template <class K>
void gather(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_tiles<32, kTileBlocks, 1>(rows, k, m, K::BB, [&](auto R, int64_t j, int64_t t0, int64_t nb, const uint8_t* const* pf) {
    group<K, decltype(R)::value>(rows + j, coef + j, t0, nb, y, pf);
  });
}

// ---- k-quant rows: super-blocks of 256 outputs ---------------------------------------------------
// Same scheme over tiles of kTileSuper super-blocks: per group of rows, the sub-block scales (times the
// row's coefficient) of the whole tile are unpacked first; then for each super-block every row's 256
// values are decoded to int8 into a small buffer (byte arithmetic, 32 values per instruction) and the
// super-block is walked 64 outputs (8 accumulators) at a time, each 8 values widened straight from the
// buffer (vpmovsxbd m64), converted and FMA'd, as q8_0. Widening from a register instead costs a
// shuffle (port 5) per 8 values plus the shuffles that bring each 8 bytes down; the stores and
// reloads use the load/store ports, which this loop leaves idle. q4_k's and q5_k's mins go into a
// per-sub-block bias that is subtracted once per group of rows (as q4_0's -8); q6_k's -32 is
// subtracted in bytes.
constexpr int64_t kTileSuper = 8;  // 2048 outputs, as kTileBlocks

// 64 decoded values v[0..64) with their scales (one per 256 / NS outputs from sc) added to a[0..8).
template <int NS>
inline void acc64(const int8_t* v, const float* sc, __m256* a) {
  for (int t = 0; t < 8; ++t) {
    const __m256 s = _mm256_broadcast_ss(sc + t * NS / 32);  // a scale per 32 (NS = 8) or 16 (NS = 16) outputs
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v + 8 * t)));
    a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), s, a[t]);
  }
}

// q4_k / q5_k: sc[0..8) = c d sc_j, mn[0..8) += c dmin m_j, from the 16 bytes d, dmin, scales[12]
// (k4_scale_min's unpacking in bytes: two shuffles put each output byte's source bytes in place).
inline void k4_scales(const uint8_t* blk, float c, float* sc, float* mn) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));  // s_i is byte 4 + i
  // a: sc_j = s_j (j < 4), s_{j+4} (j >= 4); m_j = s_{j+4} (both). b: the top two bits of s_{j-4} / s_j.
  const __m128i a = _mm_shuffle_epi8(x, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m128i b = _mm_shuffle_epi8(x, _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
  const __m128i m63 = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
  const __m128i mhi = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
  const __m128i m30 = _mm_setr_epi8(0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30);
  // 16-bit shifts: the bits that cross into a byte from its neighbour are masked off
  const __m128i v = _mm_or_si128(_mm_or_si128(_mm_and_si128(a, m63), _mm_and_si128(_mm_srli_epi16(a, 4), mhi)),
                                 _mm_and_si128(_mm_srli_epi16(b, 2), m30));
  const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(x), _mm_set1_ps(c));  // c d, c dmin (lanes 2, 3 unused)
  const __m256 vs = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
  const __m256 vm = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
  _mm256_storeu_ps(sc, _mm256_mul_ps(vs, _mm256_broadcastss_ps(dd)));
  _mm256_storeu_ps(mn, _mm256_fmadd_ps(vm, _mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_loadu_ps(mn)));
}

// q4_k is not decoded: as q4_0, each 8 bytes zero-extended straight from the row (vpmovzxbd m64) give 8
// low and 8 high nibbles (one widening per 16 values already).
struct KQ4K {
  static constexpr int64_t BB = 144;
  static constexpr int NS = 8;  // scales per super-block
  static constexpr bool kBias = true, kDecoded = false;
  static inline void scales(const uint8_t* blk, float c, float* sc, float* mn) { k4_scales(blk, c, sc, mn); }
  static inline void decode(const uint8_t*, int8_t*) {}
  // Sub-blocks 2s and 2s + 1: the low and high nibbles of qs[32s .. 32s + 31].
  static inline void acc(const uint8_t* blk, const int8_t*, int s, const float* sc, __m256* a) {
    const uint8_t* q = blk + 4 + K_SCALE_SIZE + 32 * s;
    const __m256 s0 = _mm256_broadcast_ss(sc + 2 * s), s1 = _mm256_broadcast_ss(sc + 2 * s + 1);
    const __m256i lo = _mm256_set1_epi32(0x0f);
    for (int t = 0; t < 4; ++t) {
      const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * t)));
      a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, lo)), s0, a[t]);
      a[t + 4] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), s1, a[t + 4]);
    }
  }
};

// q5_k: q4_k's scales and mins; the fifth bit of sub-block j (bit j of qh[l]) is moved to bit 4 of the
// byte (16-bit shifts of qh: no bit reaches bit 4 from the neighbouring byte).
struct KQ5K {
  static constexpr int64_t BB = 176;
  static constexpr int NS = 8;
  static constexpr bool kBias = true, kDecoded = true;
  // sc[0..8) = c d sc_j; mn[0..8) += c dmin m_j.
  static inline void scales(const uint8_t* blk, float c, float* sc, float* mn) { k4_scales(blk, c, sc, mn); }
  static inline void acc(const uint8_t*, const int8_t* v, int s, const float* sc, __m256* a) {
    acc64<NS>(v + 64 * s, sc + 2 * s, a);
  }
  static inline void decode(const uint8_t* blk, int8_t* v) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 4 + K_SCALE_SIZE));
    for (int s = 0; s < 4; ++s, qh = _mm256_srli_epi16(qh, 2)) {  // bits 2s, 2s + 1 of qh now at 0, 1
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 4 + K_SCALE_SIZE + 32 + 32 * s));
      const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(qh, 4), b4), h1 = _mm256_and_si256(_mm256_slli_epi16(qh, 3), b4);
      _mm256_store_si256(reinterpret_cast<__m256i*>(v + 64 * s), _mm256_or_si256(_mm256_and_si256(q, m4), h0));
      _mm256_store_si256(reinterpret_cast<__m256i*>(v + 64 * s + 32),
                         _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1));
    }
  }
};

struct KQ6K {
  static constexpr int64_t BB = 210;
  static constexpr int NS = 16;
  static constexpr bool kBias = false, kDecoded = true;
  static inline void scales(const uint8_t* blk, float c, float* sc, float*) {
    const __m256 d = _mm256_set1_ps(c * _cvtsh_ss(load_u16(blk + 208)));
    for (int h = 0; h < 2; ++h) {
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 192 + 8 * h));
      _mm256_storeu_ps(sc + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d));
    }
  }
  // Half n of the super-block (outputs 128n ..) from ql[64n .. 64n + 64) and qh[32n .. 32n + 32):
  // quarter g holds the low (g even) or high nibbles of ql[64n + 32 (g & 1) ..] and bits 2g, 2g + 1 of
  // qh (scalar twin). 16-bit shifts of masked bytes: no bit crosses into the neighbouring byte.
  static inline void acc(const uint8_t*, const int8_t* v, int s, const float* sc, __m256* a) {
    acc64<NS>(v + 64 * s, sc + 4 * s, a);
  }
  static inline void decode(const uint8_t* blk, int8_t* v) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30), off = _mm256_set1_epi8(32);
    for (int n = 0; n < 2; ++n) {
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * n));
      const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * n + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * n));
      const __m256i v0 = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
      const __m256i v1 = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
      const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(qh, m2));
      const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
      int8_t* o = v + 128 * n;
      _mm256_store_si256(reinterpret_cast<__m256i*>(o), _mm256_sub_epi8(v0, off));
      _mm256_store_si256(reinterpret_cast<__m256i*>(o + 32), _mm256_sub_epi8(v1, off));
      _mm256_store_si256(reinterpret_cast<__m256i*>(o + 64), _mm256_sub_epi8(v2, off));
      _mm256_store_si256(reinterpret_cast<__m256i*>(o + 96), _mm256_sub_epi8(v3, off));
    }
  }
};

// R rows over super-blocks [s0, s0 + ns) of y (ns <= kTileSuper); pf as in group<>.
template <class K, int R>
inline void group_k(const uint8_t* const* rows, const float* coef, int64_t s0, int64_t ns, float* y,
                    const uint8_t* const* pf) {
  const uint8_t* p[R];
  const uint8_t* q[R];
  alignas(32) float sc[R][kTileSuper * K::NS];
  alignas(32) float bias[kTileSuper * 8] = {};  // sum_r c dmin m of each sub-block (q4_k, q5_k)
  constexpr int64_t vs = K::kDecoded ? QK_K : 0;  // decoded bytes per super-block
  alignas(32) int8_t v[R][K::kDecoded ? kTileSuper * QK_K : 1];
  for (int r = 0; r < R; ++r) {
    p[r] = rows[r] + s0 * K::BB;
    q[r] = pf[r];
    for (int64_t b = 0; b < ns; ++b) {
      K::scales(p[r] + b * K::BB, coef[r], sc[r] + b * K::NS, bias + 8 * b);
      if (K::kDecoded) K::decode(p[r] + b * K::BB, v[r] + b * vs);
    }
  }
  float* yb = y + s0 * QK_K;
  for (int64_t b = 0; b < ns; ++b) {
    for (int r = 0; r < R; ++r)
      for (int64_t o = 0; o < K::BB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(q[r] + b * K::BB + o), _MM_HINT_T0);
    for (int s = 0; s < 4; ++s, yb += 64) {
      __m256 a[8];
      for (int t = 0; t < 8; ++t) a[t] = _mm256_loadu_ps(yb + 8 * t);
      if (K::kBias) {
        const __m256 v0 = _mm256_broadcast_ss(bias + 8 * b + 2 * s), v1 = _mm256_broadcast_ss(bias + 8 * b + 2 * s + 1);
        for (int t = 0; t < 4; ++t) a[t] = _mm256_sub_ps(a[t], v0), a[t + 4] = _mm256_sub_ps(a[t + 4], v1);
      }
      for (int r = 0; r < R; ++r) K::acc(p[r] + b * K::BB, v[r] + b * vs, s, sc[r] + b * K::NS, a);
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(yb + 8 * t, a[t]);
    }
  }
}

template <class K>
void gather_k(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  // Prefetch two groups ahead: a group's rows are all read at its start, to decode them (one group
  // ahead measured 5-15% slower from DRAM).
  gather_tiles<QK_K, kTileSuper, 2>(rows, k, m, K::BB, [&](auto R, int64_t j, int64_t s0, int64_t ns, const uint8_t* const* pf) {
    group_k<K, decltype(R)::value>(rows + j, coef + j, s0, ns, y, pf);
  });
}

// Compress LUT: for an 8-bit lane mask, the indices of the set lanes packed as 4-bit nibbles. Built at
// compile time: this file is compiled with -mavx2, so it must not run code at load (static init) on
// CPUs without AVX2.
struct CompressLut {
  uint32_t v[256];
  constexpr CompressLut() : v() {
    for (int mask = 0; mask < 256; ++mask) {
      uint32_t packed = 0;
      int c = 0;
      for (int l = 0; l < 8; ++l)
        if (mask & (1 << l)) packed |= static_cast<uint32_t>(l) << (4 * c++);
      v[mask] = packed;
    }
  }
};
constexpr CompressLut g_lut{};

// Histogram of the digit 1 of 8 scores into four interleaved sub-histograms (breaks the store-to-load
// chains when neighbouring scores fall into the same bucket).
inline void hist8(__m256i u, uint32_t (*h)[1024]) {
  alignas(32) uint32_t d[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(d), _mm256_srli_epi32(u, 21));
  ++h[0][d[0]];
  ++h[1][d[1]];
  ++h[2][d[2]];
  ++h[3][d[3]];
  ++h[0][d[4]];
  ++h[1][d[5]];
  ++h[2][d[6]];
  ++h[3][d[7]];
}

void merge_hist(uint32_t (*h)[1024], uint32_t* hist) {
  for (int b = 0; b < 1024; b += 8) {
    __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hist + b));
    for (int c = 0; c < 4; ++c)
      s = _mm256_add_epi32(s, _mm256_load_si256(reinterpret_cast<const __m256i*>(h[c] + b)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(hist + b), s);
  }
}

}  // namespace

void gather_f32__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KF32>(rows, coef, k, m, y);
}
void gather_f16__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KF16>(rows, coef, k, m, y);
}
void gather_q8_0__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KQ8>(rows, coef, k, m, y);
}
void gather_q4_0__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather<KQ4>(rows, coef, k, m, y);
}

void gather_q4_k__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_k<KQ4K>(rows, coef, k, m, y);
}
void gather_q5_k__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_k<KQ5K>(rows, coef, k, m, y);
}
void gather_q6_k__avx2(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y) {
  gather_k<KQ6K>(rows, coef, k, m, y);
}

void abs_hist__avx2(const float* a, int64_t n, uint32_t* s, uint32_t* hist) {
  const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  int64_t i = 0;
  if (!hist) {
    for (; i + 8 <= n; i += 8) {
      __m256i u = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)), absmask);
      u = _mm256_andnot_si256(_mm256_cmpgt_epi32(u, inf), u);  // NaN -> 0
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + i), u);
    }
  } else {
    alignas(32) uint32_t h[4][1024];
    std::memset(h, 0, sizeof h);
    for (; i + 8 <= n; i += 8) {
      __m256i u = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)), absmask);
      u = _mm256_andnot_si256(_mm256_cmpgt_epi32(u, inf), u);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + i), u);
      hist8(u, h);
    }
    merge_hist(h, hist);
  }
  for (; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, a + i, 4);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) u = 0;
    s[i] = u;
    if (hist) ++hist[u >> 21];
  }
}

void weight_hist__scalar(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, bool alpha_blend,
                         uint32_t pthr, int64_t peq, uint32_t* hist);

void weight_hist__avx2(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, bool alpha_blend,
                       uint32_t pthr, int64_t peq, uint32_t* hist) {
  alignas(32) uint32_t h[4][1024];
  if (hist) std::memset(h, 0, sizeof h);
  const __m256 g = _mm256_set1_ps(gamma), blend = _mm256_set1_ps(1.0f - gamma);
  const __m256i vp = _mm256_set1_epi32(static_cast<int32_t>(pthr)), zero = _mm256_setzero_si256();
  const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    if (peq > 0 && _mm256_movemask_epi8(_mm256_cmpeq_epi32(raw, vp)) != 0) {
      // protected ties in this vector: the scalar twin keeps the count in index order
      alignas(32) uint32_t rl[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(rl), raw);
      weight_hist__scalar(s + i, 8, cached + i, gamma, alpha_blend, pthr, peq, hist);
      for (int l = 0; l < 8; ++l) peq -= (rl[l] == pthr && peq > 0) ? 1 : 0;
      continue;
    }
    const __m256i prot = _mm256_cmpgt_epi32(raw, vp);
    const __m256 r = _mm256_castsi256_ps(raw);
    const __m256i c8 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cached + i)));
    const __m256 uncached = _mm256_castsi256_ps(_mm256_cmpeq_epi32(c8, zero));
    const __m256 gr = _mm256_mul_ps(g, r);
    const __m256 cv = alpha_blend ? _mm256_fmadd_ps(g, r, blend) : r;
    __m256i w = _mm256_castps_si256(_mm256_blendv_ps(cv, gr, uncached));
    w = _mm256_blendv_epi8(w, raw, prot);
    w = _mm256_and_si256(w, absmask);
    w = _mm256_andnot_si256(_mm256_cmpgt_epi32(w, inf), w);  // NaN -> 0
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + i), w);
    if (hist) hist8(w, h);
  }
  if (hist) merge_hist(h, hist);
  if (i < n) weight_hist__scalar(s + i, n - i, cached + i, gamma, alpha_blend, pthr, peq, hist);
}

int64_t emit__avx2(const uint32_t* s, int64_t n, uint32_t thr, int64_t eq, int32_t* out, int64_t cap) {
  const __m256i vt = _mm256_set1_epi32(static_cast<int32_t>(thr));
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), nib = _mm256_set1_epi32(0xf);
  const __m256i eight = _mm256_set1_epi32(8);
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int64_t c = 0, i = 0;
  for (; i + 8 <= n; i += 8, idx = _mm256_add_epi32(idx, eight)) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    int mask = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v, vt)));
    if (eq > 0) {
      const int em = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, vt)));
      for (int l = 0; l < 8 && eq > 0; ++l)
        if (em & (1 << l)) {
          mask |= 1 << l;
          --eq;
        }
    }
    if (mask == 0) continue;
    const int cnt = __builtin_popcount(static_cast<unsigned>(mask));
    if (c + 8 <= cap) {
      const __m256i perm =
          _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(g_lut.v[mask])), shifts), nib);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm256_permutevar8x32_epi32(idx, perm));
      c += cnt;
    } else {
      for (int l = 0; l < 8 && c < cap; ++l)
        if (mask & (1 << l)) out[c++] = static_cast<int32_t>(i + l);
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

int64_t collect__avx2(const uint32_t* s, int64_t n, int shift, uint32_t prefix, uint32_t* cand) {
  const __m128i sh = _mm_cvtsi32_si128(shift);
  const __m256i vp = _mm256_set1_epi32(static_cast<int32_t>(prefix));
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), nib = _mm256_set1_epi32(0xf);
  int64_t c = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    const int mask = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_srl_epi32(v, sh), vp)));
    if (mask == 0) continue;
    // c <= i here, so the 8-word store ends at or before cand + i + 8 <= cand + n (and in-place use
    // only overwrites values already read)
    const __m256i perm =
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(g_lut.v[mask])), shifts), nib);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(cand + c), _mm256_permutevar8x32_epi32(v, perm));
    c += __builtin_popcount(static_cast<unsigned>(mask));
  }
  for (; i < n; ++i)
    if ((s[i] >> shift) == prefix) cand[c++] = s[i];
  return c;
}

int64_t collect_range__avx2(const uint32_t* s, int64_t n, uint32_t lo, uint32_t hi, uint32_t* cand,
                            int64_t* above) {
  // values and bounds are <= 0x7fffffff: signed compares are exact
  const __m256i vlo = _mm256_set1_epi32(static_cast<int32_t>(lo)), vhi = _mm256_set1_epi32(static_cast<int32_t>(hi));
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), nib = _mm256_set1_epi32(0xf);
  int64_t c = 0, i = 0, a = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    const int gt = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v, vhi)));
    const int below = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(vlo, v)));
    a += __builtin_popcount(static_cast<unsigned>(gt));
    const int mask = ~(gt | below) & 0xff;
    if (mask == 0) continue;
    const __m256i perm =
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(g_lut.v[mask])), shifts), nib);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(cand + c), _mm256_permutevar8x32_epi32(v, perm));
    c += __builtin_popcount(static_cast<unsigned>(mask));
  }
  for (; i < n; ++i) {
    a += s[i] > hi;
    if (s[i] >= lo && s[i] <= hi) cand[c++] = s[i];
  }
  *above = a;
  return c;
}

}  // namespace sparse_impl
}  // namespace fd
