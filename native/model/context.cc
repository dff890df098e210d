// The forward pass of the llama family for one sequence, batch by batch.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "flashdip/column_store.h"
#include "flashdip/error.h"
#include "flashdip/kernels.h"
#include "flashdip/model.h"
#include "flashdip/ops.h"
#include "flashdip/sparse.h"
#include "flashdip/types.h"

namespace fd {
namespace {

// Below this many multiply-adds a job runs on the calling thread: waking a worker costs more than
// it saves (a 64-wide model on 2 cores gets slower with threads, as llama.cpp does).
constexpr double kMinParallelWork = 1 << 17;

int64_t keep_count(double keep, int64_t total) {
  return std::min(total, std::max<int64_t>(1, static_cast<int64_t>(std::floor(keep * static_cast<double>(total)))));
}

}  // namespace

Context::Context(Model& model, const ContextOptions& o)
    : model_(model),
      cfg_(model.config()),
      n_ctx_(o.n_ctx > 0 ? o.n_ctx : model.config().ctx_train),
      kv_type_(o.kv_type),
      max_batch_(std::max<int64_t>(1, o.max_batch)),
      threads_(o.threads > 0 ? std::min(o.threads, model.pool().size()) : model.pool().size()) {
  if (kv_type_ != TYPE_F32 && kv_type_ != TYPE_F16)
    fail("ERR_INVALID_ARGUMENT", "kvCacheType must be f32 or f16");
  if (n_ctx_ < 1 || n_ctx_ > (int64_t(1) << 24)) fail("ERR_INVALID_ARGUMENT", "contextSize is out of range");
  const ModelConfig& c = cfg_;
  kv_row_bytes_ = row_bytes(kv_type_, c.kv_dim());
  // Sliding-window layers keep a ring of their window plus what one batch writes; full layers n_ctx.
  bool any_swa = false;
  for (int64_t l = 0; l < c.n_layers; ++l) any_swa = any_swa || c.is_swa(l);
  ring_slots_ = any_swa ? std::min(n_ctx_, c.swa_window + max_batch_ - 1) : n_ctx_;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    kv_first_.push_back(kv_rows_);
    kv_slots_.push_back(c.is_swa(l) ? ring_slots_ : n_ctx_);
    kv_rows_ += kv_slots_.back();
  }
  const double kv_bytes = static_cast<double>(kv_row_bytes_) * static_cast<double>(kv_rows_);
  const int64_t group = c.n_heads / c.n_kv_heads;
  if (kv_bytes > 0x1p60 || !k_cache_.allocate(static_cast<size_t>(kv_bytes)) || !v_cache_.allocate(static_cast<size_t>(kv_bytes)) ||
      !att_scores_.allocate(static_cast<size_t>(threads_ * group * n_ctx_)))
    fail("ERR_INVALID_ARGUMENT", "contextSize " + std::to_string(n_ctx_) + " needs " + std::to_string(2 * kv_bytes / 1e9) +
                                     " GB of KV cache, which this machine cannot reserve; use a smaller contextSize (or kvCacheType f16)");
  if (ring_slots_ < n_ctx_) att_tmp_.resize(static_cast<size_t>(threads_ * group * c.head_dim));
  const size_t B = static_cast<size_t>(max_batch_);
  x_.resize(B * c.dim);
  xn_.resize(B * c.dim);
  const int64_t qkv = c.q_dim() + 2 * c.kv_dim();
  q_.resize(B * (cfg_.arch == "phi3" ? qkv : c.q_dim()));
  k_.resize(B * c.kv_dim());
  v_.resize(B * c.kv_dim());
  att_out_.resize(B * c.q_dim());
  gate_.resize(std::max(B * c.ffn * (cfg_.arch == "phi3" ? 2 : 1), static_cast<size_t>(2 * c.ffn)));
  up_.resize(B * c.ffn);
  // Quantized activations: the widest input is max(dim, ffn, q_dim); f32 is the widest encoding.
  const int64_t widest = std::max({c.dim, c.ffn, c.q_dim()});
  xq_.resize(B * (static_cast<size_t>(widest) * sizeof(float) + 64));
  rope_cos_.resize(B * (c.head_dim / 2));
  rope_sin_.resize(B * (c.head_dim / 2));

