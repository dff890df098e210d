// Internal kernel registry: the one list of kernels, their signatures, and the dispatch table's view of
// them. Not a public header (flashdip/kernels.h has the registry's public side: ops, ISAs, KernelInfo).
//
// Naming: <op>_<type>__<isa>, e.g. gemv_q4_0__avx2 (<op>__<isa> for the untyped top-k primitives).
// Every kernel has the signature of its op and a scalar twin (the oracle, in scalar/) for the same
// (op, type); an ISA that lacks a kernel takes its fallback ISA's (neon-dotprod -> neon -> scalar,
// avx2 -> scalar). Adding a kernel = one line in FD_KERNELS + the function + its scalar twin; the
// native tests iterate the list and fail on a kernel without a scalar twin or without a test.
#pragma once
#include <cstddef>
#include <cstdint>

#include "flashdip/kernels.h"
#include "flashdip/ops.h"
#include "flashdip/quants.h"
#include "flashdip/sparse.h"

namespace fd {

// y[t*y_stride + r] = dot(W[r,:], x_t) for r < nrows, t < ntok; x_t at xq + t*xq_stride bytes.
using GemmFn = void (*)(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
                        size_t xq_stride, int64_t ntok, float* y, size_t y_stride);
// y[r] = dot(W[r,:], x) for r < nrows.
using GemvFn = void (*)(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
                        float* y);

// ---- the registry ------------------------------------------------------------------------------
// K(op, type name, type id, isa) registers <op>_<type name>__<isa>; U(op, isa) registers <op>__<isa>.
// Lines of an ISA this build does not compile are in an empty list below.
#define FD_KERNELS_SCALAR(K, U)                                                                        \
  K(gemv, q8_0, TYPE_Q8_0, scalar) K(gemm, q8_0, TYPE_Q8_0, scalar)                                    \
  K(gemv, q4_0, TYPE_Q4_0, scalar) K(gemm, q4_0, TYPE_Q4_0, scalar)                                    \
  K(gemv, q4_k, TYPE_Q4_K, scalar) K(gemm, q4_k, TYPE_Q4_K, scalar)                                    \
  K(gemv, q6_k, TYPE_Q6_K, scalar) K(gemm, q6_k, TYPE_Q6_K, scalar)                                    \
  K(gemv, q4_1, TYPE_Q4_1, scalar) K(gemm, q4_1, TYPE_Q4_1, scalar)                                    \
  K(gemv, q5_0, TYPE_Q5_0, scalar) K(gemm, q5_0, TYPE_Q5_0, scalar)                                    \
  K(gemv, q5_1, TYPE_Q5_1, scalar) K(gemm, q5_1, TYPE_Q5_1, scalar)                                    \
  K(gemv, q2_k, TYPE_Q2_K, scalar) K(gemm, q2_k, TYPE_Q2_K, scalar)                                    \
  K(gemv, q3_k, TYPE_Q3_K, scalar) K(gemm, q3_k, TYPE_Q3_K, scalar)                                    \
  K(gemv, q5_k, TYPE_Q5_K, scalar) K(gemm, q5_k, TYPE_Q5_K, scalar)                                    \
  K(gemv, f32, TYPE_F32, scalar) K(gemm, f32, TYPE_F32, scalar)                                        \
  K(gemv, f16, TYPE_F16, scalar) K(gemm, f16, TYPE_F16, scalar)                                        \
  K(gemv, bf16, TYPE_BF16, scalar) K(gemm, bf16, TYPE_BF16, scalar)                                    \
  K(gather, f32, TYPE_F32, scalar) K(gather, f16, TYPE_F16, scalar)                                    \
  K(gather, q8_0, TYPE_Q8_0, scalar) K(gather, q4_0, TYPE_Q4_0, scalar)                                \
  K(gather, q4_k, TYPE_Q4_K, scalar) K(gather, q5_k, TYPE_Q5_K, scalar) K(gather, q6_k, TYPE_Q6_K, scalar)\
  FD_OPS_KERNELS(K, scalar) FD_TOPK_KERNELS(U, scalar)

#if defined(__x86_64__) || defined(_M_X64)
#define FD_HAVE_AVX2_KERNELS 1
#define FD_KERNELS_AVX2(K, U)                                                                          \
  K(gemv, q8_0, TYPE_Q8_0, avx2) K(gemm, q8_0, TYPE_Q8_0, avx2)                                        \
  K(gemv, q4_0, TYPE_Q4_0, avx2) K(gemm, q4_0, TYPE_Q4_0, avx2)                                        \
  K(gemv, q4_k, TYPE_Q4_K, avx2) K(gemm, q4_k, TYPE_Q4_K, avx2)                                        \
  K(gemv, q6_k, TYPE_Q6_K, avx2) K(gemm, q6_k, TYPE_Q6_K, avx2)                                        \
  K(gemv, q4_1, TYPE_Q4_1, avx2) K(gemm, q4_1, TYPE_Q4_1, avx2)                                        \
  K(gemv, q5_0, TYPE_Q5_0, avx2) K(gemm, q5_0, TYPE_Q5_0, avx2)                                        \
  K(gemv, q5_1, TYPE_Q5_1, avx2) K(gemm, q5_1, TYPE_Q5_1, avx2)                                        \
  K(gemv, q2_k, TYPE_Q2_K, avx2) K(gemm, q2_k, TYPE_Q2_K, avx2)                                        \
  K(gemv, q3_k, TYPE_Q3_K, avx2) K(gemm, q3_k, TYPE_Q3_K, avx2)                                        \
  K(gemv, q5_k, TYPE_Q5_K, avx2) K(gemm, q5_k, TYPE_Q5_K, avx2)                                        \
  K(gemv, f32, TYPE_F32, avx2) K(gemm, f32, TYPE_F32, avx2)                                            \
  K(gemv, f16, TYPE_F16, avx2) K(gemm, f16, TYPE_F16, avx2)                                            \
  K(gemv, bf16, TYPE_BF16, avx2) K(gemm, bf16, TYPE_BF16, avx2)                                        \
  K(gather, f32, TYPE_F32, avx2) K(gather, f16, TYPE_F16, avx2)                                        \
  K(gather, q8_0, TYPE_Q8_0, avx2) K(gather, q4_0, TYPE_Q4_0, avx2)                                    \
  K(gather, q4_k, TYPE_Q4_K, avx2) K(gather, q5_k, TYPE_Q5_K, avx2) K(gather, q6_k, TYPE_Q6_K, avx2)   \
  FD_OPS_KERNELS(K, avx2) FD_TOPK_KERNELS(U, avx2)
#else
#define FD_KERNELS_AVX2(K, U)
#endif

#if defined(__aarch64__)
#define FD_HAVE_NEON_KERNELS 1
#define FD_KERNELS_NEON(K, U)                                                                          \
  K(gemv, q8_0, TYPE_Q8_0, neon) K(gemm, q8_0, TYPE_Q8_0, neon)                                        \
  K(gemv, q4_0, TYPE_Q4_0, neon) K(gemm, q4_0, TYPE_Q4_0, neon)                                        \
  K(gemv, q4_k, TYPE_Q4_K, neon) K(gemm, q4_k, TYPE_Q4_K, neon)                                        \
  K(gemv, q6_k, TYPE_Q6_K, neon) K(gemm, q6_k, TYPE_Q6_K, neon)                                        \
  K(gemv, q4_1, TYPE_Q4_1, neon) K(gemm, q4_1, TYPE_Q4_1, neon)                                        \
  K(gemv, q5_0, TYPE_Q5_0, neon) K(gemm, q5_0, TYPE_Q5_0, neon)                                        \
  K(gemv, q5_1, TYPE_Q5_1, neon) K(gemm, q5_1, TYPE_Q5_1, neon)                                        \
  K(gemv, q2_k, TYPE_Q2_K, neon) K(gemm, q2_k, TYPE_Q2_K, neon)                                        \
  K(gemv, q3_k, TYPE_Q3_K, neon) K(gemm, q3_k, TYPE_Q3_K, neon)                                        \
  K(gemv, q5_k, TYPE_Q5_K, neon) K(gemm, q5_k, TYPE_Q5_K, neon)                                        \
  K(gemv, f32, TYPE_F32, neon) K(gemm, f32, TYPE_F32, neon)                                            \
  K(gemv, f16, TYPE_F16, neon) K(gemm, f16, TYPE_F16, neon)                                            \
  K(gemv, bf16, TYPE_BF16, neon) K(gemm, bf16, TYPE_BF16, neon)                                        \
  K(gather, f32, TYPE_F32, neon) K(gather, f16, TYPE_F16, neon)                                        \
  K(gather, q8_0, TYPE_Q8_0, neon) K(gather, q4_0, TYPE_Q4_0, neon)                                    \
  K(gather, q4_k, TYPE_Q4_K, neon) K(gather, q5_k, TYPE_Q5_K, neon) K(gather, q6_k, TYPE_Q6_K, neon)   \
  FD_OPS_KERNELS(K, neon) FD_TOPK_KERNELS(U, neon)
// Dot-product kernels exist for the integer types only: the float types, the gathers (float FMAs and
// byte shuffles) and the ops fall back to the baseline NEON ones.
#define FD_KERNELS_NEON_DOTPROD(K, U)                                                                  \
  K(gemv, q8_0, TYPE_Q8_0, neon_dotprod) K(gemm, q8_0, TYPE_Q8_0, neon_dotprod)                        \
  K(gemv, q4_0, TYPE_Q4_0, neon_dotprod) K(gemm, q4_0, TYPE_Q4_0, neon_dotprod)                        \
  K(gemv, q4_k, TYPE_Q4_K, neon_dotprod) K(gemm, q4_k, TYPE_Q4_K, neon_dotprod)                        \
  K(gemv, q6_k, TYPE_Q6_K, neon_dotprod) K(gemm, q6_k, TYPE_Q6_K, neon_dotprod)                        \
  K(gemv, q4_1, TYPE_Q4_1, neon_dotprod) K(gemm, q4_1, TYPE_Q4_1, neon_dotprod)                        \
  K(gemv, q5_0, TYPE_Q5_0, neon_dotprod) K(gemm, q5_0, TYPE_Q5_0, neon_dotprod)                        \
  K(gemv, q5_1, TYPE_Q5_1, neon_dotprod) K(gemm, q5_1, TYPE_Q5_1, neon_dotprod)                        \
  K(gemv, q2_k, TYPE_Q2_K, neon_dotprod) K(gemm, q2_k, TYPE_Q2_K, neon_dotprod)                        \
  K(gemv, q3_k, TYPE_Q3_K, neon_dotprod) K(gemm, q3_k, TYPE_Q3_K, neon_dotprod)                        \
  K(gemv, q5_k, TYPE_Q5_K, neon_dotprod) K(gemm, q5_k, TYPE_Q5_K, neon_dotprod)
#else
#define FD_KERNELS_NEON(K, U)
#define FD_KERNELS_NEON_DOTPROD(K, U)
#endif

// The element-wise and attention kernels (flashdip/ops.h) and the top-k primitives (flashdip/sparse.h),
// which every SIMD ISA implements as a set.
#define FD_OPS_KERNELS(K, isa)                                                                         \
  K(rmsnorm, f32, TYPE_F32, isa) K(rope, f32, TYPE_F32, isa) K(softmax, f32, TYPE_F32, isa)            \
  K(silu_mul, f32, TYPE_F32, isa) K(exp, f32, TYPE_F32, isa)                                           \
  K(attn_scores, f32, TYPE_F32, isa) K(attn_scores, f16, TYPE_F16, isa)                                \
  K(attn_values, f32, TYPE_F32, isa) K(attn_values, f16, TYPE_F16, isa)
#define FD_TOPK_KERNELS(U, isa) \
  U(abs_hist, isa) U(weight_hist, isa) U(emit, isa) U(collect, isa) U(collect_range, isa)

// The whole list.
#define FD_KERNELS(K, U) \
  FD_KERNELS_SCALAR(K, U) FD_KERNELS_AVX2(K, U) FD_KERNELS_NEON(K, U) FD_KERNELS_NEON_DOTPROD(K, U)

// ---- signatures: one function-pointer type per op, and where its kernels are declared -------------
namespace kernel_fn {
using gemv = GemvFn;
using gemm = GemmFn;
using gather = sparse_impl::GatherFn;
using rmsnorm = ops_impl::RmsnormFn;
using rope = ops_impl::RopeFn;
using softmax = ops_impl::SoftmaxFn;
using silu_mul = ops_impl::SiluMulFn;
using exp = ops_impl::ExpFn;
using attn_scores = ops_impl::AttnScoresFn;
using attn_values = ops_impl::AttnValuesFn;
using abs_hist = sparse_impl::AbsHistFn;
using weight_hist = sparse_impl::WeightHistFn;
using emit = sparse_impl::EmitFn;
using collect = sparse_impl::CollectFn;
using collect_range = sparse_impl::CollectRangeFn;
template <class P>
struct fn_type;
template <class R, class... A>
struct fn_type<R (*)(A...)> {
  using type = R(A...);
};
}  // namespace kernel_fn

// The dense and element-wise kernels live in fd, the sparse ones (gather, top-k) in fd::sparse_impl.
#define FD_KERNEL_NS_gemv(decl) decl
#define FD_KERNEL_NS_gemm(decl) decl
#define FD_KERNEL_NS_rmsnorm(decl) decl
#define FD_KERNEL_NS_rope(decl) decl
#define FD_KERNEL_NS_softmax(decl) decl
#define FD_KERNEL_NS_silu_mul(decl) decl
#define FD_KERNEL_NS_exp(decl) decl
#define FD_KERNEL_NS_attn_scores(decl) decl
#define FD_KERNEL_NS_attn_values(decl) decl
#define FD_KERNEL_NS_gather(decl) namespace sparse_impl { decl }
#define FD_KERNEL_NS_abs_hist(decl) namespace sparse_impl { decl }
#define FD_KERNEL_NS_weight_hist(decl) namespace sparse_impl { decl }
#define FD_KERNEL_NS_emit(decl) namespace sparse_impl { decl }
#define FD_KERNEL_NS_collect(decl) namespace sparse_impl { decl }
#define FD_KERNEL_NS_collect_range(decl) namespace sparse_impl { decl }

#define FD_DECLARE_KERNEL(op, name, id, isa) \
  FD_KERNEL_NS_##op(kernel_fn::fn_type<kernel_fn::op>::type op##_##name##__##isa;)
#define FD_DECLARE_KERNEL_UNTYPED(op, isa) FD_KERNEL_NS_##op(kernel_fn::fn_type<kernel_fn::op>::type op##__##isa;)
FD_KERNELS(FD_DECLARE_KERNEL, FD_DECLARE_KERNEL_UNTYPED)
#undef FD_DECLARE_KERNEL
#undef FD_DECLARE_KERNEL_UNTYPED

// A registered function: the op its signature belongs to and the pointer.
struct KernelFn {
  KernelOp op = KernelOp::count;
  union {
    const void* none;
#define FD_KERNEL_FN_MEMBER(o) kernel_fn::o o;
    FD_KERNEL_OPS(FD_KERNEL_FN_MEMBER)
#undef FD_KERNEL_FN_MEMBER
  };
  constexpr KernelFn() : none(nullptr) {}
#define FD_KERNEL_FN_CTOR(o) \
  constexpr KernelFn(kernel_fn::o f) : op(KernelOp::o), o(f) {}
  FD_KERNEL_OPS(FD_KERNEL_FN_CTOR)
#undef FD_KERNEL_FN_CTOR
};

// Defines gemv_<name>__<isa> as the one-token case of gemm_<name>__<isa>.
#define FD_GEMV_FROM_GEMM(name, isa)                                                               \
  void gemv_##name##__##isa(const void* w, size_t row_stride, int64_t n, int64_t nrows,           \
                            const void* xq, float* y) {                                           \
    gemm_##name##__##isa(w, row_stride, n, nrows, xq, 0, 1, y, 0);                                \
  }

