import { loadModel } from '../model';
import type { Command } from './main';
import { loadOptionsFromFlags, MODEL_FLAGS, MODEL_FLAGS_USAGE, numberFlag } from './flags';
import { FlashdipError } from '../errors';

export const runCommand: Command = {
  summary: 'generate text from a prompt',
  usage:
    'flashdip run --model M --prompt P [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]\n' +
    '       [--repeat-penalty R] [--seed S] [--stop STR]... [--ctx N] [--kv-type f16|f32]\n' +
    '       [--logits N] ' + MODEL_FLAGS_USAGE + ' [--json]',
  options: {
    ...MODEL_FLAGS,
    prompt: { type: 'string', short: 'p' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    'repeat-penalty': { type: 'string' },
    seed: { type: 'string' },
    stop: { type: 'string', multiple: true },
    ctx: { type: 'string' },
    'kv-type': { type: 'string' },
    logits: { type: 'string' },
  },
  async run(v, _positionals, io) {
    if (typeof v.model !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--model is required');
    if (typeof v.prompt !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--prompt is required');
    const keepLogits = numberFlag('logits', v.logits) ?? 0;
    const model = await loadModel(v.model, loadOptionsFromFlags(v));
    try {
      const session = model.createSession({
        contextSize: numberFlag('ctx', v.ctx),
        seed: numberFlag('seed', v.seed),
        kvCacheType: v['kv-type'] as 'f16' | 'f32' | undefined,
      });
      const promptTokens = model.tokenize(v.prompt, { addSpecial: true });
      const logits: number[][] = [];
      let text = '';
      for await (const piece of session.generate(promptTokens, {
        maxTokens: numberFlag('max-tokens', v['max-tokens']) ?? 256,
        temperature: numberFlag('temperature', v.temperature),
        topK: numberFlag('top-k', v['top-k']),
        topP: numberFlag('top-p', v['top-p']),
        minP: numberFlag('min-p', v['min-p']),
        repeatPenalty: numberFlag('repeat-penalty', v['repeat-penalty']),
        stop: v.stop as string[] | undefined,
        onLogits: keepLogits > 0 ? (l) => { if (logits.length < keepLogits) logits.push(Array.from(l)); } : undefined,
      })) {
        text += piece.text;
        if (!io.json) io.out(piece.text);
      }
      const tokens = session.tokens.slice(promptTokens.length);
      const stats = session.stats();
      if (io.json) {
        io.out(JSON.stringify({ promptTokens, tokens, text, stats, ...(keepLogits > 0 ? { logits } : {}) }) + '\n');
      } else {
        io.out('\n');
        io.err(
          `\n${stats.promptTokens} prompt tokens at ${stats.prefillTokensPerSecond.toFixed(1)} tok/s, ` +
            `${stats.generatedTokens} generated at ${stats.decodeTokensPerSecond.toFixed(1)} tok/s\n`,
        );
      }
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
