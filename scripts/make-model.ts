// make-model: writes a random-weight GGUF of any llama-family shape, with llama.cpp's tensor names
// and metadata keys, for tests and benchmarks.
//
//   npx ts-node scripts/make-model.ts --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 \
//     --ffn 192 --vocab 512 --ctx 256 --type q8_0 --seed 1 --out /tmp/tiny.gguf [--tied] [--vocab-from V.gguf]
//     [--head-dim K] [--rope-dims R] [--sliding-window W] [--attn-softcap C] [--final-softcap C]
//
// Tensors are generated and written one at a time, in row chunks (a few MB), so memory stays bounded
// whatever the model size. Every tensor's values depend only on (seed, tensor name), not on --type or
// on the other tensors, so the same seed at f32 and q8_0 gives the same weights, quantized or not.
// f32/f16/bf16 are encoded in TypeScript (round to nearest even, as ggml does); every other type goes
// through the native quantizer (getBinding().kernels.quantizeRow).
//
// Shapes (ggml order: ne0, the input dimension, first; K = --head-dim, default D / heads; Dq = heads * K,
// Dkv = kv_heads * K):
//   token_embd.weight [D, V]   output_norm.weight [D]   output.weight [D, V] (omitted with --tied,
//   and always for gemma*, whose LM head is the embedding table in llama.cpp)
//   blk.N.attn_norm.weight [D]              blk.N.ffn_norm.weight [D]
//   llama/qwen2/qwen3/gemma*: blk.N.attn_q.weight [D, Dq], attn_k.weight [D, Dkv], attn_v.weight [D, Dkv],
//                qwen2 only: attn_q.bias [Dq], attn_k.bias [Dkv], attn_v.bias [Dkv] (F32)
//                qwen3, gemma3: attn_q_norm.weight [K], attn_k_norm.weight [K]
//                gemma2, gemma3: post_attention_norm.weight [D], post_ffw_norm.weight [D]
//                ffn_gate.weight [D, F], ffn_up.weight [D, F]
//   phi3:        blk.N.attn_qkv.weight [D, Dq + 2*Dkv] (q rows, then k, then v)
//                ffn_up.weight [D, 2F] (llama.cpp's fused SwiGLU: the first F rows are the gate, the
//                last F the up projection)
//   all:         blk.N.attn_output.weight [Dq, D], ffn_down.weight [F, D]
// Norms and biases are F32; the 2-D weights (token_embd and output too) get --type. Norm weights are
// written as llama.cpp uses them (for gemma, its converter has already added Gemma's +1).
// gemma2/gemma3 metadata: attention.sliding_window (--sliding-window, default 4096 and 512), and for
// gemma2 attn_logit_softcapping / final_logit_softcapping (default 50 and 30, as Gemma 2's).

import { parseArgs } from 'util';
import { FlashdipError, invalidArgument } from '../lib/errors';
import { GGML_TYPE, ggmlType, ggmlTensorBytes } from '../lib/ggml-types';
import { GgufValueType, GgufWriter, metadataEntries } from '../lib/gguf-writer';

export type Arch = 'llama' | 'qwen2' | 'qwen3' | 'phi3' | 'gemma' | 'gemma2' | 'gemma3';
export const ARCHS: readonly Arch[] = ['llama', 'qwen2', 'qwen3', 'phi3', 'gemma', 'gemma2', 'gemma3'];
export const WEIGHT_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as const;
export type WeightType = (typeof WEIGHT_TYPES)[number];
/** Mixtures of types, as llama.cpp's quantize writes them: `q4_k_m` is Q4_K with Q6_K for the output
 *  head and, in the layers llama.cpp's use_more_bits() picks, attn_v and ffn_down (LLAMA_FTYPE_MOSTLY_Q4_K_M). */
export const MIXTURES = ['q4_k_m'] as const;
export type Mixture = (typeof MIXTURES)[number];

// llama.cpp's use_more_bits(i_layer, n_layers): the first and last eighth of the layers and every
// third layer between them get the bigger type in its Q4_K_M mixture.
function useMoreBits(layer: number, layers: number): boolean {
  return layer < layers / 8 || layer >= (7 * layers) / 8 || (layer - Math.floor(layers / 8)) % 3 === 2;
}

export type QuantizeRow = (typeId: number, src: Float32Array) => Uint8Array;