// Activation quantizers (scalar; a per-token cost, negligible next to the weight stream).
void quantize_row_q8_0_act(const float* x, block_q8_0* y, int64_t n);
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n);
void quantize_row_q8_1_act(const float* x, block_q8_1* y, int64_t n);  // kernels/quantize.cc

// Reference weight quantizers of kernels/quantize.cc (nb blocks each; quantize_row dispatches to them).
void quant_q4_1(const float* x, block_q4_1* b, int64_t nb);
void quant_q5_0(const float* x, block_q5_0* b, int64_t nb);
void quant_q5_1(const float* x, block_q5_1* b, int64_t nb);
void quant_q2_K(const float* x, block_q2_K* b, int64_t nb);
void quant_q3_K(const float* x, block_q3_K* b, int64_t nb);
void quant_q5_K(const float* x, block_q5_K* b, int64_t nb);

// Reference weight quantizers of kernels/quantize.cc (nb blocks each; quantize_row dispatches to them).
void quant_q4_1(const float* x, block_q4_1* b, int64_t nb);
void quant_q5_0(const float* x, block_q5_0* b, int64_t nb);
void quant_q5_1(const float* x, block_q5_1* b, int64_t nb);
void quant_q2_K(const float* x, block_q2_K* b, int64_t nb);
void quant_q3_K(const float* x, block_q3_K* b, int64_t nb);
void quant_q5_K(const float* x, block_q5_K* b, int64_t nb);

}  // namespace fd
