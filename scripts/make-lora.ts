// make-lora: writes a LoRA adapter GGUF (llama.cpp's adapter format) for a base model, with weights
// that depend only on (seed, tensor name), so tests can recompute them (loraValues) without the file.
//
//   npx ts-node scripts/make-lora.ts --base MODEL.gguf --out ADAPTER.gguf [--rank 8] [--alpha A]
//     [--type f32|f16|q8_0] [--seed S] [--std 0.05] [--targets attn_q,ffn_down,output,...] [--no-alpha]
//
// For every targeted 2-D base tensor W [ne0 = n_in, ne1 = n_out] (blk.N.<target>.weight, and
// output.weight for the target 'output'), writes <name>.lora_a [n_in, rank] and <name>.lora_b
// [rank, n_out], and the metadata general.type = adapter, adapter.type = lora,
// general.architecture = the base's, adapter.lora.alpha (unless --no-alpha: llama.cpp then applies
// the scale alone). Values: mean 0, standard deviation --std, from make-model's weight stream.
import { parseArgs } from 'util';
import { invalidArgument } from '../lib/errors';
import { GGML_TYPE, ggmlTensorBytes } from '../lib/ggml-types';
import { readGguf } from '../lib/gguf';
import { GgufWriter } from '../lib/gguf-writer';
import { f32ToF16Bits, WeightStream } from './make-model';

export const LORA_TARGETS = ['attn_q', 'attn_k', 'attn_v', 'attn_qkv', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];
const TYPES = { f32: GGML_TYPE.F32, f16: GGML_TYPE.F16, q8_0: GGML_TYPE.Q8_0 } as const;

export interface MakeLoraOptions {
  base: string;
  out: string;
  rank?: number;           // default 8
  alpha?: number | null;   // default: rank (an effective factor of scale); null: no alpha key
  type?: keyof typeof TYPES;
  seed?: number;
  std?: number;            // default 0.05
  targets?: readonly LoraTarget[];  // default: every one the base has
}

export interface LoraTensorPlan {
  name: string;            // <base tensor>.lora_a / .lora_b
  dims: [number, number];  // ggml order
}

/** The values of one LoRA tensor as make-lora writes them (before any quantization), [ne1][ne0]. */
export function loraValues(seed: number, name: string, dims: readonly number[], std = 0.05): Float32Array {
  const out = new Float32Array(dims[0] * dims[1]);
  new WeightStream(seed, name).fill(out, out.length, 0, std);
  return out;
}

export function makeLora(opts: MakeLoraOptions): { path: string; tensors: LoraTensorPlan[]; arch: string } {
  const rank = opts.rank ?? 8;
  if (!Number.isInteger(rank) || rank < 1) throw invalidArgument('rank', `must be a positive integer, got ${rank}`);
  const typeName = opts.type ?? 'f32';
  const typeId = TYPES[typeName];
  if (typeId === undefined) throw invalidArgument('type', `must be one of ${Object.keys(TYPES).join(', ')}, got ${typeName}`);
  const seed = opts.seed ?? 0;
  const std = opts.std ?? 0.05;
  const targets = new Set<string>(opts.targets ?? LORA_TARGETS);
  for (const t of targets) if (!(LORA_TARGETS as readonly string[]).includes(t)) throw invalidArgument('targets', `unknown target '${t}'`);
  const base = readGguf(opts.base);
  const arch = base.metadata['general.architecture'];
  if (typeof arch !== 'string') throw invalidArgument('base', `${opts.base} has no general.architecture`);
  const plans: LoraTensorPlan[] = [];
  for (const t of base.tensors) {
    const m = /^(?:blk\.\d+\.(\w+)|(output))\.weight$/.exec(t.name);
    if (!m || t.dims.length !== 2 || !targets.has(m[1] ?? m[2])) continue;
    const [nIn, nOut] = t.dims;
    plans.push({ name: `${t.name}.lora_a`, dims: [nIn, rank] }, { name: `${t.name}.lora_b`, dims: [rank, nOut] });
  }
  if (plans.length === 0) throw invalidArgument('targets', `${opts.base} has none of the targeted tensors`);
  if (typeId === GGML_TYPE.Q8_0)
    for (const p of plans) if (p.dims[0] % 32 !== 0) throw invalidArgument('type', `q8_0 needs rows of whole 32-blocks; ${p.name} rows have ${p.dims[0]}`);
  const w = new GgufWriter(opts.out);
  try {
    w.addString('general.architecture', arch);
    w.addString('general.type', 'adapter');
    w.addString('adapter.type', 'lora');
    if (opts.alpha !== null) w.addF32('adapter.lora.alpha', opts.alpha ?? rank);
    for (const p of plans) w.addTensor(p.name, p.dims, typeId, ggmlTensorBytes(typeId, p.dims));
    w.writeHeader();
    let quantize: ((src: Float32Array) => Uint8Array) | undefined;
    if (typeId === GGML_TYPE.Q8_0) {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { getBinding } = require('../lib/binding') as typeof import('../lib/binding');
      const k = getBinding().kernels;
      quantize = (src) => k.quantizeRow(typeId, src);
    }
    for (const p of plans) {
      const x = loraValues(seed, p.name, p.dims, std);
      if (typeId === GGML_TYPE.F32) w.writeTensorData(p.name, x);
      else if (typeId === GGML_TYPE.F16) w.writeTensorData(p.name, Uint16Array.from(x, f32ToF16Bits));
      else w.writeTensorData(p.name, quantize!(x));
    }
    w.close();
  } catch (err) {
    w.abort();
    throw err;
  }
  return { path: opts.out, tensors: plans, arch };
}

const USAGE = `usage: make-lora --base MODEL.gguf --out ADAPTER.gguf [--rank R] [--alpha A | --no-alpha]
       [--type f32|f16|q8_0] [--seed S] [--std X] [--targets ${LORA_TARGETS.join(',')}]
Writes a LoRA adapter GGUF (llama.cpp's format) with seeded random weights for the base model.`;

export function main(argv: string[] = process.argv.slice(2)): number {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        base: { type: 'string' }, out: { type: 'string' }, rank: { type: 'string' }, alpha: { type: 'string' },
        'no-alpha': { type: 'boolean' }, type: { type: 'string' }, seed: { type: 'string' }, std: { type: 'string' },
        targets: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`make-lora: ${(err as Error).message}\n${USAGE}\n`);
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
  try {
    if (typeof values.base !== 'string' || typeof values.out !== 'string') throw invalidArgument('--base/--out', 'are required');
    const res = makeLora({
      base: values.base, out: values.out, rank: num('rank'), alpha: values['no-alpha'] ? null : num('alpha'),
      type: values.type as MakeLoraOptions['type'], seed: num('seed'), std: num('std'),
      targets: typeof values.targets === 'string' ? (values.targets.split(',') as LoraTarget[]) : undefined,
    });
    process.stdout.write(`${res.path}: ${res.tensors.length} tensors for ${res.arch}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`make-lora: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main();
