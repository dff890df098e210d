// Chat templates: the Jinja template of a GGUF file (tokenizer.chat_template) rendered with
// @huggingface/jinja under the Hugging Face conventions, a built-in set for files without one, and
// llama.cpp's rule for templates that have no system role.
import * as fs from 'fs';
import { Environment, Interpreter, parse, tokenize } from '@huggingface/jinja';
import { FlashdipError, invalidArgument } from './errors';
import { checkKeys, checkObject } from './options';

/**
 * A message as a template reads it: a role, a content (a string; templates also take null for a tool
 * call, or a list of typed parts) and any further fields (name, tool_calls...).
 */
export interface TemplateMessage {
  role: string;
  content?: unknown;
  [field: string]: unknown;
}

/** One message of a conversation (what the model's chat methods take). */
export interface ChatMessage extends TemplateMessage {
  content: string;
}

export interface RenderChatTemplateOptions {
  messages: readonly TemplateMessage[];
  /** Passed to the template as bos_token / eos_token; left undefined, the variable is not set. */
  bosToken?: string;
  eosToken?: string;
  /** add_generation_prompt: end with the header of an assistant reply. Default false (as Hugging Face). */
  addGenerationPrompt?: boolean;
  /** Tool definitions (JSON schemas), for templates that take `tools`. */
  tools?: readonly unknown[];
  /** The time strftime_now() reads; default the current time. Formatted in local time, as Python does. */
  now?: Date;
  /**
   * llama.cpp's rule for templates that do not render a system message: the system messages are
   * folded into the next user message as `system + "\n" + user`. Default false (Hugging Face
   * renders what it is given); the model's chat methods turn it on.
   */
  foldSystem?: boolean;
  /** Further template variables (e.g. enable_thinking); they cannot replace the ones above. */
  variables?: Record<string, unknown>;
}

const RENDER_KEYS = ['messages', 'bosToken', 'eosToken', 'addGenerationPrompt', 'tools', 'now', 'foldSystem', 'variables'] as const;

/**
 * Renders a Jinja chat template as transformers' apply_chat_template does (trim_blocks, lstrip_blocks,
 * the template's trailing newline dropped, raise_exception, tojson as Python's json.dumps, strftime_now).
 * A template error (syntax, raise_exception, a bad operation) is a FlashdipError with code ERR_TEMPLATE.
 */
export function renderChatTemplate(template: string, options: RenderChatTemplateOptions): string {
  if (typeof template !== 'string') throw invalidArgument('template', 'must be a string (Jinja source)');
  const o = checkRenderOptions(options);
  const entry = compile(template);
  const messages = o.foldSystem ? folded(entry, o) : o.messages;
  return run(entry.program, { ...o, messages });
}

/** @internal the messages as renderChatTemplate with foldSystem renders them. */
export function foldedMessages(template: string, options: RenderChatTemplateOptions): TemplateMessage[] {
  const o = checkRenderOptions(options);
  return folded(compile(template), o);
}

function folded(entry: Compiled, o: Checked): TemplateMessage[] {
  entry.rendersSystem ??= rendersSystem(entry.program, o);
  return entry.rendersSystem ? [...o.messages] : foldSystemMessages(o.messages);
}

type Program = ReturnType<typeof parse>;
type Checked = Required<Pick<RenderChatTemplateOptions, 'messages' | 'addGenerationPrompt' | 'now' | 'foldSystem'>> &
  Pick<RenderChatTemplateOptions, 'bosToken' | 'eosToken' | 'tools' | 'variables'>;

