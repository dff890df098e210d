import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import type { Command } from './command';
import { intFlag, loadOptionsFromFlags, MODEL_FLAGS, modelFlag, numberFlag, requiredFlag } from './flags';

export const runCommand: Command = {
  name: 'run',
  summary: 'generate text from a prompt',
  flags: [
    ...MODEL_FLAGS,
    { name: 'prompt', short: 'p', arg: 'TEXT', description: 'the prompt (BOS is added as the vocabulary asks)', default: 'required',
      example: '"Once upon a time"' },
    { name: 'max-tokens', short: 'n', arg: 'N', description: 'tokens to generate at most', default: '256', example: '64', api: 'maxTokens' },
    { name: 'temperature', arg: 'T', description: 'sampling temperature; 0 is greedy', default: '0.8', example: '0', api: 'temperature' },
    { name: 'top-k', arg: 'K', description: 'keep the K most likely tokens; 0 disables', default: '40', example: '20', api: 'topK' },
    { name: 'top-p', arg: 'P', description: 'nucleus sampling threshold in (0, 1]; 1 disables', default: '0.95', example: '0.9', api: 'topP' },
    { name: 'min-p', arg: 'P', description: 'keep tokens with probability >= P times the largest; 0 disables', default: '0.05', example: '0.1',
      api: 'minP' },
    { name: 'repeat-penalty', arg: 'R', description: 'divide repeated tokens\' positive logits by R (> 0); 1 disables', default: '1',
      example: '1.1', api: 'repeatPenalty' },
    { name: 'repeat-last-n', arg: 'N', description: 'tokens the penalties look back over; 0 disables them', default: '64', example: '128',
      api: 'repeatLastN' },
    { name: 'frequency-penalty', arg: 'F', description: 'subtracted from a logit per occurrence in the window (may be negative)', default: '0',
      example: '-0.5', api: 'frequencyPenalty' },
    { name: 'presence-penalty', arg: 'F', description: 'subtracted from a logit once if it occurs in the window (may be negative)',
      default: '0', example: '0.5', api: 'presencePenalty' },
    { name: 'seed', arg: 'S', description: 'sampler seed (a whole number >= 0); the same seed gives the same text', default: '0',
      example: '42', api: 'seed' },
    { name: 'stop', arg: 'STR', description: 'stop before this string (repeatable; never printed)', default: 'none', example: '"The end"',
      multiple: true, api: 'stop' },
    { name: 'ctx', arg: 'N', description: 'context size in tokens', default: 'the model\'s, at most 4096', example: '2048', api: 'contextSize' },
    { name: 'kv-type', arg: 'TYPE', description: 'KV cache type: f16 or f32', default: 'f16', example: 'f32', api: 'kvCacheType' },
    { name: 'logits', arg: 'N', description: 'with --json: include the first N logit vectors', default: '0', example: '4' },
  ],
  examples: [
    'flashdip run --model model.gguf --prompt "Once upon a time" --max-tokens 64 --temperature 0',
    'flashdip run -m model.dip.gguf -p "Hello" --method dip-ca --density 0.5 --memory-budget 650MB --json',
  ],
  interruptible: true,
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const prompt = requiredFlag(v, 'prompt');
    const keepLogits = intFlag('logits', v.logits) ?? 0;
    if (keepLogits < 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--logits: must be a whole number >= 0, got ${keepLogits}`);
    const generateOptions = {
      maxTokens: intFlag('max-tokens', v['max-tokens']) ?? 256,
      temperature: numberFlag('temperature', v.temperature),
      topK: intFlag('top-k', v['top-k']),
      topP: numberFlag('top-p', v['top-p']),
      minP: numberFlag('min-p', v['min-p']),
      repeatPenalty: numberFlag('repeat-penalty', v['repeat-penalty']),
      repeatLastN: intFlag('repeat-last-n', v['repeat-last-n']),
      frequencyPenalty: numberFlag('frequency-penalty', v['frequency-penalty']),
      presencePenalty: numberFlag('presence-penalty', v['presence-penalty']),
      stop: v.stop as string[] | undefined,
    };
    const sessionOptions = {
      contextSize: intFlag('ctx', v.ctx),
      seed: intFlag('seed', v.seed),
      kvCacheType: v['kv-type'] as 'f16' | 'f32' | undefined,
    };
    const model = await loadModel(file, loadOptionsFromFlags(v));
    try {
      const session = model.createSession(sessionOptions);
      const promptTokens = model.tokenize(prompt, { addSpecial: true });
      const logits: number[][] = [];
      let text = '';
      // The prompt is printed with the first piece, once the options have passed the API's checks.
      let shown = io.json;
      const show = (piece: string): void => {
        if (!shown) io.out(prompt);
        shown = true;
        if (!io.json) io.out(piece);
      };
      let partial = false;
      if (io.json) io.started('generating');  // (text mode streams the text itself)
      try {
        for await (const piece of session.generate(promptTokens, {
          ...generateOptions,
          signal: io.signal,
          onLogits: keepLogits > 0 ? (l) => { if (logits.length < keepLogits) logits.push(Array.from(l)); } : undefined,
        })) {
          text += piece.text;
          show(piece.text);
        }
      } catch (err) {
        // Ctrl-C: what was generated so far is the result.
        if (!(err instanceof FlashdipError && err.code === 'ERR_ABORTED' && io.signal.aborted)) {
          if (shown && !io.json) io.out('\n');
          throw err;
        }
        partial = true;
      }
      const tokens = session.tokens.slice(promptTokens.length);
      const stats = session.stats();
      if (io.json) {
        io.out(JSON.stringify({ promptTokens, tokens, text, stats, ...(keepLogits > 0 ? { logits } : {}), ...(partial ? { partial } : {}) }) + '\n');
      } else {
        show('\n');
        const sp = stats.sparsity;
        const sparse = sp.method !== 'dense' ? `, ${sp.method} hit rate ${(100 * sp.hitRate).toFixed(1)}%, density ${sp.density.toFixed(3)}` : '';
        io.err(
          `${partial ? 'partial (interrupted): ' : ''}${stats.promptTokens} prompt tokens at ${stats.prefillTokensPerSecond.toFixed(1)} tok/s, ` +
            `${stats.generatedTokens} generated at ${stats.decodeTokensPerSecond.toFixed(1)} tok/s${sparse}\n`,
        );
      }
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
