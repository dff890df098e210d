// AVX2 + FMA + F16C GEMV/GEMM kernels (Haswell / Zen 1 and later). Compiled with -mavx2 -mfma -mf16c
// only; dispatch calls them only when cpuid says so.
//
// Integer types: weights and q8 activations are multiplied with maddubs (u8 x s8 -> s16 pairs) and
// widened with madd (s16 x s16 -> s32). All integer sums are exact: for q8_0 weights the sign is
// moved onto the activation (|w| * sign(a, w)); |w| <= 128 and |a| <= 127 keep each pair sum
// <= 32512 < 32767. q4_0 nibbles are used unsigned with a bias correction (see KQ80 and KQ4_0). q4_k nibbles (<= 15) and q6_k 6-bit codes (<= 63) are already unsigned and
// q8_k activations are in [-127, 127], so pairs stay below 2 * 63 * 127 = 16002. Per block the exact
// int32 sums are scaled and accumulated in float (FMA), so only the float summation order differs
// from the scalar twin. All loads are unaligned (blocks are 18/34/144/210 bytes apart).
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "kernels/gemm_tiles.h"
#include "kernels/kernels_internal.h"

namespace fd {
namespace {

inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_epi32(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(v);
}

inline float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i loadu256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i loadu128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 32 nibbles of q4_0 qs[16] in element order (low nibbles are elements 0..15), as unsigned 0..15.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i b = loadu128(qs);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// ---- q8_0 / q4_0 weights x q8_0 activations -----------------------------------------------------

// q8_0: signed weights, sign moved onto the activation (see the top of the file).
// q4_0: unsigned nibbles u in 0..15 straight into maddubs (pairs <= 2 * 15 * 127), minus
// 8 * (a[2k] + a[2k+1]) computed once per token and block (maddubs(8, a)): (u - 8) . a exactly.
// Gathers the fp16 scale at byte offset `off` of up to 4 blocks into the lanes of a float vector
// (integer loads and shifts, one vcvtph2ps: keeps the scale work off the vector ALUs).
template <int N>
inline __m128 gather_fp16(const uint8_t* const* p, size_t off) {
  static_assert(N >= 1 && N <= 4, "at most 4 lanes");
  uint64_t bits = 0;
  for (int k = 0; k < N; ++k) {
    uint16_t h;
    std::memcpy(&h, p[k] + off, 2);
    bits |= static_cast<uint64_t>(h) << (16 * k);
  }
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(bits)));
}

// q8_0 decode runs one row at a time with two accumulator chains (even and odd blocks): measured on
// Zen 3 with matrices larger than L3, 4-row tiles were slower (more concurrent streams), and a single
// FMA chain caps it at 34 bytes per FMA latency. q4_0 uses this struct only for odd row counts (the
// row remainder); its tiles are KQ4_0 below. Blocks go in groups of 4 so the fp16 scales of 4
// blocks are converted by one vcvtph2ps per row and token. Rows are prefetched kPrefetch bytes ahead.
template <bool kQ4>
struct KQ80 {
  static constexpr int kDecodeRows = 1;
  static constexpr int kPromptRows = 2;
  static constexpr size_t kBlock = kQ4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
  static constexpr size_t kPrefetch = 1024;

  // Adds block i's contribution; scale(t, r) points at d_w[r] * d_x[t] for this block.
  template <int R, int T, class Scale>
  static inline void block(const uint8_t* const* wr, const uint8_t* const* xt, int64_t i, Scale scale,
                           __m256 (&acc)[R][T]) {
    const __m256i ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8), m4 = _mm256_set1_epi8(0x0f);
    const __m256i shift_hi = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    __m256i w[R], wabs[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = wr[r] + static_cast<size_t>(i) * kBlock;
      _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetch), _MM_HINT_T0);
      if (kQ4) {  // low nibbles -> elements 0..15 (lane 0), high nibbles -> 16..31 (lane 1)
        const __m256i b = _mm256_broadcastsi128_si256(loadu128(wb + 2));
        w[r] = _mm256_and_si256(_mm256_srlv_epi32(b, shift_hi), m4);
      } else {
        w[r] = loadu256(wb + 2);
        wabs[r] = _mm256_sign_epi8(w[r], w[r]);
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m256i a = loadu256(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_0) + 2);
      const __m256i bias = kQ4 ? _mm256_maddubs_epi16(eights, a) : _mm256_setzero_si256();
      for (int r = 0; r < R; ++r) {
        __m256i p16;
        if (kQ4)
          p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(w[r], a), bias);
        else
          p16 = _mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(a, w[r]));
        const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[r][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(scale(t, r)), s, acc[r][t]);
      }
    }
  }

  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc0[R][T], acc1[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc0[r][t] = acc1[r][t] = _mm256_setzero_ps();
    const uint8_t* wr[R];
    const uint8_t* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
    const int64_t nb = g.n / QK8_0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
      // sc[t][r][k] = d_w[r] of block i+k times d_x[t] of block i+k
      alignas(16) float sc[T][R][4];
      __m128 dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* p[4];
        for (int k = 0; k < 4; ++k) p[k] = wr[r] + static_cast<size_t>(i + k) * kBlock;
        dw[r] = gather_fp16<4>(p, 0);
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* p[4];
        for (int k = 0; k < 4; ++k) p[k] = xt[t] + static_cast<size_t>(i + k) * sizeof(block_q8_0);
        const __m128 dx = gather_fp16<4>(p, 0);
        for (int r = 0; r < R; ++r) _mm_store_ps(sc[t][r], _mm_mul_ps(dw[r], dx));
      }
      for (int k = 0; k < 4; ++k)
        block<R, T>(wr, xt, i + k, [&](int t, int r) { return &sc[t][r][k]; }, (k & 1) && R * T < 4 ? acc1 : acc0);
    }
    for (; i < nb; ++i) {
      float sc[T][R];
      for (int t = 0; t < T; ++t)
        for (int r = 0; r < R; ++r)
          sc[t][r] = fp16_at(wr[r] + static_cast<size_t>(i) * kBlock) *
                     fp16_at(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_0));
      block<R, T>(wr, xt, i, [&](int t, int r) { return &sc[t][r]; }, acc0);
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r][t] = hsum(_mm256_add_ps(acc0[r][t], acc1[r][t]));
  }
};

