// The planner (`flashdip plan`): perplexity on a text for a grid of configurations under one memory
// budget, speed predicted by the simulator on a device profile, and the fastest configuration within
// a perplexity bound written as a plan: `{ version, memoryBudget, sparsity, cache }`, which is a
// loadModel options object as it stands (`loadModel(path, plan)`, `--plan PLAN.json`).
import { abortedError, FlashdipError, invalidArgument } from './errors';
import { loadModel } from './model';
import { checkInt, checkKeys, checkNumber, checkObject, checkProgress, checkSignal } from './options';
import { perplexity } from './perplexity';
import { Plan, PLAN_VERSION } from './plan-file';
import { checkDevice, DeviceProfile, DEVICES, recordRun, simulate } from './simulate';
import { parseBudget, resolveSparsity, SparsityOptions } from './sparsity';
import { calibrate, ThresholdTable } from './thresholds';

/**
 * The configurations the planner tries. Each axis applies where it means something: densities to
 * the sparse methods, gammas and read blocks to dip-ca, thresholds to dip and dip-ca.
 * Another axis is one field here plus one loop in planGrid (e.g. the attention density of branch
 * `attn`: `attentionDensities: number[]`, set as `sparsity.attentionDensity` on every candidate).
 */
export interface PlanGrid {
  methods: ('dense' | 'dip' | 'dip-ca')[];
  /** MLP densities of the sparse methods. */
  densities: number[];
  /** DIP-CA's gamma. */
  gammas: number[];
  /** DIP-CA's read block: 0 = per-column reads, else bytes (or '64KiB'). */
  readBlocks: (number | string)[];
  /** Also try thresholds calibrated on the text (one table per density) instead of top-k. */
  thresholds: boolean;
}

export const DEFAULT_GRID: PlanGrid = {
  methods: ['dense', 'dip', 'dip-ca'],
  densities: [0.8, 0.65, 0.5, 0.4],
  gammas: [0.1, 0.2, 0.5],
  readBlocks: [0, '64KiB'],
  thresholds: true,
};

/** One configuration: its sparsity options (a calibrated table is named by its density until made). */
export interface PlanCandidate {
  sparsity: SparsityOptions;
  /** Calibrate thresholds for this density (dip targets) and use them instead of top-k. */
  calibrateDensity?: number;
}

/** The grid's configurations, dense first. */
export function planGrid(grid: PlanGrid): PlanCandidate[] {
  const out: PlanCandidate[] = [];
  for (const method of grid.methods) {
    if (method === 'dense') {
      out.push({ sparsity: { method } });
      continue;
    }
    for (const density of grid.densities)
      for (const thr of grid.thresholds ? [false, true] : [false]) {
        const base: SparsityOptions = thr ? { method } : { method, density };
        const extra = thr ? { calibrateDensity: density } : {};
        if (method === 'dip') {
          out.push({ sparsity: base, ...extra });
          continue;
        }
        for (const gamma of grid.gammas)
          for (const readBlock of grid.readBlocks)
            out.push({ sparsity: { ...base, gamma, ...(readBlock === 0 ? {} : { readBlock }) }, ...extra });
      }
  }
  // attention density (branch `attn`): for (const a of grid.attentionDensities) ... sparsity.attentionDensity = a
  return out;
}

export interface PlanOptions {
  /** The DRAM budget every configuration runs under (bytes or '2MB'). */
  memoryBudget: number | string;
  /** Largest perplexity increase over dense accepted, as a fraction (default 0.1: 10%). */
  maxPplIncrease?: number;
  /** The device the speed is predicted for (default: the paper's phone). */
  device?: DeviceProfile;
  /** Tokens per window, BOS included (default 512), as `ppl` makes them; maxTokens: of the text. */
  ctx?: number;
  maxTokens?: number;
  /** Tokens of the text (at most) the speed is predicted over: the recorded masks take memory (default 1024). */
  simulateTokens?: number;
  threads?: number;
  /** The configurations (default DEFAULT_GRID). */
  grid?: Partial<PlanGrid>;
  /** Checked between runs: ERR_ABORTED whose `partial` is the PlanResult over the configurations
   * finished (undefined before dense is done: nothing to compare with). */
  signal?: AbortSignal;
  /** Called as the runs go with the tokens evaluated so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Called after each configuration. */
  onCandidate?: (entry: PlanEntry) => void;
}

