import { resolveChatTemplate } from '../chat-template';
import { FlashdipError } from '../errors';
import { loadModel } from '../model';
import type { Command } from './command';
import {
  CHAT_FLAGS, GENERATE_FLAGS, generateOptionsFromFlags, intFlag, loadLoraFlags, loadOptionsFromFlags, loraFlags, MODEL_FLAGS, modelFlag, requiredFlag, sessionOptionsFromFlags,
} from './flags';

export const runCommand: Command = {
  name: 'run',
  summary: 'generate text from a prompt',
  flags: [
    ...MODEL_FLAGS,
    { name: 'prompt', short: 'p', arg: 'TEXT', description: 'the prompt (BOS is added as the vocabulary asks)', default: 'required',
      example: '"Once upon a time"' },
    { name: 'chat', description: 'apply the chat template to --prompt as a user message, with the assistant\'s reply to come', default: 'off' },
    ...CHAT_FLAGS,
    ...GENERATE_FLAGS,
    { name: 'logits', arg: 'N', description: 'with --json: include the first N logit vectors', default: '0', example: '4' },
  ],
  examples: [
    'flashdip run --model model.gguf --prompt "Once upon a time" --max-tokens 64 --temperature 0',
    'flashdip run -m model.dip.gguf -p "Hello" --method dip-ca --density 0.5 --memory-budget 650MB --json',
    'flashdip run -m phi-3-mini-instruct.gguf --chat --system "You are brief." -p "What is a GGUF file?"',
  ],
  interruptible: true,
  async run(v, _positionals, io) {
    const file = modelFlag(v);
    const prompt = requiredFlag(v, 'prompt');
    const keepLogits = intFlag('logits', v.logits) ?? 0;
    if (keepLogits < 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', `--logits: must be a whole number >= 0, got ${keepLogits}`);
    const generateOptions = generateOptionsFromFlags(v);
    const sessionOptions = sessionOptionsFromFlags(v);
    const chat = v.chat === true;
    if (!chat && (v.system !== undefined || v.template !== undefined))
      throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${v.system !== undefined ? 'system' : 'template'} needs --chat`);
    // Resolved now, so a wrong name or file fails before the model loads.
    const template = typeof v.template === 'string' ? resolveChatTemplate(v.template, '--template') : undefined;
    const loras = loraFlags(v);
    const model = await loadModel(file, loadOptionsFromFlags(v));
    try {
      const session = model.createSession({ ...sessionOptions, loras: await loadLoraFlags(model, loras) });
      // With --chat: [system,] user, then the header of the reply; BOS as the vocabulary asks, and
      // the prompt's own text never becomes control tokens.
      const messages = [...(typeof v.system === 'string' ? [{ role: 'system', content: v.system }] : []), { role: 'user', content: prompt }];
      const chatOptions = { addGenerationPrompt: true, template };
      const promptTokens = chat ? model.tokenizeChat(messages, chatOptions) : model.tokenize(prompt, { addSpecial: true });
      const promptText = chat ? model.applyChatTemplate(messages, chatOptions) : prompt;
      const logits: number[][] = [];
      let text = '';
      // The prompt is printed with the first piece, once the options have passed the API's checks.
      let shown = io.json;
      const show = (piece: string): void => {
        if (!shown) io.out(promptText);
        shown = true;
        if (!io.json) io.out(piece);
      };
      let partial = false;
      if (io.json) io.started('generating');  // (text mode streams the text itself)
      try {
        for await (const piece of session.generate(promptTokens, {
          ...generateOptions,
          signal: io.signal,
          onLogits: keepLogits > 0 ? (l) => { if (logits.length < keepLogits) logits.push(Array.from(l)); } : undefined,
        })) {
          text += piece.text;
          show(piece.text);
        }
      } catch (err) {
        // Ctrl-C: what was generated so far is the result.
        if (!(err instanceof FlashdipError && err.code === 'ERR_ABORTED' && io.signal.aborted)) {
          if (shown && !io.json) io.out('\n');
          throw err;
        }
        partial = true;
      }
      const tokens = session.tokens.slice(promptTokens.length);
      const stats = session.stats();
      if (io.json) {
        io.out(JSON.stringify({ promptTokens, tokens, text, stats, ...(keepLogits > 0 ? { logits } : {}), ...(partial ? { partial } : {}) }) + '\n');
      } else {
        show('\n');
        const sp = stats.sparsity;
        const sparse = sp.method !== 'dense' ? `, ${sp.method} hit rate ${(100 * sp.hitRate).toFixed(1)}%, density ${sp.density.toFixed(3)}` : '';
        io.err(
          `${partial ? 'partial (interrupted): ' : ''}${stats.promptTokens} prompt tokens at ${stats.prefillTokensPerSecond.toFixed(1)} tok/s, ` +
            `${stats.generatedTokens} generated at ${stats.decodeTokensPerSecond.toFixed(1)} tok/s${sparse}\n`,
        );
      }
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