// q4_0 with rows in pairs: row 2p's 16 packed bytes of a block in the low 128-bit lane, row 2p+1's in
// the high lane (one load + one insert). One AND gives the low nibbles (elements 0..15) of both rows,
// a shift + AND the high nibbles (16..31); each is multiplied against that half of the activation
// block broadcast to both lanes, so there is no per-row cross-lane unpack, the activation loads and
// the bias 8 * (a[2k] + a[2k+1] + a[16+2k] + a[17+2k]) are shared by all rows of the tile, and one
// madd/cvt/FMA serves two rows. Integer sums stay exact: per int16 lane |lo + hi| <= 4 * 15 * 127 and
// the biased result is (u - 8) . a over 4 elements, |.| <= 4 * 8 * 127.
// Scales: d of 4 blocks of both rows converted by one vcvtph2ps into [d_2p(i..i+3) | d_2p+1(i..i+3)],
// times d_x; block i+k takes in-lane element k (vpermilps) so each lane half carries its row's scale.
// Accumulators: lanes 0..3 row 2p, 4..7 row 2p+1; with fewer than 4 pair x token chains even and odd
// blocks go to separate chains (FMA latency). The bias depends on the activations only: prepare()
// computes it once per call for every token and block (32 bytes each), so a tile loads it instead of
// recomputing it for every row pair (measured on a 1B q4_0: decode 1.02x; prefill against llama.cpp
// went from 0.82-0.85x to 0.89-0.96x, its tiles having one row pair per 4 tokens).
// Prefetch: per 4 blocks (72 bytes) per row, the next tile's rows at the same offset (R row strides
// ahead), at the group's first and last byte: with one prefetch per 72 bytes every ninth 64-byte line
// went unrequested (both ends: 1.08x on a 1B q4_0 decode, 0.97-1.15 over 7 runs). A fixed distance
// inside the row (as KQ80) mostly lands in rows this tile already streams; measured from DRAM
// (2048 x 65536 matrix, Zen 3, busy machine) next-tile was ~10% faster than 1024 bytes ahead, and
// 4-row tiles ran 16-20 GB/s in cache against 12-13 GB/s for KQ80's one row; two tiles ahead was not
// faster (0.93x).
struct KQ4_0 : KQ80<true> {
  static constexpr int kDecodeRows = 4;
  static constexpr int kPromptRows = 2;

