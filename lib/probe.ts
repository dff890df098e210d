// `flashdip probe-disk`: a device profile (lib/simulate.ts DeviceProfile) measured on this machine,
// for the simulator's request-counting model. The reads go through the column store's own reader
// (the same engine and O_DIRECT as a budgeted model's reads; native/addon/file_addon.cc readProbe),
// the compute rates through the kernels' micro-benchmarks, one thread. About 10-30 seconds.
import * as fs from 'fs';
import * as path from 'path';
import { getBinding } from './binding';
import { abortedError, FlashdipError, fromNative, invalidArgument } from './errors';
import { GGML_TYPE } from './ggml-types';
import { bench } from './kernels';
import { checkKeys, checkObject, checkProgress, checkSignal } from './options';
import { dropPageCache } from './page-cache';
import { DEVICE_FORMAT, DEVICE_VERSION, DeviceProfile } from './simulate';

export interface ProbeOptions {
  /** A file on the disk to measure, read only (e.g. a model); default: a scratch file of scratchBytes
   * written in `dir` (default the current directory) and deleted afterwards. */
  file?: string;
  dir?: string;
  scratchBytes?: number;
  /** Checked between the steps: ERR_ABORTED (no partial profile). */
  signal?: AbortSignal;
  /** Called after each step with the steps done and the steps in all. */
  onProgress?: (done: number, total: number) => void;
}

const KEYS = ['file', 'dir', 'scratchBytes', 'signal', 'onProgress'] as const;
const MIB = 2 ** 20;
const SEQ_READ = MIB;        // sequential reads: 1 MiB each, 8 in flight
const SEQ_BYTES = 256 * MIB;  // at most this much of the file
const SMALL_READ = 4096;     // the size of one column's row, about, and O_DIRECT's unit
const QD = 64;               // small reads in flight for the iops figure (a layer's misses go at once)

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function readProbe(file: string, offsets: number[], bytes: number, perBatch: number, direct: boolean): number[] {
  try {
    return Array.from(getBinding().file.readProbe(file, Float64Array.from(offsets), bytes, perBatch, direct));
  } catch (err) {
    throw fromNative(err);
  }
}

// Distinct 4 KiB-aligned offsets in [0, size - 4096) in random order (xorshift: reproducible).
function randomOffsets(size: number, n: number, seed: number): number[] {
  const blocks = Math.floor(size / SMALL_READ) - 1;
  const seen = new Set<number>();
  let x = seed >>> 0 || 1;
  while (seen.size < Math.min(n, blocks)) {
    x ^= x << 13, x >>>= 0, x ^= x >>> 17, x ^= x << 5, x >>>= 0;
    seen.add((x % blocks) * SMALL_READ);
  }
  return [...seen];
}

/** Measures the disk holding `file` (or a scratch file) and this CPU's kernels: a DeviceProfile. */
export async function probeDisk(options: ProbeOptions = {}): Promise<DeviceProfile> {
  const o = checkObject('options', options);
  checkKeys('options', o, KEYS);
  const signal = checkSignal('signal', o.signal);
  const onProgress = checkProgress('onProgress', o.onProgress);
  if (o.file !== undefined && (typeof o.file !== 'string' || o.file === '')) throw invalidArgument('file', 'must be a non-empty string');
  if (o.dir !== undefined && (typeof o.dir !== 'string' || o.dir === '')) throw invalidArgument('dir', 'must be a non-empty string');
  const scratchBytes = o.scratchBytes === undefined ? 256 * MIB : (o.scratchBytes as number);
  if (!Number.isSafeInteger(scratchBytes) || scratchBytes < 16 * MIB) throw invalidArgument('scratchBytes', 'must be a whole number >= 16 MiB');
  const steps = 5;
  let done = 0;
  const step = () => {
    onProgress?.(++done, steps);
    if (signal?.aborted) throw abortedError('probeDisk', signal);
  };
  let file = o.file as string | undefined, scratch: string | undefined;
  if (file === undefined) {
    scratch = path.join((o.dir as string | undefined) ?? '.', `.flashdip-probe-${process.pid}.tmp`);
    writeScratch(scratch, scratchBytes);
    file = scratch;
  }
  try {
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch (err) {
      throw new FlashdipError('ERR_IO', `cannot read ${file}: ${(err as Error).message}`);
    }
    if (size < 16 * MIB) throw invalidArgument('file', `${file} is ${size} bytes: the probe needs at least 16 MiB to read`);
    step();
    dropPageCache(file);
    const seqOffsets: number[] = [];
    for (let at = 0; at + SEQ_READ <= Math.min(size, SEQ_BYTES); at += SEQ_READ) seqOffsets.push(at);
    const seq = readProbe(file, seqOffsets, SEQ_READ, 8, true);
    const flashBandwidth = (seqOffsets.length * SEQ_READ) / seq.reduce((a, b) => a + b, 0);
    step();
    dropPageCache(file);
    const lat = readProbe(file, randomOffsets(size, 200, 1), SMALL_READ, 1, true);
    const requestLatency = median(lat);
    const directAlign = getBinding().file.directAlign(file);
    const qd = readProbe(file, randomOffsets(size, QD * 40, 2), SMALL_READ, QD, true);
    // A batch of QD small reads takes latency + (QD - 1) / iops (the simulator's model of a batch).
    const batch = median(qd);
    const iops = (QD - 1) / Math.max(batch - requestLatency, batch / QD);
    step();
    // Compute rates, the median of three (a machine shared with other work varies a lot): the gather
    // of input-major rows the MLP runs on, and a dense gemv on a matrix well beyond the caches.
    const gathers = [0, 1, 2].map(() => bench.gather(GGML_TYPE.Q8_0, 4096, 0.5, 128 * MIB, 5));
    const gather = median(gathers.map((x) => x.gatherBps));
    step();
    const gemv = median([0, 1, 2].map(() => bench.gemv(GGML_TYPE.Q8_0, 2048, 8192, 128 * MIB, 10).medianBps));
    step();
    return {
      format: DEVICE_FORMAT, version: DEVICE_VERSION,
      name: `probed ${path.resolve(file)} (${new Date().toISOString().slice(0, 10)})`,
      dramBandwidth: gather, staticBandwidth: gemv, flashBandwidth, concurrent: true, requestLatency, iops, direct: directAlign > 0, ...(directAlign > 0 ? { directAlign } : {}),
      probe: {
        file: path.resolve(file), bytes: size, threads: 1, sequentialRead: SEQ_READ, sequentialInFlight: 8, smallRead: SMALL_READ, smallInFlight: QD,
        smallBatchSeconds: batch, computeType: 'q8_0', gatherOutputs: 4096, gemvShape: [2048, 8192],
        memcpyBandwidth: median(gathers.map((x) => x.memcpyBps)),
      },
    };
  } finally {
    if (scratch) fs.rmSync(scratch, { force: true });
  }
}

// Random bytes (not zeros: some file systems and devices compress or skip them), synced so that the
// reads come from the device.
function writeScratch(file: string, bytes: number): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (err) {
    throw new FlashdipError('ERR_IO', `cannot write the scratch file ${file}: ${(err as Error).message}`);
  }
  try {
    const chunk = Buffer.alloc(4 * MIB);
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
    for (let at = 0; at < bytes; at += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - at), at);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw new FlashdipError('ERR_IO', `cannot write the scratch file ${file}: ${(err as Error).message}`);
  }
  fs.closeSync(fd);
}
