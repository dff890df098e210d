// Tokenizer: llama.cpp's llama_tokenize / llama_detokenize / llama_token_to_piece for the
// SentencePiece ('llama') and byte-level BPE ('gpt2') vocabularies, built from GGUF metadata.
//
// The reference is llama.cpp (src/llama-vocab.cpp): every quirk below that looks odd is there on
// purpose, because the test vectors were produced by llama.cpp and must match id for id.

import { FlashdipError } from '../errors';
import { PairQueue } from './heap';
import { preTokenize, preTokenizerInfo } from './pretokenize';
import { TOKENIZER_MODELS, TokenizerSpec, TokenType, unsupportedTokenizer } from './spec';
import { byteLevel, byteLevelToByte, utf8, wellFormed } from './unicode';

// llama_token_attr bits.
const ATTR_UNKNOWN = 1 << 0;
const ATTR_UNUSED = 1 << 1;
const ATTR_NORMAL = 1 << 2;
const ATTR_CONTROL = 1 << 3;
const ATTR_USER_DEFINED = 1 << 4;
const ATTR_BYTE = 1 << 5;
const ATTR_LSTRIP = 1 << 7;
const ATTR_RSTRIP = 1 << 8;

export interface EncodeOptions {
  /** Add BOS (and EOS) as the vocabulary asks (add_bos_token / add_eos_token). Default false. */
  addSpecial?: boolean;
  /** Turn the text of control / unknown tokens (e.g. "<s>") into their ids. Default false. */
  parseSpecial?: boolean;
}

/** A piece of text for encodeSegments: special-token text in it is parsed only with parseSpecial. */
export interface TextSegment {
  text: string;
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop a leading BOS and a trailing EOS when the vocabulary adds them. Default false. */
  removeSpecial?: boolean;
  /** Render control / unknown tokens as their text instead of nothing. Default false. */
  unparseSpecial?: boolean;
}

export interface PieceOptions {
  /** Render control / unknown tokens as their text (default true, like common_token_to_piece). */
  special?: boolean;
  /** Drop one leading space of the piece (what detokenize does to the first token). Default false. */
  lstrip?: boolean;
}

export interface StreamDecoderOptions extends DecodeOptions {
  /**
   * Tokens that come before the stream (e.g. the prompt, BOS included); their text is not emitted.
   * With a prefix (even an empty one) the stream starts a text: the first token that renders
   * anything loses its SentencePiece space prefix if nothing but special tokens came before it,
   * which is what node-llama-cpp's detokenize(tokens, false, lastTokens) gives (the references'
   * generated_text). Without a prefix the stream continues earlier text and every piece keeps its
   * leading space, as llama.cpp prints tokens one by one.
   */
  prefix?: readonly number[];
}

type Fragment = string | number; // raw text, or a token id already decided

// Texts llama.cpp recognises as special tokens when the file does not name them (llama-vocab.cpp,
// "auto-detect special tokens by text"); each one found becomes a control token.
const EOT_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>',
  '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>',
];
const EOM_TEXTS = ['<|eom_id|>'];
const FIM_TEXTS = [
  ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>'],
  ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>'],
  ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>'],
  ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>'],
  ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'],
  ['<|file_sep|>'],
];
// Texts that end generation. "</s>" is among them (llama.cpp added it for PaddleOCR), which is
// why Phi-3's user-defined "</s>" is a control token and is not split out without parseSpecial.
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<end_of_turn>', '<|endoftext|>', '</s>',
  '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
];

function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function checkId(id: unknown, n: number, what = 'token id'): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= n) {
    throw new FlashdipError('ERR_INVALID_ARGUMENT', `${what}: ${String(id)} is not a token id (vocabulary of ${n})`);
  }
  return id;
}

function checkOptions(name: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null) throw new FlashdipError('ERR_INVALID_ARGUMENT', `${name}: must be an object`);
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!keys.includes(k)) throw new FlashdipError('ERR_INVALID_ARGUMENT', `${name}: unknown option '${k}'`);
    const v = r[k];
    if (v !== undefined && typeof v !== 'boolean' && k !== 'prefix') {
      throw new FlashdipError('ERR_INVALID_ARGUMENT', `${name}.${k}: must be a boolean`);
    }
  }
  return r;
}

