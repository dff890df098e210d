import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { checkDevice, DEVICES, DeviceProfile, recordRun, RunTrace, simulate } from '../simulate';
import type { Command } from './command';
import { progress } from './progress';
import { intFlag, loadLoraFlags, loadOptionsFromFlags, loraFlags, MODEL_FLAGS, modelFlag, readTextFlag, writableFlag, writeFlagFile } from './flags';

/** A device profile by name (DEVICES) or from a JSON file. */
export function deviceFlag(name: string | undefined): DeviceProfile {
  const key = name ?? 'phone';
  if (DEVICES[key]) return DEVICES[key];
  const known = Object.keys(DEVICES).join(', ');
  let text: string;
  try {
    text = fs.readFileSync(key, 'utf8');
  } catch (err) {
    // A bare word is a mistyped profile name; anything else names a file that cannot be read.
    if (/^[\w-]+$/.test(key) && (err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FlashdipError('ERR_INVALID_ARGUMENT', `--device: '${key}' is neither a profile (${known}) nor a file`);
    throw new FlashdipError('ERR_IO', `--device: cannot read ${key}: ${(err as Error).message}`);
  }
  try {
    return checkDevice(JSON.parse(text));
  } catch (err) {
    if (err instanceof FlashdipError) throw new FlashdipError(err.code, `--device: ${key}: ${err.message}`);
    throw new FlashdipError('ERR_INVALID_ARGUMENT', `--device: ${key} is not valid JSON: ${(err as Error).message}`);
  }
}

export const DEVICE_FLAG = {
  name: 'device', arg: 'NAME|FILE', description: `device profile: ${Object.keys(DEVICES).join(', ')}, or a JSON file ` +
    '{ "dramBandwidth", "flashBandwidth", "concurrent" }', default: 'phone', example: 'phone-ufs4',
};

export const simulateCommand: Command = {
  name: 'simulate',
  summary: "tokens/s on a device by the paper's hardware model, over a recorded run",
  flags: [
    ...MODEL_FLAGS,
    { name: 'text', arg: 'FILE', description: 'the text to run (UTF-8)', default: 'required', example: 'eval.txt' },
    DEVICE_FLAG,
    { name: 'ctx', arg: 'N', description: 'tokens per window, BOS included', default: '512', example: '128', api: 'ctx' },
    { name: 'max-tokens', arg: 'N', description: 'run at most N tokens of the text', default: 'the whole text', example: '300' },
    { name: 'trace', arg: 'FILE', description: 'also write the recorded run (counts and masks per token and layer) as JSON', default: 'none',
      example: 'trace.json' },
  ],
  examples: [
    'flashdip simulate --model model.dip.gguf --text eval.txt --method dip-ca --density 0.5 --memory-budget 650MB',
    'flashdip simulate -m model.gguf --text eval.txt --device my-phone.json --trace trace.json --json',
  ],
  interruptible: true,
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const dev = deviceFlag(v.device as string | undefined);
    const text = readTextFlag(v, 'text');
    if (typeof v.trace === 'string') writableFlag('trace', v.trace);
    const options = { ctx: intFlag('ctx', v.ctx) ?? 512, maxTokens: intFlag('max-tokens', v['max-tokens']), signal: io.signal };
    const loras = loraFlags(v);
    const model = await loadModel(file, loadOptionsFromFlags(v));
    try {
      let trace: RunTrace, partial = false;
      const withLoras = { ...options, loras: await loadLoraFlags(model, loras) };
      io.started(`running ${v.text}`);
      const bar = progress(io, 'simulate', 'tokens');
      try {
        trace = await recordRun(model, text, { ...withLoras, onProgress: bar.onProgress });
      } catch (err) {
        // Ctrl-C: the result over the windows run so far (with none run, the error stands).
        if (!(err instanceof FlashdipError && err.code === 'ERR_ABORTED' && err.partial)) throw err;
        trace = err.partial as RunTrace;
        partial = true;
      } finally {
        bar.stop();
      }
      const r = simulate(trace, dev);
      if (typeof v.trace === 'string') {
        // The recorded run, for offline analysis: counts and masks per token, layer and unit.
        const out = { ...trace, counts: Array.from(trace.counts), times: Array.from(trace.times ?? []), masks: trace.masks.map((m) => Array.from(m)), policy: model.defaults.sparsity.policy };
        writeFlagFile('trace', v.trace, JSON.stringify(out));
      }
      const memory = model.defaults.memoryBudget ?? model.defaults.bytes.mlp + model.defaults.bytes.attn + model.defaults.bytes.static;
      if (io.json) io.out(JSON.stringify({ ...r, memoryBytes: memory, ...(partial ? { partial } : {}) }) + '\n');
      else
        io.out(
          `${partial ? 'partial (interrupted): ' : ''}${dev.name ?? 'device'}: ${r.tokensPerSecond.toFixed(2)} tokens/s (${(1000 * r.secondsPerToken).toFixed(2)} ms/token, ` +
            `${(1000 * r.fixedSecondsPerToken).toFixed(2)} ms fixed), flash ${(r.flashBytesPerToken / 2 ** 20).toFixed(2)} MiB/token, ` +
            `DRAM ${(r.dramBytesPerToken / 2 ** 20).toFixed(2)} MiB/token, memory ${(memory / 2 ** 20).toFixed(1)} MiB, ` +
            `hit rate ${(100 * r.hitRate).toFixed(1)}% (Belady ${(100 * r.beladyHitRate).toFixed(1)}%), over ${r.tokens} tokens\n`,
        );
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
