// Tiling driver shared by the SIMD gather-GEMV kernels (header-only; included by each ISA's file so it
// is compiled with that ISA's flags).
//
// y[0..m) += sum over rows of coef[i] * row i. The outputs are cut into tiles of kTile units (a unit is a
// quant block of 32 outputs, or a k-quant super-block of 256) that stay in L1; over each tile the rows are
// taken kGroup at a time, so each y vector is loaded and stored once per group of rows. While a group is
// computed, pf[0..kGroup) point at the rows kAhead groups later over the same tile, or at the first rows
// over the next tile, for the kernel to prefetch.
#pragma once
#include <cstdint>
#include <type_traits>

namespace fd {
// Internal linkage, as gemm_tiles.h: each ISA's file gets its own copy compiled with its own flags.
namespace {

constexpr int kGatherGroup = 4;  // rows per pass over a tile (8 measured no better)

// group(std::integral_constant<int, R>, j, t0, n, pf) computes rows j..j+R-1 over units [t0, t0 + n) of
// y (R <= kGatherGroup, n <= kTile); unit_bytes is the bytes of a row per unit.
template <int64_t kUnit, int64_t kTile, int kAhead, class Group>
inline void gather_tiles(const uint8_t* const* rows, int64_t k, int64_t m, int64_t unit_bytes, Group group) {
  constexpr int G = kGatherGroup;
  const int64_t units = m / kUnit;
  for (int64_t t0 = 0; t0 < units; t0 += kTile) {
    const int64_t n = units - t0 < kTile ? units - t0 : kTile;
    for (int64_t j = 0; j < k; j += G) {
      const uint8_t* pf[G];
      for (int r = 0; r < G; ++r) {
        const int64_t nj = j + kAhead * G + r;
        if (nj < k)
          pf[r] = rows[nj] + t0 * unit_bytes;
        else if (t0 + kTile < units && r < k)
          pf[r] = rows[r] + (t0 + kTile) * unit_bytes;
        else
          pf[r] = rows[j] + t0 * unit_bytes;
      }
      switch (k - j < G ? k - j : G) {
        case 1: group(std::integral_constant<int, 1>(), j, t0, n, pf); break;
        case 2: group(std::integral_constant<int, 2>(), j, t0, n, pf); break;
        case 3: group(std::integral_constant<int, 3>(), j, t0, n, pf); break;
        default: group(std::integral_constant<int, G>(), j, t0, n, pf); break;
      }
    }
  }
}

}  // namespace
}  // namespace fd
