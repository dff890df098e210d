// GGUF/ggml block formats (bit-exact with the files on disk) and scalar half-precision conversions.
//
// Every block struct below has the on-disk layout of its ggml counterpart: little-endian fields, no
// padding, sizes pinned by static_assert. Blocks inside a tensor are only guaranteed 1-byte aligned
// relative to each other (18/34/144/210-byte strides), so never take a wider-than-byte reference into
// a block in SIMD code; use memcpy or unaligned loads (loadu / vld1).
//
// The helpers are `static inline` on purpose: this header is also compiled into the per-ISA kernel
// files (-mavx2, +dotprod), and an ordinary inline function would be one weak symbol that the linker
// may take from such a file for the scalar code too (an illegal instruction on older CPUs).
#pragma once
#include <cstdint>
#include <cstring>

namespace fd {

// ---- half-precision conversions (exact decode; encode rounds to nearest, ties to even) ----------

// IEEE binary16 bits -> float. Exact for every input (subnormals, infinities, NaN payloads kept).
static inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    // zero or subnormal: mant * 2^-24, exact in float
    float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// float -> IEEE binary16 bits, round to nearest even; overflow gives +-inf, NaN stays a (quiet) NaN.
static inline uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)  // inf / NaN (keep top payload bits, force quiet)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  if (ax >= 0x477ff000u)  // >= 65520 = halfway between 65504 (max half) and 65536: rounds to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (ax < 0x38800000u) {
    // below 2^-14 (smallest normal half): the result is round(|f| * 2^24) in units of 2^-24. Adding
    // 0.5f (ulp 2^-24) lets the FPU do the round-to-nearest-even; may produce 0x400 (smallest normal).
    float a;
    std::memcpy(&a, &ax, 4);
    a += 0.5f;
    uint32_t b;
    std::memcpy(&b, &a, 4);
    return static_cast<uint16_t>(sign | (b - 0x3f000000u));
  }
  // normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even (a carry into the
  // exponent is the correct result, up to 0x7bff since larger inputs were handled above).
  const uint32_t odd = (ax >> 13) & 1u;
  ax = ax - ((127u - 15u) << 23) + 0xfffu + odd;
  return static_cast<uint16_t>(sign | (ax >> 13));
}

// bfloat16 bits -> float (exact).
static inline float bf16_to_fp32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// float -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN.
static inline uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// Reads a little-endian fp16 scale stored at p (any alignment).
static inline float load_fp16(const void* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// ---- block formats ----------------------------------------------------------------------------
// Packed (alignment 1, no padding either way): blocks may sit at any address (tensor data is only
// 32-byte aligned at its start, strides of 18/34/144/210 bytes, repacked rows at odd offsets), and
// member access through a packed struct compiles to unaligned-safe loads. Pass fields by value; do
// not take pointers to multi-byte members (-Waddress-of-packed-member).
#if defined(__GNUC__) || defined(__clang__)
#define FD_PACKED __attribute__((packed))
#else
#define FD_PACKED
#endif
constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32;
constexpr int QK_K = 256;          // k-quant super-block
constexpr int K_SCALE_SIZE = 12;   // packed 6-bit scales/mins of q4_k and q5_k

// x = d * (q - 8); element j in the low nibble of qs[j], element j+16 in its high nibble.
struct FD_PACKED block_q4_0 {
  uint16_t d;            // fp16 scale
  uint8_t qs[QK4_0 / 2];
};
// x = d * q + m; nibbles as q4_0.
struct FD_PACKED block_q4_1 {
  uint16_t d, m;         // fp16
  uint8_t qs[QK4_1 / 2];
};
// x = d * (q - 16); q = nibble | (bit j of qh) << 4 (elements 0..15), nibble | (bit j+16) << 4 (16..31).
struct FD_PACKED block_q5_0 {
  uint16_t d;
  uint8_t qh[4];         // little-endian uint32 of fifth bits
  uint8_t qs[QK5_0 / 2];
};
// x = d * q + m; bits as q5_0.
struct FD_PACKED block_q5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
// x = d * q.
struct FD_PACKED block_q8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
// Activations for q4_1 / q5_1 dot products: x = d * q; s = d * sum(qs) (fp16), for the min term.
struct FD_PACKED block_q8_1 {
  uint16_t d, s;
  int8_t qs[QK8_0];
};
// 16 sub-blocks of 16: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4), q 2-bit.
struct FD_PACKED block_q2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d, dmin;
};
// 16 sub-blocks of 16 with signed 6-bit scales (packed in 12 bytes): x = d * (s - 32) * (q - 4*!hbit).
struct FD_PACKED block_q3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
// 8 sub-blocks of 32 with 6-bit scale and min: x = d * sc * q - dmin * m, q 4-bit.
struct FD_PACKED block_q4_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
// as q4_k with a fifth bit per element in qh.
struct FD_PACKED block_q5_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
// 16 sub-blocks of 16 with int8 scales: x = d * scales[j] * (q - 32), q 6-bit (4 low in ql, 2 in qh).
struct FD_PACKED block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
// Activations for k-quant dot products: x = d * q; bsums[j] = sum of qs[16j .. 16j+15].
struct FD_PACKED block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

