// The tokenizer: llama.cpp-exact SentencePiece and byte-level BPE from GGUF metadata, in TypeScript.
export { Tokenizer, StreamDecoder } from './tokenizer';
export type { TextSegment, EncodeOptions, DecodeOptions, PieceOptions, StreamDecoderOptions } from './tokenizer';
export { tokenizerSpecFromMetadata, TokenType } from './spec';
export type { TokenizerSpec } from './spec';
export { knownPreTokenizers } from './pretokenize';
