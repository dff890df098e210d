#!/usr/bin/env node
'use strict';
// The CLI entry. In a checkout of the repository (lib/*.ts present, ts-node installed) it runs the
// TypeScript sources, so it never runs a stale build; an installed package runs the compiled dist/.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
let cli;
let tsNode = null;
if (fs.existsSync(path.join(root, 'lib', 'cli', 'main.ts'))) {
  try {
    tsNode = require.resolve('ts-node', { paths: [root] });
  } catch {
    tsNode = null;
  }
}
if (tsNode) {
  require(tsNode).register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  cli = require('../lib/cli/main.ts');
} else {
  cli = require('../dist/cli/main.js');
}
cli.main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`flashdip: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 1; },
);
