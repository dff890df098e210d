#!/usr/bin/env bash
# CI stage: the npm tarball, installed into a fresh app as a user would.
#  (a) packed with no prebuilds/: the install compiles from source (after install.js's one message),
#      then `npx flashdip run` and a `require('flashdip')` script generate from stories260K;
#  (b) packed after `npm run prebuild` (linux-x64 + linux-arm64): the install uses the x64 prebuild with
#      no compiler on PATH and creates no build/, and the arm64 prebuild loads from the installed app
#      under qemu-aarch64 with an arm64 Node and generates the same text.
# Needs what `npm ci` needs, plus g++-aarch64-linux-gnu and qemu-user for (b). The installs reach only the
# npm registry (node-addon-api, node-gyp-build); node-gyp builds against npm_config_nodedir or the
# running Node's own headers (scripts/install.js), so nothing is downloaded from nodejs.org.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model="$(cd "$root/.." && pwd)/shared/data/models/stories260K.gguf"
[ -f "$model" ] || { echo "test-pack: $model not found" >&2; exit 1; }
if [ -z "${npm_config_nodedir:-}" ] && [ -d /usr/include/node ]; then export npm_config_nodedir=/usr; fi
export JOBS="${JOBS:-2}"   # node-gyp's parallel compile jobs
npm_install=(npm install --no-audit --no-fund --prefer-offline --foreground-scripts)

work="$(mktemp -d)"
saved=""
cleanup() {
  if [ -n "$saved" ] && [ -d "$saved" ] && [ ! -e prebuilds ]; then mv "$saved" prebuilds; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "test-pack: FAIL: $*" >&2; exit 1; }

# The text the repository's own build generates: every install must match it (greedy decoding).
expected="$(node bin/flashdip.js run --model "$model" --prompt "Once upon a time" --max-tokens 8 --temperature 0 --json |
  node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).text)')"
[ -n "$expected" ] || fail "the repository build generated no text"
# `flashdip run` prints the prompt, then the continuation.
expected_run="Once upon a time$expected"

# A script a user would write: load, generate, and report which binary was loaded.
cat >"$work/use.js" <<'EOF'
const path = require('path');
const flashdip = require('flashdip');
(async () => {
  const model = await flashdip.loadModel(process.argv[2]);
  const session = model.createSession({ contextSize: 64 });
  let text = '';
  for await (const piece of session.generate('Once upon a time', { maxTokens: 8, temperature: 0 })) text += piece.text;
  await model.dispose();
  const pkg = path.dirname(require.resolve('flashdip/package.json'));
  const binary = path.relative(pkg, require('node-gyp-build').resolve(pkg));
  console.log(JSON.stringify({ text, binary, arch: process.arch }));
})().catch((err) => { console.error(err); process.exit(1); });
EOF

# new_app DIR: an empty npm project.
new_app() {
  mkdir -p "$1"
  (cd "$1" && npm init -y >/dev/null && cp "$work/use.js" .)
}

# check_use DIR JSON BINARY: use.js's output generated the expected text from BINARY.
check_use() {
  node -e '
    const [out, expected, binary] = process.argv.slice(1);
    const r = JSON.parse(out);
    if (r.text !== expected) { console.error(`text ${JSON.stringify(r.text)}, expected ${JSON.stringify(expected)}`); process.exit(1); }
    if (r.binary !== binary) { console.error(`loaded ${r.binary}, expected ${binary}`); process.exit(1); }
    console.log(`  require("flashdip") on ${r.arch}: ${JSON.stringify(r.text)} from ${r.binary}`);' "$2" "$expected" "$3"
}

echo "=== (a) tarball without prebuilds: the install compiles from source"
if [ -e prebuilds ]; then saved="$work/prebuilds.saved"; mv prebuilds "$saved"; fi
tgz_src="$work/src/$(mkdir -p "$work/src" && npm pack --silent --pack-destination "$work/src" | tail -n 1)"
if [ -n "$saved" ]; then mv "$saved" prebuilds; saved=""; fi
tar tzf "$tgz_src" >"$work/list-a"   # (not piped into grep -q: pipefail and SIGPIPE)
if grep -q '^package/prebuilds/' "$work/list-a"; then fail "the source tarball holds prebuilds"; fi
app="$work/app-source"
new_app "$app"
start=$SECONDS
(cd "$app" && "${npm_install[@]}" "$tgz_src") >"$work/install-a.log" 2>&1 || { cat "$work/install-a.log"; fail "install from source"; }
echo "  installed in $((SECONDS - start)) s"
# One message, before node-gyp's first line.
[ "$(grep -c '^flashdip: there is no prebuilt binary for this platform' "$work/install-a.log")" = 1 ] || fail "not one install message"
msg_line="$(grep -n '^flashdip: there is no prebuilt binary' "$work/install-a.log" | cut -d: -f1)"
gyp_line="$(grep -n 'gyp info' "$work/install-a.log" | head -n 1 | cut -d: -f1)"
[ -n "$gyp_line" ] && [ "$msg_line" -lt "$gyp_line" ] || fail "the install message does not come before node-gyp's output"
[ -f "$app/node_modules/flashdip/build/Release/flashdip.node" ] || fail "no build/Release/flashdip.node"
if [ -n "${npm_config_nodedir:-}" ]; then
  grep -q -- "-Dnode_root_dir=$npm_config_nodedir" "$work/install-a.log" || fail "node-gyp did not build against $npm_config_nodedir"
