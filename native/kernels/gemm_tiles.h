// Tiling driver shared by the SIMD GEMV/GEMM kernels (header-only; included by each ISA's file so it
// is compiled with that ISA's flags).
//
// A kernel K provides   template <int R, int T> static void tile(const Args&, int64_t r0, int64_t t0,
//                                                                 float out[R][T]);
// computing the R x T block of dot products for rows r0..r0+R-1 and tokens t0..t0+T-1 while reading
// each weight block once for all T tokens, and two constants:
//   kDecodeRows  rows per tile when ntok == 1 (more rows = more independent accumulation chains and
//                streams, but more live registers; chosen per kernel with test_kernels --bench);
//   kPromptRows  rows per tile against 4 tokens for ntok > 1 (weight blocks are unpacked once for 4
//                tokens, activation blocks loaded once for kPromptRows rows). Rows are visited in
//                order, so a weight row is fetched from memory once and re-read from L1/L2 for the
//                following token groups.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace fd {
// Internal linkage: each ISA's file gets its own copy compiled with its own flags (a shared weak
// symbol could be resolved to another ISA's copy).
namespace {

struct GemmArgs {
  const uint8_t* w;   // row 0
  size_t row_stride;  // bytes between rows
  int64_t n;          // elements per row
  const uint8_t* x;   // token 0's activations (vec_dot_type of the weights)
  size_t x_stride;    // bytes between tokens
  const void* aux;    // what K::prepare returned (see below), or null
  const uint8_t* row(int64_t r) const { return w + static_cast<size_t>(r) * row_stride; }
  const uint8_t* tok(int64_t t) const { return x + static_cast<size_t>(t) * x_stride; }
};

template <class K, int R, int T>
inline void run_tile(const GemmArgs& a, int64_t r0, int64_t t0, float* y, size_t y_stride) {
  float out[R][T];
  K::template tile<R, T>(a, r0, t0, out);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[static_cast<size_t>(t0 + t) * y_stride + static_cast<size_t>(r0 + r)] = out[r][t];
}

// Rows r0..r0+R-1 against all tokens, 4 tokens at a time.
template <class K, int R>
inline void gemm_row_tiles(const GemmArgs& a, int64_t r0, int64_t ntok, float* y, size_t y_stride) {
  int64_t t = 0;
  for (; t + 4 <= ntok; t += 4) run_tile<K, R, 4>(a, r0, t, y, y_stride);
  switch (ntok - t) {
    case 3: run_tile<K, R, 3>(a, r0, t, y, y_stride); break;
    case 2: run_tile<K, R, 2>(a, r0, t, y, y_stride); break;
    case 1: run_tile<K, R, 1>(a, r0, t, y, y_stride); break;
    default: break;
  }
}

// A kernel may also provide   static const void* prepare(const GemmArgs&, int64_t ntok);
// called once per call before any tile, for per-token work that every tile would otherwise repeat;
// the tiles find its result in GemmArgs::aux.
template <class K, class = void>
struct HasPrepare : std::false_type {};
template <class K>
struct HasPrepare<K, std::void_t<decltype(K::prepare(std::declval<const GemmArgs&>(), int64_t{}))>> : std::true_type {};

template <class K>
void gemm_tiled(const void* w, size_t row_stride, int64_t n, int64_t nrows, const void* xq, size_t xq_stride,
                int64_t ntok, float* y, size_t y_stride) {
  GemmArgs a{static_cast<const uint8_t*>(w), row_stride, n, static_cast<const uint8_t*>(xq), xq_stride, nullptr};
  if constexpr (HasPrepare<K>::value) a.aux = K::prepare(a, ntok);
  if (ntok == 1) {
    int64_t r = 0;
    constexpr int kR = K::kDecodeRows;
    for (; r + kR <= nrows; r += kR) run_tile<K, kR, 1>(a, r, 0, y, y_stride);
    for (; r < nrows; ++r) run_tile<K, 1, 1>(a, r, 0, y, y_stride);
    return;
  }
  // Prompt: K::kPromptRows rows x 4 tokens per tile, then the row remainder one row at a time.
  constexpr int kP = K::kPromptRows;
  int64_t r = 0;
  for (; r + kP <= nrows; r += kP) gemm_row_tiles<K, kP>(a, r, ntok, y, y_stride);
  for (; r < nrows; ++r) gemm_row_tiles<K, 1>(a, r, ntok, y, y_stride);
}

}  // namespace
}  // namespace fd
