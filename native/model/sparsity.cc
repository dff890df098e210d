#include "flashdip/sparsity.h"

#include <algorithm>
#include <cstring>

namespace fd {

CacheState::CacheState(int64_t n_units, int64_t capacity, CachePolicyKind policy, bool preloaded)
    : policy_(capacity > 0 ? policy : CachePolicyKind::None),
      preloaded_(preloaded),
      capacity_(policy == CachePolicyKind::None ? 0 : std::min(capacity, n_units)),
      flags_(static_cast<size_t>(n_units), 0),
      in_mask_(static_cast<size_t>(n_units), 0),
      counter_(static_cast<size_t>(n_units), 0) {
  if (preloaded_) capacity_ = n_units;
  reset();
}

void CacheState::reset() {
  std::fill(flags_.begin(), flags_.end(), preloaded_ ? 1 : 0);
  std::fill(counter_.begin(), counter_.end(), 0);
  size_ = preloaded_ ? n_units() : 0;
  evictions_ = 0;
}

int64_t CacheState::access(const int32_t* mask, int64_t k) {
  int64_t hits = 0;
  for (int64_t i = 0; i < k; ++i) hits += flags_[static_cast<size_t>(mask[i])];
  if (policy_ == CachePolicyKind::None) return hits;
  const int64_t n = n_units();
  for (int64_t i = 0; i < k; ++i) in_mask_[static_cast<size_t>(mask[i])] = 1;

  // Counters: LRU ages every cached unit not used; LFU counts uses.
  if (policy_ == CachePolicyKind::Lru) {
    for (int64_t u = 0; u < n; ++u)
      if (flags_[u] && !in_mask_[u]) ++counter_[u];
    for (int64_t i = 0; i < k; ++i) counter_[static_cast<size_t>(mask[i])] = 0;
  } else {
    for (int64_t i = 0; i < k; ++i) ++counter_[static_cast<size_t>(mask[i])];
  }

  const int64_t fresh = k - hits;
  int64_t evict = std::max<int64_t>(0, size_ + fresh - capacity_);
  if (evict > 0) {
    // Candidates: cached units outside the mask, in eviction order.
    scratch_.clear();
    for (int64_t u = 0; u < n; ++u)
      if (flags_[u] && !in_mask_[u]) scratch_.push_back(static_cast<int32_t>(u));
    evict = std::min<int64_t>(evict, static_cast<int64_t>(scratch_.size()));
    auto first = [&](int32_t a, int32_t b) {
      const uint32_t ca = counter_[a], cb = counter_[b];
      if (ca != cb) return policy_ == CachePolicyKind::Lru ? ca > cb : ca < cb;
      return a < b;
    };
    std::partial_sort(scratch_.begin(), scratch_.begin() + evict, scratch_.end(), first);
    for (int64_t i = 0; i < evict; ++i) flags_[static_cast<size_t>(scratch_[i])] = 0;
    size_ -= evict;
    evictions_ += evict;
  }
  // Admit new units of the mask, lowest index first, while there is room.
  for (int64_t i = 0; i < k && size_ < capacity_; ++i) {
    const size_t u = static_cast<size_t>(mask[i]);
    if (!flags_[u]) {
      flags_[u] = 1;
      ++size_;
    }
  }
  for (int64_t i = 0; i < k; ++i) in_mask_[static_cast<size_t>(mask[i])] = 0;
  return hits;
}

void score_hist_add(const float* s, int64_t n, uint64_t* hist) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = score_magnitude(s[i]);
    uint32_t bits;
    std::memcpy(&bits, &r, sizeof bits);
    ++hist[bits >> kScoreHistShift];
  }
}

}  // namespace fd
