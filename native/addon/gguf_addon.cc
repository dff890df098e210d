// readGguf(path) and readGgufAsync(path): the validated header of a GGUF file as plain JS values,
// for the tokenizer, `flashdip inspect`, loadModel and convert. Tensor data never crosses into JS here.
#include <cstring>

#include "common.h"
#include "flashdip/gguf.h"
#include "flashdip/types.h"

namespace fd_addon {
namespace {

Napi::Value scalar_value(Napi::Env env, uint32_t type, const uint8_t* p) {
  switch (type) {
    case fd::GGUF_UINT8: return Napi::Number::New(env, p[0]);
    case fd::GGUF_INT8: { int8_t x; std::memcpy(&x, p, 1); return Napi::Number::New(env, x); }
    case fd::GGUF_BOOL: return Napi::Boolean::New(env, p[0] != 0);
    case fd::GGUF_UINT16: { uint16_t x; std::memcpy(&x, p, 2); return Napi::Number::New(env, x); }
    case fd::GGUF_INT16: { int16_t x; std::memcpy(&x, p, 2); return Napi::Number::New(env, x); }
    case fd::GGUF_UINT32: { uint32_t x; std::memcpy(&x, p, 4); return Napi::Number::New(env, x); }
    case fd::GGUF_INT32: { int32_t x; std::memcpy(&x, p, 4); return Napi::Number::New(env, x); }
    case fd::GGUF_FLOAT32: { float x; std::memcpy(&x, p, 4); return Napi::Number::New(env, x); }
    case fd::GGUF_FLOAT64: { double x; std::memcpy(&x, p, 8); return Napi::Number::New(env, x); }
    case fd::GGUF_UINT64: {
      uint64_t x; std::memcpy(&x, p, 8);
      if (x <= (uint64_t(1) << 53)) return Napi::Number::New(env, static_cast<double>(x));
      return Napi::BigInt::New(env, x);
    }
    case fd::GGUF_INT64: {
      int64_t x; std::memcpy(&x, p, 8);
      if (x <= (int64_t(1) << 53) && x >= -(int64_t(1) << 53)) return Napi::Number::New(env, static_cast<double>(x));
      return Napi::BigInt::New(env, x);
    }
    default: return env.Undefined();
  }
}

size_t elem_size(uint32_t t) {
  switch (t) {
    case fd::GGUF_UINT8: case fd::GGUF_INT8: case fd::GGUF_BOOL: return 1;
    case fd::GGUF_UINT16: case fd::GGUF_INT16: return 2;
    case fd::GGUF_UINT32: case fd::GGUF_INT32: case fd::GGUF_FLOAT32: return 4;
    default: return 8;
  }
}

Napi::Value value_to_js(Napi::Env env, const fd::GgufValue& v) {
  if (v.type == fd::GGUF_STRING) return Napi::String::New(env, v.str.data(), v.str.size());
  if (v.type != fd::GGUF_ARRAY) {
    uint8_t raw[8];
    // Re-encode the widened scalar so one path converts scalars and array elements alike.
    switch (v.type) {
      case fd::GGUF_FLOAT32: { float f = static_cast<float>(v.f64); std::memcpy(raw, &f, 4); break; }
      case fd::GGUF_FLOAT64: std::memcpy(raw, &v.f64, 8); break;
      default: std::memcpy(raw, &v.u64, 8); break;
    }
    return scalar_value(env, v.type, raw);
  }
  const size_t n = static_cast<size_t>(v.count);
  if (v.elem_type == fd::GGUF_STRING) {
    Napi::Array a = Napi::Array::New(env, n);
    for (size_t i = 0; i < n; ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, v.strings[i].data(), v.strings[i].size()));
    return a;
  }
  // Numeric arrays of the common token-table types become typed arrays (copies, never views of the map).
  if (v.elem_type == fd::GGUF_FLOAT32) {
    Napi::Float32Array a = Napi::Float32Array::New(env, n);
    if (n) std::memcpy(a.Data(), v.data, n * 4);
    return a;
  }
  if (v.elem_type == fd::GGUF_INT32) {
    Napi::Int32Array a = Napi::Int32Array::New(env, n);
    if (n) std::memcpy(a.Data(), v.data, n * 4);
    return a;
  }
  Napi::Array a = Napi::Array::New(env, n);
  const size_t es = elem_size(v.elem_type);
  for (size_t i = 0; i < n; ++i) a.Set(static_cast<uint32_t>(i), scalar_value(env, v.elem_type, v.data + i * es));
  return a;
}

// The header of an open file as JS values (copies: nothing points into the mapping afterwards).
Napi::Object header_to_js(Napi::Env env, const fd::GgufFile& f) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", f.version());
  out.Set("alignment", f.alignment());
  out.Set("fileSize", static_cast<double>(f.file_size()));
  out.Set("dataOffset", static_cast<double>(f.data_offset()));
  Napi::Object meta = Napi::Object::New(env);
  Napi::Object types = Napi::Object::New(env);
  for (const auto& kv : f.metadata()) {
    meta.Set(kv.first, value_to_js(env, kv.second));
    std::string t = fd::gguf_value_type_name(kv.second.type);
    if (kv.second.type == fd::GGUF_ARRAY) t += std::string(":") + fd::gguf_value_type_name(kv.second.elem_type);
    types.Set(kv.first, t);
  }
  out.Set("metadata", meta);
  out.Set("metadataTypes", types);
  Napi::Array tensors = Napi::Array::New(env, f.tensors().size());
  uint32_t i = 0;
  for (const fd::GgufTensor& t : f.tensors()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    Napi::Array dims = Napi::Array::New(env, t.n_dims);
    for (uint32_t d = 0; d < t.n_dims; ++d) dims.Set(d, static_cast<double>(t.ne[d]));
    o.Set("dims", dims);
    o.Set("type", t.type);
    o.Set("typeName", fd::type_name(t.type));
    o.Set("offset", static_cast<double>(t.offset));
    o.Set("bytes", static_cast<double>(t.nbytes));
    tensors.Set(i++, o);
  }
  out.Set("tensors", tensors);
  return out;
}