// What a GGUF reader must return for --vocab-from: lib/gguf.ts's readGguf() fits.
export interface VocabSource {
  metadata: Record<string, unknown>;
  metadataTypes: Record<string, string>; // 'u32', 'string', 'array:f32', ...
}

export interface MakeModelOptions {
  out: string;
  arch?: Arch;            // default 'llama'
  dim: number;
  layers: number;
  heads: number;
  kvHeads?: number;       // default: heads
  ffn: number;
  vocab?: number;         // default 32000 (synthetic vocab) or the --vocab-from vocabulary's size
  ctx?: number;           // default 2048
  type?: WeightType | Mixture; // default 'f32'
  seed?: number;          // default 0
  tied?: boolean;         // no output.weight: the LM head is token_embd
  vocabFrom?: string;     // copy every tokenizer.* key from this GGUF
  name?: string;          // general.name
  normEps?: number;       // default 1e-5
  ropeBase?: number;      // default 10000
  headDim?: number;       // attention.key_length (and value_length); default dim / heads
  ropeDims?: number;      // rope.dimension_count (partial rotary, as Phi-4-mini); default the head dimension
  slidingWindow?: number; // gemma2/gemma3: attention.sliding_window
  attnSoftcap?: number;   // gemma2: attn_logit_softcapping
  finalSoftcap?: number;  // gemma2: final_logit_softcapping
  alignment?: number;     // default 32
  // Injected for tests; defaults: the native quantizer and lib/gguf.ts's reader.
  quantizeRow?: QuantizeRow;
  readGguf?: (path: string) => VocabSource;
  onTensor?: (name: string, index: number, count: number) => void;
}

export interface MakeModelResult {
  path: string;
  bytes: number;        // file size
  parameters: number;   // elements over all tensors
  tensors: number;
  vocab: number;
}

// llama.cpp's llama_ftype for a file whose weights are all of one type (the _S variant for the k-quants
// that have several mixes).
const FILE_TYPE: Record<WeightType | Mixture, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 11, q4_k: 14, q5_k: 16, q6_k: 18, bf16: 32,
  q4_k_m: 15,
};

// ---------------------------------------------------------------------------------------------
// Float encodings (ggml's: round to nearest, ties to even)

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN (quiet)
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00; // overflow to inf
  if (e <= 0) {
    // Subnormal half (or zero): value = M * 2^(exp-150), half subnormal unit 2^-24.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is right (up to inf)
  return sign | h;
}

export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 64) & 0xffff; // NaN stays a quiet NaN
  return ((b + (0x7fff + ((b >>> 16) & 1))) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Weights

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// Normal-ish values from xoshiro128**: four 16-bit uniforms summed (Irwin-Hall n=4, unit variance
// after scaling), one stream per (seed, tensor name).
export class WeightStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, name: string) {
    let x = (fnv1a(name) ^ Math.imul(seed >>> 0, 0x9e3779b9) ^ Math.imul(Math.floor(seed / 0x100000000), 0x85ebca6b)) | 0;
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return z ^ (z >>> 16);
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  // out[i] = mean + std * N(0,1)-ish, for i < n.
  fill(out: Float32Array, n: number, mean: number, std: number): void {
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    // sum of four U[0,1) has mean 2 and variance 1/3.
    const k = (std * Math.sqrt(3)) / 65536;
    const c = mean - 2 * std * Math.sqrt(3);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let j = 0; j < 2; j++) {
        const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
        const t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
        acc += (r >>> 16) + (r & 0xffff);
      }
      out[i] = c + acc * k;
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

interface TensorPlan {
  name: string;
  dims: number[];      // [ne0, ne1] or [ne0]
  typeId: number;
  mean: number;
  std: number;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6;

// A SentencePiece-style vocabulary of exactly `size` tokens: <unk>, <s>, </s>, the 256 byte tokens,
// then pieces built so that every piece of length L is a piece of length L-1 plus one character (so
// llama.cpp's SPM merges can reach all of them), scored in decreasing order.
export function syntheticVocab(size: number): { tokens: string[]; scores: Float32Array; types: Int32Array } {
  if (size < 259 + 1) throw invalidArgument('vocab', `the synthetic vocabulary needs at least 260 tokens, got ${size}`);
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_BYTE);
  }
  const seen = new Set(tokens);
  const lower = 'etaoinshrdlcumwfgypbvkjxqz';
  const chars = ['▁', ...lower, ...lower.toUpperCase(), ...'0123456789.,!?\'"-:;()'];
  const add = (p: string) => {
    if (tokens.length < size && !seen.has(p)) { seen.add(p); tokens.push(p); types.push(TOKEN_NORMAL); }
  };
  for (const c of chars) add(c);
  // Grow pieces a character at a time, word starts ('▁x') and frequent letters first.
  let frontier = chars.filter((c) => /[▁a-zA-Z]/.test(c));
  const ext = [...lower];
  while (tokens.length < size) {
    const next: string[] = [];
    for (const base of frontier) {
      for (const c of ext) {
        const p = base + c;
        if (!seen.has(p)) { add(p); next.push(p); }
        if (tokens.length >= size) break;
      }
      if (tokens.length >= size) break;
    }
    if (next.length === 0) break;
    frontier = next;
  }
  const scores = new Float32Array(size);
  for (let i = 259; i < size; i++) scores[i] = -(i - 259);
  return { tokens, scores, types: Int32Array.from(types) };
}



