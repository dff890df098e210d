// The flash-resident column store: the DIP layout's row tensors read with pread into a DRAM slab
// of cache slots (the budget) or a streaming buffer, never through the file mapping, so the weights
// that are not cached are not resident. Which rows are cached is decided by a CacheState (the
// policy); a RowCache only moves the bytes to match it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flashdip/sparsity.h"
#include "flashdip/threadpool.h"

namespace fd {

struct IoStats {
  int64_t bytes_read = 0;   // from the file (flash)
  int64_t reads = 0;        // preadv calls
  double seconds = 0;       // wall time spent reading
};

class RowCache {
 public:
  // Rows of `row_bytes` bytes at file offset `offset` + r * row_bytes of the open file `fd`.
  RowCache(int fd, uint64_t offset, size_t row_bytes, int64_t n_rows, int64_t capacity, bool drop_pages);

  // Makes the rows of a mask available after cache.access(mask) decided what is cached: frees the
  // slots of evicted rows, reads admitted rows into free slots and the others into the streaming
  // buffer (adjacent rows in one preadv, runs spread over the pool). rows[i] receives the address
  // of mask[i]'s row. Throws ERR_IO.
  // `stream` is the streaming buffer, shared by all the row caches of a context (one layer's rows are
  // used before the next fetch); it grows to at most one matrix.
  void fetch(const int32_t* mask, int64_t k, const CacheState& cache, const uint8_t** rows, std::vector<uint8_t>& stream,
             ThreadPool& pool, int threads, IoStats* io);
  void reset();
  size_t slab_bytes() const { return slab_.size(); }

 private:
  int fd_;
  uint64_t offset_;
  size_t row_bytes_;
  bool drop_pages_;
  std::vector<uint8_t> slab_;     // [capacity][row_bytes]
  std::vector<int32_t> slot_of_;  // [row] slot or -1
  std::vector<int32_t> free_;     // free slots
  struct Read { int64_t row; uint8_t* dst; };
  std::vector<Read> reads_;
};

}  // namespace fd
