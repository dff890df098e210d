// Llama-family model (llama, qwen2, qwen3, phi3, gemma, gemma2, gemma3) over a mapped GGUF file, and the per-sequence context that
// holds the KV cache and scratch buffers. Shapes are written as [rows][cols] with cols contiguous.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flashdip/gguf.h"
#include "flashdip/sparsity.h"
#include "flashdip/store.h"
#include "flashdip/threadpool.h"

namespace fd {

// The gated MLP's activation: h = act(gate) * up.
enum class Activation { Silu, GeluTanh };  // SwiGLU (llama, qwen, phi3); GeGLU with tanh GELU (gemma)

struct ModelConfig {
  std::string arch;         // "llama", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3"
  std::string name;         // general.name
  int64_t n_vocab = 0;
  int64_t dim = 0;          // d: embedding width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn = 0;          // D: gated MLP hidden width
  int64_t ctx_train = 0;
  int64_t rope_dims = 0;    // leading dimensions of each head that are rotated
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  bool rope_neox = false;   // pairs (i, i + n/2) instead of (2i, 2i+1)
  float norm_eps = 1e-5f;
  bool tied_embeddings = false;
  bool dip_layout = false;  // MLP stored input-major by flashdip convert
  bool dip_attention = false;  // attention stored input-major too (layout version 2)
  Activation act = Activation::Silu;
  float embd_scale = 1.0f;      // token embeddings are multiplied by this (gemma: sqrt(dim))
  float attn_scale = 0;         // query scale (1 / sqrt(head_dim) unless the architecture says otherwise)
  float attn_softcap = 0;       // > 0: attention logits become c * tanh(s / c) (gemma2)
  float final_softcap = 0;      // > 0: output logits likewise (gemma2)
  // Sliding-window attention (gemma2, gemma3): layer l attends to its last swa_window positions
  // when swa_pattern > 0 and l % swa_pattern < swa_pattern - 1 (llama.cpp's pattern); those layers
  // rotate with their own RoPE base and scale.
  int64_t swa_window = 0;
  int64_t swa_pattern = 0;
  float rope_base_swa = 10000.0f;
  float rope_freq_scale_swa = 1.0f;
  bool is_swa(int64_t layer) const { return swa_window > 0 && swa_pattern > 0 && layer % swa_pattern < swa_pattern - 1; }
  bool own_swa_rope() const { return swa_window > 0 && (rope_base_swa != rope_base || rope_freq_scale_swa != rope_freq_scale); }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
};

// A 2-D weight in the file's mapping or its copy (ModelOptions::copy_weights): n_out rows of n_in elements.
struct Weight {
  const uint8_t* data = nullptr;
  uint32_t type = 0;
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_bytes = 0;
  size_t nbytes() const { return row_bytes * static_cast<size_t>(n_out); }
};

struct LayerWeights {
  std::vector<float> attn_norm;       // [dim]
  Weight wq, wk, wv, wo;              // llama/qwen2: q [q_dim][dim], k/v [kv_dim][dim], o [dim][q_dim]
  Weight wqkv;                        // phi3: fused [q_dim + 2 kv_dim][dim]
  std::vector<float> bq, bk, bv;      // qwen2 biases (empty when absent)
  std::vector<float> attn_q_norm, attn_k_norm;  // qwen3, gemma3: per-head RMSNorm of q and k [head_dim] (empty when absent)
  std::vector<float> attn_post_norm;  // gemma2, gemma3: RMSNorm of the attention output [dim] (empty when absent)
  std::vector<float> ffn_norm;        // [dim]
  std::vector<float> ffn_post_norm;   // gemma2, gemma3: RMSNorm of the MLP output [dim] (empty when absent)
  Weight w_gate, w_up, w_down;        // gate/up [ffn][dim], down [dim][ffn]
  Weight w_gate_up;                   // phi3: fused [2 ffn][dim], gate rows first
  // DIP layout (flashdip convert): one row per input column, quantized along the outputs.
  // Weight::n_in is the row length (outputs) and n_out the number of rows (inputs).
  Weight dip_gate_up;                 // [dim rows][2 ffn]: gate column j, then up column j
  Weight dip_down;                    // [ffn rows][dim]: down column i
  // Layout version 2 also stores attention so (wq/wk/wv/wqkv/wo are then absent):
  Weight dip_qkv;                     // [dim rows][q_dim + 2 kv_dim]: column j of W_q, W_k, W_v (phi3: of W_qkv)
  Weight dip_o;                       // [q_dim rows][dim]: column i of W_o
};

// The matrices a LoRA adapter may target, per block (llama.cpp's base tensor names in comments).
enum class LoraTarget : int {
  Q,       // attn_q.weight
  K,       // attn_k.weight
  V,       // attn_v.weight
  QKV,     // attn_qkv.weight (phi3, fused)
  O,       // attn_output.weight
  Gate,    // ffn_gate.weight
  Up,      // ffn_up.weight (phi3: the fused gate_up, [2 ffn] outputs, gate first)
  Down,    // ffn_down.weight
  Output,  // output.weight (the head; slot of the pseudo-block n_layers)
  Count
};

// One adapted matrix W [n_out][n_in]: W x becomes W x + s * B (A x), s = scale * alpha / r (scale
// alone when the adapter has no alpha, as llama.cpp). Dequantized to f32 into owned memory.
struct LoraWeight {
  int64_t r = 0, n_in = 0, n_out = 0;  // r == 0: the adapter does not target this matrix
  std::vector<float> at;               // A transposed, [n_in][r]: the rows of kept inputs are contiguous
  std::vector<float> b;                // B, [n_out][r] (GGUF lora_b: ne0 = r, ne1 = n_out)
};

class Model;
class ColumnStore;
struct StoreOptions;

// A LoRA adapter in llama.cpp's GGUF format (general.type = adapter, adapter.type = lora, tensors
// <base>.lora_a [ne0 = n_in, ne1 = r] and <base>.lora_b [ne0 = r, ne1 = n_out]), checked against
// the model it was loaded for and held in DRAM (the file is closed after loading).
class LoraAdapter {
 public:
  // Throws fd::Error: ERR_IO, ERR_GGUF_*, ERR_MODEL_INVALID (not an adapter, another architecture,
  // a tensor the model lacks or of the wrong shape), ERR_UNSUPPORTED_TYPE.
  static std::unique_ptr<LoraAdapter> load(const std::string& path, const Model& model);
  const Model* base() const { return base_; }  // identity only: the model it was checked against
  float alpha() const { return alpha_; }        // 0: absent
  // The weight on matrix `t` of block `layer` (layer n_layers for Output), or nullptr.
  const LoraWeight* weight(int64_t layer, LoraTarget t) const {
    const LoraWeight& w = slots_[static_cast<size_t>(layer) * static_cast<size_t>(LoraTarget::Count) + static_cast<size_t>(t)];
    return w.r ? &w : nullptr;
  }
  size_t owned_bytes() const { return owned_bytes_; }
  int64_t n_tensors() const { return n_tensors_; }