export class Tokenizer {
  /** 'spm' for tokenizer.ggml.model 'llama', 'bpe' for 'gpt2'. */
  readonly type: 'spm' | 'bpe';
  readonly model: string;
  /** The pre-tokenizer name ('default' for SentencePiece vocabularies). */
  readonly pre: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly eotId: number | null;
  readonly eomId: number | null;
  readonly unknownId: number | null;
  readonly paddingId: number | null;
  readonly separatorId: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** Whether detokenizing tidies " ," " 's" and similar, as llama.cpp's clean_spaces. */
  readonly cleanSpaces: boolean;
  /** Tokens that end generation: EOS, EOT, EOM and the usual end-of-turn texts. */
  readonly eogIds: ReadonlySet<number>;
  /** The file's Jinja chat template (tokenizer.chat_template), if any. */
  readonly chatTemplate: string | undefined;
  /** What llama.cpp would log as a warning while loading this vocabulary (e.g. a pre-tokenizer fallback). */
  readonly warnings: readonly string[];

  private readonly texts: string[];
  private readonly attrs: Uint16Array;
  private readonly scores: Float32Array;
  private readonly idOf = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  private readonly family: string;
  private readonly ignoreMerges: boolean;
  private readonly specials: number[]; // control / user-defined / unknown ids, longest text first
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly pieces: (Uint8Array | undefined)[];
  private readonly wordCache = new Map<string, number[]>();
  private readonly spmPairs = new Map<number, number>(); // (left id, right id) -> merged id or -1
  private readonly queue = new PairQueue();
  private spmJoinable: Set<number> | undefined;

  constructor(spec: TokenizerSpec) {
    if (typeof spec !== 'object' || spec === null) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'spec: must be an object');
    const { tokens } = spec;
    if (!Array.isArray(tokens) || tokens.length === 0) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: tokens must be a non-empty array of strings');
    const n = tokens.length;
    this.vocabSize = n;
    this.model = spec.model;
    if (spec.model === 'llama') this.type = 'spm';
    else if (spec.model === 'gpt2') this.type = 'bpe';
    else throw unsupportedTokenizer(`tokenizer model '${String(spec.model)}' (supported: ${TOKENIZER_MODELS.join(', ')})`);
    if (spec.scores !== undefined && spec.scores.length !== n) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: scores and tokens differ in length');
    if (spec.tokenTypes !== undefined && spec.tokenTypes.length !== n) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: token_type and tokens differ in length');

