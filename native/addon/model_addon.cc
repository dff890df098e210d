// NativeModel and NativeContext: ObjectWraps over fd::Model and fd::Context. Slow work (loading,
// evaluation) runs in AsyncWorkers: options are copied into plain C++ values on the main thread,
// Execute touches no N-API, results are built in Settle on the main thread. Each worker holds a
// reference on the objects it reads, and a context is never evaluated twice at once.
//
// Worker threads: when a worker_thread is terminated, the AsyncWorkers still running complete while
// its environment is torn down and JS can no longer run. Completion then only releases what the
// worker holds (SafeWorker), and Execute reads objects it shares ownership of (shared_ptr), never a
// wrapper that finalization may free.
#include <cstring>
#include <memory>
#include <vector>

#include "common.h"
#include "flashdip/column_store.h"
#include "flashdip/model.h"
#include "flashdip/types.h"

namespace fd_addon {
namespace {

// Constructors per environment (instance data), so the addon also works in worker threads.
struct Constructors {
  Napi::FunctionReference model;
  Napi::FunctionReference context;
};
Constructors& ctors(Napi::Env env) {
  Constructors* c = env.GetInstanceData<Constructors>();
  if (!c) throw make_error(env, "ERR_DISPOSED", "the environment is shutting down");
  return *c;
}

// Tells V8 about native memory; never throws (it runs in finalizers, also during teardown).
void adjust_external(Napi::Env env, int64_t delta) {
  int64_t ignored;
  if (delta != 0) napi_adjust_external_memory(env, delta, &ignored);
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit NativeModel(const Napi::CallbackInfo& info);
  ~NativeModel() override { release(Env()); }

  void adopt(Napi::Env env, std::shared_ptr<fd::Model> m) {
    model_ = std::move(m);
    external_ = static_cast<int64_t>(model_->owned_bytes());
    adjust_external(env, external_);
  }
  std::shared_ptr<fd::Model> model(Napi::Env env) {
    if (!model_) throw make_error(env, "ERR_DISPOSED", "the model has been disposed");
    return model_;
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value CreateContext(const Napi::CallbackInfo& info);
  Napi::Value LoadLora(const Napi::CallbackInfo& info);
  Napi::Value SetBudget(const Napi::CallbackInfo& info);
  Napi::Value Memory(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release(info.Env());
    return info.Env().Undefined();
  }
  void release(Napi::Env env) {
    if (!model_) return;
    model_.reset();  // contexts hold their own reference until they are disposed
    adjust_external(env, -external_);
    external_ = 0;
  }

  std::shared_ptr<fd::Model> model_;
  int64_t external_ = 0;
};

class EvalWorker;

class NativeContext : public Napi::ObjectWrap<NativeContext> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit NativeContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeContext>(info) {}
  ~NativeContext() override;

  void adopt(Napi::Env env, std::shared_ptr<fd::Model> m, std::shared_ptr<fd::Context> c) {
    model_ = std::move(m);
    ctx_ = std::move(c);
    external_ = static_cast<int64_t>(ctx_->owned_bytes());
    adjust_external(env, external_);
  }
  // The evaluation in flight has completed (main thread, no JS). The KV cache's pages are used as
  // positions are written, so V8 hears of the memory as it grows.
  void finished(Napi::Env env) {
    busy_ = false;
    inflight_ = nullptr;
    if (!ctx_) return;
    const int64_t now = static_cast<int64_t>(ctx_->owned_bytes());
    adjust_external(env, now - external_);
    external_ = now;
  }

 private:
  Napi::Value Eval(const Napi::CallbackInfo& info);
  Napi::Value Truncate(const Napi::CallbackInfo& info);
  Napi::Value SetLoras(const Napi::CallbackInfo& info);
  // What the context counts in the model's budget.
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctx_) throw make_error(env, "ERR_DISPOSED", "the session has been disposed");
    Napi::Object o = Napi::Object::New(env);
    o.Set("kv", static_cast<double>(ctx_->kv_bytes()));
    o.Set("scratch", static_cast<double>(ctx_->scratch_bytes()));
    return o;
  }
  // The KV cache's bytes for the first n positions (a sliding-window layer holds at most its ring).
  Napi::Value KvBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctx_) throw make_error(env, "ERR_DISPOSED", "the session has been disposed");
    const double n = arg_number(info, 0, "positions");
    return Napi::Number::New(env, static_cast<double>(ctx_->kv_bytes(static_cast<int64_t>(n))));
  }
  Napi::Value NPast(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ctx_ ? static_cast<double>(ctx_->n_past()) : 0);
  }
  // The statistics as of the last finished batch: a consistent snapshot, also while evaluating
  // (fd::Context::read_sparsity_stats). stats(true) also resets them, which needs an idle context.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctx_) throw make_error(env, "ERR_DISPOSED", "the session has been disposed");
    const bool reset = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
    if (reset) usable(env);
    Napi::Object o = Napi::Object::New(env);
    ctx_->read_sparsity_stats([&](const fd::SparsityStats& s) {
      o.Set("tokens", static_cast<double>(s.tokens));
      o.Set("ugUnitBytes", s.ug_unit_bytes);
      o.Set("downUnitBytes", s.down_unit_bytes);
      o.Set("qkvUnitBytes", s.qkv_unit_bytes);
      o.Set("oUnitBytes", s.o_unit_bytes);
      o.Set("ioBytes", static_cast<double>(s.io.bytes_read));
      o.Set("ioReads", static_cast<double>(s.io.reads));
      o.Set("ioSeconds", s.io.seconds);
      o.Set("ioWaitSeconds", s.io.wait_seconds);
      o.Set("ioGapBytes", static_cast<double>(s.io.gap_bytes));
      o.Set("ioEngine", s.io_engine);
      Napi::Array layers = Napi::Array::New(env, s.layers.size());
      for (size_t i = 0; i < s.layers.size(); ++i) {
        const fd::LayerStats& l = s.layers[i];
        Napi::Object lo = Napi::Object::New(env);
        lo.Set("ugHits", static_cast<double>(l.ug_hits));
        lo.Set("ugMisses", static_cast<double>(l.ug_misses));
        lo.Set("downHits", static_cast<double>(l.down_hits));
        lo.Set("downMisses", static_cast<double>(l.down_misses));
        lo.Set("qkvHits", static_cast<double>(l.qkv_hits));
        lo.Set("qkvMisses", static_cast<double>(l.qkv_misses));
        lo.Set("oHits", static_cast<double>(l.o_hits));
        lo.Set("oMisses", static_cast<double>(l.o_misses));
        lo.Set("seconds", l.seconds);
        lo.Set("ioWaitSeconds", l.io_wait_seconds);
        layers.Set(static_cast<uint32_t>(i), lo);
      }
      o.Set("layers", layers);
      if (s.record) {
        Napi::Int32Array trace = Napi::Int32Array::New(env, s.trace.size());
        if (!s.trace.empty()) std::memcpy(trace.Data(), s.trace.data(), s.trace.size() * sizeof(int32_t));
        o.Set("trace", trace);
        Napi::Float32Array times = Napi::Float32Array::New(env, s.times.size());
        if (!s.times.empty()) std::memcpy(times.Data(), s.times.data(), s.times.size() * sizeof(float));
        o.Set("times", times);
        Napi::Array masks = Napi::Array::New(env, s.masks.size());
        for (size_t i = 0; i < s.masks.size(); ++i) {
          Napi::Int32Array mk = Napi::Int32Array::New(env, s.masks[i].size());
          if (!s.masks[i].empty()) std::memcpy(mk.Data(), s.masks[i].data(), s.masks[i].size() * sizeof(int32_t));
          masks.Set(static_cast<uint32_t>(i), mk);
        }
        o.Set("masks", masks);
        if (!s.attn_trace.empty() || !s.attn_masks.empty()) {
          Napi::Int32Array at = Napi::Int32Array::New(env, s.attn_trace.size());
          if (!s.attn_trace.empty()) std::memcpy(at.Data(), s.attn_trace.data(), s.attn_trace.size() * sizeof(int32_t));
          o.Set("attnTrace", at);
          Napi::Array am = Napi::Array::New(env, s.attn_masks.size());
          for (size_t i = 0; i < s.attn_masks.size(); ++i) {
            Napi::Int32Array mk = Napi::Int32Array::New(env, s.attn_masks[i].size());
            if (!s.attn_masks[i].empty()) std::memcpy(mk.Data(), s.attn_masks[i].data(), s.attn_masks[i].size() * sizeof(int32_t));
            am.Set(static_cast<uint32_t>(i), mk);
          }
          o.Set("attnMasks", am);
        }
      }
    });
    if (reset) ctx_->reset_sparsity_stats();
    return o;
  }
  // { shift, bins, x: Float64Array[layer], h: Float64Array[layer] (and with attention DIP attnIn,
  // attnOut) }: the score histograms of a context made with `histograms` (fd::Context::score_histograms), or null.
  Napi::Value Histograms(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);  // not while a worker evaluates: the counts are being written
    const std::vector<uint64_t>& h = ctx_->score_histograms();
    if (h.empty()) return env.Null();
    const size_t masks = static_cast<size_t>(ctx_->score_hist_masks());
    const size_t bins = static_cast<size_t>(fd::kScoreHistBins), layers = h.size() / (masks * bins);
    Napi::Object o = Napi::Object::New(env);
    o.Set("shift", fd::kScoreHistShift);
    o.Set("bins", static_cast<double>(bins));
    static const char* const names[4] = {"x", "h", "attnIn", "attnOut"};
    for (size_t unit = 0; unit < masks; ++unit) {
      Napi::Array arr = Napi::Array::New(env, layers);
      for (size_t l = 0; l < layers; ++l) {
        Napi::Float64Array a = Napi::Float64Array::New(env, bins);
        const uint64_t* src = h.data() + (l * masks + unit) * bins;
        for (size_t b = 0; b < bins; ++b) a[b] = static_cast<double>(src[b]);
        arr.Set(static_cast<uint32_t>(l), a);
      }
      o.Set(names[unit], arr);
    }
    return o;
  }
  // Frees the context at once, or, while an evaluation runs, as soon as it ends (the worker shares
  // ownership); the pending evaluation still settles.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release(info.Env());
    return info.Env().Undefined();
  }
  void usable(Napi::Env env) {
    if (!ctx_) throw make_error(env, "ERR_DISPOSED", "the session has been disposed");
    if (busy_) throw make_error(env, "ERR_BUSY", "the session is already evaluating; await the previous call");
  }
  void release(Napi::Env env) {
    if (!ctx_) return;
    ctx_.reset();
    model_.reset();
    adjust_external(env, -external_);
    external_ = 0;
  }

  std::shared_ptr<fd::Model> model_;
  std::shared_ptr<fd::Context> ctx_;
  EvalWorker* inflight_ = nullptr;  // the evaluation in flight, told when this wrapper is finalized
  bool busy_ = false;
  int64_t external_ = 0;
};

