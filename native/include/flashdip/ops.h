// Element-wise and attention kernels of the forward pass: RMS norm, RoPE, softmax, SwiGLU's
// silu(g) * u, and single-query attention over the KV cache. Dumb C-style signatures over raw
// pointers, like kernels.h. Every function has a scalar twin (the oracle, kernels/scalar/ops_scalar.cc)
// and SIMD versions (x86/ops_avx2.cc: AVX2 + FMA + F16C; arm/ops_neon.cc: baseline AArch64 NEON) picked
// by the kernel dispatch (kernels_isa(); FLASHDIP_ISA and kernels_set_isa() switch these too).
// Preconditions are the caller's job; they are asserted in debug builds.
//
// Pointers need only their natural alignment (4 bytes for float, 2 for f16 rows). Unless stated, the
// output of a kernel must not overlap its inputs except where it is the same array (element i read
// before element i is written).
//
// Accuracy of the SIMD versions against their scalar twins: the bounds native/test/test_ops.cc checks
// (eps = 2^-24), and in brackets the worst case it measured (AVX2 on x86-64; NEON under qemu).
//   rmsnorm    the sum of squares is accumulated in double lanes, as the twin (and ggml) do, so the
//              output is identical unless the other order of the double sum changes the rounding of
//              the mean to float: bound 4 ulp [identical on every tested output].
//   rope       FMA instead of a product and a sum: |diff| <= 2 eps (|x0 c| + |x1 s|) [1.7; NEON: 0, the
//              twin is contracted to FMAs there too].
//   exp        the vector expf: at most 1 ulp from glibc's std::exp over every float in [-104, 89]
//              (all 2.24e9 of them, AVX2, test_ops --exp-sweep; NEON: the same on a strided 4.4M
//              sample), subnormal results within 2^-149; exp(-inf) = 0, exp(+inf) = +inf, NaN -> NaN.
//   softmax    exp as above, the sum in double lanes: |diff| <= 8 eps |out| + 8 x 2^-149 [3.3 eps].
//   silu_mul   exp as above and one division: g within 8 eps, h within 10 eps relative [3.6, 3.9].
//   attention  scores: products summed in 8 (AVX2) or 4 (NEON) lanes then a tree, within
//              2 gamma_{hd+1} scale sum |q_i k_i| [0.95]; values: summed over j in order with FMA,
//              within 2 gamma_{len+1} sum |p_j v_j| [0.9], gamma_n = n eps / (1 - n eps).
// End to end (stories260K vs llama.cpp, f32 KV): max |logit diff| 5.49e-5 with these kernels, 5.38e-5
// before them (scalar twins: 5.74e-5, unchanged); the same greedy tokens.
#pragma once
#include <cstddef>
#include <cstdint>

#include "flashdip/types.h"

namespace fd {

// out[i] = x[i] * scale * w[i], scale = 1 / sqrt(mean(x^2) + eps), the mean of the float squares
// summed in double (as ggml does, so the norm matches llama.cpp's to the last bits). n >= 1; out may
// be x.
void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps);

// Rotary embedding, in place, of `heads` heads of head_dim floats each (head h at v + h * head_dim):
// the first `rot` dimensions of each head (rot even, rot <= head_dim) are rotated by the angles whose
// cosines and sines are cos[0..rot/2) and sin[0..rot/2); the rest are left alone. Pair i is
// (2i, 2i+1) (normal, Llama) or (i, i + rot/2) (neox):
//     x0' = x0 c_i - x1 s_i,   x1' = x0 s_i + x1 c_i.
void rope_f32(float* v, int64_t heads, int64_t head_dim, int64_t rot, const float* cos, const float* sin, bool neox);

// In place: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max) over i < n (n >= 1; the sum in double).
// Finite inputs assumed; an input of +inf or NaN gives NaNs.
void softmax_f32(float* x, int64_t n);

// SwiGLU: g[i] = silu(g[i]) = g[i] / (1 + exp(-g[i])), then h[i] = g[i] * u[i], for i < n. g keeps
// silu(g) (the 'gate' sparsity method ranks by it). h may be u (same array), not g.
void silu_mul_f32(float* g, const float* u, float* h, int64_t n);

// GeGLU (gemma): g[i] = gelu(g[i]), then h[i] = g[i] * u[i], for i < n; same aliasing as
// silu_mul_f32. The GELU is the tanh approximation 0.5 g (1 + tanh(sqrt(2/pi) g (1 + 0.044715 g^2)))
// computed as llama.cpp's CPU backend does with its f16 table: 0 below -10, g above 10, otherwise the
// input rounded to f16 and the result rounded to f16 (the exact formula misses llama.cpp's logits by
// ~1e-3 on a 6-layer gemma3).
void gelu_mul_f32(float* g, const float* u, float* h, int64_t n);

// y[i] = exp(x[i]) for i < n (y may be x). The vector expf of the softmax and silu kernels, exposed
// for tests and benchmarks.
void exp_f32(const float* x, float* y, int64_t n);

// ---- single-query attention over a KV cache --------------------------------------------------------
// kv_type: TYPE_F32 or TYPE_F16 (rows converted to f32 exactly). Row j of K (or V) is hd elements at
// k + j * k_stride bytes (so one KV head of a cache row is addressed by its byte offset in the row).
// The nq query heads that share that KV head are q[g * hd .. (g + 1) * hd), g < nq.

// s[g * s_stride + j] = scale * dot(q_g, K_j) for g < nq, j < len (s_stride >= len). Entries j >= len
// are not written.
void attn_scores(uint32_t kv_type, const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride,
                 int64_t len, float scale, float* s, int64_t s_stride);

// out[g * hd + i] = sum_{j < len} p[g * p_stride + j] * V_j[i] for g < nq, i < hd (summed over j in
// order; len = 0 writes zeros). p[g * p_stride + j] for j >= len is not read.
void attn_values(uint32_t kv_type, const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v,
                 size_t v_stride, int64_t len, float* out);

// ---- per-ISA implementations (for the dispatcher, the tests and the benchmark) --------------------
namespace ops_impl {

using RmsnormFn = void (*)(const float* x, const float* w, float* out, int64_t n, float eps);
using RopeFn = void (*)(float* v, int64_t heads, int64_t head_dim, int64_t rot, const float* cos, const float* sin,
                        bool neox);
using SoftmaxFn = void (*)(float* x, int64_t n);
using SiluMulFn = void (*)(float* g, const float* u, float* h, int64_t n);
using ExpFn = void (*)(const float* x, float* y, int64_t n);
using AttnScoresFn = void (*)(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                              float scale, float* s, int64_t s_stride);
using AttnValuesFn = void (*)(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v,
                              size_t v_stride, int64_t len, float* out);

enum { KV_F32 = 0, KV_F16 = 1, KV_TYPES = 2 };

struct OpsKernels {
  const char* isa;  // "scalar", "avx2", "neon" (neon-dotprod uses the neon kernels)
  RmsnormFn rmsnorm;
  RopeFn rope;
  SoftmaxFn softmax;
  SiluMulFn silu_mul;
  ExpFn exp;
  AttnScoresFn attn_scores[KV_TYPES];
  AttnValuesFn attn_values[KV_TYPES];
};

// The table of an ISA name as kernels_available_isas() spells it, or nullptr when this CPU lacks it.
const OpsKernels* ops_kernels_for(const char* isa);
// The table in use (follows kernels_isa()).
const OpsKernels& ops_kernels();

}  // namespace ops_impl
}  // namespace fd
