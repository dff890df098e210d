#include "flashdip/column_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "flashdip/error.h"
#include "flashdip/model.h"

namespace fd {
namespace {

// blk.<n>.ffn_{gate,up,down,gate_up}[.dip].weight: the MLP weights in either layout. Returns the
// layer, or -1 for another tensor.
int64_t mlp_layer_of(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return -1;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return -1;
  for (size_t i = 4; i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return -1;
  const std::string rest = name.substr(dot + 1);
  for (const char* base : {"ffn_gate", "ffn_up", "ffn_down", "ffn_gate_up"})
    for (const char* suffix : {".weight", ".dip.weight"})
      if (rest == std::string(base) + suffix) return std::stoll(name.substr(4, dot - 4));
  return -1;
}

// blk.<n>.attn_{qkv,output}.dip.weight: attention stored as rows (layout version 2).
bool attn_rows_tensor(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return false;
  for (size_t i = 4; i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  const std::string rest = name.substr(dot + 1);
  return rest == "attn_qkv.dip.weight" || rest == "attn_output.dip.weight";
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

}  // namespace

ByteSplit split_bytes(const Model& model, bool budgeted) {
  ByteSplit s;
  size_t all = 0;
  std::map<int64_t, size_t> per_layer;
  for (const GgufTensor& t : model.file().tensors()) {
    all += t.nbytes;
    if (attn_rows_tensor(t.name)) {
      s.attn += t.nbytes;
      continue;
    }
    const int64_t l = mlp_layer_of(t.name);
    if (l < 0) continue;
    s.mlp += t.nbytes;
    per_layer[l] += t.nbytes;
  }
  // Context::forward_batch reads an untied embedding row per token through the store.
  if (budgeted && model.config().dip_layout && model.output().data != model.token_embd().data)
    if (const GgufTensor* e = model.file().tensor("token_embd.weight")) s.streamed = e->nbytes;
  s.fixed = all - s.mlp - s.attn - s.streamed;
  for (const auto& [l, b] : per_layer) s.mlp_layer = std::max(s.mlp_layer, b);
  return s;
}

void Model::set_budget(const StoreOptions& o) {
  if (store_) fail("ERR_INVALID_ARGUMENT", "the model already has a memory budget");
  if (file_->data_copied())
    fail("ERR_INVALID_ARGUMENT", "the model's weights were copied into DRAM when it was loaded (hugePages): a memory budget needs them on flash");
  store_ = std::make_shared<ColumnStore>(*this, o);
}

ColumnStore::ColumnStore(const Model& model, const StoreOptions& o) : model_(model), opt_(o), bytes_(split_bytes(model, true)) {
  if (!(o.budget >= 0) || o.budget > 0x1p62) fail("ERR_INVALID_ARGUMENT", "memoryBudget is out of range");
  const ModelConfig& c = model.config();
  if (c.dip_layout) {
    // Rows come without the page cache (O_DIRECT) where the file system allows it, unless the page
    // cache was asked to keep what is read (dropPageCache: false).
    const GgufFile& f = model.file();
    row_file_ = std::make_unique<RowFile>(f.path(), f.fd(), o.drop_pages);
    direct_ = row_file_->direct_fd() >= 0;
    if (bytes_.streamed > 0) embd_row_.resize(model.token_embd().row_bytes);
  }
  target_fraction_ = fraction_for(0, 0, 0);
}

double ColumnStore::fraction_for(size_t kv, size_t scratch, size_t adapters) const {
  const double left = opt_.budget - static_cast<double>(bytes_.fixed + bytes_.mlp_layer + adapters + kv + scratch);
  // One fraction of every matrix the caches hold: the MLP's and, on layout version 2, attention's.
  const double columns = static_cast<double>(bytes_.mlp + bytes_.attn);
  if (columns == 0) return 1;
  return std::max(0.0, std::min(1.0, left / columns));
}

void ColumnStore::join(const void* who, const ContextBytes& b) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t kv = b.kv, scratch = b.scratch, adapters = b.adapters;
  for (const auto& [_, m] : members_) {
    kv += m.kv;
    scratch += m.scratch;
    adapters = std::max(adapters, m.adapters);
  }
  const double fixed = static_cast<double>(bytes_.fixed + bytes_.mlp_layer + adapters);
  const double others = static_cast<double>(kv - b.kv + scratch - b.scratch);
  const double need = static_cast<double>(b.kv + b.scratch);
  if (fixed + others + need > opt_.budget) {
    const double left = std::max(0.0, opt_.budget - fixed - others);
    fail("ERR_BUDGET_TOO_SMALL",
         "memoryBudget " + num(opt_.budget) + " bytes holds the model once for all its sessions: this session needs " +
             num(need) + " bytes (" + num(static_cast<double>(b.kv)) + " KV cache + " + num(static_cast<double>(b.scratch)) +
             " scratch) but " + num(left) + " are left (after " + num(static_cast<double>(bytes_.fixed)) + " static + " +
             num(static_cast<double>(bytes_.mlp_layer)) + " streaming buffer" +
             (adapters ? " + " + num(static_cast<double>(adapters)) + " LoRA adapters" : std::string()) + " + " +
             num(others) + " held by " + std::to_string(members_.size()) + " other session" +
             (members_.size() == 1 ? "" : "s") + "); use a smaller contextSize, kvCacheType f16, fewer sessions or a larger memoryBudget");
  }
  if (members_.empty() && row_file_) {
    // The first session of an idle store opens the reader (FLASHDIP_IO is read now: ERR_INVALID_ARGUMENT
    // for an unknown engine). No context exists, so no evaluation uses the old one; the caches are
    // rebuilt over the new one at the next sync.
    rc_ug_.clear();
    rc_down_.clear();
    rc_qkv_.clear();
    rc_o_.clear();
    reader_.reset();
    reader_ = std::make_unique<Reader>(direct_ ? row_file_->direct_fd() : row_file_->fd());
    io_engine_ = std::string(reader_->engine()) + (direct_ ? " direct" : " buffered");
    applied_fraction_ = -1;
  }
  members_[who] = b;
  target_fraction_ = fraction_for(kv, scratch, adapters);
}

void ColumnStore::leave(const void* who) {
  std::lock_guard<std::mutex> lock(mu_);
  members_.erase(who);
  size_t kv = 0, scratch = 0, adapters = 0;
  for (const auto& [_, m] : members_) {
    kv += m.kv;
    scratch += m.scratch;
    adapters = std::max(adapters, m.adapters);
  }
  target_fraction_ = fraction_for(kv, scratch, adapters);
}

void ColumnStore::request_reset(const void* who) {
  std::lock_guard<std::mutex> lock(mu_);
  if (members_.size() == 1 && members_.count(who)) reset_requested_ = true;
}

void ColumnStore::sync() {
  double target;
  bool reset;
  {
    std::lock_guard<std::mutex> lock(mu_);
    target = target_fraction_;
    reset = reset_requested_;
    reset_requested_ = false;
  }
  if (target != applied_fraction_) return rebuild(target);
  if (!reset) return;
  for (int unit = 0; unit < 4; ++unit) {
    for (CacheState& cs : *caches(unit)) cs.reset();
    for (RowCache& rc : *row_caches(unit)) rc.reset();
  }
}

// New, empty caches of the fraction's capacity; each layer's old slots are freed before its new ones
// are allocated, so the store never holds both sizes of more than one matrix.
void ColumnStore::rebuild(double fraction) {
  const ModelConfig& c = model_.config();
  const size_t L = static_cast<size_t>(c.n_layers);
  const bool attn = c.dip_attention;  // attention rows: served like the MLP's
  cache_ug_.resize(L);
  cache_down_.resize(L);
  cache_qkv_.resize(attn ? L : 0);
  cache_o_.resize(attn ? L : 0);
  const bool rows = c.dip_layout;
  if (rows) {
    rc_ug_.reserve(L);
    rc_down_.reserve(L);
    if (attn) {
      rc_qkv_.reserve(L);
      rc_o_.reserve(L);
    }
  }
  const GgufFile& f = model_.file();
  auto offset = [&](const Weight& w) { return f.file_offset(w.data); };
  for (size_t l = 0; l < L; ++l) {
    cache_ug_[l] = CacheState(c.dim, static_cast<int64_t>(fraction * static_cast<double>(c.dim)), opt_.policy);
    cache_down_[l] = CacheState(c.ffn, static_cast<int64_t>(fraction * static_cast<double>(c.ffn)), opt_.policy);
    if (attn) {
      cache_qkv_[l] = CacheState(c.dim, static_cast<int64_t>(fraction * static_cast<double>(c.dim)), opt_.policy);
      cache_o_[l] = CacheState(c.q_dim(), static_cast<int64_t>(fraction * static_cast<double>(c.q_dim())), opt_.policy);
    }
    if (!rows) continue;
    const LayerWeights& W = model_.layer(static_cast<int64_t>(l));
    auto make = [&](const Weight& w, int64_t n_rows, int64_t capacity) {
      return RowCache(reader_.get(), row_file_->fd(), direct_ ? row_file_->direct_align() : 0, offset(w), w.row_bytes, n_rows, capacity, opt_.drop_pages);
    };
    if (rc_ug_.size() <= l) {
      rc_ug_.push_back(make(W.dip_gate_up, c.dim, 0));
      rc_down_.push_back(make(W.dip_down, c.ffn, 0));
    }
    rc_ug_[l] = make(W.dip_gate_up, c.dim, 0);  // frees the old slots first
    rc_ug_[l] = make(W.dip_gate_up, c.dim, cache_ug_[l].capacity());
    rc_down_[l] = make(W.dip_down, c.ffn, 0);
    rc_down_[l] = make(W.dip_down, c.ffn, cache_down_[l].capacity());
    if (!attn) continue;
    if (rc_qkv_.size() <= l) {
      rc_qkv_.push_back(make(W.dip_qkv, c.dim, 0));
      rc_o_.push_back(make(W.dip_o, c.q_dim(), 0));
    }
    rc_qkv_[l] = make(W.dip_qkv, c.dim, 0);
    rc_qkv_[l] = make(W.dip_qkv, c.dim, cache_qkv_[l].capacity());
    rc_o_[l] = make(W.dip_o, c.q_dim(), 0);
    rc_o_[l] = make(W.dip_o, c.q_dim(), cache_o_[l].capacity());
  }
  applied_fraction_ = fraction;
}

BudgetReport ColumnStore::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  BudgetReport r;
  r.budget = opt_.budget;
  r.bytes = bytes_;
  r.sessions = static_cast<int64_t>(members_.size());
  for (const auto& [_, m] : members_) {
    r.kv += m.kv;
    r.scratch += m.scratch;
    r.adapters = std::max(r.adapters, m.adapters);
  }
  r.cache_fraction = target_fraction_;
  r.cache_bytes = target_fraction_ * static_cast<double>(bytes_.mlp + bytes_.attn);
  r.hits = hits_;
  r.misses = misses_;
  r.io = io_;
  return r;
}

void ColumnStore::account(int64_t hits, int64_t misses, const IoStats& io) {
  std::lock_guard<std::mutex> lock(mu_);
  hits_ += hits;
  misses_ += misses;
  io_.bytes_read += io.bytes_read;
  io_.gap_bytes += io.gap_bytes;
  io_.reads += io.reads;
  io_.seconds += io.seconds;
  io_.wait_seconds += io.wait_seconds;
}

size_t ColumnStore::owned_bytes() const {
  size_t n = stream_.capacity() + embd_row_.size() + (reader_ ? reader_->bounce_bytes() : 0);
  for (const std::vector<RowCache>* v : {&rc_ug_, &rc_down_, &rc_qkv_, &rc_o_})
    for (const RowCache& rc : *v) n += rc.owned_bytes();
  return n;
}

}  // namespace fd
