// The kernel section of `npm run bench`: gather-GEMV (gather_axpy) bandwidth at density 0.5 of every
// registered gather kernel (kernels.info().kernels: each row type on each ISA this CPU runs) for rows of
// several sizes against this machine's single-thread memcpy, measured in the same run (interleaved
// with the gathers, which are timed in rounds over all of them); dense GEMV bandwidth of every registered GEMV kernel; top-k
// (topk_select) microseconds per call. The timing loops are native (flashdip/bench.h, through
// `kernels.bench`); this file only picks the sizes and formats the table.
//
// bench/run.ts runs it in a child process (`ts-node bench/kernels.ts --child [--quick]` prints one
// JSON object) so that its 400 MiB of buffers never share a process with an engine being measured.
import type { GatherBench, GemvBench, TopkBench } from '../lib/binding';

const STORE_BYTES = 256 * 2 ** 20; // well beyond this machine's L3: rows and matrices come from DRAM

/** Target row sizes of the gather: 4 KiB (a page: a down-projection row of a 2-4B model at q8_0) and up. */
const ROW_TARGETS = [4096, 16384, 65536];
/** Top-k sizes: 2048 (the ~1B's MLP input), 5632 (its FFN), 14336 (Llama-3-8B's FFN). */
const TOPK_SIZES = [2048, 5632, 14336];
/** Dense GEMV shape: the ~1B's up/gate projection (n = 2048 inputs, 5632 rows). */
const GEMV_SHAPE = { n: 2048, rows: 5632 };

export interface KernelResults {
  isa: string;
  storeBytes: number;
  memcpyBps: number;
  /** Rounds over the gathers and repetitions per gather per round (absent in reports saved before). */
  rounds?: number;
  gatherReps?: number;
  /** target: the row size aimed at (ROW_TARGETS), which pairs the types' rows for the per-byte ratios. */
  // perMemcpy, perRead: the median over the rounds of gather / memcpy and gather / read.
  gather: (GatherBench & { type: string; isa: string; target: number; perMemcpy?: number; perRead?: number })[];
  gemv: (GemvBench & { type: string; isa: string })[];
  topk: TopkBench[];
}

/**
 * Times every registered gather and GEMV kernel this CPU runs (kernels.info().kernels: the native
 * registry), each with its ISA selected, and top-k on the ISA in use. storeBytes: only for a quick
 * check that the section prints (rows then come from cache, not DRAM).
 */
