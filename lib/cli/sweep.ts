import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { METHODS, SparseMethod } from '../sparsity';
import { sweep, sweepCsv, SweepRow, sweepSvg } from '../sweep';
import { readThresholds } from '../thresholds';
import type { Command } from './command';
import { bytesFlag, DEFAULT_MODEL_HELP, intFlag, modelFlag, numberFlag, readableFlag, readTextFlag, requiredFlag, writableFlag, writeFlagFile } from './flags';
import { progress } from './progress';
import { DEVICE_FLAG, deviceFlag } from './simulate';

// A comma-separated flag; an empty list given is an error (absent: the default).
function list(name: string, v: unknown, def: string): string[] {
  const items = (typeof v === 'string' ? v : def).split(',').map((s) => s.trim()).filter(Boolean);
  if (typeof v === 'string' && items.length === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${name}: expected a comma-separated list, got ""`);
  return items;
}

export const sweepCommand: Command = {
  name: 'sweep',
  summary: 'methods x densities x budgets: perplexity, simulated tokens/s, memory (CSV + SVG)',
  flags: [
    { name: 'model', short: 'm', arg: 'FILE', description: 'the GGUF model file', default: DEFAULT_MODEL_HELP, example: 'model.dip.gguf' },
    { name: 'text', arg: 'FILE', description: 'the text to score (UTF-8)', default: 'required', example: 'eval.txt' },
    { name: 'out', short: 'o', arg: 'PREFIX', description: 'writes PREFIX.csv and PREFIX.svg', default: 'required', example: 'sweep' },
    { name: 'methods', arg: 'LIST', description: `comma-separated methods (${METHODS.join(', ')})`, default: 'dense,dip,dip-ca,glu',
      example: 'dense,dip-ca' },
    { name: 'densities', arg: 'LIST', description: 'comma-separated MLP densities in (0, 1]', default: '0.25,0.5,0.75,0.9', example: '0.5,0.9',
      api: ['sparsity.density', 'density'] },
    { name: 'budgets', arg: 'LIST', description: 'comma-separated memory budgets: none, a percentage of the file, or a size', default: 'none',
      example: 'none,50%,650MB', api: 'memoryBudget' },
    { name: 'thresholds', arg: 'FILES', description: 'comma-separated calibrated threshold tables, each a run per budget', default: 'none',
      example: 'dip-0.5.json', api: ['thresholds', 'sparsity.thresholds'] },
    { name: 'gamma', arg: 'G', description: 'DIP-CA: weight of the columns not in the cache, in [0, 1]', default: '0.2', example: '0.1',
      api: 'sparsity.gamma' },
    { name: 'ctx', arg: 'N', description: 'tokens per window, BOS included', default: '256', example: '128', api: 'ctx' },
    { name: 'max-tokens', arg: 'N', description: 'score at most N tokens of the text', default: 'the whole text', example: '1000',
      api: 'maxTokens' },
    DEVICE_FLAG,
  ],
  examples: [
    'flashdip sweep --model model.dip.gguf --text eval.txt --out sweep --methods dense,dip,dip-ca --budgets none,50%',
  ],
  // Ctrl-C: the rows finished so far are written (CSV and SVG) and the command says it stopped.
  interruptible: true,
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const prefix = requiredFlag(v, 'out');
    requiredFlag(v, 'text');
    const methods = list('methods', v.methods, 'dense,dip,dip-ca,glu');
    for (const m of methods) if (!METHODS.includes(m as SparseMethod)) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--methods: unknown method '${m}'`);
    const densities = list('densities', v.densities, '0.25,0.5,0.75,0.9').map((d) => numberFlag('densities', d)!);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch (err) {
      throw new FlashdipError('ERR_IO', `--model: cannot open ${file}: ${(err as Error).message}`);
    }
    const budgets = list('budgets', v.budgets, 'none').map((b) =>
      b === 'none' ? undefined : b.endsWith('%') ? Math.floor((size * numberFlag('budgets', b.slice(0, -1))!) / 100) : bytesFlag('budgets', b));
    const device = deviceFlag(v.device as string | undefined);
    // Threshold tables checked before any run, so a bad file fails at once.
    const thresholds = list('thresholds', v.thresholds, '').map((f) => readThresholds('--thresholds', readableFlag('thresholds', f)));
    const text = readTextFlag(v, 'text');
    writableFlag('out', `${prefix}.csv`);
    writableFlag('out', `${prefix}.svg`);
    let rows: SweepRow[], partial = false;
    io.started(`sweeping over ${v.text}`);
    const bar = progress(io, 'sweep', 'tokens');
    try {
      rows = await sweep(file, text, {
        methods: methods as SparseMethod[], densities, budgets, device, thresholds, signal: io.signal,
        ctx: intFlag('ctx', v.ctx) ?? 256, maxTokens: intFlag('max-tokens', v['max-tokens']), gamma: numberFlag('gamma', v.gamma),
        onProgress: bar.onProgress,
        onRow: io.json ? undefined : (r) => bar.log(`${r.method} density ${r.density} budget ${r.budget ?? 'none'}: ppl ${r.ppl.toFixed(3)}, ${r.tokensPerSecond.toFixed(1)} tok/s\n`),
      });
    } catch (err) {
      // Ctrl-C: the finished rows are still written.
      if (!(err instanceof FlashdipError && err.code === 'ERR_ABORTED' && Array.isArray(err.partial))) throw err;
      rows = err.partial as SweepRow[];
      partial = true;
    } finally {
      bar.stop();
    }
    writeFlagFile('out', `${prefix}.csv`, sweepCsv(rows));
    writeFlagFile('out', `${prefix}.svg`, sweepSvg(rows, `${file} on ${v.text} (${device.name})`));
    if (io.json) io.out(JSON.stringify({ csv: `${prefix}.csv`, svg: `${prefix}.svg`, rows, ...(partial ? { partial } : {}) }) + '\n');
    else io.out(`${partial ? 'stopped (interrupted): partial results, ' : ''}wrote ${prefix}.csv and ${prefix}.svg (${rows.length} runs)\n`);
    return 0;
  },
};
