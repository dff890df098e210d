// flashdip: GGUF Llama-family inference for memory-starved devices.
export { loadModel, Model } from './model';
export type { LoadOptions, ModelInfo } from './model';
export { Session } from './session';
export type { SessionOptions, GenerateOptions, Piece, SessionStats } from './session';
export { FlashdipError } from './errors';
export type { ErrorCode } from './errors';
export { readGguf, readGgufMetadata } from './gguf';
export { perplexity } from './perplexity';
export type { PerplexityOptions, PerplexityResult } from './perplexity';
export { simulate, recordRun, DEVICES } from './simulate';
export type { DeviceProfile, RunTrace, SimulationResult } from './simulate';
export { calibrate, readThresholds, writeThresholds } from './thresholds';
export type { CalibrateOptions, CalibratedMethod, CalibrationMode, ThresholdTable } from './thresholds';
export type { SparsityOptions, CacheOptions, SparseMethod } from './sparsity';
export { Tokenizer } from './tokenizer';
export * as kernels from './kernels';
export { renderChatTemplate, BUILTIN_CHAT_TEMPLATES } from './chat-template';
export type { ChatMessage, RenderChatTemplateOptions } from './chat-template';
