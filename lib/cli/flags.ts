// Flag helpers shared by the commands (a module of its own: commands and main import it, never
// each other).
import * as fs from 'fs';
import type { ParseArgsConfig } from 'util';
import { FlashdipError } from '../errors';
import type { LoadOptions } from '../model';
import type { CachePolicy, SparseMethod } from '../sparsity';

// Parses a numeric flag; undefined when absent.
export function numberFlag(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n))
    throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${name}: expected a number, got ${JSON.stringify(value)}`);
  return n;
}

type Flags = Record<string, string | boolean | string[] | undefined>;

/** The flags every command that loads a model for sparse runs takes (run, ppl, simulate). */
export const MODEL_FLAGS: NonNullable<ParseArgsConfig['options']> = {
  model: { type: 'string', short: 'm' },
  threads: { type: 'string', short: 't' },
  method: { type: 'string' },
  density: { type: 'string' },
  'keep-x': { type: 'string' },
  'keep-h': { type: 'string' },
  gamma: { type: 'string' },
  'fixed-top-n': { type: 'string' },
  'read-block': { type: 'string' },
  'read-cover': { type: 'string' },
  policy: { type: 'string' },
  'memory-budget': { type: 'string' },
  thresholds: { type: 'string' },
};
export const MODEL_FLAGS_USAGE =
  '[--threads N] [--method dense|dip|dip-ca|glu|gate|up] [--density R] [--keep-x R] [--keep-h R] [--gamma G]\n' +
  '       [--fixed-top-n N] [--read-block B] [--read-cover C] [--policy lru|lfu|none] [--memory-budget B] [--thresholds FILE]';

/** loadModel's options from MODEL_FLAGS. */
export function loadOptionsFromFlags(v: Flags): LoadOptions {
  return {
    threads: numberFlag('threads', v.threads),
    memoryBudget: v['memory-budget'] as string | undefined,
    sparsity: {
      method: v.method as SparseMethod | undefined,
      density: numberFlag('density', v.density),
      keepX: numberFlag('keep-x', v['keep-x']),
      keepH: numberFlag('keep-h', v['keep-h']),
      gamma: numberFlag('gamma', v.gamma),
      fixedTopN: numberFlag('fixed-top-n', v['fixed-top-n']),
      readBlock: v['read-block'] as string | undefined,
      readCover: numberFlag('read-cover', v['read-cover']),
      thresholds: v.thresholds as string | undefined,
    },
    cache: { policy: v.policy as CachePolicy | undefined },
  };
}

/** The text file named by a required flag. */
export function readTextFlag(v: Flags, name: string): string {
  const file = v[name];
  if (typeof file !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${name} is required`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlashdipError('ERR_IO', `cannot read ${file}: ${(err as Error).message}`);
  }
}
