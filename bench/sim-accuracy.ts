// The simulator against measurement on this machine's disk: a random-weight model converted with
// `flashdip convert --type keep`, bigger than the budget, run by `flashdip bench` (page cache dropped,
// one thread) and predicted by `flashdip simulate` with a profile from `flashdip probe-disk`, for dense
// streaming and per-column DIP-CA. Each measurement is a fresh CLI process; the runs are interleaved
// and the medians reported.
//
//   npx ts-node -T bench/sim-accuracy.ts [--reps 3] [--budget 160MB]
//
// Writes .tmp/sim/m300.gguf (made once, then converted to .tmp/sim/m300.dip.gguf; ~40 s) and
// .tmp/sim/disk.json (the probed profile).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { makeModel } from '../scripts/make-model';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'flashdip.js');
const DIR = path.join(ROOT, '.tmp', 'sim');
const TEXT = path.join(ROOT, '..', 'shared', 'data', 'text', 'tinystories-sample.txt');
const VOCAB = path.join(ROOT, '..', 'shared', 'data', 'tokenizer', 'vocab', 'ggml-vocab-llama-spm.gguf');

function flashdip(...args: string[]): any {
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`flashdip ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function main(): void {
  const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, budget: { type: 'string', default: '160MB' } } });
  const reps = Number(values.reps), budget = values.budget!;
  fs.mkdirSync(DIR, { recursive: true });
  const dip = path.join(DIR, 'm300.dip.gguf');
  if (!fs.existsSync(dip)) {
    // 252 MiB of q8_0: dim 1024, 12 layers, FFN 4096, the Llama-2 vocabulary (MLP 153 MiB).
    const src = path.join(DIR, 'm300.gguf');
    makeModel({ out: src, dim: 1024, layers: 12, heads: 16, kvHeads: 4, ffn: 4096, ctx: 2048, type: 'q8_0', seed: 7, vocabFrom: VOCAB });
    flashdip('convert', '--type', 'keep', src, dip);
    fs.rmSync(src);
  }
  const profile = path.join(DIR, 'disk.json');
  const device = flashdip('probe-disk', '--file', dip, '-o', profile);
  console.log(`profile: ${(device.flashBandwidth / 1e6).toFixed(0)} MB/s sequential, ${(1e6 * device.requestLatency).toFixed(0)} us latency, ` +
    `${(device.iops / 1e3).toFixed(0)}k IOPS, gather ${(device.dramBandwidth / 1e9).toFixed(2)} GB/s, gemv ${(device.staticBandwidth / 1e9).toFixed(2)} GB/s`);
  const configs: Record<string, string[]> = { 'dense streaming': ['--method', 'dense'], 'dip-ca 0.5 per-column': ['--method', 'dip-ca', '--density', '0.5'] };
  const common = ['--model', dip, '--memory-budget', budget, '--threads', '1'];
  const got: Record<string, { measured: number[]; predicted: number[]; requests: number; readMiB: number }> = {};
  for (let i = 0; i < reps; i++)
    for (const [name, args] of Object.entries(configs)) {
      const g = (got[name] ??= { measured: [], predicted: [], requests: 0, readMiB: 0 });
      // bench: 16-token prompt, 32 decoded, f16 KV cache of 256 positions; simulate: one window of 128
      // (an f32 KV cache of the same size, so the same cache fraction).
      g.measured.push(flashdip('bench', ...common, ...args, '--tokens', '32', '--drop-cache').decodeTokensPerSecond);
      const s = flashdip('simulate', ...common, ...args, '--text', TEXT, '--ctx', '128', '--max-tokens', '127', '--device', profile);
      g.predicted.push(s.tokensPerSecond);
      g.requests = s.requestsPerToken;
      g.readMiB = s.readBytesPerToken / 2 ** 20;
    }
  console.log('| configuration | measured tok/s (median) | predicted tok/s (median) | predicted / measured | requests/token | read MiB/token |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, g] of Object.entries(got)) {
    const m = median(g.measured), p = median(g.predicted);
    console.log(`| ${name} | ${m.toFixed(2)} (${g.measured.map((x) => x.toFixed(2)).join(', ')}) | ${p.toFixed(2)} (${g.predicted.map((x) => x.toFixed(2)).join(', ')}) | ` +
      `${(p / m).toFixed(2)} | ${g.requests.toFixed(0)} | ${g.readMiB.toFixed(1)} |`);
  }
}

main();
