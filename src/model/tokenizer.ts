/**
 * Tokenizer: a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json, and the
 * eos ids of generation_config.json / config.json) behind one small API. Encoding and
 * decoding run through @huggingface/tokenizers; emlab adds what it leaves out: unknown
 * words → the unk id (or a clear error), the special-token ids a model needs (bos, eos, pad,
 * unk), exact decoding (no "clean up" of spaces unless the config asks), a streaming
 * decoder for generation, and chat templates with an assistant-token mask for SFT.
 *
 * @example
 *   const tok = Tokenizer.fromDir("models/qwen2.5-0.5b-instruct");
 *   const ids = tok.encodeChat([{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
 *   const stream = tok.decodeStream({ skipSpecialTokens: true });
 *   for (const id of generated) process.stdout.write(stream.push(id));
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Encoding, Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { z } from "zod";
import {
  type ChatMessage,
  ChatTemplateError,
  type ChatTemplateField,
  type ChatTemplateOptions,
  renderChatTemplate,
  selectChatTemplate,
} from "./chat-template.ts";
import { type DecodeOptions, StreamDecoder } from "./stream-decoder.ts";

export type { DecodeOptions };
export { StreamDecoder };

export class TokenizerError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "TokenizerError";
  }
}

// ---- file schemas (only the fields emlab reads; everything else passes through) ----

const MODEL_TYPES = ["BPE", "WordLevel", "WordPiece", "Unigram"];

const TokenizerJsonSchema = z.looseObject({
  added_tokens: z
    .array(z.looseObject({ id: z.number().int().nonnegative(), content: z.string(), special: z.boolean().optional() }))
    .optional(),
  normalizer: z.looseObject({ type: z.string() }).nullable().optional(),
  pre_tokenizer: z.looseObject({ type: z.string() }).nullable().optional(),
  post_processor: z.looseObject({ type: z.string() }).nullable().optional(),
  decoder: z.looseObject({ type: z.string() }).nullable().optional(),
  model: z.looseObject({
    type: z.string().optional(),
    vocab: z.union([z.record(z.string(), z.number()), z.array(z.tuple([z.string(), z.number()]))]),
    unk_token: z.string().nullable().optional(),
  }),
});

/** A special token is written as a string or as an AddedToken object ({content, …}). */
const TokenField = z
  .union([z.string(), z.looseObject({ content: z.string() })])
  .nullable()
  .optional();

const TokenizerConfigSchema = z.looseObject({
  chat_template: z
    .union([z.string(), z.array(z.object({ name: z.string(), template: z.string() }))])
    .nullable()
    .optional(),
  bos_token: TokenField,
  eos_token: TokenField,
  pad_token: TokenField,
  unk_token: TokenField,
  additional_special_tokens: z.array(z.union([z.string(), z.looseObject({ content: z.string() })])).optional(),
  add_bos_token: z.boolean().optional(),
  add_eos_token: z.boolean().optional(),
  clean_up_tokenization_spaces: z.boolean().optional(),
});

const EosIdField = z
  .union([z.number().int(), z.array(z.number().int())])
  .nullable()
  .optional();
const EosSchema = z.looseObject({ eos_token_id: EosIdField });

function parseWith<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.join(".");
  throw new TokenizerError(file, path ? `field '${path}': ${issue.message}` : issue.message);
}

function readJson(path: string, required: boolean): unknown {
  if (!existsSync(path)) {
    if (required) throw new TokenizerError(path, "file not found");
    return undefined;
  }
  const text = readFileSync(path, "utf8");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(path, `malformed JSON: ${(e as Error).message}`);
  }
}

const tokenString = (f: z.infer<typeof TokenField>): string | null =>
  f === undefined || f === null ? null : typeof f === "string" ? f : f.content;

const eosList = (v: z.infer<typeof EosIdField>): number[] => (v === undefined || v === null ? [] : [v].flat());

export interface EncodeOptions {
  /** Add what the tokenizer adds around a text (bos, eos), as transformers does. Default true. */
  addSpecialTokens?: boolean;
}

