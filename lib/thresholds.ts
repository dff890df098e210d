// The calibrated-threshold variant of the pruning methods (PAPER.md; what TEAL does): instead of a
// fixed top-k per token, keep the columns whose score magnitude reaches a per-layer threshold, the
// percentile of the scores measured on a calibration text that keeps the target fraction.
//
// A threshold table (what `flashdip calibrate` writes, as JSON):
//   { "format": "flashdip-thresholds", "version": 1,
//     "model": { "arch", "layers", "dim", "ffn", "name" },     // a table for another shape is refused
//     "method": "dip" | "glu" | "gate" | "up",
//     "density": rho, "keepX": ..., "keepH": ...,             // the targets (resolveSparsity's split)
//     "calibration": { "tokens", "ctx", "mode", "text" },      // how it was measured (informative)
//     "thresholds": { "x": [per layer] (dip only), "h": [per layer],
//                     "attnIn": [per layer], "attnOut": [per layer] },  // with attention DIP only
//     "attentionDensity": r }                                 // its target, with attnIn/attnOut
// Rule (native SparsityConfig): a token keeps column i of a mask when |score_i| >= the layer's
// threshold (NaN scores count as 0); a threshold of 0 keeps everything (exactly dense). A 'dip' table
// also serves dip-ca: there the threshold sets how many columns a token keeps and the cache-aware
// top-k picks which ones.
import * as fs from 'fs';
import { abortedError, FlashdipError, invalidArgument } from './errors';
import type { Model } from './model';
import { checkEnum, checkInt, checkKeys, checkObject, checkProgress, checkSignal } from './options';
import { resolveSparsity, SparseMethod } from './sparsity';

export type CalibratedMethod = 'dip' | 'glu' | 'gate' | 'up';
export const CALIBRATED_METHODS: readonly CalibratedMethod[] = ['dip', 'glu', 'gate', 'up'];
export const THRESHOLDS_FORMAT = 'flashdip-thresholds';
export const THRESHOLDS_VERSION = 1;

export interface ModelShape {
  arch: string;
  layers: number;
  dim: number;
  ffn: number;
  /** general.name, for people; not compared. */
  name?: string;
}

export interface ThresholdTable {
  format: typeof THRESHOLDS_FORMAT;
  version: typeof THRESHOLDS_VERSION;
  model: ModelShape;
  method: CalibratedMethod;
  /** Target MLP density rho, and the fractions of x and h the thresholds aim to keep. */
  density: number;
  keepX: number;
  keepH: number;
  calibration?: { tokens: number; ctx: number; mode: CalibrationMode; text?: string };
  /** Per layer: x-mask thresholds (dip only) and h-mask thresholds; with attention DIP, those of the
   * q/k/v input mask and of W_o's input mask. */
  thresholds: { x?: number[]; h: number[]; attnIn?: number[]; attnOut?: number[] };
  /** The attention density the attention thresholds aim at (present with them). */
  attentionDensity?: number;
}

/**
 * How the scores are measured: 'dense' runs the model dense; 'masked' runs it with the top-k masks
 * of the target fractions applied (the scores a mask ranks are still taken before that mask), so
 * every mask sees the inputs the pruned model gives it.
 */
export type CalibrationMode = 'dense' | 'masked';

// ---------------------------------------------------------------------------------------------
// Reading and checking tables

