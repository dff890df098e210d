// Every error code a user can see is documented: the README's error table has a row for each code of
// ERROR_CODES, saying what happened and what to do, and every code the native side or the TypeScript
// throws is one of them (an unknown native code would reach users as ERR_INTERNAL).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ERROR_CODES } from '../../lib/errors';

const ROOT = path.resolve(__dirname, '../..');

function sources(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p, ext));
    else if (ext.test(e.name)) out.push(p);
  }
  return out;
}

describe('58 error codes', () => {
  it('the README has a table row for every code, with what happened and what to do', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const code of ERROR_CODES) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row, `README.md has no error-table row for ${code}`);
      const cells = row.split(' | ').map((c) => c.trim());
      assert.ok(cells.length >= 3 && cells[1].length > 10 && cells[2].length > 5, `${code}: ${row}`);
    }
  });

  it('every code thrown by native code or the library is a known code', () => {
    const known = new Set<string>(ERROR_CODES);
    const files = [...sources(path.join(ROOT, 'native'), /\.(cc|h|inc)$/), ...sources(path.join(ROOT, 'lib'), /\.ts$/)];
    const used = new Set<string>();
    for (const f of files) for (const m of fs.readFileSync(f, 'utf8').matchAll(/["'](ERR_[A-Z0-9_]+)["']/g)) used.add(m[1]);
    assert.ok(used.size > 10);
    for (const code of used) assert.ok(known.has(code), `${code} is thrown but not in ERROR_CODES (nor documented)`);
  });
});
