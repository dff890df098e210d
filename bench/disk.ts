// The budgeted on-disk scenario (issue: DIP engine): a converted model on disk, memoryBudget half its
// size, the page cache dropped before each run (needs root; otherwise the run says so), measured
// decode tokens/s of dense streaming, DIP, DIP-CA and DIP-CA with block reads (sparsity.readBlock) at
// MLP density 0.5, each in a fresh child process, interleaved over repetitions; ratios against dense
// streaming from the same repetition. Fidelity: after the first repetition's timing, each child also
// feeds a fixed token sequence one token at a time and keeps the logits; they are compared with the same
// sequence run dense with everything in DRAM (relative L2 distance and KL divergence of the next-token
// distributions, mean over positions): what the bytes saved cost in output, on any model, random
// weights included (where perplexity means nothing).
// --attn-density R: the sparse methods (not dense streaming) also prune attention inputs
// (sparsity.attentionDensity; a file converted with attention rows reads only the kept columns).
// Usage: npx ts-node bench/disk.ts MODEL.dip.gguf [--tokens N] [--reps N] [--gamma G] [--read-block B] [--attn-density R] [--json]
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);

// Reads completed and bytes read by the block device holding `file` (/sys/dev/block/MAJ:MIN/stat; the
// whole device, so other processes' reads count too), or null where that is not readable.
function deviceReads(file: string): { reads: number; bytes: number } | null {
  const dev = fs.statSync(file).dev;
  const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff), minor = (dev & 0xff) | ((dev >> 12) & ~0xff);
  try {
    const f = fs.readFileSync(`/sys/dev/block/${major}:${minor}/stat`, 'utf8').trim().split(/\s+/).map(Number);
    return { reads: f[0], bytes: f[2] * 512 };  // sectors are 512 bytes in this file whatever the device's
  } catch {
    return null;
  }
}

const FIDELITY_TOKENS = 32;
// A fixed sequence of token ids for the fidelity pass (BOS, then ids from a small LCG).
function fidelityTokens(vocab: number): number[] {
  let x = 12345;
  return [1, ...Array.from({ length: FIDELITY_TOKENS - 1 }, () => 3 + ((x = (x * 1103515245 + 12345) % 2 ** 31) % (vocab - 3)))];
}

function sparsityOf(method: string, gamma: number, readBlock: string, attn: string) {
  const attention = attn ? { attentionDensity: Number(attn) } : {};
  if (method === 'dense') return { method: 'dense' as const };
  if (method === 'dip') return { method: 'dip' as const, density: 0.5, ...attention };
  return { method: 'dip-ca' as const, density: 0.5, gamma, ...(method === 'dip-ca blocks' ? { readBlock } : {}), ...attention };
}

// Mean over positions of ||b - a|| / ||a|| and of KL(softmax a || softmax b).
function compareLogits(a: Float32Array, b: Float32Array, vocab: number): { relL2: number; kl: number } {
  let rel = 0, kl = 0;
  const T = a.length / vocab;
  const logSoftmax = (v: Float32Array) => {
    let max = -Infinity, z = 0;
    for (const x of v) max = Math.max(max, x);
    for (const x of v) z += Math.exp(x - max);
    return Float64Array.from(v, (x) => x - max - Math.log(z));
  };
  for (let t = 0; t < T; t++) {
    const x = a.subarray(t * vocab, (t + 1) * vocab), y = b.subarray(t * vocab, (t + 1) * vocab);
    let num = 0, den = 0;
    for (let i = 0; i < vocab; i++) (num += (y[i] - x[i]) ** 2), (den += x[i] ** 2);
    const lx = logSoftmax(x), ly = logSoftmax(y);
    let k = 0;
    for (let i = 0; i < vocab; i++) k += Math.exp(lx[i]) * (lx[i] - ly[i]);
    rel += Math.sqrt(num / den);
    kl += k;
  }
  return { relL2: rel / T, kl: kl / T };
}

