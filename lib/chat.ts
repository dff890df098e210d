// Chats: a model's chat template applied to a conversation, tokenized so that message contents
// never become control tokens, and a Chat that keeps one session's KV cache across turns.
import { randomInt } from 'crypto';
import {
  ChatMessage, checkMessages, DEFAULT_CHAT_TEMPLATE, foldedMessages, renderChatTemplate, resolveChatTemplate, BUILTIN_CHAT_TEMPLATES,
} from './chat-template';
import { FlashdipError, invalidArgument } from './errors';
import type { Model } from './model';
import { checkEnum, checkInt, checkKeys, checkObject } from './options';
import type { GenerateOptions, Piece, Session, SessionOptions, SessionStats } from './session';
import { TextSegment, TokenType } from './tokenizer';

export interface ChatTemplateOptions {
  /** End with the header of an assistant reply (add_generation_prompt). Default false, as Hugging Face. */
  addGenerationPrompt?: boolean;
  /** A built-in template name (chatml, llama3, phi3...), Jinja source, or a file; default the file's template, else chatml. */
  template?: string;
  /** Tool definitions, for templates that take them. */
  tools?: readonly unknown[];
  /** The time strftime_now() reads (default now). */
  now?: Date;
  /** Further template variables (e.g. enable_thinking). */
  variables?: Record<string, unknown>;
}

const TEMPLATE_KEYS = ['addGenerationPrompt', 'template', 'tools', 'now', 'variables'] as const;

interface Prepared {
  template: string;
  messages: ChatMessage[];
  render: Parameters<typeof renderChatTemplate>[1];
}

function prepare(model: Model, messages: unknown, options: ChatTemplateOptions | undefined, template?: string): Prepared {
  const o = checkObject('options', options);
  checkKeys('options', o, TEMPLATE_KEYS);
  const source = template ?? (o.template !== undefined ? resolveChatTemplate(o.template) : chatTemplateOf(model));
  const tok = model.tokenizer;
  const render = {
    messages: checkMessages('messages', messages, true),
    bosToken: tok.bosId !== null ? tok.tokenText(tok.bosId) : undefined,
    eosToken: tok.eosId !== null ? tok.tokenText(tok.eosId) : undefined,
    addGenerationPrompt: o.addGenerationPrompt as boolean | undefined,
    tools: o.tools as unknown[] | undefined,
    now: o.now as Date | undefined,
    variables: o.variables as Record<string, unknown> | undefined,
  };
  // llama.cpp's rule for templates without a system role, applied once here so that the contents
  // below are the ones the template renders.
  return { template: source, messages: foldedMessages(source, render) as ChatMessage[], render };
}

/** The model's template, or the default when the file has none. */
function chatTemplateOf(model: Model): string {
  return model.tokenizer.chatTemplate ?? BUILTIN_CHAT_TEMPLATES[DEFAULT_CHAT_TEMPLATE];
}

/** @internal model.applyChatTemplate */
export function applyChatTemplate(model: Model, messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
  const p = prepare(model, messages, options);
  return renderChatTemplate(p.template, { ...p.render, messages: p.messages });
}

/** @internal model.tokenizeChat */
export function tokenizeChat(model: Model, messages: readonly ChatMessage[], options?: ChatTemplateOptions, template?: string): number[] {
  const p = prepare(model, messages, options, template);
  const segments = chatSegments(p);
  const tok = model.tokenizer;
  // As llama.cpp: BOS comes from the vocabulary (add_bos_token), not from the template's text.
  if (tok.addBos && tok.bosId !== null) {
    const bos = tok.tokenText(tok.bosId);
    if (segments.length > 0 && segments[0].parseSpecial && segments[0].text.startsWith(bos)) segments[0] = { ...segments[0], text: segments[0].text.slice(bos.length) };
    return [tok.bosId, ...tok.encodeSegments(segments)];
  }
  return tok.encodeSegments(segments);
}