Napi::Value ReadGguf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = arg_string(info, 0, "path");
  return guard(env, [&]() -> Napi::Value {
    std::unique_ptr<fd::GgufFile> f = fd::GgufFile::open(path);
    Napi::Object out = header_to_js(env, *f);
    f->check_unchanged();  // truncated while its strings were copied: zeros were read
    return out;
  });
}

// readGgufAsync(path): the same, with the open, mapping and validation on a worker thread so the
// event loop never waits on the file; only the conversion to JS values runs on the main thread.
class ReadWorker : public SafeWorker {
 public:
  ReadWorker(Napi::Env env, std::string path) : SafeWorker(env), path_(std::move(path)) {}
  void Execute() override {
    err_.run([&] { file_ = fd::GgufFile::open(path_); });
  }

 private:
  void Settle(Napi::Env env) override {
    if (err_.set) return deferred_.Reject(err_.value(env));
    deferred_.Resolve(guard(env, [&] {
      Napi::Object out = header_to_js(env, *file_);
      file_->check_unchanged();
      return out;
    }));
  }

  std::string path_;
  std::unique_ptr<fd::GgufFile> file_;
  CapturedError err_;
};

Napi::Value ReadGgufAsync(const Napi::CallbackInfo& info) {
  const std::string path = arg_string(info, 0, "path");
  ReadWorker* w = new ReadWorker(info.Env(), path);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace

void init_gguf(Napi::Env env, Napi::Object exports) {
  exports.Set("readGguf", Napi::Function::New(env, ReadGguf));
  exports.Set("readGgufAsync", Napi::Function::New(env, ReadGgufAsync));
}

}  // namespace fd_addon
