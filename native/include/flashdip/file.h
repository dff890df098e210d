// Opening a model file without ever blocking on it. open() of a FIFO with no writer blocks forever
// and a device can hand out endless bytes, so anything but a regular file is refused before any
// blocking open or read.
#pragma once
#include <cstddef>
#include <string>

namespace fd {

// Opens path read-only (plus `flags`, e.g. O_DIRECT) as a regular file: stat() first, so a FIFO,
// device, socket or directory is refused before open(); then open() with O_NONBLOCK, so something
// swapped in after the stat cannot block it, and fstat() of the descriptor to close that race; then
// O_NONBLOCK is cleared. Throws ERR_IO naming the path and what it is (or the errno); with `quiet`,
// returns -1 instead of throwing.
int open_regular(const std::string& path, int flags = 0, bool quiet = false);

}  // namespace fd

namespace fd {

// Mappings of model files that may shrink under us. A file truncated while mapped turns a read of its
// lost pages into SIGBUS, which kills the process by default. guard_mapping() registers a mapping and
// installs, once per process, a SIGBUS handler (SA_SIGINFO) that, for a fault inside a registered
// mapping, maps anonymous zero pages over the rest of it (MAP_FIXED), marks it damaged and returns:
// the computation in progress finishes on zeros, and the caller then sees mapping_damaged() and
// throws ERR_IO. Faults elsewhere go to the handler that was installed before (or the default action,
// which kills as before). The handler only loads lock-free atomics and calls mmap/sigaction/raise.
// Returns a slot for the other calls, or -1 when every slot is taken (the mapping is then unguarded).
int guard_mapping(const void* base, size_t size);
void unguard_mapping(int slot);  // before munmap; no reads of the mapping may be in flight
bool mapping_damaged(int slot);  // false for -1

}  // namespace fd
