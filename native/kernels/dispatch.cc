// Runtime kernel selection: the kernel registry (FD_KERNELS in kernels_internal.h) and the function
// table per ISA built from it, chosen once at first use from CPU features and overridable with FLASHDIP_ISA=scalar|avx2|neon|neon-dotprod (or kernels_set_isa, for tests).
//
// ISA levels and the CPUs they target:
//   scalar        everything (the oracle; also forced with FLASHDIP_ISA=scalar)
//   avx2          x86-64 with AVX2 + FMA + F16C and OS-enabled YMM state: Intel Haswell (2013) and
//                 later, AMD Zen 1 and later (Excavator too). Checked with cpuid + xgetbv.
//   neon          every AArch64 CPU (ASIMD is mandatory there; Cortex-A53/A57/A72, Apple M*).
//   neon-dotprod  AArch64 with SDOT/UDOT (HWCAP_ASIMDDP): Cortex-A55/A75/A76 and later, most phones
//                 since 2018, Apple M*, Graviton 2+.
#include <atomic>
#include <cassert>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/kernels_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && (defined(__linux__) || defined(__ANDROID__))
#include <sys/auxv.h>
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace fd {
namespace {

using namespace sparse_impl;  // the gather and top-k kernels' names

// ---- the registry (FD_KERNELS, kernels_internal.h) -------------------------------------------------

struct Kernel {
  KernelInfo info;
  KernelFn fn;
};

#define FD_ENTRY(op, name, type, isa) \
  Kernel{{KernelOp::op, type, Isa::isa, #op "_" #name "__" #isa}, KernelFn(op##_##name##__##isa)},
#define FD_ENTRY_UNTYPED(op, isa) Kernel{{KernelOp::op, TYPE_NONE, Isa::isa, #op "__" #isa}, KernelFn(op##__##isa)},
constexpr Kernel kKernels[] = {FD_KERNELS(FD_ENTRY, FD_ENTRY_UNTYPED)};
#undef FD_ENTRY
#undef FD_ENTRY_UNTYPED

// Each line's function has its op's signature (KernelFn's constructor picked the op from the type).
constexpr bool signatures_match() {
  for (const Kernel& k : kKernels)
    if (k.fn.op != k.info.op || k.info.type > TYPE_NONE) return false;
  return true;
}
static_assert(signatures_match(), "FD_KERNELS: a kernel registered under another op's name");

constexpr const char* kIsaNames[] = {
#define FD_ISA_NAME(id, name) name,
    FD_ISAS(FD_ISA_NAME)
#undef FD_ISA_NAME
};
constexpr const char* kOpNames[] = {
#define FD_OP_NAME(op) #op,
    FD_KERNEL_OPS(FD_OP_NAME)
#undef FD_OP_NAME
};
constexpr size_t kOps = static_cast<size_t>(KernelOp::count);
constexpr size_t kIsas = static_cast<size_t>(Isa::count);
constexpr size_t kSlots = TYPE_NONE + 1;  // per op: one slot per type id, the last for TYPE_NONE

// ---- CPU feature detection ----------------------------------------------------------------------

#if defined(FD_HAVE_AVX2_KERNELS)
bool cpu_has_avx2_fma_f16c() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  // The OS must save XMM and YMM state (XCR0 bits 1 and 2).
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 6u) != 6u) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return b & (1u << 5);  // AVX2
}
#endif

#if defined(FD_HAVE_NEON_KERNELS)
bool cpu_has_dotprod() {
#if defined(__linux__) || defined(__ANDROID__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  return (hwcap & (1ul << 20)) != 0;  // HWCAP_ASIMDDP
#elif defined(__APPLE__)
  int v = 0;
  size_t len = sizeof v;
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, nullptr, 0) == 0 && v != 0;
#else
  return false;
#endif
}
#endif

bool cpu_runs(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
#if defined(FD_HAVE_AVX2_KERNELS)
    case Isa::avx2: return cpu_has_avx2_fma_f16c();
#endif
#if defined(FD_HAVE_NEON_KERNELS)
    case Isa::neon: return true;  // ASIMD is mandatory on AArch64
    case Isa::neon_dotprod: return cpu_has_dotprod();
#endif
    default: return false;  // not compiled into this build
  }
}

// ---- tables -------------------------------------------------------------------------------------

// One ISA's kernels: its own registry entries, the rest from its fallback ISA's table.
struct KernelTable {
  Isa isa;
  const char* name;
  const Kernel* k[kOps][kSlots];  // the registry entry per (op, type); nullptr: none
  GemvFn gemv[TYPE_COUNT];        // the hot paths, copied out of k
  GemmFn gemm[TYPE_COUNT];
  ops_impl::OpsKernels ops;       // element-wise and attention kernels (flashdip/ops.h)
  SparseKernels sparse;           // gather and top-k primitives (flashdip/sparse.h)

