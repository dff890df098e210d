// Runtime kernel selection: one function table per ISA, chosen once at first use from CPU features
// and overridable with FLASHDIP_ISA=scalar|avx2|neon|neon-dotprod (or kernels_set_isa, for tests).
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

struct KernelTable {
  const char* name;
  GemvFn gemv[TYPE_COUNT];
  GemmFn gemm[TYPE_COUNT];
  ops_impl::OpsKernels ops;  // element-wise and attention kernels (flashdip/ops.h)
};

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

// ---- tables -------------------------------------------------------------------------------------

// Tables, ordered from least to most capable; only those available on this CPU are filled.
struct Registry {
  KernelTable tables[4];
  int count = 0;
  std::string available;  // "scalar,avx2"

  void add(const KernelTable& t) {
    tables[count++] = t;
    available += (available.empty() ? "" : ",");
    available += t.name;
  }

  Registry() {
    KernelTable scalar{};
    scalar.name = "scalar";
    scalar.ops = FD_OPS_TABLE(scalar, "scalar");
#define FD_FILL(isa, name, type) t.gemv[type] = gemv_##name##__##isa, t.gemm[type] = gemm_##name##__##isa;
#define FD_FILL_SCALAR(name, type) FD_FILL(scalar, name, type)
    {
      KernelTable& t = scalar;
      FD_COMPUTE_TYPES(FD_FILL_SCALAR)
    }
    add(scalar);
#if defined(FD_HAVE_AVX2_KERNELS)
    if (cpu_has_avx2_fma_f16c()) {
      KernelTable t = scalar;
      t.name = "avx2";
      t.ops = FD_OPS_TABLE(avx2, "avx2");
#define FD_FILL_AVX2(name, type) FD_FILL(avx2, name, type)
      FD_COMPUTE_TYPES(FD_FILL_AVX2)
      add(t);
    }
#endif
#if defined(FD_HAVE_NEON_KERNELS)
    {
      KernelTable t = scalar;
      t.name = "neon";
      t.ops = FD_OPS_TABLE(neon, "neon");
#define FD_FILL_NEON(name, type) FD_FILL(neon, name, type)
      FD_COMPUTE_TYPES(FD_FILL_NEON)
      add(t);
      if (cpu_has_dotprod()) {
        t.name = "neon-dotprod";  // float types (and the ops) keep the baseline NEON kernels
#define FD_FILL_NEON_DOTPROD(name, type) FD_FILL(neon_dotprod, name, type)
        FD_INT_TYPES(FD_FILL_NEON_DOTPROD)
        add(t);
      }
    }
#endif
  }

  const KernelTable* find(const char* name) const {
    for (int i = 0; i < count; ++i)
      if (std::strcmp(tables[i].name, name) == 0) return &tables[i];
    return nullptr;
  }
};

const Registry& registry() {
  static const Registry r;  // thread-safe one-time initialization
  return r;
}

std::atomic<const KernelTable*> g_table{nullptr};

const KernelTable* initial_table() {
  const Registry& r = registry();
  const KernelTable* best = &r.tables[r.count - 1];
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

namespace ops_impl {
const OpsKernels& ops_kernels() { return table().ops; }
const OpsKernels* ops_kernels_for(const char* isa) {
  const KernelTable* t = isa ? registry().find(isa) : nullptr;
  return t ? &t->ops : nullptr;
}
}  // namespace ops_impl

const char* kernels_isa() { return table().name; }

const char* kernels_available_isas() { return registry().available.c_str(); }

bool kernels_set_isa(const char* isa) {
  if (!isa) return false;
  table();  // make sure the first-use selection (and its env message) has happened
  const KernelTable* t = registry().find(isa);
  if (!t) return false;
  g_table.store(t, std::memory_order_release);
  return true;
}

// Activation types: q8_0 for q4_0/q8_0 weights, q8_k for the k-quants. f16 and bf16 weights take f32
// activations and are widened to f32 inside the kernels (more accurate than rounding x to f16, and the
// cost is hidden under the weight stream).
uint32_t vec_dot_type(uint32_t wtype) {
  switch (wtype) {
    case TYPE_Q4_0:
    case TYPE_Q8_0: return TYPE_Q8_0;
    case TYPE_Q4_K:
    case TYPE_Q6_K: return TYPE_Q8_K;
    default: return TYPE_F32;
  }
}

void quantize_activation(uint32_t wtype, const float* x, void* dst, int64_t n) {
  switch (vec_dot_type(wtype)) {
    case TYPE_Q8_0: quantize_row_q8_0_act(x, static_cast<block_q8_0*>(dst), n); return;
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
