// Where the tokenizer fixtures live and how to read them. The data is read in place from the shared
// kit beside the repository (never copied into it).
import * as fs from 'fs';
import * as path from 'path';
import { readGgufMetadata } from '../../lib/gguf';
import { Tokenizer, tokenizerSpecFromMetadata } from '../../lib/tokenizer';

export const SHARED = path.resolve(__dirname, '../../../shared/data');
export const TOKENIZER_DATA = path.join(SHARED, 'tokenizer');
export const STORIES = path.join(SHARED, 'models/stories260K.gguf');
export const REFERENCE = path.join(SHARED, 'reference/stories260K');

export interface OracleCase {
  text: string;
  ids: number[];
  ids_parse_special: number[];
  detok: string;
}

export interface Oracle {
  vocab_file: string;
  tokenizer_model: string;
  tokenizer_pre: string | null;
  n_vocab: number;
  bos: number | null;
  eos: number | null;
  eot: number | null;
  add_eos_token: boolean | null;
  should_prepend_bos: boolean;
  cases: OracleCase[];
}

export interface Vocab {
  name: string; // e.g. "ggml-vocab-gpt-2" or "stories260K"
  gguf: string;
  oracle: Oracle;
  /** Upstream test-tokenizer-0 vectors (.inp/.out), if the vocab has them. */
  upstream?: { text: string; ids: number[] }[];
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function upstreamVectors(gguf: string): { text: string; ids: number[] }[] | undefined {
  if (!fs.existsSync(`${gguf}.inp`)) return undefined;
  const texts = fs.readFileSync(`${gguf}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  texts.pop(); // the file ends with the separator
  const lines = fs.readFileSync(`${gguf}.out`, 'utf8').split('\n');
  return texts.map((text, i) => {
    const line = lines[i].trim();
    return { text, ids: line === '' ? [] : line.split(/\s+/).map(Number) };
  });
}

export function vocabs(): Vocab[] {
  const dir = path.join(TOKENIZER_DATA, 'vocab');
  const out: Vocab[] = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.gguf'))
    .sort()
    .map((f) => {
      const name = f.replace(/\.gguf$/, '');
      const gguf = path.join(dir, f);
      return { name, gguf, oracle: readJson<Oracle>(path.join(TOKENIZER_DATA, 'oracle', `${name}.json`)), upstream: upstreamVectors(gguf) };
    });
  out.push({ name: 'stories260K', gguf: STORIES, oracle: readJson<Oracle>(path.join(TOKENIZER_DATA, 'oracle', 'stories260K.json')) });
  return out;
}

const cache = new Map<string, Tokenizer>();
export function tokenizerFor(gguf: string): Tokenizer {
  let t = cache.get(gguf);
  if (!t) {
    t = new Tokenizer(tokenizerSpecFromMetadata(readGgufMetadata(gguf)));
    cache.set(gguf, t);
  }
  return t;
}

export function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
