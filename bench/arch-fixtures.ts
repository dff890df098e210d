// Records llama.cpp parity fixtures for the architectures of random-weight models (qwen3, gemma,
// gemma2, gemma3, and llama as a control of the recording), into test/fixtures/archs/<id>.json, which
// test/model/46-archs-new.test.ts replays against flashdip; and for the tensor types flashdip computes
// natively since issue 11 (llama models quantized to q5_k, q3_k, q4_1, q5_0), into
// test/fixtures/quants/<id>.json, which test/model/46-quant-types.test.ts replays; and for the
// sliding-window layers' ring-buffer KV cache (issue 11), the gemma2 and gemma3 models over a longer
// run (48 greedy tokens, window 8: the sequence is ~9 windows long) with the top logits of every
// step, into test/fixtures/swa/<id>.json, which test/model/46-swa-ring.test.ts replays.
//
// Not recorded: phi3 with partial rotary (Phi-4-mini rotates 96 of 128 dims). node-llama-cpp
// 3.22.1's llama.cpp fails to load make-model's phi3 files (error loading model vocabulary:
// _Map_base::at, with the Llama SPM and the synthetic vocabularies alike), and its qwen2/qwen3
// graphs assert n_rot == head_dim, so no other architecture can stand in.
//
//   npx ts-node bench/arch-fixtures.ts [id ...]      (default: every spec below)
//
// Each model is made by scripts/make-model.ts from a fixed seed (at f32 unless the spec names a type:
// make-model's reference quantizers are deterministic) with the Llama SentencePiece vocabulary of the
// shared data, so the test regenerates exactly the same file. llama.cpp runs
// through node-llama-cpp (bench/.deps, installed by `npm run bench -- --engines` or by hand with
// `npm install --prefix bench/.deps node-llama-cpp@<version> --ignore-scripts`; never a dependency)
// on one thread with an f32 KV cache. A fixture holds the prompt tokens, 16 greedy tokens (argmax of
// the raw logits) and the logits after the prompt at a fixed set of ids (the top 16 and every 50th
// id, which keeps the files small), with the llama.cpp and node-llama-cpp versions.
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { makeModel, MakeModelOptions } from '../scripts/make-model';

const ROOT = path.resolve(__dirname, '..');
const DEPS_MODULES = path.join(ROOT, 'bench', '.deps', 'node_modules');
export const LLAMA_SPM_VOCAB = path.resolve(ROOT, '../shared/data/tokenizer/vocab/ggml-vocab-llama-spm.gguf');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'archs');
export const QUANT_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'quants');
export const SWA_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'swa');
const PROMPT = 'Once upon a time, there was a little girl named Lily who loved to play outside in the sunshine.';
const GREEDY_TOKENS = 16;
const CONTEXT = 128;

// make-model options without out/vocabFrom (the Llama SPM vocabulary); type defaults to f32.
type Shape = Omit<MakeModelOptions, 'out' | 'vocabFrom' | 'quantizeRow' | 'readGguf' | 'onTensor'>;

export interface ArchFixture {
  id: string;
  what: string;
  model: Shape;
  llamaCpp: { release: string; nodeLlamaCpp: string };
  prompt: string;
  promptTokens: number[];
  greedyTokens: number[];
  logitIds: number[];
  logits: number[];
  /** SWA fixtures: the top STEP_TOP logits of every greedy step (after the prompt, then after each greedy token but the last). */
  steps?: { ids: number[]; logits: number[] }[];
}

const base = { dim: 64, heads: 4, kvHeads: 2, ffn: 128, ctx: CONTEXT };
// The window (8) is shorter than the prompt (~25 tokens), so the sliding-window masking matters.
const SPECS: { id: string; what: string; model: Shape }[] = [
  { id: 'llama', what: 'control: an architecture flashdip already matched, which checks the recording', model: { ...base, arch: 'llama', layers: 2, seed: 21 } },
  { id: 'qwen3', what: 'q/k RMSNorm, no qkv bias, head_dim 32 != dim/heads', model: { ...base, arch: 'qwen3', layers: 2, headDim: 32, seed: 31 } },
  { id: 'gemma', what: 'GeGLU, embeddings x sqrt(dim), tied head, head_dim 32', model: { ...base, arch: 'gemma', layers: 2, headDim: 32, seed: 41 } },
  {
    id: 'gemma2', what: 'post norms, attention and final soft-capping (small caps so that they bite), window 8 on even layers',
    model: { ...base, arch: 'gemma2', layers: 4, headDim: 32, slidingWindow: 8, attnSoftcap: 1.5, finalSoftcap: 3, seed: 42 },
  },
  {
    id: 'gemma3', what: 'q/k norms, post norms, window 8 on 5 layers of 6 with RoPE base 10000, global base 1e6',
    model: { ...base, arch: 'gemma3', layers: 6, headDim: 32, slidingWindow: 8, ropeBase: 1e6, seed: 43 },
  },
];

