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

// ---- the kernel registry ---------------------------------------------------------------------
// Every kernel compiled into this build is one line of FD_KERNELS (kernels/kernels_internal.h): an
// (op, type, isa, function) entry. Dispatch builds its per-ISA tables from that list; the native tests,
// the benchmarks and kernels.info() iterate it.

// The ISAs, from least to most capable: X(identifier, name as FLASHDIP_ISA spells it).
#define FD_ISAS(X) X(scalar, "scalar") X(avx2, "avx2") X(neon, "neon") X(neon_dotprod, "neon-dotprod")
#define FD_ISA_ENUM(id, name) id,
enum class Isa : uint8_t { FD_ISAS(FD_ISA_ENUM) count };
#undef FD_ISA_ENUM
const char* isa_name(Isa isa);
// The one ISA-name parser: false (and *out unchanged) for a name that is not in FD_ISAS.
bool isa_from_name(const char* name, Isa* out);
// The ISA whose kernels fill the slots `isa` has no kernel for: neon-dotprod -> neon -> scalar,
// avx2 -> scalar (scalar for scalar).
Isa isa_fallback(Isa isa);
// Whether this build and CPU can run the ISA's kernels.
bool isa_available(Isa isa);

// The kernel operations. Types: the weight/row/KV type the kernel reads; TYPE_NONE for the top-k
// primitives (abs_hist .. collect_range), which work on float scores and their bit patterns.
#define FD_KERNEL_OPS(X)                                                                             \
  X(gemv) X(gemm) X(gather) X(rmsnorm) X(rope) X(softmax) X(silu_mul) X(exp) X(attn_scores)         \
  X(attn_values) X(abs_hist) X(weight_hist) X(emit) X(collect) X(collect_range)
#define FD_KERNEL_OP_ENUM(op) op,
enum class KernelOp : uint8_t { FD_KERNEL_OPS(FD_KERNEL_OP_ENUM) count };
#undef FD_KERNEL_OP_ENUM
const char* kernel_op_name(KernelOp op);
constexpr uint32_t TYPE_NONE = TYPE_COUNT;

struct KernelInfo {
  KernelOp op;
  uint32_t type;         // a TYPE_* id, or TYPE_NONE
  Isa isa;
  const char* function;  // "gemv_q4_0__avx2"
};
// The registry, in its list order (entries of ISAs this CPU lacks included).
size_t kernel_count();
const KernelInfo& kernel_info(size_t i);
// The registered kernel dispatch runs for (op, type) at `isa` (the ISA's own entry, else its
// fallback's); nullptr when there is none or the CPU lacks the ISA.
const KernelInfo* kernel_selected(KernelOp op, uint32_t type, Isa isa);
// The same at the ISA in use (kernels_isa()).
const KernelInfo* kernel_active(KernelOp op, uint32_t type);

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
