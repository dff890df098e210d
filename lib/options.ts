// Option checks shared by the API and the CLI: every bad value becomes ERR_INVALID_ARGUMENT naming
// the option, so native code can trust what it is given.
import { invalidArgument } from './errors';

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(name, 'must be an object');
  return value as Record<string, unknown>;
}

// Rejects keys the caller misspelled instead of silently ignoring them.
export function checkKeys(name: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !allowed.includes(key))
      throw invalidArgument(name, `unknown option '${key}' (known: ${allowed.join(', ')})`);
  }
}

export function checkInt(name: string, value: unknown, min: number, max: number, def: number): number;
export function checkInt(name: string, value: unknown, min: number, max: number, def?: number): number | undefined;
export function checkInt(name: string, value: unknown, min: number, max: number, def?: number): number | undefined {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalidArgument(name, `must be an integer in [${min}, ${max}], got ${String(value)}`);
  return value;
}

export function checkNumber(name: string, value: unknown, min: number, max: number, def: number): number;
export function checkNumber(name: string, value: unknown, min: number, max: number, def?: number): number | undefined;
export function checkNumber(name: string, value: unknown, min: number, max: number, def?: number): number | undefined {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw invalidArgument(name, `must be a number in [${min}, ${max}], got ${String(value)}`);
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw invalidArgument(name, `must be a boolean, got ${String(value)}`);
  return value;
}

export function checkEnum<T extends string>(name: string, value: unknown, allowed: readonly T[], def: T): T {
  if (value === undefined) return def;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    throw invalidArgument(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** An optional AbortSignal option. */
export function checkSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value !== undefined && (typeof value !== 'object' || value === null || typeof (value as AbortSignal).aborted !== 'boolean'))
    throw invalidArgument(name, 'must be an AbortSignal');
  return value as AbortSignal | undefined;
}

/** An optional progress callback `onProgress(done, total)`. */
export function checkProgress(name: string, value: unknown): ((done: number, total: number) => void) | undefined {
  if (value !== undefined && typeof value !== 'function') throw invalidArgument(name, 'must be a function (done, total) => void');
  return value as ((done: number, total: number) => void) | undefined;
}

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

// A byte count: a non-negative integer, or a string such as '650MB', '1.5GiB', '4096'.
export function parseBytes(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value <= 0) throw invalidArgument(name, `must be a positive whole number of bytes, got ${value}`);
    return value;
  }
  if (typeof value !== 'string') throw invalidArgument(name, 'must be a number of bytes or a string like "650MB"');
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw invalidArgument(name, `cannot parse ${JSON.stringify(value)} as a size (e.g. "650MB", "2GiB")`);
  const bytes = Math.floor(parseFloat(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw invalidArgument(name, `${JSON.stringify(value)} is not a positive size`);
  return bytes;
}
