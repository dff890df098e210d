import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { parseBytes } from '../options';
import { DEVICES } from '../simulate';
import { METHODS, SparseMethod } from '../sparsity';
import { sweep, sweepCsv, sweepSvg } from '../sweep';
import { readThresholds } from '../thresholds';
import type { Command } from './main';
import { numberFlag, readTextFlag } from './flags';

function list(v: unknown, def: string): string[] {
  return (typeof v === 'string' ? v : def).split(',').map((s) => s.trim()).filter(Boolean);
}

export const sweepCommand: Command = {
  summary: 'methods x densities x budgets: perplexity, simulated tokens/s, memory (CSV + SVG)',
  usage:
    'flashdip sweep --model M --text FILE --out PREFIX [--methods dense,dip,dip-ca,glu] [--densities 0.25,0.5,0.75,0.9]\n' +
    '       [--budgets none,50%,...|BYTES] [--thresholds FILE[,FILE...]] [--gamma G] [--ctx N] [--max-tokens N] [--device phone] [--json]',
  options: {
    model: { type: 'string', short: 'm' },
    text: { type: 'string' },
    out: { type: 'string' },
    methods: { type: 'string' },
    densities: { type: 'string' },
    budgets: { type: 'string' },
    gamma: { type: 'string' },
    ctx: { type: 'string' },
    'max-tokens': { type: 'string' },
    device: { type: 'string' },
    thresholds: { type: 'string' },
  },
  async run(v, _positionals, io) {
    for (const k of ['model', 'text', 'out'] as const)
      if (typeof v[k] !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${k} is required`);
    const methods = list(v.methods, 'dense,dip,dip-ca,glu');
    for (const m of methods) if (!METHODS.includes(m as SparseMethod)) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--methods: unknown method '${m}'`);
    const densities = list(v.densities, '0.25,0.5,0.75,0.9').map((d) => numberFlag('densities', d)!);
    const size = fs.statSync(v.model as string).size;
    const budgets = list(v.budgets, 'none').map((b) =>
      b === 'none' ? undefined : b.endsWith('%') ? Math.floor((size * Number(b.slice(0, -1))) / 100) : parseBytes('--budgets', b));
    const device = DEVICES[(v.device as string | undefined) ?? 'phone'];
    if (!device) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--device: known profiles are ${Object.keys(DEVICES).join(', ')}`);
    // Threshold tables checked before any run, so a bad file fails at once.
    const thresholds = list(v.thresholds, '').map((f) => readThresholds('--thresholds', f));
    const text = readTextFlag(v, 'text');
    const rows = await sweep(v.model as string, text, {
      methods: methods as SparseMethod[], densities, budgets, device,
      ctx: numberFlag('ctx', v.ctx) ?? 256, maxTokens: numberFlag('max-tokens', v['max-tokens']), gamma: numberFlag('gamma', v.gamma), thresholds,
      onRow: io.json ? undefined : (r) => io.err(`${r.method} density ${r.density} budget ${r.budget ?? 'none'}: ppl ${r.ppl.toFixed(3)}, ${r.tokensPerSecond.toFixed(1)} tok/s\n`),
    });
    const prefix = v.out as string;
    fs.writeFileSync(`${prefix}.csv`, sweepCsv(rows));
    fs.writeFileSync(`${prefix}.svg`, sweepSvg(rows, `${v.model} on ${v.text} (${device.name})`));
    if (io.json) io.out(JSON.stringify({ csv: `${prefix}.csv`, svg: `${prefix}.svg`, rows }) + '\n');
    else io.out(`wrote ${prefix}.csv and ${prefix}.svg (${rows.length} runs)\n`);
    return 0;
  },
};
