// flashdip sweep: methods x densities x budgets (and calibrated threshold tables) -> perplexity, simulated tokens/s and memory, as CSV
// rows and an SVG picture (perplexity against tokens/s and against memory, one curve per method).
// The SVG is written by hand: two scatter-and-line panels need no plotting library.
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
          memoryBytes: budget ?? model.defaults.bytes.mlp + model.defaults.bytes.static,
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

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

// One panel: x (log scale) against perplexity (log scale), a polyline per method sorted by x.
function panel(rows: SweepRow[], x: (r: SweepRow) => number, xLabel: string, left: number, methods: string[]): string {
  const W = 420, H = 300, pad = 50;
  const xs = rows.map(x).filter((v) => v > 0), ys = rows.map((r) => r.ppl).filter((v) => v > 0 && Number.isFinite(v));
  const lx = (v: number) => Math.log10(v), [x0, x1] = [Math.min(...xs.map(lx)), Math.max(...xs.map(lx))];
  const [y0, y1] = [Math.min(...ys.map(lx)), Math.max(...ys.map(lx))];
  const sx = (v: number) => left + pad + ((lx(v) - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (v: number) => H - pad + 20 - ((lx(v) - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const out = [
    `<rect x="${left + pad}" y="${70 - 20}" width="${W - 2 * pad}" height="${H - 2 * pad}" fill="none" stroke="#999"/>`,
    `<text x="${left + W / 2}" y="${H + 15}" text-anchor="middle" font-size="12">${esc(xLabel)} (log)</text>`,
    `<text x="${left + 12}" y="${H / 2}" font-size="12" transform="rotate(-90 ${left + 12} ${H / 2})" text-anchor="middle">perplexity (log)</text>`,
  ];
  for (const [v, anchor] of [[10 ** x0, 'start'], [10 ** x1, 'end']] as const)
    out.push(`<text x="${sx(v)}" y="${H - pad + 35}" font-size="10" text-anchor="${anchor}">${v.toPrecision(3)}</text>`);
  for (const v of [10 ** y0, 10 ** y1]) out.push(`<text x="${left + pad - 4}" y="${sy(v) + 3}" font-size="10" text-anchor="end">${v.toPrecision(3)}</text>`);
  methods.forEach((m, i) => {
    const pts = rows.filter((r) => r.method === m && x(r) > 0 && Number.isFinite(r.ppl)).sort((a, b) => x(a) - x(b));
    const c = COLORS[i % COLORS.length];
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts.map((r) => `${sx(x(r)).toFixed(1)},${sy(r.ppl).toFixed(1)}`).join(' ')}"/>`);
    for (const r of pts) out.push(`<circle cx="${sx(x(r)).toFixed(1)}" cy="${sy(r.ppl).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${m} density ${r.density} budget ${r.budget ?? 'none'}: ppl ${r.ppl.toFixed(3)}, ${r.tokensPerSecond.toFixed(1)} tok/s`)}</title></circle>`);
  });
  return out.join('\n');
}

export function sweepSvg(rows: SweepRow[], title: string): string {
  const methods = [...new Set(rows.map((r) => r.method))];
  const legend = methods.map((m, i) => `<rect x="${20 + i * 110}" y="332" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${34 + i * 110}" y="341" font-size="12">${esc(m)}</text>`);
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="860" height="360" font-family="sans-serif">',
    '<rect width="860" height="360" fill="white"/>',
    `<text x="430" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    panel(rows, (r) => r.tokensPerSecond, 'simulated tokens/s', 0, methods),
    panel(rows, (r) => r.memoryBytes, 'memory (bytes)', 430, methods),
    ...legend,
    '</svg>',
  ].join('\n') + '\n';
}
