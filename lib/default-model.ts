// The embedded demo model: a small llama-arch model the project trained itself (scripts/finetune/recipe.py
// train, README "The embedded demo model"), shipped in the package in the DIP layout. Every command that
// takes --model, and loadModel() without a path, use it when no model is given.
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError } from './errors';

/** Where the package keeps the demo model (models/ beside lib/ and dist/). */
export const DEFAULT_MODEL = path.resolve(__dirname, '..', 'models', 'flashdip-demo.dip.gguf');

/** The demo model's path; ERR_INVALID_ARGUMENT naming what to do if the file is missing. */
export function defaultModel(): string {
  if (!fs.existsSync(DEFAULT_MODEL))
    throw new FlashdipError('ERR_INVALID_ARGUMENT', `no model given and the embedded demo model ${DEFAULT_MODEL} is missing; give a GGUF file with --model`);
  return DEFAULT_MODEL;
}