function checkRenderOptions(options: RenderChatTemplateOptions): Checked {
  const o = checkObject('options', options);
  checkKeys('options', o, RENDER_KEYS);
  const messages = checkMessages('messages', o.messages, false);
  for (const k of ['bosToken', 'eosToken'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'string') throw invalidArgument(k, 'must be a string');
  for (const k of ['addGenerationPrompt', 'foldSystem'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalidArgument(k, 'must be a boolean');
  if (o.tools !== undefined && !Array.isArray(o.tools)) throw invalidArgument('tools', 'must be an array');
  if (o.now !== undefined && !(o.now instanceof Date && Number.isFinite(o.now.getTime()))) throw invalidArgument('now', 'must be a valid Date');
  const variables = checkObject('variables', o.variables);
  for (const k of Object.keys(variables))
    if (['messages', 'bos_token', 'eos_token', 'add_generation_prompt', 'tools', 'raise_exception', 'strftime_now'].includes(k))
      throw invalidArgument('variables', `'${k}' is set from the other options`);
  return {
    messages,
    bosToken: o.bosToken as string | undefined,
    eosToken: o.eosToken as string | undefined,
    addGenerationPrompt: o.addGenerationPrompt === true,
    tools: o.tools as unknown[] | undefined,
    now: (o.now as Date | undefined) ?? new Date(),
    foldSystem: o.foldSystem === true,
    variables,
  };
}

/** @internal checks a message list: objects with a string role, and a string content when `strings`. */
export function checkMessages(name: string, value: unknown, strings: true): ChatMessage[];
export function checkMessages(name: string, value: unknown, strings: boolean): TemplateMessage[];
export function checkMessages(name: string, value: unknown, strings: boolean): TemplateMessage[] {
  if (!Array.isArray(value)) throw invalidArgument(name, 'must be an array of { role, content } messages');
  value.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalidArgument(`${name}[${i}]`, 'must be an object { role, content }');
    if (typeof m.role !== 'string' || m.role.length === 0) throw invalidArgument(`${name}[${i}].role`, 'must be a non-empty string');
    if (strings ? typeof m.content !== 'string' : m.content === undefined)
      throw invalidArgument(`${name}[${i}].content`, strings ? 'must be a string' : 'is missing (null for none)');
  });
  return value as TemplateMessage[];
}

// Parsed templates by source (a chat renders the same template every turn), and whether each one
// renders a system message.
interface Compiled {
  program: Program;
  rendersSystem?: boolean;
}
const programs = new Map<string, Compiled>();

function compile(source: string): Compiled {
  let entry = programs.get(source);
  if (entry) return entry;
  let program: Program;
  try {
    // The library's lexer applies trim_blocks / lstrip_blocks and drops one trailing newline of the
    // source, as jinja2 does with keep_trailing_newline=False; jinja2 also reads every line ending
    // of the source (\r\n, \r) as \n (newline_sequence), which the library does not.
    program = parse(tokenize(source.replace(/\r\n?/g, '\n'), { lstrip_blocks: true, trim_blocks: true }));
  } catch (err) {
    throw new FlashdipError('ERR_TEMPLATE', `chat template: ${(err as Error).message}`, { cause: err });
  }
  if (programs.size >= 32) programs.delete(programs.keys().next().value as string);
  entry = { program };
  programs.set(source, entry);
  return entry;
}

class TemplateException extends Error {}

function run(program: Program, o: Checked): string {
  const env = new Environment();
  const vars: Record<string, unknown> = {
    // The library's own globals (its setupGlobals is not exported, and would not let us replace
    // raise_exception and strftime_now).
    true: true, false: false, none: null, True: true, False: false, None: null,
    range: pyRange,
    raise_exception: (message: unknown) => {
      throw new TemplateException(String(message));
    },
    strftime_now: (format: unknown) => strftime(o.now, String(format)),
    ...o.variables,
    messages: o.messages,
    add_generation_prompt: o.addGenerationPrompt,
  };
  if (o.bosToken !== undefined) vars.bos_token = o.bosToken;
  if (o.eosToken !== undefined) vars.eos_token = o.eosToken;
  if (o.tools !== undefined) vars.tools = o.tools;
  try {
    for (const [k, v] of Object.entries(vars)) env.set(k, v);
    const interpreter = new Interpreter(env);
    withPythonToJson(interpreter);
    withPythonStrip(interpreter);
    return interpreter.run(program).value as string;
  } catch (err) {
    const message = err instanceof TemplateException ? `the template raised: ${err.message}` : (err as Error).message;
    throw new FlashdipError('ERR_TEMPLATE', `chat template: ${message}`, { cause: err });
  }
}

// llama.cpp (minja's chat_template) renders [system "<System Needle>", user] and looks for the needle;
// a template that raises or leaves it out has no system role.
function rendersSystem(program: Program, o: Checked): boolean {
  const needle = '<System Needle>';
  try {
    const probe = [{ role: 'system', content: needle }, { role: 'user', content: 'Hey' }];
    return run(program, { ...o, messages: probe, addGenerationPrompt: false, tools: undefined }).includes(needle);
  } catch {
    return false;
  }
}

/**
 * llama.cpp's polyfill: system contents go into the next user message as `system + "\n" + user`
 * (messages whose content is not a string are left as they are, as llama.cpp leaves null ones).
 */
export function foldSystemMessages<M extends TemplateMessage>(messages: readonly M[]): (M | ChatMessage)[] {
  const out: (M | ChatMessage)[] = [];
  let pending = '';
  const flush = () => {
    if (pending) out.push({ role: 'user', content: pending });
    pending = '';
  };
  for (const m of messages) {
    if (typeof m.content !== 'string') {
      out.push(m);
    } else if (m.role === 'system') {
      pending += (pending ? '\n' : '') + m.content;
    } else if (m.role === 'user') {
      out.push(pending ? { ...m, content: pending + (m.content ? '\n' + m.content : '') } : m);
      pending = '';
    } else {
      flush();
      out.push(m);
    }
  }
  flush();
  return out;
}

function pyRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python's datetime.strftime in the C locale (local time); unknown directives are kept as written. */
export function strftime(date: Date, format: string): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const h12 = date.getHours() % 12 || 12;
  const dayOfYear = Math.round((Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) - Date.UTC(date.getFullYear(), 0, 1)) / 864e5) + 1;
  return format.replace(/%([aAbBdeHIjmMpSyY%])/g, (_, d: string) => {
    switch (d) {
      case 'a': return DAYS[date.getDay()].slice(0, 3);
      case 'A': return DAYS[date.getDay()];
      case 'b': return MONTHS[date.getMonth()].slice(0, 3);
      case 'B': return MONTHS[date.getMonth()];
      case 'd': return p(date.getDate());
      case 'e': return String(date.getDate()).padStart(2, ' ');
      case 'H': return p(date.getHours());
      case 'I': return p(h12);
      case 'j': return p(dayOfYear, 3);
      case 'm': return p(date.getMonth() + 1);
      case 'M': return p(date.getMinutes());
      case 'p': return date.getHours() < 12 ? 'AM' : 'PM';
      case 'S': return p(date.getSeconds());
      case 'y': return p(date.getFullYear() % 100);
      case 'Y': return String(date.getFullYear());
      default: return '%';
    }
  });
}