const KEYS = ['memoryBudget', 'maxPplIncrease', 'device', 'ctx', 'maxTokens', 'simulateTokens', 'threads', 'grid', 'signal', 'onProgress', 'onCandidate'] as const;
const GRID_KEYS = ['methods', 'densities', 'gammas', 'readBlocks', 'thresholds'] as const;

export interface PlanEntry {
  sparsity: SparsityOptions;
  ppl: number;
  pplIncrease: number;
  /** Predicted by the simulator on the device. */
  tokensPerSecond: number;
  /** The MLP density realized on the text. */
  density: number;
  hitRate: number;
}

export interface PlanResult {
  plan: Plan;
  chosen: PlanEntry;
  /** The Pareto front of perplexity against predicted speed, fastest first. */
  front: PlanEntry[];
  dense: { ppl: number };
  candidates: PlanEntry[];
  device: DeviceProfile;
  maxPplIncrease: number;
}

/** Runs the grid on the model at `path` and picks the fastest configuration within the bound. */
export async function plan(path: string, text: string, options: PlanOptions): Promise<PlanResult> {
  const o = checkObject('options', options);
  checkKeys('options', o, KEYS);
  if (o.memoryBudget === undefined) throw invalidArgument('memoryBudget', 'is required: the planner fits a budget');
  const memoryBudget = parseBudget(o.memoryBudget)!;
  const maxPplIncrease = checkNumber('maxPplIncrease', o.maxPplIncrease, 0, 1e6, 0.1);
  const device = checkDevice(o.device ?? DEVICES.phone);
  const ctx = checkInt('ctx', o.ctx, 2, 1 << 20, 512);
  const maxTokens = checkInt('maxTokens', o.maxTokens, 1, Number.MAX_SAFE_INTEGER);
  const simulateTokens = checkInt('simulateTokens', o.simulateTokens, 1, Number.MAX_SAFE_INTEGER, 1024);
  const threads = checkInt('threads', o.threads, 1, 256);
  const signal = checkSignal('signal', o.signal);
  const onProgress = checkProgress('onProgress', o.onProgress);
  if (o.onCandidate !== undefined && typeof o.onCandidate !== 'function') throw invalidArgument('onCandidate', 'must be a function');
  const onCandidate = o.onCandidate as ((e: PlanEntry) => void) | undefined;
  const g = checkObject('grid', o.grid);
  checkKeys('grid', g, GRID_KEYS);
  const grid: PlanGrid = { ...DEFAULT_GRID, ...(g as Partial<PlanGrid>) };
  for (const k of ['methods', 'densities', 'gammas', 'readBlocks'] as const)
    if (!Array.isArray(grid[k]) || grid[k].length === 0) throw invalidArgument(`grid.${k}`, 'must be a non-empty array');
  for (const m of grid.methods)
    if (!['dense', 'dip', 'dip-ca'].includes(m)) throw invalidArgument('grid.methods', `the planner tries dense, dip and dip-ca, not ${JSON.stringify(m)}`);
  if (typeof grid.thresholds !== 'boolean') throw invalidArgument('grid.thresholds', 'must be a boolean');
  if (!grid.methods.includes('dense')) throw invalidArgument('grid.methods', "must include 'dense' (the reference perplexity)");
  const candidates = planGrid(grid);
  // Every candidate's options are checked before any work.
  for (const c of candidates) resolveSparsity(c.calibrateDensity !== undefined ? { ...c.sparsity, density: c.calibrateDensity } : c.sparsity, undefined);
  if (typeof text !== 'string') throw invalidArgument('text', 'must be a string');

  const entries: PlanEntry[] = [];
  const tables = new Map<number, ThresholdTable>();
  let tokens = -1, simTokens = -1;  // tokens scored per pass, and recorded per simulation
  const calibrations = new Set(candidates.map((c) => c.calibrateDensity).filter((d) => d !== undefined)).size;
  const passes = candidates.length + calibrations;
  const total = () => passes * tokens + candidates.length * simTokens;
  let base = 0;  // tokens of the passes done
  const progress = (n: number) => onProgress?.(base + n, total());
  const result = (): PlanResult | undefined => (entries.length ? summarize(entries, memoryBudget, maxPplIncrease, device) : undefined);
  for (const c of candidates) {
    if (signal?.aborted) throw abortedError('plan', signal, result());
    let sparsity = c.sparsity;
    const model = await loadModel(path, { memoryBudget, threads, sparsity: c.calibrateDensity !== undefined ? { method: 'dense' } : sparsity });
    try {
      if (tokens < 0) {
        tokens = Math.min(model.tokenize(text).length, maxTokens ?? Infinity);
        simTokens = Math.min(tokens, simulateTokens);
      }
      if (c.calibrateDensity !== undefined) {
        // Thresholds calibrated on the text for this density: dip's table also serves dip-ca.
        let table = tables.get(c.calibrateDensity);
        if (!table) {
          // On the model without the budget: the calibration session's score histograms are scratch
          // the budget would have to hold (megabytes), and dip's masks, hence its thresholds, do not
          // depend on the cache.
          const free = await loadModel(path, { threads, sparsity: { method: 'dense' } });
          try {
            table = await calibrate(free, text, { method: 'dip', density: c.calibrateDensity, ctx, tokens, signal, onProgress: progress });
          } finally {
            await free.dispose();
          }
          tables.set(c.calibrateDensity, table);
          base += tokens;
        }
        sparsity = { ...sparsity, thresholds: table };
      }
    } catch (err) {
      await model.dispose();
      throw stopped(err, signal, result);
    }
    await model.dispose();
    const run = await loadModel(path, { memoryBudget, threads, sparsity });
    try {
      const p = await perplexity(run, text, { ctx, maxTokens, signal, onProgress: progress });
      base += tokens;
      const sim = simulate(await recordRun(run, text, { ctx, maxTokens: simTokens, signal, onProgress: progress }), device);
      base += simTokens;
      const densePpl = entries[0]?.ppl ?? p.ppl;  // dense runs first
      const entry: PlanEntry = {
        sparsity, ppl: p.ppl, pplIncrease: p.ppl / densePpl - 1, tokensPerSecond: sim.tokensPerSecond, density: p.density, hitRate: p.hitRate,
      };
      entries.push(entry);
      onCandidate?.(entry);
    } catch (err) {
      throw stopped(err, signal, result);
    } finally {
      await run.dispose();
    }
  }
  return summarize(entries, memoryBudget, maxPplIncrease, device);
}

function stopped(err: unknown, signal: AbortSignal | undefined, result: () => PlanResult | undefined): unknown {
  if (err instanceof FlashdipError && err.code === 'ERR_ABORTED' && signal?.aborted) return abortedError('plan', signal, result());
  return err;
}

// The choice (fastest within the bound; dense is always within it) and the Pareto front.
function summarize(entries: PlanEntry[], memoryBudget: number, maxPplIncrease: number, device: DeviceProfile): PlanResult {
  const dense = entries[0];
  const ok = entries.filter((e) => e.pplIncrease <= maxPplIncrease);
  const chosen = ok.reduce((a, b) => (b.tokensPerSecond > a.tokensPerSecond ? b : a), dense);
  const front: PlanEntry[] = [];
  for (const e of [...entries].sort((a, b) => b.tokensPerSecond - a.tokensPerSecond || a.ppl - b.ppl))
    if (front.length === 0 || e.ppl < front[front.length - 1].ppl) front.push(e);
  return {
    plan: { version: PLAN_VERSION, memoryBudget, sparsity: chosen.sparsity, cache: {} },
    chosen, front, dense: { ppl: dense.ppl }, candidates: entries, device, maxPplIncrease,
  };
}