  sp_ = o.sparsity;
  if (!(sp_.keep_x > 0 && sp_.keep_x <= 1 && sp_.keep_h > 0 && sp_.keep_h <= 1 && sp_.gamma >= 0 && sp_.gamma <= 1 &&
        sp_.fixed_top_n >= 0 && sp_.read_block >= 0 && sp_.read_cover >= 1 && sp_.keep_attn > 0 && sp_.keep_attn <= 1))
    fail("ERR_INVALID_ARGUMENT", "sparsity options are out of range");
  // Columns kept per token: k = floor(keep * width), at least 1 (PAPER.md); x is pruned by DIP only.
  const bool dip = sp_.method == SparseMethod::Dip || sp_.method == SparseMethod::DipCa;
  keep_x_ = dip ? keep_count(sp_.keep_x, c.dim) : c.dim;
  keep_h_ = sp_.method == SparseMethod::Dense ? c.ffn : keep_count(sp_.keep_h, c.ffn);
  // Calibrated thresholds: one per layer for the h-mask of every sparse method, and for DIP's x-mask.
  if (!sp_.thr_x.empty() || !sp_.thr_h.empty()) {
    if (sp_.method == SparseMethod::Dense) fail("ERR_INVALID_ARGUMENT", "sparsity thresholds need a sparse method");
    const size_t layers = static_cast<size_t>(c.n_layers);
    if (sp_.thr_h.size() != layers || sp_.thr_x.size() != (dip ? layers : 0))
      fail("ERR_INVALID_ARGUMENT", "sparsity thresholds: expected " + std::to_string(layers) + " per layer for the h-mask" +
                                       (dip ? " and as many for the x-mask" : " and none for the x-mask"));
    for (const std::vector<float>* t : {&sp_.thr_x, &sp_.thr_h})
      for (float v : *t)
        if (!(v >= 0) || !std::isfinite(v)) fail("ERR_INVALID_ARGUMENT", "sparsity thresholds must be finite and >= 0");
  }
  // Attention DIP: k of the q/k/v input [dim] and of W_o's input [q_dim], or per-layer thresholds.
  if (!sp_.thr_attn_in.empty() || !sp_.thr_attn_out.empty()) {
    const size_t layers = static_cast<size_t>(c.n_layers);
    if (sp_.thr_attn_in.size() != layers || sp_.thr_attn_out.size() != layers)
      fail("ERR_INVALID_ARGUMENT", "attention thresholds: expected " + std::to_string(layers) + " per layer for each attention mask");
    for (const std::vector<float>* t : {&sp_.thr_attn_in, &sp_.thr_attn_out})
      for (float v : *t)
        if (!(v >= 0) || !std::isfinite(v)) fail("ERR_INVALID_ARGUMENT", "sparsity thresholds must be finite and >= 0");
  }
  attn_sparse_ = sp_.keep_attn < 1 || !sp_.thr_attn_in.empty() || (o.histograms && o.attn_histograms);
  keep_a_ = attn_sparse_ ? keep_count(sp_.keep_attn, c.dim) : c.dim;
  keep_o_ = attn_sparse_ ? keep_count(sp_.keep_attn, c.q_dim()) : c.q_dim();
  if (o.histograms) hist_.assign(static_cast<size_t>(c.n_layers * score_hist_masks() * kScoreHistBins), 0);
  store_ = model.store();
  track_ = sp_.method != SparseMethod::Dense || store_ || o.record || attn_sparse_;
  stats_.record = o.record;
  const int64_t widest_mlp = std::max({c.dim, c.ffn, c.q_dim()});
  mask_.resize(static_cast<size_t>(widest_mlp));
  gather_tmp_.resize(static_cast<size_t>(threads_) * 32);
  keep_.resize(static_cast<size_t>(widest_mlp));
  stats_.layers.resize(static_cast<size_t>(c.n_layers));
  if (track_ && !store_) {
    // Without a budget everything is in DRAM: the caches start full and every use is a hit.
    for (int64_t l = 0; l < c.n_layers; ++l) {
      cache_ug_.emplace_back(c.dim, c.dim, CachePolicyKind::None, true);
      cache_down_.emplace_back(c.ffn, c.ffn, CachePolicyKind::None, true);
    }
  }
  // The attention units' bookkeeping when attention has masks or rows. On layout version 2 under a
  // budget the store's caches serve them (shared, sized from the budget like the MLP's); otherwise
  // attention is in DRAM: full caches, every use a hit (and nothing down-weighted by DIP-CA).
  if (track_ && (attn_sparse_ || c.dip_attention) && !(store_ && c.dip_attention))
    for (int64_t l = 0; l < c.n_layers; ++l) {
      cache_qkv_.emplace_back(c.dim, c.dim, CachePolicyKind::None, true);
      cache_o_.emplace_back(c.q_dim(), c.q_dim(), CachePolicyKind::None, true);
    }
  if (c.dip_attention) qkv_tmp_.resize(static_cast<size_t>(c.q_dim() + 2 * c.kv_dim()));
  row_ptr_.resize(static_cast<size_t>(widest_mlp));
  row_coef_.resize(static_cast<size_t>(widest_mlp));
  pending_.resize(static_cast<size_t>(widest_mlp));
  // Bytes per unit as stored in this file, averaged over the layers.
  double ug = 0, down = 0, qkv_bytes = 0, o_bytes = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = model.layer(l);
    if (L.dip_qkv.data) {
      qkv_bytes += static_cast<double>(L.dip_qkv.nbytes());
      o_bytes += static_cast<double>(L.dip_o.nbytes());
    } else {
      qkv_bytes += static_cast<double>(L.wqkv.data ? L.wqkv.nbytes() : L.wq.nbytes() + L.wk.nbytes() + L.wv.nbytes());
      o_bytes += static_cast<double>(L.wo.nbytes());
    }
    if (L.dip_gate_up.data) {
      ug += static_cast<double>(L.dip_gate_up.nbytes());
      down += static_cast<double>(L.dip_down.nbytes());
    } else {
      ug += static_cast<double>(L.w_gate_up.data ? L.w_gate_up.nbytes() : L.w_gate.nbytes() + L.w_up.nbytes());
      down += static_cast<double>(L.w_down.nbytes());
    }
  }
  stats_.ug_unit_bytes = ug / static_cast<double>(c.n_layers * c.dim);
  stats_.down_unit_bytes = down / static_cast<double>(c.n_layers * c.ffn);
  stats_.qkv_unit_bytes = qkv_bytes / static_cast<double>(c.n_layers * c.dim);
  stats_.o_unit_bytes = o_bytes / static_cast<double>(c.n_layers * c.q_dim());
  if (sp_.method == SparseMethod::DipCa && sp_.read_block > 0) {
    block_cols_[0] = static_cast<int64_t>(sp_.read_block / stats_.ug_unit_bytes);
    block_cols_[1] = static_cast<int64_t>(sp_.read_block / stats_.down_unit_bytes);
    block_cols_[2] = static_cast<int64_t>(sp_.read_block / stats_.qkv_unit_bytes);
    block_cols_[3] = static_cast<int64_t>(sp_.read_block / stats_.o_unit_bytes);
  }
  published_ = stats_;
  scratch_bytes_ = xq_.size() + mask_.size() * sizeof(int32_t) + keep_.size() + pending_.size() +
                   row_ptr_.size() * sizeof(void*) + hist_.size() * sizeof(uint64_t) +
                   sizeof(float) * (x_.size() + xn_.size() + q_.size() + k_.size() + v_.size() + att_out_.size() + gate_.size() +
                                    up_.size() + att_scores_.size() + rope_cos_.size() + rope_sin_.size() + row_coef_.size() +
                                    gather_tmp_.size() + qkv_tmp_.size() + att_tmp_.size()) +
                   (static_cast<size_t>(c.dim + c.ffn) * cache_ug_.size() +
                    static_cast<size_t>(c.dim + c.q_dim()) * cache_qkv_.size()) * 6;  // own cache states
  if (store_) {
    store_->join(this, {this->kv_bytes(), scratch_bytes_, o.adapter_bytes});
    stats_.io_engine = store_->io_engine();
    published_.io_engine = stats_.io_engine;
  }
}

Context::~Context() {
  if (store_) store_->leave(this);
}

void Context::reset_sparsity_stats() {
  stats_.tokens = 0;
  stats_.trace.clear();
  stats_.times.clear();
  stats_.masks.clear();
  stats_.attn_trace.clear();
  stats_.attn_masks.clear();
  stats_.io = IoStats();
  for (LayerStats& s : stats_.layers) s = LayerStats();
  std::lock_guard<std::mutex> lock(stats_mu_);
  published_ = stats_;
}

