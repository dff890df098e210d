// AArch64 kernels with the dot-product extension (SDOT; Cortex-A55/A76 and later), compiled with
// -march=armv8.2-a+dotprod+fp16 and called only when HWCAP_ASIMDDP is set. Integer types only; the
// float types use the baseline NEON kernels. See ../gemm_neon.inc.
#define FD_NEON_NS neon_dotprod
#define FD_NEON_DOTPROD 1
#include "kernels/arm/gemm_neon.inc"

namespace fd {

#define FD_NEON_DOTPROD_GEMM(name, K)                                                              \
  void gemm_##name##__neon_dotprod(const void* w, size_t row_stride, int64_t n, int64_t nrows,    \
                                   const void* xq, size_t xq_stride, int64_t ntok, float* y,      \
                                   size_t y_stride) {                                              \
    gemm_tiled<neon_dotprod::K>(w, row_stride, n, nrows, xq, xq_stride, ntok, y, y_stride);        \
  }                                                                                                \
  FD_GEMV_FROM_GEMM(name, neon_dotprod)

FD_NEON_DOTPROD_GEMM(q8_0, KQ80<false>)
FD_NEON_DOTPROD_GEMM(q4_0, KQ80<true>)
FD_NEON_DOTPROD_GEMM(q4_k, KQ4K)
FD_NEON_DOTPROD_GEMM(q6_k, KQ6K)
FD_NEON_DOTPROD_GEMM(q4_1, KQ4_1)
FD_NEON_DOTPROD_GEMM(q5_0, KQ5_0)
FD_NEON_DOTPROD_GEMM(q5_1, KQ5_1)
FD_NEON_DOTPROD_GEMM(q2_k, KQ2K)
FD_NEON_DOTPROD_GEMM(q3_k, KQ3K)
FD_NEON_DOTPROD_GEMM(q5_k, KQ5K)

}  // namespace fd