  const Kernel* at(KernelOp op, uint32_t type) const { return k[static_cast<size_t>(op)][type]; }
  KernelFn fn(KernelOp op, uint32_t type) const {
    const Kernel* e = at(op, type);
    return e ? e->fn : KernelFn();
  }
  // The ISA a set of kernels comes from ("neon" for neon-dotprod's ops), named by one of them.
  const char* source(KernelOp op, uint32_t type) const {
    const Kernel* e = at(op, type);
    return e ? kIsaNames[static_cast<size_t>(e->info.isa)] : name;
  }

  void derive_views() {
    for (uint32_t t = 0; t < TYPE_COUNT; ++t) {
      gemv[t] = fn(KernelOp::gemv, t).gemv;
      gemm[t] = fn(KernelOp::gemm, t).gemm;
      sparse.gather[t] = fn(KernelOp::gather, t).gather;
    }
    ops = ops_impl::OpsKernels{source(KernelOp::rmsnorm, TYPE_F32),
                               fn(KernelOp::rmsnorm, TYPE_F32).rmsnorm,
                               fn(KernelOp::rope, TYPE_F32).rope,
                               fn(KernelOp::softmax, TYPE_F32).softmax,
                               fn(KernelOp::silu_mul, TYPE_F32).silu_mul,
                               fn(KernelOp::exp, TYPE_F32).exp,
                               {fn(KernelOp::attn_scores, TYPE_F32).attn_scores, fn(KernelOp::attn_scores, TYPE_F16).attn_scores},
                               {fn(KernelOp::attn_values, TYPE_F32).attn_values, fn(KernelOp::attn_values, TYPE_F16).attn_values}};
    sparse.isa = source(KernelOp::gather, TYPE_F32);
    sparse.abs_hist = fn(KernelOp::abs_hist, TYPE_NONE).abs_hist;
    sparse.weight_hist = fn(KernelOp::weight_hist, TYPE_NONE).weight_hist;
    sparse.emit = fn(KernelOp::emit, TYPE_NONE).emit;
    sparse.collect = fn(KernelOp::collect, TYPE_NONE).collect;
    sparse.collect_range = fn(KernelOp::collect_range, TYPE_NONE).collect_range;
  }
};

// The tables of the ISAs this CPU runs, built from the registry in FD_ISAS order (least capable first,
// so a fallback's table is complete before the ISAs that fall back to it).
struct Registry {
  KernelTable tables[kIsas];
  bool have[kIsas] = {};
  Isa best = Isa::scalar;
  std::string available;  // "scalar,avx2"

  Registry() {
    for (size_t i = 0; i < kIsas; ++i) {
      const Isa isa = static_cast<Isa>(i);
      if (!cpu_runs(isa)) continue;
      KernelTable& t = tables[i];
      if (isa == Isa::scalar) {
        t = KernelTable{};
      } else {
        t = tables[static_cast<size_t>(isa_fallback(isa))];
      }
      t.isa = isa;
      t.name = kIsaNames[i];
      for (const Kernel& e : kKernels)
        if (e.info.isa == isa) t.k[static_cast<size_t>(e.info.op)][e.info.type] = &e;
      t.derive_views();
      have[i] = true;
      best = isa;
      available += (available.empty() ? "" : ",");
      available += t.name;
    }
  }

  const KernelTable* find(Isa isa) const {
    const size_t i = static_cast<size_t>(isa);
    return i < kIsas && have[i] ? &tables[i] : nullptr;
  }
  const KernelTable* find(const char* name) const {
    Isa isa;
    return isa_from_name(name, &isa) ? find(isa) : nullptr;
  }
};

const Registry& registry() {
  static const Registry r;  // thread-safe one-time initialization
  return r;
}

std::atomic<const KernelTable*> g_table{nullptr};

const KernelTable* initial_table() {
  const Registry& r = registry();
  const KernelTable* best = r.find(r.best);
  const char* env = std::getenv("FLASHDIP_ISA");
  if (env && *env) {
    if (const KernelTable* t = r.find(env)) return t;
    std::fprintf(stderr, "flashdip: FLASHDIP_ISA=%s is not available on this CPU (have %s); using %s\n", env,
                 r.available.c_str(), best->name);
  }
  return best;
}

const KernelTable& table() {
  const KernelTable* t = g_table.load(std::memory_order_acquire);
  if (!t) {
    static const KernelTable* const first = initial_table();
    const KernelTable* expected = nullptr;
    g_table.compare_exchange_strong(expected, first, std::memory_order_acq_rel);
    t = g_table.load(std::memory_order_acquire);
  }
  return *t;
}

}  // namespace

// ---- the registry's public side -------------------------------------------------------------------

const char* isa_name(Isa isa) {
  const size_t i = static_cast<size_t>(isa);
  return i < kIsas ? kIsaNames[i] : "unknown";
}

bool isa_from_name(const char* name, Isa* out) {
  if (!name) return false;
  for (size_t i = 0; i < kIsas; ++i)
    if (std::strcmp(name, kIsaNames[i]) == 0) {
      *out = static_cast<Isa>(i);
      return true;
    }
  return false;
}

Isa isa_fallback(Isa isa) {
  switch (isa) {
    case Isa::neon_dotprod: return Isa::neon;
    default: return Isa::scalar;
  }
}

bool isa_available(Isa isa) { return registry().find(isa) != nullptr; }

