import { readGgufAsync } from '../gguf';
import { splitBytes } from '../sparsity';
import type { Command } from './command';
import { DEFAULT_MODEL_HELP, modelFlag } from './flags';

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 2 : 0)} ${units[i]}`;
}

function summarize(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (ArrayBuffer.isView(value) || Array.isArray(value)) {
    const arr = Array.from(value as ArrayLike<unknown>, summarize);
    return arr.length > 8 ? { length: arr.length, first: arr.slice(0, 8) } : arr;
  }
  return value;
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show a GGUF file: metadata, tensors, static vs MLP bytes',
  positionals: '[MODEL]',
  flags: [
    { name: 'model', short: 'm', arg: 'FILE', description: 'the GGUF file (or give it as the argument)', default: DEFAULT_MODEL_HELP, example: 'model.gguf' },
  ],
  examples: ['flashdip inspect model.gguf', 'flashdip inspect --model model.dip.gguf --json'],
  async run(v, positionals, io) {
    const file = modelFlag(v, positionals[0]);
    const h = await readGgufAsync(file);
    // MLP weights are what DIP prunes and streams; everything else is static (kept in DRAM), but for
    // the embedding table of a converted untied model (read a row per token under a budget).
    const { mlp, attn, static: stat, streamed } = splitBytes(h);
    const total = mlp + attn + stat + streamed;
    const metadata: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(h.metadata)) metadata[k] = summarize(val);
    const bytes = { total, mlp, attn, static: stat, streamed, mlpFraction: total ? mlp / total : 0 };
    if (io.json) {
      io.out(JSON.stringify({ path: file, version: h.version, alignment: h.alignment, fileSize: h.fileSize,
        metadata, tensors: h.tensors, bytes }) + '\n');
      return 0;
    }
    const lines = [`${file}: GGUF v${h.version}, ${formatBytes(h.fileSize)}, alignment ${h.alignment}`, '', 'metadata:'];
    for (const [k, val] of Object.entries(metadata)) lines.push(`  ${k} (${h.metadataTypes[k]}) = ${JSON.stringify(val)}`);
    lines.push('', `tensors (${h.tensors.length}):`);
    const w = Math.max(4, ...h.tensors.map((t) => t.name.length));
    for (const t of h.tensors)
      lines.push(`  ${t.name.padEnd(w)}  ${t.typeName.padEnd(6)}  [${t.dims.join(', ')}]  ${formatBytes(t.bytes)}`);
    const embd = streamed ? `, token embedding read per token ${formatBytes(streamed)}` : '';
    const att = attn ? `, attention rows ${formatBytes(attn)}` : '';
    lines.push('', `bytes: total ${formatBytes(total)}, static ${formatBytes(stat)}, MLP ${formatBytes(mlp)} (${(100 * bytes.mlpFraction).toFixed(1)}%)${att}${embd}`);
    io.out(lines.join('\n') + '\n');
    return 0;
  },
};
