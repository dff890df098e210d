// One typed error for everything the library reports. `code` is stable and documented; messages
// are for people and may change.

/** Every code a user can see; README.md's error table says what each means and what to do. */
export const ERROR_CODES = [
  'ERR_GGUF_TRUNCATED', 'ERR_GGUF_BAD_MAGIC', 'ERR_GGUF_BAD_VERSION', 'ERR_GGUF_INVALID',
  'ERR_UNSUPPORTED_ARCH', 'ERR_UNSUPPORTED_TYPE', 'ERR_MODEL_INVALID', 'ERR_BUDGET_TOO_SMALL',
  'ERR_CONTEXT_FULL', 'ERR_TEMPLATE', 'ERR_INVALID_ARGUMENT', 'ERR_DISPOSED', 'ERR_ABORTED', 'ERR_BUSY', 'ERR_IO',
  'ERR_NATIVE_LOAD', 'ERR_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class FlashdipError extends Error {
  readonly code: ErrorCode;
  /** ERR_ABORTED from a long computation given a `signal` (perplexity, recordRun, sweep): the result
   * over the work finished before it stopped, of the type the function returns; undefined when none. */
  readonly partial?: unknown;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; partial?: unknown }) {
    super(message, options);
    this.name = 'FlashdipError';
    this.code = code;
    if (options?.partial !== undefined) this.partial = options.partial;
  }
}

/** The ERR_ABORTED a computation throws when its signal is aborted, with what it had done. */
export function abortedError(what: string, signal: AbortSignal, partial?: unknown): FlashdipError {
  return new FlashdipError('ERR_ABORTED', `${what} was aborted`, { cause: signal.reason, partial });
}

export function invalidArgument(name: string, message: string): FlashdipError {
  return new FlashdipError('ERR_INVALID_ARGUMENT', `${name}: ${message}`);
}

const CODES = new Set<string>(ERROR_CODES);

// Native errors arrive as plain Errors whose `code` the addon set; give them our class. The JS
// call-site stack, captured before an async call, replaces the useless native one.
export function fromNative(err: unknown, callSite?: Error): FlashdipError {
  if (err instanceof FlashdipError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' && CODES.has(e.code) ? (e.code as ErrorCode) : 'ERR_INTERNAL';
  const out = new FlashdipError(code, String(e?.message ?? err), { cause: err });
  if (callSite?.stack) out.stack = `FlashdipError: ${out.message}\n${callSite.stack.split('\n').slice(1).join('\n')}`;
  return out;
}