const char* kernel_op_name(KernelOp op) {
  const size_t i = static_cast<size_t>(op);
  return i < kOps ? kOpNames[i] : "unknown";
}

size_t kernel_count() { return sizeof kKernels / sizeof kKernels[0]; }

const KernelInfo& kernel_info(size_t i) { return kKernels[i].info; }

const KernelInfo* kernel_selected(KernelOp op, uint32_t type, Isa isa) {
  const KernelTable* t = registry().find(isa);
  if (!t || static_cast<size_t>(op) >= kOps || type > TYPE_NONE) return nullptr;
  const Kernel* e = t->at(op, type);
  return e ? &e->info : nullptr;
}

const KernelInfo* kernel_active(KernelOp op, uint32_t type) { return kernel_selected(op, type, table().isa); }

namespace ops_impl {
const OpsKernels& ops_kernels() { return table().ops; }
const OpsKernels* ops_kernels_for(const char* isa) {
  const KernelTable* t = registry().find(isa);
  return t ? &t->ops : nullptr;
}
}  // namespace ops_impl

namespace sparse_impl {
const SparseKernels& sparse_kernels() { return table().sparse; }
const SparseKernels* sparse_kernels_for(const char* isa) {
  const KernelTable* t = registry().find(isa);
  return t ? &t->sparse : nullptr;
}
}  // namespace sparse_impl

const char* kernels_isa() { return table().name; }

const char* kernels_available_isas() { return registry().available.c_str(); }

bool kernels_set_isa(const char* isa) {
  table();  // make sure the first-use selection (and its env message) has happened
  const KernelTable* t = registry().find(isa);
  if (!t) return false;
  g_table.store(t, std::memory_order_release);
  return true;
}

// Activation types (as llama.cpp): q8_0 for q4_0/q5_0/q8_0 weights, q8_1 (q8_0 plus d * sum(q)) for
// the affine q4_1/q5_1, q8_k for the k-quants. f16 and bf16 weights take f32
// activations and are widened to f32 inside the kernels (more accurate than rounding x to f16, and the
// cost is hidden under the weight stream).
uint32_t vec_dot_type(uint32_t wtype) {
  switch (wtype) {
    case TYPE_Q4_0:
    case TYPE_Q5_0:
    case TYPE_Q8_0: return TYPE_Q8_0;
    case TYPE_Q4_1:
    case TYPE_Q5_1: return TYPE_Q8_1;
    case TYPE_Q2_K:
    case TYPE_Q3_K:
    case TYPE_Q4_K:
    case TYPE_Q5_K:
    case TYPE_Q6_K: return TYPE_Q8_K;
    default: return TYPE_F32;
  }
}

void quantize_activation(uint32_t wtype, const float* x, void* dst, int64_t n) {
  switch (vec_dot_type(wtype)) {
    case TYPE_Q8_0: quantize_row_q8_0_act(x, static_cast<block_q8_0*>(dst), n); return;
    case TYPE_Q8_1: quantize_row_q8_1_act(x, static_cast<block_q8_1*>(dst), n); return;
    case TYPE_Q8_K: quantize_row_q8_K(x, static_cast<block_q8_K*>(dst), n); return;
    default: std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float)); return;
  }
}

namespace {
// Preconditions (the caller's job, asserted in debug builds). An unsupported wtype in a release build
// fills the outputs with NaN rather than leaving stale values that look valid.
bool gemm_args_ok(uint32_t wtype, int64_t n, size_t row_stride, int64_t nrows) {
  const TypeTraits* t = type_traits(wtype);
  assert(t && t->can_compute && "gemv/gemm: weight type without dense kernels");
  assert(n >= 0 && t && n % t->block_size == 0 && "gemv/gemm: n must be a whole number of blocks");
  assert((nrows <= 1 || row_stride >= row_bytes(wtype, n)) && "gemv/gemm: rows overlap");
  (void)n, (void)row_stride, (void)nrows;
  return t && t->can_compute;
}
}  // namespace

void gemv(uint32_t wtype, const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
          float* y) {
  if (nrows <= 0) return;
  const GemvFn f = gemm_args_ok(wtype, n, row_stride, nrows) ? table().gemv[wtype] : nullptr;
  if (f) {
    f(w, row_stride, n, nrows, xq, y);
  } else {
    for (int64_t r = 0; r < nrows; ++r) y[r] = std::numeric_limits<float>::quiet_NaN();
  }
}

void gemm(uint32_t wtype, const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq,
          size_t xq_stride, int64_t ntok, float* y, size_t y_stride) {
  if (nrows <= 0 || ntok <= 0) return;
  const GemmFn f = gemm_args_ok(wtype, n, row_stride, nrows) ? table().gemm[wtype] : nullptr;
  if (f) {
    f(w, row_stride, n, nrows, xq, xq_stride, ntok, y, y_stride);
  } else {
    for (int64_t t = 0; t < ntok; ++t)
      for (int64_t r = 0; r < nrows; ++r) y[static_cast<size_t>(t) * y_stride + static_cast<size_t>(r)] = std::numeric_limits<float>::quiet_NaN();
  }
}

}  // namespace fd
