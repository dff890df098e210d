// LoRA adapters: llama.cpp's GGUF adapter files, loaded for one model and applied by sessions.
import { FlashdipError } from './errors';
import { checkKeys, checkNumber, checkObject } from './options';

/** @internal the native adapter: an opaque handle and what loading it found. */
export interface NativeLora {
  handle: unknown;
  bytes: number;
  tensors: number;
  alpha: number;
}

/** An adapter and the scale a session applies it with (default: the adapter's own scale). */
export interface LoraSpec {
  adapter: LoraAdapter;
  scale?: number;
}

/** A scale: finite and >= 0 (0 turns the adapter off). */
export function checkLoraScale(name: string, value: unknown, def: number): number {
  return checkNumber(name, value, 0, Number.MAX_VALUE, def);
}

export class LoraAdapter {
  readonly path: string;
  /** The scale sessions apply it with unless they give their own. */
  readonly scale: number;
  /** DRAM the adapter holds (its matrices, dequantized to f32); counted in the memory budget. */
  readonly bytes: number;
  /** Tensors in the file (a lora_a and a lora_b per adapted matrix). */
  readonly tensors: number;
  /** adapter.lora.alpha (0 when absent: the scale applies alone, as in llama.cpp). */
  readonly alpha: number;
  /** @internal the model it was loaded for */
  readonly owner: object;
  private native: NativeLora | undefined;
  private readonly onDispose: () => void;

  /** @internal use model.loadLora() */
  constructor(owner: object, path: string, scale: number, native: NativeLora, onDispose: () => void) {
    this.owner = owner;
    this.path = path;
    this.scale = scale;
    this.native = native;
    this.bytes = native.bytes;
    this.tensors = native.tensors;
    this.alpha = native.alpha;
    this.onDispose = onDispose;
  }

  get disposed(): boolean {
    return this.native === undefined;
  }

  /**
   * Drops this handle. Sessions applying the adapter keep its memory until they stop applying it
   * (setLoras) or are disposed; new sessions cannot use it. Idempotent.
   */
  dispose(): void {
    if (!this.native) return;
    this.native = undefined;
    this.onDispose();
  }

  /** @internal */
  handle(): unknown {
    if (!this.native) throw new FlashdipError('ERR_DISPOSED', `the LoRA adapter ${this.path} has been disposed`);
    return this.native.handle;
  }
}

/** @internal checks a loras option against the session's model: [{ handle, scale }] for the native context. */
export function resolveLoras(name: string, value: unknown, owner: object): { specs: { handle: unknown; scale: number }[]; adapters: LoraAdapter[] } {
  if (value === undefined) return { specs: [], adapters: [] };
  if (!Array.isArray(value)) throw new FlashdipError('ERR_INVALID_ARGUMENT', `${name}: must be an array of { adapter, scale }`);
  const specs: { handle: unknown; scale: number }[] = [];
  const adapters: LoraAdapter[] = [];
  value.forEach((v, i) => {
    const o = checkObject(`${name}[${i}]`, v);
    checkKeys(`${name}[${i}]`, o, ['adapter', 'scale']);
    const a = o.adapter;
    if (!(a instanceof LoraAdapter)) throw new FlashdipError('ERR_INVALID_ARGUMENT', `${name}[${i}].adapter: must be a LoraAdapter from model.loadLora()`);
    if (a.owner !== owner) throw new FlashdipError('ERR_INVALID_ARGUMENT', `${name}[${i}].adapter: was loaded for another model`);
    specs.push({ handle: a.handle(), scale: checkLoraScale(`${name}[${i}].scale`, o.scale, a.scale) });
    adapters.push(a);
  });
  return { specs, adapters };
}
