#include "flashdip/huge_pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <cstring>

namespace fd {
namespace {
constexpr size_t kHuge = size_t(2) << 20;
}

bool huge_pages_available() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool available = [] {
    FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    char line[128] = {0};
    const bool read = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    return read && (std::strstr(line, "[always]") || std::strstr(line, "[madvise]"));
  }();
  return available;
#else
  return false;
#endif
}

namespace {

// The first whitespace-separated number in `path` (`max` and a missing file give UINT64_MAX).
uint64_t read_limit(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return UINT64_MAX;
  unsigned long long v = 0;
  const bool ok = std::fscanf(f, "%llu", &v) == 1;
  std::fclose(f);
  return ok ? static_cast<uint64_t>(v) : UINT64_MAX;
}

// The memory limit of this process's cgroup: v2 ("0::/path" in /proc/self/cgroup) or v1 ("N:...memory...:/path").
uint64_t cgroup_limit() {
  FILE* f = std::fopen("/proc/self/cgroup", "r");
  if (!f) return UINT64_MAX;
  uint64_t limit = UINT64_MAX;
  char line[1024];
  while (std::fgets(line, sizeof line, f)) {
    std::string l(line);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    const size_t a = l.find(':'), b = a == std::string::npos ? a : l.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = l.substr(a + 1, b - a - 1), where = l.substr(b + 1);
    if (l.compare(0, a, "0") == 0 && controllers.empty())
      limit = std::min(limit, read_limit("/sys/fs/cgroup" + where + "/memory.max"));
    else if (("," + controllers + ",").find(",memory,") != std::string::npos)
      limit = std::min(limit, read_limit("/sys/fs/cgroup/memory" + where + "/memory.limit_in_bytes"));
  }
  std::fclose(f);
  return limit;
}

}  // namespace

uint64_t memory_headroom() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  uint64_t available = 0;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
      available = static_cast<uint64_t>(kb) * 1024;
      break;
    }
  }
  std::fclose(f);
  return std::min(available, cgroup_limit());
}

bool PageBuffer::allocate(size_t size, bool huge) {
  release();
  if (size == 0) return true;
  if (size > SIZE_MAX - 2 * kHuge) return false;
  // Over-map by one huge page so that the start can be aligned to one; the slack is unmapped.
  const size_t rounded = (size + kHuge - 1) / kHuge * kHuge;
  const size_t span = rounded + kHuge;
  void* m = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return false;
  const uintptr_t start = (reinterpret_cast<uintptr_t>(m) + kHuge - 1) / kHuge * kHuge;
  const size_t head = start - reinterpret_cast<uintptr_t>(m);
  if (head) munmap(m, head);
  if (span - head > rounded) munmap(reinterpret_cast<uint8_t*>(start) + rounded, span - head - rounded);
  map_ = reinterpret_cast<void*>(start);
  map_size_ = rounded;
#ifdef MADV_HUGEPAGE
  // Advisory (without THP the pages stay 4 KiB). Only the whole huge pages inside `size`: a huge page
  // over the tail would make the buffer hold up to 2 MiB more than asked once the tail is written.
  if (huge && size >= kHuge) madvise(map_, size / kHuge * kHuge, MADV_HUGEPAGE);
#else
  (void)huge;
#endif
  data_ = static_cast<uint8_t*>(map_);
  size_ = size;
  return true;
}

PageBuffer& PageBuffer::operator=(PageBuffer&& o) noexcept {
  if (this != &o) {
    release();
    map_ = o.map_, map_size_ = o.map_size_, data_ = o.data_, size_ = o.size_;
    o.map_ = nullptr, o.map_size_ = 0, o.data_ = nullptr, o.size_ = 0;
  }
  return *this;
}

void PageBuffer::release() {
  if (map_) munmap(map_, map_size_);
  map_ = nullptr, map_size_ = 0, data_ = nullptr, size_ = 0;
}

}  // namespace fd
