// Teacher-forced perplexity over a text, the way the references in shared/ were made (DESIGN.md):
// tokenize once without BOS, split into consecutive chunks of ctx-1 tokens, evaluate each chunk from
// an empty KV cache as [BOS] + chunk, and score every text token exactly once (the first of a chunk
// from BOS alone), log-softmax in float64. The sliding-window variant instead scores, per window of
// ctx tokens advanced by `stride`, only the tokens not scored before (each with at least
// ctx - stride tokens of context).
import type { LoraSpec } from './lora';
import { abortedError, FlashdipError } from './errors';
import type { Model } from './model';
import type { Session } from './session';
import { checkEnum, checkInt, checkKeys, checkObject, checkProgress, checkSignal } from './options';
import { CacheOptions, mlpDensity, SparsityOptions } from './sparsity';

export interface PerplexityOptions {
  /** Tokens per evaluation window, BOS included (default 512). */
  ctx?: number;
  /** 'chunked' (default) or 'sliding'. */
  mode?: 'chunked' | 'sliding';
  /** Sliding mode: how far each window advances (default ctx / 2). */
  stride?: number;
  kvCacheType?: 'f16' | 'f32';
  /** Stop after scoring this many tokens (default: the whole text). */
  maxTokens?: number;
  /** Overrides the model's sparsity and cache policy. */
  sparsity?: SparsityOptions;
  cache?: CacheOptions;
  /** LoRA adapters applied to the model (see SessionOptions.loras). */
  loras?: LoraSpec[];
  /** Checked before each window: when aborted, perplexity throws ERR_ABORTED whose `partial` is the
   * result over the windows scored so far (undefined if none). */
  signal?: AbortSignal;
  /** Called after each window with the tokens scored so far and the tokens to score. */
  onProgress?: (done: number, total: number) => void;
}

export interface PerplexityResult {
  ppl: number;
  tokens: number;
  sumLogProb: number;
  meanNll: number;
  chunks: number;
  ctx: number;
  mode: 'chunked' | 'sliding';
  seconds: number;
  tokensPerSecond: number;
  method: string;
  keepX: number;
  keepH: number;
  cacheFraction: number;
  /** Column units (MLP, and attention's when it has columns) found in the DRAM cache, over all windows. */
  hitRate: number;
  flashBytesPerToken: number;
  dramBytesPerToken: number;
  /** Calibrated thresholds in use; and the realized kept fractions of x and h and the MLP density
   * they make over all windows (session.stats().sparsity), to set beside the target. */
  thresholds: boolean;
  keptX: number;
  keptH: number;
  density: number;
  /** Attention DIP: the fraction asked for (1: dense attention) and the realized one. */
  keepAttn: number;
  keptAttn: number;
}

const KEYS = ['ctx', 'mode', 'stride', 'kvCacheType', 'maxTokens', 'sparsity', 'cache', 'signal', 'onProgress', 'loras'] as const;

// log_softmax(logits)[target] in float64.
export function logProb(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[target] - max - Math.log(sum);
}

