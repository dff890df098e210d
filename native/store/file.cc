#include "flashdip/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "flashdip/error.h"

namespace fd {
namespace {

const char* kind(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

[[noreturn]] void not_regular(const std::string& path, mode_t m) {
  fail("ERR_IO", "'" + path + "' is " + kind(m) + ", not a regular file: models are read from regular files only");
}

}  // namespace

int open_regular(const std::string& path, int flags, bool quiet) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (quiet) return -1;
    fail("ERR_IO", "cannot open '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    if (quiet) return -1;
    not_regular(path, st.st_mode);
  }
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags);
  if (fd < 0) {
    if (quiet) return -1;
    fail("ERR_IO", "cannot open '" + path + "': " + std::strerror(errno));
  }
  const int fl = fcntl(fd, F_GETFL);
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    const int err = errno;
    const mode_t m = st.st_mode;
    close(fd);
    if (quiet) return -1;
    if (!S_ISREG(m)) not_regular(path, m);
    fail("ERR_IO", "cannot open '" + path + "': " + std::strerror(err));
  }
  return fd;
}

}  // namespace fd
