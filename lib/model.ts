// Model: a loaded GGUF file, its tokenizer, and the sessions that share it.
import { getBinding, NativeModel, NativeModelInfo } from './binding';
import { applyChatTemplate, Chat, ChatOptions, ChatTemplateOptions, tokenizeChat } from './chat';
import type { ChatMessage } from './chat-template';
import { FlashdipError, fromNative } from './errors';
import { readGgufAsync } from './gguf';
import { checkInt, checkKeys, checkObject } from './options';
import { ByteSplit, CacheOptions, parseBudget, ResolvedSparsity, resolveSparsity, SparsityOptions, splitBytes } from './sparsity';
import { checkLoraScale, LoraAdapter } from './lora';
import { Session, SessionOptions } from './session';
import { checkTableShape } from './thresholds';
import { Tokenizer, tokenizerSpecFromMetadata } from './tokenizer';

export interface LoadOptions {
  /** Compute threads; default: one per core (small work still runs on one). */
  threads?: number;
  /** DRAM budget in bytes or as a string ('2GiB'); default: everything in DRAM. */
  memoryBudget?: number | string;
  /** MLP sparsity: method ('dense' by default), density, gamma... (see SparsityOptions). */
  sparsity?: SparsityOptions;
  cache?: CacheOptions;
}

export type ModelInfo = NativeModelInfo & { path: string };

const LOAD_KEYS = ['threads', 'memoryBudget', 'sparsity', 'cache'] as const;

export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  if (typeof path !== 'string' || path.length === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'path: must be a non-empty string');
  const opts = checkObject('options', options);
  checkKeys('options', opts, LOAD_KEYS);
  const threads = checkInt('threads', opts.threads, 1, 256);
  const sparsity = resolveSparsity(opts.sparsity, opts.cache);
  const memoryBudget = parseBudget(opts.memoryBudget);
  const callSite = new Error();
  let header;
  try {
    header = await readGgufAsync(path);  // off the JS thread: a slow or odd file never blocks the event loop
  } catch (err) {
    throw fromNative(err, callSite);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerSpecFromMetadata(header.metadata));
  } catch (err) {
    if (err instanceof FlashdipError) throw err;
    throw new FlashdipError('ERR_MODEL_INVALID', `${path}: the tokenizer metadata is invalid: ${(err as Error).message}`, { cause: err });
  }
  let native: NativeModel;
  try {
    native = await getBinding().loadModel(path, { threads });
  } catch (err) {
    throw fromNative(err, callSite);
  }
  if (sparsity.thresholds) {
    try {
      checkTableShape('sparsity.thresholds', sparsity.thresholds, native.info());
    } catch (err) {
      native.dispose();
      throw err;
    }
  }
  return new Model(path, native, tokenizer, { sparsity, memoryBudget, bytes: splitBytes(header) });
}

/** @internal what sessions inherit from loadModel's options. */
export interface ModelDefaults {
  sparsity: ResolvedSparsity;
  memoryBudget: number | undefined;
  bytes: ByteSplit;
}

export class Model {
  readonly path: string;
  readonly tokenizer: Tokenizer;
  readonly info: ModelInfo;
  private native: NativeModel | undefined;
  /** @internal */
  readonly defaults: ModelDefaults;
  private readonly sessions = new Set<Session>();
  private readonly loras = new Set<LoraAdapter>();

  /** @internal use loadModel() */
  constructor(path: string, native: NativeModel, tokenizer: Tokenizer, defaults: ModelDefaults) {
    this.path = path;
    this.native = native;
    this.tokenizer = tokenizer;
    this.info = { ...native.info(), path };
    this.defaults = defaults;
    if (!native.info().dipLayout && (defaults.sparsity.method !== 'dense' || defaults.memoryBudget !== undefined || defaults.sparsity.keepAttn < 1))
      process.emitWarning(
        `${path} is in the standard GGUF layout: sparsity and memoryBudget change what is computed and what the ` +
          'column-cache accounting reports, but every weight is still read; `flashdip convert` it to save the bandwidth and memory',
        { code: 'FLASHDIP_STANDARD_LAYOUT' },
      );
    else if (native.info().dipLayout && !native.info().dipAttention && defaults.sparsity.keepAttn < 1)
      process.emitWarning(
        `${path} was converted without attention rows (flashdip layout version 1): attentionDensity masks attention's inputs ` +
          'but every attention weight is still read from DRAM; convert the original GGUF again to serve attention from the column store',
        { code: 'FLASHDIP_ATTENTION_STANDARD_LAYOUT' },
      );
  }

  get disposed(): boolean {
    return this.native === undefined;
  }

  createSession(options: SessionOptions = {}): Session {
    const native = this.alive();
    const session = new Session(this, native, options, () => this.sessions.delete(session));
    this.sessions.add(session);
    return session;
  }

  /**
   * Loads a LoRA adapter in llama.cpp's GGUF adapter format for this model (its architecture and
   * matrix shapes are checked) into DRAM. `scale` (default 1) is what sessions apply it with unless
   * they give their own; the effective factor is scale * alpha / rank (scale alone without alpha).
   */
  async loadLora(path: string, options: { scale?: number } = {}): Promise<LoraAdapter> {
    const native = this.alive();
    if (typeof path !== 'string' || path.length === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'path: must be a non-empty string');
    const opts = checkObject('options', options);
    checkKeys('options', opts, ['scale']);
    const scale = checkLoraScale('scale', opts.scale, 1);
    const callSite = new Error();
    let handle;
    try {
      handle = await native.loadLora(path);
    } catch (err) {
      throw fromNative(err, callSite);
    }
    const adapter: LoraAdapter = new LoraAdapter(this, path, scale, handle, () => this.loras.delete(adapter));
    this.loras.add(adapter);
    return adapter;
  }

  /** @internal DRAM held by the adapters loaded on this model and not disposed. */
  loraBytes(): number {
    let n = 0;
    for (const a of this.loras) n += a.bytes;
    return n;
  }

  /** Token ids of text; with addSpecial, BOS (and EOS) as the vocabulary asks. */
  tokenize(text: string, options: { addSpecial?: boolean; parseSpecial?: boolean } = {}): number[] {
    this.alive();
    return this.tokenizer.encode(text, options);
  }

  detokenize(tokens: readonly number[]): string {
    this.alive();
    return this.tokenizer.decode(tokens);
  }

  /** The file's chat template (tokenizer.chat_template), or undefined when it has none. */
  get chatTemplate(): string | undefined {
    return this.tokenizer.chatTemplate;
  }

  /**
   * Renders a conversation with the chat template (options.template, else the file's, else chatml).
   * Templates without a system role get the system message folded into the first user message, as
   * llama.cpp does.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    this.alive();
    return applyChatTemplate(this, messages, options);
  }

  /**
   * The token ids of applyChatTemplate(messages, options): special tokens are parsed only in the
   * template's own text, never in message contents; BOS as the vocabulary asks.
   */
  tokenizeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    this.alive();
    return tokenizeChat(this, messages, options);
  }

  /** A conversation over a new session that keeps its KV cache across turns (see Chat). */
  createChat(options: ChatOptions = {}): Chat {
    this.alive();
    return new Chat(this, options);
  }

  /** Frees the model and every session made from it. Idempotent. */
  async dispose(): Promise<void> {
    if (!this.native) return;
    for (const s of [...this.sessions]) await s.dispose();
    for (const a of [...this.loras]) a.dispose();
    this.native.dispose();
    this.native = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private alive(): NativeModel {
    if (!this.native) throw new FlashdipError('ERR_DISPOSED', 'the model has been disposed');
    return this.native;
  }
}
