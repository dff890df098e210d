'use strict';
// `npm install` hook. Uses a prebuilt binary from prebuilds/<platform>-<arch>/ when one loads here
// (node-gyp-build's matching: Termux reports platform 'android', so a linux prebuild is never taken
// for it); otherwise prints ONE message naming the platform and what a source build needs, then
// builds with node-gyp (its output follows). `npm_config_build_from_source=true` skips the prebuilds.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

/** The binary node-gyp-build would load for this package, and whether it loads: { file, error }. */
function findBinary(dir) {
  let file;
  try {
    file = require('node-gyp-build').resolve(dir);
  } catch {
    return { file: null, error: null };
  }
  try {
    require(file);
    return { file, error: null };
  } catch (err) {
    return { file, error: err };
  }
}

function onPath(cmd, env) {
  if (cmd.includes('/')) return fs.existsSync(cmd);
  return (env.PATH || '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, cmd)));
}

function platformName() {
  return `${process.platform}-${process.arch} (Node ${process.version}, N-API ${process.versions.napi})`;
}

/** The tools a source build needs that this machine's PATH lacks. */
function missingTools(env) {
  const compilers = env.CXX ? [env.CXX.split(' ')[0]] : ['c++', 'g++', 'clang++'];
  const missing = [];
  if (!compilers.some((c) => onPath(c, env))) missing.push(`a C++17 compiler (${compilers.join(', ')})`);
  if (!onPath('make', env)) missing.push('make');
  if (!['python3', 'python'].some((p) => onPath(p, env)) && !env.npm_config_python && !env.PYTHON) missing.push('python3');
  return missing;
}

function sourceBuildMessage(reason, env) {
  const missing = missingTools(env);
  return [
    `flashdip: ${reason}; building the native addon from source for ${platformName()}.`,
    'A source build needs a C++17 compiler (g++ or clang), make and python3:',
    '  Debian/Ubuntu:    apt-get install build-essential python3',
    '  Android (Termux): pkg install nodejs-lts clang make python',
    missing.length ? `Not found on this PATH: ${missing.join(', ')}.` : 'The tools were found; node-gyp output follows.',
  ].join('\n');
}

/** node-gyp: the package's own (a devDependency in the repository), else the one npm ships. */
function nodeGypCommand() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })];
  } catch {
    const npmGyp = process.env.npm_config_node_gyp;
    if (npmGyp && fs.existsSync(npmGyp)) return [process.execPath, npmGyp];
    return ['node-gyp'];
  }
}

/**
 * The environment for node-gyp: the headers of the running Node when its installation has them
 * (Debian's nodejs, Termux: no download, and Termux's common.gypi is patched for Android), and on
 * Android a value for gyp's android_ndk_path, which node's common.gypi names and Termux has no NDK for.
 */
function buildEnv(env) {
  const out = { ...env };
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!out.npm_config_nodedir && headersVersion(prefix) === process.versions.node) out.npm_config_nodedir = prefix;
  if (process.platform === 'android' && !/\bandroid_ndk_path=/.test(out.GYP_DEFINES || '')) {
    out.GYP_DEFINES = `${out.GYP_DEFINES || ''} android_ndk_path=`.trim();
  }
  return out;
}

function headersVersion(prefix) {
  try {
    const h = fs.readFileSync(path.join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((k) => h.match(new RegExp(`#define NODE_${k}_VERSION (\\d+)`))[1]);
    return v.join('.');
  } catch {
    return null;
  }
}

function main() {
  let reason = 'building from source was asked for (npm_config_build_from_source)';
  if (process.env.npm_config_build_from_source !== 'true') {
    const { file, error } = findBinary(root);
    if (file && !error) return 0;
    reason = file
      ? `the binary ${path.relative(root, file)} does not load here (${String(error.message).split('\n')[0]})`
      : 'there is no prebuilt binary for this platform';
  }
  console.error(sourceBuildMessage(reason, process.env));
  const [cmd, ...args] = nodeGypCommand();
  const r = spawnSync(cmd, [...args, 'rebuild'], { cwd: root, stdio: 'inherit', env: buildEnv(process.env) });
  if (r.error) {
    console.error(`flashdip: could not run node-gyp: ${r.error.message}`);
    return 1;
  }
  return r.status === null ? 1 : r.status;
}

module.exports = { findBinary, buildEnv, sourceBuildMessage };

if (require.main === module) process.exitCode = main();
