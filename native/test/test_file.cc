// Native tests for flashdip/file.h: open_regular refuses a FIFO (without blocking), a device and a
// directory; the SIGBUS guard gives zeros for the lost pages of a truncated file, also to several
// threads at once, marks the mapping damaged, and leaves every other SIGBUS to the handler installed
// before it (or to the default action, which kills). Prints "N passed, M failed" last.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "flashdip/error.h"
#include "flashdip/file.h"

using fd_test::check;

#if defined(__SANITIZE_ADDRESS__)
#define FD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FD_TEST_ASAN 1
#endif
#endif

namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

std::string tmp_path(const char* name) { return "/tmp/flashdip-test-file-" + std::to_string(getpid()) + "-" + name; }

// A file of `pages` pages, page i filled with the byte i + 1, mapped read-only.
struct Mapped {
  std::string path;
  int fd = -1;
  uint8_t* base = nullptr;
  size_t size = 0;
  Mapped(const char* name, size_t pages) : path(tmp_path(name)), size(pages * kPage) {
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    std::vector<uint8_t> buf(size);
    for (size_t i = 0; i < size; ++i) buf[i] = static_cast<uint8_t>(i / kPage + 1);
    if (write(fd, buf.data(), size) != static_cast<ssize_t>(size)) std::perror("write");
    base = static_cast<uint8_t*>(mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0));
  }
  ~Mapped() {
    munmap(base, size);
    close(fd);
    unlink(path.c_str());
  }
};

// Reads one byte of every page; volatile so the compiler keeps every read.
unsigned sum_pages(const uint8_t* base, size_t from, size_t to) {
  unsigned s = 0;
  for (size_t p = from; p < to; ++p) s += *static_cast<const volatile uint8_t*>(base + p * kPage + 7);
  return s;
}

// Runs fn in a child process; returns its wait status.
template <class Fn>
int in_child(Fn fn) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

void on_bus_exit42(int, siginfo_t*, void*) { _exit(42); }

bool refused(const std::string& path, const char* kind) {
  try {
    close(fd::open_regular(path));
    return false;
  } catch (const fd::Error& e) {
    const bool ok = std::strcmp(e.code(), "ERR_IO") == 0 && std::strstr(e.what(), kind) && std::strstr(e.what(), path.c_str());
    if (!ok) std::fprintf(stderr, "  %s: %s\n", e.code(), e.what());
    return ok;
  }
}

}  // namespace

int main() {
  // Chaining, first, before this process has a guard: a handler installed earlier still gets the
  // SIGBUS of mappings that are not guarded (here it exits 42).
  {
    const int st = in_child([] {
      struct sigaction sa;
      std::memset(&sa, 0, sizeof sa);
      sa.sa_sigaction = on_bus_exit42;
      sa.sa_flags = SA_SIGINFO;
      sigaction(SIGBUS, &sa, nullptr);
      Mapped guarded("chain-guarded", 2), other("chain-other", 4);
      fd::guard_mapping(guarded.base, guarded.size);
      if (ftruncate(other.fd, 0) != 0) _exit(3);
      sum_pages(other.base, 0, 4);
      _exit(0);
    });
    check(WIFEXITED(st) && WEXITSTATUS(st) == 42, "a SIGBUS outside the guarded mappings reaches the previous handler (status %d)", st);
  }

  // open_regular.
  const std::string fifo = tmp_path("fifo");
  check(mkfifo(fifo.c_str(), 0600) == 0, "mkfifo");
  check(refused(fifo, "FIFO"), "a FIFO with no writer is refused at once");
  unlink(fifo.c_str());
  check(refused("/dev/null", "character device"), "/dev/null is refused");
  check(refused("/tmp", "directory"), "a directory is refused");
  {
    Mapped m("regular", 1);
    const int f = fd::open_regular(m.path);
    check(f >= 0 && (fcntl(f, F_GETFL) & O_NONBLOCK) == 0, "a regular file opens, without O_NONBLOCK left on");
    close(f);
    check(fd::open_regular(tmp_path("missing"), 0, true) == -1, "quiet: -1 for a missing file");
  }

  // The guard: truncated to 3 of 16 pages, the lost pages read as zeros, the rest as before.
  {
    Mapped m("truncated", 16);
    const int slot = fd::guard_mapping(m.base, m.size);
    check(slot >= 0 && !fd::mapping_damaged(slot), "a fresh mapping is guarded and not damaged");
    check(sum_pages(m.base, 0, 16) == 16 * 17 / 2, "the whole file reads before the truncation");
    check(ftruncate(m.fd, 3 * kPage) == 0, "ftruncate");
    check(sum_pages(m.base, 0, 3) == 6, "the pages kept read as before");
    check(sum_pages(m.base, 3, 16) == 0, "the lost pages read as zeros, and the process lives");
    check(fd::mapping_damaged(slot), "the mapping is marked damaged");
    fd::unguard_mapping(slot);
  }
  // Four threads reading a truncated mapping at once.
  {
    Mapped m("threads", 64);
    const int slot = fd::guard_mapping(m.base, m.size);
    check(ftruncate(m.fd, 0) == 0, "ftruncate to 0");
    std::atomic<unsigned> total{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) ts.emplace_back([&, t] { total += sum_pages(m.base, static_cast<size_t>(t), 64); });
    for (std::thread& t : ts) t.join();
    check(total == 0 && fd::mapping_damaged(slot), "four threads read zeros from a file truncated to 0 (sum %u)", total.load());
    fd::unguard_mapping(slot);
  }
  // Unguarded again, or never guarded: the default action (SIGBUS kills) as without flashdip.
  {
    Mapped m("unguarded", 4);
    const int slot = fd::guard_mapping(m.base, m.size);
    fd::unguard_mapping(slot);
    check(!fd::mapping_damaged(slot), "an unguarded slot is not damaged");
    check(ftruncate(m.fd, 0) == 0, "ftruncate");
    const int st = in_child([&] { sum_pages(m.base, 0, 4); });
    const int killed = in_child([] { kill(getpid(), SIGBUS); });
#if defined(FD_TEST_ASAN)
    // The handler before flashdip's is AddressSanitizer's: it reports the SIGBUS and ends the process.
    check(st != 0, "a mapping no longer guarded goes to the sanitizer's handler (status %d)", st);
    check(killed != 0, "kill(SIGBUS) goes to the sanitizer's handler (status %d)", killed);
#else
    check(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "a mapping no longer guarded dies of SIGBUS (status %d)", st);
    check(WIFSIGNALED(killed) && WTERMSIG(killed) == SIGBUS, "kill(SIGBUS) still kills (status %d)", killed);
#endif
  }
  std::printf("%d passed, %d failed\n", fd_test::g_passed, fd_test::g_failed);
  return fd_test::g_failed == 0 ? 0 : 1;
}
