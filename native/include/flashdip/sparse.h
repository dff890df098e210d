// Sparse kernels for Dynamic Input Pruning (PAPER.md): the gather-GEMV over input-major rows and the
// O(n) top-k with the DIP-CA scoring fused in. Dumb C-style signatures over raw pointers, like
// kernels.h. Every function has a scalar twin (the oracle, native/kernels/scalar/sparse_scalar.cc) and
// SIMD versions (x86/sparse_avx2.cc, arm/sparse_neon.cc); the set in use follows kernels_isa(), so
// FLASHDIP_ISA and kernels_set_isa() switch these kernels too. Preconditions are asserted in debug
// builds; in release builds a violated one never aborts (see each function).
#pragma once
#include <cstddef>
#include <cstdint>

#include "flashdip/types.h"

namespace fd {

// ---- gather-GEMV over input-major rows ("axpy" form) --------------------------------------------
// The DIP store keeps, per MLP matrix, one row per input column j: the column W[:, j] stored
// contiguously and quantized along the output dimension (blocks of 32 outputs). A sparse GEMV is then
//     y[i] += sum_j x_j * row_j[i]        over the selected rows j only.
//
// Row types: those with a gather kernel in the registry (kernels/kernels_internal.h): today TYPE_F32,
// TYPE_F16, TYPE_Q8_0, TYPE_Q4_0 (ggml block layouts, flashdip/quants.h; quantized values are d * q and
// d * (q - 8), and the kernels fold x_j * d into one float per block), and the k-quants TYPE_Q4_K,
// TYPE_Q5_K and TYPE_Q6_K, whose super-blocks span 256 outputs (a row of them needs a length that is a multiple of 256).
// Rows need no alignment (a row may start anywhere: a cache slot, an mmap'd file).
bool gather_row_type_supported(uint32_t type);

// The granule of a gather over rows of `type`: 32 outputs, or the block size when it is larger (256 for
// the k-quants). offset and m below are multiples of it.
int64_t gather_unit(uint32_t type);

// y[i] += sum_{j < k} coef[j] * row_j[offset + i]  for i in [0, m), row_j starting at rows[j].
// offset and m are element counts, multiples of gather_unit(type) (offset lets threads split the outputs); rows of
// different j may live anywhere. Rows are accumulated in order j = 0, 1, ... for every i. The SIMD
// versions round differently from the scalar twin (FMA; q4_0 adds s*q and the -8*s of 4 rows apart);
// the tests bound the difference by 4 (k + 2) eps sum_j |x_j| (|row_j[i]| + 16 |d_j| for q4_0, + 2 dmin_j m_j
// for q4_k and q5_k, whose SIMD versions add the mins of 4 rows apart too).
// k <= 0 or m <= 0: no-op. An unsupported type fills y[0..m) with NaN.
// Speed (AVX2, one Zen 3 core, density 0.5, rows >= 4 KiB from DRAM): f32/f16/q8_0 run faster than a
// memcpy of the same bytes, q4_0 at ~0.85x (it is bound by the nibble decoding, not by memory).
void gather_axpy(uint32_t type, const void* const* rows, const float* coef, int64_t k, int64_t offset,
                 int64_t m, float* y);

// Same with rows at base + idx[j] * row_stride bytes and coefficient x[idx[j]] (x is the full,
// dense activation vector, idx a mask such as topk_select's output).
void gather_axpy_indexed(uint32_t type, const void* base, size_t row_stride, const int32_t* idx,
                         const float* x, int64_t k, int64_t offset, int64_t m, float* y);

// ---- top-k by magnitude with DIP-CA scoring ----------------------------------------------------
// Scores, for i in [0, n):
//   r_i = |a_i|, and 0 when a_i is NaN.
//   Without cache state (cached == nullptr) or with gamma >= 1: s_i = r_i (plain DIP).
//   Otherwise (gamma clamped to [0, 1]; NaN gamma counts as 1):
//     protected = the fixed_top_n indices with the highest r (ties: lower index; <= 0: none),
//     s_i = r_i                                  if i is protected,
//     s_i = r_i                                  if cached[i] != 0         (alpha_blend = false)
//     s_i = gamma * r_i                          otherwise                 (alpha_blend = false)
//     s_i = fmaf(gamma, r_i, 1 - gamma)          if cached[i] != 0         (alpha_blend = true)
//     s_i = gamma * r_i                          otherwise                 (alpha_blend = true)
//   A score that comes out NaN (gamma = 0 times an infinite a_i) counts as 0.
// Selection: the k highest scores; equal scores -> the lower index wins (the order of a full sort by
// (score descending, index ascending)). Output: the selected indices, ascending, in out[0..min(k, n)).
// k >= n selects every index; k <= 0 selects none. Returns the number of indices written.
// O(n): a three-digit radix select on the bit patterns of the (non-negative) scores, then one pass.
// For n >= 2048 the first digit comes from every 4th score and one pass counts the scores above the
// bucket range it points at and collects those inside; a misleading sample is detected by the counts
// and falls back to the full histogram (same result, only slower).
//
// workspace: topk_workspace_bytes(n) bytes, any alignment >= 4, or nullptr to use a per-thread buffer
// (grown on demand, kept for the thread's lifetime).
size_t topk_workspace_bytes(int64_t n);
int64_t topk_select(const float* a, int64_t n, int64_t k, const uint8_t* cached, float gamma,
                    int64_t fixed_top_n, bool alpha_blend, int32_t* out, void* workspace);

// DIP-CA with block reads: makes the misses of a DIP-CA mask come from a few runs of adjacent columns,
// so that a device which serves small scattered reads slowly reads a few large blocks instead.
// mask[0..k): ascending indices (topk_select's output over the same a, cached, fixed_top_n, with
// gamma > 0). Columns are grouped in blocks [b * block, (b + 1) * block). r_i = |a_i| (NaN: 0).
//   misses  = the mask's uncached indices that are not protected (the fixed_top_n highest r, ties:
//             lower index), m of them;
//   blocks are ranked by the sum of r over the misses in them (ties: the lower block) and taken in
//   that order until the uncached, unprotected columns in the taken blocks number at least cover * m;
//   the misses are replaced by the m highest-r uncached, unprotected columns of the taken blocks
//   (ties: lower index). Cached and protected entries of the mask stay.
// The mask stays ascending with k entries. block <= 1 leaves it as it is, and so does a cover that
// takes every block (the m highest-r uncached columns are the misses DIP-CA chose, as long as
// gamma * r orders them as r does). Returns m.
int64_t dipca_block_misses(const float* a, int64_t n, int32_t* mask, int64_t k, const uint8_t* cached, int64_t block,
                           double cover, int64_t fixed_top_n);

// Plain top-k by |a| (topk_select without cache state).
inline int64_t topk_abs(const float* a, int64_t n, int64_t k, int32_t* out, void* workspace) {
  return topk_select(a, n, k, nullptr, 1.0f, 0, false, out, workspace);
}

// ---- per-ISA implementations (for the dispatcher, the tests and the benchmark) --------------------
// Not for ordinary callers: use the functions above. Each ISA's table holds the same primitives (built
// from the kernel registry, with an ISA's missing kernels taken from its fallback ISA); the top-level algorithms (chunking of rows, the radix select) live in sparse_dispatch.cc.
namespace sparse_impl {

// Gather rows 0..k-1 starting at rows[j] (already offset to the first wanted element) into y[0..m).
using GatherFn = void (*)(const uint8_t* const* rows, const float* coef, int64_t k, int64_t m, float* y);
// s[i] = bit pattern of r_i (see above); hist[s[i] >> 21] += 1 (hist has 1024 entries, zeroed by the caller;
// nullptr: no histogram).
using AbsHistFn = void (*)(const float* a, int64_t n, uint32_t* s, uint32_t* hist);
// In place: s[i] (raw r_i bits) becomes the DIP-CA score bits; protected = raw > pthr, or raw == pthr
// for the first peq such indices (pthr <= 0x7fffffff; 0x7fffffff protects nothing). hist as above over
// the new scores (nullptr: none).
using WeightHistFn = void (*)(uint32_t* s, int64_t n, const uint8_t* cached, float gamma, bool alpha_blend,
                              uint32_t pthr, int64_t peq, uint32_t* hist);
// out <- every i with s[i] > thr, and the first eq indices with s[i] == thr, ascending. Returns the count,
// which must be <= cap (out has room for cap; the SIMD versions never write past it).
using EmitFn = int64_t (*)(const uint32_t* s, int64_t n, uint32_t thr, int64_t eq, int32_t* out, int64_t cap);

// cand <- the values v of s[0..n) with (v >> shift) == prefix, in order. Returns their count (cand has
// room for n; the SIMD versions may write up to 8 words past the count but never past cand + n).
using CollectFn = int64_t (*)(const uint32_t* s, int64_t n, int shift, uint32_t prefix, uint32_t* cand);

// cand <- the values v of s[0..n) with lo <= v <= hi, in order; *above = how many are > hi. Returns the
// count (lo <= hi <= 0x7fffffff; the same write rules as CollectFn).
using CollectRangeFn = int64_t (*)(const uint32_t* s, int64_t n, uint32_t lo, uint32_t hi, uint32_t* cand,
                                   int64_t* above);

// One ISA's set, built by the dispatch from the kernel registry (kernels/kernels_internal.h).
struct SparseKernels {
  const char* isa;              // "scalar", "avx2", "neon" (neon-dotprod uses the neon kernels)
  GatherFn gather[TYPE_COUNT];  // by row type id; nullptr: no gather kernel for that type
  AbsHistFn abs_hist;
  WeightHistFn weight_hist;
  EmitFn emit;
  CollectFn collect;
  CollectRangeFn collect_range;
};

// The table of an ISA name as kernels_available_isas() spells it (neon-dotprod's holds the neon kernels),
// or nullptr when this build/CPU has none.
const SparseKernels* sparse_kernels_for(const char* isa);
// The table in use (follows kernels_isa()).
const SparseKernels& sparse_kernels();

}  // namespace sparse_impl
}  // namespace fd
