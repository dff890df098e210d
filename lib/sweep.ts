// flashdip sweep: methods x densities x budgets (and calibrated threshold tables) -> perplexity, simulated tokens/s and memory, as CSV
// rows, and the SVG picture of them (lib/plot.ts).
import { abortedError, FlashdipError } from './errors';
import { loadModel } from './model';
import { checkProgress, checkSignal } from './options';
import { perplexity } from './perplexity';
import { DeviceProfile, recordRun, simulate } from './simulate';
import type { SparseMethod, SparsityOptions } from './sparsity';
import { readThresholds, ThresholdTable } from './thresholds';

export interface SweepOptions {
  methods: SparseMethod[];
  densities: number[];
  /** Memory budgets in bytes; undefined = everything in DRAM. */
  budgets: (number | undefined)[];
  device: DeviceProfile;
  ctx?: number;
  maxTokens?: number;
  gamma?: number;
  /** Calibrated threshold tables (files or objects): each adds a run per budget, as method '<method>+thr'. */
  thresholds?: (string | ThresholdTable)[];
  onRow?: (row: SweepRow) => void;
  /** Checked before each run and passed to it: when aborted, sweep throws ERR_ABORTED whose `partial`
   * is the rows finished so far (the interrupted run is left out). */
  signal?: AbortSignal;
  /** Called as the runs go with the tokens evaluated so far and the tokens to evaluate (each run
   * scores the text and records it for the simulator: 2 x tokens per run). */
  onProgress?: (done: number, total: number) => void;
}

export interface SweepRow {
  method: string;
  density: number;
  budget: number | null;
  memoryBytes: number;
  ppl: number;
  hitRate: number;
  tokensPerSecond: number;
  flashBytesPerToken: number;
  /** The MLP density the run realized (top-k: about the target; thresholds: what they gave). */
  realizedDensity: number;
}

export async function sweep(path: string, text: string, o: SweepOptions): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  const signal = checkSignal('signal', o.signal);
  const onProgress = checkProgress('onProgress', o.onProgress);
  const tables = (o.thresholds ?? []).map((t) => readThresholds('thresholds', t));
  const runs: { label: string; density: number; sparsity: SparsityOptions }[] = [];
  for (const method of o.methods)
    for (const density of method === 'dense' ? [1] : o.densities)
      runs.push({
        label: method, density,
        sparsity: method === 'dense' ? { method } : { method, density, ...(method === 'dip-ca' && o.gamma !== undefined ? { gamma: o.gamma } : {}) },
      });
  for (const t of tables) runs.push({ label: `${t.method}+thr`, density: t.density, sparsity: { thresholds: t } });
  let tokens = -1, finished = 0;  // tokens per pass over the text (known once a model is loaded); passes done
  const progress = (done: number) => onProgress?.(finished * tokens + done, 2 * tokens * runs.length * o.budgets.length);
  for (const budget of o.budgets) {
    for (const { label, density, sparsity } of runs) {
      if (signal?.aborted) throw abortedError('sweep', signal, rows);
      const model = await loadModel(path, { memoryBudget: budget, sparsity });
      try {
        if (tokens < 0) tokens = Math.min(model.tokenize(text).length, o.maxTokens ?? Infinity);
        const p = await perplexity(model, text, { ctx: o.ctx, maxTokens: o.maxTokens, signal, onProgress: progress });
        finished++;
        const sim = simulate(await recordRun(model, text, { ctx: o.ctx, maxTokens: o.maxTokens, signal, onProgress: progress }), o.device);
        finished++;
        const row: SweepRow = {
          method: label, density, budget: budget ?? null,
          memoryBytes: budget ?? model.defaults.bytes.mlp + model.defaults.bytes.attn + model.defaults.bytes.static,
          ppl: p.ppl, hitRate: p.hitRate, tokensPerSecond: sim.tokensPerSecond, flashBytesPerToken: p.flashBytesPerToken,
          realizedDensity: p.density,
        };
        rows.push(row);
        o.onRow?.(row);
      } catch (err) {
        if (err instanceof FlashdipError && err.code === 'ERR_ABORTED' && signal?.aborted) throw abortedError('sweep', signal, rows);
        throw err;
      } finally {
        await model.dispose();
      }
    }
  }
  return rows;
}

export function sweepCsv(rows: SweepRow[]): string {
  const head = 'method,density,budget_bytes,memory_bytes,perplexity,hit_rate,tokens_per_second,flash_bytes_per_token,realized_density';
  return [head, ...rows.map((r) => [r.method, r.density, r.budget ?? '', r.memoryBytes, r.ppl, r.hitRate, r.tokensPerSecond, r.flashBytesPerToken, r.realizedDensity].join(','))].join('\n') + '\n';
}

export { sweepSvg } from './plot';
