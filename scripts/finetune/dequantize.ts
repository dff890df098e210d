// Reads one tensor of a GGUF file as float32 (dequantized by the native kernels), for export.ts dump.
import * as fs from 'fs';
import { FlashdipError } from '../../lib/errors';
import { GgufHeader } from '../../lib/binding';
import { dequantizeRow } from '../../lib/kernels';

export function dequantizeTensor(file: string, header: GgufHeader, name: string): Float32Array {
  const t = header.tensors.find((x) => x.name === name);
  if (!t) throw new FlashdipError('ERR_MODEL_INVALID', `${file}: no tensor ${name}`);
  const buf = new Uint8Array(t.bytes);
  const fd = fs.openSync(file, 'r');
  try {
    let done = 0;
    while (done < t.bytes) {
      const n = fs.readSync(fd, buf, done, t.bytes - done, header.dataOffset + t.offset + done);
      if (n <= 0) throw new FlashdipError('ERR_GGUF_TRUNCATED', `${file}: tensor ${name} ends early`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return dequantizeRow(t.type, buf, t.dims.reduce((a, b) => a * b, 1));
}
