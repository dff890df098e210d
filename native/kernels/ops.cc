// The public entry points of flashdip/ops.h: preconditions (asserted in debug builds), then the kernel
// of the ISA in use (dispatch.cc keeps one OpsKernels per ISA in its table).
#include <cassert>
#include <cmath>
#include <limits>

#include "flashdip/quants.h"
#include "kernels/kernels_internal.h"

namespace fd {

using ops_impl::ops_kernels;

void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps) {
  assert(n >= 1 && "rmsnorm_f32: n must be >= 1");
  if (n <= 0) return;
  ops_kernels().rmsnorm(x, w, out, n, eps);
}

void rope_f32(float* v, int64_t heads, int64_t head_dim, int64_t rot, const float* cos, const float* sin, bool neox) {
  assert(rot >= 0 && rot % 2 == 0 && rot <= head_dim && "rope_f32: rot must be even and <= head_dim");
  if (heads <= 0 || rot <= 0 || rot % 2 != 0 || rot > head_dim) return;
  ops_kernels().rope(v, heads, head_dim, rot, cos, sin, neox);
}

void softmax_f32(float* x, int64_t n) {
  if (n <= 0) return;
  ops_kernels().softmax(x, n);
}

void silu_mul_f32(float* g, const float* u, float* h, int64_t n) {
  assert(h != g && "silu_mul_f32: h must not be g");
  if (n <= 0) return;
  ops_kernels().silu_mul(g, u, h, n);
}

static float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoefA = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
}

void gelu_mul_f32(float* g, const float* u, float* h, int64_t n) {
  assert(h != g && "gelu_mul_f32: h must not be g");
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    if (x <= -10.0f)
      g[i] = 0.0f;
    else if (x >= 10.0f)
      g[i] = x;
    else
      g[i] = fp16_to_fp32(fp32_to_fp16(gelu_tanh(fp16_to_fp32(fp32_to_fp16(x)))));
    h[i] = g[i] * u[i];
  }
}

void exp_f32(const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  ops_kernels().exp(x, y, n);
}

namespace {
int kv_slot(uint32_t kv_type) {
  return kv_type == TYPE_F32 ? ops_impl::KV_F32 : kv_type == TYPE_F16 ? ops_impl::KV_F16 : -1;
}
}  // namespace

void attn_scores(uint32_t kv_type, const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride,
                 int64_t len, float scale, float* s, int64_t s_stride) {
  const int slot = kv_slot(kv_type);
  assert(slot >= 0 && "attn_scores: kv_type must be f32 or f16");
  assert(s_stride >= len && "attn_scores: s_stride < len");
  if (nq <= 0 || len <= 0) return;
  if (slot < 0) {  // release build: NaN rather than stale values that look valid
    for (int64_t g = 0; g < nq; ++g)
      for (int64_t j = 0; j < len; ++j) s[g * s_stride + j] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  ops_kernels().attn_scores[slot](q, nq, hd, k, k_stride, len, scale, s, s_stride);
}

void attn_values(uint32_t kv_type, const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v,
                 size_t v_stride, int64_t len, float* out) {
  const int slot = kv_slot(kv_type);
  assert(slot >= 0 && "attn_values: kv_type must be f32 or f16");
  if (nq <= 0 || hd <= 0) return;
  if (slot < 0) {
    for (int64_t i = 0; i < nq * hd; ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  ops_kernels().attn_values[slot](p, p_stride, nq, hd, v, v_stride, len < 0 ? 0 : len, out);
}

}  // namespace fd
