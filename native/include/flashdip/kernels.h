// Public kernel interface used by the model, the store and the addon. Dumb C-style signatures over
// raw pointers; every function has a scalar twin (the oracle) and SIMD versions picked once at load
// (see dispatch). Preconditions are the caller's job; they are asserted in debug builds.
//
// Matrices follow GGUF/ggml: a weight matrix with ne0 = n inputs and ne1 = m outputs is stored as m
// rows of n elements each, every row a whole number of blocks of its type.
#pragma once
#include <cstddef>
#include <cstdint>

#include "flashdip/types.h"

namespace fd {

// ---- dispatch ----------------------------------------------------------------------------------
// Selected once at first use from CPU features (cpuid / getauxval(AT_HWCAP)); FLASHDIP_ISA=scalar|avx2|
// neon|neon-dotprod overrides (an ISA the CPU lacks is refused and the best available one is used).
const char* kernels_isa();               // the ISA in use: "scalar", "avx2", "neon", "neon-dotprod"
const char* kernels_available_isas();    // comma-separated list this CPU supports
// Forces an ISA for tests; returns false (and changes nothing) if it is not available.
bool kernels_set_isa(const char* isa);

// ---- conversions -------------------------------------------------------------------------------
// Dequantizes n elements (a multiple of the block size) of a type with traits.can_dequantize (and,
// for tests, TYPE_Q8_K). Block layouts: flashdip/quants.h.
void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n);
// Quantizes n elements (a multiple of the block size) to a type with traits.can_quantize (and
// TYPE_Q8_K). Deterministic, reference quality (no importance matrix); NaN/inf input gives garbage
// values for its block but is safe.
void quantize_row(uint32_t type, const float* src, void* dst, int64_t n);

// ---- dense matrix-vector -----------------------------------------------------------------------
// The type activations are converted to for a GEMV over weights of wtype (as llama.cpp does:
// q8_0 for q4_0/q8_0, q8_k for the k-quants, f32 for f32, ...). f16 and bf16 weights take f32
// activations: the weights are widened to f32 in the kernel (more accurate than llama.cpp's f16
// activations). q8_k rows are QK_K-element blocks of struct block_q8_K (flashdip/quants.h).
uint32_t vec_dot_type(uint32_t wtype);
// Converts n activations into the vec_dot_type of wtype; dst holds row_bytes(vec_dot_type(wtype), n).
void quantize_activation(uint32_t wtype, const float* x, void* dst, int64_t n);
// y[r] = dot(W[r, :], x) for r in [0, nrows); w points at row 0, rows are row_stride bytes apart,
// xq is the output of quantize_activation for n inputs. wtype must have traits.can_compute.
void gemv(uint32_t wtype, const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
          float* y);
// Batched form for prompt evaluation: for t in [0, ntok): y[t*y_stride + r] = dot(W[r,:], x_t), where
// x_t = xq + t*xq_stride bytes. Reads each weight row once for all tokens.
void gemm(uint32_t wtype, const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
          size_t xq_stride, int64_t ntok, float* y, size_t y_stride);

}  // namespace fd
