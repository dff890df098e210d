// flashdip bench: one configuration measured on this machine (prefill and decode tokens/s, the
// column cache's hit rate, bytes per token, resident memory). For comparisons between engines and
// methods, interleaved and repeated, see bench/ in the repository (`npm run bench`).
import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { info as kernelsInfo } from '../kernels';
import { loadModel } from '../model';
import { dropPageCache, DropResult } from '../page-cache';
import { residentBytes } from '../session';
import type { Command } from './command';
import { intFlag, loadLoraFlags, loadOptionsFromFlags, loraFlags, MODEL_FLAGS, modelFlag } from './flags';

// The prompt: this text tokenized with BOS, cut to --prompt-tokens ids (repeated if too short), so
// every run of a model sees the same ids (the same text as bench/run.ts).
const PROMPT_TEXT =
  'Once upon a time, in a small village by the sea, there lived a little girl named Lily. ' +
  'Every morning she walked to the harbor to watch the fishing boats come home, and she ' +
  'counted the birds that followed them. One day she found a shiny blue shell on the sand. ';

function boundedInt(name: string, value: unknown, min: number, def: number): number {
  const n = intFlag(name, value) ?? def;
  if (!Number.isInteger(n) || n < min) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${name}: expected an integer >= ${min}, got ${String(value)}`);
  return n;
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure one configuration on this machine: tokens/s, hit rate, bytes per token, memory',
  flags: [
    ...MODEL_FLAGS,
    { name: 'tokens', short: 'n', arg: 'N', description: 'tokens generated greedily (end-of-text is masked so exactly N come out)',
      default: '32', example: '64' },
    { name: 'prompt-tokens', arg: 'N', description: 'prompt length in tokens, BOS included', default: '16', example: '128' },
    { name: 'ctx', arg: 'N', description: 'context size in tokens', default: 'prompt + tokens, rounded up to 256', example: '1024',
      api: 'contextSize' },
    { name: 'drop-cache', description: 'first drop the model file from the page cache (posix_fadvise DONTNEED; no root needed)',
      default: 'off' },
  ],
  examples: [
    'flashdip bench --model model.gguf --tokens 64 --threads 2',
    'flashdip bench -m model.dip.gguf --method dip-ca --density 0.5 --memory-budget 650MB --drop-cache --json',
  ],
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const tokens = boundedInt('tokens', v.tokens, 1, 32);
    const promptLength = boundedInt('prompt-tokens', v['prompt-tokens'], 1, 16);
    const ctx = v.ctx === undefined ? Math.ceil((promptLength + tokens + 1) / 256) * 256 : boundedInt('ctx', v.ctx, 1, 0);
    const loadOptions = loadOptionsFromFlags(v);
    const loras = loraFlags(v);
    if (ctx < promptLength + tokens)
      throw new FlashdipError('ERR_INVALID_ARGUMENT', `--ctx ${ctx} cannot hold ${promptLength} prompt + ${tokens} generated tokens`);
    if (!fs.existsSync(file)) throw new FlashdipError('ERR_IO', `cannot open ${file}: no such file`);

    const dropped: DropResult | undefined = v['drop-cache'] ? dropPageCache(file) : undefined;
    const rssBefore = residentBytes();
    const t0 = performance.now();
    const model = await loadModel(file, loadOptions);
    const loadSeconds = (performance.now() - t0) / 1000;
    try {
      const session = model.createSession({ contextSize: ctx, loras: await loadLoraFlags(model, loras) });
      const withBos = model.tokenize(PROMPT_TEXT, { addSpecial: true });
      const body = model.tokenize(PROMPT_TEXT, { addSpecial: false });
      const prompt = [...withBos];
      while (prompt.length < promptLength && body.length > 0) prompt.push(...body);
      prompt.length = Math.min(prompt.length, promptLength);
      // A speed run produces exactly N tokens: end-of-generation tokens are masked out of the logits.
      const eog: number[] = [];
      for (let t = 0; t < model.tokenizer.vocabSize; t++) if (model.tokenizer.isEndOfGeneration(t)) eog.push(t);
      const onLogits = (logits: Float32Array): void => {
        for (const t of eog) logits[t] = -Infinity;
      };
      let generated = 0;
      for await (const piece of session.generate(prompt, { maxTokens: tokens, temperature: 0, onLogits })) if (piece.token >= 0) generated++;
      const st = session.stats();
      const info = model.info;
      const result = {
        model: file,
        fileBytes: info.fileSize,
        dipLayout: info.dipLayout,
        arch: info.arch,
        isa: kernelsInfo().isa,
        threads: info.threads,
        method: st.sparsity.method,
        keepX: st.sparsity.keepX,
        keepH: st.sparsity.keepH,
        attentionDensity: st.sparsity.keepAttn,
        dipAttention: info.dipAttention,
        memoryBudget: model.defaults.memoryBudget ?? null,
        cacheFraction: st.sparsity.cacheFraction,
        contextSize: ctx,
        promptTokens: st.promptTokens,
        generatedTokens: generated,
        loadSeconds,
        prefillSeconds: st.prefillSeconds,
        decodeSeconds: st.decodeSeconds,
        prefillTokensPerSecond: st.prefillTokensPerSecond,
        decodeTokensPerSecond: st.decodeTokensPerSecond,
        // Over every token evaluated (prompt and generated): MLP column units found in the DRAM cache.
        hitRate: st.sparsity.hitRate,
        flashBytesPerToken: st.sparsity.flashBytesPerToken,
        dramBytesPerToken: st.sparsity.dramBytesPerToken,
        // Measured preadv bytes from the column store (a converted file under a budget; else 0).
        storeBytesPerToken: st.sparsity.storeBytesPerToken,
        storeReadSeconds: st.sparsity.storeReadSeconds,
        residentBytes: st.residentBytes,
        residentBytesBeforeLoad: rssBefore,
        maxResidentBytes: process.resourceUsage().maxRSS * 1024,
        dropCache: dropped ?? null,
      };
      if (io.json) io.out(JSON.stringify(result) + '\n');
      else io.out(formatResult(result));
      return 0;
    } finally {
      await model.dispose();
    }
  },
};

const mib = (b: number): string => (b >= 2 ** 20 || b === 0 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

function formatResult(r: {
  model: string; fileBytes: number; dipLayout: boolean; isa: string; threads: number; method: string; keepX: number; keepH: number;
  attentionDensity: number; dipAttention: boolean; memoryBudget: number | null; cacheFraction: number; promptTokens: number; generatedTokens: number; loadSeconds: number;
  prefillTokensPerSecond: number; decodeTokensPerSecond: number; hitRate: number; flashBytesPerToken: number;
  dramBytesPerToken: number; storeBytesPerToken: number; residentBytes: number; maxResidentBytes: number; dropCache: DropResult | null;
}): string {
  const lines = [
    `model:    ${r.model} (${mib(r.fileBytes)}, ${r.dipLayout ? `DIP layout${r.dipAttention ? ' with attention rows' : ''}` : 'standard layout'}), ` +
      `${r.isa}, ${r.threads} thread(s)`,
    `config:   ${r.method} keep_x ${r.keepX.toFixed(3)} keep_h ${r.keepH.toFixed(3)}` +
      `${r.attentionDensity < 1 ? `, attention density ${r.attentionDensity.toFixed(3)}` : ''}, memory budget ` +
      `${r.memoryBudget === null ? 'none' : mib(r.memoryBudget)} (columns cached: ${(100 * r.cacheFraction).toFixed(1)}%)`,
    `page cache: ${r.dropCache ? `dropped with ${r.dropCache.method} (${mib(r.dropCache.residentBefore)} resident before, ` +
      `${mib(r.dropCache.residentAfter)} after)` : 'left as it was'}`,
    `load:     ${r.loadSeconds.toFixed(2)} s`,
    `prefill:  ${r.prefillTokensPerSecond.toFixed(2)} tok/s (${r.promptTokens} tokens)`,
    `decode:   ${r.decodeTokensPerSecond.toFixed(2)} tok/s (${r.generatedTokens} tokens)`,
    `columns:  hit rate ${(100 * r.hitRate).toFixed(1)}%, flash ${mib(r.flashBytesPerToken)}/token, DRAM ${mib(r.dramBytesPerToken)}/token, ` +
      `read from the store ${mib(r.storeBytesPerToken)}/token`,
    `memory:   resident ${mib(r.residentBytes)} (peak ${mib(r.maxResidentBytes)})`,
  ];
  return lines.join('\n') + '\n';
}