export interface LoadOptions {
  /** Extra eos ids (generation_config.json / config.json eos_token_id), after the config's eos_token. */
  eosTokenIds?: number[];
  /** File names used in error messages. */
  files?: { tokenizer?: string; config?: string };
}

export class Tokenizer {
  /** tokenizer.json as loaded (save() writes it back). */
  readonly tokenizerJson: Record<string, unknown>;
  /** tokenizer_config.json as loaded, with chat_template filled from chat_template.jinja if that is where it was. */
  readonly tokenizerConfig: Record<string, unknown>;
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** Every id that ends generation: the config's eos_token first, then generation_config/config.json ids. */
  readonly eosIds: number[];
  readonly padId: number | null;
  readonly unkId: number | null;
  /** Added tokens marked special, plus bos/eos/pad/unk and additional_special_tokens. */
  readonly specialIds: Set<number>;
  readonly chatTemplate: ChatTemplateField | null;
  private readonly hf: HfTokenizer;
  private readonly files: { tokenizer: string; config: string };
  /** Template variables: bos_token, eos_token, … as strings. */
  private readonly specialTokenStrings: Record<string, string | string[]> = {};
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly cleanUpSpaces: boolean;

  /**
   * Builds a tokenizer from parsed tokenizer.json and tokenizer_config.json objects.
   *
   * @example
   *   const tok = Tokenizer.fromJSON(buildWordLevel(["hello", "world"], { unkToken: "[UNK]" }), {});
   */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown = {}, opts: LoadOptions = {}): Tokenizer {
    return new Tokenizer(tokenizerJson, tokenizerConfig ?? {}, opts);
  }

  /**
   * Loads a Hugging Face tokenizer folder: tokenizer.json (required), tokenizer_config.json,
   * chat_template.jinja, and eos_token_id from generation_config.json and config.json.
   */
  static fromDir(dir: string): Tokenizer {
    const tokFile = join(dir, "tokenizer.json");
    const cfgFile = join(dir, "tokenizer_config.json");
    const tokenizerJson = readJson(tokFile, true);
    const config = (readJson(cfgFile, false) ?? {}) as Record<string, unknown>;
    const jinjaFile = join(dir, "chat_template.jinja");
    if (config && typeof config === "object" && config.chat_template == null && existsSync(jinjaFile)) {
      config.chat_template = readFileSync(jinjaFile, "utf8");
    }
    const eosTokenIds: number[] = [];
    for (const name of ["generation_config.json", "config.json"]) {
      const file = join(dir, name);
      const raw = readJson(file, false);
      if (raw !== undefined) eosTokenIds.push(...eosList(parseWith(EosSchema, raw, file).eos_token_id));
    }
    return new Tokenizer(tokenizerJson, config, { eosTokenIds, files: { tokenizer: tokFile, config: cfgFile } });
  }

  private constructor(tokenizerJson: unknown, tokenizerConfig: unknown, opts: LoadOptions) {
    this.files = {
      tokenizer: opts.files?.tokenizer ?? "tokenizer.json",
      config: opts.files?.config ?? "tokenizer_config.json",
    };
    const tj = parseWith(TokenizerJsonSchema, tokenizerJson, this.files.tokenizer);
    const cfg = parseWith(TokenizerConfigSchema, tokenizerConfig, this.files.config);
    const modelType = tj.model.type;
    if (modelType !== undefined && !MODEL_TYPES.includes(modelType)) {
      throw new TokenizerError(
        this.files.tokenizer,
        `field 'model.type': unsupported model '${modelType}' (supported: ${MODEL_TYPES.join(", ")})`,
      );
    }
    this.tokenizerJson = structuredClone(tj) as Record<string, unknown>;
    this.tokenizerConfig = structuredClone(cfg) as Record<string, unknown>;

    // The library wants every pipeline key present and special tokens as plain strings.
    const names = ["bos_token", "eos_token", "pad_token", "unk_token"] as const;
    const libConfig: Record<string, unknown> = { ...cfg, chat_template: undefined };
    for (const n of names) libConfig[n] = tokenString(cfg[n]) ?? undefined;
    libConfig.additional_special_tokens = (cfg.additional_special_tokens ?? []).map((t) => tokenString(t)!);
    const libJson = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tj,
      added_tokens: tj.added_tokens ?? [],
    };
    try {
      this.hf = new HfTokenizer(libJson, libConfig);
    } catch (e) {
      throw new TokenizerError(this.files.tokenizer, `cannot build tokenizer: ${(e as Error).message}`);
    }
    this.vocabSize = this.hf.model!.vocab.length;

    const idOf = (field: string, token: string | null): number | null => {
      if (token === null) return null;
      const id = this.hf.token_to_id(token);
      if (id === undefined) {
        throw new TokenizerError(this.files.config, `field '${field}': token '${token}' is not in the vocabulary`);
      }
      return id;
    };
    for (const n of names) {
      const s = tokenString(cfg[n]);
      if (s !== null) this.specialTokenStrings[n] = s;
    }
    const additional = (cfg.additional_special_tokens ?? []).map((t) => tokenString(t)!);
    if (additional.length) this.specialTokenStrings.additional_special_tokens = additional;

    this.bosId = idOf("bos_token", tokenString(cfg.bos_token));
    this.padId = idOf("pad_token", tokenString(cfg.pad_token));
    const modelUnk = tj.model.unk_token ?? null;
    // WordLevel/BPE name their unk in tokenizer.json; tokenizers writes "<unk>" even when no such token exists.
    this.unkId =
      (modelUnk !== null ? this.hf.token_to_id(modelUnk) : undefined) ?? idOf("unk_token", tokenString(cfg.unk_token));
    const eos = idOf("eos_token", tokenString(cfg.eos_token));
    this.eosIds = [...new Set([...(eos === null ? [] : [eos]), ...(opts.eosTokenIds ?? [])])];

    this.specialIds = new Set(tj.added_tokens?.filter((t) => t.special).map((t) => t.id) ?? []);
    for (const id of [this.bosId, this.padId, this.unkId, ...this.eosIds]) if (id !== null) this.specialIds.add(id);
    additional.forEach((t, i) => {
      this.specialIds.add(idOf(`additional_special_tokens.${i}`, t)!);
    });

    this.chatTemplate = cfg.chat_template ?? null;
    // add_bos_token / add_eos_token act only where the tokenizer.json post-processor adds
    // nothing itself; a TemplateProcessing post-processor already says what to add.
    const ppType = tj.post_processor?.type;
    const ppAddsNothing = ppType === undefined || ppType === "ByteLevel";
    this.addBos = ppAddsNothing && cfg.add_bos_token === true && this.bosId !== null;
    this.addEos = ppAddsNothing && cfg.add_eos_token === true && eos !== null;
    // transformers' old default (True) rewrites " ." to "." and breaks exact round trips.
    this.cleanUpSpaces = cfg.clean_up_tokenization_spaces ?? false;
  }

  /** First of eosIds, or null. */
  get eosId(): number | null {
    return this.eosIds[0] ?? null;
  }

  /** Text → ids. Unknown words map to unkId; without an unk token they are an error. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecialTokens ?? true;
    // Typed number[], but a WordLevel model yields undefined for unknown words.
    const enc: Encoding = this.hf.encode(text, { add_special_tokens: addSpecial });
    const ids = (enc.ids as (number | undefined)[]).map((id, i) => {
      if (id !== undefined && id !== null) return id;
      if (this.unkId !== null) return this.unkId;
      throw new TokenizerError(
        this.files.tokenizer,
        `'${enc.tokens[i]}' is not in the vocabulary and the tokenizer has no unk token (field 'model.unk_token')`,
      );
    });
    if (addSpecial && this.addBos) ids.unshift(this.bosId!);
    if (addSpecial && this.addEos) ids.push(this.eosId!);
    return ids;
  }

  /** Ids → text, exactly (byte-level pieces are joined before UTF-8 decoding). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      }
    }
    const kept = opts.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (kept.length === 0) return "";
    return this.hf.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  /** A streaming decoder for generation: push ids one at a time, get text as characters complete. */
  decodeStream(opts: DecodeOptions = {}): StreamDecoder {
    return new StreamDecoder(this, opts);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /**
   * Renders a conversation with the chat template, passing bos_token, eos_token,
   * add_generation_prompt, tools and extra variables as transformers does.
   *
   * @example
   *   tok.applyChatTemplate([{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
   *   // "<|im_start|>system\n…<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
   */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const template = selectChatTemplate(
      this.chatTemplate,
      { templateName: opts.templateName, hasTools: (opts.tools?.length ?? 0) > 0 },
      this.files.config,
    );
    return renderChatTemplate(template, messages, opts, this.specialTokenStrings, this.files.config);
  }

  /** applyChatTemplate then encode without adding special tokens (the template holds them). */
  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }

  /**
   * The ids of a whole conversation and a 0/1 mask that is 1 on the tokens the assistant
   * writes, for SFT loss on assistant tokens only.
   *
   * How: render the conversation; for each assistant message i, render messages[0..i) with
   * the generation prompt (where the assistant's text starts) and messages[0..i] (where it
   * ends, trailing whitespace dropped); both must be string prefixes of the whole rendering.
   * Each prefix is tokenised and its boundary is the length of its longest common token
   * prefix with the whole conversation's ids. The mask includes the end-of-turn token that
   * closes the message (`<|im_end|>`) so the model learns to stop; `includeEndOfTurn: false`
   * cuts the span at its first special token.
   *
   * Limits: templates that render earlier turns differently once later turns exist (e.g.
   * dropping reasoning) fail with a ChatTemplateError; a token that straddles a boundary
   * (a BPE merge across header and content) counts as assistant at the start and not at the
   * end. Costs two renders and two encodes per assistant turn.
   */
  assistantMask(
    messages: ChatMessage[],
    opts: ChatTemplateOptions & { includeEndOfTurn?: boolean } = {},
  ): { ids: number[]; mask: number[]; text: string } {
    const { includeEndOfTurn = true, addGenerationPrompt: _gen, ...tplOpts } = opts;
    const render = (msgs: ChatMessage[], gen: boolean) =>
      this.applyChatTemplate(msgs, { ...tplOpts, addGenerationPrompt: gen });
    const text = render(messages, false);
    const ids = this.encode(text, { addSpecialTokens: false });
    const mask: number[] = new Array(ids.length).fill(0);
    const commonPrefix = (a: number[]) => {
      let k = 0;
      while (k < a.length && k < ids.length && a[k] === ids[k]) k++;
      return k;
    };
    messages.forEach((m, i) => {
      if (m.role !== "assistant") return;
      const before = render(messages.slice(0, i), true);
      const through = render(messages.slice(0, i + 1), false).trimEnd();
      if (!text.startsWith(before) || !text.startsWith(through)) {
        throw new ChatTemplateError(
          this.files.config,
          `assistantMask: the template's rendering of messages[0..${i}] is not a prefix of the whole conversation, so assistant tokens cannot be located by prefixes`,
        );
      }
      const start = commonPrefix(this.encode(before, { addSpecialTokens: false }));
      let end = commonPrefix(this.encode(through, { addSpecialTokens: false }));
      if (!includeEndOfTurn) {
        for (let k = start; k < end; k++) {
          if (this.specialIds.has(ids[k]!)) {
            end = k;
            break;
          }
        }
      }
      if (end > start) mask.fill(1, start, end);
    });
    return { ids, mask, text };
  }

  /** Writes tokenizer.json and tokenizer_config.json into `dir` (each via a temporary file and a rename). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const write = (name: string, value: unknown) => {
      const path = join(dir, name);
      writeFileSync(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
      renameSync(`${path}.tmp`, path);
    };
    write("tokenizer.json", this.tokenizerJson);
    write("tokenizer_config.json", this.tokenizerConfig);
  }
}