// Splits the rendered text into the template's own text (special tokens parsed) and the message
// contents (not parsed). The template is rendered twice: with the contents, and with a unique
// placeholder for each content; the placeholders give the template's text between contents, and
// each content is then found in the real text as written or trimmed (templates often `| trim` it).
function chatSegments(p: Prepared): TextSegment[] {
  const text = renderChatTemplate(p.template, { ...p.render, messages: p.messages });
  let nonce: string;
  do nonce = String(randomInt(1e9));
  while (text.includes(nonce));
  const mark = (i: number) => `\uE000${nonce}.${i}\uE001`;
  const marked = renderChatTemplate(p.template, { ...p.render, messages: p.messages.map((m, i) => ({ ...m, content: mark(i) })) });
  const parts = marked.split(new RegExp(`\uE000${nonce}\\.(\\d+)\uE001`));
  // parts: template text, content index, template text, ...
  const seps = parts.filter((_, i) => i % 2 === 0);
  const slots = parts.filter((_, i) => i % 2 === 1).map((i) => p.messages[Number(i)].content);
  const contents = align(text, seps, slots);
  if (!contents)
    throw new FlashdipError(
      'ERR_TEMPLATE',
      'chat template: cannot tell the message contents from the template\'s own text (the template changes contents in a way ' +
        'flashdip does not follow), so the special tokens of the text cannot be parsed safely',
    );
  const out: TextSegment[] = [];
  seps.forEach((s, i) => {
    if (s) out.push({ text: s, parseSpecial: true });
    if (i < contents.length && contents[i]) out.push({ text: contents[i], parseSpecial: false });
  });
  return out;
}

function align(text: string, seps: string[], slots: string[]): string[] | null {
  if (!text.startsWith(seps[0])) return null;
  const out: string[] = [];
  const failed = new Set<number>(); // (slot, position) pairs already known to lead nowhere
  const go = (pos: number, k: number): boolean => {
    if (k === slots.length) return pos === text.length;
    const state = k * (text.length + 1) + pos;
    if (failed.has(state)) return false;
    const c = slots[k];
    for (const x of new Set([c, c.trim(), c.trimStart(), c.trimEnd()])) {
      const end = pos + x.length;
      if (text.startsWith(x, pos) && text.startsWith(seps[k + 1], end)) {
        out.push(x);
        if (go(end + seps[k + 1].length, k + 1)) return true;
        out.pop();
      }
    }
    failed.add(state);
    return false;
  };
  return go(seps[0].length, 0) ? out : null;
}

// ------------------------------------------------------------------ Chat

// The messages without the oldest turn after the system messages (a user message and the replies up
// to the next user message); null when only the last message, the one being sent, is left.
function dropOldestTurn(messages: ChatMessage[]): ChatMessage[] | null {
  const last = messages.length - 1;
  const first = messages.findIndex((m) => m.role !== 'system');
  if (first < 0 || first >= last) return null;
  let end = first + 1;
  while (end < last && messages[end].role !== 'user') end++;
  return [...messages.slice(0, first), ...messages.slice(end)];
}

export interface ChatOptions extends SessionOptions {
  /** The system message the conversation starts with. */
  system?: string;
  /** A built-in template name, Jinja source or a file; default the file's template, else chatml. */
  template?: string;
  /**
   * When the conversation no longer fits the context: 'drop-oldest' (default) drops the oldest turns
   * after the system message (the rest is evaluated again); 'throw' throws ERR_CONTEXT_FULL.
   */
  onContextFull?: 'drop-oldest' | 'throw';
}

export interface ChatStats extends SessionStats {
  /** The last send(): tokens kept from the KV cache, tokens evaluated for the prompt, messages dropped to fit. */
  lastTurn: { reusedTokens: number; evaluatedTokens: number; droppedMessages: number };
}

export class Chat {
  readonly session: Session;
  /** The Jinja source the chat renders. */
  readonly template: string;
  private readonly model: Model;
  private readonly onContextFull: 'drop-oldest' | 'throw';
  private messages: ChatMessage[] = [];
  private sending = false;
  private lastTurn = { reusedTokens: 0, evaluatedTokens: 0, droppedMessages: 0 };

  /** @internal use model.createChat() */
  constructor(model: Model, options: ChatOptions) {
    const o = checkObject('options', options);
    const { system, template, onContextFull, ...sessionOptions } = o as ChatOptions;
    if (system !== undefined && typeof system !== 'string') throw invalidArgument('system', 'must be a string');
    this.template = template !== undefined ? resolveChatTemplate(template) : chatTemplateOf(model);
    this.onContextFull = checkEnum('onContextFull', onContextFull, ['drop-oldest', 'throw'], 'drop-oldest');
    this.model = model;
    this.session = model.createSession(sessionOptions);
    if (system) this.messages.push({ role: 'system', content: system });
  }

  /** The conversation so far (a copy): the system message, then user and assistant turns. */
  get history(): ChatMessage[] {
    return this.messages.map((m) => ({ ...m }));
  }