class LoadWorker : public SafeWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, fd::ModelOptions opts) : SafeWorker(env), path_(std::move(path)), opts_(opts) {}
  void Execute() override {
    err_.run([&] { model_ = fd::Model::load(path_, opts_); });
  }
  void Settle(Napi::Env env) override {
    if (err_.set) return deferred_.Reject(err_.value(env));
    Napi::Object obj = ctors(env).model.New({});
    NativeModel::Unwrap(obj)->adopt(env, std::shared_ptr<fd::Model>(std::move(model_)));
    deferred_.Resolve(obj);
  }

 private:
  std::string path_;
  fd::ModelOptions opts_;
  std::unique_ptr<fd::Model> model_;
  CapturedError err_;
};

class EvalWorker : public SafeWorker {
 public:
  EvalWorker(Napi::Env env, NativeContext* owner, Napi::Object owner_obj, std::shared_ptr<fd::Model> model,
             std::shared_ptr<fd::Context> ctx, std::vector<int32_t> tokens, bool all, Napi::Float32Array out)
      : SafeWorker(env), owner_(owner), model_(std::move(model)), ctx_(std::move(ctx)), tokens_(std::move(tokens)), all_(all) {
    owner_ref_ = Napi::Persistent(owner_obj);
    out_ref_ = Napi::Persistent(out);
    logits_.resize(out.ElementLength());
  }
  void detach() { owner_ = nullptr; }
  void Execute() override {
    err_.run([&] { ctx_->eval(tokens_.data(), static_cast<int64_t>(tokens_.size()), all_, logits_.data()); });
  }
  void Finish(Napi::Env env) override {
    if (owner_) owner_->finished(env);
  }
  void Settle(Napi::Env env) override {
    if (err_.set) return deferred_.Reject(err_.value(env));
    Napi::Float32Array out = out_ref_.Value().As<Napi::Float32Array>();
    std::copy(logits_.begin(), logits_.end(), out.Data());
    deferred_.Resolve(env.Undefined());
  }

