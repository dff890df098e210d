#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <string>

#include "flashdip/error.h"
#include "flashdip/store.h"

namespace fd {

RowCache::RowCache(int fd, uint64_t offset, size_t row_bytes, int64_t n_rows, int64_t capacity, bool drop_pages)
    : fd_(fd), offset_(offset), row_bytes_(row_bytes), drop_pages_(drop_pages),
      slab_(static_cast<size_t>(std::max<int64_t>(0, std::min(capacity, n_rows))) * row_bytes),
      slot_of_(static_cast<size_t>(n_rows), -1) {
  reset();
}

void RowCache::reset() {
  std::fill(slot_of_.begin(), slot_of_.end(), -1);
  free_.clear();
  const int64_t slots = static_cast<int64_t>(slab_.size() / std::max<size_t>(1, row_bytes_));
  for (int64_t s = slots - 1; s >= 0; --s) free_.push_back(static_cast<int32_t>(s));
}

void RowCache::fetch(const int32_t* mask, int64_t k, const CacheState& cache, const uint8_t** rows,
                     std::vector<uint8_t>& stream_, ThreadPool& pool, int threads, IoStats* io) {
  // Slots of rows the policy evicted go back to the free list.
  const int64_t n = static_cast<int64_t>(slot_of_.size());
  for (int64_t r = 0; r < n; ++r)
    if (slot_of_[r] >= 0 && !cache.cached(r)) {
      free_.push_back(slot_of_[r]);
      slot_of_[r] = -1;
    }
  reads_.clear();
  int64_t streamed = 0;
  for (int64_t i = 0; i < k; ++i) {
    const int32_t r = mask[i];
    int32_t& slot = slot_of_[static_cast<size_t>(r)];
    if (slot >= 0) {
      rows[i] = slab_.data() + static_cast<size_t>(slot) * row_bytes_;
      continue;
    }
    uint8_t* dst;
    if (cache.cached(r) && !free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      dst = slab_.data() + static_cast<size_t>(slot) * row_bytes_;
    } else {
      const size_t need = static_cast<size_t>(streamed + 1) * row_bytes_;
      if (stream_.size() < need) stream_.resize(std::max(need, static_cast<size_t>(k) * row_bytes_));
      dst = nullptr;  // set below once stream_ no longer moves
      ++streamed;
    }
    reads_.push_back({r, dst});
    rows[i] = dst;
  }
  // Streaming destinations, now that the buffer has its final size.
  int64_t s = 0;
  for (int64_t i = 0, j = 0; i < k; ++i) {
    if (j < static_cast<int64_t>(reads_.size()) && reads_[j].row == mask[i]) {
      if (!reads_[j].dst) {
        reads_[j].dst = stream_.data() + static_cast<size_t>(s++) * row_bytes_;
        rows[i] = reads_[j].dst;
      }
      ++j;
    }
  }
  if (reads_.empty()) return;

  // Runs of adjacent rows: one preadv each (rows are in ascending order).
  std::vector<std::pair<size_t, size_t>> runs;  // [begin, end) into reads_
  for (size_t i = 0; i < reads_.size();) {
    size_t e = i + 1;
    while (e < reads_.size() && reads_[e].row == reads_[e - 1].row + 1 && e - i < IOV_MAX) ++e;
    runs.emplace_back(i, e);
    i = e;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> errors(runs.size(), 0);
  pool.run(static_cast<int64_t>(runs.size()), threads, [&](int64_t task, int) {
    const size_t b = runs[static_cast<size_t>(task)].first, e = runs[static_cast<size_t>(task)].second;
    std::vector<iovec> iov(e - b);
    for (size_t i = b; i < e; ++i) iov[i - b] = {reads_[i].dst, row_bytes_};
    off_t at = static_cast<off_t>(offset_ + static_cast<uint64_t>(reads_[b].row) * row_bytes_);
    const size_t total = (e - b) * row_bytes_;
    size_t done = 0;
    size_t first = 0;
    while (done < total) {
      const ssize_t got = preadv(fd_, iov.data() + first, static_cast<int>(iov.size() - first), at + static_cast<off_t>(done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        errors[static_cast<size_t>(task)] = got == 0 ? EIO : errno;
        return;
      }
      done += static_cast<size_t>(got);
      // Advance the iovecs past what was read (short reads are rare but legal).
      size_t left = static_cast<size_t>(got);
      while (left > 0 && first < iov.size()) {
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
    // The page cache is not a second cache: drop what was just copied (advisory; failure is harmless).
    if (drop_pages_) posix_fadvise(fd_, at, static_cast<off_t>(total), POSIX_FADV_DONTNEED);
  });
  for (int e : errors)
    if (e) fail("ERR_IO", std::string("reading model rows failed: ") + std::strerror(e));
  if (io) {
    io->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    io->bytes_read += static_cast<int64_t>(reads_.size() * row_bytes_);
    io->reads += static_cast<int64_t>(runs.size());
  }
}

}  // namespace fd
