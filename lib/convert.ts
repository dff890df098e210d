// flashdip convert: repacks a GGUF into the input-major DIP layout (DESIGN.md). For every layer the
// MLP becomes two tensors of rows, one row per input column, quantized along the output dimension:
//   blk.N.ffn_gate_up.dip.weight  ne = [2F, d]: row j = [W_gate[:, j] (F values), W_up[:, j] (F values)]
//   blk.N.ffn_down.dip.weight     ne = [d, F]:  row i = W_down[:, i]
// so a DIP mask over x (or h) selects whole contiguous rows. Everything else is copied unchanged, the
// metadata gains `flashdip.layout` = 'dip-input-major' and `flashdip.layout_version` = 1, and tensor
// data starts on `alignment`-byte boundaries (default 4096: page-aligned for large reads).
import * as fs from 'fs';
import { GgufHeader, GgufTensorInfo } from './binding';
import { FlashdipError, invalidArgument } from './errors';
import { GGML_TYPE, ggmlType } from './ggml-types';
import { GgufValueType, GgufWriter, metadataEntries } from './gguf-writer';
import { readGguf } from './gguf';
import { dequantizeRow, quantizeRow } from './kernels';
import { checkProgress } from './options';

export type ConvertType = 'keep' | 'f32' | 'f16' | 'q8_0' | 'q4_0';
export const CONVERT_TYPES: readonly ConvertType[] = ['keep', 'f32', 'f16', 'q8_0', 'q4_0'];

export interface ConvertOptions {
  type?: ConvertType;
  /** Alignment of tensor data in bytes (a power of two; default 4096). */
  alignment?: number;
  /** Called after each tensor with (done, total) bytes written. */
  onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface ConvertResult {
  input: string;
  output: string;
  layers: number;
  mlpType: string;
  inputBytes: number;
  outputBytes: number;
  seconds: number;
}

export const DIP_LAYOUT = 'dip-input-major';
const MLP = /^blk\.(\d+)\.ffn_(gate|up|down)\.weight$/;

// The row types the column store computes with; other sources map to the closest.
function rowType(src: number, want: ConvertType): number {
  if (want !== 'keep') return GGML_TYPE[want.toUpperCase() as 'F32' | 'F16' | 'Q8_0' | 'Q4_0'];
  switch (src) {
    case GGML_TYPE.F32: case GGML_TYPE.F16: case GGML_TYPE.Q8_0: case GGML_TYPE.Q4_0: return src;
    case GGML_TYPE.BF16: return GGML_TYPE.F16;
    case GGML_TYPE.Q4_1: case GGML_TYPE.Q2_K: case GGML_TYPE.Q3_K: case GGML_TYPE.Q4_K: return GGML_TYPE.Q4_0;
    default: return GGML_TYPE.Q8_0;  // q5_0, q5_1, q5_k, q6_k: 8 bits keeps their precision
  }
}

function readTensor(fd: number, header: GgufHeader, t: GgufTensorInfo): Uint8Array {
  const buf = new Uint8Array(t.bytes);
  let done = 0;
  while (done < t.bytes) {
    const n = fs.readSync(fd, buf, done, t.bytes - done, header.dataOffset + t.offset + done);
    if (n <= 0) throw new FlashdipError('ERR_GGUF_TRUNCATED', `tensor ${t.name} ends early`);
    done += n;
  }
  return buf;
}

// [rows][cols] f32 of a tensor with ne = [cols, rows].
function dequantize(fd: number, header: GgufHeader, t: GgufTensorInfo): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  return dequantizeRow(t.type, readTensor(fd, header, t), n);
}

