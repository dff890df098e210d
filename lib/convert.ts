// flashdip convert: repacks a GGUF into the input-major DIP layout (DESIGN.md). For every layer the
// MLP becomes two tensors of rows, one row per input column, quantized along the output dimension:
//   blk.N.ffn_gate_up.dip.weight  ne = [2F, d]: row j = [W_gate[:, j] (F values), W_up[:, j] (F values)]
//   blk.N.ffn_down.dip.weight     ne = [d, F]:  row i = W_down[:, i]
// so a DIP mask over x (or h) selects whole contiguous rows. Attention is stored so too (layout
// version 2; `attention: false` keeps it as it was, version 1), for DIP on attention inputs:
//   blk.N.attn_qkv.dip.weight     ne = [q + 2kv, d]: row j = [W_q[:, j], W_k[:, j], W_v[:, j]] (phi3: W_qkv[:, j])
//   blk.N.attn_output.dip.weight  ne = [d, q]:       row i = W_o[:, i]
// (biases, q/k norms and everything else copied unchanged). The metadata gains `flashdip.layout` =
// 'dip-input-major' and `flashdip.layout_version` (1 or 2), and tensor data starts on
// `alignment`-byte boundaries (default 4096: page-aligned for large reads).
// It never loses data: the output is written to a temporary file beside it and renamed over it when
// complete (the input and an existing output stay whole whatever fails), an output that is the input
// or that exists without `force` is refused, and every dimension is checked against the tensors first.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { GgufHeader, GgufTensorInfo } from './binding';
import { FlashdipError, invalidArgument } from './errors';
import { findGgmlType, GgmlType, ggmlType, ggmlTypes } from './ggml-types';
import { GgufWriter, metadataEntries } from './gguf-writer';
import { readGguf } from './gguf';
import { dequantizeRow, quantizeRow } from './kernels';
import { checkEnum, checkInt, checkKeys, checkObject, checkProgress } from './options';

/** 'keep' (each tensor's own family and bits, see keepTypes), or a row type: a type with gather kernels
 * that convert can write (convertTypes() lists them; kernels.types(): gatherRows and canQuantize). */
export type ConvertType = string;

/** 'keep' and every row type (from the native type traits and the kernel registry: no list to keep). */
export function convertTypes(): string[] {
  return ['keep', ...ggmlTypes().filter((t) => t.gatherRows && t.canQuantize).map((t) => t.name)];
}

export interface ConvertOptions {
  type?: ConvertType;
  /** Alignment of tensor data in bytes (a power of two; default 4096). */
  alignment?: number;
  /** Replace an existing output file (default false: an existing output is refused). */
  force?: boolean;
  /** Stops the conversion with ERR_ABORTED; the output path is left as it was. */
  signal?: AbortSignal;
  /** Called after each tensor with (done, total) bytes written. */
  onProgress?: (done: number, total: number, tensor: string) => void;
  /**
   * Store attention input-major too (layout version 2, default true), so attention DIP reads only
   * the kept columns through the column store; false writes layout version 1 (MLP only).
   */
  attention?: boolean;
}
const OPTION_KEYS = ['type', 'alignment', 'force', 'signal', 'onProgress', 'attention'];

/** What convert did with one DIP tensor. */
export interface ConvertedTensor {
  name: string;          // 'blk.0.ffn_gate_up.dip.weight'
  sources: string[];     // the source tensors ('blk.0.ffn_gate.weight', 'blk.0.ffn_up.weight')
  sourceType: string;    // the source type the row type was chosen for ('q4_k'; of gate and up, the finer)
  rowType: string;       // the type of the rows written
  rows: number;          // rows (inputs)
  rowLength: number;     // values per row (outputs)
  /** Why rowType is not the type --type asked for (with 'keep': the type keeping the source's family and bits). */
  fallback?: string;
  /** Relative error of the rows against the dequantized source: ||W' - W||_F / ||W||_F (0 for an all-zero W). */
  relError: number;
}