// Makes the finished batch visible to read_sparsity_stats: the counters are copied (a few per
// layer) and the batch's trace, times and masks appended, so the lock is held for what the batch
// added, not for the whole run.
void Context::publish_stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  SparsityStats& p = published_;
  if (store_) {  // the model's totals get what the batch added
    int64_t hits = 0, misses = 0;
    for (size_t l = 0; l < stats_.layers.size(); ++l) {
      const LayerStats &a = stats_.layers[l], &b = p.layers[l];
      hits += a.ug_hits + a.down_hits - b.ug_hits - b.down_hits;
      misses += a.ug_misses + a.down_misses - b.ug_misses - b.down_misses;
    }
    IoStats d;
    d.bytes_read = stats_.io.bytes_read - p.io.bytes_read;
    d.gap_bytes = stats_.io.gap_bytes - p.io.gap_bytes;
    d.reads = stats_.io.reads - p.io.reads;
    d.seconds = stats_.io.seconds - p.io.seconds;
    d.wait_seconds = stats_.io.wait_seconds - p.io.wait_seconds;
    store_->account(hits, misses, d);
  }
  p.tokens = stats_.tokens;
  p.io = stats_.io;
  p.layers = stats_.layers;
  p.trace.insert(p.trace.end(), stats_.trace.begin(), stats_.trace.end());
  p.times.insert(p.times.end(), stats_.times.begin(), stats_.times.end());
  for (std::vector<int32_t>& m : stats_.masks) p.masks.push_back(std::move(m));
  p.attn_trace.insert(p.attn_trace.end(), stats_.attn_trace.begin(), stats_.attn_trace.end());
  for (std::vector<int32_t>& m : stats_.attn_masks) p.attn_masks.push_back(std::move(m));
  stats_.trace.clear();
  stats_.times.clear();
  stats_.masks.clear();
  stats_.attn_trace.clear();
  stats_.attn_masks.clear();
}

size_t Context::kv_bytes(int64_t positions) const {
  size_t rows = 0;
  for (int64_t slots : kv_slots_) rows += static_cast<size_t>(std::min(slots, std::max<int64_t>(0, positions)));
  return 2 * kv_row_bytes_ * rows;
}

size_t Context::owned_bytes() const {
  const size_t kv = kv_bytes(kv_high_);
  const size_t scores = att_scores_.size() / static_cast<size_t>(n_ctx_) * static_cast<size_t>(kv_high_);
  return kv + scratch_bytes_ - sizeof(float) * (att_scores_.size() - scores);
}

int Context::threads_for(double work) const { return work < kMinParallelWork ? 1 : threads_; }

int64_t Context::truncate(int64_t n) {
  if (n < 0 || n > n_past()) fail("ERR_INVALID_ARGUMENT", "cannot truncate the context to " + std::to_string(n));
  // A new sequence starts with empty caches (PAPER.md), unless other sessions share them.
  if (n == 0 && store_) store_->request_reset(this);
  // Position n attends back to n + 1 - window on sliding-window layers: if the rings lost any of
  // those, keep nothing (the caller evaluates the sequence again, as llama.cpp does).
  const int64_t needed = std::max<int64_t>(0, n + 1 - cfg_.swa_window);
  const int64_t kept = n == n_past() || ring_lo_ <= needed ? n : 0;
  if (kept == 0) ring_lo_ = 0;
  n_past_.store(kept, std::memory_order_release);
  return kept;
}

void Context::eval(const int32_t* tokens, int64_t n, bool all_logits, float* out) {
  if (n <= 0) fail("ERR_INVALID_ARGUMENT", "no tokens to evaluate");
  if (n_past() + n > n_ctx_)
    fail("ERR_CONTEXT_FULL", "the context holds " + std::to_string(n_ctx_) + " tokens; " + std::to_string(n_past()) +
                                 " are used and " + std::to_string(n) + " more were given");
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.n_vocab)
      fail("ERR_INVALID_ARGUMENT", "token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                                       std::to_string(cfg_.n_vocab - 1) + ")");
  std::lock_guard<std::mutex> lock(model_.compute_mutex());
  if (store_) store_->sync();
  // A model file that changed while loaded is ERR_IO before and after the pass, never a signal (the
  // mapping's SIGBUS guard gives zeros meanwhile); a failed read of the store's rows also makes every
  // later pass ERR_IO, since the row caches may hold what it did not fill.
  const GgufFile& file = model_.file();
  file.check_unchanged();
  try {
    for (int64_t done = 0; done < n;) {
      const int64_t b = std::min(max_batch_, n - done);
      const bool last = done + b == n;
      float* dst = all_logits ? out + done * cfg_.n_vocab : (last ? out : nullptr);
      forward_batch(tokens + done, b, all_logits, dst);
      done += b;
    }
  } catch (const Error& e) {
    if (std::strcmp(e.code(), "ERR_IO") == 0) file.mark_changed();
    throw;
  }
  file.check_unchanged();
}

void Context::matmul(const Weight& w, const float* x, int64_t ntok, float* y, int64_t y_stride) {
  matmuls({{&w, y, y_stride}}, x, ntok);
}

void Context::matmuls(std::initializer_list<MatmulOut> outs, const float* x, int64_t ntok) {
  const MatmulOut* o = outs.begin();
  const size_t count = outs.size();
  const uint32_t vdt = vec_dot_type(o[0].w->type);
  const int64_t n_in = o[0].w->n_in;
  bool together = count <= 4;
  for (size_t i = 1; i < count; ++i) together = together && vec_dot_type(o[i].w->type) == vdt && o[i].w->n_in == n_in;
  if (!together) {
    for (const MatmulOut& one : outs) matmuls({one}, x, ntok);
    return;
  }
  const size_t xrow = row_bytes(vdt, n_in);
  for (int64_t t = 0; t < ntok; ++t) quantize_activation(o[0].w->type, x + t * n_in, xq_.data() + t * xrow, n_in);
  double work = 0;
  for (size_t i = 0; i < count; ++i) work += static_cast<double>(n_in) * static_cast<double>(o[i].w->n_out * ntok);
  const int threads = threads_for(work);
  // Each matrix in slices of rows (about 8 per thread, multiples of 16); task -> (matrix, slice).
  int64_t rows_per_task[4], first_task[5];
  first_task[0] = 0;
  for (size_t i = 0; i < count; ++i) {
    const int64_t n_out = o[i].w->n_out;
    rows_per_task[i] = threads == 1 ? n_out : std::max<int64_t>(16, (n_out / (threads * 8) + 15) / 16 * 16);
    first_task[i + 1] = first_task[i] + (n_out + rows_per_task[i] - 1) / rows_per_task[i];
  }
  model_.pool().run(first_task[count], threads, [&](int64_t task, int) {
    size_t i = 0;
    while (task >= first_task[i + 1]) ++i;
    const Weight& w = *o[i].w;
    const int64_t r0 = (task - first_task[i]) * rows_per_task[i];
    const int64_t rows = std::min(rows_per_task[i], w.n_out - r0);
    const uint8_t* wr = w.data + static_cast<size_t>(r0) * w.row_bytes;
    if (ntok == 1)
      gemv(w.type, wr, w.row_bytes, w.n_in, rows, xq_.data(), o[i].y + r0);
    else
      gemm(w.type, wr, w.row_bytes, w.n_in, rows, xq_.data(), xrow, ntok, o[i].y + r0, static_cast<size_t>(o[i].y_stride));
  });
}

