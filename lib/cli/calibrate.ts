import * as path from 'path';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { calibrate, CalibratedMethod, CalibrationMode, writeThresholds } from '../thresholds';
import type { Command } from './command';
import { progress } from './progress';
import { DEFAULT_MODEL_HELP, intFlag, modelFlag, numberFlag, readTextFlag, requiredFlag, writableFlag } from './flags';

export const calibrateCommand: Command = {
  name: 'calibrate',
  summary: 'per-layer pruning thresholds from a text (the calibrated-threshold variant)',
  positionals: '[MODEL]',
  flags: [
    { name: 'model', short: 'm', arg: 'FILE', description: 'the GGUF model file (or give it as the first argument)', default: DEFAULT_MODEL_HELP,
      example: 'model.gguf' },
    { name: 'text', arg: 'FILE', description: 'the calibration text (UTF-8)', default: 'required', example: 'calib.txt' },
    { name: 'out', short: 'o', arg: 'FILE', description: 'where to write the thresholds (JSON)', default: 'required', example: 'dip-0.5.json' },
    { name: 'method', arg: 'NAME', description: 'dip (its table serves dip-ca too), glu, gate or up', default: 'dip', example: 'glu',
      api: 'method' },
    { name: 'density', arg: 'R', description: 'target MLP density in (0, 1], split as top-k splits it', default: '0.5', example: '0.4',
      api: ['density', 'sparsity.density'] },
    { name: 'keep-x', arg: 'R', description: 'target kept fraction of x (dip; with --keep-h instead of --density)', default: 'from --density',
      example: '0.6', api: ['keepX', 'sparsity.keepX'] },
    { name: 'keep-h', arg: 'R', description: 'target kept fraction of h', default: 'from --density', example: '0.4',
      api: ['keepH', 'sparsity.keepH'] },
    { name: 'attn-density', arg: 'R', description: 'also calibrate attention DIP for this attention density in (0, 1]', default: 'none',
      example: '0.5', api: ['attentionDensity', 'sparsity.attentionDensity'] },
    { name: 'tokens', arg: 'N', description: 'use at most N tokens of the text', default: '8192', example: '500', api: 'tokens' },
    { name: 'ctx', arg: 'N', description: 'tokens per window, BOS included', default: '512', example: '128', api: 'ctx' },
    { name: 'mode', arg: 'MODE', description: 'masked (measure with the top-k masks applied) or dense', default: 'masked', example: 'dense',
      api: 'mode' },
    { name: 'threads', short: 't', arg: 'N', description: 'compute threads', default: 'one per core', example: '2', api: 'threads' },
  ],
  examples: [
    'flashdip calibrate model.gguf --text calib.txt --method dip --density 0.5 -o dip-0.5.json',
    'flashdip calibrate --model model.gguf --text calib.txt --method glu --keep-h 0.4 -o glu-0.4.json --json',
  ],
  // Ctrl-C: calibrate stops after the current window and writes nothing (a table from part of the
  // text is not what was asked for); it says it was interrupted and exits 130.
  interruptible: true,
  async run(v, positionals, io) {
    const modelPath = modelFlag(v, positionals[0]);
    const out = requiredFlag(v, 'out');
    const text = readTextFlag(v, 'text');
    writableFlag('out', out);
    const options = {
      method: v.method as CalibratedMethod | undefined,
      density: numberFlag('density', v.density),
      keepX: numberFlag('keep-x', v['keep-x']),
      keepH: numberFlag('keep-h', v['keep-h']),
      attentionDensity: numberFlag('attn-density', v['attn-density']),
      tokens: intFlag('tokens', v.tokens),
      ctx: intFlag('ctx', v.ctx),
      mode: v.mode as CalibrationMode | undefined,
      textName: path.basename(v.text as string),
      signal: io.signal,
    };
    const model = await loadModel(modelPath, { threads: intFlag('threads', v.threads) });
    try {
      io.started(`calibrating on ${v.text}`);
      const bar = progress(io, 'calibrate', 'tokens');
      const table = await calibrate(model, text, { ...options, onProgress: bar.onProgress }).catch((err) => {
        if (err instanceof FlashdipError && err.code === 'ERR_ABORTED')
          throw new FlashdipError('ERR_ABORTED', `interrupted: nothing written to ${out}`, { cause: err });
        throw err;
      }).finally(() => bar.stop());
      writeThresholds(out, table);
      if (io.json) io.out(JSON.stringify({ out, ...table }) + '\n');
      else
        io.out(
          `wrote ${out}: ${table.method} thresholds for density ${table.density.toFixed(3)} (keep_x ${table.keepX.toFixed(3)}, ` +
            `keep_h ${table.keepH.toFixed(3)}${table.attentionDensity !== undefined ? `, attention ${table.attentionDensity.toFixed(3)}` : ''}) over ${table.model.layers} layers, from ${table.calibration!.tokens} tokens\n`,
        );
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
