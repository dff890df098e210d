// Plan files (`flashdip plan -o PLAN.json`): `{ version, memoryBudget, sparsity, cache }`, which is
// loadModel's options object as it stands (`loadModel(path, plan)`, `--plan PLAN.json`). They are
// user input: checked as loadModel checks its options, unknown keys refused, the version required.
import * as fs from 'fs';
import { FlashdipError, invalidArgument } from './errors';
import { checkKeys } from './options';
import { CacheOptions, parseBudget, resolveSparsity, SparsityOptions } from './sparsity';

export const PLAN_VERSION = 1;

/** A plan file's contents: loadModel's options (threads aside) with the format's version. */
export interface Plan {
  version: typeof PLAN_VERSION;
  memoryBudget: number;
  sparsity: SparsityOptions;
  cache: CacheOptions;
}

const PLAN_KEYS = ['version', 'memoryBudget', 'sparsity', 'cache'] as const;

/**
 * A plan given as an object or the name of its JSON file, checked as loadModel would check it (its
 * sparsity and cache options resolved, unknown keys refused): ERR_INVALID_ARGUMENT naming `name`,
 * ERR_IO when the file cannot be read.
 */
export function readPlan(name: string, value: unknown): Plan {
  let parsed = value, where = name;
  if (typeof value === 'string') {
    let text: string;
    try {
      text = fs.readFileSync(value, 'utf8');
    } catch (err) {
      throw new FlashdipError('ERR_IO', `${name}: cannot read ${value}: ${(err as Error).message}`);
    }
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw invalidArgument(name, `${value} is not valid JSON: ${(err as Error).message}`);
    }
    where = `${name} (${value})`;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidArgument(where, 'must be a plan object (from `flashdip plan`)');
  const o = parsed as Record<string, unknown>;
  try {
    checkKeys('plan', o, PLAN_KEYS);
    checkPlanVersion(o.version, true);
    if (o.memoryBudget === undefined) throw invalidArgument('plan.memoryBudget', 'is required');
    const memoryBudget = parseBudget(o.memoryBudget)!;
    resolveSparsity(o.sparsity, o.cache);
    return { version: PLAN_VERSION, memoryBudget, sparsity: (o.sparsity ?? {}) as SparsityOptions, cache: (o.cache ?? {}) as CacheOptions };
  } catch (err) {
    if (err instanceof FlashdipError) throw new FlashdipError(err.code, `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The `version` key of loadModel's options (a plan object passed as they are). */
export function checkPlanVersion(v: unknown, required = false): void {
  if (v === undefined && !required) return;
  if (v !== PLAN_VERSION) throw invalidArgument('plan.version', `must be ${PLAN_VERSION} (plans of another version are not supported), got ${JSON.stringify(v)}`);
}
