import * as fs from 'fs';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import { checkDevice, DEVICES, DeviceProfile, recordRun, simulate } from '../simulate';
import type { Command } from './main';
import { loadOptionsFromFlags, MODEL_FLAGS, MODEL_FLAGS_USAGE, numberFlag, readTextFlag } from './flags';

function device(name: string | undefined): DeviceProfile {
  const key = name ?? 'phone';
  if (DEVICES[key]) return DEVICES[key];
  let text: string;
  try {
    text = fs.readFileSync(key, 'utf8');
  } catch {
    throw new FlashdipError('ERR_INVALID_ARGUMENT', `--device: '${key}' is neither a profile (${Object.keys(DEVICES).join(', ')}) nor a readable JSON file`);
  }
  try {
    return checkDevice(JSON.parse(text));
  } catch (err) {
    if (err instanceof FlashdipError) throw err;
    throw new FlashdipError('ERR_INVALID_ARGUMENT', `--device: ${key} is not valid JSON: ${(err as Error).message}`);
  }
}

export const simulateCommand: Command = {
  summary: "tokens/s on a device by the paper's hardware model, over a recorded run",
  usage:
    'flashdip simulate --model M --text FILE [--device phone|phone-ufs4|PROFILE.json] [--ctx N] [--max-tokens N]\n' +
    '       ' + MODEL_FLAGS_USAGE + ' [--trace FILE] [--json]',
  options: {
    ...MODEL_FLAGS,
    text: { type: 'string' },
    device: { type: 'string' },
    ctx: { type: 'string' },
    'max-tokens': { type: 'string' },
    trace: { type: 'string' },
  },
  async run(v, _positionals, io) {
    if (typeof v.model !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', '--model is required');
    const dev = device(v.device as string | undefined);
    const text = readTextFlag(v, 'text');
    const model = await loadModel(v.model, loadOptionsFromFlags(v));
    try {
      const trace = await recordRun(model, text, { ctx: numberFlag('ctx', v.ctx) ?? 512, maxTokens: numberFlag('max-tokens', v['max-tokens']) });
      const r = simulate(trace, dev);
      if (typeof v.trace === 'string') {
        // The recorded run, for offline analysis: counts and masks per token, layer and unit.
        const out = { ...trace, counts: Array.from(trace.counts), times: Array.from(trace.times ?? []), masks: trace.masks.map((m) => Array.from(m)), policy: model.defaults.sparsity.policy };
        try {
          fs.writeFileSync(v.trace, JSON.stringify(out));
        } catch (err) {
          throw new FlashdipError('ERR_IO', `cannot write ${v.trace}: ${(err as Error).message}`);
        }
      }
      const memory = model.defaults.memoryBudget ?? model.defaults.bytes.mlp + model.defaults.bytes.static;
      if (io.json) io.out(JSON.stringify({ ...r, memoryBytes: memory }) + '\n');
      else
        io.out(
          `${dev.name ?? 'device'}: ${r.tokensPerSecond.toFixed(2)} tokens/s (${(1000 * r.secondsPerToken).toFixed(2)} ms/token, ` +
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
