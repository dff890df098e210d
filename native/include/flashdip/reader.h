// Batches of positioned reads from one file with many in flight, so a layer's misses are fetched at
// the device's queue depth rather than one read at a time, while the caller computes on what it
// already has. Engines: io_uring where the kernel allows it (Linux >= 5.6; seccomp on Android and
// qemu-user usually refuse it), else a few I/O threads doing preadv, else the caller alone.
// FLASHDIP_IO=auto|uring|threads|sync picks one (auto: the first that works, in that order, except
// that auto tries io_uring only when no seccomp filter is active, since a filter may kill the process
// on io_uring_setup; no io_uring code is built for Android, whose app policy does exactly that).
#pragma once
#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flashdip/huge_pages.h"

namespace fd {

// The model file opened again for the store's reads: a file description of its own, so that turning
// the kernel's readahead off for it (the store reads scattered rows; readahead would fetch and then
// drop megabytes around each) leaves the mapping of the static weights alone. Throws ERR_IO if the
// path no longer names the same file as `same_as`.
// With `direct`, it is also opened with O_DIRECT when the file system allows it (checked with a
// read): the store then reads the device's blocks without the page cache at all, which keeps the
// memory budget honest without dropping pages afterwards, and serves small scattered reads better.
class RowFile {
 public:
  RowFile(const std::string& path, int same_as, bool direct);
  ~RowFile();
  RowFile(const RowFile&) = delete;
  RowFile& operator=(const RowFile&) = delete;
  int fd() const { return fd_; }                // buffered, readahead off
  int direct_fd() const { return direct_fd_; }  // O_DIRECT, or -1
  // What O_DIRECT reads must be aligned to (offsets, lengths, buffers): 512 where the device takes
  // reads of its 512-byte logical blocks (checked with a read), else 4096; 0 without direct_fd().
  size_t direct_align() const { return direct_align_; }

 private:
  int fd_ = -1;
  int direct_fd_ = -1;
  size_t direct_align_ = 0;
};

struct ReadOp {
  uint64_t offset;     // in the file
  const iovec* iov;    // destinations, filled in order; valid until wait() returns
  int iovcnt;
  size_t bytes;        // sum of the iov lengths
};

class Reader {
 public:
  // engine: "auto", "uring", "threads" or "sync"; nullptr reads FLASHDIP_IO (default auto). "uring"
  // falls back to threads when the kernel refuses it. Throws ERR_INVALID_ARGUMENT for another name.
  explicit Reader(int fd, const char* engine = nullptr);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const char* engine() const;  // "uring", "threads" or "sync"

  // Starts every read of ops[0..n) and returns at once; ops must stay valid until wait() returns.
  // One batch at a time: start, then wait.
  void start(const ReadOp* ops, size_t n);
  // Returns when every read of the batch is done. Throws ERR_IO (after the whole batch settled) if
  // one failed or the file ended early.
  void wait();
  // A buffer of at least n bytes aligned for O_DIRECT, owned by the reader, for one batch at a time.
  uint8_t* bounce(size_t n);
  size_t bounce_bytes() const { return bounce_.size(); }

 private:
  struct Ring;
  void read_sync(const ReadOp& op, size_t done);  // the rest of op from byte `done`, in the caller
  void worker();
  void fail_batch(int err);

  int fd_;
  std::unique_ptr<Ring> ring_;
  PageBuffer bounce_;  // huge pages: the rows streamed from it are gathered where they landed
  // Thread engine.
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::atomic<size_t> next_{0};
  size_t remaining_ = 0;  // ops not finished, under mu_
  int active_ = 0;        // workers inside a batch, under mu_ (they read ops_ and n_)
  // The batch.
  const ReadOp* ops_ = nullptr;
  size_t n_ = 0;
  std::atomic<int> error_{0};
};

}  // namespace fd