 private:
  NativeContext* owner_;
  Napi::ObjectReference owner_ref_;
  Napi::Reference<Napi::Float32Array> out_ref_;
  std::shared_ptr<fd::Model> model_;  // the context reads the model: both outlive Execute
  std::shared_ptr<fd::Context> ctx_;
  std::vector<int32_t> tokens_;
  bool all_;
  std::vector<float> logits_;
  CapturedError err_;
};

NativeContext::~NativeContext() {
  if (inflight_) inflight_->detach();
  release(Env());
}

Napi::Function NativeModel::Init(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {InstanceMethod("info", &NativeModel::Info),
                      InstanceMethod("createContext", &NativeModel::CreateContext),
                      InstanceMethod("loadLora", &NativeModel::LoadLora),
                      InstanceMethod("setBudget", &NativeModel::SetBudget),
                      InstanceMethod("memory", &NativeModel::Memory),
                      InstanceMethod("dispose", &NativeModel::Dispose)});
}

NativeModel::NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}

Napi::Value NativeModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<fd::Model> m = model(env);
  const fd::ModelConfig& c = m->config();
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", c.arch);
  o.Set("name", c.name);
  o.Set("vocabSize", static_cast<double>(c.n_vocab));
  o.Set("dim", static_cast<double>(c.dim));
  o.Set("layers", static_cast<double>(c.n_layers));
  o.Set("heads", static_cast<double>(c.n_heads));
  o.Set("kvHeads", static_cast<double>(c.n_kv_heads));
  o.Set("headDim", static_cast<double>(c.head_dim));
  o.Set("ffn", static_cast<double>(c.ffn));
  o.Set("contextLength", static_cast<double>(c.ctx_train));
  o.Set("ropeDims", static_cast<double>(c.rope_dims));
  o.Set("ropeBase", c.rope_base);
  o.Set("ropeNeox", c.rope_neox);
  o.Set("normEps", c.norm_eps);
  o.Set("tiedEmbeddings", c.tied_embeddings);
  o.Set("threads", m->pool().size());
  o.Set("fileSize", static_cast<double>(m->file().file_size()));
  o.Set("dipLayout", c.dip_layout);
  o.Set("dipAttention", c.dip_attention);
  o.Set("weightsCopied", m->file().data_copied());
  return o;
}

