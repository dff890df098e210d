import { convert, ConvertType } from '../convert';
import { FlashdipError } from '../errors';
import type { Command } from './main';
import { numberFlag } from './flags';

export const convertCommand: Command = {
  summary: 'repack a GGUF into the input-major DIP layout',
  usage: 'flashdip convert IN OUT [--type keep|f32|f16|q8_0|q4_0] [--align BYTES] [--json]',
  options: {
    type: { type: 'string' },
    align: { type: 'string' },
  },
  allowPositionals: true,
  async run(v, positionals, io) {
    if (positionals.length !== 2) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'convert takes an input and an output path');
    const bar = !io.json && process.stderr.isTTY;
    const r = await convert(positionals[0], positionals[1], {
      type: v.type as ConvertType | undefined,
      alignment: numberFlag('align', v.align),
      onProgress: bar
        ? (done, total, name) => {
            const w = 30, f = Math.round((w * done) / total);
            process.stderr.write(`\r[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${((100 * done) / total).toFixed(0).padStart(3)}% ${name.padEnd(32).slice(0, 32)}`);
          }
        : undefined,
    });
    if (bar) process.stderr.write('\n');
    if (io.json) io.out(JSON.stringify(r) + '\n');
    else io.out(`${r.output}: ${r.layers} layers, MLP rows ${r.mlpType}, ${(r.outputBytes / 2 ** 20).toFixed(1)} MiB in ${r.seconds.toFixed(1)} s\n`);
    return 0;
  },
};
