// Internal kernel registry: the per-ISA function names and the dispatch table. Not a public header.
//
// Naming: <op>_<type>__<isa>, e.g. gemv_q4_0__avx2. Every ISA implements the same signature as the
// scalar twin (the oracle in scalar/); an ISA that lacks a kernel leaves its slot null in the table
// and dispatch falls back to the next-less-capable ISA (neon-dotprod -> neon -> scalar).
#pragma once
#include <cstddef>
#include <cstdint>

#include "flashdip/kernels.h"
#include "flashdip/ops.h"
#include "flashdip/quants.h"

namespace fd {

// y[t*y_stride + r] = dot(W[r,:], x_t) for r < nrows, t < ntok; x_t at xq + t*xq_stride bytes.
using GemmFn = void (*)(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
                        size_t xq_stride, int64_t ntok, float* y, size_t y_stride);
// y[r] = dot(W[r,:], x) for r < nrows.
using GemvFn = void (*)(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
                        float* y);

// Weight types with dense kernels: X(short name, type id). Integer (dot-product) types first.
#define FD_INT_TYPES(X) X(q8_0, TYPE_Q8_0) X(q4_0, TYPE_Q4_0) X(q4_k, TYPE_Q4_K) X(q6_k, TYPE_Q6_K)
#define FD_FLOAT_TYPES(X) X(f32, TYPE_F32) X(f16, TYPE_F16) X(bf16, TYPE_BF16)
#define FD_COMPUTE_TYPES(X) FD_INT_TYPES(X) FD_FLOAT_TYPES(X)

#define FD_DECLARE_KERNELS(isa, name, type)                                                        \
  void gemv_##name##__##isa(const void* w, size_t row_stride, int64_t n, int64_t nrows,           \
                            const void* xq, float* y);                                            \
  void gemm_##name##__##isa(const void* w, size_t row_stride, int64_t n, int64_t nrows,           \
                            const void* xq, size_t xq_stride, int64_t ntok, float* y,             \
                            size_t y_stride);

// Defines gemv_<name>__<isa> as the one-token case of gemm_<name>__<isa>.
#define FD_GEMV_FROM_GEMM(name, isa)                                                               \
  void gemv_##name##__##isa(const void* w, size_t row_stride, int64_t n, int64_t nrows,           \
                            const void* xq, float* y) {                                           \
    gemm_##name##__##isa(w, row_stride, n, nrows, xq, 0, 1, y, 0);                                \
  }

#define FD_DECL_SCALAR(name, type) FD_DECLARE_KERNELS(scalar, name, type)
FD_COMPUTE_TYPES(FD_DECL_SCALAR)
#undef FD_DECL_SCALAR

#if defined(__x86_64__) || defined(_M_X64)
#define FD_HAVE_AVX2_KERNELS 1
#define FD_DECL_AVX2(name, type) FD_DECLARE_KERNELS(avx2, name, type)
FD_COMPUTE_TYPES(FD_DECL_AVX2)
#undef FD_DECL_AVX2
#endif

#if defined(__aarch64__)
#define FD_HAVE_NEON_KERNELS 1
#define FD_DECL_NEON(name, type) FD_DECLARE_KERNELS(neon, name, type)
FD_COMPUTE_TYPES(FD_DECL_NEON)
#undef FD_DECL_NEON
// dot-product kernels exist for the integer types only; float types use the baseline NEON ones.
#define FD_DECL_NEON_DOTPROD(name, type) FD_DECLARE_KERNELS(neon_dotprod, name, type)
FD_INT_TYPES(FD_DECL_NEON_DOTPROD)
#undef FD_DECL_NEON_DOTPROD
#endif

// Element-wise and attention kernels (flashdip/ops.h): <op>__<isa>, one set per ISA (neon-dotprod uses
// the neon set: these are float kernels).
#define FD_OPS_DECLARE(isa)                                                                           \
  void rmsnorm_f32__##isa(const float* x, const float* w, float* out, int64_t n, float eps);          \
  void rope_f32__##isa(float* v, int64_t heads, int64_t head_dim, int64_t rot, const float* cos,     \
                       const float* sin, bool neox);                                                  \
  void softmax_f32__##isa(float* x, int64_t n);                                                       \
  void silu_mul_f32__##isa(float* g, const float* u, float* h, int64_t n);                            \
  void exp_f32__##isa(const float* x, float* y, int64_t n);                                           \
  void attn_scores_f32__##isa(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, \
                              int64_t len, float scale, float* s, int64_t s_stride);                  \
  void attn_scores_f16__##isa(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, \
                              int64_t len, float scale, float* s, int64_t s_stride);                  \
  void attn_values_f32__##isa(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, \
                              size_t v_stride, int64_t len, float* out);                              \
  void attn_values_f16__##isa(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, \
                              size_t v_stride, int64_t len, float* out);

#define FD_OPS_TABLE(isa, name)                                                                   \
  ops_impl::OpsKernels {                                                                          \
    name, rmsnorm_f32__##isa, rope_f32__##isa, softmax_f32__##isa, silu_mul_f32__##isa,           \
        exp_f32__##isa, {attn_scores_f32__##isa, attn_scores_f16__##isa},                         \
        {attn_values_f32__##isa, attn_values_f16__##isa}                                          \
  }

FD_OPS_DECLARE(scalar)
#if defined(FD_HAVE_AVX2_KERNELS)
FD_OPS_DECLARE(avx2)
#endif
#if defined(FD_HAVE_NEON_KERNELS)
FD_OPS_DECLARE(neon)
#endif

// Activation quantizers (scalar; a per-token cost, negligible next to the weight stream).
void quantize_row_q8_0_act(const float* x, block_q8_0* y, int64_t n);
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n);

}  // namespace fd