export interface ConvertResult {
  input: string;
  output: string;
  layers: number;
  /** The row type of the last layer's gate/up rows (every tensor's is in `tensors`). */
  mlpType: string;
  /** Attention stored input-major (layout version 2). */
  attention: boolean;
  tensors: ConvertedTensor[];
  inputBytes: number;
  outputBytes: number;
  seconds: number;
}

export const DIP_LAYOUT = 'dip-input-major';
const MLP = /^blk\.(\d+)\.ffn_(gate|up|down)\.weight$/;
const ATTN = /^blk\.(\d+)\.attn_(q|k|v|qkv|output)\.weight$/;

// --type keep: per source type, the row types in order of preference. The first keeps the family and
// the bits where a gather kernel exists; the next ones are fallbacks for rows whose length is no
// multiple of the first's block (the k-quants' super-blocks are 256 values; q4_0/q8_0 blocks 32);
// f16 takes any length. A type without gather kernels in this build (kernels.types()) is skipped.
//   q4_k, q4_1 -> q5_k: re-quantizing 4-bit values along the other axis into 4 bits again adds about
//     the source's own error (relative error 0.074 on top of it): +4.8% perplexity on stories260K padded
//     to 256 (bench/RESULTS.md), against +1.5% with q5_k rows (+22% MLP bytes) and +7.9% with the old
//     q4_0. `--type q4_k` gives same-size rows. Without 256-long rows: q8_0 (q4_0 would cost +7.9%).
//   q2_k, q3_k -> q4_k (no 2/3-bit rows; 4 bits add little to their own larger error), else q4_0.
//   q5_0, q5_1 -> q5_k, or q6_k: 5-bit sources stay at 5 bits; without 256-long rows, q8_0.
//   bf16 -> f16 (no bf16 rows); other types (i-quants, ...) -> q8_0, which keeps up to 8 bits.
const KEEP: Record<string, string[]> = {
  f32: ['f32'], f16: ['f16'], bf16: ['f16'],
  q8_0: ['q8_0', 'f16'], q4_0: ['q4_0', 'f16'],
  q4_k: ['q5_k', 'q6_k', 'q8_0', 'f16'], q4_1: ['q5_k', 'q6_k', 'q8_0', 'f16'],
  q2_k: ['q4_k', 'q4_0', 'f16'], q3_k: ['q4_k', 'q4_0', 'f16'],
  q5_k: ['q5_k', 'q6_k', 'q8_0', 'f16'], q5_0: ['q5_k', 'q6_k', 'q8_0', 'f16'], q5_1: ['q5_k', 'q6_k', 'q8_0', 'f16'],
  q6_k: ['q6_k', 'q8_0', 'f16'],
};

// The row type for rows of n values of a source of type src, and why it is not the preferred one.
function rowType(src: number, want: ConvertType, n: number, rows: string): { type: number; fallback?: string } {
  const usable = (name: string) => {
    const t = findGgmlType(name);
    return t !== undefined && t.gatherRows && t.canQuantize ? t : undefined;
  };
  const fits = (t: GgmlType) => n % t.blockSize === 0;
  if (want !== 'keep') {
    const t = ggmlType(want);
    if (!fits(t)) throw invalidArgument('type', `${t.name} rows need a multiple of ${t.blockSize} outputs, ${rows} has ${n}${rows.includes('attn_') ? ' (--mlp-only leaves attention as it is)' : ''}`);
    return { type: t.id };
  }
  const prefs = (KEEP[ggmlType(src).name] ?? ['q8_0', 'f16']).map(usable).filter((t): t is GgmlType => t !== undefined);
  const t = prefs.find(fits)!;  // f16 fits any length
  return t === prefs[0] ? { type: t.id } : { type: t.id, fallback: `${prefs[0].name} rows need a multiple of ${prefs[0].blockSize} values, these have ${n}` };
}