// ------------------------------------------------------------------ tojson

// The library's tojson sorts keys with localeCompare and treats indent=0 as no indent; Python's
// json.dumps (what transformers uses, with ensure_ascii=False) sorts by code point and breaks lines
// for any indent that is not None. The filter is the interpreter's private applyFilter, so this
// wraps it on the one instance: everything but tojson goes to the library.
interface RuntimeValue {
  type: string;
  value: any;
}
interface FilterNode {
  type: string;
  value?: string;
  callee?: { type: string; value: string };
  args?: unknown[];
}
interface FilterApi {
  applyFilter(operand: RuntimeValue, node: FilterNode, env: Environment): RuntimeValue;
  evaluateArguments(args: unknown[], env: Environment): [RuntimeValue[], Map<string, RuntimeValue>];
}

// The library's StringValue class (not exported): what it makes of a JS string.
const StringValue = (new Environment().set('s', '') as object).constructor as new (value: string) => RuntimeValue;

function withPythonToJson(interpreter: Interpreter): void {
  const api = interpreter as unknown as FilterApi;
  const original = api.applyFilter.bind(interpreter);
  api.applyFilter = (operand, node, env) => {
    const isCall = node.type === 'CallExpression' && node.callee?.type === 'Identifier' && node.callee.value === 'tojson';
    if (!isCall && !(node.type === 'Identifier' && node.value === 'tojson')) return original(operand, node, env);
    const kwargs = isCall ? api.evaluateArguments(node.args ?? [], env)[1] : new Map<string, RuntimeValue>();
    const opt = (k: string) => {
      const v = kwargs.get(k);
      return v === undefined || v.type === 'NullValue' || v.type === 'UndefinedValue' ? undefined : v.value;
    };
    const indent = opt('indent') as number | string | undefined;
    const seps = opt('separators') as RuntimeValue[] | undefined;
    if (indent !== undefined && typeof indent !== 'number' && typeof indent !== 'string') throw new Error('tojson: indent must be an integer or a string');
    if (seps !== undefined && (!Array.isArray(seps) || seps.length !== 2 || seps.some((s) => s.type !== 'StringValue')))
      throw new Error('tojson: separators must be a pair of strings');
    const text = pyJson(operand, {
      indent: typeof indent === 'number' ? ' '.repeat(Math.max(0, indent)) : indent,
      item: seps ? seps[0].value : indent === undefined ? ', ' : ',',
      key: seps ? seps[1].value : ': ',
      sortKeys: opt('sort_keys') === true,
      ascii: opt('ensure_ascii') === true,
    });
    return new StringValue(text);
  };
}

