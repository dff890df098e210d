// The low-level kernels on TypedArrays, for make-model, convert, tests and research.
#include <cstring>

#include "common.h"
#include "flashdip/bench.h"
#include "flashdip/kernels.h"
#include "flashdip/sparse.h"
#include "flashdip/sparsity.h"
#include "flashdip/types.h"

namespace fd_addon {
namespace {

const fd::TypeTraits& type_arg(const Napi::CallbackInfo& info, size_t i) {
  const double t = arg_number(info, i, "type");
  const fd::TypeTraits* tr = t >= 0 && t < fd::TYPE_COUNT ? fd::type_traits(static_cast<uint32_t>(t)) : nullptr;
  check(tr != nullptr, info.Env(), "type " + std::to_string(t) + " is not a known tensor type");
  return *tr;
}

// The largest TypedArray every supported Node (18 and later) can create: V8 aborts the process, rather
// than throwing, when napi_create_typedarray is asked for more.
constexpr uint64_t kMaxArrayBytes = 0xffffffffu;

// quantizeRow(type, Float32Array) -> Uint8Array
Napi::Value QuantizeRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const fd::TypeTraits& tr = type_arg(info, 0);
  const uint32_t type = static_cast<uint32_t>(info[0].As<Napi::Number>().Uint32Value());
  check(tr.can_quantize, env, std::string("cannot quantize to ") + tr.name);
  check(info.Length() > 1 && info[1].IsTypedArray() &&
            info[1].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
        env, "src must be a Float32Array");
  Napi::Float32Array src = info[1].As<Napi::Float32Array>();
  const int64_t n = static_cast<int64_t>(src.ElementLength());
  check(n % tr.block_size == 0, env, "length " + std::to_string(n) + " is not a multiple of the block size " + std::to_string(tr.block_size));
  check(fd::row_bytes(type, n) <= kMaxArrayBytes, env, "length " + std::to_string(n) + " gives more than 4 GiB for one row");
  Napi::Uint8Array out = Napi::Uint8Array::New(env, fd::row_bytes(type, n));
  if (n) fd::quantize_row(type, src.Data(), out.Data(), n);
  return out;
}

// dequantizeRow(type, Uint8Array, n) -> Float32Array
Napi::Value DequantizeRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const fd::TypeTraits& tr = type_arg(info, 0);
  const uint32_t type = static_cast<uint32_t>(info[0].As<Napi::Number>().Uint32Value());
  check(tr.can_dequantize, env, std::string("cannot dequantize ") + tr.name);
  check(info.Length() > 1 && info[1].IsTypedArray() &&
            info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array,
        env, "src must be a Uint8Array");
  Napi::Uint8Array src = info[1].As<Napi::Uint8Array>();
  const double nd = arg_number(info, 2, "n");
  check(nd >= 0 && nd <= 1e12 && static_cast<int64_t>(nd) % tr.block_size == 0, env, "n must be a multiple of the block size");
  const int64_t n = static_cast<int64_t>(nd);
  check(src.ByteLength() >= fd::row_bytes(type, n), env, "src is too short for n elements");
  check(static_cast<uint64_t>(n) * sizeof(float) <= kMaxArrayBytes, env, "n " + std::to_string(n) + " gives more than 4 GiB of floats");
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(n));
  if (n) fd::dequantize_row(type, src.Data(), out.Data(), n);
  return out;
}

