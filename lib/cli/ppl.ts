import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { perplexity, PerplexityResult } from '../perplexity';
import type { Command } from './command';
import { progress } from './progress';
import { intFlag, loadLoraFlags, loadOptionsFromFlags, loraFlags, MODEL_FLAGS, modelFlag, readTextFlag } from './flags';

export const pplCommand: Command = {
  name: 'ppl',
  summary: 'perplexity of a model over a text file (teacher forcing)',
  flags: [
    ...MODEL_FLAGS,
    { name: 'text', arg: 'FILE', description: 'the text to score (UTF-8)', default: 'required', example: 'eval.txt' },
    { name: 'ctx', arg: 'N', description: 'tokens per window, BOS included', default: '512', example: '128', api: 'ctx' },
    { name: 'mode', arg: 'MODE', description: 'chunked (each window from an empty cache) or sliding', default: 'chunked', example: 'sliding',
      api: 'mode' },
    { name: 'stride', arg: 'N', description: 'sliding mode: how far each window advances', default: 'ctx / 2', example: '64', api: 'stride' },
    { name: 'max-tokens', arg: 'N', description: 'score at most N tokens of the text', default: 'the whole text', example: '1000',
      api: 'maxTokens' },
    { name: 'kv-type', arg: 'TYPE', description: 'KV cache type: f16 or f32', default: 'f32', example: 'f16', api: 'kvCacheType' },
  ],
  examples: [
    'flashdip ppl --model model.gguf --text eval.txt --ctx 512',
    'flashdip ppl -m model.gguf --text eval.txt --method dip --density 0.5 --json',
  ],
  interruptible: true,
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const text = readTextFlag(v, 'text');
    const options = {
      ctx: intFlag('ctx', v.ctx),
      mode: v.mode as 'chunked' | 'sliding' | undefined,
      stride: intFlag('stride', v.stride),
      maxTokens: intFlag('max-tokens', v['max-tokens']),
      kvCacheType: v['kv-type'] as 'f16' | 'f32' | undefined,
      signal: io.signal,
    };
    const loras = loraFlags(v);
    const model = await loadModel(file, loadOptionsFromFlags(v));
    let r: PerplexityResult, partial = false;
    io.started(`scoring ${v.text}`);
    const bar = progress(io, 'ppl', 'tokens');
    try {
      r = await perplexity(model, text, { ...options, loras: await loadLoraFlags(model, loras), onProgress: bar.onProgress });
    } catch (err) {
      // Ctrl-C: the score over the windows done so far (with none done, the error stands).
      if (!(err instanceof FlashdipError && err.code === 'ERR_ABORTED' && err.partial)) throw err;
      r = err.partial as PerplexityResult;
      partial = true;
    } finally {
      bar.stop();
      await model.dispose();
    }
    if (io.json) io.out(JSON.stringify(partial ? { ...r, partial } : r) + '\n');
    else
      io.out(
        `${partial ? 'partial (interrupted): ' : ''}perplexity ${r.ppl.toFixed(5)} over ${r.tokens} tokens (${r.chunks} windows of ${r.ctx}, ${r.mode}), ` +
          `${r.method}${r.thresholds ? ' (calibrated thresholds)' : ''} keep_x ${r.keepX.toFixed(3)} keep_h ${r.keepH.toFixed(3)}, ` +
          `realized density ${r.density.toFixed(3)} (x ${r.keptX.toFixed(3)}, h ${r.keptH.toFixed(3)})` +
          `${r.keepAttn < 1 ? `, attention ${r.keptAttn.toFixed(3)}` : ''}, hit rate ${(100 * r.hitRate).toFixed(1)}%, ` +
          `${r.tokensPerSecond.toFixed(0)} tok/s\n`,
      );
    return 0;
  },
};
