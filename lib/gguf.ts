// GGUF headers, read and validated by the native reader (tensor data never crosses into JS).
import { getBinding, GgufHeader } from './binding';
import { fromNative } from './errors';

export type { GgufHeader, GgufTensorInfo } from './binding';

// A FIFO, a device or a directory is refused (ERR_IO) before anything could block on it.
export function readGguf(path: string): GgufHeader {
  try {
    return getBinding().readGguf(path);
  } catch (err) {
    throw fromNative(err);
  }
}

/** readGguf with the open, mapping and validation off the JS thread (loadModel uses it). */
export async function readGgufAsync(path: string): Promise<GgufHeader> {
  const callSite = new Error();
  try {
    return await getBinding().readGgufAsync(path);
  } catch (err) {
    throw fromNative(err, callSite);
  }
}

// The metadata key/values of a GGUF file: strings, numbers (u64 beyond 2^53 as bigint), booleans,
// string[] for string arrays, Float32Array / Int32Array for f32 / i32 arrays, number[] otherwise.
export function readGgufMetadata(path: string): Record<string, unknown> {
  return readGguf(path).metadata;
}