export function measureKernels(quick = false, storeBytes = STORE_BYTES): KernelResults {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const kernels = require('../lib/kernels') as typeof import('../lib/kernels');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { ggmlType } = require('../lib/ggml-types') as typeof import('../lib/ggml-types');
  const reps = quick ? 3 : 7;
  const { isa: inUse, kernels: registry } = kernels.info();
  const runnable = (op: string) => registry.filter((k) => k.op === op && k.available);
  const withIsa = <T>(isa: string, f: () => T): T => {
    if (!kernels.setIsa(isa)) throw new Error(`kernels.setIsa(${isa}) refused an available ISA`);
    try {
      return f();
    } finally {
      kernels.setIsa(inUse);
    }
  };
  const memcpyBps = kernels.bench.memcpy(storeBytes, reps);
  // The gathers are timed in rounds, each round timing every (kernel, row size) once, and each reported
  // as the median over the rounds: on a shared machine the load changes over the minutes this takes,
  // and rounds spread those changes over all kernels alike (the per-byte ratios between types compare
  // rows measured side by side).
  const rounds = quick ? 1 : 3, gatherReps = quick ? 3 : 5;
  const plan = runnable('gather').flatMap((k) => ROW_TARGETS.map((target) => ({ k, target })));
  const runs: GatherBench[][] = plan.map(() => []);
  for (let round = 0; round < rounds; ++round) {
    plan.forEach(({ k, target }, i) => {
      const t = ggmlType(k.type);
      const unit = Math.max(32, t.blockSize);  // a gather's outputs are whole groups of 32 or whole blocks (k-quants: 256)
      const m = Math.ceil((target * t.blockSize) / t.blockBytes / unit) * unit;
      runs[i].push(withIsa(k.isa, () => kernels.bench.gather(t.id, m, 0.5, storeBytes, gatherReps)));
    });
  }
  // The ratios are taken within each round (gather and memcpy of the same call) before the median.
  const gather: KernelResults['gather'] = plan.map(({ k, target }, i) => ({
    type: k.type, isa: k.isa, target, ...runs[i][0],
    gatherBps: median(runs[i].map((g) => g.gatherBps)),
    memcpyBps: median(runs[i].map((g) => g.memcpyBps)),
    readBps: median(runs[i].map((g) => g.readBps)),
    perMemcpy: median(runs[i].map((g) => g.gatherBps / g.memcpyBps)),
    perRead: median(runs[i].map((g) => g.gatherBps / g.readBps)),
  }));
  const gemv = runnable('gemv')
    .filter((k) => ggmlType(k.type).canQuantize)
    .map((k) => ({ type: k.type, isa: k.isa, ...withIsa(k.isa, () => kernels.bench.gemv(ggmlType(k.type).id, GEMV_SHAPE.n, GEMV_SHAPE.rows, storeBytes, quick ? 10 : 50)) }));
  const topk = TOPK_SIZES.map((n) => kernels.bench.topk(n, 0.5, quick ? 51 : 201));
  return { isa: inUse, storeBytes, memcpyBps, rounds, gatherReps, gather, gemv, topk };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The decode step the top-k times are compared with: measured on a ~1B model in the same run. */
export interface DecodeStep {
  model: string;
  method: string;
  secondsPerToken: number;
  layers: number;
  dim: number;
  ffn: number;
}

function mdTable(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => '| ' + r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ') + ' |';
  return [line(rows[0]), '|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.slice(1).map(line)];
}

const gbs = (bps: number) => (bps / 1e9).toFixed(2);

export function kernelTables(k: KernelResults, step?: DecodeStep): string {
  const out: string[] = [];
  out.push(`Kernels: single thread, every registered gather and GEMV kernel this CPU runs (top-k: ISA ${k.isa}), rows and matrices cycling over a ${k.storeBytes / 2 ** 20} MiB store (DRAM, not cache)`);
  if (k.rounds) out.push(`gathers: median of ${k.rounds} rounds, each timing every gather at every row size (${k.gatherReps} repetitions, a memcpy between them); ratios taken within each round`);
  out.push(`memcpy (one thread, ${k.storeBytes / 2 ** 21} MiB per copy, bytes read per second): ${gbs(k.memcpyBps)} GB/s`);
  out.push('');
  out.push('gather-GEMV (gather_axpy) at density 0.5, GB/s of the selected rows:');
  out.push('');
  // Per byte against q4_0 and q8_0 on the same ISA and row size, each as a fraction of its own memcpy
  // (measured beside it), so that a change in the machine's load between the rows cancels.
  const perMemcpy = (g: KernelResults['gather'][number]) => g.perMemcpy ?? g.gatherBps / g.memcpyBps;
  const perRead = (g: KernelResults['gather'][number]) => g.perRead ?? g.gatherBps / g.readBps;
  const vs = (g: KernelResults['gather'][number], type: string) => {
    const o = k.gather.find((x) => x.type === type && x.isa === g.isa && x.target === g.target);
    return o && perMemcpy(o) > 0 ? (perMemcpy(g) / perMemcpy(o)).toFixed(2) + 'x' : '-';
  };
  out.push(...mdTable([
    ['type', 'isa', 'm (outputs)', 'row bytes', 'rows k', 'gather GB/s', 'memcpy GB/s', 'read GB/s', 'gather / memcpy', 'gather / read', 'vs q4_0', 'vs q8_0'],
    ...k.gather.map((g) => [g.type, g.isa, String(g.m), String(g.rowBytes), String(g.k), gbs(g.gatherBps), gbs(g.memcpyBps), gbs(g.readBps),
      perMemcpy(g).toFixed(2) + 'x', perRead(g).toFixed(2) + 'x', vs(g, 'q4_0'), vs(g, 'q8_0')]),
  ]));
  out.push('');
  out.push('memcpy: one memcpy of half the store between the gathers (same run, same rows); read: a plain 64-bit sum over');
  out.push('the same selected rows in the same order (no decoding, no writes). Above 1x: the gather streams its rows faster.');
  out.push('vs q4_0 / q8_0: gather / memcpy of this row over that of q4_0 / q8_0 on the same ISA and row size (per byte).');
  out.push('');
  const g0 = k.gemv[0];
  out.push(`dense GEMV (gemv), ${g0 ? `${g0.n} inputs x ${g0.rows} rows` : ''}, GB/s of weight bytes:`);
  out.push('');
  out.push(...mdTable([
    ['type', 'isa', 'matrix MB', 'median GB/s', 'best GB/s', 'median / memcpy'],
    ...k.gemv.map((g) => [g.type, g.isa, (g.matrixBytes / 1e6).toFixed(1), gbs(g.medianBps), gbs(g.bestBps), (g.medianBps / k.memcpyBps).toFixed(2) + 'x']),
  ]));
  out.push('');
  out.push('top-k (topk_select, k = n/2), median microseconds per call:');
  out.push('');
  const pct = (us: number) => (step ? `${((100 * us * 1e-6) / step.secondsPerToken).toFixed(3)}%` : '-');
  out.push(...mdTable([
    ['n', 'dip us', 'dip-ca us', 'dip-ca + 64 protected us', 'std::nth_element us', 'dip-ca call / decode step'],
    ...k.topk.map((t) => [String(t.n), t.dipUs.toFixed(2), t.caUs.toFixed(2), t.caTopUs.toFixed(2), t.nthUs.toFixed(2), pct(t.caUs)]),
  ]));
  if (step) {
    // Per token, every layer selects twice: the x-mask over dim inputs and the h-mask over ffn.
    const near = (n: number) => k.topk.reduce((a, b) => (Math.abs(b.n - n) < Math.abs(a.n - n) ? b : a));
    const perLayer = near(step.dim).caUs + near(step.ffn).caUs;
    const perToken = step.layers * perLayer;
    out.push('');
    out.push(`decode step: ${(step.secondsPerToken * 1e3).toFixed(1)} ms/token measured in this run (${step.model}, ${step.method}, 1 thread).`);
    out.push(`Per token the ~1B model selects twice per layer (n = ${step.dim} and n = ${step.ffn}): ${step.layers} x ${perLayer.toFixed(1)} us = ` +
      `${(perToken / 1e3).toFixed(2)} ms, ${((100 * perToken * 1e-6) / step.secondsPerToken).toFixed(2)}% of the step ` +
      `(times for n = ${near(step.dim).n} and ${near(step.ffn).n}, k = n/2).`);
  }
  return out.join('\n');
}

// As a child of bench/run.ts: measure and print one JSON object.
if (require.main === module && process.argv.includes('--child')) {
  process.stdout.write(JSON.stringify(measureKernels(process.argv.includes('--quick'))) + '\n');
}
