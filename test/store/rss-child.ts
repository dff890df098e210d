// Child process for the RSS test: loads a model under a budget, generates, prints peak VmRSS growth.
import { getBinding } from '../../lib/binding';
import { loadModel } from '../../lib';
import { residentBytes } from '../../lib/session';

(async () => {
  const [file, budget, method, tokens] = process.argv.slice(2);
  process.removeAllListeners('warning');
  getBinding();  // the addon's own code is part of the baseline, not of the model's memory
  global.gc?.();
  const base = residentBytes();
  const model = await loadModel(file, { memoryBudget: Number(budget), sparsity: { method: method as 'dense' } });
  const s = model.createSession({ contextSize: 512 });
  let peak = residentBytes();
  for await (const _ of s.generate('Once upon a time', { maxTokens: Number(tokens), temperature: 0 })) peak = Math.max(peak, residentBytes());
  const st = s.stats();
  process.stdout.write(JSON.stringify({ base, peak, growth: peak - base, generated: st.generatedTokens, cacheFraction: st.sparsity.cacheFraction }) + '\n');
  await model.dispose();
})();
