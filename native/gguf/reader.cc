#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "flashdip/error.h"
#include "flashdip/file.h"
#include "flashdip/gguf.h"
#include "flashdip/types.h"

namespace fd {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kMaxDims = 4;

size_t scalar_size(uint32_t type) {
  switch (type) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
  }
}

// A bounds-checked little-endian cursor over the file. Every read checks the remaining length first.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& label) : p_(p), n_(n), label_(label) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }

  void need(uint64_t bytes, const char* what) const {
    if (bytes > remaining())
      fail("ERR_GGUF_TRUNCATED", label_ + ": file ends inside " + what + " at byte " + std::to_string(pos_) +
                                     " (needs " + std::to_string(bytes) + " more bytes, " +
                                     std::to_string(remaining()) + " left)");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view read_string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    need(len, what);
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  // A count of items of at least `each` bytes must fit in what is left; checked before allocating.
  void need_count(uint64_t count, uint64_t each, const char* what) const {
    if (count > remaining() / each)
      fail("ERR_GGUF_TRUNCATED", label_ + ": " + what + " count " + std::to_string(count) + " at byte " +
                                     std::to_string(pos_) + " cannot fit in the " + std::to_string(remaining()) +
                                     " bytes left");
  }
  const uint8_t* take(uint64_t bytes, const char* what) {
    need(bytes, what);
    const uint8_t* at = p_ + pos_;
    pos_ += static_cast<size_t>(bytes);
    return at;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& label_;
};

void read_scalar(Cursor& c, uint32_t type, GgufValue& v) {
  const size_t sz = scalar_size(type);
  const uint8_t* p = c.take(sz, "a metadata value");
  switch (type) {
    case GGUF_UINT8: v.u64 = p[0]; v.i64 = p[0]; v.f64 = p[0]; break;
    case GGUF_INT8: { int8_t x; std::memcpy(&x, p, 1); v.i64 = x; v.u64 = static_cast<uint64_t>(x); v.f64 = x; break; }
    case GGUF_BOOL: v.u64 = p[0] != 0; v.i64 = p[0] != 0; v.f64 = p[0] != 0; break;
    case GGUF_UINT16: { uint16_t x; std::memcpy(&x, p, 2); v.u64 = x; v.i64 = x; v.f64 = x; break; }
    case GGUF_INT16: { int16_t x; std::memcpy(&x, p, 2); v.i64 = x; v.u64 = static_cast<uint64_t>(x); v.f64 = x; break; }
    case GGUF_UINT32: { uint32_t x; std::memcpy(&x, p, 4); v.u64 = x; v.i64 = x; v.f64 = x; break; }
    case GGUF_INT32: { int32_t x; std::memcpy(&x, p, 4); v.i64 = x; v.u64 = static_cast<uint64_t>(x); v.f64 = x; break; }
    case GGUF_FLOAT32: { float x; std::memcpy(&x, p, 4); v.f64 = x; break; }
    case GGUF_UINT64: { uint64_t x; std::memcpy(&x, p, 8); v.u64 = x; v.i64 = static_cast<int64_t>(x); v.f64 = static_cast<double>(x); break; }
    case GGUF_INT64: { int64_t x; std::memcpy(&x, p, 8); v.i64 = x; v.u64 = static_cast<uint64_t>(x); v.f64 = static_cast<double>(x); break; }
    case GGUF_FLOAT64: { double x; std::memcpy(&x, p, 8); v.f64 = x; break; }
    default: break;
  }
}

GgufValue read_value(Cursor& c, uint32_t type, const std::string& key, const std::string& label) {
  GgufValue v;
  v.type = type;
  if (type == GGUF_STRING) {
    v.str = c.read_string("a metadata string");
  } else if (type == GGUF_ARRAY) {
    v.elem_type = c.read<uint32_t>("an array type");
    v.count = c.read<uint64_t>("an array length");
    if (v.elem_type == GGUF_STRING) {
      // Each string takes at least its 8-byte length, which bounds the count before any allocation.
      c.need_count(v.count, 8, "string array");
      v.strings.reserve(static_cast<size_t>(v.count));
      for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(c.read_string("an array of strings"));
    } else {
      const size_t es = scalar_size(v.elem_type);
      if (es == 0)
        fail("ERR_GGUF_INVALID", label + ": metadata key '" + key + "' has an array of unsupported element type " +
                                     std::to_string(v.elem_type));
      c.need_count(v.count, es, "array");
      v.data = c.take(v.count * es, "an array");
    }
  } else if (scalar_size(type) != 0) {
    read_scalar(c, type, v);
  } else {
    fail("ERR_GGUF_INVALID", label + ": metadata key '" + key + "' has unknown value type " + std::to_string(type));
  }
  return v;
}

}  // namespace