void Context::attention(int64_t layer, int64_t n, int64_t pos0) {
  const ModelConfig& c = cfg_;
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const float scale = c.attn_scale, cap = c.attn_softcap;
  const int64_t window = c.is_swa(layer) ? c.swa_window : 0;
  const int64_t slots = kv_slots_[static_cast<size_t>(layer)];
  const uint8_t* kbase = k_cache_.data() + static_cast<size_t>(kv_first_[static_cast<size_t>(layer)]) * kv_row_bytes_;
  const uint8_t* vbase = v_cache_.data() + static_cast<size_t>(kv_first_[static_cast<size_t>(layer)]) * kv_row_bytes_;
  const size_t elem = kv_type_ == TYPE_F32 ? 4 : 2;
  double work = 0;
  for (int64_t t = 0; t < n; ++t) work += static_cast<double>(pos0 + t + 1);
  work *= static_cast<double>(2 * c.n_heads * hd);
  const int threads = threads_for(work);
  model_.pool().run(n * c.n_kv_heads, threads, [&](int64_t task, int thread) {
    const int64_t t = task / c.n_kv_heads, kvh = task % c.n_kv_heads;
    // Causal: positions first..pos0+t, where a sliding-window layer sees only the last `window`
    // (llama.cpp masks key p0 for query p1 when p1 - p0 >= window).
    const int64_t end = pos0 + t + 1;
    const int64_t first = window > 0 ? std::max<int64_t>(0, end - window) : 0;
    const int64_t len = end - first;
    // The group query heads of this KV head against its slice of every cache row. Positions
    // first..end-1 are in slots from first % slots on, in two runs when a ring wraps (len1 + len2).
    float* scores = att_scores_.data() + static_cast<size_t>(thread * group * n_ctx_);  // [group][n_ctx]
    const int64_t s0 = first % slots, len1 = std::min(len, slots - s0), len2 = len - len1;
    const size_t head = static_cast<size_t>(kvh * hd) * elem;
    const size_t off = head + static_cast<size_t>(s0) * kv_row_bytes_;
    const float* q = q_.data() + t * c.q_dim() + kvh * group * hd;
    attn_scores(kv_type_, q, group, hd, kbase + off, kv_row_bytes_, len1, scale, scores, n_ctx_);
    if (len2 > 0) attn_scores(kv_type_, q, group, hd, kbase + head, kv_row_bytes_, len2, scale, scores + len1, n_ctx_);
    for (int64_t g = 0; g < group; ++g) {
      float* sg = scores + g * n_ctx_;
      if (cap > 0)  // gemma2's soft-capping: s = cap * tanh(s / cap), as ggml computes it
        for (int64_t j = 0; j < len; ++j) sg[j] = std::tanh(sg[j] * (1.0f / cap)) * cap;
      softmax_f32(sg, len);
    }
    float* out = att_out_.data() + t * c.q_dim() + kvh * group * hd;
    attn_values(kv_type_, scores, n_ctx_, group, hd, vbase + off, kv_row_bytes_, len1, out);
    if (len2 > 0) {
      float* tmp = att_tmp_.data() + static_cast<size_t>(thread * group * hd);
      attn_values(kv_type_, scores + len1, n_ctx_, group, hd, vbase + head, kv_row_bytes_, len2, tmp);
      for (int64_t i = 0; i < group * hd; ++i) out[i] += tmp[i];
    }
  });
}


