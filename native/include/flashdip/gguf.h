// GGUF v2/v3 reader over a read-only memory mapping. Every count, length, offset and size is checked
// against the bytes actually present before it is used, so a truncated or hostile file produces an
// fd::Error (ERR_GGUF_*) and never an out-of-bounds read or a huge allocation.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flashdip/huge_pages.h"

namespace fd {

enum GgufValueType : uint32_t {
  GGUF_UINT8 = 0,
  GGUF_INT8 = 1,
  GGUF_UINT16 = 2,
  GGUF_INT16 = 3,
  GGUF_UINT32 = 4,
  GGUF_INT32 = 5,
  GGUF_FLOAT32 = 6,
  GGUF_BOOL = 7,
  GGUF_STRING = 8,
  GGUF_ARRAY = 9,
  GGUF_UINT64 = 10,
  GGUF_INT64 = 11,
  GGUF_FLOAT64 = 12,
};

const char* gguf_value_type_name(uint32_t type);

// One metadata value. Strings and array payloads point into the mapping (valid while the file is).
struct GgufValue {
  uint32_t type = 0;
  // Scalars: the value widened to each of these (only the one matching `type` is meaningful).
  uint64_t u64 = 0;
  int64_t i64 = 0;
  double f64 = 0;
  std::string_view str;
  // Arrays (type == GGUF_ARRAY): element type, count, raw little-endian payload for numeric types,
  // and the element views for arrays of strings.
  uint32_t elem_type = 0;
  uint64_t count = 0;
  const uint8_t* data = nullptr;
  std::vector<std::string_view> strings;

  bool is_integer() const;
  bool is_float() const { return type == GGUF_FLOAT32 || type == GGUF_FLOAT64; }
};

struct GgufTensor {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (input) dimension
  uint32_t type = 0;
  uint64_t offset = 0;           // from the start of the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping, or into the copy after copy_tensor_data()

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Maps and validates a file. Throws fd::Error (ERR_IO, ERR_GGUF_*, ERR_UNSUPPORTED_TYPE).
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Validates a buffer the caller keeps alive (tests, fuzzing).
  static std::unique_ptr<GgufFile> parse(const uint8_t* data, size_t size, std::string label = "buffer");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  size_t data_offset() const { return data_offset_; }
  const uint8_t* base() const { return base_; }
  int fd() const { return fd_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed getters: nullopt-like defaults when absent; ERR_GGUF_INVALID when present with a wrong type.
  bool get_u64(std::string_view key, uint64_t* out) const;
  bool get_f64(std::string_view key, double* out) const;
  bool get_str(std::string_view key, std::string* out) const;
  bool get_bool(std::string_view key, bool* out) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* tensor(std::string_view name) const;

  // Throws ERR_IO when the mapped file changed since it was opened: it is shorter now or was written
  // to (fstat: size, modification time), or a read of the mapping faulted and was given zeros
  // (flashdip/file.h). Once
  // it has thrown it always throws: what was computed from the mapping cannot be trusted any more.
  // mark_changed() makes it throw from now on (a failed read of the file elsewhere). A file renamed
  // over or chmod'ed keeps its open inode and mapping, so it stays readable and this does not throw.
  void check_unchanged() const;
  void mark_changed() const { changed_.store(true); }

  // Reads the tensor data section into anonymous memory of the file's own (huge pages when `huge`:
  // flashdip/huge_pages.h) and points every tensor there, so that computing never touches the
  // mapping's 4 KiB pages again; the metadata stays in the mapping. pread, not a copy through the
  // mapping, so the file's pages are not mapped as well (RSS counts the weights once). Throws ERR_IO
  // if the memory cannot be had or the file ends or changes during the read. Only for open() files.
  void copy_tensor_data(bool huge);
  bool data_copied() const { return copy_.size() > 0; }
  // Where the tensor data section starts: in the mapping, or in the copy.
  const uint8_t* tensor_data() const { return data_copied() ? copy_.data() : base_ + data_offset_; }
  // The file offset of a byte of tensor data (a pointer into tensor_data()).
  uint64_t file_offset(const uint8_t* p) const { return data_offset_ + static_cast<uint64_t>(p - tensor_data()); }

 private:
  GgufFile() = default;
  void parse_all();

  std::string path_;
  int fd_ = -1;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  int64_t mtime_ns_ = 0;                      // st_mtim when opened
  int guard_ = -1;                            // the mapping's SIGBUS guard slot
  PageBuffer copy_;                           // the tensor data, after copy_tensor_data()
  mutable std::atomic<bool> changed_{false};
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace fd
