// Child process for the RSS tests: loads a model under a budget, generates from `sessions` sessions
// at once (default 1), prints the peak VmRSS growth.
import { getBinding } from '../../lib/binding';
import { loadModel } from '../../lib';
import { residentBytes } from '../../lib/session';

(async () => {
  const [file, budget, method, tokens, sessions = '1', contextSize = '512'] = process.argv.slice(2);
  process.removeAllListeners('warning');
  getBinding();  // the addon's own code is part of the baseline, not of the model's memory
  global.gc?.();
  const base = residentBytes();
  const model = await loadModel(file, { memoryBudget: Number(budget), sparsity: { method: method as 'dense' } });
  const all = Array.from({ length: Number(sessions) }, () => model.createSession({ contextSize: Number(contextSize) }));
  let peak = residentBytes();
  const prompts = ['Once upon a time', 'The little dog', 'One day, a girl', 'Tom and Sue'];
  await Promise.all(all.map(async (s, i) => {
    for await (const _ of s.generate(prompts[i % prompts.length], { maxTokens: Number(tokens), temperature: 0 })) peak = Math.max(peak, residentBytes());
  }));
  const st = all[0].stats();
  const memory = model.memory();
  process.stdout.write(JSON.stringify({
    base, peak, growth: peak - base, generated: st.generatedTokens, cacheFraction: st.sparsity.cacheFraction,
    generatedAll: all.map((s) => s.stats().generatedTokens), memory,
  }) + '\n');
  await model.dispose();
})().catch((err) => {
  process.stderr.write(`${err.code ?? ''} ${err.message}\n`);
  process.exit(1);
});
