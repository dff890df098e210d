// BPE pre-tokenizers: split text into words before the merges, as llama.cpp's
// unicode_regex_split() does for each tokenizer.ggml.pre value.
//
// llama.cpp applies a list of regexes in turn; each one splits every current piece further (the
// matches and the gaps between them both become pieces). Two regexes have hand-written scanners
// in llama.cpp (GPT-2's and Llama 3's); we write the same scanners. The other regexes run through
// std::regex there: those using \p{..} on a "collapsed" text where every non-ASCII code point
// stands for its category (and non-ASCII whitespace for \v), those without on wide chars in the
// "C" locale (\s is ASCII only). The JavaScript regexes below are written to make the same
// splits: \s is spelled out as llama.cpp's whitespace set (or the ASCII set), and \p{S} leaves
// out '~', which the collapsed ASCII table does not count as a symbol.

import { unsupportedTokenizer } from './spec';
import {
  ASCII_WS_CLASS, CPT_LETTER, CPT_NUMBER, CPT_WHITESPACE, WS_CLASS, cptFlags,
} from './unicode';

type Step = { kind: 'gpt2' } | { kind: 'llama3' } | { kind: 'trailingSpace' } | { kind: 'regex'; re: RegExp };

const WS = `[${WS_CLASS}]`;
const NWS = `[^${WS_CLASS}]`;
const AWS = `[${ASCII_WS_CLASS}]`;

function re(source: string): Step {
  return { kind: 'regex', re: new RegExp(source, 'gu') };
}
const GPT2: Step = { kind: 'gpt2' };
const LLAMA3: Step = { kind: 'llama3' };

const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const CJK = '[\\u4E00-\\u9FA5\\u0800-\\u4E00\\uAC00-\\uD7FF]+';
// The cased-letter list of DeepSeek LLM's tokenizer.json, as llama.cpp carries it.
const DEEPSEEK_LETTERS =
  'A-Za-z\\u00B5\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u01BA\\u01BC-\\u01BF\\u01C4-\\u0293\\u0295-\\u02AF' +
  '\\u0370-\\u0373\\u0376\\u0377\\u037B-\\u037D\\u037F\\u0386\\u0388-\\u038A\\u038C\\u038E-\\u03A1' +
  '\\u03A3-\\u03F5\\u03F7-\\u0481\\u048A-\\u052F\\u0531-\\u0556\\u10A0-\\u10C5\\u13A0-\\u13F5\\u13F8-\\u13FD' +
  '\\u1C90-\\u1CBA\\u1CBD-\\u1CBF\\u1D00-\\u1D2B\\u1D6B-\\u1D77\\u1D79-\\u1D9A\\u1E00-\\u1F15\\u1F18-\\u1F1D' +
  '\\u1F20-\\u1F45\\u1F48-\\u1F4D\\u1F50-\\u1F57\\u1F59\\u1F5B\\u1F5D\\u1F5F-\\u1F7D\\u1F80-\\u1FB4' +
  '\\u1FB6-\\u1FBC\\u1FBE\\u1FC2-\\u1FC4\\u1FC6-\\u1FCC\\u1FD0-\\u1FD3\\u1FD6-\\u1FDB\\u1FE0-\\u1FEC' +
  '\\u1FF2-\\u1FF4\\u1FF6-\\u1FFC\\u2102\\u2107\\u210A-\\u2113\\u2115\\u2119-\\u211D\\u2124\\u2126\\u2128' +
  '\\u212A-\\u212D\\u212F-\\u2134\\u2139\\u213C-\\u213F\\u2145-\\u2149\\u214E\\u2183\\u2184\\u2C00-\\u2C7B' +
  '\\u2C7E-\\u2CE4\\u2CEB-\\u2CEE\\u2CF2\\u2CF3\\uA640-\\uA66D\\uA680-\\uA69B\\uA722-\\uA76F\\uA771-\\uA787' +
  '\\uA78B-\\uA78E\\uAB70-\\uABBF\\uFB00-\\uFB06\\uFB13-\\uFB17\\uFF21-\\uFF3A\\uFF41-\\uFF5A' +
  '\\u{10400}-\\u{1044F}\\u{104B0}-\\u{104D3}\\u{104D8}-\\u{104FB}\\u{10C80}-\\u{10CB2}\\u{10CC0}-\\u{10CF2}' +
  '\\u{118A0}-\\u{118DF}\\u{1E900}-\\u{1E943}';