// A file system call whose failure is ERR_IO naming what was being done.
function io<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new FlashdipError('ERR_IO', `cannot ${what}: ${(err as Error).message}`, { cause: err });
  }
}

function readTensor(fd: number, header: GgufHeader, t: GgufTensorInfo): Uint8Array {
  const buf = new Uint8Array(t.bytes);
  let done = 0;
  while (done < t.bytes) {
    const n = io(`read ${t.name}`, () => fs.readSync(fd, buf, done, t.bytes - done, header.dataOffset + t.offset + done));
    if (n <= 0) throw new FlashdipError('ERR_GGUF_TRUNCATED', `tensor ${t.name} ends early`);
    done += n;
  }
  return buf;
}

// Whether the native row converter reads `type` (it refuses the rest with an error): asked of it, so
// that types.cc stays the only list.
function canDequantize(type: number): boolean {
  const t = ggmlType(type);
  try {
    dequantizeRow(type, new Uint8Array(t.blockBytes), t.blockSize);
    return true;
  } catch {
    return false;
  }
}

// [rows][cols] f32 of a tensor with ne = [cols, rows].
function dequantize(fd: number, header: GgufHeader, t: GgufTensorInfo): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  return dequantizeRow(t.type, readTensor(fd, header, t), n);
}

export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const o = checkObject('options', options);
  checkKeys('options', o, OPTION_KEYS);
  const type = checkEnum('type', o.type, convertTypes(), 'keep');
  const alignment = checkInt('alignment', o.alignment, 32, 1 << 20, 4096);
  if ((alignment & (alignment - 1)) !== 0) throw invalidArgument('alignment', 'must be a power of two between 32 and 1 MiB');
  if (o.force !== undefined && typeof o.force !== 'boolean') throw invalidArgument('force', 'must be a boolean');
  if (o.attention !== undefined && typeof o.attention !== 'boolean') throw invalidArgument('attention', 'must be a boolean');
  const attention = o.attention !== false;
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgument('signal', 'must be an AbortSignal');
  const signal = options.signal;
  const onProgress = checkProgress('onProgress', options.onProgress) as ConvertOptions['onProgress'];
  const t0 = performance.now();
  const header = readGguf(input);
  const target = outputTarget(input, output, options.force === true);
  const arch = header.metadata['general.architecture'];
  if (header.metadata['flashdip.layout'] === DIP_LAYOUT)
    throw new FlashdipError('ERR_MODEL_INVALID', `${input} is already in the DIP layout; convert the original GGUF instead`);
  // Every architecture the engine runs has a gated MLP of ffn_gate/ffn_up/ffn_down (phi3: fused
  // ffn_up); its activation (SwiGLU or GeGLU) does not change the layout.
  if (!['llama', 'qwen2', 'qwen3', 'phi3', 'gemma', 'gemma2', 'gemma3'].includes(String(arch)))
    throw new FlashdipError('ERR_UNSUPPORTED_ARCH', `${input}: architecture '${String(arch)}' is not supported`);
  const { dim: d, ffn: F, layers } = checkShapes(input, header, String(arch));
  const qDim = attention ? checkAttentionShapes(input, header, String(arch), d, layers) : 0;
  const byName = new Map(header.tensors.map((t) => [t.name, t]));

  // Plan: every non-MLP tensor as is, then two DIP tensors per layer.
  interface Out { name: string; dims: number[]; type: number; make: () => Uint8Array }
  const outs: Out[] = [];
  const report: ConvertedTensor[] = [];
  let mlpType = -1;
  for (const t of header.tensors) {
    if (MLP.test(t.name) || (attention && ATTN.test(t.name))) continue;
    outs.push({ name: t.name, dims: t.dims, type: t.type, make: () => readTensor(fd, header, t) });
  }
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    const down = byName.get(`${p}ffn_down.weight`)!;
    const fused = arch === 'phi3' ? byName.get(`${p}ffn_up.weight`)! : undefined;
    const gate = byName.get(`${p}ffn_gate.weight`), up = byName.get(`${p}ffn_up.weight`);
    const src = fused ?? gate!;
    for (const t of fused ? [fused, down] : [gate!, up!, down])
      if (!canDequantize(t.type))
        throw new FlashdipError('ERR_UNSUPPORTED_TYPE', `${input}: tensor ${t.name} has type ${ggmlType(t.type).name}, which convert cannot read`);
    // Rows of 2F (gate and up) and of d (down) values must be whole blocks of their type: with 'keep' a
    // type that does not fit falls back (rowType), a type the caller asked for is an argument error.
    // Gate and up of different types (some mixes do that) give rows for the finer of the two.
    const ugSrc = fused ?? finer([gate!, up!]);
    const ug = rowType(ugSrc.type, type, 2 * F, `${p}ffn_gate_up.dip.weight`), dn = rowType(down.type, type, d, `${p}ffn_down.dip.weight`);
    const ugType = ug.type, downType = dn.type;
    mlpType = ugType;
    const ugInfo: ConvertedTensor = {
      name: `${p}ffn_gate_up.dip.weight`, sources: (fused ? [fused] : [gate!, up!]).map((t) => t.name), sourceType: ggmlType(ugSrc.type).name,
      rowType: ggmlType(ugType).name, rows: d, rowLength: 2 * F, ...(ug.fallback ? { fallback: ug.fallback } : {}), relError: 0,
    };
    const dnInfo: ConvertedTensor = {
      name: `${p}ffn_down.dip.weight`, sources: [down.name], sourceType: ggmlType(down.type).name,
      rowType: ggmlType(downType).name, rows: F, rowLength: d, ...(dn.fallback ? { fallback: dn.fallback } : {}), relError: 0,
    };
    report.push(ugInfo, dnInfo);
    outs.push({
      name: ugInfo.name, dims: [2 * F, d], type: ugType,
      make: () => {
        // W_gate and W_up are [F rows][d]; row j of the result is column j of both.
        const g = fused ? dequantize(fd, header, fused) : dequantize(fd, header, gate!);
        const u = fused ? g.subarray(F * d) : dequantize(fd, header, up!);
        return transposeRows([g.subarray(0, F * d), u], d, ugType, ugInfo);
      },
    });
    outs.push({
      name: dnInfo.name, dims: [d, F], type: downType,
      make: () => transposeRows([dequantize(fd, header, down)], F, downType, dnInfo),
    });
    if (!attention) continue;
    // Attention: q, k and v (phi3: the fused qkv) bundled per input column, and W_o.
    const qkvSrc = arch === 'phi3' ? [byName.get(`${p}attn_qkv.weight`)!]
      : [byName.get(`${p}attn_q.weight`)!, byName.get(`${p}attn_k.weight`)!, byName.get(`${p}attn_v.weight`)!];
    const wo = byName.get(`${p}attn_output.weight`)!;
    for (const t of [...qkvSrc, wo])
      if (!canDequantize(t.type))
        throw new FlashdipError('ERR_UNSUPPORTED_TYPE', `${input}: tensor ${t.name} has type ${ggmlType(t.type).name}, which convert cannot read`);
    const qkvOut = qkvSrc.reduce((a, t) => a + t.dims[1], 0);
    const qkvFrom = finer(qkvSrc);
    const qkv = rowType(qkvFrom.type, type, qkvOut, `${p}attn_qkv.dip.weight`), o = rowType(wo.type, type, d, `${p}attn_output.dip.weight`);
    const qkvInfo: ConvertedTensor = {
      name: `${p}attn_qkv.dip.weight`, sources: qkvSrc.map((t) => t.name), sourceType: ggmlType(qkvFrom.type).name,
      rowType: ggmlType(qkv.type).name, rows: d, rowLength: qkvOut, ...(qkv.fallback ? { fallback: qkv.fallback } : {}), relError: 0,
    };
    const oInfo: ConvertedTensor = {
      name: `${p}attn_output.dip.weight`, sources: [wo.name], sourceType: ggmlType(wo.type).name,
      rowType: ggmlType(o.type).name, rows: qDim, rowLength: d, ...(o.fallback ? { fallback: o.fallback } : {}), relError: 0,
    };
    report.push(qkvInfo, oInfo);
    outs.push({
      name: qkvInfo.name, dims: [qkvOut, d], type: qkv.type,
      make: () => transposeRows(qkvSrc.map((t) => dequantize(fd, header, t)), d, qkv.type, qkvInfo),
    });
    outs.push({
      name: oInfo.name, dims: [d, qDim], type: o.type,
      make: () => transposeRows([dequantize(fd, header, wo)], qDim, o.type, oInfo),
    });
  }

  // Written to a temporary file beside the output and renamed over it at the end: the input and any
  // existing output stay whole until the new file is complete and on the device.
  const fd = io(`open ${input}`, () => fs.openSync(input, 'r'));
  let w: GgufWriter | undefined;
  try {
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
    w = new GgufWriter(tmp, { alignment, exclusive: true, sync: true });
    const sizes = declare(w, header, input, outs, attention ? 2 : 1);
    const total = sizes.reduce((a, b) => a + b, 0);
    w.writeHeader();
    let done = 0;
    for (let i = 0; i < outs.length; i++) {
      if (signal?.aborted) throw new FlashdipError('ERR_ABORTED', 'convert was aborted', { cause: signal.reason });
      w.writeTensorData(outs[i].name, outs[i].make());
      done += sizes[i];
      onProgress?.(done, total, outs[i].name);
      await new Promise((r) => setImmediate(r));  // keep the event loop (and a progress bar) alive
    }
    if (signal?.aborted) throw new FlashdipError('ERR_ABORTED', 'convert was aborted', { cause: signal.reason });
    w.close();
    io(`rename ${tmp} to ${target}`, () => fs.renameSync(tmp, target));
    w = undefined;
    syncDir(path.dirname(target));
  } catch (err) {
    w?.abort();  // removes the temporary file, only it
    throw err;
  } finally {
    fs.closeSync(fd);
  }
  return {
    input, output, layers, mlpType: ggmlType(mlpType).name, attention, tensors: report,
    inputBytes: header.fileSize, outputBytes: io(`stat ${target}`, () => fs.statSync(target)).size, seconds: (performance.now() - t0) / 1000,
  };
}