// Masks a[0..total) of the token at position pos, the input of mask `unit` (0: x, the W_up/W_gate
// columns; 1: h, the W_down columns; 2: the q/k/v input; 3: W_o's input) of `layer`, to the columns
// it keeps, zeroing the rest; leaves
// the kept indices (ascending) in mask_ and records the access in the layer's cache. Columns are
// ranked by |score_src| (|a| when null). Returns the number kept: the top-k count, or under
// calibrated thresholds however many pass the layer's threshold (SparsityConfig).
int64_t Context::select_columns(float* a, int64_t total, int64_t layer, int unit, int64_t pos, const float* score_src,
                                int32_t* trace) {
  const SparseMethod m = sp_.method;
  const size_t l = static_cast<size_t>(layer);
  const float* s = score_src ? score_src : a;
  const int masks = score_hist_masks();
  if (!hist_.empty() && unit < masks)
    score_hist_add(s, total, hist_.data() + (l * static_cast<size_t>(masks) + static_cast<size_t>(unit)) * kScoreHistBins);
  const std::vector<float>* thrs[4] = {&sp_.thr_x, &sp_.thr_h, &sp_.thr_attn_in, &sp_.thr_attn_out};
  const std::vector<float>& thr = *thrs[unit];
  const int64_t keeps[4] = {keep_x_, keep_h_, keep_a_, keep_o_};
  int64_t k = keeps[unit];
  if (!thr.empty() && m != SparseMethod::DipCa) {
    // Threshold: keep r_i >= t, in one pass (t = 0 keeps everything and zeroes nothing).
    const float t = thr[l];
    k = 0;
    for (int64_t i = 0; i < total; ++i) {
      if (score_magnitude(s[i]) >= t)
        mask_[static_cast<size_t>(k++)] = static_cast<int32_t>(i);
      else
        a[i] = 0.0f;
    }
  } else {
    if (!thr.empty()) {  // DIP-CA: the threshold sets how many, the cache-aware top-k which ones
      const float t = thr[l];
      k = 0;
      for (int64_t i = 0; i < total; ++i) k += score_magnitude(s[i]) >= t;
    }
    if (k < total) {
      // DIP-CA warm-up over the token index: gamma_t = 1 - (1 - gamma)(1 - gamma^(t/4)).
      double gamma_t = 1.0;
      if (m == SparseMethod::DipCa)
        gamma_t = sp_.warmup ? 1.0 - (1.0 - sp_.gamma) * (1.0 - std::pow(sp_.gamma, static_cast<double>(pos) / 4.0)) : sp_.gamma;
      // With every column in DRAM (no budget, one that holds them all, or attention that is not
      // stored as rows) nothing is down-weighted.
      const bool stored = store_ && (unit < 2 || cfg_.dip_attention);
      const uint8_t* flags =
          m == SparseMethod::DipCa && stored && store_->cache_fraction() < 1 ? cache_of(unit, layer)->flags() : nullptr;
      topk_select(s, total, k, flags, static_cast<float>(gamma_t), sp_.fixed_top_n, sp_.alpha_blend, mask_.data(), nullptr);
      if (flags && block_cols_[unit] > 1)
        dipca_block_misses(s, total, mask_.data(), k, flags, block_cols_[unit], sp_.read_cover, sp_.fixed_top_n);
      std::fill(keep_.begin(), keep_.begin() + total, 0);
      for (int64_t i = 0; i < k; ++i) keep_[static_cast<size_t>(mask_[i])] = 1;
      for (int64_t i = 0; i < total; ++i)
        if (!keep_[static_cast<size_t>(i)]) a[i] = 0.0f;
    } else {
      k = total;
      for (int64_t i = 0; i < total; ++i) mask_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    }
  }
  if (CacheState* cache = cache_of(unit, layer)) {
    LayerStats& st = stats_.layers[l];
    const int64_t h = cache->access(mask_.data(), k);
    int64_t* hits[4] = {&st.ug_hits, &st.down_hits, &st.qkv_hits, &st.o_hits};
    int64_t* misses[4] = {&st.ug_misses, &st.down_misses, &st.qkv_misses, &st.o_misses};
    *hits[unit] += h;
    *misses[unit] += k - h;
    if (trace) {
      trace[0] = static_cast<int32_t>(h), trace[1] = static_cast<int32_t>(k - h);
      // The mask itself, in the slot of this trace entry (two ints per unit of the 4-int entry).
      const bool attn = unit >= 2;
      const size_t slot = static_cast<size_t>(trace - (attn ? stats_.attn_trace : stats_.trace).data()) / 2;
      std::vector<std::vector<int32_t>>& masks = attn ? stats_.attn_masks : stats_.masks;
      if (masks.size() <= slot) masks.resize(slot + 1);
      masks[slot].assign(mask_.begin(), mask_.begin() + k);
    }
  }
  return k;
}

// The cache bookkeeping of a unit's mask in `layer` (select_columns), or nullptr when not tracked:
// under a budget the model's column store's (the MLP's, and attention's on layout version 2),
// else the context's own full caches.
CacheState* Context::cache_of(int unit, int64_t layer) {
  if (!track_) return nullptr;
  if (store_ && (unit < 2 || cfg_.dip_attention)) return &store_->cache(unit, layer);
  std::vector<CacheState>* states[4] = {&cache_ug_, &cache_down_, &cache_qkv_, &cache_o_};
  std::vector<CacheState>& v = *states[unit];
  return static_cast<size_t>(layer) < v.size() ? &v[static_cast<size_t>(layer)] : nullptr;
}

// The trace entry of token t of the current batch at layer l (nullptr when not recording); the
// working trace holds the current batch only (publish_stats).
int32_t* Context::trace_at(int64_t t, int64_t l, bool attn) {
  if (!stats_.record || !track_ || (attn && !cache_of(2, l))) return nullptr;
  std::vector<int32_t>& trace = attn ? stats_.attn_trace : stats_.trace;
  const size_t at = (static_cast<size_t>(t) * static_cast<size_t>(cfg_.n_layers) + static_cast<size_t>(l)) * 4;
  if (trace.size() < at + 4) trace.resize(at + 4, 0);
  return trace.data() + at;
}

void Context::act_mul(float* g, const float* u, float* h, int64_t n) const {
  if (cfg_.act == Activation::GeluTanh)
    gelu_mul_f32(g, u, h, n);
  else
    silu_mul_f32(g, u, h, n);
}

// The score the h-mask ranks by: |h| (DIP, DIP-CA, GLU), |act(W_gate x)| (gate) or |W_up x| (up).
// g points at act(gate) and u at the up projection of one token (u may be null when not needed).
static const float* h_scores(SparseMethod m, const float* g, const float* u) {
  if (m == SparseMethod::Gate) return g;
  if (m == SparseMethod::Up) return u;
  return nullptr;
}

// Gated MLP (SwiGLU or GeGLU) of one layer for n tokens: xn_ [n][dim] in, xn_ [n][dim] out. Under a sparse method the
// masked inputs are zeroed, which computes exactly the sum over the kept columns; on a file in the
// standard layout this still reads every weight (accuracy work); the DIP layout reads only those.
void Context::mlp(const LayerWeights& L, int64_t l, int64_t n, int64_t pos0) {
  if (L.dip_gate_up.data) return mlp_dip_layout(L, l, n, pos0);
  const int64_t dim = cfg_.dim, F = cfg_.ffn;
  const SparseMethod m = sp_.method;

  // x-mask (DIP, DIP-CA): one mask shared by W_up and W_gate.
  for (int64_t t = 0; t < n; ++t) select_columns(xn_.data() + t * dim, dim, l, 0, pos0 + t, nullptr, trace_at(t, l));

  // gate_ [n][gstride] ends up holding act(W_gate x), up_ [n][F] h = act(gate) * up; the up
  // method's scores (W_up x) go to score_tmp_ [n][F].
  const int64_t gstride = L.w_gate_up.data ? 2 * F : F;
  if (L.w_gate_up.data) {
    matmul(L.w_gate_up, xn_.data(), n, gate_.data(), 2 * F);
    lora(l, LoraTarget::Up, xn_.data(), n, gate_.data(), 2 * F);
  } else {
    matmuls({{&L.w_gate, gate_.data(), F}, {&L.w_up, up_.data(), F}}, xn_.data(), n);
    lora(l, LoraTarget::Gate, xn_.data(), n, gate_.data(), F);
    lora(l, LoraTarget::Up, xn_.data(), n, up_.data(), F);
  }
  if (m == SparseMethod::Up) score_tmp_.resize(static_cast<size_t>(n * F));
  for (int64_t t = 0; t < n; ++t) {
    float* g = gate_.data() + t * gstride;
    const float* u = L.w_gate_up.data ? g + F : up_.data() + t * F;
    if (m == SparseMethod::Up) std::memcpy(score_tmp_.data() + t * F, u, static_cast<size_t>(F) * sizeof(float));
    act_mul(g, u, up_.data() + t * F, F);  // h may overwrite u (no fused gate_up)
  }
  for (int64_t t = 0; t < n; ++t)
    select_columns(up_.data() + t * F, F, l, 1, pos0 + t,
                   h_scores(m, gate_.data() + t * gstride, m == SparseMethod::Up ? score_tmp_.data() + t * F : nullptr),
                   trace_at(t, l) ? trace_at(t, l) + 2 : nullptr);
  matmul(L.w_down, up_.data(), n, xn_.data(), dim);
  lora(l, LoraTarget::Down, up_.data(), n, xn_.data(), dim);
}

