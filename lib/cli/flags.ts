// Flag helpers shared by the commands (a module of its own: commands and main import it, never
// each other). Every number on the command line is parsed here, one way: plain decimal (an optional
// sign, digits, an optional fraction); hex, exponents, 'Infinity' and trailing junk are refused.
// Sizes take the units of parseBytes ('650MB', '2GiB', '4096').
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError } from '../errors';
import { defaultModel } from '../default-model';
import type { LoraSpec } from '../lora';
import type { LoadOptions, Model } from '../model';
import { readPlan } from '../plan-file';
import { resolveSamplerOptions } from '../sampler';
import type { GenerateOptions, SessionOptions } from '../session';
import { checkInt, parseBytes } from '../options';
import type { CachePolicy, SparseMethod } from '../sparsity';
import type { Flag, Values } from './command';

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;
const INTEGER = /^[+-]?\d+$/;

function badFlag(name: string, message: string): FlashdipError {
  return new FlashdipError('ERR_INVALID_ARGUMENT', `--${name}: ${message}`);
}

/** A decimal number flag; undefined when absent. */
export function numberFlag(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !DECIMAL.test(value)) throw badFlag(name, `expected a decimal number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** A whole-number flag; undefined when absent. Ranges are the API's to check (its message is mapped
 * back to the flag). */
export function intFlag(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !INTEGER.test(value) || !Number.isSafeInteger(Number(value)))
    throw badFlag(name, `expected a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** A size flag in bytes ('650MB', '2GiB', '4096'); undefined when absent. */
export function bytesFlag(name: string, value: unknown): number | undefined {
  return parseBytes(`--${name}`, value);
}

/** A string flag the command cannot run without. */
export function requiredFlag(v: Values, name: string): string {
  const value = v[name];
  if (typeof value !== 'string') throw new FlashdipError('ERR_INVALID_ARGUMENT', `--${name} is required`);
  return value;
}

/**
 * The model file: --model M, or a positional where the command takes one (`inspect M`); without either,
 * the embedded demo model (lib/default-model.ts), unless the command needs a model given (convert).
 */
export function modelFlag(v: Values, positional?: string, fallback = true): string {
  if (positional !== undefined && typeof v.model === 'string' && positional !== v.model)
    throw badFlag('model', `given twice ('${v.model}' and '${positional}')`);
  const model = positional ?? v.model;
  if (typeof model !== 'string') {
    if (fallback) return defaultModel();
    throw new FlashdipError('ERR_INVALID_ARGUMENT', '--model is required');
  }
  return model;
}

/** The --model flag's default, as help shows it. */
export const DEFAULT_MODEL_HELP = 'the embedded demo model';

/** The flags every command that loads a model for sparse runs takes (run, ppl, simulate, bench). */
export const MODEL_FLAGS: Flag[] = [
  { name: 'model', short: 'm', arg: 'FILE', description: 'the GGUF model file', default: DEFAULT_MODEL_HELP, example: 'model.gguf' },
  { name: 'threads', short: 't', arg: 'N', description: 'compute threads', default: 'one per core', example: '2', api: 'threads' },
  { name: 'method', arg: 'NAME', description: 'MLP sparsity method: dense, dip, dip-ca, glu, gate or up', default: 'dense (or the thresholds\' method)',
    example: 'dip-ca', api: 'sparsity.method' },
  { name: 'density', arg: 'R', description: 'MLP density rho in (0, 1] (DIP splits it into keep-x and keep-h)', default: '1', example: '0.5',
    api: ['sparsity.density', 'density'] },
  { name: 'keep-x', arg: 'R', description: 'fraction of MLP input columns kept per token (DIP)', default: 'from --density', example: '0.6',
    api: 'sparsity.keepX' },
  { name: 'keep-h', arg: 'R', description: 'fraction of hidden units kept per token', default: 'from --density', example: '0.4',
    api: 'sparsity.keepH' },
  { name: 'gamma', arg: 'G', description: 'DIP-CA: weight of the columns not in the cache, in [0, 1]', default: '0.2', example: '0.1',
    api: 'sparsity.gamma' },
  { name: 'fixed-top-n', arg: 'N', description: 'DIP-CA: columns always kept by magnitude before cache-aware scoring', default: '0', example: '8',
    api: 'sparsity.fixedTopN' },
  { name: 'read-block', arg: 'SIZE', description: 'DIP-CA: read misses in blocks of this many bytes of adjacent columns', default: 'off',
    example: '64KiB', api: 'sparsity.readBlock' },
  { name: 'read-cover', arg: 'C', description: 'DIP-CA with --read-block: blocks hold C times as many candidates as misses (>= 1)',
    default: '1', example: '1.5', api: 'sparsity.readCover' },
  { name: 'attn-density', arg: 'R', description: 'fraction of attention inputs kept per token in (0, 1] (DIP on q/k/v and W_o inputs)',
    default: '1 (dense attention)', example: '0.5', api: 'sparsity.attentionDensity' },
  { name: 'policy', arg: 'NAME', description: 'column cache policy: lru, lfu or none', default: 'lfu', example: 'lru', api: 'cache.policy' },
  { name: 'memory-budget', arg: 'SIZE', description: 'DRAM budget for the model (B, kB, MB, GB, KiB, MiB, GiB)', default: 'everything in DRAM',
    example: '650MB', api: 'memoryBudget' },
  { name: 'thresholds', arg: 'FILE', description: 'calibrated thresholds (from `flashdip calibrate`) instead of top-k', default: 'none',
    example: 'dip-0.5.json', api: 'sparsity.thresholds' },
  { name: 'lora', arg: 'FILE[:SCALE]', description: 'apply a LoRA adapter (llama.cpp GGUF) with a scale >= 0 (repeatable)', default: 'none',
    example: 'style.gguf:0.8', multiple: true, api: ['loras', 'scale'] },
  { name: 'plan', arg: 'FILE', description: 'the memory budget and sparsity chosen by `flashdip plan` (instead of those flags)', default: 'none',
    example: 'plan.json', api: 'plan' },
];

// The flags a plan file replaces.
const PLAN_REPLACES = ['method', 'density', 'keep-x', 'keep-h', 'gamma', 'fixed-top-n', 'read-block', 'read-cover', 'policy', 'memory-budget', 'thresholds'];

/** The adapters of --lora FILE[:SCALE] (repeatable): a trailing ':<decimal>' is the scale (default
 * 1), anything else is part of the file name. Checked now (ERR_IO for a file that cannot be read). */
export function loraFlags(v: Values): { file: string; scale: number }[] {
  const given = v.lora === undefined ? [] : Array.isArray(v.lora) ? v.lora : [v.lora];
  return given.map((arg) => {
    if (typeof arg !== 'string') throw badFlag('lora', 'expected FILE[:SCALE]');
    const colon = arg.lastIndexOf(':');
    const tail = colon >= 0 ? arg.slice(colon + 1) : '';
    const hasScale = colon > 0 && DECIMAL.test(tail);
    const scale = hasScale ? Number(tail) : 1;
    if (!(scale >= 0) || !Number.isFinite(scale)) throw badFlag('lora', `the scale must be a number >= 0, got ${JSON.stringify(tail)}`);
    return { file: readableFlag('lora', hasScale ? arg.slice(0, colon) : arg), scale };
  });
}

/** Loads the --lora adapters for a model: what SessionOptions.loras takes. */
export async function loadLoraFlags(model: Model, loras: { file: string; scale: number }[]): Promise<LoraSpec[]> {
  const out: LoraSpec[] = [];
  for (const l of loras) out.push({ adapter: await model.loadLora(l.file), scale: l.scale });
  return out;
}

/** The sampling and session flags of the commands that generate text (run, chat). */
export const GENERATE_FLAGS: Flag[] = [
    { name: 'max-tokens', short: 'n', arg: 'N', description: 'tokens to generate at most', default: '256', example: '64', api: 'maxTokens' },
    { name: 'temperature', arg: 'T', description: 'sampling temperature; 0 is greedy', default: '0.8', example: '0', api: 'temperature' },
    { name: 'top-k', arg: 'K', description: 'keep the K most likely tokens; 0 disables', default: '40', example: '20', api: 'topK' },
    { name: 'top-p', arg: 'P', description: 'nucleus sampling threshold in (0, 1]; 1 disables', default: '0.95', example: '0.9', api: 'topP' },
    { name: 'min-p', arg: 'P', description: 'keep tokens with probability >= P times the largest; 0 disables', default: '0.05', example: '0.1',
      api: 'minP' },
    { name: 'repeat-penalty', arg: 'R', description: 'divide repeated tokens\' positive logits by R (> 0); 1 disables', default: '1',
      example: '1.1', api: 'repeatPenalty' },
    { name: 'repeat-last-n', arg: 'N', description: 'tokens the penalties look back over; 0 disables them', default: '64', example: '128',
      api: 'repeatLastN' },
    { name: 'frequency-penalty', arg: 'F', description: 'subtracted from a logit per occurrence in the window (may be negative)', default: '0',
      example: '-0.5', api: 'frequencyPenalty' },
    { name: 'presence-penalty', arg: 'F', description: 'subtracted from a logit once if it occurs in the window (may be negative)',
      default: '0', example: '0.5', api: 'presencePenalty' },
    { name: 'seed', arg: 'S', description: 'sampler seed (a whole number >= 0); the same seed gives the same text', default: '0',
      example: '42', api: 'seed' },
    { name: 'stop', arg: 'STR', description: 'stop before this string (repeatable; never printed)', default: 'none', example: '"The end"',
      multiple: true, api: 'stop' },
    { name: 'ctx', arg: 'N', description: 'context size in tokens', default: 'the model\'s, at most 4096', example: '2048', api: 'contextSize' },
    { name: 'kv-type', arg: 'TYPE', description: 'KV cache type: f16 or f32', default: 'f16', example: 'f32', api: 'kvCacheType' },
    { name: 'allow-context-beyond-training', description: 'allow --ctx above the context the model was trained for (quality degrades)',
      default: 'off', example: '--ctx 8192 --allow-context-beyond-training', api: 'allowContextBeyondTraining' },
];

/** The generation options of GENERATE_FLAGS (checked now, so a bad value fails before any work). */
export function generateOptionsFromFlags(v: Values): Omit<GenerateOptions, 'signal' | 'onLogits'> {
  const sampler = {
    temperature: numberFlag('temperature', v.temperature),
    topK: intFlag('top-k', v['top-k']),
    topP: numberFlag('top-p', v['top-p']),
    minP: numberFlag('min-p', v['min-p']),
    repeatPenalty: numberFlag('repeat-penalty', v['repeat-penalty']),
    repeatLastN: intFlag('repeat-last-n', v['repeat-last-n']),
    frequencyPenalty: numberFlag('frequency-penalty', v['frequency-penalty']),
    presencePenalty: numberFlag('presence-penalty', v['presence-penalty']),
  };
  resolveSamplerOptions(sampler);
  const maxTokens = checkInt('maxTokens', intFlag('max-tokens', v['max-tokens']), 0, 1 << 30, 256);
  return { ...sampler, maxTokens, stop: v.stop as string[] | undefined };
}

/** The session options of GENERATE_FLAGS. */
export function sessionOptionsFromFlags(v: Values): SessionOptions {
  return {
    contextSize: intFlag('ctx', v.ctx), seed: intFlag('seed', v.seed), kvCacheType: v['kv-type'] as 'f16' | 'f32' | undefined,
    allowContextBeyondTraining: v['allow-context-beyond-training'] === true ? true : undefined,
  };
}

/** The chat flags of `chat` and `run --chat`. */
export const CHAT_FLAGS: Flag[] = [
  { name: 'system', arg: 'TEXT', description: 'the system message', default: 'none', example: '"You are brief."' },
  { name: 'template', arg: 'NAME|FILE', description: 'chat template: a built-in name (chatml, llama3, phi3...), Jinja source or a file',
    default: 'the model\'s, else chatml', example: 'chatml', api: 'template' },
];

/** loadModel's options from MODEL_FLAGS. */
export function loadOptionsFromFlags(v: Values): LoadOptions {
  if (typeof v.plan === 'string') {
    const given = PLAN_REPLACES.filter((f) => v[f] !== undefined);
    if (given.length) throw badFlag('plan', `sets the budget and sparsity: give it or --${given[0]}, not both`);
    return { threads: intFlag('threads', v.threads), ...readPlan('--plan', v.plan) };
  }
  return {
    threads: intFlag('threads', v.threads),
    memoryBudget: bytesFlag('memory-budget', v['memory-budget']),
    sparsity: {
      method: v.method as SparseMethod | undefined,
      density: numberFlag('density', v.density),
      keepX: numberFlag('keep-x', v['keep-x']),
      keepH: numberFlag('keep-h', v['keep-h']),
      gamma: numberFlag('gamma', v.gamma),
      fixedTopN: intFlag('fixed-top-n', v['fixed-top-n']),
      readBlock: bytesFlag('read-block', v['read-block']),
      readCover: numberFlag('read-cover', v['read-cover']),
      thresholds: typeof v.thresholds === 'string' ? readableFlag('thresholds', v.thresholds) : undefined,
      attentionDensity: numberFlag('attn-density', v['attn-density']),
    },
    cache: { policy: v.policy as CachePolicy | undefined },
  };
}

/** The text file named by a required flag (ERR_IO when it cannot be read). */
export function readTextFlag(v: Values, name: string): string {
  const file = requiredFlag(v, name);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlashdipError('ERR_IO', `--${name}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A file the command will read later (the API reads it): ERR_IO now if it cannot be read. */
export function readableFlag(name: string, file: string): string {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    throw new FlashdipError('ERR_IO', `--${name}: cannot read ${file}: ${(err as Error).message}`);
  }
  return file;
}

/** An output file the command writes after its work: ERR_IO now, not after the work, if its folder
 * (or the file, when it exists) is not writable. */
export function writableFlag(name: string, file: string): string {
  try {
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
    if (fs.existsSync(file)) fs.accessSync(file, fs.constants.W_OK);
  } catch (err) {
    throw new FlashdipError('ERR_IO', `--${name}: cannot write ${file}: ${(err as Error).message}`);
  }
  return file;
}

/** Writes an output file named by a flag (ERR_IO when it cannot be written). */
export function writeFlagFile(name: string, file: string, data: string): void {
  try {
    fs.writeFileSync(file, data);
  } catch (err) {
    throw new FlashdipError('ERR_IO', `--${name}: cannot write ${file}: ${(err as Error).message}`);
  }
}