  // The bias table: [(t * nb + i) * 16 + k] = 8 * (a[2k] + a[2k+1] + a[16+2k] + a[17+2k]) (k over both
  // 128-bit halves, as the tile's int16 lanes) for token t's block i.
  static const void* prepare(const GemmArgs& g, int64_t ntok) {
    static thread_local std::vector<int16_t> table;
    const int64_t nb = g.n / QK4_0;
    if (table.size() < static_cast<size_t>(ntok * nb * 16)) table.resize(static_cast<size_t>(ntok * nb * 16));
    const __m256i eights = _mm256_set1_epi8(8);
    for (int64_t t = 0; t < ntok; ++t)
      for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* x = g.tok(t) + static_cast<size_t>(i) * sizeof(block_q8_0) + 2;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(table.data() + (t * nb + i) * 16),
                            _mm256_add_epi16(_mm256_maddubs_epi16(eights, _mm256_broadcastsi128_si256(loadu128(x))),
                                             _mm256_maddubs_epi16(eights, _mm256_broadcastsi128_si256(loadu128(x + 16)))));
      }
    return table.data();
  }

  template <int P, int T, int K>
  static inline void block(const uint8_t* const* wr, const uint8_t* const* xt, const int16_t* const* bt, int64_t i,
                           const __m256 (&sc)[T][P], __m256 (&acc)[P][T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256i lo[P], hi[P];
    for (int p = 0; p < P; ++p) {
      const size_t off = static_cast<size_t>(i) * sizeof(block_q4_0) + 2;
      const __m256i raw = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(wr[2 * p] + off)),
                                                  loadu128(wr[2 * p + 1] + off), 1);
      lo[p] = _mm256_and_si256(raw, m4);
      hi[p] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    }
    for (int t = 0; t < T; ++t) {
      const uint8_t* x = xt[t] + static_cast<size_t>(i) * sizeof(block_q8_0) + 2;
      const __m256i a_lo = _mm256_broadcastsi128_si256(loadu128(x));
      const __m256i a_hi = _mm256_broadcastsi128_si256(loadu128(x + 16));
      const __m256i bias = loadu256(bt[t] + i * 16);
      for (int p = 0; p < P; ++p) {
        const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[p], a_lo), _mm256_maddubs_epi16(hi[p], a_hi));
        const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_sub_epi16(p16, bias), ones));
        acc[p][t] = _mm256_fmadd_ps(_mm256_permute_ps(sc[t][p], K * 0x55), s, acc[p][t]);
      }
    }
  }

  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    if constexpr (R % 2 != 0) {
      KQ80<true>::tile<R, T>(g, r0, t0, out);
    } else {
      constexpr int P = R / 2;
      constexpr bool kSplit = P * T < 4;
      __m256 acc0[P][T], acc1[P][T];
      for (int p = 0; p < P; ++p)
        for (int t = 0; t < T; ++t) acc0[p][t] = acc1[p][t] = _mm256_setzero_ps();
      const uint8_t* wr[R];
      const uint8_t* xt[T];
      for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
      for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
      const int64_t nb = g.n / QK4_0;
      const int16_t* bt[T];
      for (int t = 0; t < T; ++t) bt[t] = static_cast<const int16_t*>(g.aux) + (t0 + t) * nb * 16;
      const size_t ahead = static_cast<size_t>(R) * g.row_stride;  // the next tile's rows (prefetch never faults)
      int64_t i = 0;
      for (; i + 4 <= nb; i += 4) {
        __m256 sc[T][P];
        __m256 dw[P];
        for (int p = 0; p < P; ++p) {
          const uint8_t* a[4];
          const uint8_t* b[4];
          for (int k = 0; k < 4; ++k) {
            a[k] = wr[2 * p] + static_cast<size_t>(i + k) * sizeof(block_q4_0);
            b[k] = wr[2 * p + 1] + static_cast<size_t>(i + k) * sizeof(block_q4_0);
          }
          _mm_prefetch(reinterpret_cast<const char*>(a[0] + ahead), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(b[0] + ahead), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(a[3] + ahead + sizeof(block_q4_0) - 1), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(b[3] + ahead + sizeof(block_q4_0) - 1), _MM_HINT_T0);
          dw[p] = _mm256_set_m128(gather_fp16<4>(b, 0), gather_fp16<4>(a, 0));
        }
        for (int t = 0; t < T; ++t) {
          const uint8_t* x[4];
          for (int k = 0; k < 4; ++k) x[k] = xt[t] + static_cast<size_t>(i + k) * sizeof(block_q8_0);
          const __m128 dx = gather_fp16<4>(x, 0);
          const __m256 dx2 = _mm256_set_m128(dx, dx);
          for (int p = 0; p < P; ++p) sc[t][p] = _mm256_mul_ps(dw[p], dx2);
        }
        block<P, T, 0>(wr, xt, bt, i, sc, acc0);
        block<P, T, 1>(wr, xt, bt, i + 1, sc, kSplit ? acc1 : acc0);
        block<P, T, 2>(wr, xt, bt, i + 2, sc, acc0);
        block<P, T, 3>(wr, xt, bt, i + 3, sc, kSplit ? acc1 : acc0);
      }
      for (; i < nb; ++i) {
        __m256 sc[T][P];
        for (int t = 0; t < T; ++t) {
          const float dx = fp16_at(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_0));
          for (int p = 0; p < P; ++p)
            sc[t][p] = _mm256_set_m128(_mm_set1_ps(fp16_at(wr[2 * p + 1] + static_cast<size_t>(i) * sizeof(block_q4_0)) * dx),
                                       _mm_set1_ps(fp16_at(wr[2 * p] + static_cast<size_t>(i) * sizeof(block_q4_0)) * dx));
        }
        block<P, T, 0>(wr, xt, bt, i, sc, acc0);
      }
      for (int p = 0; p < P; ++p)
        for (int t = 0; t < T; ++t) {
          const __m256 s = _mm256_add_ps(acc0[p][t], acc1[p][t]);
          out[2 * p][t] = hsum128(_mm256_castps256_ps128(s));
          out[2 * p + 1][t] = hsum128(_mm256_extractf128_ps(s, 1));
        }
    }
  }
};

// ---- q4_1 / q5_0 / q5_1 weights x q8_1 / q8_0 activations ----------------------------------------

// Byte j of the result is 0xff where bit j of the little-endian 32 bits at p is set (ggml's
// bytes_from_bits_32): byte j / 8 of the word broadcast to byte j, then all other bits forced on.
inline __m256i bytes_from_bits_32(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0x0000000000000000));
  return _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
}

