// Child process for test 46-quant-types' memory test: loads a model densely, generates a few tokens,
// and prints the peak resident set growth over the baseline (the addon loaded, nothing else) and the
// KV cache's size. The peak is VmHWM after resetting it at the baseline (writing 5 to
// /proc/self/clear_refs), so a transient allocation during loading counts too; where that reset is
// not available, VmRSS sampled after loading and after every token.
import * as fs from 'fs';
import { getBinding } from '../../lib/binding';
import { loadModel } from '../../lib';
import { residentBytes } from '../../lib/session';

function hwm(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

(async () => {
  const [file, tokens] = process.argv.slice(2);
  process.removeAllListeners('warning');
  getBinding();  // the addon's own code is part of the baseline, not of the model's memory
  global.gc?.();
  const base = residentBytes();
  let resetPeak = false;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    resetPeak = true;
  } catch {
    // not Linux, or not allowed: sampling below
  }
  const model = await loadModel(file);
  let peak = residentBytes();
  const contextSize = 128;
  const s = model.createSession({ contextSize, kvCacheType: 'f16' });
  let generated = 0;
  for await (const _ of s.generate('Once upon a time', { maxTokens: Number(tokens), temperature: 0 })) {
    generated++;
    peak = Math.max(peak, residentBytes());
  }
  if (resetPeak) peak = Math.max(peak, hwm() ?? 0);
  const i = model.info;
  const kvBytes = 2 * i.layers * contextSize * i.kvHeads * i.headDim * 2;
  process.stdout.write(JSON.stringify({ base, peak, growth: peak - base, kvBytes, generated, resetPeak }) + '\n');
  await model.dispose();
})();