// The library's str.strip / lstrip / rstrip ignore their argument; Python strips the characters
// given (Qwen3's template writes content.lstrip('\n')). Wrapped on the one instance, like tojson.
const FunctionValue = (new Environment().set('f', () => undefined) as object).constructor as new (
  call: (args: RuntimeValue[]) => RuntimeValue,
) => RuntimeValue;
const STRIPS = new Set(['strip', 'lstrip', 'rstrip']);

interface MemberApi {
  evaluate(node: unknown, env: Environment): RuntimeValue;
  evaluateMemberExpression(expr: MemberNode, env: Environment): RuntimeValue;
}
interface MemberNode {
  object: unknown;
  property: { type: string; value: unknown };
  computed: boolean;
}

function withPythonStrip(interpreter: Interpreter): void {
  const api = interpreter as unknown as MemberApi;
  const original = api.evaluateMemberExpression.bind(interpreter);
  api.evaluateMemberExpression = (expr, env) => {
    const name = expr.property.value;
    if (expr.computed || expr.property.type !== 'Identifier' || typeof name !== 'string' || !STRIPS.has(name)) return original(expr, env);
    const object = api.evaluate(expr.object, env);
    if (object.type !== 'StringValue') return original(expr, env);
    const text = object.value as string;
    return new FunctionValue((args) => {
      const chars = args[0];
      if (chars === undefined || chars.type === 'NullValue') return new StringValue(name === 'strip' ? text.trim() : name === 'lstrip' ? text.trimStart() : text.trimEnd());
      if (chars.type !== 'StringValue') throw new Error(`${name} arg must be None or str`);
      const set = new Set(chars.value as string);
      let a = 0;
      let b = text.length;
      if (name !== 'rstrip') while (a < b && set.has(text[a])) a++;
      if (name !== 'lstrip') while (b > a && set.has(text[b - 1])) b--;
      return new StringValue(text.slice(a, b));
    });
  };
}

interface JsonStyle {
  indent: string | undefined;
  item: string;
  key: string;
  sortKeys: boolean;
  ascii: boolean;
}

function pyString(s: string, ascii: boolean): string {
  const json = JSON.stringify(s);
  return ascii ? json.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) : json;
}

// Python's float repr: the shortest digits that round-trip (as JS), fixed notation for exponents in
// [-4, 16), else d.ddde+XX.
function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  const [mantissa, exp] = x.toExponential().split('e');
  const e = Number(exp);
  if (e >= -4 && e < 16) return Number.isInteger(x) ? `${x.toFixed(0)}.0` : String(x);
  return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

