// Kernel micro-benchmarks, in one place for the native test binaries (`test_sparse --bench`,
// `test_kernels --bench`) and the addon (`kernels.bench*`, used by `npm run bench`). The timing
// loops are native: an N-API call per kernel invocation would cost more than a small kernel.
// Single thread, on the ISA in use (kernels_isa()); the caller switches ISAs with kernels_set_isa().
// These are measurements, not tests: they allocate up to store_bytes + store_bytes / 2 and take
// about a second per call. They never abort on bad arguments; a type they cannot time gives zeros.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fd {

// Median of `reps` single-thread memcpys of store_bytes / 2 bytes from a store_bytes buffer (each rep
// copies the other half, so nothing comes from the cache when store_bytes is well beyond the L3).
// Bytes read per second.
double bench_memcpy(size_t store_bytes, int reps);

struct GatherBench {
  int64_t m;           // outputs per row (elements)
  size_t row_bytes;    // bytes of one input-major row
  int64_t k;           // rows gathered per call (density * rows in the store)
  double gather_bps;   // bytes of the selected rows per second through gather_axpy (median)
  double memcpy_bps;   // bench_memcpy over the same store, measured between the gather calls (median)
  double read_bps;     // a plain 64-bit sum over the same selected rows, same order (median)
};

// gather_axpy over a random `density` of the rows of a store_bytes store filled with copies of one
// valid row of `type` (F32, F16, Q8_0, Q4_0) with m outputs; a fresh random ascending mask per rep.
GatherBench bench_gather(uint32_t type, int64_t m, double density, size_t store_bytes, int reps, uint64_t seed);

struct GemvBench {
  int64_t n, rows;      // the matrix: rows x n
  size_t matrix_bytes;  // weight bytes per call
  double median_bps;    // weight bytes per second, median over the calls
  double best_bps;      // and the best call
};

// Dense gemv over n x rows matrices of `type` (any type with can_compute), cycling over as many
// copies as fill store_bytes so that the weights come from DRAM, not the cache.
GemvBench bench_gemv(uint32_t type, int64_t n, int64_t rows, size_t store_bytes, int reps, uint64_t seed);

struct TopkBench {
  int64_t n, k;
  double dip_us;      // topk_select without cache state (plain DIP), median microseconds per call
  double ca_us;       // with DIP-CA weighting (half the units cached, gamma 0.2)
  double ca_top_us;   // DIP-CA with fixed_top_n = 64 protected units
  double nth_us;      // std::nth_element + sort of the winners, for scale
};

// topk_select on n Gaussian scores, k = round(keep * n), median of `reps` calls each.
TopkBench bench_topk(int64_t n, double keep, int reps, uint64_t seed);

}  // namespace fd