const char* gguf_value_type_name(uint32_t type) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return type < 13 ? names[type] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_UINT16: case GGUF_INT16: case GGUF_UINT32: case GGUF_INT32:
    case GGUF_UINT64: case GGUF_INT64: case GGUF_BOOL: return true;
    default: return false;
  }
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->fd_ = open_regular(path);  // a FIFO or a device is refused before anything can block
  struct stat st;
  if (fstat(f->fd_, &st) != 0) fail("ERR_IO", "cannot stat '" + path + "': " + std::strerror(errno));
  f->size_ = static_cast<size_t>(st.st_size);
  f->mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (f->size_ == 0) fail("ERR_GGUF_TRUNCATED", path + ": file is empty");
  void* m = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, f->fd_, 0);
  if (m == MAP_FAILED) fail("ERR_IO", "cannot map '" + path + "': " + std::strerror(errno));
  f->base_ = static_cast<const uint8_t*>(m);
  f->mapped_ = true;
  f->guard_ = guard_mapping(m, f->size_);
  try {
    f->parse_all();
  } catch (const Error&) {
    f->check_unchanged();  // an error from zeros the guard put in for a truncated file: say so
    throw;
  }
  f->check_unchanged();
  return f;
}

void GgufFile::check_unchanged() const {
  if (!mapped_) return;
  struct stat st;
  std::string how;
  if (fstat(fd_, &st) == 0) {
    // Shorter: pages of the mapping are gone. Modified (written in place, e.g. `cp` over it, or
    // truncated and written again): the mapping shows bytes that were never validated.
    if (static_cast<uint64_t>(st.st_size) < size_)
      how = ": " + std::to_string(st.st_size) + " bytes now, " + std::to_string(size_) + " when loaded";
    else if (static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec != mtime_ns_)
      how = ": modified since it was loaded";
  }
  if (!how.empty() || mapping_damaged(guard_)) changed_.store(true);
  if (changed_.load())
    fail("ERR_IO", "the model file '" + path_ + "' changed while it was loaded (truncated, written to, or a read of it failed" +
                       how + "); load it again");
}

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, std::string label) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = std::move(label);
  f->base_ = data;
  f->size_ = size;
  f->parse_all();
  return f;
}

