/**
 * Chat templates: the Jinja program in tokenizer_config.json's `chat_template` that turns a
 * list of messages into the exact prompt string a model was trained on. Rendered with
 * @huggingface/jinja (trim_blocks and lstrip_blocks on, as in transformers) and given the
 * same variables transformers passes: `messages`, `tools`, `documents`,
 * `add_generation_prompt`, the special-token strings (`bos_token`, `eos_token`, …) and any
 * extra keyword the caller adds.
 *
 * @example
 *   const text = renderChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}",
 *     [{ role: "user", content: "hi" }], { addGenerationPrompt: true });
 */
import { Template } from "@huggingface/jinja";

/** Who speaks a turn: OpenAI's chat roles (the chat JSONL schema accepts these). */
export type ChatRole = "system" | "developer" | "user" | "assistant" | "tool";

/**
 * One chat turn: emlab's one message type, shared by the chat template, the providers
 * (src/providers/types.ts) and the chat JSONL schema (src/data/schema.ts). A template may
 * know other roles, so any string is accepted; extra fields (tool_calls, name, …) reach the
 * template unchanged.
 */
export type ChatMessage = {
  role: ChatRole | (string & {});
  content: string;
  [key: string]: unknown;
};

export interface ChatTemplateOptions {
  /** Append the header that opens an assistant turn (`<|im_start|>assistant\n`). */
  addGenerationPrompt?: boolean;
  /** Tool (function) schemas, passed to the template as `tools` (null when absent). */
  tools?: unknown[];
  /** Retrieved documents, passed as `documents` (null when absent). */
  documents?: unknown[];
  /** Which named template to use when tokenizer_config.json holds several. */
  templateName?: string;
  /** Anything else becomes a template variable (e.g. `enable_thinking`, `date_string`). */
  [extra: string]: unknown;
}

/** tokenizer_config.json's chat_template: one template, or a list of named ones. */
export type ChatTemplateField = string | { name: string; template: string }[];

export class ChatTemplateError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ChatTemplateError";
  }
}

/**
 * Picks the template transformers would pick: the named one if asked, else `tool_use` when
 * tools are given and such a template exists, else `default`.
 */
export function selectChatTemplate(
  field: ChatTemplateField | undefined | null,
  opts: { templateName?: string; hasTools?: boolean } = {},
  file = "tokenizer_config.json",
): string {
  if (field === undefined || field === null) {
    throw new ChatTemplateError(file, "field 'chat_template' is missing; this tokenizer has no chat template");
  }
  if (typeof field === "string") return field;
  const byName = new Map(field.map((t) => [t.name, t.template]));
  const name = opts.templateName ?? (opts.hasTools && byName.has("tool_use") ? "tool_use" : "default");
  const template = byName.get(name);
  if (template === undefined) {
    throw new ChatTemplateError(
      file,
      `field 'chat_template' has no template named '${name}' (has: ${[...byName.keys()].join(", ")})`,
    );
  }
  return template;
}

// Parsing a template costs far more than rendering it; generation and SFT render the same
// few templates thousands of times.
const compiled = new Map<string, Template>();

function compile(source: string, file: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(file, `field 'chat_template' does not parse: ${(e as Error).message}`);
    }
    if (compiled.size > 64) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/**
 * Renders `messages` through `template`. `specialTokens` maps names such as `bos_token` to
 * their strings (absent tokens are left undefined, which Jinja prints as "").
 */
export function renderChatTemplate(
  template: string,
  messages: ChatMessage[],
  opts: ChatTemplateOptions = {},
  specialTokens: Record<string, string | string[]> = {},
  file = "tokenizer_config.json",
): string {
  const { addGenerationPrompt, tools, documents, templateName: _name, ...extra } = opts;
  const vars: Record<string, unknown> = {
    ...specialTokens,
    ...extra,
    messages,
    // transformers passes None, so `{% if tools is not none %}` is false without tools.
    tools: tools ?? null,
    documents: documents ?? null,
    add_generation_prompt: addGenerationPrompt ?? false,
  };
  try {
    return compile(template, file).render(vars);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw e;
    throw new ChatTemplateError(file, `rendering 'chat_template' failed: ${(e as Error).message}`);
  }
}