// The unsigned codes of one 32-element block in element order, the fp16 scale's and (affine types)
// the fp16 min's byte offsets, the activation block type, and the code offset subtracted (q5_0: 16).
struct Q41 {
  using Act = block_q8_1;
  static constexpr size_t kBlock = sizeof(block_q4_1), kD = 0, kM = 2;
  static constexpr bool kAffine = true;
  static constexpr int kOffset = 0;
  static __m256i codes(const uint8_t* b) { return unpack_nibbles(b + offsetof(block_q4_1, qs)); }
};
struct Q50 {
  using Act = block_q8_0;
  static constexpr size_t kBlock = sizeof(block_q5_0), kD = 0, kM = 0;
  static constexpr bool kAffine = false;
  static constexpr int kOffset = 16;
  static __m256i codes(const uint8_t* b) {
    const __m256i hi = _mm256_and_si256(bytes_from_bits_32(b + offsetof(block_q5_0, qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(unpack_nibbles(b + offsetof(block_q5_0, qs)), hi);
  }
};
struct Q51 {
  using Act = block_q8_1;
  static constexpr size_t kBlock = sizeof(block_q5_1), kD = 0, kM = 2;
  static constexpr bool kAffine = true;
  static constexpr int kOffset = 0;
  static __m256i codes(const uint8_t* b) {
    const __m256i hi = _mm256_and_si256(bytes_from_bits_32(b + offsetof(block_q5_1, qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(unpack_nibbles(b + offsetof(block_q5_1, qs)), hi);
  }
};

// Per block and (row, token): u . a with the unsigned codes u straight into maddubs (pairs <= 2 * 31 *
// 127), minus kOffset * sum(a) (maddubs of the constant, once per token and block), scaled by d * dx;
// the affine types add m * s (s = dx * sum(a) from the q8_1 block). Blocks go in groups of 4 so the
// fp16 scales (and mins, and the activations' d and s) of 4 blocks are converted by one vcvtph2ps, as
// KQ80; the m * s terms accumulate 4 blocks wide.
template <class Q>
struct KQ32 {
  static constexpr int kDecodeRows = 2;
  static constexpr int kPromptRows = 2;
  static constexpr size_t kPrefetch = 1024;
  static constexpr size_t kAct = sizeof(typename Q::Act);

  // Adds block i's integer sums times sc(t, r) = d_w[r] * d_x[t] of that block.
  template <int R, int T, class Scale>
  static inline void block(const uint8_t* const* wr, const uint8_t* const* xt, int64_t i, Scale sc, __m256 (&acc)[R][T]) {
    const __m256i ones = _mm256_set1_epi16(1), offset = _mm256_set1_epi8(Q::kOffset);
    __m256i u[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* b = wr[r] + static_cast<size_t>(i) * Q::kBlock;
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetch), _MM_HINT_T0);
      u[r] = Q::codes(b);
    }
    for (int t = 0; t < T; ++t) {
      const __m256i a = loadu256(xt[t] + static_cast<size_t>(i) * kAct + offsetof(typename Q::Act, qs));
      const __m256i bias = Q::kOffset ? _mm256_maddubs_epi16(offset, a) : _mm256_setzero_si256();
      for (int r = 0; r < R; ++r) {
        __m256i p16 = _mm256_maddubs_epi16(u[r], a);
        if (Q::kOffset) p16 = _mm256_sub_epi16(p16, bias);
        const __m256 sum = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[r][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(sc(t, r)), sum, acc[r][t]);
      }
    }
  }

  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc[R][T];
    __m128 accm[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps(), accm[r][t] = _mm_setzero_ps();
    const uint8_t* wr[R];
    const uint8_t* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
    const int64_t nb = g.n / 32;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
      alignas(16) float sc[T][R][4];  // d_w[r] * d_x[t] of blocks i .. i+3
      __m128 dw[R], mw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* p[4];
        for (int k = 0; k < 4; ++k) p[k] = wr[r] + static_cast<size_t>(i + k) * Q::kBlock;
        dw[r] = gather_fp16<4>(p, Q::kD);
        if (Q::kAffine) mw[r] = gather_fp16<4>(p, Q::kM);
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* p[4];
        for (int k = 0; k < 4; ++k) p[k] = xt[t] + static_cast<size_t>(i + k) * kAct;
        const __m128 dx = gather_fp16<4>(p, 0);
        const __m128 sx = Q::kAffine ? gather_fp16<4>(p, 2) : _mm_setzero_ps();  // block_q8_1::s
        for (int r = 0; r < R; ++r) {
          _mm_store_ps(sc[t][r], _mm_mul_ps(dw[r], dx));
          if (Q::kAffine) accm[r][t] = _mm_fmadd_ps(mw[r], sx, accm[r][t]);
        }
      }
      for (int k = 0; k < 4; ++k) block<R, T>(wr, xt, i + k, [&](int t, int r) { return &sc[t][r][k]; }, acc);
    }
    for (; i < nb; ++i) {
      float sc[T][R];
      for (int t = 0; t < T; ++t) {
        const uint8_t* xb = xt[t] + static_cast<size_t>(i) * kAct;
        for (int r = 0; r < R; ++r) {
          const uint8_t* b = wr[r] + static_cast<size_t>(i) * Q::kBlock;
          sc[t][r] = fp16_at(b + Q::kD) * fp16_at(xb);
          if (Q::kAffine) accm[r][t] = _mm_add_ss(accm[r][t], _mm_set_ss(fp16_at(b + Q::kM) * fp16_at(xb + 2)));
        }
      }
      block<R, T>(wr, xt, i, [&](int t, int r) { return &sc[t][r]; }, acc);
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r][t] = hsum(acc[r][t]) + hsum128(accm[r][t]);
  }
};

// ---- q4_k weights x q8_k activations ------------------------------------------------------------

// pshufb control that copies int16 lane j (bytes 2j, 2j+1) of each 128-bit half into all 8 lanes of
// that half; lo/hi pick the lane for the low and high half separately.
inline __m256i lane_splat_ctrl(int lo, int hi) {
  return _mm256_setr_epi8(2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1,
                          2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1,
                          2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1,
                          2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1);
}

struct KQ4K {
  static constexpr int kDecodeRows = 1;
  static constexpr size_t kPrefetch = 1024;  // measured: ~+15% from DRAM on Zen 3, 1024..2048 alike
  static constexpr int kPromptRows = 2;
  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc[R][T];
    float accm[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps(), accm[r][t] = 0.0f;
    const uint8_t* wr[R];
    const uint8_t* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const int64_t nb = g.n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
      const uint8_t* wb[R];
      const block_q8_K* xb[T];
      uint8_t sc[R][8], mn[R][8];
      float d[R], dmin[R], dx[T];
      for (int r = 0; r < R; ++r) {
        wb[r] = wr[r] + static_cast<size_t>(i) * sizeof(block_q4_K);
        for (size_t off = 0; off < sizeof(block_q4_K); off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(wb[r] + kPrefetch + off), _MM_HINT_T0);
        d[r] = fp16_at(wb[r] + offsetof(block_q4_K, d));
        dmin[r] = fp16_at(wb[r] + offsetof(block_q4_K, dmin));
        k4_scales_mins(wb[r] + offsetof(block_q4_K, scales), sc[r], mn[r]);
      }
      for (int t = 0; t < T; ++t) {
        xb[t] = reinterpret_cast<const block_q8_K*>(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_K));
        dx[t] = xb[t]->d;
      }
      // Min term: sum_j m_j * (bsums[2j] + bsums[2j+1]); pair sums <= 2 * 16 * 128 fit int16.
      for (int t = 0; t < T; ++t) {
        const __m128i pairs = _mm_hadd_epi16(loadu128(xb[t]->bsums), loadu128(xb[t]->bsums + 8));
        for (int r = 0; r < R; ++r) {
          __m128i m8;
          int64_t mbits;
          std::memcpy(&mbits, mn[r], 8);
          m8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mbits));
          const int32_t summ = hsum_epi32(_mm_madd_epi16(m8, pairs));
          accm[r][t] += dmin[r] * dx[t] * static_cast<float>(summ);
        }
      }
      __m256i sumi[R][T], sc16[R];
      for (int r = 0; r < R; ++r) {
        int64_t bits;
        std::memcpy(&bits, sc[r], 8);  // the 8 sub-block scales as int16 lanes, in both halves
        sc16[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(bits)));
        for (int t = 0; t < T; ++t) sumi[r][t] = _mm256_setzero_si256();
      }
      for (int c = 0; c < 4; ++c) {
        for (int h = 0; h < 2; ++h) {  // h = 0: low nibbles (sub-block 2c), 1: high (2c+1)
          __m256i q[R], s[R];
          const __m256i ctrl = lane_splat_ctrl(2 * c + h, 2 * c + h);
          for (int r = 0; r < R; ++r) {
            const __m256i raw = loadu256(wb[r] + offsetof(block_q4_K, qs) + 32 * c);
            q[r] = _mm256_and_si256(h ? _mm256_srli_epi16(raw, 4) : raw, mask);
            s[r] = _mm256_shuffle_epi8(sc16[r], ctrl);
          }
          for (int t = 0; t < T; ++t) {
            const __m256i a = loadu256(xb[t]->qs + 64 * c + 32 * h);
            for (int r = 0; r < R; ++r)
              sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], a), s[r]));
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t)
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * dx[t]), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r][t] = hsum(acc[r][t]) - accm[r][t];
  }
};

