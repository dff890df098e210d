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

RowCache::RowCache(Reader* reader, int fd, size_t direct_align, uint64_t offset, size_t row_bytes, int64_t n_rows,
                   int64_t capacity, bool drop_pages)
    : reader_(reader),
      fd_(fd),
      direct_(direct_align > 0), align_(direct_align), offset_(offset), row_bytes_(row_bytes), drop_pages_(drop_pages),
      slot_of_(static_cast<size_t>(n_rows), -1),
      gap_(direct_ ? 0 : kMaxGapBytes / std::max<size_t>(1, row_bytes) * row_bytes) {
  const size_t slab = static_cast<size_t>(std::max<int64_t>(0, std::min(capacity, n_rows))) * row_bytes;
  if (!slab_.allocate(slab, true)) fail("ERR_IO", "cannot allocate a column cache of " + std::to_string(slab) + " bytes");
  reset();
}

void RowCache::reset() {
  std::fill(slot_of_.begin(), slot_of_.end(), -1);
  free_.clear();
  const int64_t slots = static_cast<int64_t>(slab_.size() / std::max<size_t>(1, row_bytes_));
  for (int64_t s = slots - 1; s >= 0; --s) free_.push_back(static_cast<int32_t>(s));
}

int64_t RowCache::start(const int32_t* mask, int64_t k, const CacheState& cache, const uint8_t** rows, uint8_t* pending,
                        std::vector<uint8_t>& stream) {
  ops_.clear();
  copies_.clear();
  // Slots of rows the policy evicted go back to the free list.
  const int64_t n = static_cast<int64_t>(slot_of_.size());
  for (int64_t r = 0; r < n; ++r)
    if (slot_of_[r] >= 0 && !cache.cached(r)) {
      free_.push_back(slot_of_[r]);
      slot_of_[r] = -1;
    }
  // Rows to read: into a free slot when the policy admitted them, else streamed (dst null for now).
  reads_.clear();
  for (int64_t i = 0; i < k; ++i) {
    const int32_t r = mask[i];
    int32_t& slot = slot_of_[static_cast<size_t>(r)];
    pending[i] = slot < 0;
    if (slot >= 0) {
      rows[i] = slab_.data() + static_cast<size_t>(slot) * row_bytes_;
      continue;
    }
    uint8_t* dst = nullptr;
    if (cache.cached(r) && !free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      dst = slab_.data() + static_cast<size_t>(slot) * row_bytes_;
    }
    reads_.push_back({r, dst, i});
  }
  if (reads_.empty()) return 0;

  // Runs of rows, one read each, all in flight at once (rows are in ascending order). A run goes on
  // over a gap of rows nobody asked for when the gap is small: reading a few KiB more costs less
  // than another request, and a gap inside one page costs nothing (the page is read either way).
  const int64_t max_gap = static_cast<int64_t>(kMaxGapBytes / row_bytes_);
  std::vector<std::pair<size_t, size_t>>& runs = runs_;  // [first, end) into reads_
  runs.clear();
  gap_bytes_ = 0;
  for (size_t i = 0; i < reads_.size();) {
    size_t e = i + 1;
    while (e < reads_.size() && reads_[e].row - reads_[e - 1].row - 1 <= max_gap && 2 * (e - i) + 2 < IOV_MAX) {
      gap_bytes_ += (reads_[e].row - reads_[e - 1].row - 1) * static_cast<int64_t>(row_bytes_);
      ++e;
    }
    runs.emplace_back(i, e);
    i = e;
  }

  if (direct_) {
    // O_DIRECT: each run is one aligned read into the bounce buffer (the device's blocks, no page
    // cache); streamed rows are used from there, admitted ones copied to their slots in finish(). The
    // alignment around the rows counts as gap bytes: it is read besides them.
    struct Span { uint64_t a0, end; size_t len; };  // aligned start, last row's end, aligned length
    auto span = [&](size_t b, size_t e) {
      const uint64_t a0 = (offset_ + static_cast<uint64_t>(reads_[b].row) * row_bytes_) / align_ * align_;
      const uint64_t end = offset_ + static_cast<uint64_t>(reads_[e - 1].row + 1) * row_bytes_;
      return Span{a0, end, static_cast<size_t>((end - a0 + align_ - 1) / align_ * align_)};
    };
    size_t total = 0;
    for (const auto& [b, e] : runs) total += span(b, e).len;
    gap_bytes_ = static_cast<int64_t>(total - reads_.size() * row_bytes_);
    uint8_t* bounce = reader_->bounce(total);
    iov_.resize(runs.size());
    size_t at = 0;
    for (size_t j = 0; j < runs.size(); ++j) {
      const auto [b, e] = runs[j];
      const Span sp = span(b, e);
      iov_[j] = {bounce + at, sp.len};
      // Only the bytes up to the last row's end are needed: the aligned tail may run past the file.
      ops_.push_back({sp.a0, &iov_[j], 1, static_cast<size_t>(sp.end - sp.a0)});
      for (size_t q = b; q < e; ++q) {
        const uint8_t* src = bounce + at + (offset_ + static_cast<uint64_t>(reads_[q].row) * row_bytes_ - sp.a0);
        if (reads_[q].dst)
          copies_.push_back({src, reads_[q].dst});
        else
          reads_[q].dst = const_cast<uint8_t*>(src);
        rows[reads_[q].index] = reads_[q].dst;
      }
      at += sp.len;
    }
  } else {
    // Buffered: rows land at their destinations (streamed ones in the shared streaming buffer), gap
    // bytes in a scratch buffer; finish() drops the pages from the page cache.
    int64_t streamed = 0;
    for (const Read& rd : reads_) streamed += rd.dst == nullptr;
    if (stream.size() < static_cast<size_t>(streamed) * row_bytes_) stream.resize(static_cast<size_t>(streamed) * row_bytes_);
    int64_t s = 0;
    for (Read& rd : reads_) {
      if (!rd.dst) rd.dst = stream.data() + static_cast<size_t>(s++) * row_bytes_;
      rows[rd.index] = rd.dst;
    }
    iov_.resize(2 * reads_.size());
    size_t v = 0;
    for (const auto& [b, e] : runs) {
      ReadOp op{offset_ + static_cast<uint64_t>(reads_[b].row) * row_bytes_, &iov_[v], 0, 0};
      for (size_t q = b; q < e; ++q) {
        if (q > b && reads_[q].row > reads_[q - 1].row + 1) {
          const size_t gap = static_cast<size_t>(reads_[q].row - reads_[q - 1].row - 1) * row_bytes_;
          iov_[v++] = {gap_.data(), gap};
          op.bytes += gap;
        }
        iov_[v++] = {reads_[q].dst, row_bytes_};
        op.bytes += row_bytes_;
      }
      op.iovcnt = static_cast<int>(&iov_[v] - op.iov);
      ops_.push_back(op);
    }
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
  for (const Copy& c : copies_) std::memcpy(c.dst, c.src, row_bytes_);
  // The page cache is not a second cache: drop what was just copied, one call over the span of the
  // batch (advisory; failure is harmless; the span holds only this tensor's rows).
  if (drop_pages_ && !direct_) {
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