// "Upper-ish then lower-ish" letter runs of the Tekken / GPT-4o regexes, as llama.cpp rewrote them.
const UP = '(?:(?=\\p{L})[^a-z])';
const LO = '(?:(?=\\p{L})[^A-Z])';
const NOT_CRLF_LN = '[^\\r\\n\\p{L}\\p{N}]';
// The std::regex tail shared by the Llama-3-like regexes: punctuation runs, newlines, spaces.
const TAIL = (extra: string) =>
  ` ?[^${WS_CLASS}\\p{L}\\p{N}]+[\\r\\n${extra}]*|${WS}*[\\r\\n]+|${WS}+(?!${NWS})|${WS}+`;

const PRE_STEPS: Record<string, Step[]> = {
  default: [re('[\\p{P}$+<=>^~|]+'), GPT2, re('\\p{N}+'), re('[0-9][0-9][0-9]')],
  llama3: [LLAMA3],
  dbrx: [LLAMA3],
  smaug: [LLAMA3],
  chatglm4: [LLAMA3],
  'deepseek-llm': [
    re('[\\r\\n]'),
    re(`${AWS}?[${DEEPSEEK_LETTERS}]+`),
    re(`${AWS}?[!-\\/:-~\\uFF01-\\uFF0F\\uFF1A-\\uFF5E\\u2018-\\u201F\\u3000-\\u3002]+`),
    // \s+$ (ASCII \s): the whitespace run that ends the piece. Done by hand, since the regex
    // retries at every space of a run that does not reach the end: quadratic on long runs.
    { kind: 'trailingSpace' },
    re(CJK),
    re('\\p{N}+'),
  ],
  'deepseek3-llm': [
    re('\\p{N}{1,3}'),
    re('[\\u4E00-\\u9FA5\\u3040-\\u309F\\u30A0-\\u30FF]+'),
    re(
      `[!-\\/:-@\\[-\`{-~][A-Za-z]+|(?:~|[^\\r\\n\\p{L}\\p{P}\\p{S}])?[\\p{L}\\p{M}]+| ?(?:(?!~)[\\p{P}\\p{S}])+[\\r\\n]*` +
        `|${WS}*[\\r\\n]+|${WS}+(?!${NWS})|${WS}+`,
    ),
  ],
  'deepseek-coder': [re('[\\r\\n]'), re(`${WS}?\\p{L}+`), re(`${WS}?\\p{P}+`), re(CJK), re('\\p{N}')],
  falcon: [re('[\\p{P}$+<=>^~|`]+'), GPT2, re('[0-9][0-9][0-9]')],
  starcoder: [re('\\p{N}'), GPT2],
  gpt2: [GPT2],
  qwen2: [re(`${CONTRACTIONS}|${NOT_CRLF_LN}?\\p{L}+|\\p{N}|${TAIL('')}`)],
  poro: [re(`( ?[^(${ASCII_WS_CLASS}|.,!?\\u2026\\u3002\\uFF0C\\u3001\\u0964\\u06D4\\u060C)]+)`)],
  viking: [re(`( ?[^(${ASCII_WS_CLASS}|.,!?\\u2026\\u3002\\uFF0C\\u3001\\u0964\\u06D4\\u060C)]+)`), re('\\p{N}')],
  tekken: [re(`${NOT_CRLF_LN}?${UP}*${LO}+|${NOT_CRLF_LN}?${UP}+${LO}*|\\p{N}|${TAIL('/')}`)],
  chameleon: [
    re('<sentinel:[0-9]+>'),
    re('(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z'),
    re('([\\t\\n]|    |  )'),
    re('\\p{N}'),
    re('[\\p{P}!-\\/:-@\\[-`{-~]'),
    GPT2,
  ],
  bailingmoe: [
    re(`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|${NOT_CRLF_LN}?\\p{L}+|\\p{N}| ?[^${WS_CLASS}\\p{L}\\p{N}]+[\\r\\n]*|${WS}*[\\r\\n]|${WS}+(?!${NWS})|${WS}+`),
  ],
  'seed-coder': [
    re(`${CONTRACTIONS}|${NOT_CRLF_LN}?\\p{L}+|\\p{N}{1}| ?[^${WS_CLASS}\\p{L}\\p{N}\\r\\n]+|${WS}*[\\r\\n]+|${WS}+(?!${NWS})|${WS}+`),
  ],
  // The second regex matches empty strings: it cuts digit runs into threes from the right.
  superbpe: [re('\\p{N}+'), re('(?=(\\d{3})+(?!\\d))')],
  gpt4o: [
    re(
      `${NOT_CRLF_LN}?${UP}*${LO}+${CONTRACTIONS}?|${NOT_CRLF_LN}?${UP}+${LO}*${CONTRACTIONS}?|\\p{N}{1,3}|${TAIL('/')}`,
    ),
  ],
};

