// Baseline AArch64 NEON kernels (every AArch64 CPU; Cortex-A53/A57/A72 use these). See gemm_neon.inc.
#define FD_NEON_NS neon_base
#define FD_NEON_DOTPROD 0
#include "kernels/arm/gemm_neon.inc"

namespace fd {

#define FD_NEON_GEMM(name, K)                                                                      \
  void gemm_##name##__neon(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq, \
                           size_t xq_stride, int64_t ntok, float* y, size_t y_stride) {            \
    gemm_tiled<neon_base::K>(w, row_stride, n, nrows, xq, xq_stride, ntok, y, y_stride);           \
  }                                                                                                \
  FD_GEMV_FROM_GEMM(name, neon)

FD_NEON_GEMM(q8_0, KQ80<false>)
FD_NEON_GEMM(q4_0, KQ80<true>)
FD_NEON_GEMM(q4_k, KQ4K)
FD_NEON_GEMM(q6_k, KQ6K)
FD_NEON_GEMM(q4_1, KQ4_1)
FD_NEON_GEMM(q5_0, KQ5_0)
FD_NEON_GEMM(q5_1, KQ5_1)
FD_NEON_GEMM(q2_k, KQ2K)
FD_NEON_GEMM(q3_k, KQ3K)
FD_NEON_GEMM(q5_k, KQ5K)
FD_NEON_GEMM(f32, KFloat<neon_base::LoadF32>)
FD_NEON_GEMM(f16, KFloat<neon_base::LoadF16>)
FD_NEON_GEMM(bf16, KFloat<neon_base::LoadBF16>)

}  // namespace fd
