#include "flashdip/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "flashdip/error.h"
#include "flashdip/file.h"

// No io_uring on Android at all: its app seccomp policy kills the process on io_uring_setup (SIGSYS)
// instead of refusing it, as libuv found (libuv issues 4010/4016).
#if defined(__linux__) && !defined(__ANDROID__) && __has_include(<linux/io_uring.h>) && defined(__NR_io_uring_setup) && \
    defined(__NR_io_uring_enter)
#include <linux/io_uring.h>
#define FLASHDIP_HAVE_URING 1
#else
#define FLASHDIP_HAVE_URING 0
#endif

namespace fd {
namespace {

constexpr int kIoThreads = 8;  // reads in flight without io_uring

#if FLASHDIP_HAVE_URING
// Whether no seccomp filter is active on this thread ("Seccomp: 0" in the kernel's status file). A
// filter may answer io_uring_setup by killing the process rather than with an error, so auto probes
// io_uring only without one; a missing line or an unreadable file counts as filtered.
bool seccomp_off() {
  for (const char* path : {"/proc/thread-self/status", "/proc/self/status"}) {  // filters are per thread
    FILE* f = std::fopen(path, "re");
    if (!f) continue;
    bool off = false;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "Seccomp:", 8) != 0) continue;
      char* end = nullptr;
      off = std::strtol(line + 8, &end, 10) == 0 && end != line + 8 && (*end == '\n' || *end == '\0');
      break;
    }
    std::fclose(f);
    return off;
  }
  return false;
}
#endif

// preadv until `bytes` are read into iov (adjusted in place); 0 or an errno.
int preadv_all(int fd, iovec* iov, int iovcnt, uint64_t offset, size_t bytes) {
  size_t done = 0;
  int first = 0;
  while (done < bytes) {
    const ssize_t got = preadv(fd, iov + first, iovcnt - first, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno;
    if (got == 0) return EIO;  // the file ended early
    done += static_cast<size_t>(got);
    size_t left = static_cast<size_t>(got);
    while (left > 0 && first < iovcnt) {
      if (left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
        left = 0;
      }
    }
  }
  return 0;
}

// The iovecs of op past its first `skip` bytes, in `out`.
void tail_iov(const ReadOp& op, size_t skip, std::vector<iovec>& out) {
  out.clear();
  for (int i = 0; i < op.iovcnt; ++i) {
    iovec v = op.iov[i];
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    v.iov_base = static_cast<uint8_t*>(v.iov_base) + skip;
    v.iov_len -= skip;
    skip = 0;
    out.push_back(v);
  }
}

}  // namespace

#if FLASHDIP_HAVE_URING
// A minimal io_uring: one submission and one completion ring mapped from the kernel; READV requests
// carry the op index as user_data. Only the thread that owns the Reader touches it.
struct Reader::Ring {
  int fd = -1;
  unsigned entries = 0;
  void* sq_map = nullptr;
  size_t sq_map_len = 0;
  void* cq_map = nullptr;
  size_t cq_map_len = 0;
  io_uring_sqe* sqes = nullptr;
  size_t sqes_len = 0;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  io_uring_cqe* cqes;
  size_t submitted = 0, inflight = 0, completed = 0;  // of the current batch
  unsigned queued = 0;                                // pushed, not yet handed to the kernel

