import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { perplexity } from '../perplexity';
import type { CachePolicy, SparseMethod } from '../sparsity';
import type { Command } from './main';
import { numberFlag } from './main';

export const pplCommand: Command = {
  summary: 'perplexity of a model over a text file (teacher forcing)',
  usage:
    'flashdip ppl --model M --text FILE [--ctx N] [--mode chunked|sliding] [--stride N] [--max-tokens N]\n' +
    '       [--kv-type f16|f32] [--threads N] [--method dense|dip|dip-ca|glu|gate|up] [--density R]\n' +
    '       [--keep-x R] [--keep-h R] [--gamma G] [--fixed-top-n N] [--policy lru|lfu|none] [--memory-budget B] [--json]',
  options: {
    model: { type: 'string', short: 'm' },
    text: { type: 'string' },
    ctx: { type: 'string' },
    mode: { type: 'string' },
    stride: { type: 'string' },
    'max-tokens': { type: 'string' },
    'kv-type': { type: 'string' },
    threads: { type: 'string', short: 't' },
    method: { type: 'string' },
    density: { type: 'string' },
    'keep-x': { type: 'string' },
    'keep-h': { type: 'string' },
    gamma: { type: 'string' },
    'fixed-top-n': { type: 'string' },
    policy: { type: 'string' },
    'memory-budget': { type: 'string' },
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
    const model = await loadModel(v.model, {
      threads: numberFlag('threads', v.threads),
      memoryBudget: v['memory-budget'] as string | undefined,
      sparsity: {
        method: v.method as SparseMethod | undefined,
        density: numberFlag('density', v.density),
        keepX: numberFlag('keep-x', v['keep-x']),
        keepH: numberFlag('keep-h', v['keep-h']),
        gamma: numberFlag('gamma', v.gamma),
        fixedTopN: numberFlag('fixed-top-n', v['fixed-top-n']),
      },
      cache: { policy: v.policy as CachePolicy | undefined },
    });
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
            `${r.method} keep_x ${r.keepX.toFixed(3)} keep_h ${r.keepH.toFixed(3)}, hit rate ${(100 * r.hitRate).toFixed(1)}%, ` +
            `${r.tokensPerSecond.toFixed(0)} tok/s\n`,
        );
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