// The tokenizer.* keys of a GGUF, each with its GGUF type, in file order.
function vocabKeys(src: VocabSource, from: string) {
  return metadataEntries(src, from, (key) => key.startsWith('tokenizer.'));
}

function defaultReadGguf(path: string): VocabSource {
  // Lazy: only --vocab-from needs the native reader.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { readGguf } = require('../lib/gguf') as { readGguf: (p: string) => VocabSource };
  return readGguf(path);
}

function defaultQuantizeRow(): QuantizeRow {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { getBinding } = require('../lib/binding') as { getBinding: () => { kernels: { quantizeRow: QuantizeRow } } };
  const k = getBinding().kernels;
  return (typeId, src) => k.quantizeRow(typeId, src);
}

// ---------------------------------------------------------------------------------------------

function posInt(name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidArgument(name, `must be an integer >= ${min}, got ${v}`);
  }
  return v;
}

// Elements per generated chunk: bounds memory (a Float32Array of this many, plus its encoding).
const CHUNK_ELEMENTS = 1 << 20;

export function makeModel(opts: MakeModelOptions): MakeModelResult {
  if (!opts || typeof opts !== 'object') throw invalidArgument('options', 'must be an object');
  const arch = opts.arch ?? 'llama';
  if (!ARCHS.includes(arch)) throw invalidArgument('arch', `must be one of ${ARCHS.join(', ')}, got ${arch}`);
  const typeName = opts.type ?? 'f32';
  if (![...WEIGHT_TYPES, ...MIXTURES].includes(typeName)) {
    throw invalidArgument('type', `must be one of ${[...WEIGHT_TYPES, ...MIXTURES].join(', ')}, got ${typeName}`);
  }
  if (typeof opts.out !== 'string' || !opts.out) throw invalidArgument('out', 'an output path is required');
  const D = posInt('dim', opts.dim);
  const L = posInt('layers', opts.layers);
  const H = posInt('heads', opts.heads);
  const KV = posInt('kvHeads', opts.kvHeads ?? H);
  const F = posInt('ffn', opts.ffn);
  const ctx = posInt('ctx', opts.ctx ?? 2048);
  const seed = posInt('seed', opts.seed ?? 0, 0);
  const normEps = opts.normEps ?? 1e-5;
  const ropeBase = opts.ropeBase ?? 10000;
  if (!(normEps > 0) || !Number.isFinite(normEps)) throw invalidArgument('normEps', `must be > 0, got ${normEps}`);
  if (!(ropeBase > 0) || !Number.isFinite(ropeBase)) throw invalidArgument('ropeBase', `must be > 0, got ${ropeBase}`);
  if (opts.headDim === undefined && D % H !== 0) throw invalidArgument('heads', `dim ${D} is not a multiple of heads ${H}`);
  if (H % KV !== 0) throw invalidArgument('kvHeads', `heads ${H} is not a multiple of kv heads ${KV}`);
  const headDim = posInt('headDim', opts.headDim ?? D / H);
  if (headDim % 2 !== 0) throw invalidArgument('heads', `head dimension ${headDim} must be even (RoPE rotates pairs)`);
  const ropeDims = posInt('ropeDims', opts.ropeDims ?? headDim);
  if (ropeDims > headDim || ropeDims % 2 !== 0) throw invalidArgument('ropeDims', `must be even and <= the head dimension ${headDim}, got ${ropeDims}`);
  const Dq = H * headDim;
  const Dkv = KV * headDim;
  const gemma = arch === 'gemma' || arch === 'gemma2' || arch === 'gemma3';
  const swa = arch === 'gemma2' || arch === 'gemma3' ? posInt('slidingWindow', opts.slidingWindow ?? (arch === 'gemma2' ? 4096 : 512)) : undefined;
  const softcaps = arch === 'gemma2' ? [opts.attnSoftcap ?? 50, opts.finalSoftcap ?? 30] : undefined;
  for (const v of softcaps ?? []) if (!(v > 0) || !Number.isFinite(v)) throw invalidArgument('softcap', `must be > 0, got ${v}`);

  // Vocabulary first: with --vocab-from it fixes V.
  let vocabKv: ReturnType<typeof vocabKeys> | undefined;
  let V: number;
  if (opts.vocabFrom) {
    const src = (opts.readGguf ?? defaultReadGguf)(opts.vocabFrom);
    vocabKv = vocabKeys(src, opts.vocabFrom);
    const tokens = src.metadata['tokenizer.ggml.tokens'];
    if (!Array.isArray(tokens) || tokens.length === 0) {
      throw new FlashdipError('ERR_GGUF_INVALID', `${opts.vocabFrom}: no tokenizer.ggml.tokens array`);
    }
    V = tokens.length;
    if (opts.vocab !== undefined && opts.vocab !== V) {
      throw invalidArgument('vocab', `${opts.vocab} does not match the ${V} tokens of ${opts.vocabFrom}`);
    }
  } else {
    V = posInt('vocab', opts.vocab ?? 32000, 260);
  }

  const mixture = typeName === 'q4_k_m';
  const baseType = ggmlType(mixture ? 'q4_k' : typeName);
  const f32 = GGML_TYPE.F32;
  const plans: TensorPlan[] = [];
  // The type of one 2-D weight: --type, or the mixture's choice for this tensor.
  const typeOf = (name: string): ReturnType<typeof ggmlType> => {
    if (!mixture) return baseType;
    const m = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(name);
    const more = name === 'output.weight' || (m !== null && useMoreBits(Number(m[1]), L));
    return more ? ggmlType('q6_k') : baseType;
  };
  const weight = (name: string, nIn: number, nOut: number, std = 1 / Math.sqrt(nIn)) => {
    const wtype = typeOf(name);
    if (nIn % wtype.blockSize !== 0) {
      throw invalidArgument('type', `${name} has rows of ${nIn} elements, not a multiple of the ${wtype.name} block size ${wtype.blockSize}`);
    }
    plans.push({ name, dims: [nIn, nOut], typeId: wtype.id, mean: 0, std });
  };
  const norm = (name: string, n: number) => plans.push({ name, dims: [n], typeId: f32, mean: 1, std: 0.05 });
  const bias = (name: string, n: number) => plans.push({ name, dims: [n], typeId: f32, mean: 0, std: 0.02 });

  // Embedding rows scaled like the other weights so that a tied LM head gives sane logits.
  weight('token_embd.weight', D, V, 1 / Math.sqrt(D));
  norm('output_norm.weight', D);
  if (!opts.tied && !gemma) weight('output.weight', D, V);
  for (let i = 0; i < L; i++) {
    const p = `blk.${i}.`;
    norm(p + 'attn_norm.weight', D);
    if (arch === 'phi3') {
      weight(p + 'attn_qkv.weight', D, Dq + 2 * Dkv);
    } else {
      weight(p + 'attn_q.weight', D, Dq);
      weight(p + 'attn_k.weight', D, Dkv);
      weight(p + 'attn_v.weight', D, Dkv);
      if (arch === 'qwen2') {
        bias(p + 'attn_q.bias', Dq);
        bias(p + 'attn_k.bias', Dkv);
        bias(p + 'attn_v.bias', Dkv);
      }
      if (arch === 'qwen3' || arch === 'gemma3') {
        norm(p + 'attn_q_norm.weight', headDim);
        norm(p + 'attn_k_norm.weight', headDim);
      }
    }
    weight(p + 'attn_output.weight', Dq, D);
    if (arch === 'gemma2' || arch === 'gemma3') norm(p + 'post_attention_norm.weight', D);
    norm(p + 'ffn_norm.weight', D);
    if (arch === 'phi3') {
      weight(p + 'ffn_up.weight', D, 2 * F);
    } else {
      weight(p + 'ffn_gate.weight', D, F);
      weight(p + 'ffn_up.weight', D, F);
    }
    weight(p + 'ffn_down.weight', F, D);
    if (arch === 'gemma2' || arch === 'gemma3') norm(p + 'post_ffw_norm.weight', D);
  }

  const needsNative = plans.some((t) => t.typeId !== GGML_TYPE.F32 && t.typeId !== GGML_TYPE.F16 && t.typeId !== GGML_TYPE.BF16);
  const quantize = needsNative ? (opts.quantizeRow ?? defaultQuantizeRow()) : undefined;

  const w = new GgufWriter(opts.out, { alignment: opts.alignment });
  try {
    w.addString('general.architecture', arch);
    w.addString('general.name', opts.name ?? `flashdip-random-${arch}-d${D}-l${L}-${typeName}`);
    w.addU32('general.alignment', w.alignment);
    w.addU32('general.file_type', FILE_TYPE[typeName]);
    w.addU32(`${arch}.context_length`, ctx);
    w.addU32(`${arch}.embedding_length`, D);
    w.addU32(`${arch}.block_count`, L);
    w.addU32(`${arch}.feed_forward_length`, F);
    w.addU32(`${arch}.attention.head_count`, H);
    w.addU32(`${arch}.attention.head_count_kv`, KV);
    w.addF32(`${arch}.attention.layer_norm_rms_epsilon`, normEps);
    w.addF32(`${arch}.rope.freq_base`, ropeBase);
    w.addU32(`${arch}.rope.dimension_count`, ropeDims);
    if (opts.headDim !== undefined) {
      w.addU32(`${arch}.attention.key_length`, headDim);
      w.addU32(`${arch}.attention.value_length`, headDim);
    }
    if (swa !== undefined) w.addU32(`${arch}.attention.sliding_window`, swa);
    if (softcaps) {
      w.addF32(`${arch}.attn_logit_softcapping`, softcaps[0]);
      w.addF32(`${arch}.final_logit_softcapping`, softcaps[1]);
    }
    if (vocabKv) {
      for (const kv of vocabKv) w.addKv(kv.key, kv.type, kv.value, kv.elem);
    } else {
      const v = syntheticVocab(V);
      w.addString('tokenizer.ggml.model', 'llama');
      w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, v.tokens);
      w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, v.scores);
      w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, v.types);
      w.addU32('tokenizer.ggml.unknown_token_id', 0);
      w.addU32('tokenizer.ggml.bos_token_id', 1);
      w.addU32('tokenizer.ggml.eos_token_id', 2);
      w.addBool('tokenizer.ggml.add_bos_token', true);
      w.addBool('tokenizer.ggml.add_eos_token', false);
    }
    for (const t of plans) w.addTensor(t.name, t.dims, t.typeId, ggmlTensorBytes(t.typeId, t.dims));
    w.writeHeader();

    const buf = new Float32Array(CHUNK_ELEMENTS);
    const half = new Uint16Array(CHUNK_ELEMENTS);
    let parameters = 0;
    plans.forEach((t, index) => {
      opts.onTensor?.(t.name, index, plans.length);
      const ne0 = t.dims[0];
      const rows = t.dims.length > 1 ? t.dims[1] : 1;
      parameters += ne0 * rows;
      const stream = new WeightStream(seed, t.name);
      // Whole rows per chunk (a row longer than a chunk gets a buffer of its own).
      const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / ne0));
      const chunk = rowsPerChunk * ne0 <= CHUNK_ELEMENTS ? buf : new Float32Array(ne0);
      const chunkHalf = rowsPerChunk * ne0 <= CHUNK_ELEMENTS ? half : new Uint16Array(ne0);
      for (let r = 0; r < rows; r += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - r) * ne0;
        const x = chunk.subarray(0, n);
        stream.fill(x, n, t.mean, t.std);
        if (t.typeId === GGML_TYPE.F32) {
          w.writeTensorData(t.name, x);
        } else if (t.typeId === GGML_TYPE.F16 || t.typeId === GGML_TYPE.BF16) {
          const h = chunkHalf.subarray(0, n);
          const enc = t.typeId === GGML_TYPE.F16 ? f32ToF16Bits : f32ToBf16Bits;
          for (let i = 0; i < n; i++) h[i] = enc(x[i]);
          w.writeTensorData(t.name, h);
        } else {
          // Blocks never straddle rows (ne0 is a multiple of the block size), so a chunk of whole
          // rows quantizes as one call.
          w.writeTensorData(t.name, quantize!(t.typeId, x));
        }
      }
    });
    const bytes = w.totalBytes;
    w.close();
    return { path: opts.out, bytes, parameters, tensors: plans.length, vocab: V };
  } catch (err) {
    w.abort();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `usage: make-model --out PATH --dim D --layers L --heads H --ffn F
       [--arch ${ARCHS.join('|')}] [--kv-heads K] [--head-dim K] [--vocab V] [--ctx C]
       [--rope-dims R] [--sliding-window W] [--attn-softcap C] [--final-softcap C] (gemma2, gemma3)
       [--type ${[...WEIGHT_TYPES, ...MIXTURES].join("|")}] [--seed S] [--tied] [--vocab-from VOCAB.gguf]
       [--name NAME] [--norm-eps E] [--rope-base B] [--alignment A] [--quiet]
Writes a random-weight GGUF (llama.cpp tensor names and metadata).`;

export function main(argv: string[] = process.argv.slice(2)): number {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        out: { type: 'string' }, arch: { type: 'string' }, dim: { type: 'string' }, layers: { type: 'string' },
        heads: { type: 'string' }, 'kv-heads': { type: 'string' }, ffn: { type: 'string' }, vocab: { type: 'string' },
        ctx: { type: 'string' }, type: { type: 'string' }, seed: { type: 'string' }, tied: { type: 'boolean' },
        'vocab-from': { type: 'string' }, name: { type: 'string' }, 'norm-eps': { type: 'string' },
        'rope-base': { type: 'string' }, alignment: { type: 'string' }, quiet: { type: 'boolean' },
        'head-dim': { type: 'string' }, 'sliding-window': { type: 'string' }, 'attn-softcap': { type: 'string' },
        'final-softcap': { type: 'string' }, 'rope-dims': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`make-model: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const num = (k: string): number | undefined => {
    const v = values[k];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw invalidArgument(`--${k}`, `not a number: ${v}`);
    return n;
  };
  const started = Date.now();
  try {
    for (const k of ['out', 'dim', 'layers', 'heads', 'ffn']) {
      if (values[k] === undefined) throw invalidArgument(`--${k}`, 'is required');
    }
    const quiet = values.quiet === true;
    const res = makeModel({
      out: values.out as string,
      arch: values.arch as Arch | undefined,
      dim: num('dim')!, layers: num('layers')!, heads: num('heads')!, kvHeads: num('kv-heads'),
      ffn: num('ffn')!, vocab: num('vocab'), ctx: num('ctx'), type: values.type as WeightType | Mixture | undefined,
      seed: num('seed'), tied: values.tied === true, vocabFrom: values['vocab-from'] as string | undefined,
      name: values.name as string | undefined, normEps: num('norm-eps'), ropeBase: num('rope-base'),
      alignment: num('alignment'), headDim: num('head-dim'), slidingWindow: num('sliding-window'),
      attnSoftcap: num('attn-softcap'), finalSoftcap: num('final-softcap'), ropeDims: num('rope-dims'),
      onTensor: quiet || !process.stderr.isTTY ? undefined : (name, i, n) => {
        process.stderr.write(`\r\x1b[K[${i + 1}/${n}] ${name}`);
      },
    });
    if (!quiet && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (!quiet) {
      const secs = (Date.now() - started) / 1000;
      process.stdout.write(`${res.path}: ${res.tensors} tensors, ${(res.parameters / 1e6).toFixed(2)}M parameters, ` +
        `vocab ${res.vocab}, ${(res.bytes / 1048576).toFixed(1)} MiB in ${secs.toFixed(1)} s\n`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`make-model: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main();