export async function perplexity(model: Model, text: string, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const o = checkObject('options', options);
  checkKeys('options', o, KEYS);
  const ctx = checkInt('ctx', o.ctx, 2, 1 << 20, 512);
  const mode = checkEnum('mode', o.mode, ['chunked', 'sliding'], 'chunked');
  const stride = checkInt('stride', o.stride, 1, ctx - 1, Math.max(1, Math.floor(ctx / 2)));
  const maxTokens = checkInt('maxTokens', o.maxTokens, 1, Number.MAX_SAFE_INTEGER);
  const signal = checkSignal('signal', o.signal);
  const onProgress = checkProgress('onProgress', o.onProgress);
  if (typeof text !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', 'text: must be a string');
  const bos = model.tokenizer.bosId;
  if (bos === null) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'the model has no BOS token to start each window with');
  let tokens = model.tokenize(text);
  if (maxTokens !== undefined) tokens = tokens.slice(0, maxTokens);
  if (tokens.length === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'text: no tokens to score');

  const session = model.createSession({
    contextSize: ctx,
    kvCacheType: (o.kvCacheType as 'f16' | 'f32' | undefined) ?? 'f32',
    sparsity: o.sparsity as SparsityOptions | undefined,
    cache: o.cache as CacheOptions | undefined,
    loras: o.loras as LoraSpec[] | undefined,
  });
  const cache = { hits: 0, units: 0, flash: 0, dram: 0, tokens: 0, keptX: 0, keptH: 0, keptAttn: 0 };
  const vocab = model.info.vocabSize;
  const t0 = performance.now();
  let sum = 0, scored = 0, chunks = 0, lastWindow = 0, stopped = false;
  try {
    // Each window: [BOS] + tokens[start, end); tokens[from, end) are scored.
    const windows: { start: number; end: number; from: number }[] = [];
    if (mode === 'chunked') {
      for (let s = 0; s < tokens.length; s += ctx - 1) windows.push({ start: s, end: Math.min(tokens.length, s + ctx - 1), from: s });
    } else {
      let done = 0;
      for (let s = 0; done < tokens.length; s += stride) {
        const end = Math.min(tokens.length, s + ctx - 1);
        windows.push({ start: s, end, from: done });
        done = end;
      }
    }
    for (const w of windows) {
      if (signal?.aborted) {
        stopped = true;
        break;
      }
      const st = session.stats().sparsity;  // accumulated before reset() clears it
      if (chunks > 0) account(cache, st, w.end - w.start + 1);
      session.reset();
      const input = [bos, ...tokens.slice(w.start, w.end)];
      const logits = await session.evaluate(input, { allLogits: true });
      for (let i = w.from; i < w.end; i++) {
        const pos = i - w.start; // logits at input position pos predict tokens[i]
        sum += logProb(logits.subarray(pos * vocab, (pos + 1) * vocab), tokens[i]);
        scored++;
      }
      chunks++;
      lastWindow = w.end - w.start + 1;
      onProgress?.(scored, tokens.length);
    }
    if (chunks > 0) account(cache, session.stats().sparsity, lastWindow);
  } finally {
    await session.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const result: PerplexityResult = {
    ppl: Math.exp(-sum / scored),
    tokens: scored,
    sumLogProb: sum,
    meanNll: -sum / scored,
    chunks,
    ctx,
    mode,
    seconds,
    tokensPerSecond: scored / seconds,
    method: session.sparsity.method,
    keepX: session.sparsity.keepX,
    keepH: session.sparsity.keepH,
    cacheFraction: session.cacheFraction,
    hitRate: cache.units > 0 ? cache.hits / cache.units : 1,
    flashBytesPerToken: cache.tokens > 0 ? cache.flash / cache.tokens : 0,
    dramBytesPerToken: cache.tokens > 0 ? cache.dram / cache.tokens : 0,
    thresholds: session.sparsity.thresholds !== undefined,
    keptX: cache.keptX / cache.tokens,
    keptH: cache.keptH / cache.tokens,
    density: mlpDensity(session.sparsity.method, cache.keptX / cache.tokens, cache.keptH / cache.tokens),
    keepAttn: session.sparsity.keepAttn,
    keptAttn: cache.keptAttn / cache.tokens,
  };
  if (stopped) throw abortedError('perplexity', signal!, scored > 0 ? result : undefined);
  return result;
}

type SparsityStats = ReturnType<Session['stats']>['sparsity'];

// Adds one window's cache figures (per-token averages over `tokens` evaluated tokens) to the totals.
function account(total: { hits: number; units: number; flash: number; dram: number; tokens: number; keptX: number; keptH: number; keptAttn: number },
  st: SparsityStats, tokens: number): void {
  for (const l of st.layers) {
    total.hits += l.ugHits + l.downHits + l.qkvHits + l.oHits;
    total.units += l.ugHits + l.ugMisses + l.downHits + l.downMisses + l.qkvHits + l.qkvMisses + l.oHits + l.oMisses;
  }
  total.flash += st.flashBytesPerToken * tokens;
  total.dram += st.dramBytesPerToken * tokens;
  total.tokens += tokens;
  total.keptX += st.keptX * tokens;
  total.keptAttn += st.keptAttn * tokens;
  total.keptH += st.keptH * tokens;
}
