// The re-quantization of `flashdip convert` along the other axis, measured (issue 11): k-quant models
// (stories260K padded to 256, and random weights with a real tokenizer) converted with --type keep,
// with same-family rows, and with the types the old 'keep' chose (q4_k -> q4_0, q5_k and q6_k -> q8_0);
// per converted matrix the relative error against the dequantized source, and the perplexity of every
// file on a TinyStories excerpt.
//   npx ts-node --transpile-only bench/convert-requant.ts [--tokens N] [--json]
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { loadModel, perplexity, readGguf } from '../lib';
import { convert, ConvertResult } from '../lib/convert';
import { GGML_TYPE, ggmlType } from '../lib/ggml-types';
import { quantizeRow } from '../lib/kernels';
import { makeModel } from '../scripts/make-model';
import { GgufValueType, GgufWriter, metadataEntries } from '../lib/gguf-writer';

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.join(ROOT, '..', 'shared', 'data');
const VOCAB = path.join(SHARED, 'tokenizer', 'vocab', 'ggml-vocab-llama-spm.gguf');
const TEXT = path.join(SHARED, 'text', 'tinystories-sample.txt');

export interface RequantCase {
  source: 'q4_k' | 'q5_k' | 'q6_k';
  dim: number;
  ffn: number;
  layers: number;
}

const MLP = /^blk\.\d+\.ffn_(gate|up|down)\.weight$/;

// stories260K (dim 64, FFN 172) holds no k-quant: a q4_k tensor needs rows (ne0) of a multiple of 256
// values and every one of its matrices has rows of 64 or 172. This pads it, exactly, to dim 256 and
// FFN 256: zero columns and rows around every matrix, key_length 8 (the head width it had), the RMS
// norms' weights halved and epsilon quartered (the mean of x^2 over 256 values is a quarter of the one
// over the 64 non-zero ones, so each norm gives the same output; powers of two, so bit for bit in
// exact arithmetic). Its MLP matrices are then quantized to `type` (the rest stays f32).
export function padStories(stories: string, out: string, type: string): void {
  const h = readGguf(stories);
  const D = 64, F = 172, P = 256;
  const fd = fs.openSync(stories, 'r');
  const f32 = (name: string) => {
    const t = h.tensors.find((u) => u.name === name)!;
    const raw = Buffer.alloc(t.bytes);
    fs.readSync(fd, raw, 0, t.bytes, h.dataOffset + t.offset);
    return new Float32Array(raw.buffer, raw.byteOffset, t.bytes / 4);
  };
  // [rows][cols] (ne = [cols, rows]) zero-padded to [R][C]
  const pad = (a: Float32Array, cols: number, rows: number, C: number, R: number) => {
    const o = new Float32Array(C * R);
    for (let r = 0; r < rows; r++) o.set(a.subarray(r * cols, (r + 1) * cols), r * C);
    return o;
  };
  const tensors: { name: string; dims: number[]; type: number; data: Uint8Array }[] = [];
  const qt = ggmlType(type);
  for (const t of h.tensors) {
    let dims = t.dims, v = f32(t.name);
    if (t.dims.length === 1) {  // norms
      v = pad(v.map((x) => x / 2), D, 1, P, 1);
      dims = [P];
    } else {
      const [c, r] = t.dims;
      const C = c === D || c === F ? P : c, R = r === D || r === F ? P : r;
      // attn_q/k/v keep their outputs (heads x 8) and attn_output its inputs; the vocab stays
      const keepR = /attn_(q|k|v)\./.test(t.name) ? r : R, keepC = /attn_output\./.test(t.name) ? c : C;
      v = pad(v, c, r, keepC, keepR);
      dims = [keepC, keepR];
    }
    const quantize = MLP.test(t.name) && qt.id !== GGML_TYPE.F32;
    tensors.push({ name: t.name, dims, type: quantize ? qt.id : GGML_TYPE.F32, data: quantize ? quantizeRow(qt.id, v) : new Uint8Array(v.buffer) });
  }
  fs.closeSync(fd);
  const w = new GgufWriter(out, { alignment: h.alignment });
  const meta: Record<string, number> = { 'llama.embedding_length': P, 'llama.feed_forward_length': P };
  for (const e of metadataEntries(h, stories, (k) => !(k in meta) && k !== 'general.alignment' && k !== 'llama.attention.layer_norm_rms_epsilon'))
    w.addKv(e.key, e.type, e.value, e.elem);
  for (const [k, v] of Object.entries(meta)) w.addKv(k, GgufValueType.UINT32, v);
  w.addKv('llama.attention.key_length', GgufValueType.UINT32, 8);
  w.addKv('llama.attention.value_length', GgufValueType.UINT32, 8);
  w.addKv('llama.attention.layer_norm_rms_epsilon', GgufValueType.FLOAT32, Number(h.metadata['llama.attention.layer_norm_rms_epsilon']) / 4);
  for (const t of tensors) w.addTensor(t.name, t.dims, t.type);
  w.writeHeader();
  for (const t of tensors) w.writeTensorData(t.name, t.data);
  w.close();
}

