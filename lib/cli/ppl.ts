import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { perplexity } from '../perplexity';
import type { Command } from './main';
import { loadOptionsFromFlags, MODEL_FLAGS, MODEL_FLAGS_USAGE, numberFlag, readTextFlag } from './flags';

export const pplCommand: Command = {
  summary: 'perplexity of a model over a text file (teacher forcing)',
  usage:
    'flashdip ppl --model M --text FILE [--ctx N] [--mode chunked|sliding] [--stride N] [--max-tokens N]\n' +
    '       [--kv-type f16|f32] ' + MODEL_FLAGS_USAGE + ' [--json]',
  options: {
    ...MODEL_FLAGS,
    text: { type: 'string' },
    ctx: { type: 'string' },
    mode: { type: 'string' },
    stride: { type: 'string' },
    'max-tokens': { type: 'string' },
    'kv-type': { type: 'string' },
  },
  async run(v, _positionals, io) {
    if (typeof v.model !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--model is required');
    const text = readTextFlag(v, 'text');
    const model = await loadModel(v.model, loadOptionsFromFlags(v));
    try {
      const r = await perplexity(model, text, {
        ctx: numberFlag('ctx', v.ctx),
        mode: v.mode as 'chunked' | 'sliding' | undefined,
        stride: numberFlag('stride', v.stride),
        maxTokens: numberFlag('max-tokens', v['max-tokens']),
        kvCacheType: v['kv-type'] as 'f16' | 'f32' | undefined,
      });
      if (io.json) io.out(JSON.stringify(r) + '\n');
      else
        io.out(
          `perplexity ${r.ppl.toFixed(5)} over ${r.tokens} tokens (${r.chunks} windows of ${r.ctx}, ${r.mode}), ` +
            `${r.method}${r.thresholds ? ' (calibrated thresholds)' : ''} keep_x ${r.keepX.toFixed(3)} keep_h ${r.keepH.toFixed(3)}, ` +
            `realized density ${r.density.toFixed(3)} (x ${r.keptX.toFixed(3)}, h ${r.keptH.toFixed(3)}), hit rate ${(100 * r.hitRate).toFixed(1)}%, ` +
            `${r.tokensPerSecond.toFixed(0)} tok/s\n`,
        );
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