// ---- q5_k weights x q8_k activations ------------------------------------------------------------

// As KQ4K with 5-bit codes (<= 31, so maddubs pairs stay below 2 * 31 * 127): the fifth bit of element
// l of sub-block k is bit k of qh[l], one 32-byte load per block turned into 0x10 bytes by a compare.
struct KQ5K {
  static constexpr int kDecodeRows = 1;
  static constexpr size_t kPrefetch = 1024;
  static constexpr int kPromptRows = 2;
  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc[R][T];
    float accm[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps(), accm[r][t] = 0.0f;
    const uint8_t* wr[R];
    const uint8_t* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
    const __m256i mask = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    const int64_t nb = g.n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
      const uint8_t* wb[R];
      const block_q8_K* xb[T];
      uint8_t sc[R][8], mn[R][8];
      float d[R], dmin[R], dx[T];
      __m256i qh[R];
      for (int r = 0; r < R; ++r) {
        wb[r] = wr[r] + static_cast<size_t>(i) * sizeof(block_q5_K);
        for (size_t off = 0; off < sizeof(block_q5_K); off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(wb[r] + kPrefetch + off), _MM_HINT_T0);
        d[r] = fp16_at(wb[r] + offsetof(block_q5_K, d));
        dmin[r] = fp16_at(wb[r] + offsetof(block_q5_K, dmin));
        k4_scales_mins(wb[r] + offsetof(block_q5_K, scales), sc[r], mn[r]);
        qh[r] = loadu256(wb[r] + offsetof(block_q5_K, qh));
      }
      for (int t = 0; t < T; ++t) {
        xb[t] = reinterpret_cast<const block_q8_K*>(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_K));
        dx[t] = xb[t]->d;
      }
      for (int t = 0; t < T; ++t) {  // min term, as KQ4K
        const __m128i pairs = _mm_hadd_epi16(loadu128(xb[t]->bsums), loadu128(xb[t]->bsums + 8));
        for (int r = 0; r < R; ++r) {
          int64_t mbits;
          std::memcpy(&mbits, mn[r], 8);
          const __m128i m8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mbits));
          accm[r][t] += dmin[r] * dx[t] * static_cast<float>(hsum_epi32(_mm_madd_epi16(m8, pairs)));
        }
      }
      __m256i sumi[R][T], sc16[R];
      for (int r = 0; r < R; ++r) {
        int64_t bits;
        std::memcpy(&bits, sc[r], 8);
        sc16[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(bits)));
        for (int t = 0; t < T; ++t) sumi[r][t] = _mm256_setzero_si256();
      }
      for (int c = 0; c < 4; ++c) {
        for (int h = 0; h < 2; ++h) {  // sub-block k = 2c + h: low (h = 0) or high nibbles, bit k of qh
          __m256i q[R], s[R];
          const int k = 2 * c + h;
          const __m256i ctrl = lane_splat_ctrl(k, k);
          const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << k));
          for (int r = 0; r < R; ++r) {
            const __m256i raw = loadu256(wb[r] + offsetof(block_q5_K, qs) + 32 * c);
            const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh[r], bit), bit), b4);
            q[r] = _mm256_or_si256(_mm256_and_si256(h ? _mm256_srli_epi16(raw, 4) : raw, mask), hi);
            s[r] = _mm256_shuffle_epi8(sc16[r], ctrl);
          }
          for (int t = 0; t < T; ++t) {
            const __m256i a = loadu256(xb[t]->qs + 64 * c + 32 * h);
            for (int r = 0; r < R; ++r)
              sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], a), s[r]));
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t)
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * dx[t]), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r][t] = hsum(acc[r][t]) - accm[r][t];
  }
};

