// Opening a model file without ever blocking on it. open() of a FIFO with no writer blocks forever
// and a device can hand out endless bytes, so anything but a regular file is refused before any
// blocking open or read.
#pragma once
#include <string>

namespace fd {

// Opens path read-only (plus `flags`, e.g. O_DIRECT) as a regular file: stat() first, so a FIFO,
// device, socket or directory is refused before open(); then open() with O_NONBLOCK, so something
// swapped in after the stat cannot block it, and fstat() of the descriptor to close that race; then
// O_NONBLOCK is cleared. Throws ERR_IO naming the path and what it is (or the errno); with `quiet`,
// returns -1 instead of throwing.
int open_regular(const std::string& path, int flags = 0, bool quiet = false);

}  // namespace fd
