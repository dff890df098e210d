// LoRA adapters in llama.cpp's GGUF adapter format (src/llama-adapter.cpp): loading, checking
// against the base model, and dequantizing into owned memory.
#include <cmath>
#include <cstring>

#include "flashdip/error.h"
#include "flashdip/kernels.h"
#include "flashdip/model.h"
#include "flashdip/types.h"

namespace fd {
namespace {

struct TargetShape {
  const char* name;  // base tensor name after "blk.N." (or the whole name for the head)
  LoraTarget target;
  int64_t n_in, n_out;
};

// The matrices of this model an adapter may target, with their shapes (as the model computes
// them, whatever the file's layout: the DIP layout keeps the adapter's original orientation).
std::vector<TargetShape> block_targets(const ModelConfig& c) {
  if (c.arch == "phi3")
    return {{"attn_qkv.weight", LoraTarget::QKV, c.dim, c.q_dim() + 2 * c.kv_dim()},
            {"attn_output.weight", LoraTarget::O, c.q_dim(), c.dim},
            {"ffn_up.weight", LoraTarget::Up, c.dim, 2 * c.ffn},
            {"ffn_down.weight", LoraTarget::Down, c.ffn, c.dim}};
  return {{"attn_q.weight", LoraTarget::Q, c.dim, c.q_dim()},
          {"attn_k.weight", LoraTarget::K, c.dim, c.kv_dim()},
          {"attn_v.weight", LoraTarget::V, c.dim, c.kv_dim()},
          {"attn_output.weight", LoraTarget::O, c.q_dim(), c.dim},
          {"ffn_gate.weight", LoraTarget::Gate, c.dim, c.ffn},
          {"ffn_up.weight", LoraTarget::Up, c.dim, c.ffn},
          {"ffn_down.weight", LoraTarget::Down, c.ffn, c.dim}};
}

std::string shape_of(const GgufTensor& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

// A 2-D tensor dequantized to f32, [ne1][ne0].
std::vector<float> dequantized(const GgufFile& f, const GgufTensor& t) {
  const TypeTraits* tr = type_traits(t.type);
  if (!tr->can_dequantize)
    fail("ERR_UNSUPPORTED_TYPE", f.path() + ": LoRA tensor '" + t.name + "' has type " + tr->name + ", which flashdip cannot read");
  if (t.ne[0] % tr->block_size != 0)
    fail("ERR_MODEL_INVALID", f.path() + ": LoRA tensor '" + t.name + "' rows are not whole " + tr->name + " blocks");
  std::vector<float> out(static_cast<size_t>(t.ne[0] * t.ne[1]));
  const size_t rb = row_bytes(t.type, t.ne[0]);
  for (int64_t i = 0; i < t.ne[1]; ++i) dequantize_row(t.type, t.data + static_cast<size_t>(i) * rb, out.data() + i * t.ne[0], t.ne[0]);
  return out;
}

}  // namespace

std::unique_ptr<LoraAdapter> LoraAdapter::load(const std::string& path, const Model& model) {
  std::unique_ptr<GgufFile> file = GgufFile::open(path);
  const GgufFile& f = *file;
  const ModelConfig& c = model.config();
  std::string s;
  if (!f.get_str("general.type", &s) || s != "adapter")
    fail("ERR_MODEL_INVALID", path + ": not an adapter (general.type is '" + s + "', expected 'adapter')");
  s.clear();
  if (!f.get_str("adapter.type", &s) || s != "lora")
    fail("ERR_MODEL_INVALID", path + ": adapter.type is '" + s + "', expected 'lora'");
  s.clear();
  if (!f.get_str("general.architecture", &s) || s != c.arch)
    fail("ERR_MODEL_INVALID", path + ": the adapter is for architecture '" + s + "' but the model is '" + c.arch + "'");
  std::unique_ptr<LoraAdapter> a(new LoraAdapter());
  a->base_ = &model;
  double alpha = 0;  // llama.cpp's default when adapter.lora.alpha is absent: scale alone
  if (f.get_f64("adapter.lora.alpha", &alpha) && (!(alpha >= 0) || !std::isfinite(alpha)))
    fail("ERR_MODEL_INVALID", path + ": adapter.lora.alpha must be finite and >= 0");
  a->alpha_ = static_cast<float>(alpha);

  const size_t per = static_cast<size_t>(LoraTarget::Count);
  a->slots_.resize(static_cast<size_t>(c.n_layers + 1) * per);
  const std::vector<TargetShape> targets = block_targets(c);
  for (const GgufTensor& t : f.tensors()) {
    const std::string& name = t.name;
    const bool is_a = name.size() > 7 && name.compare(name.size() - 7, 7, ".lora_a") == 0;
    const bool is_b = name.size() > 7 && name.compare(name.size() - 7, 7, ".lora_b") == 0;
    if (!is_a && !is_b) fail("ERR_MODEL_INVALID", path + ": tensor '" + name + "' is neither a .lora_a nor a .lora_b");
    if (is_b) continue;  // read with its lora_a
    const std::string base = name.substr(0, name.size() - 7);
    // The target: "output.weight" or "blk.<N>.<matrix>".
    int64_t layer = -1;
    const TargetShape* ts = nullptr;
    static const TargetShape head{"output.weight", LoraTarget::Output, 0, 0};
    TargetShape out_shape = head;
    out_shape.n_in = c.dim, out_shape.n_out = c.n_vocab;
    if (base == "output.weight") {
      layer = c.n_layers, ts = &out_shape;
    } else if (base.compare(0, 4, "blk.") == 0) {
      size_t i = 4;
      int64_t n = 0;
      for (; i < base.size() && i < 14 && base[i] >= '0' && base[i] <= '9'; ++i) n = n * 10 + (base[i] - '0');
      if (i > 4 && i < base.size() && base[i] == '.' && n < c.n_layers) {
        for (const TargetShape& cand : targets)
          if (base.compare(i + 1, std::string::npos, cand.name) == 0) ts = &cand;
        layer = n;
      }
    }
    if (!ts) fail("ERR_MODEL_INVALID", path + ": LoRA tensor '" + name + "' targets '" + base + "', which this " + c.arch + " model does not have");
    const GgufTensor* tb = f.tensor(base + ".lora_b");
    if (!tb) fail("ERR_MODEL_INVALID", path + ": LoRA tensor '" + base + ".lora_b' is missing");
    const int64_t r = t.ne[1];
    if (t.n_dims != 2 || t.ne[0] != ts->n_in || r < 1)
      fail("ERR_MODEL_INVALID", path + ": LoRA tensor '" + name + "' has shape " + shape_of(t) + ", expected [" +
                                    std::to_string(ts->n_in) + ", rank]");
    if (tb->n_dims != 2 || tb->ne[0] != r || tb->ne[1] != ts->n_out)
      fail("ERR_MODEL_INVALID", path + ": LoRA tensor '" + tb->name + "' has shape " + shape_of(*tb) + ", expected [" +
                                    std::to_string(r) + ", " + std::to_string(ts->n_out) + "]");
    LoraWeight& w = a->slots_[static_cast<size_t>(layer) * per + static_cast<size_t>(ts->target)];
    w.r = r, w.n_in = ts->n_in, w.n_out = ts->n_out;
    const std::vector<float> am = dequantized(f, t);  // [r][n_in]
    w.at.resize(am.size());
    for (int64_t k = 0; k < r; ++k)
      for (int64_t j = 0; j < w.n_in; ++j) w.at[static_cast<size_t>(j * r + k)] = am[static_cast<size_t>(k * w.n_in + j)];
    w.b = dequantized(f, *tb);
    a->owned_bytes_ += (w.at.size() + w.b.size()) * sizeof(float);
    a->n_tensors_ += 2;
  }
  // Every lora_b has its lora_a (the loop above read the pairs from the a side).
  for (const GgufTensor& t : f.tensors()) {
    const std::string& name = t.name;
    if (name.compare(name.size() - 7, 7, ".lora_b") == 0 && !f.tensor(name.substr(0, name.size() - 7) + ".lora_a"))
      fail("ERR_MODEL_INVALID", path + ": LoRA tensor '" + name.substr(0, name.size() - 7) + ".lora_a' is missing");
  }
  if (a->n_tensors_ == 0) fail("ERR_MODEL_INVALID", path + ": the adapter has no LoRA tensors");
  file->check_unchanged();
  return a;
}

void Context::set_loras(std::vector<ActiveLora> loras) {
  size_t r_max = 0;
  for (const ActiveLora& l : loras) {
    if (!l.adapter || l.adapter->base() != &model_) fail("ERR_INVALID_ARGUMENT", "the LoRA adapter was loaded for another model");
    if (!(l.scale >= 0) || !std::isfinite(l.scale)) fail("ERR_INVALID_ARGUMENT", "a LoRA scale must be finite and >= 0");
    for (int64_t layer = 0; layer <= cfg_.n_layers; ++layer)
      for (int t = 0; t < static_cast<int>(LoraTarget::Count); ++t)
        if (const LoraWeight* w = l.adapter->weight(layer, static_cast<LoraTarget>(t))) r_max = std::max(r_max, static_cast<size_t>(w->r));
  }
  lora_tmp_.assign(r_max, 0.0f);
  loras_ = std::move(loras);
}

void Context::lora(int64_t layer, LoraTarget target, const float* x, int64_t ntok, float* y, int64_t y_stride) {
  for (const ActiveLora& l : loras_) {
    const LoraWeight* w = l.adapter->weight(layer, target);
    if (!w || l.scale == 0) continue;
    const int64_t r = w->r;
    // llama.cpp (llama_adapter_lora_weight::get_scale): alpha ? scale * alpha / rank : scale.
    const float alpha = l.adapter->alpha();
    const float s = alpha != 0 ? l.scale * alpha / static_cast<float>(r) : l.scale;
    float* ax = lora_tmp_.data();
    for (int64_t t = 0; t < ntok; ++t) {
      const float* xt = x + t * w->n_in;
      std::fill(ax, ax + r, 0.0f);
      for (int64_t j = 0; j < w->n_in; ++j) {
        const float xj = xt[j];
        if (xj == 0.0f) continue;  // a masked input: its column of A is not read
        const float* col = w->at.data() + j * r;
        for (int64_t k = 0; k < r; ++k) ax[k] += xj * col[k];
      }
      float* yt = y + t * y_stride;
      for (int64_t o = 0; o < w->n_out; ++o) {
        const float* bo = w->b.data() + o * r;
        float acc = 0;
        for (int64_t k = 0; k < r; ++k) acc += bo[k] * ax[k];
        yt[o] += s * acc;
      }
    }
  }
}

}  // namespace fd