// ---- q2_k / q3_k weights x q8_k activations -------------------------------------------------------

// Both keep 2-bit codes in qs (byte 32c + l holds elements 128c + 32s + l at bits 2s, 2s+1) in 16
// sub-blocks of 16 with their own scales: 32 consecutive elements are one 32-byte load, a shift and a
// mask, covering sub-blocks 8c + 2s and 8c + 2s + 1, whose scales a pshufb splats (as KQ6K).
// q2_k: u in 0..3, x = d * (sc & 15) * u - dmin * (sc >> 4): the min term from bsums (exact int32).
// q3_k: u = low bits + 4 * (bit 4c + s of hmask[l]) in 0..7 for q = u - 4, x = d * scale * q: the
//       -4 * sum_j scale_j * bsums_j term starts the integer sum (as KQ6K's -32).
template <bool kQ3>
struct KQ23K {
  static constexpr int kDecodeRows = 1;
  static constexpr size_t kPrefetch = 1024;
  static constexpr int kPromptRows = 2;
  static constexpr size_t kBlock = kQ3 ? sizeof(block_q3_K) : sizeof(block_q2_K);
  static constexpr size_t kQs = kQ3 ? offsetof(block_q3_K, qs) : offsetof(block_q2_K, qs);
  static constexpr size_t kD = kQ3 ? offsetof(block_q3_K, d) : offsetof(block_q2_K, d);

