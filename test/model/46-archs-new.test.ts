// Parity with llama.cpp for qwen3, gemma, gemma2, gemma3 (and phi3 with partial rotary): each
// fixture of test/fixtures/archs (recorded by bench/arch-fixtures.ts with node-llama-cpp) names a
// random-weight f32 model that make-model regenerates from its seed; flashdip must tokenize the
// prompt the same, generate the same 16 greedy tokens and give the same logits after the prompt
// within 1e-3 (f32 KV cache). The sliding-window fixtures have a window (8) shorter than the prompt.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { loadModel } from '../../lib';
import { ArchFixture, FIXTURES, fixtureModel } from '../../bench/arch-fixtures';
import { readJson, tmpFile } from '../helpers';

const fixtures = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => readJson<ArchFixture>(path.join(FIXTURES, f)));

describe('46 new architectures: parity with llama.cpp (random weights)', function () {
  this.timeout(120000);
  const files: string[] = [];
  after(() => files.forEach((f) => fs.rmSync(f, { force: true })));

  it('has a fixture for each new architecture', () => {
    assert.deepStrictEqual(fixtures.map((f) => f.model.arch).filter((a) => a !== 'phi3' && a !== 'llama').sort(), ['gemma', 'gemma2', 'gemma3', 'qwen3']);
  });

  for (const fx of fixtures) {
    describe(`${fx.id} (${fx.what}; ${fx.llamaCpp.release})`, () => {
      let file: string;
      before(() => {
        file = tmpFile(`arch-${fx.id}.gguf`);
        files.push(file);
        fixtureModel(fx.model, file);
      });

      it('prompt tokens, 16 greedy tokens, logits within 1e-3 (f32 KV)', async () => {
        const model = await loadModel(file);
        try {
          assert.strictEqual(model.info.arch, fx.model.arch);
          assert.deepStrictEqual(model.tokenize(fx.prompt, { addSpecial: true }), fx.promptTokens);
          const session = model.createSession({ contextSize: 128, kvCacheType: 'f32' });
          let first: Float32Array | undefined;
          for await (const _ of session.generate(fx.promptTokens, {
            maxTokens: fx.greedyTokens.length,
            temperature: 0,
            onLogits: (l) => { first ??= l.slice(); },
          }));
          assert.deepStrictEqual(session.tokens.slice(fx.promptTokens.length), fx.greedyTokens);
          let d = 0;
          fx.logitIds.forEach((id, i) => { d = Math.max(d, Math.abs(first![id] - fx.logits[i])); });
          assert.ok(d <= 1e-3, `max |logit diff| ${d}`);
          await session.dispose();
        } finally {
          await model.dispose();
        }
      });
    });
  }
});
