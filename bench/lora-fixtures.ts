// Records llama.cpp parity fixtures for LoRA adapters into test/fixtures/lora/<id>.json, which
// test/model/47-lora.test.ts replays against flashdip.
//
//   npx ts-node bench/lora-fixtures.ts [id ...]      (default: every spec below)
//
// The base model is made by scripts/make-model.ts (llama, f32, the Llama SentencePiece vocabulary of
// the shared data) and the adapters by scripts/make-lora.ts, all from fixed seeds, so the test
// regenerates exactly the same files. llama.cpp runs through node-llama-cpp (bench/.deps, as
// bench/arch-fixtures.ts) on one thread with an f32 KV cache, flash attention off, the adapters
// given to createContext({ lora }). A fixture holds the prompt tokens, the logits after the prompt
// at a fixed set of ids (the top 16 and every 50th), and the same without the adapters (so the test
// also checks that the adapters change what they should).
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { fixtureModel } from './arch-fixtures';
import { makeLora, MakeLoraOptions } from '../scripts/make-lora';
import type { MakeModelOptions } from '../scripts/make-model';

const ROOT = path.resolve(__dirname, '..');
const DEPS_MODULES = path.join(ROOT, 'bench', '.deps', 'node_modules');
export const LORA_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'lora');
export const LORA_PROMPT = 'Once upon a time, there was a little girl named Lily who loved to play outside in the sunshine.';
const CONTEXT = 128;

type Shape = Omit<MakeModelOptions, 'out' | 'vocabFrom' | 'type' | 'quantizeRow' | 'readGguf' | 'onTensor'>;
export type AdapterSpec = Omit<MakeLoraOptions, 'base' | 'out'> & { scale: number };

export interface LoraFixture {
  id: string;
  what: string;
  model: Shape;
  adapters: AdapterSpec[];
  llamaCpp: { release: string; nodeLlamaCpp: string };
  promptTokens: number[];
  logitIds: number[];
  logits: number[];
  baseLogits: number[];
}

const MODEL: Shape = { arch: 'llama', dim: 64, heads: 4, kvHeads: 2, ffn: 128, ctx: CONTEXT, layers: 2, seed: 21 };
const SPECS: { id: string; what: string; adapters: AdapterSpec[] }[] = [
  {
    id: 'one', what: 'one f32 adapter on every matrix and the head, rank 8, alpha 16 (factor 2), scale 0.75',
    adapters: [{ rank: 8, alpha: 16, seed: 101, std: 0.08, scale: 0.75 }],
  },
  {
    id: 'two', what: 'two adapters: rank 8 alpha 4 on everything at scale 1.5, rank 4 without alpha on attn_q/attn_v/ffn_down at scale 0.5',
    adapters: [
      { rank: 8, alpha: 4, seed: 201, std: 0.08, scale: 1.5 },
      { rank: 4, alpha: null, seed: 202, std: 0.08, scale: 0.5, targets: ['attn_q', 'attn_v', 'ffn_down'] },
    ],
  },
];

/** Writes the fixture's base model and adapters into dir; returns their paths. */
export function fixtureFiles(f: Pick<LoraFixture, 'id' | 'model' | 'adapters'>, dir: string): { model: string; adapters: string[] } {
  const model = path.join(dir, `lora-${f.id}-base.gguf`);
  fixtureModel(f.model, model);
  const adapters = f.adapters.map((a, i) => {
    const out = path.join(dir, `lora-${f.id}-${i}.gguf`);
    const { scale: _scale, ...opts } = a;
    makeLora({ ...opts, base: model, out });
    return out;
  });
  return { model, adapters };
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const pkg = path.join(DEPS_MODULES, 'node-llama-cpp');
  if (!fs.existsSync(path.join(pkg, 'package.json'))) throw new Error(`node-llama-cpp is not installed in ${DEPS_MODULES}`);
  const nlcVersion: string = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
  const esmImport = new Function('u', 'return import(u)') as (u: string) => Promise<any>;
  const { getLlama, LlamaLogLevel } = await esmImport(pathToFileURL(path.join(pkg, 'dist', 'index.js')).href);
  const llama = await getLlama({ build: 'never', gpu: false, maxThreads: 0, logLevel: LlamaLogLevel.error });
  const release = `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`;
  fs.mkdirSync(LORA_FIXTURES, { recursive: true });
  fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
  const tmpDir = fs.mkdtempSync(path.join(ROOT, '.tmp', 'lora-fixtures-'));
  try {
    for (const spec of SPECS) {
      if (only.length && !only.includes(spec.id)) continue;
      const files = fixtureFiles({ id: spec.id, model: MODEL, adapters: spec.adapters }, tmpDir);
      const logitsWith = async (lora: { filePath: string; scale: number }[] | undefined) => {
        const model = await llama.loadModel({ modelPath: files.model });
        const context = await model.createContext({
          contextSize: CONTEXT, threads: 1, sequences: 1, flashAttention: false,
          experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
          ...(lora ? { lora: { adapters: lora } } : {}),
        });
        const seq = context.getSequence();
        const promptTokens: number[] = [model.tokens.bos, ...model.tokenize(LORA_PROMPT)];
        const input = promptTokens.map((t, i) => (i === promptTokens.length - 1 ? [t, { generateNext: { logits: true } }] : t));
        const res = await seq.controlledEvaluate(input);
        const logits = res[promptTokens.length - 1]?.next?.logits as Map<number, number> | undefined;
        if (!logits) throw new Error(`${spec.id}: no logits from llama.cpp`);
        await context.dispose();
        await model.dispose();
        return { promptTokens, logits };
      };
      const withLora = await logitsWith(files.adapters.map((filePath, i) => ({ filePath, scale: spec.adapters[i].scale })));
      const without = await logitsWith(undefined);
      const first = withLora.logits;
      const top = [...first.keys()].slice(0, 16);
      const ids = [...new Set([...top, ...Array.from({ length: Math.ceil(first.size / 50) }, (_, i) => i * 50)])].sort((a, b) => a - b);
      const fixture: LoraFixture = {
        id: spec.id, what: spec.what, model: MODEL, adapters: spec.adapters,
        llamaCpp: { release, nodeLlamaCpp: nlcVersion },
        promptTokens: withLora.promptTokens,
        logitIds: ids,
        logits: ids.map((i) => Number(first.get(i)!.toPrecision(8))),
        baseLogits: ids.map((i) => Number(without.logits.get(i)!.toPrecision(8))),
      };
      fs.writeFileSync(path.join(LORA_FIXTURES, `${spec.id}.json`), JSON.stringify(fixture) + '\n');
      let d = 0;
      for (let i = 0; i < ids.length; i++) d = Math.max(d, Math.abs(fixture.logits[i] - fixture.baseLogits[i]));
      process.stdout.write(`${spec.id}: ${fixture.promptTokens.length} prompt tokens, the adapters move the logits by up to ${d.toFixed(3)}\n`);
    }
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    await llama.dispose();
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`lora-fixtures: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
