import { FlashdipError } from '../errors';
import { probeDisk } from '../probe';
import type { DeviceProfile } from '../simulate';
import type { Command } from './command';
import { progress } from './progress';
import { readableFlag, writableFlag, writeFlagFile } from './flags';

export const probeDiskCommand: Command = {
  name: 'probe-disk',
  summary: "measure this machine's disk and kernels: a device profile for simulate and plan (--device)",
  flags: [
    { name: 'file', arg: 'FILE', description: 'a file (>= 16 MiB) on the disk to measure, only read (e.g. the model)',
      default: 'a 256 MiB scratch file in the current directory, deleted after', example: 'model.dip.gguf', api: 'file' },
    { name: 'output', short: 'o', arg: 'FILE', description: 'write the profile as JSON (for --device)', default: 'none', example: 'disk.json' },
  ],
  examples: ['flashdip probe-disk --file model.dip.gguf -o disk.json', 'flashdip simulate -m model.dip.gguf --text eval.txt --device disk.json'],
  interruptible: true,
  async run(v, _positionals, io) {
    const file = typeof v.file === 'string' ? readableFlag('file', v.file) : undefined;
    if (typeof v.output === 'string') writableFlag('output', v.output);
    io.started(`probing ${file ?? 'a scratch file'} (about half a minute)`);
    const bar = progress(io, 'probe-disk', 'steps');
    let d: DeviceProfile;
    try {
      d = await probeDisk({ file, signal: io.signal, onProgress: bar.onProgress });
    } catch (err) {
      if (err instanceof FlashdipError && err.code === 'ERR_ABORTED') throw new FlashdipError('ERR_ABORTED', 'interrupted: no profile written', { cause: err });
      throw err;
    } finally {
      bar.stop();
    }
    if (typeof v.output === 'string') writeFlagFile('output', v.output, JSON.stringify(d, null, 2) + '\n');
    if (io.json) io.out(JSON.stringify(d) + '\n');
    else
      io.out(
        `sequential read ${(d.flashBandwidth / 1e6).toFixed(0)} MB/s, 4 KiB read latency ${(1e6 * d.requestLatency!).toFixed(0)} us, ` +
          `${(d.iops! / 1e3).toFixed(1)}k IOPS at ${String(d.probe?.smallInFlight)} in flight; gather ${(d.dramBandwidth / 1e9).toFixed(2)} GB/s, ` +
          `gemv ${(d.staticBandwidth! / 1e9).toFixed(2)} GB/s (q8_0, 1 thread)${typeof v.output === 'string' ? `; written to ${v.output}` : ''}\n`,
      );
    return 0;
  },
};
