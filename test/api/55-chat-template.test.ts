// Chat templates: every llama.cpp test case and every real model template of ../shared/data/chat
// renders byte for byte; the Hugging Face conventions (tojson, strftime_now, raise_exception,
// trim/lstrip blocks, trailing newline, undefined bos/eos); the built-in templates; llama.cpp's
// folding of system messages for templates without a system role.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FlashdipError, renderChatTemplate, BUILTIN_CHAT_TEMPLATES } from '../../lib';
import { foldSystemMessages, resolveChatTemplate, strftime } from '../../lib/chat-template';
import { readJson, SHARED, tmpFile } from '../helpers';

const CHAT = path.join(SHARED, 'chat');
const isCode = (code: string, re?: RegExp) => (e: unknown) => e instanceof FlashdipError && e.code === code && (!re || re.test(e.message));

/** Fails on the first byte (of the UTF-8 encodings) that differs, showing the text around it. */
export function assertSameBytes(actual: string, expected: string, label: string): void {
  const a = Buffer.from(actual, 'utf8');
  const e = Buffer.from(expected, 'utf8');
  const n = Math.min(a.length, e.length);
  let i = 0;
  while (i < n && a[i] === e[i]) i++;
  if (i === n && a.length === e.length) return;
  const around = (b: Buffer) => JSON.stringify(b.subarray(Math.max(0, i - 40), i + 40).toString('utf8'));
  assert.fail(
    `${label}: first difference at byte ${i} (actual ${a.length} bytes, expected ${e.length})\n` +
      `  actual:   ${around(a)}\n  expected: ${around(e)}`,
  );
}

interface Case {
  name?: string;
  model?: string;
  conversation?: string;
  template: string;
  bos_token: string | null;
  eos_token: string | null;
  messages: { role: string; content: string }[];
  add_generation_prompt: boolean;
  expected: string;
}

const render = (c: Case, foldSystem: boolean) =>
  renderChatTemplate(c.template, {
    messages: c.messages,
    bosToken: c.bos_token ?? undefined,
    eosToken: c.eos_token ?? undefined,
    addGenerationPrompt: c.add_generation_prompt,
    foldSystem,
    now: new Date(2024, 6, 26), // 2024-07-26T00:00:00 local time, as the reference clock
  });