 private:
  LoraAdapter() = default;
  const Model* base_ = nullptr;
  float alpha_ = 0;
  std::vector<LoraWeight> slots_;  // [n_layers + 1][LoraTarget::Count]
  size_t owned_bytes_ = 0;
  int64_t n_tensors_ = 0;
};

// An adapter applied by a context, with the user's scale (finite, >= 0).
struct ActiveLora {
  std::shared_ptr<const LoraAdapter> adapter;
  float scale = 1.0f;
};

struct ModelOptions {
  int threads = 0;  // 0: one per core
  // The weights in anonymous memory of their own instead of the file mapping (GgufFile::
  // copy_tensor_data), asking for huge pages: -1 when huge_pages_available() and the weights take at
  // most 80% of memory_headroom(), 0 never, 1 always.
  // Not under a memory budget, whose rows must stay on flash (the caller decides).
  int copy_weights = -1;
};

class Model {
 public:
  // Throws fd::Error: ERR_IO, ERR_GGUF_*, ERR_UNSUPPORTED_ARCH, ERR_UNSUPPORTED_TYPE, ERR_MODEL_INVALID.
  static std::unique_ptr<Model> load(const std::string& path, const ModelOptions& options);
  // Validates and points the weights into the file's mapping; copy_weights is load()'s.
  static std::unique_ptr<Model> from_file(std::unique_ptr<GgufFile> file, const ModelOptions& options);

