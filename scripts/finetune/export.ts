// export: the recipe's bridge between GGUF files and PyTorch (scripts/finetune/recipe.py). GGUF is read and
// written here, with the project's own reader, writer and tokenizer; Python reads and writes plain files
// (the tensor-set format of scripts/finetune/bridge.py: tensors.json + tensors.bin, float32, ggml order).
//
//   tokenize    --vocab V.json|MODEL.gguf (--text FILE | --docs DOCS.json) --out TOKENS.i32
//               Tokenizes with flashdip's tokenizer (BOS before each document); --docs is a JSON array of
//               strings, each a document.
//   dump        --model MODEL.gguf --out DIR
//               Every tensor of the model, dequantized to float32, with its config (config in tensors.json).
//   write-model --dir DIR --out MODEL.gguf [--type f32|q8_0] [--name NAME]
//               A llama-arch GGUF from a tensor set that recipe.py's train mode wrote (config + vocab path).
//   write-adapter --dir DIR --base MODEL.gguf --out ADAPTER.gguf
//               A LoRA adapter in llama.cpp's format (general.type = adapter, adapter.type = lora,
//               adapter.lora.alpha, <base tensor>.lora_a / .lora_b) from a tensor set of lora tensors.
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { invalidArgument } from '../../lib/errors';
import { GGML_TYPE, ggmlTensorBytes } from '../../lib/ggml-types';
import { readGguf } from '../../lib/gguf';
import { GgufValueType, GgufWriter } from '../../lib/gguf-writer';
import { Tokenizer, tokenizerSpecFromMetadata } from '../../lib/tokenizer';

export interface TensorEntry { name: string; dims: number[]; offset: number }
export interface TensorSet { meta: Record<string, unknown> & { tensors: TensorEntry[] }; data: Float32Array }

export function readTensorSet(dir: string): TensorSet {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'tensors.json'), 'utf8'));
  const buf = fs.readFileSync(path.join(dir, 'tensors.bin'));
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  for (const t of meta.tensors as TensorEntry[]) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.offset + n > data.length) throw invalidArgument('dir', `${dir}: tensors.bin is truncated at ${t.name}`);
  }
  return { meta, data };
}

export function tensorOf(set: TensorSet, t: TensorEntry): Float32Array {
  return set.data.subarray(t.offset, t.offset + t.dims.reduce((a, b) => a * b, 1));
}

export function writeTensorSet(dir: string, meta: Record<string, unknown>, tensors: { name: string; dims: number[]; data: Float32Array }[]): void {
  fs.mkdirSync(dir, { recursive: true });
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const t of tensors) { entries.push({ name: t.name, dims: t.dims, offset }); offset += t.data.length; }
  const all = new Float32Array(offset);
  for (let i = 0; i < tensors.length; i++) all.set(tensors[i].data, entries[i].offset);
  fs.writeFileSync(path.join(dir, 'tensors.bin'), Buffer.from(all.buffer));
  fs.writeFileSync(path.join(dir, 'tensors.json'), JSON.stringify({ ...meta, tensors: entries }, null, 1));
}

interface Vocab { tokens: string[]; scores: number[]; types: number[] }

function readVocab(file: string): Vocab {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Vocab;
}

export function tokenizerOf(vocabOrModel: string): Tokenizer {
  if (vocabOrModel.endsWith('.json')) {
    const v = readVocab(vocabOrModel);
    return new Tokenizer({ model: 'llama', tokens: v.tokens, scores: v.scores, tokenTypes: v.types });
  }
  return new Tokenizer(tokenizerSpecFromMetadata(readGguf(vocabOrModel).metadata));
}

export function tokenize(opts: { vocab: string; text?: string; docs?: string; out: string }): number {
  const tok = tokenizerOf(opts.vocab);
  let docs: string[];
  if (opts.docs) docs = JSON.parse(fs.readFileSync(opts.docs, 'utf8')) as string[];
  else if (opts.text) docs = [fs.readFileSync(opts.text, 'utf8')];
  else throw invalidArgument('--text/--docs', 'one is required');
  const ids: number[] = [];
  for (const d of docs) for (const id of tok.encode(d)) ids.push(id); // encode adds the BOS
  fs.writeFileSync(opts.out, Buffer.from(Int32Array.from(ids).buffer));
  return ids.length;
}