if (args[0] === '--child') {
  // Child: one measurement.
  (async () => {
    const { loadModel } = await import('../lib');
    process.removeAllListeners('warning');
    const [file, budget, method, tokens, gamma, readBlock, logitsOut, attn] = args.slice(1);
    const sparsity = sparsityOf(method, Number(gamma), readBlock, attn ?? '');
    const model = await loadModel(file, { memoryBudget: budget === 'none' ? undefined : Number(budget), sparsity, threads: 1 });
    const dev0 = deviceReads(file);
    const s = model.createSession({ contextSize: 256 });
    if (Number(tokens) > 0)
      for await (const _ of s.generate([1, 450, 4996, 338, 263], { maxTokens: Number(tokens), temperature: 0 }));
    const dev1 = deviceReads(file);
    const st = s.stats();
    const n = st.promptTokens + st.generatedTokens;
    if (logitsOut) {
      const f = model.createSession({ contextSize: 256 });
      const vocab = model.info.vocabSize, ids = fidelityTokens(vocab);
      const all = new Float32Array(ids.length * vocab);
      for (let i = 0; i < ids.length; i++) all.set(await f.evaluate([ids[i]]), i * vocab);
      fs.writeFileSync(logitsOut, all);
    }
    await model.dispose();
    if (Number(tokens) === 0) return;
    // What the run left in the page cache: the store drops the rows it read, so this is about the
    // static weights' mapping; more would mean the page cache served as a second, uncounted cache.
    const { pageCacheResident } = await import('../lib/page-cache');
    const sp = st.sparsity;
    process.stdout.write(JSON.stringify({
      decode: st.decodeTokensPerSecond, hitRate: sp.hitRate, storeBytesPerToken: sp.storeBytesPerToken, storeReadSeconds: sp.storeReadSeconds,
      decodeSeconds: st.decodeSeconds, prefillSeconds: st.prefillSeconds, rss: st.residentBytes, ioEngine: sp.ioEngine,
      ioSecondsPerToken: sp.ioSecondsPerToken, computeSecondsPerToken: sp.computeSecondsPerToken, pageCache: pageCacheResident(file),
      storeReadsPerToken: sp.storeReadsPerToken, storeGapBytesPerToken: sp.storeGapBytesPerToken,
      deviceBytesPerToken: dev0 && dev1 ? (dev1.bytes - dev0.bytes) / n : null, deviceReadsPerToken: dev0 && dev1 ? (dev1.reads - dev0.reads) / n : null,
    }) + '\n');
  })();
} else {
  const file = args[0];
  if (!file || !fs.existsSync(file)) throw new Error('usage: bench/disk.ts MODEL.dip.gguf');
  const size = fs.statSync(file).size, budget = Math.floor(size / 2);
  const tokens = opt('--tokens', '32'), reps = Number(opt('--reps', '3')), gamma = opt('--gamma', '0.2'), readBlock = opt('--read-block', '64KiB');
  const attn = opt('--attn-density', '');
  if (attn && !(Number(attn) > 0 && Number(attn) <= 1)) throw new Error(`--attn-density: expected a number in (0, 1], got ${attn}`);
  const dropCache = () => {
    try {
      execFileSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
      return true;
    } catch {
      return false;
    }
  };
  const methods = ['dense', 'dip', 'dip-ca', 'dip-ca blocks'];
  const results: Record<string, any[]> = Object.fromEntries(methods.map((m) => [m, []]));
  const logitsFile = (m: string) => path.join(os.tmpdir(), `flashdip-disk-${process.pid}-${m.replace(' ', '-')}.f32`);
  const child = (budgetArg: string, m: string, n: string, logits: string) => {
    const out = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--child', file, budgetArg, m, n, gamma, readBlock, logits, attn], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
    if (out.status !== 0) throw new Error(out.stderr);
    return out.stdout;
  };
  let dropped = true;
  for (let r = 0; r < reps; r++)
    for (const m of r % 2 ? [...methods].reverse() : methods) {
      dropped = dropCache() && dropped;
      results[m].push(JSON.parse(child(String(budget), m, tokens, r === 0 ? logitsFile(m) : '')));
    }
  // The fidelity reference: dense, no budget (everything in DRAM).
  child('none', 'dense', '0', logitsFile('reference'));
  const readLogits = (m: string) => {
    const b = fs.readFileSync(logitsFile(m));
    fs.rmSync(logitsFile(m));
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  };
  const reference = readLogits('reference');
  const vocab = reference.length / FIDELITY_TOKENS;
  const fidelity = Object.fromEntries(methods.map((m) => [m, compareLogits(reference, readLogits(m), vocab)]));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.join(__dirname, '..') }).toString().trim();
  const rows = methods.map((m) => ({
    method: m,
    decode: median(results[m].map((x) => x.decode)),
    ratio: median(results[m].map((x, i) => x.decode / results.dense[i].decode)),
    hitRate: median(results[m].map((x) => x.hitRate)),
    storeMiBPerToken: median(results[m].map((x) => x.storeBytesPerToken)) / 2 ** 20,
    rssMiB: median(results[m].map((x) => x.rss)) / 2 ** 20,
    ioMs: 1000 * median(results[m].map((x) => x.ioSecondsPerToken)),
    computeMs: 1000 * median(results[m].map((x) => x.computeSecondsPerToken)),
    pageCacheMiB: median(results[m].map((x) => x.pageCache)) / 2 ** 20,
    readsPerToken: median(results[m].map((x) => x.storeReadsPerToken)),
    gapMiBPerToken: median(results[m].map((x) => x.storeGapBytesPerToken)) / 2 ** 20,
    deviceMiBPerToken: results[m][0].deviceBytesPerToken === null ? null : median(results[m].map((x) => x.deviceBytesPerToken)) / 2 ** 20,
    deviceReadsPerToken: results[m][0].deviceReadsPerToken === null ? null : median(results[m].map((x) => x.deviceReadsPerToken)),
    ioEngine: results[m][0].ioEngine,
    ...fidelity[m],
  }));
  if (args.includes('--json')) {
    console.log(JSON.stringify({ commit, file: path.basename(file), size, budget, dropped, tokens: Number(tokens), reps,
      attentionDensity: attn ? Number(attn) : null, rows }));
  } else {
    console.log(`${path.basename(file)} (${(size / 2 ** 20).toFixed(0)} MiB), memoryBudget ${(budget / 2 ** 20).toFixed(0)} MiB, ` +
      `${tokens} tokens x ${reps} reps, 1 thread, page cache ${dropped ? 'dropped before each run' : 'NOT dropped (not root?)'}, commit ${commit}`);
    console.log(`dip-ca: gamma ${gamma}; dip-ca blocks: the same with readBlock ${readBlock}` +
      `${attn ? `; dip, dip-ca and dip-ca blocks with attention density ${attn}` : ''}\n`);
    console.log(`reads: ${rows[0].ioEngine}; per token, over prompt and decode: waiting for reads / everything else in the layers\n`);
    console.log('| method (density 0.5) | decode tok/s | vs dense streaming | hit rate | store MiB/token | I/O wait ms/token | compute ms/token | page cache after MiB | RSS MiB |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows)
      console.log(`| ${r.method} | ${r.decode.toFixed(2)} | ${r.ratio.toFixed(2)}x | ${(100 * r.hitRate).toFixed(1)}% | ${r.storeMiBPerToken.toFixed(1)} | ` +
        `${r.ioMs.toFixed(0)} | ${r.computeMs.toFixed(0)} | ${r.pageCacheMiB.toFixed(0)} | ${r.rssMiB.toFixed(0)} |`);
    // What the disk was asked for: the rows, the gaps read through to keep runs whole, the store's
    // requests; and what the block device served (aligned blocks; requests split or merged by the kernel).
    const dev = (x: number | null, digits: number) => (x === null ? 'n/a' : x.toFixed(digits));
    console.log('\n| method | store requests/token | gap MiB/token | device MiB/token | device requests/token | logits rel. L2 vs dense | KL vs dense |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows)
      console.log(`| ${r.method} | ${r.readsPerToken.toFixed(0)} | ${r.gapMiBPerToken.toFixed(1)} | ${dev(r.deviceMiBPerToken, 1)} | ` +
        `${dev(r.deviceReadsPerToken, 0)} | ${r.relL2.toFixed(3)} | ${r.kl.toFixed(4)} |`);
    console.log(`\n(fidelity: the logits of ${FIDELITY_TOKENS} fixed tokens fed one at a time after the first repetition, against the ` +
      'same tokens run dense with everything in DRAM; dense streaming computes the dense model, so its distance is float noise)');
  }
}