export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const type = options.type ?? 'keep';
  if (!CONVERT_TYPES.includes(type)) throw invalidArgument('type', `must be one of ${CONVERT_TYPES.join(', ')}`);
  const alignment = options.alignment ?? 4096;
  if (!Number.isInteger(alignment) || alignment < 32 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0)
    throw invalidArgument('alignment', 'must be a power of two between 32 and 1 MiB');
  const onProgress = checkProgress('onProgress', options.onProgress) as ConvertOptions['onProgress'];
  const t0 = performance.now();
  const header = readGguf(input);
  const arch = header.metadata['general.architecture'];
  if (header.metadata['flashdip.layout'] === DIP_LAYOUT) throw invalidArgument('input', `${input} is already converted`);
  // Every architecture the engine runs has a gated MLP of ffn_gate/ffn_up/ffn_down (phi3: fused
  // ffn_up); its activation (SwiGLU or GeGLU) does not change the layout.
  if (!['llama', 'qwen2', 'qwen3', 'phi3', 'gemma', 'gemma2', 'gemma3'].includes(String(arch)))
    throw new FlashdipError('ERR_UNSUPPORTED_ARCH', `${input}: architecture '${String(arch)}' is not supported`);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const layers = Number(header.metadata[`${arch}.block_count`]);
  const ffn = Number(header.metadata[`${arch}.feed_forward_length`]);

  // Plan: every non-MLP tensor as is, then two DIP tensors per layer.
  interface Out { name: string; dims: number[]; type: number; make: () => Uint8Array }
  const fd = fs.openSync(input, 'r');
  const outs: Out[] = [];
  let mlpType = -1;
  for (const t of header.tensors) {
    if (MLP.test(t.name)) continue;
    if (arch === 'phi3' && /^blk\.\d+\.ffn_up\.weight$/.test(t.name)) continue;
    outs.push({ name: t.name, dims: t.dims, type: t.type, make: () => readTensor(fd, header, t) });
  }
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    const down = byName.get(`${p}ffn_down.weight`);
    const fused = arch === 'phi3' ? byName.get(`${p}ffn_up.weight`) : undefined;
    const gate = byName.get(`${p}ffn_gate.weight`);
    const up = byName.get(`${p}ffn_up.weight`);
    if (!down || !(fused || (gate && up))) throw new FlashdipError('ERR_MODEL_INVALID', `${input}: layer ${l} has no gated MLP tensors`);
    const d = down.dims[1], F = ffn;
    const src = fused ?? gate!;
    const ugType = rowType(src.type, type), downType = rowType(down.type, type);
    mlpType = ugType;
    for (const [rt, n] of [[ugType, 2 * F], [downType, d]] as const)
      if (n % ggmlType(rt).blockSize !== 0)
        throw invalidArgument('type', `${ggmlType(rt).name} rows need a multiple of ${ggmlType(rt).blockSize} outputs, the model has ${n}`);
    outs.push({
      name: `${p}ffn_gate_up.dip.weight`, dims: [2 * F, d], type: ugType,
      make: () => {
        // W_gate and W_up are [F rows][d]; row j of the result is column j of both.
        const g = fused ? dequantize(fd, header, fused) : dequantize(fd, header, gate!);
        const u = fused ? g.subarray(F * d) : dequantize(fd, header, up!);
        return transposeRows([g.subarray(0, F * d), u], F, d, ugType);
      },
    });
    outs.push({
      name: `${p}ffn_down.dip.weight`, dims: [d, F], type: downType,
      make: () => transposeRows([dequantize(fd, header, down)], d, F, downType),
    });
  }

  const w = new GgufWriter(output, { alignment });
  try {
    for (const e of metadataEntries(header, input, (k) => k !== 'general.alignment' && !k.startsWith('flashdip.')))
      w.addKv(e.key, e.type, e.value, e.elem);
    w.addString('flashdip.layout', DIP_LAYOUT);
    w.addU32('flashdip.layout_version', 1);
    const sizes = outs.map((o) => w.addTensor(o.name, o.dims, o.type).byteLength);
    const total = sizes.reduce((a, b) => a + b, 0);
    w.writeHeader();
    let done = 0;
    for (let i = 0; i < outs.length; i++) {
      w.writeTensorData(outs[i].name, outs[i].make());
      done += sizes[i];
      onProgress?.(done, total, outs[i].name);
      await new Promise((r) => setImmediate(r));  // keep the event loop (and a progress bar) alive
    }
    w.close();
  } catch (err) {
    w.abort();
    throw err;
  } finally {
    fs.closeSync(fd);
  }
  return {
    input, output, layers, mlpType: ggmlType(mlpType).name,
    inputBytes: header.fileSize, outputBytes: fs.statSync(output).size, seconds: (performance.now() - t0) / 1000,
  };
}

// Sources are [rows][cols] f32 matrices (all rows x cols); the result has one row per column c: the
// concatenation of every source's column c, quantized to `type`.
function transposeRows(sources: Float32Array[], rows: number, cols: number, type: number): Uint8Array {
  const width = rows * sources.length;
  const row = new Float32Array(width);
  const first = quantizeRow(type, row);
  const out = new Uint8Array(first.length * cols);
  for (let c = 0; c < cols; c++) {
    for (let s = 0; s < sources.length; s++) {
      const m = sources[s];
      for (let r = 0; r < rows; r++) row[s * rows + r] = m[r * cols + c];
    }
    out.set(quantizeRow(type, row), c * first.length);
  }
  return out;
}
