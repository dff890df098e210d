// Model: a loaded GGUF file, its tokenizer, and the sessions that share it.
import { ByteSplit, getBinding, NativeModel, NativeModelInfo } from './binding';
import { applyChatTemplate, Chat, ChatOptions, ChatTemplateOptions, tokenizeChat } from './chat';
import type { ChatMessage } from './chat-template';
import { FlashdipError, fromNative } from './errors';
import { defaultModel } from './default-model';
import { readGgufAsync } from './gguf';
import { checkBoolean, checkInt, checkKeys, checkNumber, checkObject } from './options';
import { CacheOptions, parseBudget, POLICY_IDS, ResolvedSparsity, resolveSparsity, SparsityOptions } from './sparsity';
import { checkLoraScale, LoraAdapter } from './lora';
import { Session, SessionOptions } from './session';
import { checkTableShape } from './thresholds';
import { Tokenizer, tokenizerSpecFromMetadata } from './tokenizer';
import { checkPlanVersion } from './plan-file';

export interface LoadOptions {
  /** Compute threads; default: one per core (small work still runs on one). */
  threads?: number;
  /**
   * DRAM budget in bytes or as a string ('2GiB'); default: everything in DRAM. One budget for the
   * model: its static weights, the column caches (shared by all its sessions) and every session's KV
   * cache and scratch, counted when the session is made (see createSession and memory()).
   */
  memoryBudget?: number | string;
  /** MLP sparsity: method ('dense' by default), density, gamma... (see SparsityOptions). */
  sparsity?: SparsityOptions;
  cache?: CacheOptions;
  /**
   * Read the weights into anonymous memory that asks for transparent huge pages instead of using them
   * through the file's mapping: decode reads every weight byte per token, and with 4 KiB pages that is
   * a TLB miss every 4 KiB (dense q8_0 decode 1.5x faster on a KVM guest, bench/RESULTS.md). Loading
   * then reads the whole file, and the weights are the process's own memory: the kernel cannot drop
   * their pages under memory pressure as it can a mapping's, nor share them with another process that
   * maps the same file. Default: on when the kernel offers transparent huge pages
   * (/sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise"), no memoryBudget is set and
   * the weights take at most 80% of the memory the process may still take (MemAvailable, capped by its
   * cgroup's limit); true copies regardless.
   * Not with a memoryBudget, which keeps the weights on flash (ERR_INVALID_ARGUMENT).
   */
  hugePages?: boolean;
  /** Set by a plan file (`flashdip plan`), whose contents are these options: must be 1. */
  version?: number;
}

export type ModelInfo = NativeModelInfo & { path: string };

const LOAD_KEYS = ['threads', 'memoryBudget', 'sparsity', 'cache', 'hugePages', 'version'] as const;

/**
 * The memoryBudget under which the model at `path` (no path: the embedded demo model) holds one session
 * of `session` (contextSize, kvCacheType, ...) and caches `cacheFraction` of its column rows (the MLP's,
 * and attention's on a file converted with them): what the engine reserves for the model and that session
 * (static weights, streaming buffer, KV cache, scratch; `model.memory()`) plus that share of the rows. For choosing a budget by how much of the columns it caches, as benchmarks and the demo do.
 */
export async function columnBudget(path: string | undefined, options: { cacheFraction: number; sparsity?: SparsityOptions; session?: SessionOptions }): Promise<number> {
  const opts = checkObject('options', options);
  checkKeys('options', opts, ['cacheFraction', 'sparsity', 'session']);
  const fraction = checkNumber('cacheFraction', opts.cacheFraction, 0, 1);
  if (fraction === undefined) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'cacheFraction: required, a number in [0, 1]');
  // Any budget that holds everything reports what the engine reserves besides the column cache.
  const model = await loadModel(path, { memoryBudget: 1e15, ...(options.sparsity ? { sparsity: options.sparsity } : {}) });
  try {
    const session = model.createSession(options.session);
    const { bytes, budget } = model.memory();
    session.dispose();
    return bytes.static + bytes.mlpLayer + budget!.kvCache + budget!.scratch + Math.ceil(fraction * (bytes.mlp + bytes.attn));
  } finally {
    await model.dispose();
  }
}

