#!/usr/bin/env bash
# Cross-builds the native tests for aarch64 and runs them under qemu-user on two CPU models:
#   -cpu max         has the dot-product extension: tests scalar, neon and neon-dotprod kernels;
#   -cpu cortex-a72  ARMv8.0 without dotprod: dispatch must fall back to baseline NEON.
# Needs: apt-get install -y g++-aarch64-linux-gnu qemu-user
# Usage: scripts/test-native-arm64.sh [build-dir] [extra cmake args...]   (default build dir: build-arm64)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build-arm64}"
shift || true
sysroot=/usr/aarch64-linux-gnu

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y g++-aarch64-linux-gnu qemu-user" >&2; exit 2; }
done

cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/scripts/toolchain-aarch64.cmake" \
  -DFLASHDIP_TESTS=ON -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j"$(nproc)"

# With -DFLASHDIP_SANITIZE=ON: LeakSanitizer cannot run under qemu-user (it needs ptrace), ASan and
# UBSan work.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

status=0
for cpu in max cortex-a72; do
  for t in "$build"/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    echo "=== $(basename "$t") on qemu-aarch64 -cpu $cpu"
    if ! qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$t"; then
      echo "FAILED: $(basename "$t") on -cpu $cpu" >&2
      status=1
    fi
  done
done
exit $status
