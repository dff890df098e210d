// Dynamic Input Pruning (PAPER.md): which MLP columns each token uses, and the bookkeeping of the
// DRAM column cache those columns come from.
//
// Units of caching, per layer: "ug" unit j = column j of W_up and of W_gate (the x-mask), "down"
// unit i = column i of W_down (the h-mask); with attention DIP also "qkv" unit j = column j of W_q,
// W_k and W_v, and "o" unit i = column i of W_o.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fd {

enum class SparseMethod : int { Dense = 0, Dip = 1, DipCa = 2, Glu = 3, Gate = 4, Up = 5 };
enum class CachePolicyKind : int { None = 0, Lru = 1, Lfu = 2 };

struct SparsityConfig {
  SparseMethod method = SparseMethod::Dense;
  double keep_x = 1.0;       // fraction of MLP inputs kept (x-mask)
  double keep_h = 1.0;       // fraction of intermediate activations kept (h-mask, and glu/gate/up)
  double gamma = 1.0;        // DIP-CA: weight of uncached columns
  int64_t fixed_top_n = 0;   // DIP-CA: columns with the highest raw score, never down-weighted
  bool warmup = true;        // DIP-CA: gamma_t = 1 - (1 - gamma)(1 - gamma^(t/4))
  bool alpha_blend = false;  // DIP-CA variant: s' = gamma s + (1 - gamma)[cached]
  // DIP-CA with block reads (dipca_block_misses): a token's misses come from blocks of this many
  // bytes of adjacent columns (as laid out in the file; 0: off), taken to hold read_cover times as
  // many candidate columns as there are misses.
  double read_block = 0;
  double read_cover = 1.0;
  // The cache policy, the budget and the page cache dropping belong to the model's column store
  // (column_store.h, StoreOptions), shared by its contexts.
  // Calibrated-threshold variant (PAPER.md; TEAL): instead of a fixed top-k, a token keeps the
  // columns whose score r_i >= the layer's threshold, so k varies per token. r_i = |score_i| (NaN
  // counts as 0), the score being the one top-k ranks by (|x|; |h|, |silu(W_g x)| or |W_u x|).
  // Ties: every column whose score equals the threshold is kept (no index order, unlike top-k); a
  // threshold of 0 keeps every column, which computes exactly the dense MLP; a token may keep none.
  // DIP-CA: the threshold only sets how many columns the token keeps (k = #{r_i >= t}); which ones
  // is then DIP-CA's cache-aware top-k of that k, so with nothing down-weighted it is the same mask.
  // Both empty: top-k. Otherwise thr_h has one entry per layer, and thr_x too for dip/dip-ca only.
  std::vector<float> thr_x;     // [n_layers] x-mask thresholds (dip, dip-ca)
  std::vector<float> thr_h;     // [n_layers] h-mask thresholds (every sparse method)
  // DIP on attention inputs (TEAL-style, beyond the paper), independent of the MLP method: a token
  // keeps this fraction of the attention block's input (after its RMSNorm; one mask for the columns
  // of W_q, W_k and W_v) and of W_o's input. 1 with no thresholds: dense attention, computed exactly
  // as without this option. DIP-CA's cache-aware scoring applies to these masks too (method dip-ca).
  double keep_attn = 1.0;
  std::vector<float> thr_attn_in;   // [n_layers] thresholds of the q/k/v input mask (empty: top-k)
  std::vector<float> thr_attn_out;  // [n_layers] thresholds of the W_o input mask (given with thr_attn_in)
};

// r = |v| with NaN as 0: the magnitude top-k and the thresholds rank by.
inline float score_magnitude(float v) { return v != v ? 0.0f : std::fabs(v); }

// Histogram of score magnitudes over the bit patterns of r (monotone for r >= 0): bin = bits >> 16,
// so a bin spans 2^16 ulps, a relative width of 2^-7 of its value; 32768 bins cover every float
// from 0 to +inf. Calibration accumulates one per layer and mask, whatever the text length.
constexpr int kScoreHistShift = 16;
constexpr int64_t kScoreHistBins = int64_t(1) << (31 - kScoreHistShift);
// hist[bin(r_i)] += 1 for i in [0, n).
void score_hist_add(const float* s, int64_t n, uint64_t* hist);

// Mask-first admission over a fixed number of slots (PAPER.md "Column cache"): every column of the
// mask is brought in; when there is no room, cached columns outside the mask are evicted, by the
// policy's order (ties: the lower index goes first); if the mask has more new columns than can fit,
// the lowest-indexed new ones are admitted and the rest stream from flash.
class CacheState {
 public:
  CacheState() = default;
  // preloaded: every unit starts cached (everything in DRAM, no budget); else the cache starts empty.
  CacheState(int64_t n_units, int64_t capacity, CachePolicyKind policy, bool preloaded = false);

  // Records one token's mask (ascending, unique indices) and returns how many were already cached.
  int64_t access(const int32_t* mask, int64_t k);
  bool cached(int64_t unit) const { return flags_[static_cast<size_t>(unit)] != 0; }
  const uint8_t* flags() const { return flags_.data(); }
  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }
  int64_t n_units() const { return static_cast<int64_t>(flags_.size()); }
  int64_t evictions() const { return evictions_; }
  void reset();

 private:
  CachePolicyKind policy_ = CachePolicyKind::None;
  bool preloaded_ = false;
  int64_t capacity_ = 0;
  int64_t size_ = 0;
  int64_t evictions_ = 0;
  std::vector<uint8_t> flags_;      // [unit] cached?
  std::vector<uint8_t> in_mask_;    // [unit] scratch
  std::vector<uint32_t> counter_;   // LRU: tokens since last use; LFU: uses so far
  std::vector<int32_t> scratch_;
};

}  // namespace fd
