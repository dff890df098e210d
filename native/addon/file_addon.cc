// A file's page cache (flashdip/page_cache.h), for benchmarks that start cold.
#include "common.h"
#include "flashdip/page_cache.h"

namespace fd_addon {
namespace {

// pageCacheResident(path) -> bytes of the file in the page cache
Napi::Value PageCacheResident(const Napi::CallbackInfo& info) {
  const std::string path = arg_string(info, 0, "path");
  return Napi::Number::New(info.Env(), static_cast<double>(guard(info.Env(), [&] { return fd::page_cache_resident(path); })));
}

// pageCacheDrop(path): posix_fadvise(DONTNEED) over the whole file
Napi::Value PageCacheDrop(const Napi::CallbackInfo& info) {
  const std::string path = arg_string(info, 0, "path");
  guard(info.Env(), [&] { fd::page_cache_drop(path); });
  return info.Env().Undefined();
}

}  // namespace

void init_file(Napi::Env env, Napi::Object exports) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("pageCacheResident", Napi::Function::New(env, PageCacheResident));
  f.Set("pageCacheDrop", Napi::Function::New(env, PageCacheDrop));
  exports.Set("file", f);
}

}  // namespace fd_addon
