#!/usr/bin/env bash
# `npm run test:arm64`: AArch64 in CI without ARM hardware.
#  1. cross-builds the native tests and runs them under qemu-aarch64 with -cpu max (dot product) and
#     -cpu cortex-a72 (no dot product: the dispatch must fall back to baseline NEON);
#  2. cross-builds the addon (prebuilds/linux-arm64) and runs the GGUF, model-parity, API, convert
#     (the sparse path) and cache-policy tests under an emulated arm64 Node 20, on both CPUs.
# Needs: apt-get install g++-aarch64-linux-gnu qemu-user (the arm64 Node comes from the npm registry).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sysroot=/usr/aarch64-linux-gnu

bash scripts/test-native-arm64.sh build-arm64

echo "=== cross-building the addon for linux-arm64"
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
tmpbuild="$(mktemp -d)"
# node-gyp builds in build/; keep the host's build there untouched by building from a copy.
cp -r package.json binding.gyp native scripts node_modules "$tmpbuild"/
(cd "$tmpbuild" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
  PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip node node_modules/prebuildify/bin.js --napi --strip --tag-libc --arch=arm64 >/dev/null)
# Replace, not add to, what is there: node-gyp-build would pick a stale, more specifically tagged file.
mkdir -p prebuilds/linux-arm64
rm -f prebuilds/linux-arm64/*.node
cp "$tmpbuild"/prebuilds/linux-arm64/*.node prebuilds/linux-arm64/
rm -rf "$tmpbuild"

node_bin="$(bash scripts/arm64-node.sh)"

# TypeScript's compiler crashes under qemu-user (V8 on a 9 MB script), so the tests run compiled.
echo "=== compiling the tests to JavaScript"
rm -rf .tmp/arm64-js
node_modules/.bin/tsc -p tsconfig.arm64.json
ln -sfn ../../prebuilds .tmp/arm64-js/prebuilds
cp package.json .tmp/arm64-js/

status=0
for cpu in max cortex-a72; do
  echo "=== API tests on arm64 Node under qemu-aarch64 -cpu $cpu"
  # PREBUILDS_ONLY: load prebuilds/linux-arm64, never the host's build/Release.
  if ! PREBUILDS_ONLY=1 QEMU_CPU="$cpu" qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$node_bin" \
      node_modules/mocha/bin/mocha.js --no-config --timeout 600000 .tmp/arm64-js/test/gguf/10-gguf.test.js \
      .tmp/arm64-js/test/model/40-parity.test.js .tmp/arm64-js/test/api/50-api.test.js \
      .tmp/arm64-js/test/model/45-archs-types.test.js .tmp/arm64-js/test/model/49-convert.test.js \
      .tmp/arm64-js/test/store/70-cache-policy.test.js .tmp/arm64-js/test/kernels/20-registry.test.js; then
    status=1
  fi
done
exit $status
