import * as path from 'path';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { calibrate, CalibratedMethod, CalibrationMode, writeThresholds } from '../thresholds';
import type { Command } from './main';
import { numberFlag, readTextFlag } from './flags';

export const calibrateCommand: Command = {
  summary: 'per-layer pruning thresholds from a text (the calibrated-threshold variant)',
  usage:
    'flashdip calibrate MODEL --text FILE -o THRESHOLDS.json [--method dip|glu|gate|up] [--density R | --keep-x R --keep-h R]\n' +
    '       [--tokens N] [--ctx N] [--mode masked|dense] [--threads N] [--json]',
  options: {
    model: { type: 'string', short: 'm' },
    text: { type: 'string' },
    out: { type: 'string', short: 'o' },
    method: { type: 'string' },
    density: { type: 'string' },
    'keep-x': { type: 'string' },
    'keep-h': { type: 'string' },
    tokens: { type: 'string' },
    ctx: { type: 'string' },
    mode: { type: 'string' },
    threads: { type: 'string', short: 't' },
  },
  allowPositionals: true,
  async run(v, positionals, io) {
    if (positionals.length > 1) throw new FlashdipError('ERR_INVALID_ARGUMENT', `one model file expected, got ${positionals.length}`);
    const modelPath = positionals[0] ?? v.model;
    if (typeof modelPath !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', 'the model file is required (flashdip calibrate MODEL ...)');
    if (typeof v.out !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '-o/--out is required');
    const text = readTextFlag(v, 'text');
    const model = await loadModel(modelPath, { threads: numberFlag('threads', v.threads) });
    try {
      const table = await calibrate(model, text, {
        method: v.method as CalibratedMethod | undefined,
        density: numberFlag('density', v.density),
        keepX: numberFlag('keep-x', v['keep-x']),
        keepH: numberFlag('keep-h', v['keep-h']),
        tokens: numberFlag('tokens', v.tokens),
        ctx: numberFlag('ctx', v.ctx),
        mode: v.mode as CalibrationMode | undefined,
        textName: path.basename(v.text as string),
      });
      writeThresholds(v.out, table);
      if (io.json) io.out(JSON.stringify({ out: v.out, ...table }) + '\n');
      else
        io.out(
          `wrote ${v.out}: ${table.method} thresholds for density ${table.density.toFixed(3)} (keep_x ${table.keepX.toFixed(3)}, ` +
            `keep_h ${table.keepH.toFixed(3)}) over ${table.model.layers} layers, from ${table.calibration!.tokens} tokens\n`,
        );
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