// Dequantized float32 of every tensor, through the native reader's dequantizer.
export function dump(opts: { model: string; out: string }): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { dequantizeTensor } = require('./dequantize') as typeof import('./dequantize');
  const g = readGguf(opts.model);
  const m = g.metadata;
  const arch = m['general.architecture'];
  if (arch !== 'llama') throw invalidArgument('model', `${opts.model}: the recipe handles llama-arch models, not ${String(arch)}`);
  const num = (k: string, d?: number): number => {
    const v = m[`${arch}.${k}`];
    if (v === undefined) { if (d === undefined) throw invalidArgument('model', `${opts.model}: no ${arch}.${k}`); return d; }
    return Number(v);
  };
  const tensors = g.tensors.map((t) => ({ name: t.name, dims: [...t.dims], data: dequantizeTensor(opts.model, g, t.name) }));
  const dim = num('embedding_length');
  const heads = num('attention.head_count');
  const config = {
    dim, layers: num('block_count'), heads, kv_heads: num('attention.head_count_kv', heads), ffn: num('feed_forward_length'),
    vocab: (m['tokenizer.ggml.tokens'] as unknown[]).length, ctx: num('context_length', 2048),
    norm_eps: num('attention.layer_norm_rms_epsilon', 1e-5), rope_base: num('rope.freq_base', 10000),
    tied: !g.tensors.some((t) => t.name === 'output.weight'),
  };
  if (num('rope.dimension_count', dim / heads) !== dim / heads) throw invalidArgument('model', 'partial RoPE is not handled by the recipe');
  writeTensorSet(opts.out, { config, base: path.resolve(opts.model) }, tensors);
}

const FILE_TYPE: Record<string, number> = { f32: 0, q8_0: 7 };

