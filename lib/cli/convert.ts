import { convert, ConvertOptions } from '../convert';
import { FlashdipError } from '../errors';
import type { Command } from './command';
import { progress } from './progress';
import { intFlag, modelFlag } from './flags';

export const convertCommand: Command = {
  name: 'convert',
  summary: 'repack a GGUF into the input-major DIP layout',
  positionals: '[IN] [OUT]',
  flags: [
    { name: 'model', short: 'm', arg: 'FILE', description: 'the GGUF file to convert (or give it as the first argument)', default: 'required',
      example: 'model.gguf' },
    { name: 'out', short: 'o', arg: 'FILE', description: 'the converted file to write (or give it as the last argument)', default: 'required',
      example: 'model.dip.gguf' },
    { name: 'type', arg: 'TYPE', description: "row type (MLP and attention): keep (each tensor's own family and bits), or f32, f16, q8_0, q4_0, q4_k, q5_k, q6_k (every type with gather kernels)", default: 'keep', example: 'q8_0', api: 'type' },
    { name: 'align', arg: 'BYTES', description: 'alignment of tensor data, a power of two from 32 to 1 MiB', default: '4096', example: '65536',
      api: 'alignment' },
    { name: 'force', description: 'overwrite OUT if it exists', default: 'off' },
    { name: 'mlp-only', description: 'leave attention as it is (layout version 1): attention DIP then saves no reads', default: 'off' },
  ],
  examples: [
    'flashdip convert model.gguf model.dip.gguf',
    'flashdip convert --model model.gguf -o model.dip.gguf --type q8_0 --force',
  ],
  // Ctrl-C: convert stops after the tensor being written, removes its temporary file and leaves OUT as
  // it was (absent, or the old file with --force); it says so and exits 130.
  interruptible: true,
  async run(v, positionals, io) {
    // IN OUT as arguments, or --model IN and --out OUT, or --model IN OUT.
    const given = positionals.length + (typeof v.model === 'string' ? 1 : 0) + (typeof v.out === 'string' ? 1 : 0);
    if (given !== 2) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'convert takes an input and an output path (flashdip convert IN OUT)');
    const args = [...positionals];
    const output = typeof v.out === 'string' ? v.out : args.pop()!;
    const input = modelFlag(v, args.shift(), false);
    const bar = progress(io, 'convert', 'bytes');
    const options: ConvertOptions = {
      type: v.type as string | undefined,
      alignment: intFlag('align', v.align),
      force: v.force === true,
      attention: v['mlp-only'] === true ? false : undefined,
      onProgress: bar.onProgress,
      signal: io.signal,
    };
    io.started(`converting ${input}`);
    const r = await convert(input, output, options).catch((err) => {
      if (err instanceof FlashdipError && err.code === 'ERR_ABORTED')
        throw new FlashdipError('ERR_ABORTED', `interrupted: ${output} left as it was`, { cause: err });
      throw err;
    }).finally(() => bar.stop());
    if (io.json) io.out(JSON.stringify(r) + '\n');
    else {
      // One line per DIP tensor: source type -> row type, the error of the re-quantization, any fallback.
      const w = Math.max(...r.tensors.map((t) => t.name.length));
      for (const t of r.tensors)
        io.out(`  ${t.name.padEnd(w)}  ${t.sourceType.padStart(4)} -> ${t.rowType.padEnd(4)}  rel. error ${t.relError.toExponential(2)}` +
          `${t.fallback ? `  (${t.fallback})` : ''}\n`);
      io.out(`${r.output}: ${r.layers} layers, rows ${[...new Set(r.tensors.map((t) => t.rowType))].join('/')}${r.attention ? ' (MLP and attention)' : ' (MLP)'}, ` +
        `${(r.outputBytes / 2 ** 20).toFixed(1)} MiB in ${r.seconds.toFixed(1)} s\n`);
    }
    return 0;
  },
};