  static std::unique_ptr<Ring> open(unsigned want) {
    auto r = std::make_unique<Ring>();
    io_uring_params p;
    std::memset(&p, 0, sizeof p);
    r->fd = static_cast<int>(syscall(__NR_io_uring_setup, want, &p));
    if (r->fd < 0) return nullptr;
    r->entries = p.sq_entries;
    r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single) r->sq_map_len = r->cq_map_len = std::max(r->sq_map_len, r->cq_map_len);
    r->sq_map = mmap(nullptr, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED) return r->sq_map = nullptr, nullptr;
    if (single) {
      r->cq_map = r->sq_map;
    } else {
      r->cq_map = mmap(nullptr, r->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
      if (r->cq_map == MAP_FAILED) return r->cq_map = nullptr, nullptr;
    }
    r->sqes_len = p.sq_entries * sizeof(io_uring_sqe);
    void* s = mmap(nullptr, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (s == MAP_FAILED) return nullptr;
    r->sqes = static_cast<io_uring_sqe*>(s);
    auto* sq = static_cast<uint8_t*>(r->sq_map);
    auto* cq = static_cast<uint8_t*>(r->cq_map);
    r->sq_head = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
    r->sq_tail = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
    r->sq_mask = reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
    r->sq_array = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
    r->cq_head = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
    r->cq_tail = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
    r->cq_mask = reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
    r->cqes = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
    return r;
  }

  ~Ring() {
    if (sqes) munmap(sqes, sqes_len);
    if (cq_map && cq_map != sq_map) munmap(cq_map, cq_map_len);
    if (sq_map) munmap(sq_map, sq_map_len);
    if (fd >= 0) close(fd);
  }

  // Queues a READV of op `i`.
  void push(int file, const ReadOp& op, size_t i) {
    const unsigned tail = *sq_tail;  // only this thread writes the tail
    const unsigned idx = tail & *sq_mask;
    io_uring_sqe& e = sqes[idx];
    std::memset(&e, 0, sizeof e);
    e.opcode = IORING_OP_READV;
    e.fd = file;
    e.off = op.offset;
    e.addr = reinterpret_cast<uint64_t>(op.iov);
    e.len = static_cast<unsigned>(op.iovcnt);
    e.user_data = i;
    sq_array[idx] = idx;
    __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
    ++inflight;
    ++queued;
  }

  // Hands the queued requests to the kernel; with wait_one, also blocks until at least one
  // completion is posted. 0 or an errno.
  int enter(bool wait_one) {
    for (;;) {
      const long r = syscall(__NR_io_uring_enter, fd, queued, wait_one ? 1u : 0u,
                             wait_one ? IORING_ENTER_GETEVENTS : 0u, nullptr, 0);
      if (r >= 0) {
        queued -= std::min<unsigned>(queued, static_cast<unsigned>(r));
        if (queued == 0 || wait_one) return 0;
        continue;
      }
      if (errno == EINTR) continue;
      // EAGAIN/EBUSY: the kernel is short of resources or completions are waiting to be reaped; the
      // queued requests stay in the ring for the next call.
      if ((errno == EAGAIN || errno == EBUSY) && wait_one) return 0;
      return errno;
    }
  }

  // Takes every posted completion, calling fn(op index, result).
  template <class Fn>
  void reap(Fn fn) {
    unsigned head = *cq_head;
    const unsigned tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; ++head) {
      const io_uring_cqe& c = cqes[head & *cq_mask];
      --inflight;
      fn(static_cast<size_t>(c.user_data), c.res);
    }
    __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
  }
};
#else
struct Reader::Ring {};
#endif

RowFile::RowFile(const std::string& path, int same_as, bool direct) {
  fd_ = open_regular(path);
  struct stat a, b;
  if (fstat(fd_, &a) != 0 || fstat(same_as, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    close(fd_);
    fail("ERR_IO", "'" + path + "' was replaced since the model was loaded");
  }
  posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM);  // advisory
#ifdef O_DIRECT
  if (!direct) return;
  direct_fd_ = open_regular(path, O_DIRECT, /*quiet=*/true);
  if (direct_fd_ < 0) return;  // e.g. tmpfs: buffered reads it is
  struct stat c;
  void* probe = nullptr;
  bool ok = fstat(direct_fd_, &c) == 0 && c.st_ino == a.st_ino && c.st_dev == a.st_dev && posix_memalign(&probe, 4096, 4096) == 0;
  ok = ok && pread(direct_fd_, probe, 4096, 0) >= 0;  // some file systems open O_DIRECT but refuse the reads
  // Most disks take 512-byte blocks (a 512e drive, a virtio disk): a small row then costs a few
  // hundred bytes of alignment instead of up to two 4 KiB pages. EINVAL says the device wants 4096.
  if (ok) direct_align_ = pread(direct_fd_, static_cast<uint8_t*>(probe) + 512, 512, 512) >= 0 ? 512 : 4096;
  std::free(probe);
  if (!ok) {
    close(direct_fd_);
    direct_fd_ = -1;
  }
#else
  (void)direct;
#endif
}

RowFile::~RowFile() {
  close(fd_);
  if (direct_fd_ >= 0) close(direct_fd_);
}

uint8_t* Reader::bounce(size_t n) {
  if (n > bounce_.size()) {
    const size_t size = std::max(n, bounce_.size() + bounce_.size() / 2);
    if (!bounce_.allocate(size, true)) fail("ERR_IO", "cannot allocate a read buffer of " + std::to_string(size) + " bytes");
  }
  return bounce_.data();
}