// Dims of 256 (the k-quant super-block) for every matrix; 2 layers.
const quant = { arch: 'llama' as const, dim: 256, heads: 4, kvHeads: 2, ffn: 512, ctx: CONTEXT, layers: 2 };
const QUANT_SPECS: { id: string; what: string; model: Shape }[] = [
  { id: 'q5_k', what: 'every matrix q5_k (Q5_K_S-like)', model: { ...quant, type: 'q5_k', seed: 51 } },
  { id: 'q3_k', what: 'every matrix q3_k', model: { ...quant, type: 'q3_k', seed: 52 } },
  { id: 'q4_1', what: 'every matrix q4_1', model: { ...quant, type: 'q4_1', seed: 53 } },
  { id: 'q5_0', what: 'every matrix q5_0', model: { ...quant, type: 'q5_0', seed: 54 } },
];

// The arch fixtures' gemma2 and gemma3 models, run for longer (GREEDY_SWA tokens).
const GREEDY_SWA = 48;
const STEP_TOP = 8;
const SWA_SPECS = SPECS.filter((x) => x.id === 'gemma2' || x.id === 'gemma3').map((x) => ({
  ...x, id: `${x.id}-long`, what: `${x.what}; ${GREEDY_SWA} greedy tokens, the top ${STEP_TOP} logits of every step`,
}));

export function fixtureModel(shape: Shape, out: string): void {
  makeModel({ type: 'f32', ...shape, out, vocabFrom: LLAMA_SPM_VOCAB });
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const pkg = path.join(DEPS_MODULES, 'node-llama-cpp');
  if (!fs.existsSync(path.join(pkg, 'package.json'))) throw new Error(`node-llama-cpp is not installed in ${DEPS_MODULES}`);
  const nlcVersion: string = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
  // node-llama-cpp is an ES module: reach the real dynamic import through Function (as bench/worker.ts).
  const esmImport = new Function('u', 'return import(u)') as (u: string) => Promise<any>;
  const { getLlama, LlamaLogLevel } = await esmImport(pathToFileURL(path.join(pkg, 'dist', 'index.js')).href);
  const llama = await getLlama({ build: 'never', gpu: false, maxThreads: 0, logLevel: LlamaLogLevel.error });
  const release = `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`;
  const specs = [
    ...SPECS.map((x) => ({ ...x, dir: FIXTURES, greedy: GREEDY_TOKENS, steps: false })),
    ...QUANT_SPECS.map((x) => ({ ...x, dir: QUANT_FIXTURES, greedy: GREEDY_TOKENS, steps: false })),
    ...SWA_SPECS.map((x) => ({ ...x, dir: SWA_FIXTURES, greedy: GREEDY_SWA, steps: true })),
  ];
  for (const dir of [FIXTURES, QUANT_FIXTURES, SWA_FIXTURES]) fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
  const tmpDir = fs.mkdtempSync(path.join(ROOT, '.tmp', 'arch-fixtures-'));
  try {
    for (const spec of specs) {
      if (only.length && !only.includes(spec.id)) continue;
      const file = path.join(tmpDir, `${spec.id}.gguf`);
      fixtureModel(spec.model, file);
      const model = await llama.loadModel({ modelPath: file });
      const context = await model.createContext({
        contextSize: CONTEXT, threads: 1, sequences: 1,
        experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false,
      });
      const seq = context.getSequence();
      if (context.kvCacheKeyType !== 'F32' && context.kvCacheKeyType !== 0) throw new Error(`${spec.id}: the KV cache is ${context.kvCacheKeyType}, not f32`);
      const promptTokens: number[] = [model.tokens.bos, ...model.tokenize(PROMPT)];
      const step = async (tokens: number[]): Promise<Map<number, number>> => {
        const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { logits: true } }] : t));
        const res = await seq.controlledEvaluate(input);
        const logits = res[tokens.length - 1]?.next?.logits as Map<number, number> | undefined;
        if (!logits) throw new Error(`${spec.id}: no logits from llama.cpp`);
        return logits;
      };
      let logits = await step(promptTokens);
      const first = logits;
      const greedyTokens: number[] = [];
      const steps: { ids: number[]; logits: number[] }[] = [];
      for (let k = 0; k < spec.greedy; k++) {
        const next = logits.keys().next().value as number; // the map is sorted, highest first
        greedyTokens.push(next);
        if (spec.steps) {
          const ids = [...logits.keys()].slice(0, STEP_TOP);
          steps.push({ ids, logits: ids.map((i) => Number(logits.get(i)!.toPrecision(8))) });
        }
        if (k + 1 < spec.greedy) logits = await step([next]);
      }
      const top = [...first.keys()].slice(0, 16);
      const vocab = first.size;
      const ids = [...new Set([...top, ...Array.from({ length: Math.ceil(vocab / 50) }, (_, i) => i * 50)])].sort((a, b) => a - b);
      const fixture: ArchFixture = {
        id: spec.id, what: spec.what, model: spec.model,
        llamaCpp: { release, nodeLlamaCpp: nlcVersion },
        prompt: PROMPT, promptTokens, greedyTokens,
        logitIds: ids, logits: ids.map((i) => Number(first.get(i)!.toPrecision(8))),
        ...(spec.steps ? { steps } : {}),
      };
      fs.writeFileSync(path.join(spec.dir, `${spec.id}.json`), JSON.stringify(fixture) + '\n');
      process.stdout.write(`${spec.id}: ${promptTokens.length} prompt tokens, greedy ${greedyTokens.join(' ')}\n`);
      await context.dispose();
      await model.dispose();
    }
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    await llama.dispose();
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`arch-fixtures: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
