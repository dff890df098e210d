// GGUF reader against truncated, corrupted and hostile files. Every input must either parse or throw
// fd::Error with a stable code: no crash, no other exception, no out-of-bounds read (this test also
// runs under AddressSanitizer, with each input in a heap buffer of exactly its size).
//
// usage: test_gguf MODEL.gguf [mutations]
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "flashdip/error.h"
#include "flashdip/gguf.h"

namespace {

int passed = 0, failed = 0;

void expect(bool ok, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

const std::set<std::string> kCodes = {"ERR_GGUF_TRUNCATED", "ERR_GGUF_BAD_MAGIC", "ERR_GGUF_BAD_VERSION",
                                      "ERR_GGUF_INVALID", "ERR_UNSUPPORTED_TYPE"};

// Parses a copy of `bytes` in a buffer of exactly its size; returns "" on success or the error code.
std::string parse(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() ? bytes.size() : 1]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  try {
    auto f = fd::GgufFile::parse(copy.get(), bytes.size());
    // Touch every tensor's first and last byte: offsets were validated against the buffer.
    volatile uint8_t sink = 0;
    for (const fd::GgufTensor& t : f->tensors()) sink ^= t.data[0] ^ t.data[t.nbytes - 1];
    (void)sink;
    return "";
  } catch (const fd::Error& e) {
    return e.code();
  } catch (const std::exception& e) {
    return std::string("unexpected exception: ") + e.what();
  }
}

size_t header_end(const std::vector<uint8_t>& bytes) {
  auto f = fd::GgufFile::parse(bytes.data(), bytes.size());
  return f->data_offset();
}

template <typename T>
void put(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// A tiny, hand-built GGUF: one string KV and one f32 tensor [4] at offset 0.
std::vector<uint8_t> tiny() {
  std::vector<uint8_t> b;
  auto u32 = [&](uint32_t v) { b.insert(b.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4); };
  auto u64 = [&](uint64_t v) { b.insert(b.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 8); };
  auto str = [&](const std::string& s) { u64(s.size()); b.insert(b.end(), s.begin(), s.end()); };
  u32(0x46554747); u32(3); u64(1); u64(1);
  str("general.architecture"); u32(fd::GGUF_STRING); str("llama");
  str("w"); u32(1); u64(4); u32(0); u64(0);
  while (b.size() % 32) b.push_back(0);
  for (int i = 0; i < 16; ++i) b.push_back(static_cast<uint8_t>(i));
  return b;
}

// Offsets inside tiny(): header 24 bytes; KV key length at 24.
constexpr size_t kTinyKeyLen = 24;
constexpr size_t kTinyValueType = 24 + 8 + 20;
constexpr size_t kTinyValueLen = kTinyValueType + 4;
constexpr size_t kTinyTensor = kTinyValueLen + 8 + 5;   // tensor name length
constexpr size_t kTinyDims = kTinyTensor + 8 + 1;       // n_dims
constexpr size_t kTinyNe0 = kTinyDims + 4;
constexpr size_t kTinyType = kTinyNe0 + 8;
constexpr size_t kTinyOffset = kTinyType + 4;

void hand_built_cases() {
  std::vector<uint8_t> ok = tiny();
  expect(parse(ok).empty(), "tiny GGUF parses: " + parse(ok));
  auto with = [&](const std::function<void(std::vector<uint8_t>&)>& edit) {
    std::vector<uint8_t> b = ok;
    edit(b);
    return parse(b);
  };
  expect(with([](auto& b) { b[0] = 'X'; }) == "ERR_GGUF_BAD_MAGIC", "bad magic");
  expect(with([](auto& b) { put<uint32_t>(b, 4, 1); }) == "ERR_GGUF_BAD_VERSION", "version 1");
  expect(with([](auto& b) { put<uint32_t>(b, 4, 0x03000000); }) == "ERR_GGUF_BAD_VERSION", "big-endian");
  expect(with([](auto& b) { put<uint64_t>(b, 8, 1ull << 60); }) == "ERR_GGUF_TRUNCATED", "absurd tensor count");
  expect(with([](auto& b) { put<uint64_t>(b, 16, ~0ull); }) == "ERR_GGUF_TRUNCATED", "absurd kv count");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyKeyLen, 1ull << 62); }) == "ERR_GGUF_TRUNCATED", "absurd key length");
  expect(with([](auto& b) { put<uint32_t>(b, kTinyValueType, 99); }) == "ERR_GGUF_INVALID", "unknown value type");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyValueLen, ~0ull); }) == "ERR_GGUF_TRUNCATED", "absurd string length");
  expect(with([](auto& b) { put<uint32_t>(b, kTinyDims, 5); }) == "ERR_GGUF_INVALID", "5 dims");
  expect(with([](auto& b) { put<uint32_t>(b, kTinyDims, 0); }) == "ERR_GGUF_INVALID", "0 dims");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyNe0, 0); }) == "ERR_GGUF_INVALID", "zero dim");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyNe0, 1ull << 62); }) == "ERR_GGUF_INVALID", "huge dim");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyNe0, 5); }) == "ERR_GGUF_TRUNCATED", "data past the end");
  expect(with([](auto& b) { put<uint32_t>(b, kTinyType, 77); }) == "ERR_UNSUPPORTED_TYPE", "unknown tensor type");
  expect(with([](auto& b) { put<uint32_t>(b, kTinyType, 2); }) == "ERR_GGUF_INVALID", "row not whole q4_0 blocks");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyOffset, 32); }) == "ERR_GGUF_TRUNCATED", "offset past the end");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyOffset, 4); }) == "ERR_GGUF_INVALID", "misaligned offset");
  expect(with([](auto& b) { put<uint64_t>(b, kTinyOffset, ~0ull << 5); }) == "ERR_GGUF_TRUNCATED", "offset overflow");
  expect(parse({}) == "ERR_GGUF_TRUNCATED", "empty buffer");
}