// tokenizer.ggml.pre value -> pre-tokenizer family, and the per-family vocabulary switches
// llama.cpp sets alongside (clean_spaces for detokenizing, ignore_merges, add_bos).
interface PreInfo { family: string; cleanSpaces: boolean; ignoreMerges?: boolean; addBos?: boolean }
const PRE_NAMES: Record<string, PreInfo> = {};
function names(list: string[], info: PreInfo): void {
  for (const n of list) PRE_NAMES[n] = info;
}
names(['', 'default'], { family: 'default', cleanSpaces: true });
names(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'], {
  family: 'llama3', cleanSpaces: true, ignoreMerges: true, addBos: true,
});
names(['deepseek-llm'], { family: 'deepseek-llm', cleanSpaces: false });
names(['deepseek-coder'], { family: 'deepseek-coder', cleanSpaces: false });
names(['deepseek-v3', 'hunyuan-dense'], { family: 'deepseek3-llm', cleanSpaces: false });
names(['falcon'], { family: 'falcon', cleanSpaces: true });
names(
  ['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'jina-v1-en',
    'jina-v2-code', 'roberta-bpe', 'exaone4', 'mpt', 'olmo', 'jais'],
  { family: 'gpt2', cleanSpaces: true },
);
names(['trillion', 'granite-docling'], { family: 'gpt2', cleanSpaces: false });
names(['starcoder', 'refact', 'codeshell', 'exaone', 'minerva-7b'], { family: 'starcoder', cleanSpaces: true });
names(['command-r', 'smollm'], { family: 'starcoder', cleanSpaces: false });
names(['qwen2', 'deepseek-r1-qwen', 'kormo', 'hunyuan', 'grok-2'], { family: 'qwen2', cleanSpaces: false });
names(['megrez', 'stablelm2'], { family: 'qwen2', cleanSpaces: true });
names(['dbrx'], { family: 'dbrx', cleanSpaces: true });
names(['smaug-bpe'], { family: 'smaug', cleanSpaces: true });
names(['poro-chat'], { family: 'poro', cleanSpaces: false });
names(['bloom', 'gpt3-finnish'], { family: 'poro', cleanSpaces: true });
names(['glm4', 'chatglm-bpe'], { family: 'chatglm4', cleanSpaces: true });
names(['viking'], { family: 'viking', cleanSpaces: false });
names(['tekken'], { family: 'tekken', cleanSpaces: false, ignoreMerges: true, addBos: true });
names(['chameleon'], { family: 'chameleon', cleanSpaces: false, addBos: true });
names(['gpt-4o', 'llama4', 'minimax-m2'], { family: 'gpt4o', cleanSpaces: false });
names(['bailingmoe', 'bailingmoe2', 'llada-moe'], { family: 'bailingmoe', cleanSpaces: false });
names(['seed-coder'], { family: 'seed-coder', cleanSpaces: false });
names(['superbpe'], { family: 'superbpe', cleanSpaces: false });

// llama.cpp splits these with hand-written code we do not have (yet).
const UNSUPPORTED = new Set(['kimi-k2', 'afmoe']);

/**
 * The pre-tokenizer behind a tokenizer.ggml.pre value. Like llama.cpp, a name it does not know
 * falls back to 'default' (known: false); the few it cannot reproduce throw.
 */
export function preTokenizerInfo(pre: string): PreInfo & { known: boolean } {
  if (UNSUPPORTED.has(pre)) throw unsupportedTokenizer(`pre-tokenizer '${pre}'`);
  const info = Object.prototype.hasOwnProperty.call(PRE_NAMES, pre) ? PRE_NAMES[pre] : undefined;
  return info ? { ...info, known: true } : { ...PRE_NAMES.default, known: false };
}