export async function loadModel(path?: string, options: LoadOptions = {}): Promise<Model> {
  // No path: the embedded demo model (lib/default-model.ts).
  if (path === undefined) path = defaultModel();
  if (typeof path !== 'string' || path.length === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'path: must be a non-empty string');
  const opts = checkObject('options', options);
  checkKeys('options', opts, LOAD_KEYS);
  const threads = checkInt('threads', opts.threads, 1, 256);
  checkPlanVersion(opts.version);
  const sparsity = resolveSparsity(opts.sparsity, opts.cache);
  const memoryBudget = parseBudget(opts.memoryBudget);
  const hugePages = checkBoolean('hugePages', opts.hugePages);
  if (hugePages && memoryBudget !== undefined)
    throw new FlashdipError('ERR_INVALID_ARGUMENT', 'hugePages: true reads every weight into DRAM; a memoryBudget keeps them on flash (use one or the other)');
  const copyWeights = memoryBudget !== undefined || hugePages === false ? 0 : hugePages ? 1 : -1;
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
    native = await getBinding().loadModel(path, { threads, copyWeights });
  } catch (err) {
    throw fromNative(err, callSite);
  }
  try {
    if (sparsity.thresholds) checkTableShape('sparsity.thresholds', sparsity.thresholds, native.info());
    if (memoryBudget !== undefined)
      native.setBudget({ budget: memoryBudget, policy: POLICY_IDS[sparsity.policy], dropPages: sparsity.dropPageCache ? 1 : 0 });
  } catch (err) {
    native.dispose();
    throw fromNative(err, callSite);
  }
  return new Model(path, native, tokenizer, { sparsity, memoryBudget, bytes: native.memory().bytes });
}

/** @internal what sessions inherit from loadModel's options. */
export interface ModelDefaults {
  sparsity: ResolvedSparsity;
  memoryBudget: number | undefined;
  bytes: ByteSplit;
}

/** How a model uses DRAM (model.memory()). */
export interface ModelMemory {
  /** The file's bytes by what a budget does with them (the engine's split). */
  bytes: ByteSplit;
  /**
   * Under a memoryBudget, how the model's one budget is shared; per model, over all its sessions:
   * static (bytes.static) + streaming buffer (bytes.mlpLayer) + adapters + the sessions' KV caches
   * and scratch + the column cache = the budget (the cache takes what is left, up to bytes.mlp +
   * bytes.attn: attention stored as rows, layout version 2, is cached like the MLP). The
   * cache counts and reads are totals over every session of the model since it was loaded.
   */
  budget?: {
    budget: number;
    /** LoRA adapters, reserved once for the model (the largest any live session was made with). */
    adapters: number;
    /**
     * Live sessions and what they hold, summed: KV caches as reserved (contextSize positions; on a
     * sliding-window layer its window plus one batch, when fewer) and scratch.
     */
    sessions: number;
    kvCache: number;
    scratch: number;
    /** What is left for the column cache, and the fraction of every matrix it holds (MLP, and attention rows; from the next evaluation on). */
    cacheBytes: number;
    cacheFraction: number;
    /** MLP column units used by every session, found in the shared cache (hits) or read (misses). */
    hits: number;
    misses: number;
    /** Reads from the column store, every session: row bytes, gap bytes, requests, seconds. */
    storeBytes: number;
    storeGapBytes: number;
    storeReads: number;
    storeReadSeconds: number;
    ioEngine: string;
  };
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

  /**
   * A new sequence over this model. Under a memoryBudget its KV cache (contextSize positions, as
   * reserved; a sliding-window layer's window plus one batch, when fewer) and scratch are counted in
   * the model's one budget now, and the column cache shared by the model's sessions shrinks to make
   * room (from the next evaluation on, emptied then); a session
   * that does not fit gets ERR_BUDGET_TOO_SMALL saying what it needs and what is left. The sessions
   * of a model evaluate one at a time (a per-model lock): sessions generating at once interleave,
   * each waiting for the others' forward passes.
   */
  createSession(options: SessionOptions = {}): Session {
    const native = this.alive();
    const session = new Session(this, native, options, () => this.sessions.delete(session));
    this.sessions.add(session);
    return session;
  }

  /**
   * How the model uses DRAM: the file's split and, under a memoryBudget, how the one budget is shared
   * by the sessions (each counted when made; ERR_BUDGET_TOO_SMALL for one that does not fit).
   */
  memory(): ModelMemory {
    const m = this.alive().memory();
    const b = m.budget;
    return {
      bytes: m.bytes,
      ...(b ? {
        budget: {
          budget: b.budget, adapters: b.adapters, sessions: b.sessions, kvCache: b.kv, scratch: b.scratch, cacheBytes: b.cacheBytes,
          cacheFraction: b.cacheFraction, hits: b.hits, misses: b.misses, storeBytes: b.ioBytes, storeGapBytes: b.ioGapBytes,
          storeReads: b.ioReads, storeReadSeconds: b.ioSeconds, ioEngine: b.ioEngine,
        },
      } : {}),
    };
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
