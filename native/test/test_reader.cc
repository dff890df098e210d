// Native tests for the batched reader (flashdip/reader.h) with every engine this kernel allows:
// batches of runs with several destinations each, in random order and sizes, compared byte for byte
// with the file; a batch of zero ops; a read past the end of the file gives ERR_IO only after the
// whole batch has settled, and the reader stays usable. Prints "N passed, M failed" last.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "flashdip/error.h"
#include "flashdip/reader.h"

using namespace fd;

namespace {

int g_passed = 0, g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

// One batch: n ops of 1..5 destinations of 1..9000 bytes each at random offsets inside [0, size).
void random_batch(Reader& r, int fd, const std::vector<uint8_t>& file, std::mt19937& rng, const std::string& name) {
  std::uniform_int_distribution<int> nops(0, 600), ndst(1, 5), len(1, 9000);
  const int n = nops(rng);
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<std::vector<iovec>> iovs(static_cast<size_t>(n));
  std::vector<ReadOp> ops;
  for (int i = 0; i < n; ++i) {
    size_t total = 0;
    const int d = ndst(rng);
    for (int j = 0; j < d; ++j) {
      bufs.emplace_back(static_cast<size_t>(len(rng)), 0xEE);
      total += bufs.back().size();
    }
    std::uniform_int_distribution<size_t> at(0, file.size() - total);
    ops.push_back({at(rng), nullptr, d, total});
  }
  size_t b = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < ops[static_cast<size_t>(i)].iovcnt; ++j, ++b) iovs[static_cast<size_t>(i)].push_back({bufs[b].data(), bufs[b].size()});
    ops[static_cast<size_t>(i)].iov = iovs[static_cast<size_t>(i)].data();
  }
  r.start(ops.data(), ops.size());
  r.wait();
  bool same = true;
  b = 0;
  for (const ReadOp& op : ops) {
    size_t off = op.offset;
    for (int j = 0; j < op.iovcnt; ++j, ++b) {
      same = same && std::memcmp(bufs[b].data(), file.data() + off, bufs[b].size()) == 0;
      off += bufs[b].size();
    }
  }
  check(same, name + ": a batch of " + std::to_string(n) + " reads has the file's bytes");
}

}  // namespace

int main() {
  char path[] = "/tmp/flashdip-reader-XXXXXX";
  const int wfd = mkstemp(path);
  if (wfd < 0) return std::perror("mkstemp"), 1;
  std::vector<uint8_t> file(3 << 20);
  std::mt19937 rng(7);
  for (uint8_t& c : file) c = static_cast<uint8_t>(rng());
  if (write(wfd, file.data(), file.size()) != static_cast<ssize_t>(file.size())) return std::perror("write"), 1;
  close(wfd);
  const int fd = open(path, O_RDONLY);

  for (const char* engine : {"sync", "threads", "uring", "auto"}) {
    Reader r(fd, engine);
    const std::string name = std::string(engine) + " (" + r.engine() + ")";
    std::printf("engine %s\n", name.c_str());
    for (int i = 0; i < 20; ++i) random_batch(r, fd, file, rng, name);
    bool empty_ok = true;
    try {
      r.start(nullptr, 0);
      r.wait();
    } catch (const Error&) {
      empty_ok = false;
    }
    check(empty_ok, name + ": an empty batch starts and ends without reading");
    // Past the end: the first op is fine, the second runs off the file; the error comes from wait().
    std::vector<uint8_t> a(4096), bbuf(8192);
    iovec ia{a.data(), a.size()}, ib{bbuf.data(), bbuf.size()};
    ReadOp ops[2] = {{0, &ia, 1, a.size()}, {file.size() - 100, &ib, 1, bbuf.size()}};
    std::string code;
    try {
      r.start(ops, 2);
      r.wait();
    } catch (const Error& e) {
      code = e.code();
    }
    check(code == "ERR_IO", name + ": reading past the end gives ERR_IO, got '" + code + "'");
    check(std::memcmp(a.data(), file.data(), a.size()) == 0, name + ": the good read of a failed batch landed");
    random_batch(r, fd, file, rng, name + " after an error");
  }
  // The store's own descriptor: the same file is accepted, a file put in its place is refused.
  {
    RowFile same(path, fd, true);
    check(same.fd() >= 0 && same.fd() != fd, "RowFile opens the model file again");
    // O_DIRECT where the file system has it: aligned reads through the reader's bounce buffer.
    std::printf("O_DIRECT %s\n", same.direct_fd() >= 0 ? "available" : "not available here");
    if (same.direct_fd() >= 0) {
      Reader r(same.direct_fd(), "auto");
      std::vector<iovec> iov(64);
      std::vector<ReadOp> ops;
      uint8_t* bounce = r.bounce(64 * 16384);
      for (size_t i = 0; i < 64; ++i) {
        const size_t len = 4096 * (1 + rng() % 4), at = 4096 * (rng() % (file.size() / 4096 - 4));
        iov[i] = {bounce + i * 16384, len};
        ops.push_back({at, &iov[i], 1, len});
      }
      r.start(ops.data(), ops.size());
      r.wait();
      bool same_bytes = true;
      for (size_t i = 0; i < 64; ++i) same_bytes = same_bytes && std::memcmp(bounce + i * 16384, file.data() + ops[i].offset, ops[i].bytes) == 0;
      check(same_bytes, std::string("direct reads (") + r.engine() + ") have the file's bytes");
    }
    RowFile buffered(path, fd, false);
    check(buffered.direct_fd() == -1, "RowFile without direct opens no O_DIRECT descriptor");
    char other[] = "/tmp/flashdip-reader-XXXXXX";
    const int ofd = mkstemp(other);
    close(ofd);
    std::string replaced;
    if (rename(other, path) == 0) {
      try {
        RowFile again(path, fd, false);
      } catch (const Error& e) {
        replaced = e.code();
      }
    }
    check(replaced == "ERR_IO", "RowFile refuses a file that replaced the model, got '" + replaced + "'");
  }
  unlink(path);
  std::string code;
  try {
    Reader bad(fd, "fast");
  } catch (const Error& e) {
    code = e.code();
  }
  check(code == "ERR_INVALID_ARGUMENT", "an unknown engine is refused");
  close(fd);
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
