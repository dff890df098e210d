// What the native test binaries share: pass/fail counting with a printf-style message for failures
// (and, with g_verbose, for passes), the list of ISAs this CPU can run, and the check that every
// registered kernel was tested.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <string>
#include <vector>

#include "flashdip/kernels.h"

namespace fd_test {

inline int g_passed = 0, g_failed = 0;
inline bool g_verbose = false;  // print the passing checks too

inline bool check(bool ok, const char* fmt, ...) {
  if (ok) ++g_passed;
  else ++g_failed;
  if (ok && !g_verbose) return true;
  std::FILE* out = ok ? stdout : stderr;
  std::fputs(ok ? "ok: " : "FAIL: ", out);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(out, fmt, ap);
  va_end(ap);
  std::fputc('\n', out);
  return ok;
}

// The ISAs this CPU can run, least capable first (the registry's ISA list).
inline std::vector<std::string> isas() {
  std::vector<std::string> out;
  for (size_t i = 0; i < static_cast<size_t>(fd::Isa::count); ++i)
    if (fd::isa_available(static_cast<fd::Isa>(i))) out.push_back(fd::isa_name(static_cast<fd::Isa>(i)));
  return out;
}

// ---- every registered kernel is tested ------------------------------------------------------------
// The test binary that exercises each op's kernels (every ISA's against the scalar twin, the scalar
// twin against a reference). A new op must be given one here (the size is checked at compile time).
inline constexpr const char* kTestedIn[] = {
    "test_kernels",  // gemv
    "test_kernels",  // gemm
    "test_sparse",   // gather
    "test_ops",      // rmsnorm
    "test_ops",      // rope
    "test_ops",      // softmax
    "test_ops",      // silu_mul
    "test_ops",      // exp
    "test_ops",      // attn_scores
    "test_ops",      // attn_values
    "test_sparse",   // abs_hist
    "test_sparse",   // weight_hist
    "test_sparse",   // emit
    "test_sparse",   // collect
    "test_sparse",   // collect_range
};
static_assert(sizeof kTestedIn / sizeof kTestedIn[0] == static_cast<size_t>(fd::KernelOp::count),
              "kTestedIn: one test binary per kernel op");

inline std::vector<const fd::KernelInfo*> g_tested;

// Records that a test ran the kernel dispatch selects for (op, type) at `isa` (and compared it with
// its scalar twin or a reference).
inline void tested(fd::KernelOp op, uint32_t type, const std::string& isa) {
  fd::Isa i;
  if (!fd::isa_from_name(isa.c_str(), &i)) return;
  if (const fd::KernelInfo* k = fd::kernel_selected(op, type, i)) g_tested.push_back(k);
}

// Fails for each registered kernel of this binary's ops that no test ran, on the ISAs this CPU has
// (the others are listed: a CPU or emulator with them runs them, e.g. qemu-aarch64 -cpu max).
inline void check_registry_tested(const char* binary) {
  int count = 0, untestable = 0;
  for (size_t i = 0; i < fd::kernel_count(); ++i) {
    const fd::KernelInfo& k = fd::kernel_info(i);
    if (std::string(kTestedIn[static_cast<size_t>(k.op)]) != binary) continue;
    if (!fd::isa_available(k.isa)) {
      std::printf("  not testable on this CPU: %s\n", k.function);
      ++untestable;
      continue;
    }
    bool seen = false;
    for (const fd::KernelInfo* t : g_tested) seen = seen || t == &k;
    check(seen, "registered kernel %s is tested", k.function);
    ++count;
  }
  std::printf("  %d registered kernels tested by %s (%d of other ISAs)\n", count, binary, untestable);
}

}  // namespace fd_test
