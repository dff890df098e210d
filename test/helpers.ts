// Shared test helpers: where the fixture kit lives, and reading its reference files.
import * as fs from 'fs';
import * as path from 'path';
import { readGguf } from '../lib/gguf';
import { GgufValueType, GgufWriter, metadataEntries } from '../lib/gguf-writer';

// The fixture kit sits beside the repository (../shared/data); tests may also run compiled from a
// folder inside the repository (the arm64 run), so look upward for it.
function findShared(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, '..', 'shared', 'data');
    if (fs.existsSync(candidate)) return path.resolve(candidate);
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '../../shared/data');
  }
}
export const SHARED = findShared();
export const STORIES = path.join(SHARED, 'models/stories260K.gguf');
export const REFERENCE = path.join(SHARED, 'reference/stories260K');
export const TMP = path.resolve(__dirname, '../.tmp');

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

export interface PromptReference {
  id: string;
  prompt_text: string;
  prompt_tokens: number[];
  generated_tokens: number[];
  generated_text: string;
  first_logits: number[][];
  llamacpp_default_kv_f16: { generated_tokens: number[]; first_logits: number[][] };
}

export function promptReferences(): PromptReference[] {
  return fs
    .readdirSync(REFERENCE)
    .filter((f) => f.startsWith('prompt_'))
    .sort()
    .map((f) => readJson<PromptReference>(path.join(REFERENCE, f)));
}

export function tmpFile(name: string): string {
  fs.mkdirSync(TMP, { recursive: true });
  return path.join(TMP, `${process.pid}-${name}`);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface GgufEdit {
  /** Metadata to set (with its GGUF type) or, with null, to remove. */
  metadata?: Record<string, { type: GgufValueType; value: unknown } | null>;
  /** New dims for a tensor: its data is cut or zero-padded to the new size. */
  dims?: Record<string, number[]>;
  /** New type ids for tensors: their data is cut or zero-padded to the new size (or given in `data`). */
  types?: Record<string, number>;
  /** New data for tensors, of their (new) size. */
  data?: Record<string, Uint8Array>;
  /** Data alignment of the copy (default: the source's). */
  alignment?: number;
}

// Writes a copy of a GGUF with some metadata or tensor shapes changed: hostile variants of a real model
// that the reader accepts (the file is well formed) but whose numbers disagree.
export function rewriteGguf(src: string, out: string, edit: GgufEdit): string {
  const h = readGguf(src);
  const w = new GgufWriter(out, { alignment: edit.alignment ?? h.alignment });
  const fd = fs.openSync(src, 'r');
  try {
    const meta = edit.metadata ?? {};
    for (const e of metadataEntries(h, src, (k) => !(k in meta) && k !== 'general.alignment')) w.addKv(e.key, e.type, e.value, e.elem);
    for (const [k, v] of Object.entries(meta)) if (v) w.addKv(k, v.type, v.value);
    const data = h.tensors.map((t) => {
      const dims = edit.dims?.[t.name] ?? t.dims;
      const bytes = Buffer.alloc(w.addTensor(t.name, dims, edit.types?.[t.name] ?? t.type).byteLength);
      const given = edit.data?.[t.name];
      if (given) bytes.set(given);
      else fs.readSync(fd, bytes, 0, Math.min(bytes.length, t.bytes), h.dataOffset + t.offset);
      return { name: t.name, bytes };
    });
    w.writeHeader();
    for (const d of data) w.writeTensorData(d.name, d.bytes);
    w.close();
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** The text and token ids of a generation (pieces with token -1 carry text only). */
export async function collect(it: AsyncIterable<{ text: string; token: number }>): Promise<{ text: string; tokens: number[] }> {
  let text = '';
  const tokens: number[] = [];
  for await (const p of it) {
    text += p.text;
    if (p.token >= 0) tokens.push(p.token);
  }
  return { text, tokens };
}

/**
 * The scratch buffers one session of `file` counts in a memoryBudget (besides its KV cache), as the
 * engine reports it (model.memory()): tests whose budgets leave the MLP cache a given share add it.
 */
export async function sessionScratch(file: string, contextSize: number): Promise<number> {
  const { loadModel } = await import('../lib');
  const m = await loadModel(file, { memoryBudget: 1e12 });
  try {
    m.createSession({ contextSize });
    return m.memory().budget!.scratch;
  } finally {
    await m.dispose();
  }
}