// Declares the output's metadata and tensors. Every name and value comes from the input, so one the
// writer refuses (an empty key, a tensor name of 64 bytes or more) is a problem of the file.
function declare(w: GgufWriter, header: GgufHeader, input: string, outs: { name: string; dims: number[]; type: number }[],
  version: number): number[] {
  try {
    for (const e of metadataEntries(header, input, (k) => k !== 'general.alignment' && !k.startsWith('flashdip.')))
      w.addKv(e.key, e.type, e.value, e.elem);
    w.addString('flashdip.layout', DIP_LAYOUT);
    w.addU32('flashdip.layout_version', version);
    return outs.map((o) => w.addTensor(o.name, o.dims, o.type).byteLength);
  } catch (err) {
    if (err instanceof FlashdipError && err.code === 'ERR_INVALID_ARGUMENT')
      throw new FlashdipError('ERR_MODEL_INVALID', `${input}: cannot be written as GGUF: ${err.message}`, { cause: err });
    throw err;
  }
}

function statOrUndefined(file: string, follow: boolean): fs.Stats | undefined {
  try {
    return follow ? fs.statSync(file) : fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FlashdipError('ERR_IO', `cannot stat ${file}: ${(err as Error).message}`, { cause: err });
  }
}

// The file the converted model replaces: `output`, or the file it links to. Refused when it is the
// input (same path, a symbolic or a hard link: the same device and inode) or, without `force`, when
// it exists.
function outputTarget(input: string, output: string, force: boolean): string {
  const link = statOrUndefined(output, false);
  if (!link) {
    // Fail before the work, not when the temporary file beside OUT cannot be created.
    const dir = path.dirname(path.resolve(output));
    if (!statOrUndefined(dir, true)?.isDirectory())
      throw new FlashdipError('ERR_IO', `cannot write ${output}: the folder ${dir} does not exist`);
    return path.resolve(output);
  }
  const st = statOrUndefined(output, true);
  if (!st) {  // a dangling symbolic link: replaced itself
    if (!force) throw invalidArgument('output', `${output} exists (a broken symbolic link); pass --force (force: true) to replace it`);
    return path.resolve(output);
  }
  const inSt = io(`stat ${input}`, () => fs.statSync(input));
  const target = io(`resolve ${output}`, () => fs.realpathSync(output));
  if (target === io(`resolve ${input}`, () => fs.realpathSync(input)) || (st.dev === inSt.dev && st.ino === inSt.ino))
    throw invalidArgument('output', `${output} is the input ${input} (the same file); write the converted model to another path`);
  if (st.isDirectory()) throw invalidArgument('output', `${output} is a directory; give the path of the file to write`);
  if (!force) throw invalidArgument('output', `${output} exists; pass --force (force: true) to replace it`);
  return target;
}

