// The page cache of a file, for benchmarks that must start cold: what of it is resident, and
// dropping it. posix_fadvise(POSIX_FADV_DONTNEED) needs no privileges but is advisory: pages that
// are dirty or mapped by a running process stay, so page_cache_resident() says what was left.
#pragma once
#include <cstdint>
#include <string>

namespace fd {

// Bytes of the file currently in the page cache (mmap + mincore; nothing is read). Throws ERR_IO.
uint64_t page_cache_resident(const std::string& path);
// Asks the kernel to drop the file's clean, unmapped pages from the page cache. Throws ERR_IO when
// the file cannot be opened or the advice is refused.
void page_cache_drop(const std::string& path);

}  // namespace fd
