// A file's page cache (flashdip/page_cache.h), for benchmarks that start cold.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common.h"
#include "flashdip/file.h"
#include "flashdip/page_cache.h"
#include "flashdip/reader.h"

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

// readProbe(path, offsets: Float64Array, bytes, perBatch, direct) -> Float64Array of seconds per
// batch: reads `bytes` at each offset through the column store's reader (the same engine, O_DIRECT
// when `direct` and the file system allows it, readahead off), perBatch reads in flight at a time,
// as RowCache::start/finish issue a layer's misses. For `flashdip probe-disk`.
Napi::Value ReadProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = arg_string(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw make_error(env, "ERR_INVALID_ARGUMENT", "offsets: must be a Float64Array");
  Napi::Float64Array offsets = info[1].As<Napi::Float64Array>();
  const double bytes_d = arg_number(info, 2, "bytes"), per_d = arg_number(info, 3, "perBatch");
  if (!(bytes_d >= 1 && bytes_d <= (1 << 30)) || !(per_d >= 1 && per_d <= 4096))
    throw make_error(env, "ERR_INVALID_ARGUMENT", "bytes must be in [1, 2^30] and perBatch in [1, 4096]");
  const bool direct = info.Length() > 4 && info[4].ToBoolean().Value();
  const size_t bytes = static_cast<size_t>(bytes_d), per = static_cast<size_t>(per_d), n = offsets.ElementLength();
  std::vector<uint64_t> at(n);
  for (size_t i = 0; i < n; ++i) {
    const double o = offsets[i];
    if (!(o >= 0) || o > 9007199254740991.0) throw make_error(env, "ERR_INVALID_ARGUMENT", "offsets: must be >= 0");
    at[i] = static_cast<uint64_t>(o);
  }
  std::vector<double> seconds = guard(env, [&] {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd::fail("ERR_IO", "cannot open '" + path + "'");
    std::unique_ptr<fd::RowFile> file;
    try {
      file = std::make_unique<fd::RowFile>(path, fd, direct);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    const bool use_direct = file->direct_fd() >= 0;
    fd::Reader reader(use_direct ? file->direct_fd() : file->fd());
    // One destination per read in flight, 4096-aligned (what O_DIRECT needs of buffers and lengths).
    const size_t stride = (bytes + 4095) / 4096 * 4096;
    uint8_t* buf = reader.bounce(stride * per);
    std::vector<iovec> iov(per);
    std::vector<fd::ReadOp> ops(per);
    std::vector<double> out;
    for (size_t b = 0; b < n; b += per) {
      const size_t m = std::min(per, n - b);
      for (size_t i = 0; i < m; ++i) {
        const uint64_t off = use_direct ? at[b + i] / 4096 * 4096 : at[b + i];
        iov[i] = {buf + i * stride, use_direct ? stride : bytes};
        ops[i] = {off, &iov[i], 1, use_direct ? stride : bytes};
      }
      const auto t0 = std::chrono::steady_clock::now();
      reader.start(ops.data(), m);
      reader.wait();
      out.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return out;
  });
  Napi::Float64Array result = Napi::Float64Array::New(env, seconds.size());
  for (size_t i = 0; i < seconds.size(); ++i) result[i] = seconds[i];
  return result;
}

// directAlign(path) -> what the column store aligns its O_DIRECT reads of this file to (512 or 4096),
// or 0 when the file system takes no O_DIRECT reads (the store then reads through the page cache).
Napi::Value DirectAlign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = arg_string(info, 0, "path");
  const size_t align = guard(env, [&] {
    const int fd = fd::open_regular(path);
    try {
      const size_t a = fd::RowFile(path, fd, true).direct_align();
      ::close(fd);
      return a;
    } catch (...) {
      ::close(fd);
      throw;
    }
  });
  return Napi::Number::New(env, static_cast<double>(align));
}

}  // namespace

void init_file(Napi::Env env, Napi::Object exports) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("pageCacheResident", Napi::Function::New(env, PageCacheResident));
  f.Set("pageCacheDrop", Napi::Function::New(env, PageCacheDrop));
  f.Set("readProbe", Napi::Function::New(env, ReadProbe));
  f.Set("directAlign", Napi::Function::New(env, DirectAlign));
  exports.Set("file", f);
}

}  // namespace fd_addon