// Makes a rename in `dir` durable; some file systems cannot sync a directory, which is no error.
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // EINVAL/EISDIR/EACCES: the rename is done, only its durability is up to the file system
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// The dimensions convert uses, each checked against the tensors before anything is allocated or
// written: metadata that disagrees with the tensors (whose sizes the reader has checked against the
// file) is ERR_MODEL_INVALID, so no metadata value sizes an allocation.
function checkShapes(input: string, header: GgufHeader, arch: string): { dim: number; ffn: number; layers: number } {
  const bad = (msg: string) => new FlashdipError('ERR_MODEL_INVALID', `${input}: ${msg}`);
  const count = (key: string): number => {
    const v = header.metadata[`${arch}.${key}`];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw bad(`${arch}.${key} is ${String(v)}, expected a positive integer`);
    return v;
  };
  const dim = count('embedding_length'), ffn = count('feed_forward_length'), layers = count('block_count');
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const expect = (name: string, dims: number[], what: string) => {
    const t = byName.get(name);
    if (!t) throw bad(`tensor ${name} is missing`);
    if (t.dims.length !== dims.length || t.dims.some((n, i) => n !== dims[i]))
      throw bad(`tensor ${name} has shape [${t.dims.join(', ')}], expected [${dims.join(', ')}] (${what})`);
  };
  const sizes = `${arch}.embedding_length ${dim}, ${arch}.feed_forward_length ${ffn}`;
  const embd = byName.get('token_embd.weight');
  if (!embd) throw bad('tensor token_embd.weight is missing');
  if (embd.dims[0] !== dim) throw bad(`token_embd.weight has rows of ${embd.dims[0]}, but ${arch}.embedding_length is ${dim}`);
  for (const t of header.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m && Number(m[1]) >= layers) throw bad(`tensor ${t.name} is beyond ${arch}.block_count ${layers}`);
  }
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    if (!byName.has(`${p}ffn_down.weight`) || !byName.has(`${p}ffn_up.weight`) || (arch !== 'phi3' && !byName.has(`${p}ffn_gate.weight`)))
      throw bad(`layer ${l} of ${layers} (${arch}.block_count) has no gated MLP tensors`);
    if (arch === 'phi3') {
      expect(`${p}ffn_up.weight`, [dim, 2 * ffn], `${sizes}; gate and up fused`);
    } else {
      expect(`${p}ffn_gate.weight`, [dim, ffn], sizes);
      expect(`${p}ffn_up.weight`, [dim, ffn], sizes);
    }
    expect(`${p}ffn_down.weight`, [ffn, dim], sizes);
  }
  return { dim, ffn, layers };
}

