'use strict';
// Lists native sources for binding.gyp (node-gyp cannot glob); the same folders CMakeLists.txt globs.
// Usage: node scripts/sources.js core|x86|arm|arm-dotprod|addon
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const groups = {
  core: ['native/kernels', 'native/kernels/scalar', 'native/gguf', 'native/store', 'native/model'],
  x86: ['native/kernels/x86'],
  arm: ['native/kernels/arm'],
  'arm-dotprod': ['native/kernels/arm/dotprod'],
  addon: ['native/addon'],
};

const dirs = groups[process.argv[2]];
if (!dirs) throw new Error(`unknown source group ${process.argv[2]}`);
const files = [];
for (const dir of dirs) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) continue;
  for (const f of fs.readdirSync(abs).sort()) if (f.endsWith('.cc')) files.push(`${dir}/${f}`);
}
console.log(files.join(' '));
