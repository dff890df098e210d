#include "flashdip/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "flashdip/error.h"
#include "flashdip/file.h"

namespace fd {
namespace {

// An open file descriptor, closed on every path out.
struct Fd {
  int fd;
  explicit Fd(const std::string& path) : fd(open_regular(path)) {}
  ~Fd() { close(fd); }
};

}  // namespace

uint64_t page_cache_resident(const std::string& path) {
  Fd f(path);
  struct stat st;
  if (fstat(f.fd, &st) != 0) fail("ERR_IO", "cannot stat '" + path + "': " + std::strerror(errno));
  if (st.st_size == 0) return 0;
  const size_t size = static_cast<size_t>(st.st_size);
  const long page = sysconf(_SC_PAGESIZE);
  void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd, 0);
  if (m == MAP_FAILED) fail("ERR_IO", "cannot map '" + path + "': " + std::strerror(errno));
  const size_t pages = (size + static_cast<size_t>(page) - 1) / static_cast<size_t>(page);
  std::vector<unsigned char> vec(pages);
  const int rc = mincore(m, size, vec.data());
  const int err = errno;
  munmap(m, size);
  if (rc != 0) fail("ERR_IO", "mincore on '" + path + "' failed: " + std::strerror(err));
  uint64_t resident = 0;
  for (size_t i = 0; i < pages; ++i)
    if (vec[i] & 1) resident += (i + 1 == pages) ? size - i * static_cast<size_t>(page) : static_cast<size_t>(page);
  return resident;
}

void page_cache_drop(const std::string& path) {
  Fd f(path);
  const int rc = posix_fadvise(f.fd, 0, 0, POSIX_FADV_DONTNEED);  // returns the error, does not set errno
  if (rc != 0) fail("ERR_IO", "posix_fadvise(DONTNEED) on '" + path + "' failed: " + std::strerror(rc));
}

}  // namespace fd