// The MLP on the DIP layout: per token, only the rows of the kept columns are read:
// [g, u] = sum over j in m_x of x_j * row_j, h = act(g) * u, y = sum over i in m_h of h_i * row_i.
void Context::mlp_dip_layout(const LayerWeights& L, int64_t l, int64_t n, int64_t pos0) {
  const int64_t dim = cfg_.dim, F = cfg_.ffn;
  const SparseMethod m = sp_.method;
  CacheState* cache_ug = cache_of(0, l);
  CacheState* cache_down = cache_of(1, l);
  RowCache* rc_ug = store_ ? store_->rows(0, l) : nullptr;
  RowCache* rc_down = store_ ? store_->rows(1, l) : nullptr;
  float* gu = gate_.data();  // [2F]: gate then up, for one token
  for (int64_t t = 0; t < n; ++t) {
    float* x = xn_.data() + t * dim;
    int32_t* tr = trace_at(t, l);
    const int64_t k1 = select_columns(x, dim, l, 0, pos0 + t, nullptr, tr);
    gather_rows(L.dip_gate_up, rc_ug, cache_ug, x, k1, 2 * F, gu);
    // LoRA on the masked x, in the original orientation (phi3's fused up covers gate and up).
    if (cfg_.arch == "phi3") {
      lora(l, LoraTarget::Up, x, 1, gu, 2 * F);
    } else {
      lora(l, LoraTarget::Gate, x, 1, gu, F);
      lora(l, LoraTarget::Up, x, 1, gu + F, F);
    }
    float* h = up_.data();
    act_mul(gu, gu + F, h, F);
    const int64_t k2 = select_columns(h, F, l, 1, pos0 + t, h_scores(m, gu, gu + F), tr ? tr + 2 : nullptr);
    gather_rows(L.dip_down, rc_down, cache_down, h, k2, dim, x);
    lora(l, LoraTarget::Down, h, 1, x, dim);
  }
}

void Context::qkv_dip_layout(const LayerWeights& L, int64_t l, int64_t n, int64_t pos0) {
  const int64_t dim = cfg_.dim, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(), w = qd + 2 * kvd;
  RowCache* rc = store_ ? store_->rows(2, l) : nullptr;
  float* qkv = qkv_tmp_.data();  // [q_dim + 2 kv_dim]: q, k, v of one token
  for (int64_t t = 0; t < n; ++t) {
    float* x = xn_.data() + t * dim;
    const int64_t k = select_columns(x, dim, l, 2, pos0 + t, nullptr, trace_at(t, l, true));
    gather_rows(L.dip_qkv, rc, cache_of(2, l), x, k, w, qkv);
    // LoRA on the masked x, in the original orientation (phi3's fused qkv covers all three).
    if (cfg_.arch == "phi3") {
      lora(l, LoraTarget::QKV, x, 1, qkv, w);
    } else {
      lora(l, LoraTarget::Q, x, 1, qkv, qd);
      lora(l, LoraTarget::K, x, 1, qkv + qd, kvd);
      lora(l, LoraTarget::V, x, 1, qkv + qd + kvd, kvd);
    }
    std::memcpy(q_.data() + t * qd, qkv, static_cast<size_t>(qd) * sizeof(float));
    std::memcpy(k_.data() + t * kvd, qkv + qd, static_cast<size_t>(kvd) * sizeof(float));
    std::memcpy(v_.data() + t * kvd, qkv + qd + kvd, static_cast<size_t>(kvd) * sizeof(float));
  }
}

void Context::o_dip_layout(const LayerWeights& L, int64_t l, int64_t n, int64_t pos0) {
  const int64_t dim = cfg_.dim, qd = cfg_.q_dim();
  RowCache* rc = store_ ? store_->rows(3, l) : nullptr;
  for (int64_t t = 0; t < n; ++t) {
    float* a = att_out_.data() + t * qd;
    int32_t* tr = trace_at(t, l, true);
    const int64_t k = select_columns(a, qd, l, 3, pos0 + t, nullptr, tr ? tr + 2 : nullptr);
    gather_rows(L.dip_o, rc, cache_of(3, l), a, k, dim, xn_.data() + t * dim);
  }
}

void Context::gather_rows(const Weight& w, RowCache* rc, const CacheState* cache, const float* a, int64_t k, int64_t m,
                          float* y) {
  for (int64_t i = 0; i < k; ++i) row_coef_[static_cast<size_t>(i)] = a[mask_[static_cast<size_t>(i)]];
  if (!rc) {
    for (int64_t i = 0; i < k; ++i) row_ptr_[static_cast<size_t>(i)] = w.data + static_cast<size_t>(mask_[i]) * w.row_bytes;
    return gather(w.type, m, row_ptr_.data(), row_coef_.data(), k, y);
  }
  // The misses of this mask are read, many in flight, while the cached rows are computed; then the
  // rows that arrived are added (so the sum runs over cached rows first, then read ones).
  if (rc->start(mask_.data(), k, *cache, row_ptr_.data(), pending_.data(), store_->stream()) == 0)
    return gather(w.type, m, row_ptr_.data(), row_coef_.data(), k, y);
  pend_ptr_.clear();
  pend_coef_.clear();
  int64_t ready = 0;
  for (int64_t i = 0; i < k; ++i) {
    if (pending_[static_cast<size_t>(i)]) {
      pend_ptr_.push_back(row_ptr_[static_cast<size_t>(i)]);
      pend_coef_.push_back(row_coef_[static_cast<size_t>(i)]);
    } else {
      row_ptr_[static_cast<size_t>(ready)] = row_ptr_[static_cast<size_t>(i)];
      row_coef_[static_cast<size_t>(ready++)] = row_coef_[static_cast<size_t>(i)];
    }
  }
  gather(w.type, m, row_ptr_.data(), row_coef_.data(), ready, y);
  rc->finish(&stats_.io);
  gather(w.type, m, pend_ptr_.data(), pend_coef_.data(), static_cast<int64_t>(pend_ptr_.size()), y, true);
}

