#include <algorithm>
#include <cmath>
#include <thread>

#include "flashdip/error.h"
#include "flashdip/kernels.h"
#include "flashdip/model.h"
#include "flashdip/sparse.h"
#include "flashdip/types.h"

namespace fd {
namespace {

std::string key(const ModelConfig& c, const char* suffix) { return c.arch + "." + suffix; }

int64_t require_int(const GgufFile& f, const std::string& k) {
  uint64_t v;
  if (!f.get_u64(k, &v)) fail("ERR_MODEL_INVALID", f.path() + ": metadata '" + k + "' is missing");
  if (v == 0 || v > (uint64_t(1) << 31)) fail("ERR_MODEL_INVALID", f.path() + ": metadata '" + k + "' is out of range");
  return static_cast<int64_t>(v);
}

int64_t optional_int(const GgufFile& f, const std::string& k, int64_t def) {
  uint64_t v;
  if (!f.get_u64(k, &v)) return def;
  if (v > (uint64_t(1) << 31)) fail("ERR_MODEL_INVALID", f.path() + ": metadata '" + k + "' is out of range");
  return static_cast<int64_t>(v);
}

// The block index of a tensor named "blk.<N>.<rest>", or -1.
int64_t block_of(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return -1;
  int64_t n = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && i < 14; ++i) n = n * 10 + (name[i] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? n : -1;
}

// An optional positive, finite float hyperparameter; absent leaves *out as it is. `zero_is_unset`
// follows llama.cpp, which reads 0 as "not set" for the rope scaling keys.
void positive_float(const GgufFile& f, const std::string& k, float* out, bool zero_is_unset = false) {
  double d;
  if (!f.get_f64(k, &d)) return;
  if (zero_is_unset && d == 0) return;
  const float v = static_cast<float>(d);
  if (!(v > 0) || !std::isfinite(v))
    fail("ERR_MODEL_INVALID", f.path() + ": metadata '" + k + "' is " + std::to_string(d) + "; it must be a positive finite number");
  *out = v;
}

// "f32, f16, ..." : the types with dense kernels (can_compute), for error messages.
std::string compute_types() {
  std::string out;
  for (uint32_t t = 0; t < TYPE_COUNT; ++t) {
    const TypeTraits* tr = type_traits(t);
    if (tr && tr->can_compute) out += (out.empty() ? "" : ", ") + std::string(tr->name);
  }
  return out;
}

class Loader {
 public:
  Loader(const GgufFile& f, const ModelConfig& c, size_t* owned) : f_(f), c_(c), owned_(owned) {}

  const GgufTensor* find(const std::string& name) const { return f_.tensor(name); }

  // A matrix of n_out rows by n_in inputs that the engine computes with.
  Weight matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
    const GgufTensor& t = shaped(name, n_in, n_out);
    const TypeTraits* tr = type_traits(t.type);
    if (!tr->can_compute)
      fail("ERR_UNSUPPORTED_TYPE", f_.path() + ": tensor '" + name + "' has type " + tr->name +
                                       ", which flashdip cannot compute with (supported: " + compute_types() + ")");
    return weight(t, n_in, n_out);
  }

  // Input-major rows of the DIP layout: `rows` rows of `len` elements of a type the gather reads.
  Weight rows(const std::string& name, int64_t len, int64_t rows) const {
    const GgufTensor& t = shaped(name, len, rows);
    if (!gather_row_type_supported(t.type))
      fail("ERR_UNSUPPORTED_TYPE", f_.path() + ": tensor '" + name + "' has type " + type_name(t.type) +
                                       ", which no gather kernel reads (kernels.types() lists the row types)");
    return weight(t, len, rows);
  }

