'use strict';
// Tests are numbered by layer so a lower layer fails first: gguf, kernels, tokenizer, model, api, cli.
module.exports = {
  require: ['ts-node/register/transpile-only'],
  extension: ['ts'],
  spec: ['test/**/*.test.ts'],
  timeout: 60000,
  recursive: true,
};