  // The 16 sub-block scales as int16 (q2_k: the low nibbles; q3_k: the signed 6-bit values) and, for
  // q2_k, the 16 mins.
  static void scales(const uint8_t* b, int16_t sc[16], int16_t mn[16]) {
    if (kQ3) {
      int8_t s8[16];
      q3_k_scales(b + offsetof(block_q3_K, scales), s8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sc), _mm256_cvtepi8_epi16(loadu128(s8)));
    } else {
      const __m128i raw = loadu128(b + offsetof(block_q2_K, scales));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sc), _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0f))));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(mn),
                          _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f))));
    }
  }

  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc[R][T];
    float accm[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps(), accm[r][t] = 0.0f;
    const uint8_t* wr[R];
    const uint8_t* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    const int64_t nb = g.n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
      const uint8_t* wb[R];
      const block_q8_K* xb[T];
      float d[R], dmin[R];
      alignas(32) int16_t sc[R][16], mn[R][16];
      __m256i sumi[R][T], hm[R];
      for (int r = 0; r < R; ++r) {
        wb[r] = wr[r] + static_cast<size_t>(i) * kBlock;
        for (size_t off = 0; off < kBlock; off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(wb[r] + kPrefetch + off), _MM_HINT_T0);
        d[r] = fp16_at(wb[r] + kD);
        dmin[r] = kQ3 ? 0.0f : fp16_at(wb[r] + offsetof(block_q2_K, dmin));
        scales(wb[r], sc[r], mn[r]);
        if (kQ3) hm[r] = loadu256(wb[r] + offsetof(block_q3_K, hmask));
      }
      for (int t = 0; t < T; ++t)
        xb[t] = reinterpret_cast<const block_q8_K*>(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_K));
      for (int r = 0; r < R; ++r) {
        const __m256i s16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(sc[r]));
        for (int t = 0; t < T; ++t) {
          const __m256i bsums = loadu256(xb[t]->bsums);
          if (kQ3) {
            sumi[r][t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(s16, bsums), 2));
          } else {
            sumi[r][t] = _mm256_setzero_si256();
            const __m256i m16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(mn[r]));
            const __m256i p = _mm256_madd_epi16(m16, bsums);
            accm[r][t] += dmin[r] * xb[t]->d *
                          static_cast<float>(hsum_epi32(_mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1))));
          }
        }
      }
      for (int c = 0; c < 2; ++c) {
        __m256i sc16[R];  // scales 8c .. 8c+7 as int16 lanes, in both halves
        for (int r = 0; r < R; ++r) sc16[r] = _mm256_broadcastsi128_si256(loadu128(sc[r] + 8 * c));
        for (int sh = 0; sh < 4; ++sh) {  // elements 128c + 32sh .. +31: sub-blocks 8c + 2sh, 8c + 2sh + 1
          __m256i q[R], s[R];
          const __m256i ctrl = lane_splat_ctrl(2 * sh, 2 * sh + 1);
          const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * c + sh)));
          for (int r = 0; r < R; ++r) {
            const __m256i raw = loadu256(wb[r] + kQs + 32 * c);
            __m256i u;
            switch (sh) {
              case 0: u = raw; break;
              case 1: u = _mm256_srli_epi16(raw, 2); break;
              case 2: u = _mm256_srli_epi16(raw, 4); break;
              default: u = _mm256_srli_epi16(raw, 6); break;
            }
            u = _mm256_and_si256(u, m3);
            if (kQ3) u = _mm256_or_si256(u, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm[r], bit), bit), four));
            q[r] = u;
            s[r] = _mm256_shuffle_epi8(sc16[r], ctrl);
          }
          for (int t = 0; t < T; ++t) {
            const __m256i a = loadu256(xb[t]->qs + 128 * c + 32 * sh);
            for (int r = 0; r < R; ++r)
              sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], a), s[r]));
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t)
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * xb[t]->d), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r][t] = hsum(acc[r][t]) - accm[r][t];
  }
};

// ---- q6_k weights x q8_k activations ------------------------------------------------------------

