// llama.cpp decode speed from the plainest node-llama-cpp loop its docs give (getLlama, loadModel,
// createContext, sequence.evaluate with temperature 0), with every context setting the project's
// harness (bench/worker.ts) might differ in exposed as a flag, so the two can be compared on one host:
//
//   npx ts-node bench/llamacpp-loop.ts --model M.gguf [--threads N] [--tokens 64] [--prompt-tokens 32]
//       [--context 512] [--batch N] [--flash-attention] [--max-threads N|default] [--warmup N]
//       [--reps 3] [--kv f16|q8_0] [--yield-eog] [--mmap|--no-mmap]
//
// Prints one JSON line per repetition: decode tok/s over (tokens - 1) steps, first token excluded,
// as bench/worker.ts counts them. node-llama-cpp comes from bench/.deps (never a dependency).
import * as path from 'path';
import { pathToFileURL } from 'url';
import { parseArgs } from 'util';

const DEPS = path.join(__dirname, '.deps', 'node_modules');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      threads: { type: 'string', default: '1' },
      tokens: { type: 'string', default: '64' },
      'prompt-tokens': { type: 'string', default: '32' },
      context: { type: 'string', default: '512' },
      batch: { type: 'string' },
      'flash-attention': { type: 'boolean', default: false },
      'max-threads': { type: 'string', default: 'default' },
      warmup: { type: 'string', default: '0' },
      reps: { type: 'string', default: '3' },
      kv: { type: 'string' },
      'yield-eog': { type: 'boolean', default: false },
      'no-mmap': { type: 'boolean', default: false },
      'via-worker': { type: 'boolean', default: false },
    },
  });
  if (!values.model) throw new Error('--model M.gguf is required');
  if (values['via-worker']) return viaWorker(values.model, Number(values.threads), Number(values.tokens),
    Number(values['prompt-tokens']), Number(values.context), Number(values.warmup), Number(values.reps));
  const esmImport = new Function('u', 'return import(u)') as (u: string) => Promise<any>;
  const { getLlama, LlamaLogLevel } = await esmImport(pathToFileURL(path.join(DEPS, 'node-llama-cpp', 'dist', 'index.js')).href);
  const maxThreads = values['max-threads'] === 'default' ? undefined : Number(values['max-threads']);
  const llama = await getLlama({ build: 'never', gpu: false, logLevel: LlamaLogLevel.error, ...(maxThreads === undefined ? {} : { maxThreads }) });
  const model = await llama.loadModel({ modelPath: values.model, ...(values['no-mmap'] ? { useMmap: false } : {}) });
  const threads = Number(values.threads), n = Number(values.tokens);
  const context = await model.createContext({
    contextSize: Number(values.context),
    threads,
    ...(values.batch ? { batchSize: Number(values.batch) } : {}),
    flashAttention: values['flash-attention'],
    ...(values.kv ? { experimentalKvCacheKeyType: values.kv, experimentalKvCacheValueType: values.kv } : {}),
  });
  const sequence = context.getSequence();
  let prompt: number[] = model.tokenize('Once upon a time, in a small village by the sea, there lived a little girl named Lily. ' +
    'Every morning she walked to the harbor to watch the fishing boats come home.', false);
  prompt = [model.tokens.bos, ...prompt];
  while (prompt.length < Number(values['prompt-tokens'])) prompt = prompt.concat(prompt.slice(1));
  prompt = prompt.slice(0, Number(values['prompt-tokens']));
  const run = async (count: number) => {
    let got = 0, tFirst = 0;
    for await (const _token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: values['yield-eog'] })) {
      if (got === 0) tFirst = performance.now();
      if (++got >= count) break;
    }
    const seconds = (performance.now() - tFirst) / 1000;
    await sequence.clearHistory();
    return { got, seconds };
  };
  if (Number(values.warmup) > 0) await run(Number(values.warmup));
  for (let r = 0; r < Number(values.reps); r++) {
    const { got, seconds } = await run(n);
    console.log(JSON.stringify({
      threads, contextSize: context.contextSize, batchSize: context.batchSize, flashAttention: context.flashAttention,
      currentThreads: context.currentThreads, tokens: got, decodeTokensPerSecond: (got - 1) / seconds,
    }));
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}

// The same model, threads, prompt length and token count through the project's harness
// (bench/worker.ts, in this process) for comparison: one JSON line per repetition.
async function viaWorker(model: string, threads: number, tokens: number, promptTokens: number, contextSize: number,
  warmupTokens: number, reps: number): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { measure } = require('./worker') as typeof import('./worker');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { loadModel } = require('../lib') as typeof import('../lib');
  const m = await loadModel(model, { memoryBudget: undefined });
  let prompt = m.tokenize('Once upon a time, in a small village by the sea, there lived a little girl named Lily. ' +
    'Every morning she walked to the harbor to watch the fishing boats come home.', { addSpecial: true });
  await m.dispose();
  while (prompt.length < promptTokens) prompt = prompt.concat(prompt.slice(1));
  prompt = prompt.slice(0, promptTokens);
  for (let r = 0; r < reps; r++) {
    const x = await measure({ engine: 'llamacpp', model, threads, prompt, tokens, contextSize, warmupTokens, depsDir: DEPS });
    console.log(JSON.stringify({ harness: 'worker', threads, contextSize, tokens: x.generatedTokens, decodeTokensPerSecond: x.decodeTokensPerSecond }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