  /** Replaces (or with undefined / '' removes) the system message; the next turn re-evaluates from it. */
  setSystem(text: string | undefined): void {
    if (text !== undefined && typeof text !== 'string') throw invalidArgument('system', 'must be a string');
    this.idle();
    this.messages = this.messages.filter((m) => m.role !== 'system');
    if (text) this.messages.unshift({ role: 'system', content: text });
  }

  /**
   * Sends a user message and streams the reply (pieces as session.generate gives them). Only the
   * tokens that are new since the previous turn are evaluated. Generation stops at any
   * end-of-generation token of the vocabulary, which is not part of the text. The user message and
   * the reply (also one cut short by an abort) join the history.
   */
  async *send(userText: string, options: GenerateOptions = {}): AsyncGenerator<Piece, void, undefined> {
    if (typeof userText !== 'string') throw invalidArgument('userText', 'must be a string');
    const o = checkObject('options', options);
    const maxTokens = checkInt('maxTokens', o.maxTokens, 0, 1 << 30, 256);
    this.idle();
    this.sending = true;
    try {
      const ctx = this.session.contextSize;
      let messages: ChatMessage[] = [...this.messages, { role: 'user', content: userText }];
      let tokens = this.tokenize(messages);
      let dropped = 0;
      // Make room for a reply of maxTokens by dropping the oldest turns ('drop-oldest').
      while (tokens.length + maxTokens > ctx && this.onContextFull === 'drop-oldest') {
        const next = dropOldestTurn(messages);
        if (!next) break;
        dropped += messages.length - next.length;
        messages = next;
        tokens = this.tokenize(messages);
      }
      if (tokens.length >= ctx)
        throw new FlashdipError(
          'ERR_CONTEXT_FULL',
          `the conversation takes ${tokens.length} tokens and the context holds ${ctx}` +
            (this.onContextFull === 'throw' ? '' : ' (after dropping every earlier turn)'),
        );

      // Keep the part of the KV cache the new prompt shares; evaluate the rest.
      const held = this.session.tokens;
      let keep = 0;
      while (keep < held.length && keep < tokens.length && held[keep] === tokens[keep]) keep++;
      if (keep === tokens.length) keep--; // something must be evaluated for the next logits
      let reused = keep;
      if (keep < held.length) {
        this.session.truncate(keep);
        // A sliding-window model's rewind empties the KV cache when its rings lost the window before keep.
        reused = Math.min(keep, this.session.cachedTokens);
      }
      this.lastTurn = { reusedTokens: reused, evaluatedTokens: tokens.length - reused, droppedMessages: dropped };

      // SentencePiece adds a space before text that follows a special token (llama.cpp's
      // is_prev_special); the reply, which the template puts after its header, is written without it,
      // so that it tokenizes again into the same tokens.
      const tok = this.model.tokenizer;
      const lastPrompt = tokens[tokens.length - 1];
      let dropSpace = tok.type === 'spm' && tok.addSpacePrefix && tok.tokenType(lastPrompt) !== TokenType.Normal && tok.tokenType(lastPrompt) !== TokenType.Byte;
      let reply = '';
      let finished = false;
      try {
        const gen = this.session.generate(tokens.slice(keep), { ...(o as GenerateOptions), maxTokens: Math.min(maxTokens, ctx - tokens.length) });
        for await (const piece of gen) {
          let text = piece.text;
          if (dropSpace && text) {
            if (text.startsWith(' ')) text = text.slice(1);
            dropSpace = false;
          }
          reply += text;
          yield text === piece.text ? piece : { ...piece, text };
        }
        finished = true;
      } finally {
        if (finished || reply) this.messages = [...messages, { role: 'assistant', content: reply }];
      }
    } finally {
      this.sending = false;
    }
  }

  /** Session statistics (prompt and generated tokens, speed, sparsity) and what the last turn reused. */
  stats(): ChatStats {
    return { ...this.session.stats(), lastTurn: { ...this.lastTurn } };
  }

  /** Forgets the turns (the system message stays) and empties the KV cache. */
  reset(): void {
    this.idle();
    this.session.reset();
    this.messages = this.messages.filter((m) => m.role === 'system');
    this.lastTurn = { reusedTokens: 0, evaluatedTokens: 0, droppedMessages: 0 };
  }

  get disposed(): boolean {
    return this.session.disposed;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private tokenize(messages: ChatMessage[]): number[] {
    return tokenizeChat(this.model, messages, { addGenerationPrompt: true }, this.template);
  }

  private idle(): void {
    if (this.session.disposed) throw new FlashdipError('ERR_DISPOSED', 'the chat has been disposed');
    if (this.sending) throw new FlashdipError('ERR_BUSY', 'the chat is answering; finish or abort the reply first');
  }
}