fi
text="$(cd "$app" && npx --no-install flashdip run --model "$model" --prompt "Once upon a time" --max-tokens 8 --temperature 0)"
echo "  npx flashdip run: $(printf %q "$text")"
[ "$text" = "$expected_run" ] || fail "npx flashdip run generated $(printf %q "$text"), expected $(printf %q "$expected_run")"
check_use "$app" "$(cd "$app" && node use.js "$model")" build/Release/flashdip.node

echo "=== (b) tarball with prebuilds: the install uses them"
command -v aarch64-linux-gnu-g++ >/dev/null || fail "aarch64-linux-gnu-g++ missing (apt-get install g++-aarch64-linux-gnu)"
command -v qemu-aarch64 >/dev/null || fail "qemu-aarch64 missing (apt-get install qemu-user)"
rm -rf prebuilds
npm run --silent prebuild >"$work/prebuild.log" 2>&1 || { cat "$work/prebuild.log"; fail "npm run prebuild"; }
tgz="$work/pre/$(mkdir -p "$work/pre" && npm pack --silent --pack-destination "$work/pre" | tail -n 1)"
tar tzf "$tgz" >"$work/list-b"
for arch in x64 arm64; do
  grep -q "^package/prebuilds/linux-$arch/.*\.node$" "$work/list-b" || fail "the tarball has no linux-$arch prebuild"
done
app="$work/app-prebuilt"
new_app "$app"
# PATH with node and npm only: no compiler, make or python, so a source build could not even start.
nobuild="$work/bin"
mkdir -p "$nobuild"
ln -s "$(command -v node)" "$nobuild/node"
ln -s "$(command -v npm)" "$nobuild/npm"
ln -s "$(command -v sh)" "$nobuild/sh"   # npm runs install scripts with sh
for tool in c++ g++ gcc cc clang++ make python3; do
  if PATH="$nobuild" command -v "$tool" >/dev/null; then fail "$tool is still on the restricted PATH"; fi
done
start=$SECONDS
(cd "$app" && PATH="$nobuild" "${npm_install[@]}" "$tgz") >"$work/install-b.log" 2>&1 || { cat "$work/install-b.log"; fail "install with prebuilds"; }
echo "  installed in $((SECONDS - start)) s, no compiler on PATH"
if grep -q "gyp info" "$work/install-b.log"; then cat "$work/install-b.log"; fail "node-gyp ran"; fi
[ ! -e "$app/node_modules/flashdip/build" ] || fail "the install created build/"
x64_binary="$(cd "$app/node_modules/flashdip" && ls prebuilds/linux-x64/*.node)"
check_use "$app" "$(cd "$app" && PATH="$nobuild" node use.js "$model")" "$x64_binary"
text="$(cd "$app" && PATH="$nobuild" node node_modules/flashdip/bin/flashdip.js run --model "$model" --prompt "Once upon a time" --max-tokens 8 --temperature 0)"
[ "$text" = "$expected_run" ] || fail "flashdip run (x64 prebuild) generated $(printf %q "$text")"

echo "=== (b) the arm64 prebuild, from the installed app, under qemu-aarch64"
node_arm64="$(bash scripts/arm64-node.sh)"
qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$node_arm64")
arm64_binary="$(cd "$app/node_modules/flashdip" && ls prebuilds/linux-arm64/*.node)"
check_use "$app" "$(cd "$app" && "${qemu[@]}" use.js "$model")" "$arm64_binary"
text="$(cd "$app" && "${qemu[@]}" node_modules/flashdip/bin/flashdip.js run --model "$model" --prompt "Once upon a time" --max-tokens 8 --temperature 0)"
echo "  flashdip run on arm64: $(printf %q "$text")"
[ "$text" = "$expected_run" ] || fail "flashdip run (arm64 prebuild) generated $(printf %q "$text")"
echo "test-pack: passed"
