// The flash-resident column store: the DIP layout's row tensors read with pread into a DRAM slab
// of cache slots (the budget) or a streaming buffer, never through the file mapping, so the weights
// that are not cached are not resident. Which rows are cached is decided by a CacheState (the
// policy); a RowCache only moves the bytes to match it.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flashdip/huge_pages.h"
#include "flashdip/reader.h"
#include "flashdip/sparsity.h"

namespace fd {

struct IoStats {
  int64_t bytes_read = 0;     // rows read from the file (flash)
  int64_t gap_bytes = 0;      // read besides the rows: gaps inside a request, O_DIRECT's alignment (see RowCache)
  int64_t reads = 0;          // read requests (one per run of adjacent rows)
  double seconds = 0;         // wall time from issuing a batch to its last byte, summed over batches
  double wait_seconds = 0;    // of which the compute waited (the rest overlapped with compute)
};

class RowCache {
 public:
  // Rows of `row_bytes` bytes at file offset `offset` + r * row_bytes of the open file `fd`, read
  // through `reader` (shared by the row caches of a context; one batch at a time). `direct_align`:
  // the reader's descriptor is O_DIRECT and reads must be aligned to this (RowFile::direct_align;
  // through its bounce buffer, no page cache); 0: buffered reads.
  RowCache(Reader* reader, int fd, size_t direct_align, uint64_t offset, size_t row_bytes, int64_t n_rows, int64_t capacity,
           bool drop_pages);

  // Makes the rows of a mask available after cache.access(mask) decided what is cached: frees the
  // slots of evicted rows and starts reading the missing rows, admitted ones into free slots and the
  // others into the streaming buffer or, with direct reads, the reader's bounce buffer (a run of
  // nearby rows is one read; all runs in flight at once). rows[i] receives the address of mask[i]'s row; pending[i] is 1 for a row being read,
  // which may be used only after finish(). Returns the number of pending rows.
  // `stream` is the streaming buffer, shared by all the row caches of a context (one layer's rows are
  // used before the next fetch); it grows to at most one matrix.
  int64_t start(const int32_t* mask, int64_t k, const CacheState& cache, const uint8_t** rows, uint8_t* pending,
                std::vector<uint8_t>& stream);
  // Waits for the reads of start(); drops their pages from the page cache (if asked). Throws ERR_IO.
  void finish(IoStats* io);
  void reset();
  size_t owned_bytes() const { return slab_.size() + gap_.size(); }

 private:
  static constexpr size_t kMaxGapBytes = 16 << 10;  // a run reads through a gap up to this size
  Reader* reader_;
  int fd_;
  bool direct_;
  uint64_t align_;  // offsets and lengths of O_DIRECT reads
  uint64_t offset_;
  size_t row_bytes_;
  bool drop_pages_;
  PageBuffer slab_;               // [capacity][row_bytes], in huge pages: cached rows are gathered every token
  std::vector<int32_t> slot_of_;  // [row] slot or -1
  std::vector<uint8_t> gap_;      // where gap bytes of buffered reads go (never used)
  std::vector<int32_t> free_;     // free slots
  struct Read { int64_t row; uint8_t* dst; int64_t index; };  // index: in the mask
  std::vector<Read> reads_;
  std::vector<std::pair<size_t, size_t>> runs_;  // [first, end) into reads_: one read each
  struct Copy { const uint8_t* src; uint8_t* dst; };
  std::vector<Copy> copies_;   // direct reads: admitted rows from the bounce buffer to their slots
  std::vector<iovec> iov_;     // destinations of the batch in flight (rows and gaps)
  int64_t gap_bytes_ = 0;
  std::vector<ReadOp> ops_;    // the batch in flight
  std::chrono::steady_clock::time_point started_;
};

}  // namespace fd