// gemv(type, weights: Uint8Array, n, rows, x: Float32Array) -> Float32Array (y = W x)
Napi::Value Gemv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const fd::TypeTraits& tr = type_arg(info, 0);
  const uint32_t type = static_cast<uint32_t>(info[0].As<Napi::Number>().Uint32Value());
  check(tr.can_compute, env, std::string("cannot compute with ") + tr.name);
  check(info.Length() > 4 && info[1].IsTypedArray() && info[4].IsTypedArray(), env, "gemv(type, w, n, rows, x)");
  Napi::Uint8Array w = info[1].As<Napi::Uint8Array>();
  const int64_t n = static_cast<int64_t>(arg_number(info, 2, "n"));
  const int64_t rows = static_cast<int64_t>(arg_number(info, 3, "rows"));
  Napi::Float32Array x = info[4].As<Napi::Float32Array>();
  check(n > 0 && rows > 0 && n % tr.block_size == 0, env, "bad n or rows");
  check(static_cast<int64_t>(x.ElementLength()) == n, env, "x must have n elements");
  const size_t rb = fd::row_bytes(type, n);
  check(w.ByteLength() >= rb * static_cast<size_t>(rows), env, "w is too short");
  const uint32_t vdt = fd::vec_dot_type(type);
  std::vector<uint8_t> xq(fd::row_bytes(vdt, n) + 64);
  fd::quantize_activation(type, x.Data(), xq.data(), n);
  Napi::Float32Array y = Napi::Float32Array::New(env, static_cast<size_t>(rows));
  fd::gemv(type, w.Data(), rb, n, rows, xq.data(), y.Data());
  return y;
}

// cacheSimulate(nUnits, capacity, policy 0|1|2, masks: Int32Array[]) -> { hits: number[], cached: Uint8Array[] }
// Runs the native column-cache bookkeeping over a mask sequence (property tests against a model).
Napi::Value CacheSimulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double n = arg_number(info, 0, "nUnits"), cap = arg_number(info, 1, "capacity"), pol = arg_number(info, 2, "policy");
  check(n >= 1 && n <= (1 << 24) && cap >= 0 && pol >= 0 && pol <= 2, env, "bad nUnits, capacity or policy");
  check(info.Length() > 3 && info[3].IsArray(), env, "masks must be an array of Int32Array");
  Napi::Array masks = info[3].As<Napi::Array>();
  fd::CacheState cache(static_cast<int64_t>(n), static_cast<int64_t>(cap), static_cast<fd::CachePolicyKind>(static_cast<int>(pol)));
  Napi::Array hits = Napi::Array::New(env, masks.Length()), cached = Napi::Array::New(env, masks.Length());
  for (uint32_t t = 0; t < masks.Length(); ++t) {
    Napi::Value mv = masks.Get(t);
    check(mv.IsTypedArray() && mv.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array, env, "masks must be Int32Arrays");
    Napi::Int32Array m = mv.As<Napi::Int32Array>();
    for (size_t i = 0; i < m.ElementLength(); ++i)
      check(m[i] >= 0 && m[i] < n && (i == 0 || m[i] > m[i - 1]), env, "a mask must hold ascending unit indices below nUnits");
    hits.Set(t, static_cast<double>(cache.access(m.Data(), static_cast<int64_t>(m.ElementLength()))));
    Napi::Uint8Array flags = Napi::Uint8Array::New(env, static_cast<size_t>(n));
    std::memcpy(flags.Data(), cache.flags(), static_cast<size_t>(n));
    cached.Set(t, flags);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("hits", hits);
  out.Set("cached", cached);
  return out;
}

// topk(a: Float32Array, k) -> Int32Array of the indices of the k largest |a|, ascending (ties: lower index).
Napi::Value TopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(info.Length() > 1 && info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
        env, "topk(scores: Float32Array, k)");
  Napi::Float32Array a = info[0].As<Napi::Float32Array>();
  const double kd = arg_number(info, 1, "k");
  check(kd >= 0, env, "k must be >= 0");
  const int64_t n = static_cast<int64_t>(a.ElementLength());
  const int64_t k = std::min<int64_t>(n, static_cast<int64_t>(kd));
  Napi::Int32Array out = Napi::Int32Array::New(env, static_cast<size_t>(k));
  fd::topk_abs(a.Data(), n, k, out.Data(), nullptr);
  return out;
}