Reader::Reader(int fd, const char* engine) : fd_(fd) {
  if (!engine) engine = std::getenv("FLASHDIP_IO");
  const std::string want = engine && *engine ? engine : "auto";
  if (want != "auto" && want != "uring" && want != "threads" && want != "sync")
    fail("ERR_INVALID_ARGUMENT", "FLASHDIP_IO must be auto, uring, threads or sync, not '" + want + "'");
#if FLASHDIP_HAVE_URING
  // FLASHDIP_IO=uring probes even under a filter: the user asked for it.
  if (want == "uring" || (want == "auto" && seccomp_off())) ring_ = Ring::open(256);
#endif
  if (ring_ || want == "sync") return;
  for (int i = 0; i < kIoThreads; ++i) threads_.emplace_back([this] { worker(); });
}

Reader::~Reader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

const char* Reader::engine() const { return ring_ ? "uring" : threads_.empty() ? "sync" : "threads"; }

void Reader::read_sync(const ReadOp& op, size_t done) {
  thread_local std::vector<iovec> iov;  // reused: this runs once per request on the I/O threads
  tail_iov(op, done, iov);
  if (const int e = preadv_all(fd_, iov.data(), static_cast<int>(iov.size()), op.offset + done, op.bytes - done)) fail_batch(e);
}

void Reader::fail_batch(int err) {
  int none = 0;
  error_.compare_exchange_strong(none, err);
}

void Reader::worker() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      ++active_;
    }
    size_t finished = 0;
    for (size_t i; (i = next_.fetch_add(1)) < n_; ++finished) read_sync(ops_[i], 0);
    std::lock_guard<std::mutex> lock(mu_);
    --active_;
    remaining_ -= finished;
    if (remaining_ == 0 || active_ == 0) done_cv_.notify_all();
  }
}

void Reader::start(const ReadOp* ops, size_t n) {
  if (!threads_.empty()) {
    {
      // A worker woken late for the previous batch may still be leaving it (it reads ops_ and n_).
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return active_ == 0; });
      ops_ = ops;
      n_ = n;
      error_ = 0;
      next_ = 0;
      remaining_ = n;
      if (n > 0) ++generation_;
    }
    work_cv_.notify_all();
    return;
  }
  ops_ = ops;
  n_ = n;
  error_ = 0;
#if FLASHDIP_HAVE_URING
  if (ring_) {
    Ring& r = *ring_;
    r.submitted = r.inflight = r.completed = 0;
    for (; r.submitted < n && r.inflight < r.entries; ++r.submitted) r.push(fd_, ops[r.submitted], r.submitted);
    if (r.queued)
      if (const int e = r.enter(false)) fail_batch(e);
    return;
  }
#endif
  // sync: the reads happen in wait()
}

void Reader::wait() {
#if FLASHDIP_HAVE_URING
  if (ring_) {
    Ring& r = *ring_;
    while (r.completed < n_ && !error_) {
      // Top the queue up, then wait for at least one completion.
      for (; r.submitted < n_ && r.inflight < r.entries; ++r.submitted) r.push(fd_, ops_[r.submitted], r.submitted);
      if (const int e = r.enter(true)) {
        fail_batch(e);
        break;
      }
      r.reap([&](size_t i, int res) {
        ++r.completed;
        if (res == -EINTR || res == -EAGAIN)
          read_sync(ops_[i], 0);  // rare: the caller reads it
        else if (res < 0)
          fail_batch(-res);
        else if (static_cast<size_t>(res) < ops_[i].bytes)
          read_sync(ops_[i], static_cast<size_t>(res));  // a short read (0 at the end of the file): the rest
      });
    }
    // After an error, let what is in flight land before the caller's buffers can go away.
    while (r.inflight > 0) {
      if (r.enter(true)) break;
      r.reap([](size_t, int) {});
    }
  } else
#endif
  if (threads_.empty()) {
    for (size_t i = 0; i < n_ && !error_; ++i) read_sync(ops_[i], 0);
  } else if (n_ > 0) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return remaining_ == 0 && active_ == 0; });
  }
  if (const int e = error_.load()) fail("ERR_IO", std::string("reading model rows failed: ") + std::strerror(e));
}

}  // namespace fd
