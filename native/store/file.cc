#include "flashdip/file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

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

// The guarded mappings, read by the signal handler without locks. A slot is claimed (`used`) by
// guard_mapping, then its range is published; unguard_mapping clears the range first.
struct Slot {
  std::atomic<bool> used{false};
  std::atomic<uintptr_t> begin{0}, end{0};
  std::atomic<bool> damaged{false};
};
static_assert(std::atomic<uintptr_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the SIGBUS handler needs lock-free atomics");
constexpr int kSlots = 256;  // models (and headers being read) mapped at once
Slot g_slots[kSlots];
uintptr_t g_page_mask = 0;
struct sigaction g_previous;  // written once, before the handler is installed

// Whether a fault at address a is in a guarded mapping; if so, zeros are mapped over the rest of it.
bool absorb(uintptr_t a) {
  for (Slot& s : g_slots) {
    const uintptr_t b = s.begin.load(std::memory_order_acquire), e = s.end.load(std::memory_order_acquire);
    if (a < b || a >= e) continue;
    // The file lost this page, so every later one too (or the device failed): zeros from here to
    // the end. Several threads may do this at once; each maps zeros, so any order is fine.
    const uintptr_t page = a & g_page_mask;
    if (mmap(reinterpret_cast<void*>(page), e - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
      return false;
    s.damaged.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

void on_sigbus(int sig, siginfo_t* info, void* uctx) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  // si_code > 0: a fault, not a kill(). Ours: the faulting read runs again and reads a zero.
  if (info->si_code > 0 && absorb(reinterpret_cast<uintptr_t>(info->si_addr))) {
    errno = saved_errno;
    return;
  }
  errno = saved_errno;
  // Not ours: the previous handler, else the default action (the fault repeats on return, or the
  // signal sent by kill() is raised again, and the process dies as it would have without us).
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, uctx);
  if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN)
    return g_previous.sa_handler(sig);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGBUS, &dfl, nullptr);
  if (info->si_code <= 0) raise(sig);  // delivered once this handler returns
}

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_page_mask = ~static_cast<uintptr_t>(sysconf(_SC_PAGESIZE) - 1);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous);
  });
}

}  // namespace

int guard_mapping(const void* base, size_t size) {
  install_handler();
  for (int i = 0; i < kSlots; ++i) {
    bool free = false;
    if (!g_slots[i].used.compare_exchange_strong(free, true)) continue;
    Slot& s = g_slots[i];
    s.damaged.store(false);
    s.end.store(0, std::memory_order_release);
    s.begin.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    s.end.store(reinterpret_cast<uintptr_t>(base) + size, std::memory_order_release);
    return i;
  }
  return -1;
}

void unguard_mapping(int slot) {
  if (slot < 0) return;
  Slot& s = g_slots[slot];
  s.end.store(0, std::memory_order_release);
  s.begin.store(0, std::memory_order_release);
  s.used.store(false, std::memory_order_release);
}

bool mapping_damaged(int slot) { return slot >= 0 && g_slots[slot].damaged.load(std::memory_order_acquire); }

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
