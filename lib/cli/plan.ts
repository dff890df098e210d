import { FlashdipError } from '../errors';
import { DEFAULT_GRID, plan, PlanEntry, PlanGrid, PlanResult } from '../plan';
import type { SparsityOptions } from '../sparsity';
import type { Command } from './command';
import { progress } from './progress';
import { bytesFlag, intFlag, modelFlag, numberFlag, readTextFlag, requiredFlag, writableFlag, writeFlagFile } from './flags';
import { DEVICE_FLAG, deviceFlag } from './simulate';

// A configuration in one short phrase: 'dip-ca 0.5 gamma 0.2 per-column', 'dip thresholds 0.65'.
export function describeSparsity(s: SparsityOptions): string {
  const t = s.thresholds && typeof s.thresholds === 'object' ? s.thresholds : undefined;
  const parts: string[] = [s.method ?? t?.method ?? 'dense'];
  if (t) parts.push(`thresholds ${t.density.toFixed(2)}`);
  else if (s.density !== undefined) parts.push(String(s.density));
  if (s.gamma !== undefined) parts.push(`gamma ${s.gamma}`);
  if (s.method === 'dip-ca') parts.push(s.readBlock ? `blocks ${s.readBlock}` : 'per-column');
  return parts.join(' ');
}

// What --json prints of an entry: the thresholds' table is in the plan file, not repeated here.
function entryJson(e: PlanEntry): Record<string, unknown> {
  const t = e.sparsity.thresholds && typeof e.sparsity.thresholds === 'object' ? e.sparsity.thresholds : undefined;
  return {
    sparsity: t ? { ...e.sparsity, thresholds: { method: t.method, density: t.density } } : e.sparsity,
    label: describeSparsity(e.sparsity), ppl: e.ppl, pplIncrease: e.pplIncrease, tokensPerSecond: e.tokensPerSecond, density: e.density,
  };
}

