#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UBSan (cmake-js, FLASHDIP_SANITIZE=ON) into its own folder
# and runs the tests that read a session's statistics while a worker thread evaluates, against it: a
# racing read is then a heap error that fails the run, not a number that happens to look right.
# usage: scripts/test-asan-addon.sh [mocha test files...]   (default: test/api/56-stats-poll.test.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-asan
mkdir -p "$dir"
npx cmake-js compile --directory . --out "$dir/build" --parallel 2 --CDFLASHDIP_SANITIZE=ON >"$dir/build.log" 2>&1 ||
  { tail -40 "$dir/build.log"; exit 1; }
ldd "$dir/build/Release/flashdip.node" | grep -q libasan || { echo "$dir/build/Release/flashdip.node is not an ASan build" >&2; exit 1; }
npx tsc -p tsconfig.json
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/api/56-stats-poll.test.ts)
# node-gyp-build loads $FLASHDIP_PREBUILD/build/Release/flashdip.node instead of build/Release.
# The ASan runtime must come first in the process: preload it into node (which is not instrumented).
export FLASHDIP_PREBUILD="$PWD/$dir"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
node node_modules/mocha/bin/mocha.js --no-config -r ts-node/register/transpile-only --extension ts --timeout 600000 \
  "${tests[@]}"
