// What the native test binaries share: pass/fail counting with a printf-style message for failures
// (and, with g_verbose, for passes), and the list of ISAs this CPU can run.
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

// kernels_available_isas() split at the commas.
inline std::vector<std::string> isas() {
  std::vector<std::string> out;
  const std::string s = fd::kernels_available_isas();
  for (size_t p = 0; p <= s.size();) {
    size_t c = s.find(',', p);
    if (c == std::string::npos) c = s.size();
    if (c > p) out.push_back(s.substr(p, c - p));
    p = c + 1;
  }
  return out;
}

}  // namespace fd_test