// The attention matrices convert stores as rows, checked against each other before any work: q, k
// and v (phi3: the fused qkv) take d inputs, W_o takes their q outputs and gives d. Returns q.
function checkAttentionShapes(input: string, header: GgufHeader, arch: string, dim: number, layers: number): number {
  const bad = (msg: string) => new FlashdipError('ERR_MODEL_INVALID', `${input}: ${msg}`);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  let q = -1;
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    const get = (name: string) => {
      const t = byName.get(p + name);
      if (!t) throw bad(`tensor ${p}${name} is missing`);
      if (t.dims.length !== 2) throw bad(`tensor ${p}${name} has shape [${t.dims.join(', ')}], expected a matrix`);
      return t;
    };
    const ins = arch === 'phi3' ? [get('attn_qkv.weight')] : [get('attn_q.weight'), get('attn_k.weight'), get('attn_v.weight')];
    const wo = get('attn_output.weight');
    for (const t of ins) if (t.dims[0] !== dim) throw bad(`tensor ${t.name} has rows of ${t.dims[0]}, expected ${dim} (${arch}.embedding_length)`);
    if (wo.dims[1] !== dim) throw bad(`tensor ${wo.name} has ${wo.dims[1]} outputs, expected ${dim} (${arch}.embedding_length)`);
    const qOut = wo.dims[0];
    const fits = arch === 'phi3' ? ins[0].dims[1] > qOut && (ins[0].dims[1] - qOut) % 2 === 0 : ins[0].dims[1] === qOut && ins[1].dims[1] === ins[2].dims[1];
    if (!fits) throw bad(`the attention tensors of layer ${l} do not fit together (q/k/v outputs [${ins.map((t) => t.dims[1]).join(', ')}], W_o inputs ${qOut})`);
    if (q >= 0 && q !== qOut) throw bad(`layer ${l} has attention width ${qOut}, layer 0 ${q}`);
    q = qOut;
  }
  return q;
}