struct KQ6K {
  static constexpr int kDecodeRows = 1;
  static constexpr size_t kPrefetch = 1024;  // measured: ~+15% from DRAM on Zen 3, 1024..2048 alike
  static constexpr int kPromptRows = 2;
  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const uint8_t* wr[R];
    const uint8_t* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = g.tok(t0 + t);
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const int64_t nb = g.n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
      const uint8_t* wb[R];
      const block_q8_K* xb[T];
      float d[R];
      int8_t sc[R][16];
      __m256i sumi[R][T];
      for (int r = 0; r < R; ++r) {
        wb[r] = wr[r] + static_cast<size_t>(i) * sizeof(block_q6_K);
        for (size_t off = 0; off < sizeof(block_q6_K); off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(wb[r] + kPrefetch + off), _MM_HINT_T0);
        d[r] = fp16_at(wb[r] + offsetof(block_q6_K, d));
        std::memcpy(sc[r], wb[r] + offsetof(block_q6_K, scales), 16);
      }
      for (int t = 0; t < T; ++t)
        xb[t] = reinterpret_cast<const block_q8_K*>(xt[t] + static_cast<size_t>(i) * sizeof(block_q8_K));
      // Codes are stored +32: sum scale_j * (q - 32) . a = sum scale_j * q . a - 32 * sum scale_j * bsum_j.
      for (int r = 0; r < R; ++r) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(sc[r]));
        for (int t = 0; t < T; ++t)
          sumi[r][t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                        _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu256(xb[t]->bsums)), 5));
      }
      for (int c = 0; c < 2; ++c) {
        __m256i sc16[R];  // scales 8c .. 8c+7 as int16 lanes, in both halves
        for (int r = 0; r < R; ++r) {
          int64_t bits;
          std::memcpy(&bits, sc[r] + 8 * c, 8);
          sc16[r] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(bits)));
        }
        for (int k = 0; k < 4; ++k) {  // quarter k: elements 128c + 32k .. +31, sub-blocks 8c+2k, 8c+2k+1
          __m256i q[R], s[R];
          const __m256i ctrl = lane_splat_ctrl(2 * k, 2 * k + 1);
          for (int r = 0; r < R; ++r) {
            const uint8_t* ql = wb[r] + offsetof(block_q6_K, ql) + 64 * c + 32 * (k & 1);
            const __m256i lo = loadu256(ql);
            const __m256i hb = loadu256(wb[r] + offsetof(block_q6_K, qh) + 32 * c);
            const __m256i nib = _mm256_and_si256(k < 2 ? lo : _mm256_srli_epi16(lo, 4), m4);
            // bits 2k, 2k+1 of qh moved to bits 4, 5
            __m256i top;
            switch (k) {
              case 0: top = _mm256_slli_epi16(hb, 4); break;
              case 1: top = _mm256_slli_epi16(hb, 2); break;
              case 2: top = hb; break;
              default: top = _mm256_srli_epi16(hb, 2); break;
            }
            q[r] = _mm256_or_si256(nib, _mm256_and_si256(top, m30));
            s[r] = _mm256_shuffle_epi8(sc16[r], ctrl);
          }
          for (int t = 0; t < T; ++t) {
            const __m256i a = loadu256(xb[t]->qs + 128 * c + 32 * k);
            for (int r = 0; r < R; ++r)
              sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], a), s[r]));
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t)
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * xb[t]->d), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) out[r][t] = hsum(acc[r][t]);
  }
};

// ---- float weights x f32 activations ------------------------------------------------------------

struct LoadF32 {
  static constexpr size_t kBytes = 4;
  static __m256 load8(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static float load1(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
};
struct LoadF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load8(const uint8_t* p) { return _mm256_cvtph_ps(loadu128(p)); }
  static float load1(const uint8_t* p) { return fp16_at(p); }
};
struct LoadBF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load8(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
  }
  static float load1(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_fp32(h);
  }
};

template <class L>
struct KFloat {
  static constexpr int kDecodeRows = 4;
  static constexpr int kPromptRows = 2;
  template <int R, int T>
  static void tile(const GemmArgs& g, int64_t r0, int64_t t0, float out[R][T]) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const uint8_t* wr[R];
    const float* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = g.row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = reinterpret_cast<const float*>(g.tok(t0 + t));
    int64_t i = 0;
    for (; i + 8 <= g.n; i += 8) {
      __m256 w[R];
      for (int r = 0; r < R; ++r) w[r] = L::load8(wr[r] + static_cast<size_t>(i) * L::kBytes);
      for (int t = 0; t < T; ++t) {
        const __m256 a = _mm256_loadu_ps(xt[t] + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(w[r], a, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) {
        float s = hsum(acc[r][t]);
        for (int64_t j = i; j < g.n; ++j) {
          float a;
          std::memcpy(&a, xt[t] + j, 4);
          s += L::load1(wr[r] + static_cast<size_t>(j) * L::kBytes) * a;
        }
        out[r][t] = s;
      }
  }
};

using KQ8_0 = KQ80<false>;
using KF32 = KFloat<LoadF32>;
using KF16 = KFloat<LoadF16>;
using KBF16 = KFloat<LoadBF16>;

}  // namespace

#define FD_AVX2_GEMM(name, K)                                                                      \
  void gemm_##name##__avx2(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq, \
                           size_t xq_stride, int64_t ntok, float* y, size_t y_stride) {            \
    gemm_tiled<K>(w, row_stride, n, nrows, xq, xq_stride, ntok, y, y_stride);                      \
  }                                                                                                \
  FD_GEMV_FROM_GEMM(name, avx2)

FD_AVX2_GEMM(q8_0, KQ8_0)
FD_AVX2_GEMM(q4_0, KQ4_0)
FD_AVX2_GEMM(q4_k, KQ4K)
FD_AVX2_GEMM(q6_k, KQ6K)
FD_AVX2_GEMM(q4_1, KQ32<Q41>)
FD_AVX2_GEMM(q5_0, KQ32<Q50>)
FD_AVX2_GEMM(q5_1, KQ32<Q51>)
FD_AVX2_GEMM(q2_k, KQ23K<false>)
FD_AVX2_GEMM(q3_k, KQ23K<true>)
FD_AVX2_GEMM(q5_k, KQ5K)
FD_AVX2_GEMM(f32, KF32)
FD_AVX2_GEMM(f16, KF16)
FD_AVX2_GEMM(bf16, KBF16)

}  // namespace fd