/** A table given as an object or a JSON file name, checked; errors name `name`. */
export function readThresholds(name: string, value: unknown): ThresholdTable {
  if (typeof value === 'string') {
    let text: string;
    try {
      text = fs.readFileSync(value, 'utf8');
    } catch (err) {
      throw invalidArgument(name, `cannot read ${value}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw invalidArgument(name, `${value} is not valid JSON: ${(err as Error).message}`);
    }
    return checkThresholds(`${name} (${value})`, parsed);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalidArgument(name, 'must be a threshold table (an object) or the name of its JSON file');
  return checkThresholds(name, value);
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalidArgument(name, `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function fraction(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1) throw invalidArgument(name, `must be in (0, 1], got ${JSON.stringify(v)}`);
  return v;
}

function thresholdList(name: string, v: unknown, layers: number): number[] {
  if (!Array.isArray(v)) throw invalidArgument(name, 'must be an array with one threshold per layer');
  if (v.length !== layers) throw invalidArgument(name, `has ${v.length} thresholds, the model of the table ${layers} layers`);
  for (const t of v)
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 3.4028234663852886e38)
      throw invalidArgument(name, `thresholds must be finite float32 numbers >= 0, got ${JSON.stringify(t)}`);
  return [...(v as number[])];
}

/** Checks a parsed table; returns a copy with only the known fields. */
export function checkThresholds(name: string, value: unknown): ThresholdTable {
  const o = checkObject(name, value);
  if (o.format !== THRESHOLDS_FORMAT) throw invalidArgument(name, `not a threshold table (format is ${JSON.stringify(o.format)}, expected "${THRESHOLDS_FORMAT}")`);
  if (o.version !== THRESHOLDS_VERSION) throw invalidArgument(name, `unsupported version ${JSON.stringify(o.version)} (this flashdip reads version ${THRESHOLDS_VERSION})`);
  const m = checkObject(`${name}: model`, o.model);
  if (typeof m.arch !== 'string' || m.arch === '') throw invalidArgument(`${name}: model.arch`, 'must be a non-empty string');
  const model: ModelShape = {
    arch: m.arch,
    layers: positiveInt(`${name}: model.layers`, m.layers),
    dim: positiveInt(`${name}: model.dim`, m.dim),
    ffn: positiveInt(`${name}: model.ffn`, m.ffn),
    ...(typeof m.name === 'string' ? { name: m.name } : {}),
  };
  const method = checkEnum(`${name}: method`, o.method, CALIBRATED_METHODS, 'dip');
  if (o.method === undefined) throw invalidArgument(`${name}: method`, 'is required');
  const t = checkObject(`${name}: thresholds`, o.thresholds);
  const table: ThresholdTable = {
    format: THRESHOLDS_FORMAT,
    version: THRESHOLDS_VERSION,
    model,
    method,
    density: fraction(`${name}: density`, o.density),
    keepX: fraction(`${name}: keepX`, o.keepX),
    keepH: fraction(`${name}: keepH`, o.keepH),
    thresholds: { h: thresholdList(`${name}: thresholds.h`, t.h, model.layers) },
  };
  if (method === 'dip') table.thresholds.x = thresholdList(`${name}: thresholds.x`, t.x, model.layers);
  else if (t.x !== undefined) throw invalidArgument(`${name}: thresholds.x`, `the '${method}' method does not prune x`);
  if (o.attentionDensity !== undefined || t.attnIn !== undefined || t.attnOut !== undefined) {
    table.attentionDensity = fraction(`${name}: attentionDensity`, o.attentionDensity);
    table.thresholds.attnIn = thresholdList(`${name}: thresholds.attnIn`, t.attnIn, model.layers);
    table.thresholds.attnOut = thresholdList(`${name}: thresholds.attnOut`, t.attnOut, model.layers);
  }
  if (method !== 'dip' && table.keepX !== 1) throw invalidArgument(`${name}: keepX`, `the '${method}' method does not prune x (keepX must be 1)`);
  if (o.calibration !== undefined) {
    const c = checkObject(`${name}: calibration`, o.calibration);
    table.calibration = {
      tokens: positiveInt(`${name}: calibration.tokens`, c.tokens),
      ctx: positiveInt(`${name}: calibration.ctx`, c.ctx),
      mode: checkEnum(`${name}: calibration.mode`, c.mode, ['dense', 'masked'] as const, 'dense'),
      ...(typeof c.text === 'string' ? { text: c.text } : {}),
    };
  }
  return table;
}

/** Refuses a table calibrated on a model of another shape. */
export function checkTableShape(name: string, table: ThresholdTable, info: { arch: string; layers: number; dim: number; ffn: number }): void {
  const a = table.model;
  if (a.arch !== info.arch || a.layers !== info.layers || a.dim !== info.dim || a.ffn !== info.ffn)
    throw invalidArgument(
      name,
      `calibrated for a ${a.arch} model with ${a.layers} layers, dim ${a.dim}, ffn ${a.ffn}; this model is ${info.arch} ` +
        `with ${info.layers} layers, dim ${info.dim}, ffn ${info.ffn}`,
    );
}

/** The methods a table serves: a 'dip' table serves dip and dip-ca; the others only themselves. */
export function tableServes(table: ThresholdTable, method: SparseMethod): boolean {
  return method === table.method || (table.method === 'dip' && method === 'dip-ca');
}

// ---------------------------------------------------------------------------------------------
// Thresholds from score histograms

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function floatOfBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}
const MAX_F32 = 3.4028234663852886e38;

/**
 * The threshold t that keeps the fraction `keep` of the scores counted in `hist` (bins of the float
 * bits of |score| >> shift; see the native kScoreHistBins): walking down from the largest bin to the
 * one where the kept count reaches keep * total, then linearly inside that bin (its scores taken as
 * spread evenly over its value range). keep >= 1 gives 0 (everything, exactly dense). The result is
 * a float32 value, so a table stores exactly what is compared.
 */
export function thresholdForFraction(hist: ArrayLike<number>, shift: number, keep: number): number {
  if (keep >= 1) return 0;
  let total = 0;
  for (let b = 0; b < hist.length; b++) total += hist[b];
  if (total === 0) throw new FlashdipError('ERR_INVALID_ARGUMENT', 'no scores were measured (empty calibration text?)');
  const want = keep * total;
  let above = 0;
  for (let b = hist.length - 1; b >= 0; b--) {
    const c = hist[b];
    if (c > 0 && above + c >= want) {
      const lo = floatOfBits(b * 2 ** shift);
      if (!Number.isFinite(lo)) return MAX_F32;
      const hiBits = (b + 1) * 2 ** shift;
      const hi = Math.min(floatOfBits(hiBits >= 0x7f800000 ? 0x7f7fffff : hiBits), MAX_F32);
      const t = Math.fround(hi - ((want - above) / c) * (hi - lo));
      return Math.max(lo, Math.min(t, hi));
    }
    above += c;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Calibration

export interface CalibrateOptions {
  /** 'dip' (default; its table serves dip-ca too), 'glu', 'gate' or 'up'. */
  method?: CalibratedMethod;
  /** Target MLP density rho (default 0.5), split like top-k's (resolveSparsity); or keepX/keepH (dip). */
  density?: number;
  keepX?: number;
  keepH?: number;
  /** Also calibrate attention DIP's two masks for this attention density (default: none). */
  attentionDensity?: number;
  /** Use at most this many tokens of the text (default 8192). */
  tokens?: number;
  /** Tokens per window, BOS included (default 512): windows as `ppl` makes them. */
  ctx?: number;
  /** 'masked' (default) or 'dense' (see CalibrationMode). */
  mode?: CalibrationMode;
  /** A label of the text, stored in the table. */
  textName?: string;
  /** Checked before each window: when aborted, calibrate throws ERR_ABORTED with no partial table
   * (thresholds from part of the text are not what was asked for). */
  signal?: AbortSignal;
  /** Called after each window with the tokens evaluated so far and the tokens to evaluate. */
  onProgress?: (done: number, total: number) => void;
}

const CALIBRATE_KEYS = ['method', 'density', 'keepX', 'keepH', 'attentionDensity', 'tokens', 'ctx', 'mode', 'textName', 'signal', 'onProgress'] as const;

/**
 * Measures the score distribution of every layer's masks on `text` and derives the per-layer
 * thresholds that keep the target fractions. The text is evaluated as `ppl` does: windows of
 * [BOS] + ctx-1 tokens, each from an empty KV cache.
 */
export async function calibrate(model: Model, text: string, options: CalibrateOptions = {}): Promise<ThresholdTable> {
  const o = checkObject('options', options);
  checkKeys('options', o, CALIBRATE_KEYS);
  const method = checkEnum('method', o.method, CALIBRATED_METHODS, 'dip');
  const mode = checkEnum('mode', o.mode, ['dense', 'masked'] as const, 'masked');
  const maxTokens = checkInt('tokens', o.tokens, 1, Number.MAX_SAFE_INTEGER, 8192);
  const ctx = checkInt('ctx', o.ctx, 2, 1 << 20, 512);
  const signal = checkSignal('signal', o.signal);
  const onProgress = checkProgress('onProgress', o.onProgress);
  if (o.textName !== undefined && typeof o.textName !== 'string') throw invalidArgument('textName', 'must be a string');
  if (typeof text !== 'string') throw invalidArgument('text', 'must be a string');
  // The targets, exactly as top-k would split them.
  const target = resolveSparsity({ method, density: o.density, keepX: o.keepX, keepH: o.keepH, attentionDensity: o.attentionDensity }, undefined);
  const attention = o.attentionDensity !== undefined;
  const density = method === 'dip' ? (2 * target.keepX + target.keepH) / 3 : target.keepH;
  const bos = model.tokenizer.bosId;
  if (bos === null) throw invalidArgument('model', 'has no BOS token to start each window with');
  const tokens = model.tokenize(text).slice(0, maxTokens);
  if (tokens.length === 0) throw invalidArgument('text', 'no tokens to calibrate on');

  const attn = attention && mode === 'masked' ? { attentionDensity: target.keepAttn } : {};
  const sparsity = mode === 'dense' ? { method, density: 1 }
    : method === 'dip' ? { method, keepX: target.keepX, keepH: target.keepH, ...attn } : { method, keepH: target.keepH, ...attn };
  const session = model.createSession({ contextSize: ctx, kvCacheType: 'f32', sparsity, histograms: attention ? 'attention' : true });
  let hist;
  try {
    for (let s = 0; s < tokens.length; s += ctx - 1) {
      if (signal?.aborted) throw abortedError('calibrate', signal);
      session.reset();
      await session.evaluate([bos, ...tokens.slice(s, s + ctx - 1)]);
      onProgress?.(Math.min(tokens.length, s + ctx - 1), tokens.length);
    }
    hist = session.histograms();
  } finally {
    await session.dispose();
  }
  const info = model.info;
  const table: ThresholdTable = {
    format: THRESHOLDS_FORMAT,
    version: THRESHOLDS_VERSION,
    model: { arch: info.arch, layers: info.layers, dim: info.dim, ffn: info.ffn, ...(info.name ? { name: info.name } : {}) },
    method,
    density,
    keepX: target.keepX,
    keepH: target.keepH,
    calibration: { tokens: tokens.length, ctx, mode, ...(o.textName !== undefined ? { text: o.textName as string } : {}) },
    thresholds: { h: hist.h.map((h) => thresholdForFraction(h, hist.shift, target.keepH)) },
  };
  if (method === 'dip') table.thresholds.x = hist.x.map((h) => thresholdForFraction(h, hist.shift, target.keepX));
  if (attention) {
    table.attentionDensity = target.keepAttn;
    table.thresholds.attnIn = hist.attnIn!.map((h) => thresholdForFraction(h, hist.shift, target.keepAttn));
    table.thresholds.attnOut = hist.attnOut!.map((h) => thresholdForFraction(h, hist.shift, target.keepAttn));
  }
  return table;
}

/** Writes a table as JSON (ERR_IO when the file cannot be written). */
export function writeThresholds(file: string, table: ThresholdTable): void {
  try {
    fs.writeFileSync(file, JSON.stringify(table, null, 2) + '\n');
  } catch (err) {
    throw new FlashdipError('ERR_IO', `cannot write ${file}: ${(err as Error).message}`);
  }
}
