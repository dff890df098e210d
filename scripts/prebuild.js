'use strict';
// `npm run prebuild`: makes prebuilds/linux-x64 (and, when the aarch64 cross-compiler is installed,
// prebuilds/linux-arm64) with prebuildify over node-gyp, so users without a compiler get a binary.
// npm also runs a script named "prebuild" as a hook before "build"; that invocation does nothing.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

function invokedAsHookOfBuild() {
  // Walk up to the npm process and look at what it was asked to run.
  let pid = process.ppid;
  for (let depth = 0; depth < 4 && pid > 1; depth++) {
    let argv, stat;
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return false;
    }
    const i = argv.findIndex((a) => a === 'run' || a === 'run-script');
    if (i >= 0) return argv[i + 1] === 'build';
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return false;
}

if (invokedAsHookOfBuild()) process.exit(0);

const root = path.join(__dirname, '..');
const prebuildify = require.resolve('prebuildify/bin.js');
const env = { ...process.env };
if (fs.existsSync('/usr/include/node')) env.npm_config_nodedir = env.npm_config_nodedir || '/usr';

function build(arch, extraEnv) {
  console.log(`prebuild: linux-${arch}`);
  execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', `--arch=${arch}`, '--target', `node@${process.versions.node}`], {
    cwd: root,
    stdio: 'inherit',
    env: { ...env, ...extraEnv },
  });
}

if (process.platform !== 'linux') {
  build(process.arch, {});
  process.exit(0);
}
// The cross build first: node-gyp builds in build/, so the host's binary must be the last one there.
if (process.arch === 'x64') {
  const cross = spawnSync('aarch64-linux-gnu-g++', ['--version']);
  if (cross.status === 0) {
    build('arm64', {
      CC: 'aarch64-linux-gnu-gcc',
      CXX: 'aarch64-linux-gnu-g++',
      LINK: 'aarch64-linux-gnu-g++',
      AR: 'aarch64-linux-gnu-ar',
      PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip',
    });
  } else {
    console.log('prebuild: aarch64-linux-gnu-g++ not found; skipping linux-arm64 (apt-get install g++-aarch64-linux-gnu)');
  }
}
build(process.arch, {});
