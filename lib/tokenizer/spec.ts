// The plain description a Tokenizer is built from, and its mapping from GGUF metadata keys.

import { FlashdipError } from '../errors';

/** llama.cpp token types (tokenizer.ggml.token_type). */
export enum TokenType {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export interface TokenizerSpec {
  /** tokenizer.ggml.model: 'llama' (SentencePiece BPE with byte fallback) or 'gpt2' (byte-level BPE). */
  model: string;
  /** tokenizer.ggml.pre: the pre-tokenizer of a 'gpt2' vocabulary; absent or '' means 'default'. */
  pre?: string;
  tokens: readonly string[];
  scores?: ArrayLike<number>;
  tokenTypes?: ArrayLike<number>;
  /** 'gpt2' only: "left right" pairs, best first. */
  merges?: readonly string[];
  /** Special ids; undefined means the model's default (llama: bos 1, eos 2, unk 0; gpt2: bos = eos = 11), null means none. */
  bosId?: number | null;
  eosId?: number | null;
  eotId?: number | null;
  eomId?: number | null;
  unknownId?: number | null;
  paddingId?: number | null;
  separatorId?: number | null;
  /** Fill-in-the-middle pad, repository and file-separator tokens (they end generation, as in llama.cpp). */
  fimPadId?: number | null;
  fimRepId?: number | null;
  fimSepId?: number | null;
  /** Undefined means llama.cpp's default for the model / pre-tokenizer. */
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
  /** general.name: llama.cpp adjusts some token attributes by model name (Phi-3). */
  modelName?: string;
  /** tokenizer.chat_template: the Jinja chat template, if the file has one. */
  chatTemplate?: string;
}

function str(meta: Record<string, unknown>, key: string): string | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: ${key} must be a string`);
  return v;
}

function bool(meta: Record<string, unknown>, key: string): boolean | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: ${key} must be a boolean`);
  return v;
}

// An id key: absent -> undefined (model default); present but not a valid id -> undefined too, as
// llama.cpp warns "bad special token" and keeps its default.
function id(meta: Record<string, unknown>, key: string, nTokens: number): number | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: ${key} must be an integer`);
  return n >= 0 && n < nTokens ? n : undefined;
}

function numbers(meta: Record<string, unknown>, key: string): ArrayLike<number> | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
    const a = v as ArrayLike<unknown>;
    if (a.length > 0 && typeof a[0] === 'bigint') return Array.from(a as ArrayLike<bigint>, Number);
    return a as ArrayLike<number>;
  }
  throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: ${key} must be a numeric array`);
}

function strings(meta: Record<string, unknown>, key: string): string[] | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: ${key} must be an array of strings`);
  }
  return v as string[];
}

/** The tokenizer models flashdip implements (tokenizer.ggml.model). */
export const TOKENIZER_MODELS: readonly string[] = ['llama', 'gpt2'];

/**
 * A tokenizer flashdip does not implement (tokenizer.ggml.model, or a pre-tokenizer): ERR_UNSUPPORTED_ARCH,
 * like an unsupported architecture; the file itself may be valid.
 */
export function unsupportedTokenizer(what: string): FlashdipError {
  return new FlashdipError('ERR_UNSUPPORTED_ARCH', `tokenizer: ${what} is not supported`);
}

function checkTokenizerModel(model: string): void {
  if (!TOKENIZER_MODELS.includes(model))
    throw unsupportedTokenizer(`tokenizer model '${model}' (supported: ${TOKENIZER_MODELS.join(', ')})`);
}

// llama.cpp's token types are 0 (undefined) to 6 (byte); anything else is a broken file.
function tokenTypes(meta: Record<string, unknown>, key: string): ArrayLike<number> | undefined {
  const types = numbers(meta, key);
  if (types === undefined) return undefined;
  for (let i = 0; i < types.length; i++) {
    const t = types[i];
    if (!Number.isInteger(t) || t < TokenType.Undefined || t > TokenType.Byte)
      throw new FlashdipError('ERR_MODEL_INVALID', `tokenizer: ${key}[${i}] is ${t}; token types are 0 to 6`);
  }
  return types;
}

/** Maps GGUF metadata (as readGgufMetadata returns it) to a TokenizerSpec. */
export function tokenizerSpecFromMetadata(meta: Record<string, unknown>): TokenizerSpec {
  if (typeof meta !== 'object' || meta === null) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'meta: must be an object');
  const model = str(meta, 'tokenizer.ggml.model');
  if (model === undefined) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: the file has no tokenizer.ggml.model');
  checkTokenizerModel(model);
  const tokens = strings(meta, 'tokenizer.ggml.tokens');
  if (tokens === undefined) throw new FlashdipError('ERR_MODEL_INVALID', 'tokenizer: the file has no tokenizer.ggml.tokens');
  const n = tokens.length;
  const k = (name: string) => `tokenizer.ggml.${name}`;
  return {
    model,
    pre: str(meta, k('pre')),
    tokens,
    scores: numbers(meta, k('scores')),
    tokenTypes: tokenTypes(meta, k('token_type')),
    merges: strings(meta, k('merges')),
    bosId: id(meta, k('bos_token_id'), n),
    eosId: id(meta, k('eos_token_id'), n),
    eotId: id(meta, k('eot_token_id'), n),
    eomId: id(meta, k('eom_token_id'), n),
    unknownId: id(meta, k('unknown_token_id'), n),
    paddingId: id(meta, k('padding_token_id'), n),
    separatorId: id(meta, k('seperator_token_id'), n),
    fimPadId: id(meta, k('fim_pad_token_id'), n),
    fimRepId: id(meta, k('fim_rep_token_id'), n),
    fimSepId: id(meta, k('fim_sep_token_id'), n),
    addBos: bool(meta, k('add_bos_token')),
    addEos: bool(meta, k('add_eos_token')),
    addSpacePrefix: bool(meta, k('add_space_prefix')),
    modelName: str(meta, 'general.name'),
    chatTemplate: str(meta, 'tokenizer.chat_template'),
  };
}