/** Makes the random-weight source model of a case; returns its path. */
export function makeCase(c: RequantCase, dir: string, seed = 7): string {
  const base = path.join(dir, `${c.source}-${c.dim}x${c.ffn}.gguf`);
  makeModel({ out: base, arch: 'llama', dim: c.dim, layers: c.layers, heads: c.dim / 64, kvHeads: c.dim / 128, ffn: c.ffn, ctx: 512,
    type: c.source, seed, tied: true, vocabFrom: VOCAB });
  return base;
}

export async function ppl(file: string, text: string, tokens: number, ctx = 128): Promise<number> {
  const m = await loadModel(file);
  try {
    return (await perplexity(m, text, { ctx, maxTokens: tokens, kvCacheType: 'f32' })).ppl;
  } finally {
    await m.dispose();
  }
}

const STORIES = path.join(SHARED, 'models', 'stories260K.gguf');
// --type keep, then the same-family rows where keep chose otherwise, and what keep chose before (q4_0, q8_0).
const TYPES: Record<string, string[]> = { q4_k: ['keep', 'q4_k', 'q6_k', 'q4_0'], q5_k: ['keep', 'q8_0'], q6_k: ['keep', 'q8_0'] };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { tokens: { type: 'string' }, json: { type: 'boolean' } } });
  const tokens = Number(values.tokens ?? 2000);
  const text = fs.readFileSync(TEXT, 'utf8').slice(0, 60000);
  fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(ROOT, '.tmp', 'requant-'));  // .tmp: ignored by git
  const rows: Record<string, unknown>[] = [];
  const measure = async (model: string, source: string, src: string, ctx: number) => {
    const p0 = await ppl(src, text, tokens, ctx);
    for (const type of TYPES[source]) {
      const out = path.join(dir, `${source}-${type}.dip.gguf`);
      const r: ConvertResult = await convert(src, out, { type });
      const p1 = await ppl(out, text, tokens, ctx);
      const errs = r.tensors.map((t) => t.relError);
      rows.push({
        model, source, type, rowTypes: [...new Set(r.tensors.map((t) => t.rowType))].join('/'),
        relErrorMean: errs.reduce((a, b) => a + b, 0) / errs.length, relErrorMax: Math.max(...errs),
        pplSource: p0, pplConverted: p1, pplChange: p1 / p0 - 1, outMiB: r.outputBytes / 2 ** 20,
      });
      fs.rmSync(out);
    }
  };
  try {
    for (const source of ['q4_k', 'q5_k', 'q6_k'] as const) {
      // stories260K padded to 256 (see padStories), MLP in the k-quant
      const src = path.join(dir, `stories-${source}.gguf`);
      padStories(STORIES, src, source);
      await measure('stories260K padded to 256', source, src, 256);
    }
    for (const source of ['q4_k', 'q5_k', 'q6_k'] as const) {
      const c: RequantCase = { source, dim: 512, ffn: 1536, layers: 4 };
      const src = makeCase(c, dir);
      await measure(`random ${c.dim}/${c.ffn}x${c.layers}, llama-spm vocab`, source, src, 128);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) return void process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  process.stdout.write(`| model | source | --type | rows | rel. error mean / max | ppl unconverted | ppl converted | change |\n|---|---|---|---|---|---|---|---|\n`);
  for (const r of rows as any[])
    process.stdout.write(`| ${r.model} | ${r.source} | ${r.type} | ${r.rowTypes} | ${r.relErrorMean.toFixed(4)} / ${r.relErrorMax.toFixed(4)} | ${r.pplSource.toFixed(4)} | ` +
      `${r.pplConverted.toFixed(4)} | ${(100 * r.pplChange).toFixed(2)}% |\n`);
}

if (require.main === module) main().catch((e) => { console.error(e); process.exit(1); });
