#!/usr/bin/env node
'use strict';
// The CLI entry: the compiled dist/ when present (an installed package), else the TypeScript sources.
const fs = require('fs');
const path = require('path');

const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
let cli;
if (fs.existsSync(compiled)) {
  cli = require(compiled);
} else {
  require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
  cli = require('../lib/cli/main.ts');
}
cli.main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`flashdip: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 1; },
);