    this.texts = new Array(n);
    this.attrs = new Uint16Array(n);
    this.scores = new Float32Array(n);
    this.pieces = new Array(n);
    for (let i = 0; i < n; i++) {
      let t = tokens[i];
      if (typeof t !== 'string') throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: token ${i} is not a string`);
      if (t.length === 0) t = `[EMPTY_${i}]`;
      this.texts[i] = t;
      this.idOf.set(t, i); // a later duplicate wins, as in llama.cpp's token_to_id
      if (spec.scores) this.scores[i] = spec.scores[i];
      this.attrs[i] = spec.tokenTypes ? attrOfType(spec.tokenTypes[i]) : ATTR_NORMAL;
    }

    // Model defaults, then what the file says.
    const def = (v: number | null | undefined, d: number | null): number | null => {
      const x = v === undefined ? d : v;
      return x !== null && Number.isInteger(x) && x >= 0 && x < n ? x : null;
    };
    const warnings: string[] = [];
    let addBos: boolean;
    let addSpacePrefix: boolean;
    let bosDefault: number | null;
    if (this.type === 'spm') {
      this.pre = 'default';
      this.family = '';
      this.cleanSpaces = false;
      this.ignoreMerges = false;
      addBos = true;
      addSpacePrefix = true;
      bosDefault = 1;
      this.eosId = def(spec.eosId, 2);
      this.unknownId = def(spec.unknownId, 0);
    } else {
      const pre = spec.pre ?? '';
      const info = preTokenizerInfo(pre);
      this.pre = pre === '' || !info.known ? 'default' : pre;
      if (!info.known) warnings.push(`unknown pre-tokenizer '${pre}': using 'default', as llama.cpp does`);
      if (pre === '') warnings.push("no pre-tokenizer type: using 'default', as llama.cpp does");
      this.family = info.family;
      this.cleanSpaces = info.cleanSpaces;
      this.ignoreMerges = info.ignoreMerges ?? false;
      addBos = info.addBos ?? false;
      addSpacePrefix = false;
      bosDefault = pre === 'chatglm-bpe' ? null : 11;
      this.eosId = def(spec.eosId, 11);
      this.unknownId = def(spec.unknownId, null);
      const merges = spec.merges;
      if (!Array.isArray(merges)) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: a gpt2 vocabulary needs tokenizer.ggml.merges');
      for (let i = 0; i < merges.length; i++) {
        const m = merges[i];
        if (typeof m !== 'string') throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: merge ${i} is not a string`);
        const sp = m.indexOf(' ', 1);
        const key = sp < 0 ? '\u0001' : `${m.slice(0, sp)}\u0001${m.slice(sp + 1)}`;
        if (!this.ranks.has(key)) this.ranks.set(key, i); // the first rank wins (emplace)
      }
    }
    this.bosId = def(spec.bosId, bosDefault);
    this.paddingId = def(spec.paddingId, null);
    this.separatorId = def(spec.separatorId, null);
    this.addSpacePrefix = spec.addSpacePrefix ?? addSpacePrefix;
    this.addBos = spec.addBos ?? addBos;
    this.addEos = spec.addEos ?? false;

    // Auto-detected special tokens; llama.cpp makes each one found a control token.
    const findText = (list: readonly string[]): number | null => {
      for (const t of list) {
        const id = this.idOf.get(t);
        if (id !== undefined) return id;
      }
      return null;
    };
    const forceControl = (id: number | null | undefined) => {
      if (id !== null && id !== undefined) this.attrs[id] |= ATTR_CONTROL;
    };
    let eot = def(spec.eotId, null);
    if (eot === null) forceControl((eot = findText(EOT_TEXTS)));
    this.eotId = eot;
    let eom = def(spec.eomId, null);
    if (eom === null) forceControl((eom = findText(EOM_TEXTS)));
    this.eomId = eom;
    for (const list of FIM_TEXTS) forceControl(findText(list));
    const eog = new Set<number>();
    // llama.cpp: the FIM pad, repository and file-separator tokens end generation.
    for (const [given, list] of [[spec.fimPadId, FIM_TEXTS[3]], [spec.fimRepId, FIM_TEXTS[4]], [spec.fimSepId, FIM_TEXTS[5]]] as const) {
      const fimId = def(given, findText(list));
      if (fimId !== null) eog.add(fimId);
    }
    for (const t of EOG_TEXTS) {
      const id = this.idOf.get(t);
      if (id !== undefined) {
        eog.add(id);
        forceControl(id);
      }
    }
    // gpt-oss: these are rendered, always.
    for (const t of ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']) {
      const id = this.idOf.get(t);
      if (id !== undefined) this.attrs[id] = ATTR_USER_DEFINED;
    }
    for (const id of [this.eosId, this.eotId, this.eomId]) if (id !== null) eog.add(id);
    // o200k_harmony: "<|end|>" does not end generation when "<|return|>" and "<|call|>" exist.
    const endId = this.idOf.get('<|end|>');
    if (endId !== undefined && eog.has(endId) && this.idOf.has('<|return|>') && this.idOf.has('<|call|>')) {
      eog.delete(endId);
      this.attrs[endId] = ATTR_USER_DEFINED;
    }
    this.eogIds = eog;
    this.warnings = warnings;
    if (spec.chatTemplate !== undefined && typeof spec.chatTemplate !== 'string') throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: chat_template must be a string');
    this.chatTemplate = spec.chatTemplate;

    // Per-model attributes (llama.cpp keys these on general.name).
    const name = (spec.modelName ?? '').toLowerCase();
    const specialMask = ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN;
    const specials: number[] = [];
    for (let i = 0; i < n; i++) if (this.attrs[i] & specialMask) specials.push(i);
    if (name.includes('phi-3') || name.includes('phi3')) {
      const setAttr = (id: number | undefined, bit: number, on: boolean) => {
        if (id === undefined) return;
        this.attrs[id] = on ? this.attrs[id] | bit : this.attrs[id] & ~bit;
      };
      for (const id of specials) setAttr(id, ATTR_RSTRIP, true);
      setAttr(this.idOf.get('</s>'), ATTR_RSTRIP, true);
      for (const t of ['<unk>', '<s>', '<|endoftext|>']) setAttr(this.idOf.get(t), ATTR_RSTRIP, false);
    }
    const byteLen = specials.map((id) => utf8(this.texts[id]).length);
    const order = specials.map((_, i) => i).sort((a, b) => byteLen[b] - byteLen[a] || specials[a] - specials[b]);
    this.specials = order.map((i) => specials[i]);

    if (this.type === 'spm') {
      const hex = '0123456789ABCDEF';
      for (let b = 0; b < 256; b++) {
        let id = this.idOf.get(`<0x${hex[b >> 4]}${hex[b & 15]}>`);
        if (id === undefined && b < 0x80) id = this.idOf.get(String.fromCharCode(b));
        if (id !== undefined) this.byteIds[b] = id;
      }
    }
  }

  // ---------------------------------------------------------------- encoding

  /** llama_tokenize(text, addSpecial, parseSpecial). */
  encode(text: string, options?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', `text: must be a string, got ${text === null ? 'null' : typeof text}`);
    const o = checkOptions('options', options, ['addSpecial', 'parseSpecial']);
    const addSpecial = o.addSpecial === true;
    const parseSpecial = o.parseSpecial === true;
    const raw = wellFormed(text);
    return this.encodeFragments(raw.length > 0 ? this.partition(raw, parseSpecial) : [], addSpecial);
  }

  /**
   * Tokenizes text given as segments the way encode() tokenizes their concatenation, except that
   * control and unknown tokens are recognised only inside the segments marked parseSpecial (a
   * token's rstrip still reaches across a segment boundary, as in the whole text). A chat
   * tokenizes the template's own text with parseSpecial and message contents without, so text a
   * user writes never becomes a control token.
   */
  encodeSegments(segments: readonly TextSegment[], options?: { addSpecial?: boolean }): number[] {
    if (!Array.isArray(segments)) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'segments: must be an array of { text, parseSpecial }');
    const o = checkOptions('options', options, ['addSpecial']);
    const fragments: Fragment[] = [];
    for (const [i, seg] of segments.entries()) {
      if (seg === null || typeof seg !== 'object' || typeof seg.text !== 'string')
        throw new FlashdipError('ERR_INVALID_ARGUMENT', `segments[${i}].text: must be a string`);
      const raw = wellFormed(seg.text);
      if (raw.length === 0) continue;
      for (let f of this.partition(raw, seg.parseSpecial === true)) {
        const last = fragments[fragments.length - 1];
        if (typeof f === 'string') {
          if (typeof last === 'number' && this.attrs[last] & ATTR_RSTRIP) {
            let k = 0;
            while (k < f.length && isAsciiSpace(f.charCodeAt(k))) k++;
            if ((f = f.slice(k)).length === 0) continue;
          }
          if (typeof last === 'string') fragments[fragments.length - 1] = last + f;
          else fragments.push(f);
        } else {
          fragments.push(f); // (no token of the vocabularies we read has lstrip, which would reach back)
        }
      }
    }
    return this.encodeFragments(fragments, o.addSpecial === true);
  }

  private encodeFragments(fragments: readonly Fragment[], addSpecial: boolean): number[] {
    const out: number[] = [];
    if (addSpecial && this.addBos) {
      if (this.bosId === null) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: the vocabulary adds BOS but has none');
      out.push(this.bosId);
    }
    if (this.type === 'spm') {
      let prevSpecial = true; // the first text gets the space prefix (BOS or not)
      for (const f of fragments) {
        if (typeof f === 'string') {
          this.spmFragment((this.addSpacePrefix && prevSpecial ? ' ' : '') + f, out);
          prevSpecial = false;
        } else {
          out.push(f);
          prevSpecial = true;
        }
      }
    } else {
      for (const f of fragments) {
        if (typeof f === 'string') this.bpeTokenize(f, out);
        else out.push(f);
      }
    }
    if (addSpecial && this.addEos) {
      if (this.eosId === null) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: the vocabulary adds EOS but has none');
      out.push(this.eosId);
    }
    return out;
  }

  // tokenizer_st_partition: split special-token text out of the raw text, longest tokens first.
  // User-defined tokens are split out even when parseSpecial is false; control and unknown only
  // when it is true.
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [text];
    // Cheap filter: a token can only occur if its first two UTF-16 units do.
    const pairs = new Set<number>();
    const singles = new Set<number>();
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      singles.add(c);
      if (i + 1 < text.length) pairs.add(c * 65536 + text.charCodeAt(i + 1));
    }
    for (const id of this.specials) {
      const attr = this.attrs[id];
      if (!parseSpecial && attr & (ATTR_CONTROL | ATTR_UNKNOWN)) continue;
      const tok = this.texts[id];
      if (tok.length === 1 ? !singles.has(tok.charCodeAt(0)) : !pairs.has(tok.charCodeAt(0) * 65536 + tok.charCodeAt(1))) continue;
      let changed = false;
      const next: Fragment[] = [];
      for (const f of fragments) {
        if (typeof f !== 'string') {
          next.push(f);
          continue;
        }
        let pos = f.indexOf(tok);
        if (pos < 0) {
          next.push(f);
          continue;
        }
        changed = true;
        let from = 0; // start of the unprocessed rest of f
        const end = f.length;
        while (pos >= 0) {
          let leftEnd = pos;
          if (attr & ATTR_LSTRIP) while (leftEnd > from && isAsciiSpace(f.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > from) next.push(f.slice(from, leftEnd));
          next.push(id);
          from = pos + tok.length;
          if (attr & ATTR_RSTRIP) while (from < end && isAsciiSpace(f.charCodeAt(from))) from++;
          pos = from < end ? f.indexOf(tok, from) : -1;
        }
        if (from < end) next.push(f.slice(from, end));
      }
      if (changed) fragments = next;
    }
    return fragments;
  }

  // SentencePiece BPE over a whole fragment, as llama.cpp runs it. Merges only ever join
  // neighbours into a vocabulary token, so no merge can cross a boundary between two characters
  // that sit side by side in no token: cutting the text there gives the same ids, lets each piece
  // use a small queue, and lets repeated pieces (words, mostly) come from a cache.
  private spmFragment(text: string, out: number[]): void {
    const s = text.replace(/ /g, '\u2581');
    const joinable = this.spmJoinable ?? (this.spmJoinable = this.buildJoinable());
    const cache = this.wordCache;
    let from = 0;
    let prevCp = -1;
    for (let i = 0; i <= s.length; ) {
      const cp = i < s.length ? s.codePointAt(i)! : -1;
      if (i === s.length || (prevCp >= 0 && !joinable.has(prevCp * 0x110000 + cp))) {
        if (i > from) {
          const piece = s.slice(from, i);
          let ids = cache.get(piece);
          if (ids === undefined) {
            ids = [];
            this.spmTokenize(piece, ids);
            if (cache.size >= 65536) cache.clear();
            cache.set(piece, ids);
          }
          for (const id of ids) out.push(id);
        }
        from = i;
        if (i === s.length) break;
      }
      prevCp = cp;
      i += cp > 0xffff ? 2 : 1;
    }
  }

  // Every pair of adjacent code points inside some token's text.
  private buildJoinable(): Set<number> {
    const set = new Set<number>();
    for (const t of this.texts) {
      let prev = -1;
      for (let i = 0; i < t.length; i++) {
        const cp = t.codePointAt(i)!;
        if (cp > 0xffff) i++;
        if (prev >= 0) set.add(prev * 0x110000 + cp);
        prev = cp;
      }
    }
    return set;
  }

  // SentencePiece BPE: merge the best-scoring adjacent pair that is a token, until none is left;
  // pieces that are not tokens fall back to <0xXX> byte tokens.
  private spmTokenize(text: string, out: number[]): void {
    const s = text.replace(/ /g, '\u2581');
    const n = s.length;
    const start = new Int32Array(n);
    const len = new Int32Array(n);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const sym = new Int32Array(n); // token id of each symbol, -1 if its text is not a token
    let count = 0;
    for (let i = 0; i < n; ) {
      const w = s.codePointAt(i)! > 0xffff ? 2 : 1;
      start[count] = i;
      len[count] = w;
      const id = this.idOf.get(w === 1 ? s[i] : s.slice(i, i + 2));
      sym[count] = id === undefined ? -1 : id;
      i += w;
      prev[count] = count - 1;
      next[count] = i === n ? -1 : count + 1;
      count++;
    }
    if (count === 0) return;
    // A merged symbol is always a token, so a pair of token ids names the merged text: cache the
    // text lookups by id pair (the same pairs recur all over a long text).
    const pairs = this.spmPairs;
    const nv = this.vocabSize;
    const heap = this.queue;
    heap.clear();
    const tryAdd = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      let id: number | undefined;
      const a = sym[l];
      const b = sym[r];
      if (a >= 0 && b >= 0) {
        const key = a * nv + b;
        id = pairs.get(key);
        if (id === undefined) {
          id = this.idOf.get(this.texts[a] + this.texts[b]) ?? -1;
          pairs.set(key, id);
        }
      } else {
        id = this.idOf.get(s.slice(start[l], start[l] + len[l] + len[r])) ?? -1;
      }
      if (id < 0) return;
      heap.push(-this.scores[id], l, r, len[l] + len[r], id);
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);
    while (heap.pop()) {
      const l = heap.topLeft;
      const r = heap.topRight;
      if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== heap.topA) continue;
      len[l] += len[r];
      len[r] = 0;
      sym[l] = heap.topB;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      tryAdd(prev[l], l);
      tryAdd(l, next[l]);
    }
    for (let i = 0; i !== -1; i = next[i]) {
      if (sym[i] >= 0) {
        out.push(sym[i]);
        continue;
      }
      for (const byte of utf8(s.slice(start[i], start[i] + len[i]))) out.push(this.byteToken(byte));
    }
    if (pairs.size > 1 << 20) pairs.clear();
  }

  private byteToken(byte: number): number {
    const id = this.byteIds[byte];
    if (id >= 0) return id;
    if (this.unknownId !== null) return this.unknownId;
    throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: the vocabulary has no token for byte 0x${byte.toString(16)}`);
  }

  // Byte-level BPE: pre-tokenize, map each word's bytes to the GPT-2 alphabet, merge by rank.
  private bpeTokenize(text: string, out: number[]): void {
    const cache = this.wordCache;
    for (const word of preTokenize(text, this.family)) {
      let ids = cache.get(word);
      if (ids === undefined) {
        ids = this.bpeWord(byteLevel(word));
        if (cache.size >= 65536) cache.clear();
        cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private bpeWord(w: string): number[] {
    const ids: number[] = [];
    if (this.ignoreMerges) {
      const id = this.idOf.get(w);
      if (id !== undefined) return [id];
    }
    const n = w.length; // byte-level strings have one UTF-16 unit per symbol
    const len = new Int32Array(n).fill(1);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 === n ? -1 : i + 1;
    }
    const heap = this.queue;
    heap.clear();
    const add = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const rank = this.ranks.get(`${w.slice(l, l + len[l])}\u0001${w.slice(r, r + len[r])}`);
      if (rank === undefined) return;
      heap.push(rank, l, r, len[l], len[r]);
    };
    for (let i = 1; i < n; i++) add(i - 1, i);
    while (heap.pop()) {
      const l = heap.topLeft;
      const r = heap.topRight;
      if (len[l] === 0 || len[r] === 0 || len[l] !== heap.topA || len[r] !== heap.topB) continue;
      len[l] += len[r];
      len[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      add(prev[l], l);
      add(l, next[l]);
    }
    for (let i = 0; i < n; i++) {
      if (len[i] === 0) continue;
      const piece = w.slice(i, i + len[i]);
      const id = this.idOf.get(piece);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // Not a token: llama.cpp tries each byte of the piece as a one-byte token (only ASCII can be).
      for (let j = 0; j < piece.length; j++) {
        if (piece.charCodeAt(j) >= 0x80) continue;
        const single = this.idOf.get(piece[j]);
        if (single !== undefined) ids.push(single);
      }
    }
    return ids;
  }

  // ---------------------------------------------------------------- decoding

  /** The vocabulary's text of a token, as stored (SentencePiece ▁, GPT-2 byte alphabet). */
  tokenText(id: number): string {
    return this.texts[checkId(id, this.vocabSize)];
  }

  /** The token's llama.cpp token type (tokenizer.ggml.token_type, after llama.cpp's fixes). */
  tokenType(id: number): TokenType {
    const a = this.attrs[checkId(id, this.vocabSize)];
    if (a & ATTR_CONTROL) return TokenType.Control;
    if (a & ATTR_USER_DEFINED) return TokenType.UserDefined;
    if (a & ATTR_UNKNOWN) return TokenType.Unknown;
    if (a & ATTR_BYTE) return TokenType.Byte;
    if (a & ATTR_UNUSED) return TokenType.Unused;
    if (a & ATTR_NORMAL) return TokenType.Normal;
    return TokenType.Undefined;
  }

  /** Whether generation stops at this token (EOS, EOT, ...). */
  isEndOfGeneration(id: number): boolean {
    return this.eogIds.has(id);
  }

  /** llama_token_to_piece: the bytes a token stands for (a piece may be part of a character). */
  tokenPiece(id: number, options?: PieceOptions): Uint8Array {
    checkId(id, this.vocabSize);
    const o = checkOptions('options', options, ['special', 'lstrip']);
    return this.piece(id, o.special !== false, o.lstrip === true).slice(); // a copy: the cache stays intact
  }

  private piece(id: number, special: boolean, lstrip: boolean): Uint8Array {
    const attr = this.attrs[id];
    if (!special && attr & (ATTR_UNKNOWN | ATTR_CONTROL)) return EMPTY;
    let p = this.pieces[id];
    if (p === undefined) p = this.pieces[id] = this.renderPiece(id);
    if (lstrip && p.length > 0 && p[0] === 0x20) return p.subarray(1);
    return p;
  }

  private renderPiece(id: number): Uint8Array {
    const attr = this.attrs[id];
    const text = this.texts[id];
    if (attr & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) return utf8(text);
    if (this.type === 'spm') {
      if (attr & ATTR_NORMAL) return utf8(text.replace(/\u2581/g, ' '));
      if (attr & ATTR_BYTE) return Uint8Array.of(parseInt(text.slice(3), 16) & 0xff);
      return EMPTY;
    }
    if (!(attr & ATTR_NORMAL)) return EMPTY;
    const bytes: number[] = [];
    for (const ch of text) {
      const b = byteLevelToByte(ch.codePointAt(0)!);
      if (b >= 0) bytes.push(b);
      else {
        // llama_decode_text's marker for a character outside the byte alphabet.
        const hex = Array.from(utf8(ch), (x) => x.toString(16).padStart(2, '0')).join('');
        for (const x of utf8(`[UNK_BYTE_0x${hex}${text}]`)) bytes.push(x);
      }
    }
    return Uint8Array.from(bytes);
  }

  /** llama_detokenize as bytes (the text may end inside a UTF-8 character). */
  decodeBytes(ids: ArrayLike<number>, options?: DecodeOptions): Uint8Array {
    const o = checkOptions('options', options, ['removeSpecial', 'unparseSpecial']);
    const list = this.checkIds(ids);
    const removeSpecial = o.removeSpecial === true;
    const special = o.unparseSpecial === true;
    let first = 0;
    let last = list.length;
    let removeSpace = this.addSpacePrefix;
    if (removeSpecial && this.addBos && last > 0 && list[0] === this.bosId) {
      removeSpace = false;
      first = 1;
    }
    if (removeSpecial && this.addEos && last > first && list[last - 1] === this.eosId) last--;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = first; i < last; i++) {
      const p = this.piece(list[i], special, removeSpace);
      removeSpace = false;
      parts.push(p);
      total += p.length;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    if (!this.cleanSpaces) return bytes;
    return bytes.subarray(0, cleanSpaces(bytes, null));
  }

  /** llama_detokenize(ids, removeSpecial, unparseSpecial) as a string (bad UTF-8 becomes U+FFFD). */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    return textDecoder.decode(this.decodeBytes(ids, options));
  }

  /** An incremental decoder: push ids, get text; never splits a UTF-8 character. */
  createStreamDecoder(options?: StreamDecoderOptions): StreamDecoder {
    const o = checkOptions('options', options, ['removeSpecial', 'unparseSpecial', 'prefix']);
    const prefix = o.prefix === undefined ? undefined : this.checkIds(o.prefix as ArrayLike<number>);
    return new StreamDecoder(this, o.removeSpecial === true, o.unparseSpecial === true, prefix);
  }

  private checkIds(ids: ArrayLike<number>): number[] {
    if (ids === null || typeof ids !== 'object' || typeof (ids as { length?: unknown }).length !== 'number') {
      throw new FlashdipError('ERR_INVALID_ARGUMENT', 'ids: must be an array of token ids');
    }
    const out = new Array<number>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = checkId(ids[i], this.vocabSize, `ids[${i}]`);
    return out;
  }

  /** @internal for StreamDecoder */
  _piece(id: number, special: boolean, lstrip: boolean): Uint8Array {
    return this.piece(checkId(id, this.vocabSize), special, lstrip);
  }
}

const EMPTY = new Uint8Array(0);
const textDecoder = new TextDecoder('utf-8');

function attrOfType(t: number): number {
  switch (t) {
    case TokenType.Unknown: return ATTR_UNKNOWN;
    case TokenType.Unused: return ATTR_UNUSED;
    case TokenType.Normal: return ATTR_NORMAL;
    case TokenType.Control: return ATTR_CONTROL;
    case TokenType.UserDefined: return ATTR_USER_DEFINED;
    case TokenType.Byte: return ATTR_BYTE;
    default: return 0; // undefined
  }
}

// llama.cpp's clean_spaces passes over detokenized bytes, in place: " ?" " !" " ." " ," lose the
// space, " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose the space. `src`, when given,
// follows each byte's origin through the same moves. Returns the new length.
export function cleanSpaces(t: number[] | Uint8Array, src: number[] | null): number {
  const SP = 0x20;
  const Q = 0x27;
  let total = t.length;
  const put = (at: number, i: number) => {
    t[at] = t[i];
    if (src) src[at] = src[i];
  };
  // 1: " ?", " !", " .", " ,"
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = t[i];
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    put(total++, i);
  }
  // 2: " ' " -> "'"
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = t[i];
    const xs = src ? src[i] : 0;
    if (x === Q && i + 1 < total2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total] = x;
    if (src) src[total] = xs;
    total++;
  }
  // 3: " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = t[i];
    if (t[i - 1] === SP && x === Q && i + 1 < total3) {
      const x1 = t[i + 1];
      if (x1 === 0x74 || x1 === 0x64) {
        // " 't", " 'd": kept
      } else if (x1 === 0x73 || x1 === 0x6d) {
        total--;
      } else if (i + 2 < total3) {
        const x2 = t[i + 2];
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    put(total++, i);
  }
  return total;
}

export class StreamDecoder {
  private readonly utf8 = new TextDecoder('utf-8');
  private pending: number[] = []; // raw bytes whose clean_spaces fate is not known yet
  private pendingSrc: number[] = []; // 1 if the byte came from the prefix
  private checked = 0; // cut points 1..checked of `pending` are known not to be safe
  private atStart: boolean; // nothing pushed yet: a BOS here is dropped with removeSpecial
  private stripSpace: boolean; // no text rendered yet: the next piece loses one leading space
  private heldEos = false;
  private inPrefix = false;

  /** @internal use Tokenizer.createStreamDecoder() */
  constructor(
    private readonly tok: Tokenizer,
    private readonly removeSpecial: boolean,
    private readonly special: boolean,
    prefix: number[] | undefined,
  ) {
    this.atStart = prefix !== undefined;
    this.stripSpace = prefix !== undefined && tok.addSpacePrefix;
    if (prefix && prefix.length > 0) {
      this.inPrefix = true;
      for (const id of prefix) this.take(id);
      this.inPrefix = false;
      this.release(false); // text of the prefix is swallowed here
    }
  }

  /** Text that became complete with this token (possibly ''). */
  push(id: number): string {
    const tok = this.tok;
    if (this.heldEos) {
      this.heldEos = false;
      this.take(tok.eosId!);
    }
    if (this.removeSpecial && tok.addEos && id === tok.eosId) {
      checkId(id, tok.vocabSize);
      this.heldEos = true; // dropped if it turns out to be the last token
      return this.release(false);
    }
    this.take(id);
    return this.release(false);
  }

  /** The rest: bytes held back for clean-up, and an incomplete character as U+FFFD. */
  flush(): string {
    this.heldEos = false;
    const text = this.release(true);
    return text + this.utf8.decode();
  }

  private take(id: number): void {
    const tok = this.tok;
    if (this.atStart) {
      this.atStart = false;
      if (this.removeSpecial && tok.addBos && id === tok.bosId) {
        checkId(id, tok.vocabSize);
        return;
      }
    }
    let p = tok._piece(id, this.special, false);
    if (p.length === 0) return;
    if (this.stripSpace) {
      this.stripSpace = false;
      if (p[0] === 0x20) p = p.subarray(1);
    }
    const from = this.inPrefix ? 1 : 0;
    for (let i = 0; i < p.length; i++) {
      this.pending.push(p[i]);
      this.pendingSrc.push(from);
    }
  }

  // Emits the part of `pending` whose clean-up cannot change any more: everything when the
  // vocabulary does not clean spaces, else up to a point with no space or quote in the 3 bytes
  // before it (clean_spaces never looks further than that across such a point).
  private release(final: boolean): string {
    const raw = this.pending;
    let cut = raw.length;
    if (this.tok.cleanSpaces && !final) {
      cut = 0;
      // Cut points at or below `checked` were rejected before and their bytes have not changed.
      for (let p = raw.length; p >= 3 && p > this.checked; p--) {
        const a = raw[p - 1];
        const b = raw[p - 2];
        const c = raw[p - 3];
        if (a !== 0x20 && a !== 0x27 && b !== 0x20 && b !== 0x27 && c !== 0x20 && c !== 0x27) {
          cut = p;
          break;
        }
      }
      this.checked = cut === 0 ? raw.length : raw.length - cut;
    } else {
      this.checked = 0;
    }
    if (cut === 0) return '';
    let bytes = raw.slice(0, cut);
    let src = this.pendingSrc.slice(0, cut);
    this.pending = raw.slice(cut);
    this.pendingSrc = this.pendingSrc.slice(cut);
    if (this.tok.cleanSpaces) {
      const n = cleanSpaces(bytes, src);
      bytes = bytes.slice(0, n);
      src = src.slice(0, n);
    }
    let split = 0;
    while (split < src.length && src[split] === 1) split++;
    if (split > 0) this.utf8.decode(Uint8Array.from(bytes.slice(0, split)), { stream: true }); // prefix text: not ours to emit
    return this.utf8.decode(Uint8Array.from(bytes.slice(split)), { stream: true });
  }
}