export function knownPreTokenizers(): string[] {
  return Object.keys(PRE_NAMES).filter((n) => n !== '');
}

/** Text prepared for splitting: its code points and both index maps. */
interface Prepared {
  text: string;
  cps: Uint32Array;
  u16Of: Uint32Array; // code point index -> UTF-16 index (length n + 1)
  cpOf: Uint32Array; // UTF-16 index -> code point index (length text.length + 1)
}

function prepare(text: string): Prepared {
  const cps = new Uint32Array(text.length);
  const u16Of = new Uint32Array(text.length + 1);
  const cpOf = new Uint32Array(text.length + 1);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.codePointAt(i)!;
    u16Of[n] = i;
    cpOf[i] = n;
    cps[n++] = c;
    if (c > 0xffff) cpOf[++i] = n - 1;
  }
  u16Of[n] = text.length;
  cpOf[text.length] = n;
  return { text, cps: cps.subarray(0, n), u16Of: u16Of.subarray(0, n + 1), cpOf };
}

/** Splits text into pre-tokenizer words for a family (see preTokenizerInfo().family). */
export function preTokenize(text: string, family: string): string[] {
  const steps = PRE_STEPS[family];
  if (!steps) throw unsupportedTokenizer(`pre-tokenizer family '${family}'`);
  const p = prepare(text);
  let offsets: number[] = [p.cps.length];
  for (const step of steps) {
    if (step.kind === 'gpt2') offsets = splitGpt2(p.cps, offsets);
    else if (step.kind === 'llama3') offsets = splitLlama3(p.cps, offsets);
    else if (step.kind === 'trailingSpace') offsets = splitTrailingSpace(p.cps, offsets);
    else offsets = splitRegex(p, step.re, offsets);
  }
  const words: string[] = [];
  let start = 0;
  for (const len of offsets) {
    if (len > 0) words.push(text.slice(p.u16Of[start], p.u16Of[start + len]));
    start += len;
  }
  return words;
}

function splitRegex(p: Prepared, re: RegExp, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const base16 = p.u16Of[start];
    const sub = p.text.slice(base16, p.u16Of[start + len]);
    let prevEnd = 0; // code points, relative to start
    re.lastIndex = 0;
    for (let m = re.exec(sub); m !== null; m = re.exec(sub)) {
      const mStart = p.cpOf[base16 + m.index] - start;
      const mEnd = p.cpOf[base16 + m.index + m[0].length] - start;
      if (mEnd === mStart) {
        // An empty match still cuts the text there (std::regex_iterator reports it), then the
        // search moves on by one character.
        if (mStart > prevEnd) out.push(mStart - prevEnd);
        prevEnd = mStart;
        if (m.index >= sub.length) break;
        re.lastIndex = m.index + (sub.codePointAt(m.index)! > 0xffff ? 2 : 1);
        continue;
      }
      if (mStart > prevEnd) out.push(mStart - prevEnd);
      out.push(mEnd - mStart);
      prevEnd = mEnd;
    }
    if (prevEnd < len) out.push(len - prevEnd);
    start += len;
  }
  return out;
}

function splitTrailingSpace(cps: Uint32Array, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    let p = start + len;
    while (p > start && (cps[p - 1] === 0x20 || (cps[p - 1] >= 0x09 && cps[p - 1] <= 0x0d))) p--;
    if (p > start) out.push(p - start);
    if (p < start + len) out.push(start + len - p);
    start += len;
  }
  return out;
}

const OUT_OF_RANGE = -1;

