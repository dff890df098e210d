// The column store of one model under a memory budget: the DRAM column caches (the policy's
// CacheStates and, on a converted file, the RowCaches whose slots hold the rows), the reader and
// the streaming buffer. It belongs to the model and is shared by all the contexts (sessions) made
// from it, so one budget holds for the model: each context brings only its own KV cache and scratch,
// counted when it is made, and the caches get what the budget leaves.
//
// Thread safety: the caches, the reader and the buffers are used only under the model's compute
// mutex (Context::eval holds it: the evaluations of a model's contexts run one at a time). The
// accounting (join, leave, request_reset, report) takes the store's own mutex and may be called from
// any thread, also while an evaluation runs; what it changes reaches the caches at the next sync(),
// which runs under the compute mutex at the start of every evaluation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flashdip/reader.h"
#include "flashdip/sparsity.h"
#include "flashdip/store.h"

namespace fd {

class Model;

// The model file's bytes by what a budget does with them.
struct ByteSplit {
  size_t mlp = 0;        // MLP weights: what DIP prunes and the column cache holds
  size_t attn = 0;       // attention stored as rows (layout version 2): the column cache holds them too
  size_t fixed = 0;      // everything else kept in DRAM (other attention, norms, the output head...): "static"
  size_t streamed = 0;   // an untied token embedding read one row per token under the store (converted files)
  size_t mlp_layer = 0;  // the largest layer's MLP: the streaming buffer can need this much
};
// Under a budget (`budgeted`): a converted file with an untied output head streams its embedding
// table; otherwise streamed is 0 and the table is static.
ByteSplit split_bytes(const Model& model, bool budgeted);

struct StoreOptions {
  double budget = 0;  // bytes
  CachePolicyKind policy = CachePolicyKind::Lfu;
  bool drop_pages = true;  // drop the page cache of rows read (posix_fadvise)
};

// What a context counts in the budget.
struct ContextBytes {
  size_t kv = 0;        // the KV cache as reserved (contextSize positions)
  size_t scratch = 0;   // its scratch buffers
  size_t adapters = 0;  // the LoRA adapters loaded on the model when it was made (the store keeps the largest)
};

// The budget's split, as of the last join/leave (the caches take it at the next evaluation).
struct BudgetReport {
  double budget = 0;
  ByteSplit bytes;
  size_t adapters = 0;          // reserved for LoRA adapters (once for the model)
  int64_t sessions = 0;         // contexts counted
  size_t kv = 0, scratch = 0;   // theirs, summed
  double cache_bytes = 0;       // what is left for the column caches (<= bytes.mlp + bytes.attn)
  double cache_fraction = 1;    // cache_bytes / (bytes.mlp + bytes.attn): of every matrix they hold (1 when none)
  // Totals over every context since the store was made: MLP column units used (hits: in the cache)
  // and reads from the file.
  int64_t hits = 0, misses = 0;
  IoStats io;
};

class ColumnStore {
 public:
  ColumnStore(const Model& model, const StoreOptions& options);
  ColumnStore(const ColumnStore&) = delete;
  ColumnStore& operator=(const ColumnStore&) = delete;

  // Counts a context in the budget. Throws ERR_BUDGET_TOO_SMALL, with what it needs and what is
  // left, when it does not fit next to the static weights, the streaming buffer, the adapters and
  // the contexts already counted. The first context of an idle store opens the reader (Reader's
  // FLASHDIP_IO; ERR_INVALID_ARGUMENT) and starts the caches over.
  void join(const void* who, const ContextBytes& bytes);
  void leave(const void* who);
  // A context starts a new sequence: the caches start empty at the next evaluation, as they would
  // for a lone sequence, but only when no other context shares them (their contents are the others' too).
  void request_reset(const void* who);
  // Under the compute mutex, before an evaluation: resizes the caches to what the budget leaves now
  // (emptying them) and applies a requested reset.
  void sync();

  BudgetReport report() const;
  const StoreOptions& options() const { return opt_; }
  // The fraction the caches hold now (as of the last sync).
  double cache_fraction() const { return applied_fraction_; }
  // unit 0: x-mask (W_gate/W_up columns), 1: h-mask (W_down columns), and on layout version 2
  // (attention stored as rows) 2: the q/k/v input (W_q/W_k/W_v columns), 3: W_o's input.
  CacheState& cache(int unit, int64_t layer) { return (*caches(unit))[static_cast<size_t>(layer)]; }
  // The rows' slots, or nullptr on a file in the standard layout (the caches then only count).
  RowCache* rows(int unit, int64_t layer) {
    std::vector<RowCache>& v = *row_caches(unit);
    return v.empty() ? nullptr : &v[static_cast<size_t>(layer)];
  }
  std::vector<uint8_t>& stream() { return stream_; }
  // An untied token embedding row read from the file (converted files: the table is not held); empty
  // when the table is held. Not counted in the budget (one row).
  std::vector<uint8_t>& embd_row() { return embd_row_; }
  // The descriptor for plain reads of the file (the embedding rows), -1 without rows.
  int fd() const { return row_file_ ? row_file_->fd() : -1; }
  const std::string& io_engine() const { return io_engine_; }  // as of the last join
  // Adds a finished batch's counts to the totals.
  void account(int64_t hits, int64_t misses, const IoStats& io);
  // Bytes held now: the slots, the streaming buffer and the reader's bounce buffer.
  size_t owned_bytes() const;

 private:
  // Caller holds mu_.
  double fraction_for(size_t kv, size_t scratch, size_t adapters) const;
  void rebuild(double fraction);
  std::vector<CacheState>* caches(int unit) {
    std::vector<CacheState>* v[4] = {&cache_ug_, &cache_down_, &cache_qkv_, &cache_o_};
    return v[unit];
  }
  std::vector<RowCache>* row_caches(int unit) {
    std::vector<RowCache>* v[4] = {&rc_ug_, &rc_down_, &rc_qkv_, &rc_o_};
    return v[unit];
  }

  const Model& model_;
  StoreOptions opt_;
  ByteSplit bytes_;
  mutable std::mutex mu_;  // guards the fields below up to the caches
  std::map<const void*, ContextBytes> members_;
  double target_fraction_ = 1;
  bool reset_requested_ = false;
  int64_t hits_ = 0, misses_ = 0;
  IoStats io_;
  // Used under the compute mutex only.
  double applied_fraction_ = -1;  // < 0: not built yet
  std::vector<CacheState> cache_ug_, cache_down_;  // [layer]
  std::vector<CacheState> cache_qkv_, cache_o_;    // [layer], layout version 2 only
  std::unique_ptr<RowFile> row_file_;              // the model file, opened for the store's reads
  std::unique_ptr<Reader> reader_;                 // the reads of all the row caches
  bool direct_ = false;
  std::vector<RowCache> rc_ug_, rc_down_;          // [layer]
  std::vector<RowCache> rc_qkv_, rc_o_;            // [layer], layout version 2 only
  std::vector<uint8_t> stream_;                    // rows read for one mask and not cached
  std::vector<uint8_t> embd_row_;
  std::string io_engine_;
};

}  // namespace fd