static_assert(sizeof(block_q4_0) == 18, "q4_0 block size");
static_assert(sizeof(block_q4_1) == 20, "q4_1 block size");
static_assert(sizeof(block_q5_0) == 22, "q5_0 block size");
static_assert(sizeof(block_q5_1) == 24, "q5_1 block size");
static_assert(sizeof(block_q8_0) == 34, "q8_0 block size");
static_assert(sizeof(block_q8_1) == 36, "q8_1 block size");
static_assert(sizeof(block_q2_K) == 84, "q2_k block size");
static_assert(sizeof(block_q3_K) == 110, "q3_k block size");
static_assert(sizeof(block_q4_K) == 144, "q4_k block size");
static_assert(sizeof(block_q5_K) == 176, "q5_k block size");
static_assert(sizeof(block_q6_K) == 210, "q6_k block size");
static_assert(sizeof(block_q8_K) == 292, "q8_k block size");
static_assert(alignof(block_q4_0) == 1 && alignof(block_q8_K) == 1, "blocks are byte-aligned");

// Unpacks the 6-bit (scale, min) pair j in [0, 8) of a q4_k / q5_k block.
static inline void k4_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Unpacks all eight 6-bit scales and mins of a q4_k / q5_k block at once (same values as
// k4_scale_min for j = 0..7), working on three little-endian 32-bit words.
static inline void k4_scales_mins(const uint8_t* s, uint8_t sc[8], uint8_t m[8]) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
  const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
  const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

// Unpacks the sixteen signed 6-bit scales of a q3_k block (low 4 bits: scale j < 8 in the low nibble of
// s[j], j >= 8 in the high nibble of s[j - 8]; high 2 bits: bits 2 (j / 4) of s[8 + j % 4]; minus 32),
// four at a time in 32-bit words as ggml does.
static inline void q3_k_scales(const uint8_t* s, int8_t out[16]) {
  uint32_t a[4];
  std::memcpy(a, s, 12);
  const uint32_t m2 = 0x0f0f0f0fu, m1 = 0x03030303u, hi = a[2];
  a[2] = ((a[0] >> 4) & m2) | (((hi >> 4) & m1) << 4);
  a[3] = ((a[1] >> 4) & m2) | (((hi >> 6) & m1) << 4);
  a[0] = (a[0] & m2) | ((hi & m1) << 4);
  a[1] = (a[1] & m2) | (((hi >> 2) & m1) << 4);
  uint8_t u[16];
  std::memcpy(u, a, 16);
  for (int j = 0; j < 16; ++j) out[j] = static_cast<int8_t>(u[j] - 32);
}

}  // namespace fd