// Threads split the outputs in block-aligned slices and each walks all k rows.
void Context::gather(uint32_t type, int64_t m, const uint8_t* const* rows, const float* coef, int64_t k, float* y,
                     bool accumulate) {
  const TypeTraits* tr = type_traits(type);
  const int64_t bs = tr->block_size;
  const int threads = threads_for(static_cast<double>(m) * static_cast<double>(k));
  // Slices of whole gather units (32 outputs; a k-quant super-block of 256).
  const int64_t u = gather_unit(type);
  const int64_t slice = threads == 1 ? m : std::max<int64_t>(u, (m / (threads * 4) + u - 1) / u * u);
  const int64_t n_tasks = (m + slice - 1) / slice;
  model_.pool().run(n_tasks, threads, [&](int64_t task, int thread) {
    const int64_t o0 = task * slice, len = std::min(slice, m - o0);
    float* out = y + o0;
    if (!accumulate) std::fill(out, out + len, 0.0f);
    // The kernel takes whole units; an f32/f16 row's tail (< 32 outputs) is done here.
    const int64_t body = len / u * u;
    gather_axpy(type, reinterpret_cast<const void* const*>(rows), coef, k, o0, body, out);
    if (body < len) {
      float* tmp = gather_tmp_.data() + static_cast<size_t>(thread) * 32;
      const size_t off = static_cast<size_t>((o0 + body) / bs) * tr->block_bytes;
      for (int64_t r = 0; r < k; ++r) {
        dequantize_row(type, rows[r] + off, tmp, len - body);
        for (int64_t i = body; i < len; ++i) out[i] += coef[r] * tmp[i - body];
      }
    }
  });
}