// ---- micro-benchmarks (flashdip/bench.h): the timing loops run natively, synchronously ----------
// They block the calling thread for about a second each and allocate up to 1.5 x storeBytes.

int bench_int(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi) {
  const double v = arg_number(info, i, name);
  check(v >= lo && v <= hi && v == static_cast<double>(static_cast<int64_t>(v)), info.Env(),
        std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(v);
}

size_t bench_store(const Napi::CallbackInfo& info, size_t i) {
  const double v = arg_number(info, i, "storeBytes");
  check(v >= (1 << 20) && v <= 8.0 * (1ull << 30), info.Env(), "storeBytes must be in [1 MiB, 8 GiB]");
  return static_cast<size_t>(v);
}

// benchMemcpy(storeBytes, reps) -> bytes read per second
Napi::Value BenchMemcpy(const Napi::CallbackInfo& info) {
  const size_t store = bench_store(info, 0);
  const int reps = bench_int(info, 1, "reps", 1, 100000);
  return Napi::Number::New(info.Env(), guard(info.Env(), [&] { return fd::bench_memcpy(store, reps); }));
}

// benchGather(type, m, density, storeBytes, reps) -> { m, rowBytes, k, gatherBps, memcpyBps, readBps }
Napi::Value BenchGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t type = static_cast<uint32_t>(bench_int(info, 0, "type", 0, fd::TYPE_COUNT - 1));
  check(fd::gather_row_type_supported(type), env, std::string("gather rows of type ") + fd::type_name(type) + " are not supported");
  const int m = bench_int(info, 1, "m", 32, 1 << 22);
  check(m % fd::gather_unit(type) == 0, env, "m must be a multiple of " + std::to_string(fd::gather_unit(type)) + " for " + fd::type_name(type) + " rows");
  const double density = arg_number(info, 2, "density");
  check(density > 0 && density <= 1, env, "density must be in (0, 1]");
  const size_t store = bench_store(info, 3);
  check(store >= 2 * fd::row_bytes(type, m), env, "storeBytes must hold at least two rows");
  const int reps = bench_int(info, 4, "reps", 1, 100000);
  const fd::GatherBench g = guard(env, [&] { return fd::bench_gather(type, m, density, store, reps, 5); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("m", static_cast<double>(g.m));
  o.Set("rowBytes", static_cast<double>(g.row_bytes));
  o.Set("k", static_cast<double>(g.k));
  o.Set("gatherBps", g.gather_bps);
  o.Set("memcpyBps", g.memcpy_bps);
  o.Set("readBps", g.read_bps);
  return o;
}

// benchGemv(type, n, rows, storeBytes, reps) -> { n, rows, matrixBytes, medianBps, bestBps }
Napi::Value BenchGemv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const fd::TypeTraits& tr = type_arg(info, 0);
  const uint32_t type = static_cast<uint32_t>(info[0].As<Napi::Number>().Uint32Value());
  check(tr.can_compute && tr.can_quantize, env, std::string("cannot time a gemv over ") + tr.name);
  const int n = bench_int(info, 1, "n", 1, 1 << 20);
  check(n % static_cast<int>(tr.block_size) == 0, env, "n must be a multiple of the block size");
  const int rows = bench_int(info, 2, "rows", 1, 1 << 20);
  const size_t store = bench_store(info, 3);
  const int reps = bench_int(info, 4, "reps", 1, 100000);
  const fd::GemvBench g = guard(env, [&] { return fd::bench_gemv(type, n, rows, store, reps, 5); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("n", static_cast<double>(g.n));
  o.Set("rows", static_cast<double>(g.rows));
  o.Set("matrixBytes", static_cast<double>(g.matrix_bytes));
  o.Set("medianBps", g.median_bps);
  o.Set("bestBps", g.best_bps);
  return o;
}

// benchTopk(n, keep, reps) -> { n, k, dipUs, caUs, caTopUs, nthUs }
Napi::Value BenchTopk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = bench_int(info, 0, "n", 1, 1 << 24);
  const double keep = arg_number(info, 1, "keep");
  check(keep > 0 && keep <= 1, env, "keep must be in (0, 1]");
  const int reps = bench_int(info, 2, "reps", 1, 100000);
  const fd::TopkBench t = guard(env, [&] { return fd::bench_topk(n, keep, reps, 5); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("n", static_cast<double>(t.n));
  o.Set("k", static_cast<double>(t.k));
  o.Set("dipUs", t.dip_us);
  o.Set("caUs", t.ca_us);
  o.Set("caTopUs", t.ca_top_us);
  o.Set("nthUs", t.nth_us);
  return o;
}

// info() -> { isa, available, kernels: [{ op, type, isa, function, available, active }] }: the ISA in
// use, those this CPU runs, and the kernel registry (type '' for the untyped top-k primitives; active:
// the kernel dispatch runs for its (op, type) now).
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", fd::kernels_isa());
  o.Set("available", fd::kernels_available_isas());
  Napi::Array list = Napi::Array::New(env, fd::kernel_count());
  for (size_t i = 0; i < fd::kernel_count(); ++i) {
    const fd::KernelInfo& k = fd::kernel_info(i);
    Napi::Object e = Napi::Object::New(env);
    e.Set("op", fd::kernel_op_name(k.op));
    e.Set("type", k.type == fd::TYPE_NONE ? "" : fd::type_name(k.type));
    e.Set("isa", fd::isa_name(k.isa));
    e.Set("function", k.function);
    e.Set("available", fd::isa_available(k.isa));
    e.Set("active", fd::kernel_active(k.op, k.type) == &k);
    list.Set(static_cast<uint32_t>(i), e);
  }
  o.Set("kernels", list);
  return o;
}

// types() -> [{ id, name, blockSize, blockBytes, canDequantize, canCompute, canQuantize, gatherRows }]:
// the type traits (types.cc) of every known type id, and whether the registry has gather kernels for
// rows of that type.
Napi::Value Types(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t id = 0; id < fd::TYPE_COUNT; ++id) {
    const fd::TypeTraits* t = fd::type_traits(id);
    if (!t) continue;
    Napi::Object e = Napi::Object::New(env);
    e.Set("id", id);
    e.Set("name", t->name);
    e.Set("blockSize", t->block_size);
    e.Set("blockBytes", t->block_bytes);
    e.Set("canDequantize", t->can_dequantize);
    e.Set("canCompute", t->can_compute);
    e.Set("canQuantize", t->can_quantize);
    e.Set("gatherRows", fd::gather_row_type_supported(id));
    list.Set(n++, e);
  }
  return list;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  const std::string isa = arg_string(info, 0, "isa");
  return Napi::Boolean::New(info.Env(), fd::kernels_set_isa(isa.c_str()));
}

}  // namespace

void init_kernels(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("quantizeRow", Napi::Function::New(env, QuantizeRow));
  k.Set("dequantizeRow", Napi::Function::New(env, DequantizeRow));
  k.Set("gemv", Napi::Function::New(env, Gemv));
  k.Set("info", Napi::Function::New(env, Info));
  k.Set("types", Napi::Function::New(env, Types));
  k.Set("cacheSimulate", Napi::Function::New(env, CacheSimulate));
  k.Set("topk", Napi::Function::New(env, TopK));
  k.Set("setIsa", Napi::Function::New(env, SetIsa));
  k.Set("benchMemcpy", Napi::Function::New(env, BenchMemcpy));
  k.Set("benchGather", Napi::Function::New(env, BenchGather));
  k.Set("benchGemv", Napi::Function::New(env, BenchGemv));
  k.Set("benchTopk", Napi::Function::New(env, BenchTopk));
  exports.Set("kernels", k);
}

}  // namespace fd_addon
