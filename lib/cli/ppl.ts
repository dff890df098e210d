import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { perplexity } from '../perplexity';
import type { Command } from './main';
import { numberFlag } from './main';

export const pplCommand: Command = {
  summary: 'perplexity of a model over a text file (teacher forcing)',
  usage:
    'flashdip ppl --model M --text FILE [--ctx N] [--mode chunked|sliding] [--stride N] [--max-tokens N]\n' +
    '       [--kv-type f16|f32] [--threads N] [--json]',
  options: {
    model: { type: 'string', short: 'm' },
    text: { type: 'string' },
    ctx: { type: 'string' },
    mode: { type: 'string' },
    stride: { type: 'string' },
    'max-tokens': { type: 'string' },
    'kv-type': { type: 'string' },
    threads: { type: 'string', short: 't' },
  },
  async run(v, _positionals, io) {
    if (typeof v.model !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--model is required');
    if (typeof v.text !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--text is required');
    let text: string;
    try {
      text = fs.readFileSync(v.text, 'utf8');
    } catch (err) {
      throw new FlashdipError('ERR_IO', `cannot read ${v.text}: ${(err as Error).message}`);
    }
    const model = await loadModel(v.model, { threads: numberFlag('threads', v.threads) });
    try {
      const r = await perplexity(model, text, {
        ctx: numberFlag('ctx', v.ctx),
        mode: v.mode as 'chunked' | 'sliding' | undefined,
        stride: numberFlag('stride', v.stride),
        maxTokens: numberFlag('max-tokens', v['max-tokens']),
        kvCacheType: v['kv-type'] as 'f16' | 'f32' | undefined,
      });
      if (io.json) io.out(JSON.stringify({ method: 'dense', ...r }) + '\n');
      else io.out(`perplexity ${r.ppl.toFixed(5)} over ${r.tokens} tokens (${r.chunks} windows of ${r.ctx}, ${r.mode}), ${r.tokensPerSecond.toFixed(0)} tok/s\n`);
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