void Context::forward_batch(const int32_t* tokens, int64_t n, bool all_logits, float* out) {
  const Model& m = model_;
  const ModelConfig& c = cfg_;
  const int64_t dim = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  const int64_t pos0 = n_past();
  // Left by a batch that failed part way (publish_stats empties them after each batch).
  stats_.trace.clear();
  stats_.times.clear();
  stats_.masks.clear();
  stats_.attn_trace.clear();
  stats_.attn_masks.clear();

  const Weight& e = m.token_embd();
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = e.data + static_cast<size_t>(tokens[t]) * e.row_bytes;
    if (store_ && !store_->embd_row().empty()) {
      // Under the store, an untied embedding table stays on flash: one row read per token.
      std::vector<uint8_t>& embd_row = store_->embd_row();
      const off_t at = static_cast<off_t>(m.file().file_offset(row));
      ssize_t got;
      do got = pread(store_->fd(), embd_row.data(), e.row_bytes, at);
      while (got < 0 && errno == EINTR);
      if (got != static_cast<ssize_t>(e.row_bytes))
        fail("ERR_IO", std::string("reading the token embedding failed: ") + (got < 0 ? std::strerror(errno) : "short read"));
      row = embd_row.data();
    }
    dequantize_row(e.type, row, x_.data() + t * dim, dim);
    if (c.embd_scale != 1.0f)
      for (int64_t i = 0; i < dim; ++i) x_[t * dim + i] *= c.embd_scale;
  }

  // RoPE angles per token, as ggml computes them: theta_i = pos * base^(-2i/n_rot) by repeated
  // multiplication in float, divided by the optional frequency factor, times the linear scale.
  const int64_t half = c.rope_dims / 2;
  const std::vector<float>& ff = m.rope_freq_factors();
  auto angles = [&](float base, float freq_scale, std::vector<float>& cos, std::vector<float>& sin) {
    cos.resize(rope_cos_.size());
    sin.resize(rope_sin_.size());
    const float theta_scale = std::pow(base, -2.0f / static_cast<float>(c.rope_dims));
    for (int64_t t = 0; t < n; ++t) {
      float theta = static_cast<float>(pos0 + t);
      for (int64_t i = 0; i < half; ++i) {
        const float th = freq_scale * (ff.empty() ? theta : theta / ff[static_cast<size_t>(i)]);
        cos[t * half + i] = std::cos(th);
        sin[t * half + i] = std::sin(th);
        theta *= theta_scale;
      }
    }
  };
  angles(c.rope_base, c.rope_freq_scale, rope_cos_, rope_sin_);
  // Gemma 3's sliding-window layers rotate with their own base and scale.
  if (c.own_swa_rope()) angles(c.rope_base_swa, c.rope_freq_scale_swa, rope_cos_swa_, rope_sin_swa_);
  const float* layer_cos = rope_cos_.data();
  const float* layer_sin = rope_sin_.data();
  auto rope = [&](float* vec, int64_t t, int64_t heads) {
    rope_f32(vec, heads, hd, c.rope_dims, layer_cos + t * half, layer_sin + t * half, c.rope_neox);
  };
  // Per-head RMSNorm of q or k (qwen3, gemma3), before RoPE.
  auto head_norm = [&](float* vec, int64_t heads, const std::vector<float>& w) {
    for (int64_t h = 0; h < heads; ++h) rmsnorm_f32(vec + h * hd, w.data(), vec + h * hd, hd, c.norm_eps);
  };

  if (stats_.record) stats_.times.resize(static_cast<size_t>(n * c.n_layers) * 2, 0.0f);
  // The batch writes positions pos0..pos0+n-1 into the rings, over positions up to pos0 + n - 1 -
  // ring_slots_ (before any layer runs, so a batch that fails part way leaves ring_lo_ true).
  ring_lo_ = std::max(ring_lo_, pos0 + n - ring_slots_);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = m.layer(l);
    const bool own_rope = c.own_swa_rope() && c.is_swa(l);
    layer_cos = own_rope ? rope_cos_swa_.data() : rope_cos_.data();
    layer_sin = own_rope ? rope_sin_swa_.data() : rope_sin_.data();
    const auto layer_start = std::chrono::steady_clock::now();
    const double wait_start = stats_.io.wait_seconds;
    for (int64_t t = 0; t < n; ++t) rmsnorm_f32(x_.data() + t * dim, L.attn_norm.data(), xn_.data() + t * dim, dim, c.norm_eps);

    // Attention DIP on a file without attention rows: the q/k/v input keeps its top columns, the
    // rest zeroed, which computes exactly the sum over the kept columns (every weight is still read).
    if (attn_sparse_ && !L.dip_qkv.data)
      for (int64_t t = 0; t < n; ++t) select_columns(xn_.data() + t * dim, dim, l, 2, pos0 + t, nullptr, trace_at(t, l, true));
    if (L.dip_qkv.data) {
      qkv_dip_layout(L, l, n, pos0);
    } else if (L.wqkv.data) {
      const int64_t w = qd + 2 * kvd;
      matmul(L.wqkv, xn_.data(), n, q_.data(), w);
      lora(l, LoraTarget::QKV, xn_.data(), n, q_.data(), w);
      for (int64_t t = 0; t < n; ++t) {
        std::memcpy(k_.data() + t * kvd, q_.data() + t * w + qd, kvd * sizeof(float));
        std::memcpy(v_.data() + t * kvd, q_.data() + t * w + qd + kvd, kvd * sizeof(float));
        std::memmove(q_.data() + t * qd, q_.data() + t * w, qd * sizeof(float));
      }
    } else {
      matmuls({{&L.wq, q_.data(), qd}, {&L.wk, k_.data(), kvd}, {&L.wv, v_.data(), kvd}}, xn_.data(), n);
      lora(l, LoraTarget::Q, xn_.data(), n, q_.data(), qd);
      lora(l, LoraTarget::K, xn_.data(), n, k_.data(), kvd);
      lora(l, LoraTarget::V, xn_.data(), n, v_.data(), kvd);
    }
    for (int64_t t = 0; t < n; ++t) {
      if (!L.bq.empty())
        for (int64_t i = 0; i < qd; ++i) q_[t * qd + i] += L.bq[i];
      if (!L.bk.empty())
        for (int64_t i = 0; i < kvd; ++i) k_[t * kvd + i] += L.bk[i];
      if (!L.bv.empty())
        for (int64_t i = 0; i < kvd; ++i) v_[t * kvd + i] += L.bv[i];
      if (!L.attn_q_norm.empty()) head_norm(q_.data() + t * qd, c.n_heads, L.attn_q_norm);
      if (!L.attn_k_norm.empty()) head_norm(k_.data() + t * kvd, c.n_kv_heads, L.attn_k_norm);
      rope(q_.data() + t * qd, t, c.n_heads);
      rope(k_.data() + t * kvd, t, c.n_kv_heads);
      const size_t li = static_cast<size_t>(l);
      const size_t at = static_cast<size_t>(kv_first_[li] + (pos0 + t) % kv_slots_[li]) * kv_row_bytes_;
      if (kv_type_ == TYPE_F32) {
        std::memcpy(k_cache_.data() + at, k_.data() + t * kvd, kv_row_bytes_);
        std::memcpy(v_cache_.data() + at, v_.data() + t * kvd, kv_row_bytes_);
      } else {
        quantize_row(TYPE_F16, k_.data() + t * kvd, k_cache_.data() + at, kvd);
        quantize_row(TYPE_F16, v_.data() + t * kvd, v_cache_.data() + at, kvd);
      }
    }
    attention(l, n, pos0);
    if (L.dip_o.data) {
      o_dip_layout(L, l, n, pos0);
    } else {
      if (attn_sparse_)  // W_o's input likewise
        for (int64_t t = 0; t < n; ++t) {
          int32_t* tr = trace_at(t, l, true);
          select_columns(att_out_.data() + t * qd, qd, l, 3, pos0 + t, nullptr, tr ? tr + 2 : nullptr);
        }
      matmul(L.wo, att_out_.data(), n, xn_.data(), dim);
    }
    lora(l, LoraTarget::O, att_out_.data(), n, xn_.data(), dim);
    if (!L.attn_post_norm.empty())
      for (int64_t t = 0; t < n; ++t) rmsnorm_f32(xn_.data() + t * dim, L.attn_post_norm.data(), xn_.data() + t * dim, dim, c.norm_eps);
    for (int64_t i = 0; i < n * dim; ++i) x_[i] += xn_[i];

    for (int64_t t = 0; t < n; ++t) rmsnorm_f32(x_.data() + t * dim, L.ffn_norm.data(), xn_.data() + t * dim, dim, c.norm_eps);
    mlp(L, l, n, pos0);
    if (!L.ffn_post_norm.empty())
      for (int64_t t = 0; t < n; ++t) rmsnorm_f32(xn_.data() + t * dim, L.ffn_post_norm.data(), xn_.data() + t * dim, dim, c.norm_eps);
    for (int64_t i = 0; i < n * dim; ++i) x_[i] += xn_[i];
    {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - layer_start).count();
      const double wait = stats_.io.wait_seconds - wait_start;
      LayerStats& st = stats_.layers[static_cast<size_t>(l)];
      st.seconds += secs;
      st.io_wait_seconds += wait;
      if (stats_.record)
        for (int64_t t = 0; t < n; ++t) {
          float* tm = stats_.times.data() + (static_cast<size_t>(t * c.n_layers + l)) * 2;
          tm[0] = static_cast<float>(secs / static_cast<double>(n));
          tm[1] = static_cast<float>(wait / static_cast<double>(n));
        }
    }
  }
  n_past_.store(pos0 + n, std::memory_order_release);
  kv_high_ = std::max(kv_high_, pos0 + n);
  stats_.tokens += n;
  publish_stats();

  if (!out) return;
  const int64_t first = all_logits ? 0 : n - 1;
  for (int64_t t = first; t < n; ++t)
    rmsnorm_f32(x_.data() + t * dim, m.output_norm().data(), xn_.data() + (t - first) * dim, dim, c.norm_eps);
  matmul(m.output(), xn_.data(), n - first, out, c.n_vocab);
  lora(c.n_layers, LoraTarget::Output, xn_.data(), n - first, out, c.n_vocab);
  if (c.final_softcap > 0) {  // gemma2: logits = cap * tanh(logits / cap)
    const float cap = c.final_softcap;
    for (int64_t i = 0; i < (n - first) * c.n_vocab; ++i) out[i] = std::tanh(out[i] * (1.0f / cap)) * cap;
  }
}

}  // namespace fd