// An optional Float32Array property, copied (empty when absent).
std::vector<float> opt_floats(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return {};
  check(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array, o.Env(),
        std::string(key) + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Value NativeModel::CreateContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<fd::Model> m = model(env);
  check(info.Length() > 0 && info[0].IsObject(), env, "createContext(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  fd::ContextOptions co;
  co.n_ctx = static_cast<int64_t>(opt_number(o, "contextSize", 0));
  co.kv_type = static_cast<uint32_t>(opt_number(o, "kvType", fd::TYPE_F32));
  co.max_batch = static_cast<int64_t>(opt_number(o, "batchSize", 64));
  co.threads = static_cast<int>(opt_number(o, "threads", 0));
  co.record = opt_number(o, "record", 0) != 0;
  Napi::Value spv = o.Get("sparsity");
  if (spv.IsObject()) {
    Napi::Object sp = spv.As<Napi::Object>();
    fd::SparsityConfig& c = co.sparsity;
    c.method = static_cast<fd::SparseMethod>(static_cast<int>(opt_number(sp, "method", 0)));
    check(static_cast<int>(c.method) >= 0 && static_cast<int>(c.method) <= 5, env, "sparsity.method is unknown");
    c.keep_x = opt_number(sp, "keepX", 1);
    c.keep_h = opt_number(sp, "keepH", 1);
    c.gamma = opt_number(sp, "gamma", 1);
    c.fixed_top_n = static_cast<int64_t>(opt_number(sp, "fixedTopN", 0));
    c.read_block = opt_number(sp, "readBlock", 0);
    c.read_cover = opt_number(sp, "readCover", 1);
    c.warmup = opt_number(sp, "warmup", 1) != 0;
    c.alpha_blend = opt_number(sp, "alphaBlend", 0) != 0;
    c.thr_x = opt_floats(sp, "thresholdsX");
    c.thr_h = opt_floats(sp, "thresholdsH");
    c.keep_attn = opt_number(sp, "keepAttn", 1);
    c.thr_attn_in = opt_floats(sp, "thresholdsAttnIn");
    c.thr_attn_out = opt_floats(sp, "thresholdsAttnOut");
  }
  co.histograms = opt_number(o, "histograms", 0) != 0;
  co.attn_histograms = opt_number(o, "histograms", 0) == 2;  // 2: the attention masks' too
  co.adapter_bytes = static_cast<size_t>(opt_number(o, "loraBytes", 0));
  return guard(env, [&]() -> Napi::Value {
    std::shared_ptr<fd::Context> ctx = std::make_shared<fd::Context>(*m, co);
    Napi::Object obj = ctors(env).context.New({});
    NativeContext::Unwrap(obj)->adopt(env, m, std::move(ctx));
    return obj;
  });
}

// setBudget({ budget, policy, dropPages }): the column store the model's sessions share (once, before any session).
Napi::Value NativeModel::SetBudget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<fd::Model> m = model(env);
  check(info.Length() > 0 && info[0].IsObject(), env, "setBudget(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  fd::StoreOptions so;
  so.budget = opt_number(o, "budget", 0);
  so.policy = static_cast<fd::CachePolicyKind>(static_cast<int>(opt_number(o, "policy", 2)));
  check(static_cast<int>(so.policy) >= 0 && static_cast<int>(so.policy) <= 2, env, "cache policy is unknown");
  so.drop_pages = opt_number(o, "dropPages", 1) != 0;
  guard(env, [&] { m->set_budget(so); });
  return env.Undefined();
}

// The file's byte split and, under a budget, how the budget is shared (fd::BudgetReport).
Napi::Value NativeModel::Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<fd::Model> m = model(env);
  fd::ColumnStore* store = m->store();
  const fd::ByteSplit b = fd::split_bytes(*m, store != nullptr);
  Napi::Object o = Napi::Object::New(env);
  Napi::Object bytes = Napi::Object::New(env);
  bytes.Set("mlp", static_cast<double>(b.mlp));
  bytes.Set("attn", static_cast<double>(b.attn));
  bytes.Set("static", static_cast<double>(b.fixed));
  bytes.Set("streamed", static_cast<double>(b.streamed));
  bytes.Set("mlpLayer", static_cast<double>(b.mlp_layer));
  o.Set("bytes", bytes);
  if (!store) return o;
  const fd::BudgetReport r = store->report();
  Napi::Object bo = Napi::Object::New(env);
  bo.Set("budget", r.budget);
  bo.Set("adapters", static_cast<double>(r.adapters));
  bo.Set("sessions", static_cast<double>(r.sessions));
  bo.Set("kv", static_cast<double>(r.kv));
  bo.Set("scratch", static_cast<double>(r.scratch));
  bo.Set("cacheBytes", r.cache_bytes);
  bo.Set("cacheFraction", r.cache_fraction);
  bo.Set("hits", static_cast<double>(r.hits));
  bo.Set("misses", static_cast<double>(r.misses));
  bo.Set("ioBytes", static_cast<double>(r.io.bytes_read));
  bo.Set("ioGapBytes", static_cast<double>(r.io.gap_bytes));
  bo.Set("ioReads", static_cast<double>(r.io.reads));
  bo.Set("ioSeconds", r.io.seconds);
  bo.Set("ioEngine", store->io_engine());
  bo.Set("policy", static_cast<double>(static_cast<int>(store->options().policy)));
  bo.Set("dropPages", store->options().drop_pages);
  o.Set("budget", bo);
  return o;
}

Napi::Function NativeContext::Init(Napi::Env env) {
  return DefineClass(env, "NativeContext",
                     {InstanceMethod("eval", &NativeContext::Eval),
                      InstanceMethod("truncate", &NativeContext::Truncate),
                      InstanceMethod("nPast", &NativeContext::NPast),
                      InstanceMethod("bytes", &NativeContext::Bytes),
                      InstanceMethod("kvBytes", &NativeContext::KvBytes),
                      InstanceMethod("stats", &NativeContext::Stats),
                      InstanceMethod("histograms", &NativeContext::Histograms),
                      InstanceMethod("setLoras", &NativeContext::SetLoras),
                      InstanceMethod("dispose", &NativeContext::Dispose)});
}

// eval(tokens: Int32Array, allLogits: boolean, out: Float32Array): Promise<void>
Napi::Value NativeContext::Eval(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  usable(env);
  check(info.Length() >= 3 && info[0].IsTypedArray() &&
            info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array && info[1].IsBoolean() &&
            info[2].IsTypedArray() && info[2].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
        env, "eval(tokens: Int32Array, allLogits: boolean, out: Float32Array)");
  Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
  const bool all = info[1].As<Napi::Boolean>().Value();
  Napi::Float32Array out = info[2].As<Napi::Float32Array>();
  const size_t n = tokens.ElementLength();
  const size_t vocab = static_cast<size_t>(model_->config().n_vocab);
  check(n > 0, env, "tokens must not be empty");
  check(out.ElementLength() == (all ? n * vocab : vocab), env, "out must hold the logits (" + std::to_string(all ? n * vocab : vocab) + " floats)");
  std::vector<int32_t> toks(tokens.Data(), tokens.Data() + n);
  EvalWorker* w = new EvalWorker(env, this, info.This().As<Napi::Object>(), model_, ctx_, std::move(toks), all, out);
  Napi::Promise p = w->promise();
  w->Queue();
  busy_ = true;
  inflight_ = w;
  return p;
}

Napi::Value NativeContext::Truncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  usable(env);
  const double n = arg_number(info, 0, "n");
  int64_t kept = 0;
  guard(env, [&] { kept = ctx_->truncate(static_cast<int64_t>(n)); });
  return Napi::Number::New(env, static_cast<double>(kept));
}