export function writeModel(opts: { dir: string; out: string; type?: string; name?: string }): void {
  const set = readTensorSet(opts.dir);
  const c = set.meta.config as Record<string, number | boolean>;
  const vocab = readVocab(set.meta.vocab as string);
  const typeName = opts.type ?? 'f32';
  const wtype = typeName === 'q8_0' ? GGML_TYPE.Q8_0 : typeName === 'f32' ? GGML_TYPE.F32 : -1;
  if (wtype < 0) throw invalidArgument('type', `must be f32 or q8_0, got ${typeName}`);
  const arch = 'llama';
  const tmp = `${opts.out}.tmp-${process.pid}`;
  const w = new GgufWriter(tmp);
  let quantize: ((src: Float32Array) => Uint8Array) | undefined;
  if (wtype === GGML_TYPE.Q8_0) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { getBinding } = require('../../lib/binding') as typeof import('../../lib/binding');
    const k = getBinding().kernels;
    quantize = (src) => k.quantizeRow(wtype, src);
  }
  try {
    w.addString('general.architecture', arch);
    w.addString('general.name', opts.name ?? 'flashdip-demo');
    w.addU32('general.file_type', FILE_TYPE[typeName]);
    w.addU32(`${arch}.context_length`, c.ctx as number);
    w.addU32(`${arch}.embedding_length`, c.dim as number);
    w.addU32(`${arch}.block_count`, c.layers as number);
    w.addU32(`${arch}.feed_forward_length`, c.ffn as number);
    w.addU32(`${arch}.attention.head_count`, c.heads as number);
    w.addU32(`${arch}.attention.head_count_kv`, c.kv_heads as number);
    w.addF32(`${arch}.attention.layer_norm_rms_epsilon`, c.norm_eps as number);
    w.addF32(`${arch}.rope.freq_base`, c.rope_base as number);
    w.addU32(`${arch}.rope.dimension_count`, (c.dim as number) / (c.heads as number));
    w.addString('tokenizer.ggml.model', 'llama');
    w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, vocab.tokens);
    w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, Float32Array.from(vocab.scores));
    w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, Int32Array.from(vocab.types));
    w.addU32('tokenizer.ggml.unknown_token_id', 0);
    w.addU32('tokenizer.ggml.bos_token_id', 1);
    w.addU32('tokenizer.ggml.eos_token_id', 2);
    w.addBool('tokenizer.ggml.add_bos_token', true);
    w.addBool('tokenizer.ggml.add_eos_token', false);
    const typeOf = (t: TensorEntry) => (t.dims.length === 2 && quantize ? wtype : GGML_TYPE.F32);
    for (const t of set.meta.tensors) w.addTensor(t.name, t.dims, typeOf(t), ggmlTensorBytes(typeOf(t), t.dims));
    w.writeHeader();
    for (const t of set.meta.tensors) {
      const x = tensorOf(set, t);
      w.writeTensorData(t.name, typeOf(t) === GGML_TYPE.F32 ? x : quantize!(x));
    }
    w.close();
    fs.renameSync(tmp, opts.out);
  } catch (err) {
    w.abort();
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeAdapter(opts: { dir: string; base: string; out: string }): void {
  const set = readTensorSet(opts.dir);
  const base = readGguf(opts.base);
  const arch = base.metadata['general.architecture'];
  if (typeof arch !== 'string') throw invalidArgument('base', `${opts.base} has no general.architecture`);
  const alpha = Number(set.meta.alpha);
  if (!Number.isFinite(alpha)) throw invalidArgument('dir', `${opts.dir}: tensors.json has no alpha`);
  const tmp = `${opts.out}.tmp-${process.pid}`;
  const w = new GgufWriter(tmp);
  try {
    w.addString('general.architecture', arch);
    w.addString('general.type', 'adapter');
    w.addString('adapter.type', 'lora');
    w.addF32('adapter.lora.alpha', alpha);
    for (const t of set.meta.tensors) w.addTensor(t.name, t.dims, GGML_TYPE.F32, ggmlTensorBytes(GGML_TYPE.F32, t.dims));
    w.writeHeader();
    for (const t of set.meta.tensors) w.writeTensorData(t.name, tensorOf(set, t));
    w.close();
    fs.renameSync(tmp, opts.out);
  } catch (err) {
    w.abort();
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

const USAGE = `usage: export.ts tokenize --vocab V.json|MODEL.gguf (--text FILE | --docs DOCS.json) --out TOKENS.i32
       export.ts dump --model MODEL.gguf --out DIR
       export.ts write-model --dir DIR --out MODEL.gguf [--type f32|q8_0] [--name NAME]
       export.ts write-adapter --dir DIR --base MODEL.gguf --out ADAPTER.gguf`;

export function main(argv: string[] = process.argv.slice(2)): number {
  const [cmd, ...rest] = argv;
  try {
    const { values: v } = parseArgs({
      args: rest, strict: true,
      options: {
        vocab: { type: 'string' }, text: { type: 'string' }, docs: { type: 'string' }, out: { type: 'string' },
        model: { type: 'string' }, dir: { type: 'string' }, type: { type: 'string' }, name: { type: 'string' },
        base: { type: 'string' },
      },
    });
    const need = (k: keyof typeof v): string => {
      const x = v[k];
      if (typeof x !== 'string') throw invalidArgument(`--${k}`, 'is required');
      return x;
    };
    if (cmd === 'tokenize') {
      const n = tokenize({ vocab: need('vocab'), text: v.text, docs: v.docs, out: need('out') });
      process.stdout.write(`${v.out}: ${n} tokens\n`);
    } else if (cmd === 'dump') dump({ model: need('model'), out: need('out') });
    else if (cmd === 'write-model') writeModel({ dir: need('dir'), out: need('out'), type: v.type, name: v.name });
    else if (cmd === 'write-adapter') writeAdapter({ dir: need('dir'), base: need('base'), out: need('out') });
    else { process.stderr.write(USAGE + '\n'); return 2; }
    return 0;
  } catch (err) {
    process.stderr.write(`export: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main();
