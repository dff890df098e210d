"""The file format between the recipe's Python and TypeScript steps (scripts/finetune/export.ts).

A tensor set is a directory with `tensors.json` and `tensors.bin`:
  tensors.json: {"config": {...}, "tensors": [{"name": ..., "dims": [ne0, ne1], "offset": N}, ...], ...}
  tensors.bin:  the tensors' values as little-endian float32, each at float index `offset`, ne0 varying
                fastest (GGUF / ggml order: a matrix of dims [n_in, n_out] is n_out rows of n_in).
A token file is little-endian int32 (tokens.i32).
"""

import json
import os

import numpy as np


def read_tensors(d):
    with open(os.path.join(d, 'tensors.json')) as f:
        meta = json.load(f)
    data = np.fromfile(os.path.join(d, 'tensors.bin'), dtype='<f4')
    out = {}
    for t in meta['tensors']:
        n = 1
        for x in t['dims']:
            n *= x
        a = data[t['offset']:t['offset'] + n]
        if len(a) != n:
            raise ValueError('%s: tensors.bin is truncated at %s' % (d, t['name']))
        out[t['name']] = a.reshape(list(reversed(t['dims']))).copy()
    return meta, out


def write_tensors(d, meta, tensors):
    """tensors: list of (name, numpy array in row-major torch layout [.., ne1, ne0])."""
    os.makedirs(d, exist_ok=True)
    entries = []
    offset = 0
    tmp_bin = os.path.join(d, 'tensors.bin.tmp')
    with open(tmp_bin, 'wb') as f:
        for name, a in tensors:
            a = np.ascontiguousarray(a, dtype='<f4')
            entries.append({'name': name, 'dims': list(reversed(a.shape)), 'offset': offset})
            f.write(a.tobytes())
            offset += a.size
    m = dict(meta)
    m['tensors'] = entries
    tmp_json = os.path.join(d, 'tensors.json.tmp')
    with open(tmp_json, 'w') as f:
        json.dump(m, f, indent=1)
    # Renames last, so a reader never sees a half-written set (a checkpoint may be read while training).
    os.replace(tmp_bin, os.path.join(d, 'tensors.bin'))
    os.replace(tmp_json, os.path.join(d, 'tensors.json'))


def read_tokens(path):
    return np.fromfile(path, dtype='<i4')