  // A vector (norm weight, bias) copied to F32.
  std::vector<float> vec(const std::string& name, int64_t n, bool required = true) const {
    const GgufTensor* t = f_.tensor(name);
    if (!t) {
      if (required) fail("ERR_MODEL_INVALID", f_.path() + ": tensor '" + name + "' is missing");
      return {};
    }
    if (t->n_elements() != n || t->ne[0] != n)
      fail("ERR_MODEL_INVALID", f_.path() + ": tensor '" + name + "' has shape " + shape(*t) + ", expected [" +
                                    std::to_string(n) + "]");
    const TypeTraits* tr = type_traits(t->type);
    if (!tr->can_dequantize)
      fail("ERR_UNSUPPORTED_TYPE", f_.path() + ": tensor '" + name + "' has unsupported type " + tr->name);
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t->type, t->data, out.data(), n);
    *owned_ += out.size() * sizeof(float);
    return out;
  }

  // A present 2-D tensor of ne = [ne0, ne1].
  const GgufTensor& shaped(const std::string& name, int64_t ne0, int64_t ne1) const {
    const GgufTensor* t = f_.tensor(name);
    if (!t) fail("ERR_MODEL_INVALID", f_.path() + ": tensor '" + name + "' is missing");
    if (t->n_dims != 2 || t->ne[0] != ne0 || t->ne[1] != ne1)
      fail("ERR_MODEL_INVALID", f_.path() + ": tensor '" + name + "' has shape " + shape(*t) + ", expected [" +
                                    std::to_string(ne0) + ", " + std::to_string(ne1) + "]");
    return *t;
  }

  static Weight weight(const GgufTensor& t, int64_t n_in, int64_t n_out) {
    Weight w;
    w.data = t.data;
    w.type = t.type;
    w.n_in = n_in;
    w.n_out = n_out;
    w.row_bytes = row_bytes(t.type, n_in);
    return w;
  }

  static std::string shape(const GgufTensor& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
  }

 private:
  const GgufFile& f_;
  const ModelConfig& c_;
  size_t* owned_;
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const ModelOptions& options) {
  std::unique_ptr<Model> m = from_file(GgufFile::open(path), options);
  // After the checks: a file that is not a model costs no read of its weights. By default only where
  // huge pages are to be had and the weights fit well within the memory left: a model larger than
  // that still runs through the mapping, whose pages the kernel can drop and read again, where a copy
  // would end in the OOM killer.
  const double bytes = static_cast<double>(m->file_->file_size() - m->file_->data_offset());
  if (options.copy_weights > 0 ||
      (options.copy_weights < 0 && huge_pages_available() && bytes <= 0.8 * static_cast<double>(memory_headroom())))
    m->copy_weights();
  return m;
}

void Model::copy_weights() {
  const uint8_t* before = file_->tensor_data();
  file_->copy_tensor_data(true);
  const uint8_t* after = file_->tensor_data();
  auto move = [&](Weight& w) {
    if (w.data) w.data = after + (w.data - before);
  };
  move(token_embd_);
  move(output_);
  for (LayerWeights& L : layers_)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wqkv, &L.w_gate, &L.w_up, &L.w_down, &L.w_gate_up, &L.dip_gate_up,
                      &L.dip_down, &L.dip_qkv, &L.dip_o})
      move(*w);
}

