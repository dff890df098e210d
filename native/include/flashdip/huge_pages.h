// Large buffers in anonymous memory that asks the kernel for transparent huge pages (2 MiB on x86-64
// and most arm64 kernels). Decode streams every weight byte once per token: with 4 KiB pages that is
// a TLB miss every 4 KiB, and inside a virtual machine each miss walks two page tables; measured on
// a KVM guest, one thread's q8_0 GEMV ran at 9.5 GB/s over 4 KiB pages and 16.8 GB/s over huge pages
// of the same bytes (bench/RESULTS.md).
#pragma once
#include <cstddef>
#include <cstdint>

namespace fd {

// Whether the kernel hands out transparent huge pages to a region that asks for them:
// /sys/kernel/mm/transparent_hugepage/enabled reads "[always]" or "[madvise]". False elsewhere
// (no THP support, "[never]", or not Linux).
bool huge_pages_available();

// Bytes the process may still take without pushing the machine into swap or the OOM killer:
// MemAvailable from /proc/meminfo (it counts the reclaimable page cache), capped by the memory limit
// of the process's cgroup when it has one (v2 memory.max, v1 memory.limit_in_bytes). 0 when
// /proc/meminfo cannot be read.
uint64_t memory_headroom();

// `size` bytes of zeroed anonymous memory, 2 MiB-aligned, asking for huge pages (MADV_HUGEPAGE) over
// its whole 2 MiB pages when `huge` (the tail stays in 4 KiB pages, so the buffer never holds more
// than `size` rounded up to 4 KiB); untouched pages cost nothing until written. Move-only; unmapped on
// destruction.
class PageBuffer {
 public:
  PageBuffer() = default;
  // False (and empty) when the address space cannot be had.
  bool allocate(size_t size, bool huge);
  ~PageBuffer() { release(); }
  PageBuffer(PageBuffer&& o) noexcept { *this = static_cast<PageBuffer&&>(o); }
  PageBuffer& operator=(PageBuffer&& o) noexcept;
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void release();
  void* map_ = nullptr;  // the whole mapping (aligned start inside it)
  size_t map_size_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace fd