// An adapter handle crossing to JS: an External owning a reference, whose memory V8 is told of.
using LoraRef = std::shared_ptr<const fd::LoraAdapter>;

class LoraWorker : public SafeWorker {
 public:
  LoraWorker(Napi::Env env, Napi::Object model_obj, std::shared_ptr<fd::Model> model, std::string path)
      : SafeWorker(env), model_(std::move(model)), path_(std::move(path)) {
    model_ref_ = Napi::Persistent(model_obj);
  }
  void Execute() override {
    err_.run([&] { lora_ = fd::LoraAdapter::load(path_, *model_); });
  }
  void Settle(Napi::Env env) override {
    if (err_.set) return deferred_.Reject(err_.value(env));
    const int64_t bytes = static_cast<int64_t>(lora_->owned_bytes());
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", static_cast<double>(bytes));
    o.Set("tensors", static_cast<double>(lora_->n_tensors()));
    o.Set("alpha", lora_->alpha());
    adjust_external(env, bytes);
    o.Set("handle", Napi::External<LoraRef>::New(env, new LoraRef(std::move(lora_)), [bytes](Napi::Env e, LoraRef* p) {
            adjust_external(e, -bytes);
            delete p;
          }));
    deferred_.Resolve(o);
  }

 private:
  Napi::ObjectReference model_ref_;
  std::shared_ptr<fd::Model> model_;
  std::string path_;
  std::unique_ptr<const fd::LoraAdapter> lora_;
  CapturedError err_;
};