  const ModelConfig& config() const { return cfg_; }
  const GgufFile& file() const { return *file_; }
  ThreadPool& pool() { return *pool_; }
  std::mutex& compute_mutex() { return compute_mu_; }
  // Bytes the model allocated itself (norms, biases): reported to the JS heap accounting.
  size_t owned_bytes() const { return owned_bytes_; }

  const Weight& token_embd() const { return token_embd_; }
  const Weight& output() const { return output_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<float>& rope_freq_factors() const { return rope_factors_; }
  const LayerWeights& layer(int64_t i) const { return layers_[static_cast<size_t>(i)]; }
  // Under a memory budget: the column store every context of the model shares (column_store.h).
  // Set once, before any context is made; store() is nullptr without a budget.
  void set_budget(const StoreOptions& options);
  ColumnStore* store() const { return store_.get(); }

 private:
  Model() = default;
  void copy_weights();  // GgufFile::copy_tensor_data, and every Weight moved with it
  std::unique_ptr<GgufFile> file_;
  ModelConfig cfg_;
  Weight token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<float> rope_factors_;  // optional per-pair frequency divisors (Llama 3.1 rope_freqs)
  std::vector<LayerWeights> layers_;
  std::unique_ptr<ThreadPool> pool_;
  std::mutex compute_mu_;
  size_t owned_bytes_ = 0;
  std::shared_ptr<ColumnStore> store_;
};

// An array of zeros from calloc: a large one arrives as untouched pages (an anonymous mapping), so
// it costs address space, not RAM, until written, and making it does not zero-fill gigabytes.
template <typename T>
class ZeroedArray {
 public:
  // False when the memory cannot be had (the array is then empty).
  bool allocate(size_t n) {
    p_.reset(n ? static_cast<T*>(std::calloc(n, sizeof(T))) : nullptr);
    n_ = p_ ? n : 0;
    return n == 0 || p_ != nullptr;
  }
  T* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> p_;
  size_t n_ = 0;
};

struct ContextOptions {
  int64_t n_ctx = 0;          // 0: the model's training context
  uint32_t kv_type = 0;       // TYPE_F32 or TYPE_F16
  int64_t max_batch = 64;     // tokens per forward pass during prompt evaluation
  int threads = 0;            // 0: the model pool's size; adapted down for small work
  SparsityConfig sparsity;
  bool record = false;        // keep per-token statistics and masks (the simulator's trace)
  bool histograms = false;    // accumulate score histograms per layer and mask (calibration)
  size_t adapter_bytes = 0;   // under a budget: the LoRA adapters loaded on the model (counted once per model)
  bool attn_histograms = false;  // with histograms: of the attention masks too (which then run, keeping everything at keep_attn 1)
};

// Per-layer counts of MLP column units used, split by where the cache says they came from.
struct LayerStats {
  int64_t ug_hits = 0, ug_misses = 0;      // x-mask units: column j of W_up and W_gate
  int64_t down_hits = 0, down_misses = 0;  // h-mask units: column i of W_down
  int64_t qkv_hits = 0, qkv_misses = 0;    // attention input units: column j of W_q, W_k, W_v (attention DIP
  int64_t o_hits = 0, o_misses = 0;        // or layout version 2), and column i of W_o; else 0
  double seconds = 0;                      // wall time in the layer (attention + MLP)
  double io_wait_seconds = 0;              // of which waiting for the column store's reads
};

struct SparsityStats {
  int64_t tokens = 0;            // tokens whose MLP ran under this accounting
  IoStats io;                    // reads from the column store (DIP layout under a budget)
  // How the store reads: "uring", "threads" or "sync", then " direct" (O_DIRECT) or " buffered";
  // "" without a store.
  std::string io_engine;
  double ug_unit_bytes = 0;      // bytes of one x-mask unit in the model file
  double down_unit_bytes = 0;
  double qkv_unit_bytes = 0;     // bytes of one attention input unit (W_q, W_k, W_v columns)
  double o_unit_bytes = 0;       // bytes of one W_o column
  std::vector<LayerStats> layers;
  // Per token and layer, when recording: [token][layer][ug hits, ug misses, down hits, down misses].
  bool record = false;
  std::vector<int32_t> trace;
  // And the time: [token][layer][seconds in the layer, of which waiting for reads]. A batch of
  // prompt tokens is timed as a whole and split evenly over its tokens.
  std::vector<float> times;
  // And the masks themselves: [token][layer][unit (0: ug, 1: down)] -> kept indices, ascending.
  std::vector<std::vector<int32_t>> masks;
  // With attention DIP, when recording, the same for the attention masks: [token][layer][qkv hits,
  // qkv misses, o hits, o misses] and [token][layer][unit (0: q/k/v input, 1: W_o input)] -> kept indices.
  std::vector<int32_t> attn_trace;
  std::vector<std::vector<int32_t>> attn_masks;
};

class Context {
 public:
  // Under the model's budget the context counts its KV cache and scratch in it (ColumnStore::join;
  // ERR_BUDGET_TOO_SMALL when they do not fit) and uses the model's column store (its caches are
  // shared: a DIP-CA mask depends on what every session of the model read).
  Context(Model& model, const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Throws ERR_INVALID_ARGUMENT for bad options, and when the KV cache of n_ctx positions cannot be
  // reserved. The KV cache is reserved, not written: RAM is used as positions are evaluated.
  // Runs tokens through the model at positions n_past() onward and advances n_past. Writes logits
  // to out: the last token's [n_vocab] or, with all_logits, [n][n_vocab]. Throws ERR_CONTEXT_FULL,
  // ERR_INVALID_ARGUMENT (token id out of range).
  void eval(const int32_t* tokens, int64_t n, bool all_logits, float* out);
  // Safe to read from another thread while eval runs (it is the count before or after a batch).
  int64_t n_past() const { return n_past_.load(std::memory_order_acquire); }
  int64_t n_ctx() const { return n_ctx_; }
  // Forgets positions >= n (n <= n_past), so a sequence can be rewound or restarted. Returns the
  // positions kept: n, or 0 when a sliding-window layer's ring no longer holds the window that
  // position n attends to (it was overwritten by later positions): the caller then evaluates the
  // first n tokens again. A rewind by at most what one batch of max_batch tokens wrote is always kept.
  int64_t truncate(int64_t n);
  // Bytes this context holds in RAM: scratch, and the KV cache as far as positions have been
  // written (its pages are touched only then). The column store's are the model's.
  size_t owned_bytes() const;
  // What the context counts in a budget: the KV cache as reserved (n_ctx positions on full layers,
  // ring_slots() on sliding-window layers) and the scratch buffers.
  size_t kv_bytes() const { return kv_bytes(n_ctx_); }
  // The KV cache's bytes for the first `positions` positions (what attention reads at that length,
  // where a sliding-window layer holds at most its ring; the pages touched by a sequence that long).
  size_t kv_bytes(int64_t positions) const;
  // The positions a sliding-window layer keeps: its window and what one batch writes past it,
  // min(n_ctx, swa_window + max_batch - 1); n_ctx on a model without such layers.
  int64_t ring_slots() const { return ring_slots_; }
  size_t scratch_bytes() const { return scratch_bytes_; }
  // Calls f(const SparsityStats&) with the statistics as of the last finished batch: safe from any
  // thread at any time, also while eval runs (eval publishes after each batch of at most max_batch
  // tokens, appending only what the batch added; f holds the lock that publishing takes, so keep it short).
  template <typename F>
  void read_sparsity_stats(F&& f) const {
    std::lock_guard<std::mutex> lock(stats_mu_);
    f(published_);
  }
  // Not while eval runs.
  void reset_sparsity_stats();
  // With ContextOptions::histograms: [layer][mask][kScoreHistBins] counts of the score magnitudes
  // each mask ranked, before masking, over every token since the context was made (a new sequence
  // does not clear them). Masks: 0 x, 1 h, and with attention DIP 2 the q/k/v input, 3 W_o's input
  // (score_hist_masks() of them). Empty otherwise.
  const std::vector<uint64_t>& score_histograms() const { return hist_; }
  int score_hist_masks() const { return attn_sparse_ ? 4 : 2; }
  // The adapters applied from the next eval on (not while eval runs). Throws ERR_INVALID_ARGUMENT
  // for an adapter loaded for another model or a scale that is not finite and >= 0.
  void set_loras(std::vector<ActiveLora> loras);

 private:
  void mlp(const LayerWeights& L, int64_t layer, int64_t n, int64_t pos0);
  void mlp_dip_layout(const LayerWeights& L, int64_t layer, int64_t n, int64_t pos0);
  // Attention on layout version 2: q/k/v of xn_ into q_, k_, v_ (no biases yet) and W_o of
  // att_out_ into xn_, per token from the rows of the kept columns (all of them without attention DIP).
  void qkv_dip_layout(const LayerWeights& L, int64_t layer, int64_t n, int64_t pos0);
  void o_dip_layout(const LayerWeights& L, int64_t layer, int64_t n, int64_t pos0);
  CacheState* cache_of(int unit, int64_t layer);
  int64_t select_columns(float* a, int64_t total, int64_t layer, int unit, int64_t pos, const float* score_src,
                         int32_t* trace);
  int32_t* trace_at(int64_t t, int64_t layer, bool attn = false);
  // y[0..m) = sum over i < k of coef[i] * rows[i] (+ y with accumulate), rows of m elements of `type`.
  void gather(uint32_t type, int64_t m, const uint8_t* const* rows, const float* coef, int64_t k, float* y,
              bool accumulate = false);
  // y[0..m) = sum over the kept columns j of a (mask_ holds k of them) of a_j * row_j of w: rows from
  // the mapping or, with the store, through the row cache, computing on the cached rows while the
  // missing ones are read.
  void gather_rows(const Weight& w, RowCache* rc, const CacheState* cache, const float* a, int64_t k, int64_t m, float* y);
  void forward_batch(const int32_t* tokens, int64_t n, bool all_logits, float* out);
  void matmul(const Weight& w, const float* x, int64_t ntok, float* y, int64_t y_stride);
  // y_i = W_i x for matrices that share the input x (q/k/v, gate/up): the activation is quantized once
  // and the pool runs one job over the rows of all of them, so the threads meet once per group
  // instead of once per matrix. One matmul each when their activation types differ (or more than 4).
  struct MatmulOut {
    const Weight* w;
    float* y;
    int64_t y_stride;
  };
  void matmuls(std::initializer_list<MatmulOut> outs, const float* x, int64_t ntok);
  // y[t * y_stride + o] += s * (B (A x_t))[o] for every active adapter targeting (layer, target);
  // x holds ntok rows of the matrix's n_in. Zero inputs (masked columns) are skipped, so the cost
  // of A follows the density.
  void lora(int64_t layer, LoraTarget target, const float* x, int64_t ntok, float* y, int64_t y_stride);
  void attention(int64_t layer, int64_t n, int64_t pos0);
  // h[i] = act(g[i]) * u[i] for the model's activation; g keeps act(g) (see silu_mul_f32).
  void act_mul(float* g, const float* u, float* h, int64_t n) const;
  int threads_for(double work) const;

  Model& model_;
  const ModelConfig& cfg_;
  int64_t n_ctx_;
  uint32_t kv_type_;
  int64_t max_batch_;
  int threads_;
  std::atomic<int64_t> n_past_{0};
  size_t kv_row_bytes_;
  // The KV cache, in kv_type: per layer kv_slots_[l] rows of kv_dim from row kv_first_[l]. Position p
  // of layer l is in row kv_first_[l] + p % kv_slots_[l]: a full layer has n_ctx slots (p itself), a
  // sliding-window layer ring_slots_, used as a ring. A batch of b <= max_batch tokens at pos0
  // attends to positions >= pos0 + 1 - window and writes up to pos0 + b - 1, which ring_slots_ =
  // window + max_batch - 1 holds at once.
  ZeroedArray<uint8_t> k_cache_, v_cache_;
  std::vector<int64_t> kv_first_, kv_slots_;  // [layer]
  int64_t kv_rows_ = 0;                       // sum of kv_slots_
  int64_t ring_slots_ = 0;
  int64_t ring_lo_ = 0;                       // the rings hold every position in [ring_lo_, n_past)
  int64_t kv_high_ = 0;                       // positions ever written (pages of the caches touched)
  std::vector<float> att_tmp_;                // [threads][group * head_dim]: values of a wrapped ring's second part
  // Scratch for one batch of B tokens.
  std::vector<float> x_, xn_;        // [B][dim]
  std::vector<float> q_, k_, v_;     // [B][q_dim], [B][kv_dim] x2 (phi3: qkv in q_ as [B][q+2kv])
  std::vector<float> att_out_;       // [B][q_dim]
  std::vector<float> gate_, up_;     // [B][ffn] (phi3: gate_ holds [B][2 ffn])
  ZeroedArray<float> att_scores_;    // [threads][group][n_ctx]
  std::vector<uint8_t> xq_;          // quantized activations, [B][row bytes]
  std::vector<float> rope_cos_, rope_sin_;  // [B][rope_dims/2]
  std::vector<float> rope_cos_swa_, rope_sin_swa_;  // the same for sliding-window layers with their own base (gemma3)
  // Sparsity: the configuration, per-layer cache bookkeeping, statistics and scratch.
  SparsityConfig sp_;
  bool track_ = false;                     // keep cache state and statistics
  int64_t keep_x_ = 0, keep_h_ = 0;        // columns kept per token of x [dim] and h [ffn]
  int64_t block_cols_[4] = {0, 0, 0, 0};   // DIP-CA block reads: columns per block of each unit (<= 1: off)
  // Without a budget (everything cached): [layer]. Under one the store's serve the MLP, and
  // attention on layout version 2 (cache_of).
  std::vector<CacheState> cache_ug_, cache_down_;
  // Attention DIP: columns kept per token of the q/k/v input [dim] and of W_o's input [q_dim], and
  // the attention units' own bookkeeping ([layer]; kept when track_ and attention has columns, and
  // its rows are not the store's).
  bool attn_sparse_ = false;               // attention masks run: keep_attn < 1, attention thresholds, or attn_histograms
  int64_t keep_a_ = 0, keep_o_ = 0;
  std::vector<CacheState> cache_qkv_, cache_o_;
  // The worker's running statistics; trace, times and masks hold only the batch being evaluated
  // (indexed from its first token). publish_stats() moves them to published_ after each batch.
  SparsityStats stats_;
  mutable std::mutex stats_mu_;            // guards published_
  SparsityStats published_;
  void publish_stats();
  std::vector<int32_t> mask_;              // [max(dim, ffn, q_dim)]
  std::vector<uint8_t> keep_;              // [max(dim, ffn, q_dim)]
  std::vector<float> score_tmp_;           // [n][ffn]: the up method's scores
  std::vector<uint64_t> hist_;             // [layer][2][kScoreHistBins] (ContextOptions::histograms)
  std::vector<float> gather_tmp_;          // [threads][32]: an f32/f16 row tail
  ColumnStore* store_ = nullptr;           // the model's, under a budget (rows through its RowCaches on the DIP layout)
  size_t scratch_bytes_ = 0;
  std::vector<float> qkv_tmp_;             // [q_dim + 2 kv_dim]: one token's q, k, v from the rows
  std::vector<const uint8_t*> row_ptr_;    // [max(dim, ffn)]
  std::vector<float> row_coef_;            // [max(dim, ffn)]
  std::vector<uint8_t> pending_;           // [max(dim, ffn)]: row i is still being read
  std::vector<const uint8_t*> pend_ptr_;   // the pending rows' addresses and coefficients
  std::vector<float> pend_coef_;
  std::vector<ActiveLora> loras_;
  std::vector<float> lora_tmp_;            // [r]: A x of one token
};

}  // namespace fd
