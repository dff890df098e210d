#!/usr/bin/env node
'use strict';
// The CLI entry. An installed package runs the compiled dist/. In a checkout of the repository it
// runs dist/ too when that is up to date (no lib/**/*.ts newer than it: `npx tsc -p tsconfig.json`),
// else the TypeScript sources through ts-node, so it never runs a stale build (ts-node costs ~1.4 s
// per start against ~0.07 s).
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const built = path.join(root, 'dist', 'cli', 'main.js');

// Newest modification time of the .ts files under dir (0 when there are none).
function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(file));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(file).mtimeMs);
  }
  return newest;
}

function tsNodeIfStale() {
  if (!fs.existsSync(path.join(root, 'lib', 'cli', 'main.ts'))) return null;
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newestSource(path.join(root, 'lib'))) return null;
  try {
    return require.resolve('ts-node', { paths: [root] });
  } catch {
    return null;
  }
}

let cli;
const tsNode = tsNodeIfStale();
if (tsNode) {
  require(tsNode).register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  cli = require('../lib/cli/main.ts');
} else {
  cli = require(built);
}
cli.main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`flashdip: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 1; },
);