export const planCommand: Command = {
  name: 'plan',
  summary: 'pick the fastest sparsity configuration within a perplexity bound under a memory budget; write it as a plan (--plan)',
  flags: [
    { name: 'model', short: 'm', arg: 'FILE', description: 'the GGUF model file', default: 'required', example: 'model.dip.gguf' },
    { name: 'text', arg: 'FILE', description: 'the text perplexity is measured on (UTF-8)', default: 'required', example: 'eval.txt' },
    { name: 'memory-budget', arg: 'SIZE', description: 'DRAM budget the configurations run under', default: 'required', example: '650MB',
      api: 'memoryBudget' },
    { name: 'max-ppl-increase', arg: 'R', description: 'largest perplexity increase over dense accepted (0.1 = 10%)', default: '0.1',
      example: '0.05', api: 'maxPplIncrease' },
    { ...DEVICE_FLAG, description: `${DEVICE_FLAG.description}; a profile from \`flashdip probe-disk\` counts read requests` },
    { name: 'ctx', arg: 'N', description: 'tokens per window, BOS included', default: '512', example: '128', api: 'ctx' },
    { name: 'max-tokens', arg: 'N', description: 'use at most N tokens of the text', default: 'the whole text', example: '2000', api: 'maxTokens' },
    { name: 'simulate-tokens', arg: 'N', description: 'predict the speed over at most N tokens of the text', default: '1024', example: '512',
      api: 'simulateTokens' },
    { name: 'methods', arg: 'LIST', description: 'methods to try (comma-separated; dense is always tried)', default: 'dense,dip,dip-ca',
      example: 'dense,dip-ca', api: 'grid.methods' },
    { name: 'densities', arg: 'LIST', description: 'MLP densities of the sparse methods', default: DEFAULT_GRID.densities.join(','),
      example: '0.7,0.5', api: 'grid.densities' },
    { name: 'gammas', arg: 'LIST', description: 'DIP-CA gammas', default: DEFAULT_GRID.gammas.join(','), example: '0.2', api: 'grid.gammas' },
    { name: 'read-blocks', arg: 'LIST', description: 'DIP-CA read blocks (0 = per-column reads)', default: DEFAULT_GRID.readBlocks.join(','),
      example: '0', api: 'grid.readBlocks' },
    { name: 'calibrate', arg: 'yes|no', description: 'also try thresholds calibrated on the text instead of top-k', default: 'yes', example: 'no',
      api: 'grid.thresholds' },
    { name: 'threads', short: 't', arg: 'N', description: 'compute threads', default: 'one per core', example: '2', api: 'threads' },
    { name: 'output', short: 'o', arg: 'FILE', description: 'the plan file to write', default: 'required', example: 'plan.json' },
  ],
  examples: [
    'flashdip plan -m model.dip.gguf --text eval.txt --memory-budget 650MB --device disk.json -o plan.json',
    'flashdip ppl -m model.dip.gguf --text eval.txt --plan plan.json',
  ],
  interruptible: true,
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const text = readTextFlag(v, 'text');
    const budget = bytesFlag('memory-budget', requiredFlag(v, 'memory-budget'));
    const out = writableFlag('output', requiredFlag(v, 'output'));
    const device = deviceFlag(v.device as string | undefined);
    const list = (name: string) => (typeof v[name] === 'string' ? (v[name] as string).split(',').map((x) => x.trim()) : undefined);
    const numbers = (name: string) => list(name)?.map((x) => numberFlag(name, x)!);
    if (v.calibrate !== undefined && v.calibrate !== 'yes' && v.calibrate !== 'no') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--calibrate: must be yes or no');
    const methods = list('methods');
    const grid: Partial<PlanGrid> = {
      ...(methods ? { methods: [...new Set(['dense', ...methods])] as PlanGrid['methods'] } : {}),
      ...(v.densities !== undefined ? { densities: numbers('densities') } : {}),
      ...(v.gammas !== undefined ? { gammas: numbers('gammas') } : {}),
      ...(v['read-blocks'] !== undefined ? { readBlocks: list('read-blocks')!.map((x) => (x === '0' ? 0 : x)) } : {}),
      ...(v.calibrate !== undefined ? { thresholds: v.calibrate === 'yes' } : {}),
    };
    const options = {
      grid,
      memoryBudget: budget!, maxPplIncrease: numberFlag('max-ppl-increase', v['max-ppl-increase']), device,
      ctx: intFlag('ctx', v.ctx), maxTokens: intFlag('max-tokens', v['max-tokens']),
      simulateTokens: intFlag('simulate-tokens', v['simulate-tokens']), threads: intFlag('threads', v.threads), signal: io.signal,
    };
    io.started(`planning on ${v.text}`);
    const bar = progress(io, 'plan', 'tokens');
    let r: PlanResult, partial = false;
    try {
      r = await plan(file, text, {
        ...options, onProgress: bar.onProgress,
        onCandidate: (e) => bar.log(`flashdip: ${describeSparsity(e.sparsity)}: ppl ${e.ppl.toFixed(4)}, ${e.tokensPerSecond.toPrecision(4)} tok/s predicted\n`),
      });
    } catch (err) {
      // Ctrl-C: what the configurations finished so far show; no plan file from part of the grid.
      if (!(err instanceof FlashdipError && err.code === 'ERR_ABORTED' && err.partial)) throw err;
      r = err.partial as PlanResult;
      partial = true;
    } finally {
      bar.stop();
    }
    if (!partial) writeFlagFile('output', out, JSON.stringify(r.plan, null, 2) + '\n');
    if (io.json) {
      io.out(JSON.stringify({
        chosen: entryJson(r.chosen), front: r.front.map(entryJson), dense: r.dense, memoryBudget: r.plan.memoryBudget,
        maxPplIncrease: r.maxPplIncrease, device: r.device.name ?? null, configurations: r.candidates.length, ...(partial ? { partial } : { output: out }),
      }) + '\n');
      return 0;
    }
    const row = (e: PlanEntry) =>
      `  ${describeSparsity(e.sparsity).padEnd(40)} ppl ${e.ppl.toFixed(4).padStart(10)} (${e.pplIncrease >= 0 ? '+' : ''}${(100 * e.pplIncrease).toFixed(1)}%)  ` +
      `${e.tokensPerSecond.toPrecision(4).padStart(8)} tok/s predicted\n`;
    io.out(`${partial ? 'partial (interrupted; no plan written): ' : ''}${r.candidates.length} configurations under ${r.plan.memoryBudget} bytes on ` +
      `${r.device.name ?? 'the device'}; dense perplexity ${r.dense.ppl.toFixed(4)}\nPareto front (perplexity against predicted speed):\n`);
    for (const e of r.front) io.out(row(e));
    io.out(`chosen (within +${(100 * r.maxPplIncrease).toFixed(1)}%):\n${row(r.chosen)}`);
    if (!partial) io.out(`written to ${out}\n`);
    return 0;
  },
};