function pyJson(v: RuntimeValue, style: JsonStyle, depth = 0): string {
  switch (v.type) {
    case 'NullValue':
    case 'UndefinedValue':
      return 'null';
    case 'BooleanValue':
      return v.value ? 'true' : 'false';
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return pyFloat(v.value);
    case 'StringValue':
      return pyString(v.value, style.ascii);
    case 'ArrayValue':
    case 'TupleValue':
    case 'ObjectValue':
    case 'NamespaceValue': {
      const isArray = v.type === 'ArrayValue' || v.type === 'TupleValue';
      let parts: string[];
      if (isArray) parts = (v.value as RuntimeValue[]).map((x) => pyJson(x, style, depth + 1));
      else {
        let entries = [...(v.value as Map<string, RuntimeValue>).entries()];
        if (style.sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        parts = entries.map(([k, x]) => pyString(k, style.ascii) + style.key + pyJson(x, style, depth + 1));
      }
      const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
      if (parts.length === 0) return open + close;
      if (style.indent === undefined) return open + parts.join(style.item) + close;
      const inner = '\n' + style.indent.repeat(depth + 1);
      return open + inner + parts.join(style.item + inner) + '\n' + style.indent.repeat(depth) + close;
    }
    default:
      throw new Error(`tojson: cannot serialize a ${v.type}`);
  }
}

// ------------------------------------------------------------------ built-in templates

// Written for flashdip after the formats llama.cpp knows by these names (llm_chat_template); each is
// tested against llama.cpp's expected output for the same conversation (test/api/55-chat-template).
export const BUILTIN_CHAT_TEMPLATES: Readonly<Record<string, string>> = Object.freeze({
  chatml:
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  llama2:
    "{% if messages[0].role == 'system' %}{% set sys = '<<SYS>>\\n' + messages[0].content + '\\n<</SYS>>\\n\\n' %}{% set rest = messages[1:] %}" +
    "{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}" +
    "{% for m in rest %}{% if m.role == 'user' %}{{ bos_token + '[INST] ' + (sys if loop.first else '') + m.content | trim + ' [/INST]' }}" +
    "{% elif m.role == 'assistant' %}{{ ' ' + m.content | trim + ' ' + eos_token }}{% endif %}{% endfor %}",
  llama3:
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + m.content | trim + '<|eot_id|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  phi3:
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + '<|end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
  phi4:
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '<|im_sep|>' + m.content + '<|im_end|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}",
  gemma:
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
    "{{ '<start_of_turn>' + ('model' if m.role == 'assistant' else m.role) + '\\n' + m.content | trim + '<end_of_turn>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
  mistral:
    "{% if messages[0].role == 'system' %}{% set sys = messages[0].content + '\\n\\n' %}{% set rest = messages[1:] %}{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}" +
    "{{ bos_token }}{% for m in rest %}{% if m.role == 'user' %}{{ ' [INST] ' + (sys if loop.first else '') + m.content + ' [/INST]' }}" +
    "{% elif m.role == 'assistant' %}{{ ' ' + m.content + eos_token }}{% endif %}{% endfor %}",
  'mistral-v7':
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ '[SYSTEM_PROMPT] ' + m.content + '[/SYSTEM_PROMPT]' }}" +
    "{% elif m.role == 'user' %}{{ '[INST] ' + m.content + '[/INST]' }}{% elif m.role == 'assistant' %}{{ ' ' + m.content + eos_token }}{% endif %}{% endfor %}",
  vicuna:
    "{% for m in messages %}{% if m.role == 'system' %}{{ m.content + '\\n\\n' }}{% elif m.role == 'user' %}{{ 'USER: ' + m.content + '\\n' }}" +
    "{% else %}{{ 'ASSISTANT: ' + m.content + '</s>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}",
  deepseek2:
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ m.content + '\\n\\n' }}{% elif m.role == 'user' %}{{ 'User: ' + m.content + '\\n\\n' }}" +
    "{% else %}{{ 'Assistant: ' + m.content + eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
  'command-r':
    "{{ bos_token }}{% for m in messages %}{{ '<|START_OF_TURN_TOKEN|><|' + {'system': 'SYSTEM', 'user': 'USER', 'assistant': 'CHATBOT'}[m.role] + '_TOKEN|>' + m.content | trim + '<|END_OF_TURN_TOKEN|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}",
  granite:
    "{% for m in messages %}{{ '<|start_of_role|>' + m.role + '<|end_of_role|>' + m.content + '<|end_of_text|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|start_of_role|>assistant<|end_of_role|>' }}{% endif %}",
});

/** The template used when a file has none and no template is given: ChatML, as llama.cpp does. */
export const DEFAULT_CHAT_TEMPLATE = 'chatml';

/**
 * A template option: the name of a built-in template, Jinja source (anything containing "{{" or
 * "{%"), or the path of a file holding the source.
 */
export function resolveChatTemplate(spec: unknown, name = 'template'): string {
  if (typeof spec !== 'string' || spec.length === 0) throw invalidArgument(name, 'must be a built-in template name, Jinja source or a file path');
  if (Object.prototype.hasOwnProperty.call(BUILTIN_CHAT_TEMPLATES, spec)) return BUILTIN_CHAT_TEMPLATES[spec];
  if (spec.includes('{{') || spec.includes('{%')) return spec;
  try {
    return fs.readFileSync(spec, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR')
      throw invalidArgument(name, `${JSON.stringify(spec)} is neither a built-in template (${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')}), Jinja source, nor an existing file`);
    throw new FlashdipError('ERR_IO', `${name}: cannot read ${spec}: ${e.message}`, { cause: err });
  }
}