// Of tensors whose rows are stored together, the one with the most bits per value: the rows get a type
// for it (gate and up, or q, k and v, of different types in some mixes).
function finer(ts: GgufTensorInfo[]): GgufTensorInfo {
  const bits = (t: GgufTensorInfo) => ggmlType(t.type).blockBytes / ggmlType(t.type).blockSize;
  return ts.reduce((a, t) => (bits(t) > bits(a) ? t : a));
}

// Sources are [rows_s][cols] f32 matrices (rows_s may differ); the result has one row per column c: the
// concatenation of every source's column c, quantized to `type`. info.relError gets the relative error
// of the quantized rows against the sources.
function transposeRows(sources: Float32Array[], cols: number, type: number, info: ConvertedTensor): Uint8Array {
  const heights = sources.map((m) => m.length / cols);
  const width = heights.reduce((a, b) => a + b, 0);
  const row = new Float32Array(width);
  const first = quantizeRow(type, row);
  const out = new Uint8Array(first.length * cols);
  let err = 0, norm = 0;
  for (let c = 0; c < cols; c++) {
    let at = 0;
    for (let s = 0; s < sources.length; s++) {
      const m = sources[s];
      for (let r = 0; r < heights[s]; r++) row[at++] = m[r * cols + c];
    }
    const q = quantizeRow(type, row);
    out.set(q, c * first.length);
    const back = dequantizeRow(type, q, width);
    for (let i = 0; i < width; i++) {
      const e = back[i] - row[i];
      err += e * e;
      norm += row[i] * row[i];
    }
  }
  info.relError = norm > 0 ? Math.sqrt(err / norm) : 0;
  return out;
}