void GgufFile::copy_tensor_data(bool huge) {
  if (!mapped_) fail("ERR_INVALID_ARGUMENT", path_ + ": only a file opened from disk can copy its tensor data");
  if (data_copied() || data_offset_ >= size_) return;
  const size_t n = size_ - data_offset_;
  PageBuffer buf;
  if (!buf.allocate(n, huge)) fail("ERR_IO", "cannot allocate " + std::to_string(n) + " bytes for the weights of '" + path_ + "'");
  for (size_t done = 0; done < n;) {
    const size_t want = std::min<size_t>(n - done, size_t(64) << 20);
    const ssize_t r = pread(fd_, buf.data() + done, want, static_cast<off_t>(data_offset_ + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      changed_.store(true);  // shorter than when it was opened, or unreadable: what was validated is gone
      fail("ERR_IO", "reading the weights of '" + path_ + "' failed: " + (r == 0 ? std::string("the file ended early") : std::strerror(errno)));
    }
    done += static_cast<size_t>(r);
  }
  check_unchanged();  // written to while it was read: the copy may mix old and new bytes
  const uint8_t* old = tensor_data();
  for (GgufTensor& t : tensors_) t.data = buf.data() + (t.data - old);
  copy_ = std::move(buf);
}

GgufFile::~GgufFile() {
  unguard_mapping(guard_);
  if (mapped_) munmap(const_cast<uint8_t*>(base_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void GgufFile::parse_all() {
  const std::string& label = path_;
  Cursor c(base_, size_, label);
  if (size_ < 4) fail("ERR_GGUF_TRUNCATED", label + ": file is shorter than the GGUF magic");
  const uint32_t magic = c.read<uint32_t>("the magic");
  if (magic != kMagic) fail("ERR_GGUF_BAD_MAGIC", label + ": not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("the version");
  if (version_ != 2 && version_ != 3) {
    // A big-endian file reads as a version with the bytes swapped (0x03000000).
    const bool swapped = version_ == 0x02000000u || version_ == 0x03000000u;
    fail("ERR_GGUF_BAD_VERSION", label + ": GGUF version " + std::to_string(version_) +
                                     (swapped ? " (a big-endian file; only little-endian is supported)"
                                              : " is not supported (2 and 3 are)"));
  }
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // Each KV takes at least 8 (key length) + 4 (type) + 1 bytes and each tensor info at least
  // 8 + 4 + 8 + 4 + 8 bytes: counts larger than the file can hold are rejected before allocating.
  c.need_count(n_kv, 13, "metadata");
  c.need_count(n_tensors, 32, "tensor");

  kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key(c.read_string("a metadata key"));
    const uint32_t type = c.read<uint32_t>("a metadata type");
    GgufValue v = read_value(c, type, key, label);
    if (kv_index_.count(key)) fail("ERR_GGUF_INVALID", label + ": duplicate metadata key '" + key + "'");
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->type == GGUF_BOOL || a->u64 == 0 || a->u64 > (1u << 30) || (a->u64 & (a->u64 - 1)) != 0)
      fail("ERR_GGUF_INVALID", label + ": general.alignment must be a power of two");
    alignment_ = static_cast<uint32_t>(a->u64);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = std::string(c.read_string("a tensor name"));
    t.n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (t.n_dims == 0 || t.n_dims > kMaxDims)
      fail("ERR_GGUF_INVALID", label + ": tensor '" + t.name + "' has " + std::to_string(t.n_dims) + " dimensions");
    uint64_t total = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne == 0 || ne > (uint64_t(1) << 40) || total > (uint64_t(1) << 50) / ne)
        fail("ERR_GGUF_INVALID", label + ": tensor '" + t.name + "' has an invalid dimension " + std::to_string(ne));
      total *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    t.type = c.read<uint32_t>("a tensor type");
    t.offset = c.read<uint64_t>("a tensor offset");
    const TypeTraits* tr = type_traits(t.type);
    if (!tr)
      fail("ERR_UNSUPPORTED_TYPE", label + ": tensor '" + t.name + "' has unknown type id " + std::to_string(t.type));
    if (t.ne[0] % tr->block_size != 0)
      fail("ERR_GGUF_INVALID", label + ": tensor '" + t.name + "' row of " + std::to_string(t.ne[0]) +
                                   " elements is not a whole number of " + tr->name + " blocks");
    t.nbytes = static_cast<size_t>(total / tr->block_size * tr->block_bytes);
    if (t.offset % alignment_ != 0)
      fail("ERR_GGUF_INVALID", label + ": tensor '" + t.name + "' offset is not aligned to " + std::to_string(alignment_));
    if (tensor_index_.count(t.name)) fail("ERR_GGUF_INVALID", label + ": duplicate tensor '" + t.name + "'");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment after the header.
  const uint64_t header_end = c.pos();
  const uint64_t data_off = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (data_off > size_ && !tensors_.empty())
    fail("ERR_GGUF_TRUNCATED", label + ": file ends before its tensor data section");
  data_offset_ = static_cast<size_t>(std::min<uint64_t>(data_off, size_));
  const uint64_t data_size = size_ - data_offset_;

  // Offsets and sizes against the file, and no two tensors overlapping.
  std::vector<const GgufTensor*> order;
  order.reserve(tensors_.size());
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail("ERR_GGUF_TRUNCATED", label + ": tensor '" + t.name + "' data (" + std::to_string(t.nbytes) +
                                     " bytes at offset " + std::to_string(t.offset) + ") runs past the end of the file");
    t.data = base_ + data_offset_ + t.offset;
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
      fail("ERR_GGUF_INVALID", label + ": tensors '" + order[i - 1]->name + "' and '" + order[i]->name + "' overlap");
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

bool GgufFile::get_u64(std::string_view key, uint64_t* out) const {
  const GgufValue* v = find(key);
  if (!v) return false;
  if (!v->is_integer() || (v->type != GGUF_BOOL && v->i64 < 0 && v->type != GGUF_UINT64))
    fail("ERR_GGUF_INVALID", path_ + ": metadata '" + std::string(key) + "' must be a non-negative integer");
  *out = v->u64;
  return true;
}

bool GgufFile::get_f64(std::string_view key, double* out) const {
  const GgufValue* v = find(key);
  if (!v) return false;
  if (v->is_float()) *out = v->f64;
  else if (v->is_integer()) *out = static_cast<double>(v->i64);
  else fail("ERR_GGUF_INVALID", path_ + ": metadata '" + std::string(key) + "' must be a number");
  return true;
}

bool GgufFile::get_str(std::string_view key, std::string* out) const {
  const GgufValue* v = find(key);
  if (!v) return false;
  if (v->type != GGUF_STRING) fail("ERR_GGUF_INVALID", path_ + ": metadata '" + std::string(key) + "' must be a string");
  *out = std::string(v->str);
  return true;
}

bool GgufFile::get_bool(std::string_view key, bool* out) const {
  const GgufValue* v = find(key);
  if (!v) return false;
  if (!v->is_integer()) fail("ERR_GGUF_INVALID", path_ + ": metadata '" + std::string(key) + "' must be a boolean");
  *out = v->u64 != 0;
  return true;
}

}  // namespace fd
