#!/usr/bin/env bash
# Builds and runs the native test executables (no Node): kernels against their scalar twins, the GGUF
# reader against hostile files. `--sanitize` builds with AddressSanitizer + UBSan.
# usage: scripts/native-test.sh [--sanitize] [--mutations N]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-native
flags=()
mutations=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) dir=build-native-asan; flags+=(-DFLASHDIP_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    --mutations) mutations="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
cmake -S . -B "$dir" -DFLASHDIP_TESTS=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j2 >/dev/null
model=../shared/data/models/stories260K.gguf
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  echo "== $(basename "$t")"
  case "$(basename "$t")" in
    test_gguf) "$t" "$model" "$mutations" || status=1 ;;
    *) "$t" || status=1 ;;
  esac
done
exit $status