// loadLora(path): Promise<{ handle, bytes, tensors, alpha }>
Napi::Value NativeModel::LoadLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<fd::Model> m = model(env);
  const std::string path = arg_string(info, 0, "path");
  LoraWorker* w = new LoraWorker(env, info.This().As<Napi::Object>(), m, path);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// setLoras([{ handle, scale }]): the adapters the next evaluations apply (the context must be idle).
Napi::Value NativeContext::SetLoras(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  usable(env);
  check(info.Length() > 0 && info[0].IsArray(), env, "setLoras(loras: { handle, scale }[])");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<fd::ActiveLora> loras;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    check(v.IsObject(), env, "setLoras: each entry is { handle, scale }");
    Napi::Object e = v.As<Napi::Object>();
    Napi::Value h = e.Get("handle");
    check(h.IsExternal(), env, "setLoras: handle must come from loadLora");
    fd::ActiveLora l;
    l.adapter = *h.As<Napi::External<LoraRef>>().Data();
    l.scale = static_cast<float>(opt_number(e, "scale", 1));
    loras.push_back(std::move(l));
  }
  guard(env, [&] { ctx_->set_loras(std::move(loras)); });
  return env.Undefined();
}

// loadModel(path, { threads, copyWeights }): Promise<NativeModel>; copyWeights -1 (default) / 0 / 1 as
// fd::ModelOptions::copy_weights.
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = arg_string(info, 0, "path");
  fd::ModelOptions opts;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    opts.threads = static_cast<int>(opt_number(o, "threads", 0));
    opts.copy_weights = static_cast<int>(opt_number(o, "copyWeights", -1));
    check(opts.copy_weights >= -1 && opts.copy_weights <= 1, env, "copyWeights must be -1, 0 or 1");
  }
  LoadWorker* w = new LoadWorker(env, path, opts);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace

void init_model(Napi::Env env, Napi::Object exports) {
  Constructors* c = new Constructors();
  Napi::Function model = NativeModel::Init(env), context = NativeContext::Init(env);
  c->model = Napi::Persistent(model);
  c->context = Napi::Persistent(context);
  env.SetInstanceData<Constructors>(c);
  exports.Set("NativeModel", model);
  exports.Set("NativeContext", context);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
}

}  // namespace fd_addon