void truncations(const std::vector<uint8_t>& model, const char* label) {
  const size_t hdr = header_end(model);
  int bad = 0;
  // Every cut through the header and the first data bytes, then a stride through the data.
  for (size_t cut = 0; cut < model.size(); cut += (cut < hdr + 4096 ? 1 : 997)) {
    std::vector<uint8_t> b(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(cut));
    const std::string code = parse(b);
    if (code != "ERR_GGUF_TRUNCATED" && !(cut < 4 && code == "ERR_GGUF_TRUNCATED")) {
      if (++bad <= 5) std::printf("  cut %zu of %s gave '%s'\n", cut, label, code.c_str());
    }
  }
  expect(bad == 0, std::string("every truncation of ") + label + " is ERR_GGUF_TRUNCATED");
}

void mutations(const std::vector<uint8_t>& model, int count) {
  const size_t hdr = header_end(model);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  auto rnd = [&] {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  };
  int bad = 0, rejected = 0;
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> b = model;
    const int edits = 1 + static_cast<int>(rnd() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rnd() % hdr;
      switch (rnd() % 4) {
        case 0: b[at] ^= static_cast<uint8_t>(1u << (rnd() % 8)); break;          // bit flip
        case 1: b[at] = static_cast<uint8_t>(rnd()); break;                         // random byte
        case 2: if (at + 8 <= b.size()) put<uint64_t>(b, at, rnd() >> (rnd() % 64)); break;  // random u64
        case 3: b.resize(hdr + rnd() % (b.size() - hdr + 1)); break;               // truncate too
      }
    }
    const std::string code = parse(b);
    if (!code.empty()) ++rejected;
    if (!code.empty() && !kCodes.count(code) && ++bad <= 5) std::printf("  mutation %d gave '%s'\n", i, code.c_str());
  }
  std::printf("  %d mutations: %d rejected with a typed error, %d parsed\n", count, rejected, count - rejected);
  expect(bad == 0, "every mutation parses or gives a typed error");
}

}  // namespace

int main(int argc, char** argv) {
  hand_built_cases();
  truncations(tiny(), "the tiny GGUF");
  if (argc > 1) {
    std::ifstream in(argv[1], std::ios::binary);
    std::vector<uint8_t> model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    expect(!model.empty(), std::string("read ") + argv[1]);
    if (!model.empty()) {
      expect(parse(model).empty(), "the model parses");
      auto f = fd::GgufFile::parse(model.data(), model.size());
      std::printf("  %s: v%u, %zu kv, %zu tensors, data at %zu\n", argv[1], f->version(), f->metadata().size(),
                  f->tensors().size(), f->data_offset());
      truncations(model, argv[1]);
      mutations(model, argc > 2 ? std::atoi(argv[2]) : 5000);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
