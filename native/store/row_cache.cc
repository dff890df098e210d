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

RowCache::RowCache(Reader* reader, int fd, uint64_t offset, size_t row_bytes, int64_t n_rows, int64_t capacity,
                   bool drop_pages)
    : reader_(reader),
      fd_(fd), offset_(offset), row_bytes_(row_bytes), drop_pages_(drop_pages),
      slab_(static_cast<size_t>(std::max<int64_t>(0, std::min(capacity, n_rows))) * row_bytes),
      slot_of_(static_cast<size_t>(n_rows), -1),
      gap_(kMaxGapBytes / std::max<size_t>(1, row_bytes) * row_bytes) {
  reset();
}

void RowCache::reset() {
  std::fill(slot_of_.begin(), slot_of_.end(), -1);
  free_.clear();
  const int64_t slots = static_cast<int64_t>(slab_.size() / std::max<size_t>(1, row_bytes_));
  for (int64_t s = slots - 1; s >= 0; --s) free_.push_back(static_cast<int32_t>(s));
}

int64_t RowCache::start(const int32_t* mask, int64_t k, const CacheState& cache, const uint8_t** rows, uint8_t* pending,
                        std::vector<uint8_t>& stream_) {
  ops_.clear();
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
    pending[i] = slot < 0;
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
  if (reads_.empty()) return 0;

  // Runs of rows, one read each, all in flight at once (rows are in ascending order). A run goes on
  // over a gap of rows nobody asked for when the gap is small: reading a few KiB more costs less
  // than another request, and a gap inside one page costs nothing (the page is read either way).
  // Gap bytes land in a scratch buffer and are counted apart.
  const int64_t max_gap = static_cast<int64_t>(kMaxGapBytes / row_bytes_);
  iov_.resize(2 * reads_.size());
  ops_.clear();
  gap_bytes_ = 0;
  size_t v = 0;
  for (size_t i = 0; i < reads_.size();) {
    ReadOp op{offset_ + static_cast<uint64_t>(reads_[i].row) * row_bytes_, &iov_[v], 0, 0};
    size_t e = i;
    for (;;) {
      iov_[v++] = {reads_[e].dst, row_bytes_};
      op.bytes += row_bytes_;
      ++e;
      if (e == reads_.size() || (&iov_[v] - op.iov) + 2 > IOV_MAX) break;
      const int64_t gap = reads_[e].row - reads_[e - 1].row - 1;
      if (gap > max_gap) break;
      if (gap > 0) {
        iov_[v++] = {gap_.data(), static_cast<size_t>(gap) * row_bytes_};
        op.bytes += static_cast<size_t>(gap) * row_bytes_;
        gap_bytes_ += gap * static_cast<int64_t>(row_bytes_);
      }
    }
    op.iovcnt = static_cast<int>(&iov_[v] - op.iov);
    ops_.push_back(op);
    i = e;
  }
  started_ = std::chrono::steady_clock::now();
  reader_->start(ops_.data(), ops_.size());
  return static_cast<int64_t>(reads_.size());
}

void RowCache::finish(IoStats* io) {
  if (ops_.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    reader_->wait();
  } catch (...) {
    ops_.clear();
    throw;
  }
  const auto t1 = std::chrono::steady_clock::now();
  // The page cache is not a second cache: drop what was just copied, one call over the span of the
  // batch (advisory; failure is harmless; the span holds only this tensor's rows).
  if (drop_pages_) {
    const ReadOp& last = ops_.back();
    posix_fadvise(fd_, static_cast<off_t>(ops_.front().offset), static_cast<off_t>(last.offset + last.bytes - ops_.front().offset),
                  POSIX_FADV_DONTNEED);
  }
  if (io) {
    io->wait_seconds += std::chrono::duration<double>(t1 - t0).count();
    io->seconds += std::chrono::duration<double>(t1 - started_).count();
    io->bytes_read += static_cast<int64_t>(reads_.size() * row_bytes_);
    io->gap_bytes += gap_bytes_;
    io->reads += static_cast<int64_t>(ops_.size());
  }
  ops_.clear();
}

}  // namespace fd