// llama.cpp's unicode_regex_split_custom_gpt2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
// ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
function splitGpt2(cps: Uint32Array, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const ini = start;
    const end = start + len;
    start = end;
    const cpt = (pos: number) => (pos >= ini && pos < end ? cps[pos] : OUT_OF_RANGE);
    const flags = (pos: number) => (pos >= ini && pos < end ? cptFlags(cps[pos]) : 0);
    let prevEnd = ini;
    const add = (e: number): number => {
      const l = e - prevEnd;
      if (l > 0) out.push(l);
      prevEnd = e;
      return l;
    };
    for (let pos = ini; pos < end; ) {
      const c = cpt(pos);
      const f = flags(pos);
      if (c === 0x27 && pos + 1 < end) {
        const n1 = cpt(pos + 1);
        if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) { // s t m d
          pos += add(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const n2 = cpt(pos + 2);
          if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) { // re ve ll
            pos += add(pos + 3);
            continue;
          }
        }
      }
      let f2 = c === 0x20 ? flags(pos + 1) : f;
      if (f2 & CPT_LETTER) {
        if (c === 0x20) pos++;
        while (f2 & CPT_LETTER) f2 = flags(++pos);
        add(pos);
        continue;
      }
      if (f2 & CPT_NUMBER) {
        if (c === 0x20) pos++;
        while (f2 & CPT_NUMBER) f2 = flags(++pos);
        add(pos);
        continue;
      }
      if (!(f2 & (CPT_WHITESPACE | CPT_LETTER | CPT_NUMBER)) && f2 !== 0) {
        if (c === 0x20) pos++;
        while (!(f2 & (CPT_WHITESPACE | CPT_LETTER | CPT_NUMBER)) && f2 !== 0) f2 = flags(++pos);
        add(pos);
        continue;
      }
      let nws = 0;
      while (flags(pos + nws) & CPT_WHITESPACE) nws++;
      if (nws > 1 && cpt(pos + nws) !== OUT_OF_RANGE) {
        pos += nws - 1;
        add(pos);
        continue;
      }
      if (nws > 0) {
        pos += nws;
        add(pos);
        continue;
      }
      add(++pos);
    }
  }
  return out;
}

function lowerAscii(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

// llama.cpp's unicode_regex_split_custom_llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
function splitLlama3(cps: Uint32Array, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const ini = start;
    const end = start + len;
    start = end;
    const cpt = (pos: number) => (pos >= ini && pos < end ? cps[pos] : OUT_OF_RANGE);
    const flags = (pos: number) => (pos >= ini && pos < end ? cptFlags(cps[pos]) : 0);
    let prevEnd = ini;
    const add = (e: number): number => {
      const l = e - prevEnd;
      if (l > 0) out.push(l);
      prevEnd = e;
      return l;
    };
    for (let pos = ini; pos < end; ) {
      const c = cpt(pos);
      const f = flags(pos);
      if (c === 0x27 && pos + 1 < end) {
        const n1 = lowerAscii(cpt(pos + 1));
        if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) {
          pos += add(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const n2 = lowerAscii(cpt(pos + 2));
          if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) {
            pos += add(pos + 3);
            continue;
          }
        }
      }
      if (!(c === 0x0d || c === 0x0a || f & CPT_NUMBER)) {
        if (f & CPT_LETTER || flags(pos + 1) & CPT_LETTER) {
          pos++;
          while (flags(pos) & CPT_LETTER) pos++;
          add(pos);
          continue;
        }
      }
      if (f & CPT_NUMBER) {
        let i0 = pos;
        while (flags(pos) & CPT_NUMBER) {
          if (++pos - i0 >= 3) {
            add(pos);
            i0 = pos;
          }
        }
        add(pos);
        continue;
      }
      let f2 = c === 0x20 ? flags(pos + 1) : f;
      if (!(f2 & (CPT_WHITESPACE | CPT_LETTER | CPT_NUMBER)) && f !== 0) {
        if (c === 0x20) pos++;
        while (!(f2 & (CPT_WHITESPACE | CPT_LETTER | CPT_NUMBER)) && f2 !== 0) f2 = flags(++pos);
        let c2 = cpt(pos);
        while (c2 === 0x0d || c2 === 0x0a) c2 = cpt(++pos);
        add(pos);
        continue;
      }
      let nws = 0;
      let lastEndRN = 0;
      while (flags(pos + nws) & CPT_WHITESPACE) {
        const c2 = cpt(pos + nws);
        if (c2 === 0x0d || c2 === 0x0a) lastEndRN = pos + nws + 1;
        nws++;
      }
      if (lastEndRN > 0) {
        pos = lastEndRN;
        add(pos);
        continue;
      }
      if (nws > 1 && cpt(pos + nws) !== OUT_OF_RANGE) {
        pos += nws - 1;
        add(pos);
        continue;
      }
      if (nws > 0) {
        pos += nws;
        add(pos);
        continue;
      }
      add(++pos);
    }
  }
  return out;
}
