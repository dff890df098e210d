// Unicode helpers for the tokenizer: code point categories the way llama.cpp's unicode.cpp sees
// them, the GPT-2 byte <-> unicode table, and UTF-8 encoding.

// Category flags, one byte per code point, computed lazily (bit 0 says "computed").
export const CPT_COMPUTED = 1;
export const CPT_LETTER = 2;
export const CPT_NUMBER = 4;
export const CPT_PUNCT = 8;
export const CPT_SYMBOL = 16;
export const CPT_MARK = 32;
export const CPT_WHITESPACE = 64;

const flagsTable = new Uint8Array(0x110000);

const RE_L = /^\p{L}$/u;
const RE_N = /^\p{N}$/u;
const RE_P = /^\p{P}$/u;
const RE_S = /^\p{S}$/u;
const RE_M = /^\p{M}$/u;

// llama.cpp's whitespace set (unicode-data.cpp): the Unicode White_Space property. Note that
// JavaScript's \s differs (it adds U+FEFF and lacks U+0085), so never use \s in our regexes.
function isWhitespaceCpt(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0 || c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

/** Regex class body (without brackets) for llama.cpp's whitespace set. */
export const WS_CLASS = '\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
/** Regex class body for std::regex's \s on wide chars in the "C" locale: ASCII only. */
export const ASCII_WS_CLASS = '\\t\\n\\v\\f\\r ';

export function cptFlags(c: number): number {
  let f = flagsTable[c];
  if (f !== 0) return f;
  f = CPT_COMPUTED;
  const s = String.fromCodePoint(c);
  if (RE_L.test(s)) f |= CPT_LETTER;
  else if (RE_N.test(s)) f |= CPT_NUMBER;
  else if (RE_P.test(s)) f |= CPT_PUNCT;
  else if (RE_S.test(s)) f |= CPT_SYMBOL;
  else if (RE_M.test(s)) f |= CPT_MARK;
  if (isWhitespaceCpt(c)) f |= CPT_WHITESPACE;
  flagsTable[c] = f;
  return f;
}

// GPT-2 byte-level mapping: printable bytes stand for themselves, the rest are shifted to 256+.
const BYTE_TO_CHAR: string[] = new Array(256);
const CHAR_TO_BYTE = new Map<number, number>();
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const cp = printable ? b : 256 + n++;
    BYTE_TO_CHAR[b] = String.fromCharCode(cp);
    CHAR_TO_BYTE.set(cp, b);
  }
}

/** The GPT-2 byte-level string of a (well-formed) string's UTF-8 bytes: one UTF-16 unit per byte. */
export function byteLevel(text: string): string {
  let s = '';
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      s += BYTE_TO_CHAR[c];
    } else if (c < 0x800) {
      s += BYTE_TO_CHAR[0xc0 | (c >> 6)] + BYTE_TO_CHAR[0x80 | (c & 63)];
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
      s += BYTE_TO_CHAR[0xf0 | (c >> 18)] + BYTE_TO_CHAR[0x80 | ((c >> 12) & 63)] +
        BYTE_TO_CHAR[0x80 | ((c >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (c & 63)];
    } else {
      s += BYTE_TO_CHAR[0xe0 | (c >> 12)] + BYTE_TO_CHAR[0x80 | ((c >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (c & 63)];
    }
  }
  return s;
}

/** The byte a GPT-2 byte-level code point stands for, or -1. */
export function byteLevelToByte(cp: number): number {
  const b = CHAR_TO_BYTE.get(cp);
  return b === undefined ? -1 : b;
}

const encoder = new TextEncoder();
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Replaces lone surrogates with U+FFFD, as UTF-8 encoding would. */
export function wellFormed(text: string): string {
  const f = (text as { toWellFormed?: () => string }).toWellFormed;
  if (f) return f.call(text);
  return Buffer.from(text, 'utf8').toString('utf8');
}