describe('55 chat templates', () => {
  const llamaCpp = readJson<{ cases: Case[] }>(path.join(CHAT, 'llama-cpp-template-cases.json'));
  const models = readJson<{ cases: Case[]; skipped: (Case & { error: string })[] }>(path.join(CHAT, 'model-templates.json'));

  it('renders the 35 llama.cpp cases byte for byte (system folded where the template has no system role)', () => {
    assert.strictEqual(llamaCpp.cases.length, 35);
    for (const c of llamaCpp.cases) assertSameBytes(render(c, true), c.expected, c.name!);
  });

  it('renders the 23 real model templates byte for byte as transformers does', () => {
    assert.strictEqual(models.cases.length, 23);
    for (const c of models.cases) assertSameBytes(render(c, false), c.expected, `${c.model} / ${c.conversation}`);
  });

  it('reports raise_exception as ERR_TEMPLATE with the template message (the skipped gemma-2 case)', () => {
    assert.strictEqual(models.skipped.length, 1);
    const skipped = models.skipped[0];
    const c = { ...models.cases.find((m) => m.model === skipped.model)!, messages: skipped.messages };
    assert.throws(() => render(c, false), isCode('ERR_TEMPLATE', /System role not supported/));
    // With llama.cpp's rule the system message goes into the first user message instead.
    const out = render(c, true);
    assert.ok(out.startsWith('<bos><start_of_turn>user\nYou are a helpful assistant.\nHello<end_of_turn>\n'), out);
  });

  it('folds system messages as llama.cpp does, only for templates that do not render them', () => {
    const m = [
      { role: 'system', content: 'S1' },
      { role: 'system', content: 'S2' },
      { role: 'user', content: 'U' },
      { role: 'assistant', content: 'A' },
      { role: 'system', content: 'S3' },
      { role: 'assistant', content: 'B' },
    ];
    assert.deepStrictEqual(foldSystemMessages(m), [
      { role: 'user', content: 'S1\nS2\nU' },
      { role: 'assistant', content: 'A' },
      { role: 'user', content: 'S3' },
      { role: 'assistant', content: 'B' },
    ]);
    assert.deepStrictEqual(foldSystemMessages([{ role: 'system', content: 'S' }, { role: 'user', content: '' }]), [{ role: 'user', content: 'S' }]);
    // A null content (a tool call) is passed over, as llama.cpp does: the system text waits for the next user message.
    const call = { role: 'assistant', content: null, tool_calls: [] };
    assert.deepStrictEqual(foldSystemMessages([{ role: 'system', content: 'S' }, call, { role: 'user', content: 'U' }]), [call, { role: 'user', content: 'S\nU' }]);
    // chatml renders a system role: nothing is folded.
    const out = renderChatTemplate(BUILTIN_CHAT_TEMPLATES.chatml, { messages: m.slice(0, 3), foldSystem: true });
    assert.strictEqual(out, '<|im_start|>system\nS1<|im_end|>\n<|im_start|>system\nS2<|im_end|>\n<|im_start|>user\nU<|im_end|>\n');
  });

  it('has built-in templates that render the llama.cpp cases of their format', () => {
    const byName = (n: string) => llamaCpp.cases.find((c) => c.name === n)!;
    const formats: Record<string, string> = {
      chatml: 'teknium/OpenHermes-2.5-Mistral-7B',
      llama2: 'bofenghuang/vigogne-2-70b-chat',
      llama3: 'Llama-3',
      phi3: 'Phi-3-small',
      phi4: 'phi-4',
      gemma: 'google/gemma-7b-it',
      mistral: "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)",
      'mistral-v7': "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)",
      vicuna: 'eachadea/vicuna-13b-1.1',
      deepseek2: 'DeepSeek-V2',
      'command-r': 'CohereForAI/c4ai-command-r-plus',
      granite: 'ibm-granite/granite-3.0-8b-instruct',
    };
    assert.deepStrictEqual(Object.keys(formats).sort(), Object.keys(BUILTIN_CHAT_TEMPLATES).sort());
    for (const [name, caseName] of Object.entries(formats)) {
      const c = byName(caseName);
      assertSameBytes(render({ ...c, template: BUILTIN_CHAT_TEMPLATES[name] }, true), c.expected, `built-in ${name}`);
    }
    // llama2 with BOS: one before every [INST], as Meta's template writes it.
    const out = renderChatTemplate(BUILTIN_CHAT_TEMPLATES.llama2, {
      messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }],
      bosToken: '<s>',
      eosToken: '</s>',
    });
    assert.strictEqual(out, '<s>[INST] a [/INST] b </s><s>[INST] c [/INST]');
  });

  it('follows the Hugging Face settings: trim_blocks, lstrip_blocks, one trailing newline dropped', () => {
    const t = '{% for m in messages %}\n  {% if true %}\n[{{ m.content }}]\n  {% endif %}\n{% endfor %}\n\n';
    // jinja2 (trim_blocks, lstrip_blocks, keep_trailing_newline=False) gives "[a]\n[b]\n\n" minus one "\n".
    assert.strictEqual(renderChatTemplate(t, { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }), '[a]\n[b]\n');
    assert.strictEqual(renderChatTemplate('x\n', { messages: [] }), 'x');
    // jinja2 reads \r\n and \r in the source as \n (string literals included); outputs printed by jinja2 3.1.
    assert.strictEqual(renderChatTemplate('a\r\nb{{ "x\r\ny" }}\rc\r\n', { messages: [] }), 'a\nbx\ny\nc');
    assert.strictEqual(renderChatTemplate('{% if true %}\r\nA{% endif %}\r\n  {% if true %}B{% endif %}', { messages: [] }), 'AB');
  });

  it('leaves bos_token / eos_token undefined when not given, and sets add_generation_prompt', () => {
    const t = '{% if bos_token is defined %}B{% endif %}{% if eos_token is defined %}E{% endif %}{% if add_generation_prompt %}G{% endif %}';
    assert.strictEqual(renderChatTemplate(t, { messages: [] }), '');
    assert.strictEqual(renderChatTemplate(t, { messages: [], bosToken: '', eosToken: 'e', addGenerationPrompt: true }), 'BEG');
  });

  it('takes tool-call messages: null contents and further fields reach the template', () => {
    const t = '{% for m in messages %}{{ m.role }}:{{ m.content if m.content is not none else (m.tool_calls | tojson) }};{% endfor %}';
    const messages = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'q' },
      { role: 'assistant', content: null, tool_calls: [{ name: 'f', arguments: { a: 1 } }] },
      { role: 'tool', content: '42' },
    ];
    // Printed by jinja2 with transformers' tojson.
    const expected = 'system:S;user:q;assistant:[{"name": "f", "arguments": {"a": 1}}];tool:42;';
    assert.strictEqual(renderChatTemplate(t, { messages }), expected);
    assert.strictEqual(renderChatTemplate(t, { messages, foldSystem: true }), expected); // the template renders system messages
  });

  it('tojson matches Python json.dumps(ensure_ascii=False) with indent, separators and sort_keys', () => {
    const x = { b: 1, B: [1.5, 'ü', null, true], a: {}, f: 1.5e-5, g: 2.5e-7 };
    const t = (f: string) => renderChatTemplate(`{{ x | ${f} }}`, { messages: [], variables: { x } });
    // Expected strings printed by Python 3 json.dumps on the same value.
    assert.strictEqual(t('tojson'), '{"b": 1, "B": [1.5, "ü", null, true], "a": {}, "f": 1.5e-05, "g": 2.5e-07}');
    assert.strictEqual(t('tojson(indent=2, sort_keys=true)'), '{\n  "B": [\n    1.5,\n    "ü",\n    null,\n    true\n  ],\n  "a": {},\n  "b": 1,\n  "f": 1.5e-05,\n  "g": 2.5e-07\n}');
    assert.strictEqual(t('tojson(indent=0)'), '{\n"b": 1,\n"B": [\n1.5,\n"ü",\nnull,\ntrue\n],\n"a": {},\n"f": 1.5e-05,\n"g": 2.5e-07\n}');
    assert.strictEqual(t('tojson(separators=(",", ":"))'), '{"b":1,"B":[1.5,"ü",null,true],"a":{},"f":1.5e-05,"g":2.5e-07}');
    assert.strictEqual(
      renderChatTemplate('{{ s | tojson(ensure_ascii=true) }}', { messages: [], variables: { s: '😀\u0001\u2028"' } }),
      '"\\ud83d\\ude00\\u0001\\u2028\\""',
    );
    assert.strictEqual(renderChatTemplate('{{ 2.0 | tojson }} {{ 2 | tojson }}', { messages: [] }), '2.0 2');
    // tools reach the template as given.
    const tools = [{ type: 'function', function: { name: 'f' } }];
    assert.strictEqual(renderChatTemplate('{{ tools | tojson }}', { messages: [], tools }), '[{"type": "function", "function": {"name": "f"}}]');
  });

  it('str.strip / lstrip / rstrip take the characters to strip, as Python (Qwen3 writes lstrip(\'\\n\'))', () => {
    const t =
      "{{ '\\n\\nxx a\\n'.lstrip('\\n') }}|{{ 'xxaxx'.strip('x') }}|{{ 'ab  '.rstrip() }}|{{ ' a\\n'.rstrip('\\n') }}|{{ 'cabac'.strip('ac') }}|" +
      "{{ messages[0].content.split('</think>')[-1].lstrip('\\n') }}|{{ '  x  '.strip() }}|{{ 'x'.strip(none) }}";
    const messages = [{ role: 'assistant', content: '<think>r</think>\n\nanswer' }];
    // Printed by jinja2 3.1 for the same template and message.
    assert.strictEqual(renderChatTemplate(t, { messages }), 'xx a\n|a|ab| a|b|answer|x|x');
  });

  it('strftime_now reads `now` and formats as Python in the C locale', () => {
    const now = new Date(2024, 6, 26, 13, 5, 9);
    assert.strictEqual(renderChatTemplate('{{ strftime_now("%d %b %Y") }}', { messages: [], now }), '26 Jul 2024');
    // Python: datetime(2024,7,26,13,5,9).strftime('%a %A %B %m %H %I %M %S %p %y %j %%') 
    assert.strictEqual(strftime(now, '%a %A %B %m %H %I %M %S %p %y %j %%'), 'Fri Friday July 07 13 01 05 09 PM 24 208 %');
    const year = new Date().getFullYear();
    assert.strictEqual(renderChatTemplate('{{ strftime_now("%Y") }}', { messages: [] }), String(year));
  });

  it('gives typed errors: ERR_TEMPLATE for template failures, ERR_INVALID_ARGUMENT for bad options', () => {
    assert.throws(() => renderChatTemplate('{% for %}', { messages: [] }), isCode('ERR_TEMPLATE'));
    assert.throws(() => renderChatTemplate('{{ raise_exception("nope") }}', { messages: [] }), isCode('ERR_TEMPLATE', /nope/));
    assert.throws(() => renderChatTemplate('{{ 1 + [] }}', { messages: [] }), isCode('ERR_TEMPLATE'));
    assert.throws(() => renderChatTemplate(1 as never, { messages: [] }), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => renderChatTemplate('', { messages: [{ role: 'user' }] as never }), isCode('ERR_INVALID_ARGUMENT', /content/));
    assert.throws(() => renderChatTemplate('', { messages: [], now: new Date(NaN) }), isCode('ERR_INVALID_ARGUMENT', /now/));
    assert.throws(() => renderChatTemplate('', { messages: [], bos: 'x' } as never), isCode('ERR_INVALID_ARGUMENT', /bos/));
    assert.throws(() => renderChatTemplate('', { messages: [], variables: { messages: [] } }), isCode('ERR_INVALID_ARGUMENT'));
  });

  it('resolves a template option given as a built-in name, Jinja source or a file', () => {
    assert.strictEqual(resolveChatTemplate('chatml'), BUILTIN_CHAT_TEMPLATES.chatml);
    assert.strictEqual(resolveChatTemplate('{{ 1 }}'), '{{ 1 }}');
    const file = tmpFile('tmpl.jinja');
    fs.writeFileSync(file, 'T{{ messages | length }}\n');
    try {
      assert.strictEqual(resolveChatTemplate(file), 'T{{ messages | length }}\n');
    } finally {
      fs.unlinkSync(file);
    }
    assert.throws(() => resolveChatTemplate('chatmll'), isCode('ERR_INVALID_ARGUMENT', /chatml/));
    assert.throws(() => resolveChatTemplate(''), isCode('ERR_INVALID_ARGUMENT'));
  });
});