std::unique_ptr<Model> Model::from_file(std::unique_ptr<GgufFile> file, const ModelOptions& options) {
  std::unique_ptr<Model> m(new Model());
  const GgufFile& f = *file;
  ModelConfig& c = m->cfg_;
  if (!f.get_str("general.architecture", &c.arch))
    fail("ERR_MODEL_INVALID", f.path() + ": metadata 'general.architecture' is missing");
  const bool gemma = c.arch == "gemma" || c.arch == "gemma2" || c.arch == "gemma3";
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3" && c.arch != "phi3" && !gemma)
    fail("ERR_UNSUPPORTED_ARCH", f.path() + ": architecture '" + c.arch +
                                     "' is not supported (llama, qwen2, qwen3, phi3, gemma, gemma2, gemma3 are)");
  f.get_str("general.name", &c.name);
  c.dim = require_int(f, key(c, "embedding_length"));
  c.n_layers = require_int(f, key(c, "block_count"));
  c.n_heads = require_int(f, key(c, "attention.head_count"));
  c.n_kv_heads = optional_int(f, key(c, "attention.head_count_kv"), c.n_heads);
  c.ffn = require_int(f, key(c, "feed_forward_length"));
  c.ctx_train = optional_int(f, key(c, "context_length"), 2048);
  if (c.ctx_train == 0) c.ctx_train = 2048;
  if (c.n_kv_heads == 0 || c.n_heads % c.n_kv_heads != 0)
    fail("ERR_MODEL_INVALID", f.path() + ": head_count is not a multiple of head_count_kv");
  // The head width is attention.key_length when given (qwen3, gemma: q_dim = heads * key_length may
  // differ from dim), else dim / heads; values are as wide as keys.
  uint64_t key_len = 0;
  if (!f.get_u64(key(c, "attention.key_length"), &key_len) && c.dim % c.n_heads != 0)
    fail("ERR_MODEL_INVALID", f.path() + ": head_count does not divide the embedding width");
  c.head_dim = optional_int(f, key(c, "attention.key_length"), c.dim / c.n_heads);
  const int64_t value_len = optional_int(f, key(c, "attention.value_length"), c.head_dim);
  if (c.head_dim == 0 || value_len != c.head_dim)
    fail("ERR_MODEL_INVALID", f.path() + ": attention.value_length " + std::to_string(value_len) + " differs from key_length " +
                                  std::to_string(c.head_dim) + ", which flashdip does not support");
  c.rope_dims = optional_int(f, key(c, "rope.dimension_count"), c.head_dim);
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0)
    fail("ERR_MODEL_INVALID", f.path() + ": rope.dimension_count is invalid");
  // Hyperparameters: finite and positive (a NaN, infinite or negative one computes garbage silently).
  positive_float(f, key(c, "rope.freq_base"), &c.rope_base);
  std::string scaling = "none";
  f.get_str(key(c, "rope.scaling.type"), &scaling);
  float factor = 0, linear = 0;
  positive_float(f, key(c, "rope.scaling.factor"), &factor, true);
  positive_float(f, key(c, "rope.scale_linear"), &linear, true);
  if (factor > 0 && scaling != "none") {
    if (scaling != "linear")
      fail("ERR_MODEL_INVALID", f.path() + ": rope scaling '" + scaling + "' is not supported (linear is)");
    c.rope_freq_scale = 1.0f / factor;
  } else if (linear > 0) {
    c.rope_freq_scale = 1.0f / linear;
  }
  if (!(c.rope_freq_scale > 0) || !std::isfinite(c.rope_freq_scale))
    fail("ERR_MODEL_INVALID", f.path() + ": the rope scaling factor is out of range");
  c.rope_neox = c.arch != "llama";  // llama.cpp: qwen2/3, phi3 and gemma rotate (i, i + n/2) pairs
  positive_float(f, key(c, "attention.layer_norm_rms_epsilon"), &c.norm_eps);

  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (gemma) {
    // As llama.cpp: GeGLU, embeddings times sqrt(dim), the norms' weights used as stored (its
    // converter already added Gemma's +1). Gemma 2's 27B (46 layers) and Gemma 3's (62) scale
    // queries by 1 / sqrt(dim / heads) instead of 1 / sqrt(head_dim) (query_pre_attn_scalar).
    c.act = Activation::GeluTanh;
    c.embd_scale = std::sqrt(static_cast<float>(c.dim));
    if ((c.arch == "gemma2" && c.n_layers == 46) || (c.arch == "gemma3" && c.n_layers == 62))
      c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.dim / c.n_heads));
  }
  auto positive = [&](const char* k, float def) {
    double v;
    if (!f.get_f64(key(c, k), &v)) return def;
    if (!(v >= 0) || !std::isfinite(v)) fail("ERR_MODEL_INVALID", f.path() + ": metadata '" + key(c, k) + "' must be >= 0");
    return static_cast<float>(v);
  };
  if (c.arch == "gemma2") {
    // llama.cpp's defaults when the keys are absent: soft-caps 50 and 30, a 4096 window on even layers.
    c.attn_softcap = positive("attn_logit_softcapping", 50.0f);
    c.final_softcap = positive("final_logit_softcapping", 30.0f);
    c.swa_window = optional_int(f, key(c, "attention.sliding_window"), 4096);
    c.swa_pattern = 2;
    c.rope_base_swa = c.rope_base;
    c.rope_freq_scale_swa = c.rope_freq_scale;
  } else if (c.arch == "gemma3") {
    // Five sliding-window layers in six, rotating with base 10000 and no scaling; no soft-capping
    // unless the file asks for a final one.
    c.final_softcap = positive("final_logit_softcapping", 0.0f);
    c.swa_window = optional_int(f, key(c, "attention.sliding_window"), 0);
    c.swa_pattern = 6;
  }

  // LongRoPE (Phi-3-128k, Phi-3.5, Phi-4-mini: per-pair factors chosen by the context size, with an
  // attention factor) is not implemented: refuse it rather than rotate without it.
  if (f.tensor("rope_factors_long.weight") || f.tensor("rope_factors_short.weight"))
    fail("ERR_UNSUPPORTED_ARCH", f.path() + ": LongRoPE (rope_factors_long/short, as Phi-3.5 and Phi-4-mini use) is not supported");

  // Counts that size allocations are checked against the tensors before anything is allocated (the
  // tensor table itself was checked against the file's size): the blocks present must be exactly
  // blk.0 .. blk.<block_count - 1>.
  int64_t blocks_present = 0;
  for (const GgufTensor& t : f.tensors()) {
    const int64_t b = block_of(t.name);
    if (b >= c.n_layers)
      fail("ERR_MODEL_INVALID", f.path() + ": tensor '" + t.name + "' belongs to block " + std::to_string(b) + " but block_count is " +
                                    std::to_string(c.n_layers));
    blocks_present = std::max(blocks_present, b + 1);
  }
  if (blocks_present < c.n_layers)
    fail("ERR_MODEL_INVALID", f.path() + ": block_count is " + std::to_string(c.n_layers) + " but the file has tensors for " +
                                  std::to_string(blocks_present) + " blocks");

  Loader ld(f, c, &m->owned_bytes_);
  const GgufTensor* embd = ld.find("token_embd.weight");
  if (!embd || embd->n_dims != 2 || embd->ne[0] != c.dim)
    fail("ERR_MODEL_INVALID", f.path() + ": tensor 'token_embd.weight' is missing or not [dim, vocab]");
  if (!type_traits(embd->type)->can_dequantize)
    fail("ERR_UNSUPPORTED_TYPE", f.path() + ": tensor 'token_embd.weight' has unsupported type " + type_name(embd->type));
  c.n_vocab = embd->ne[1];
  // The vocabulary the tokenizer knows must be the rows of the embedding (llama.cpp requires it too).
  if (const GgufValue* toks = f.find("tokenizer.ggml.tokens")) {
    if (toks->type != GGUF_ARRAY || toks->count != static_cast<uint64_t>(c.n_vocab))
      fail("ERR_MODEL_INVALID", f.path() + ": the vocabulary has " + std::to_string(toks->count) + " tokens but token_embd.weight has " +
                                    std::to_string(c.n_vocab) + " rows");
  }
  m->token_embd_.data = embd->data;
  m->token_embd_.type = embd->type;
  m->token_embd_.n_in = c.dim;
  m->token_embd_.n_out = c.n_vocab;
  m->token_embd_.row_bytes = row_bytes(embd->type, c.dim);
  m->output_norm_ = ld.vec("output_norm.weight", c.dim);
  if (ld.find("output.weight")) {
    m->output_ = ld.matrix("output.weight", c.dim, c.n_vocab);
  } else {
    c.tied_embeddings = true;
    m->output_ = ld.matrix("token_embd.weight", c.dim, c.n_vocab);
  }
  if (const GgufTensor* rf = ld.find("rope_freqs.weight")) {
    (void)rf;
    m->rope_factors_ = ld.vec("rope_freqs.weight", c.rope_dims / 2);
  }

  std::string layout;
  if (f.get_str("flashdip.layout", &layout)) {
    if (layout != "dip-input-major")
      fail("ERR_MODEL_INVALID", f.path() + ": unknown flashdip.layout '" + layout + "'");
    uint64_t version = 0;
    // Version 1: the MLP input-major; version 2: attention too (files of either version run).
    if (!f.get_u64("flashdip.layout_version", &version) || (version != 1 && version != 2))
      fail("ERR_MODEL_INVALID", f.path() + ": flashdip.layout_version must be 1 or 2 (convert the model again)");
    c.dip_layout = true;
    c.dip_attention = version == 2;
  }

  m->layers_.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& L = m->layers_[static_cast<size_t>(i)];
    L.attn_norm = ld.vec(p + "attn_norm.weight", c.dim);
    L.ffn_norm = ld.vec(p + "ffn_norm.weight", c.dim);
    if (c.arch == "qwen3" || c.arch == "gemma3") {
      L.attn_q_norm = ld.vec(p + "attn_q_norm.weight", c.head_dim);
      L.attn_k_norm = ld.vec(p + "attn_k_norm.weight", c.head_dim);
    }
    if (c.arch == "gemma2" || c.arch == "gemma3") {
      L.attn_post_norm = ld.vec(p + "post_attention_norm.weight", c.dim);
      L.ffn_post_norm = ld.vec(p + "post_ffw_norm.weight", c.dim);
    }
    if (c.dip_attention) {
      L.dip_qkv = ld.rows(p + "attn_qkv.dip.weight", c.q_dim() + 2 * c.kv_dim(), c.dim);
      L.dip_o = ld.rows(p + "attn_output.dip.weight", c.dim, c.q_dim());
    }
    if (c.arch == "phi3") {
      if (!c.dip_attention) L.wqkv = ld.matrix(p + "attn_qkv.weight", c.dim, c.q_dim() + 2 * c.kv_dim());
      if (!c.dip_layout) L.w_gate_up = ld.matrix(p + "ffn_up.weight", c.dim, 2 * c.ffn);
    } else {
      if (!c.dip_attention) {
        L.wq = ld.matrix(p + "attn_q.weight", c.dim, c.q_dim());
        L.wk = ld.matrix(p + "attn_k.weight", c.dim, c.kv_dim());
        L.wv = ld.matrix(p + "attn_v.weight", c.dim, c.kv_dim());
      }
      if (!c.dip_layout) {
        L.w_gate = ld.matrix(p + "ffn_gate.weight", c.dim, c.ffn);
        L.w_up = ld.matrix(p + "ffn_up.weight", c.dim, c.ffn);
      }
      L.bq = ld.vec(p + "attn_q.bias", c.q_dim(), false);
      L.bk = ld.vec(p + "attn_k.bias", c.kv_dim(), false);
      L.bv = ld.vec(p + "attn_v.bias", c.kv_dim(), false);
    }
    if (!c.dip_attention) L.wo = ld.matrix(p + "attn_output.weight", c.q_dim(), c.dim);
    if (c.dip_layout) {
      L.dip_gate_up = ld.rows(p + "ffn_gate_up.dip.weight", 2 * c.ffn, c.dim);
      L.dip_down = ld.rows(p + "ffn_down.dip.weight", c.dim, c.ffn);
    } else {
      L.w_down = ld.matrix(p + "ffn_down.weight", c.ffn, c.dim);
    }
  }

  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  m->pool_.reset(new ThreadPool(threads));
  m->file_ = std::move(file);
  return m;
}

}  // namespace fd
