/**
 * `emlab generate`: sample completions from a Hugging Face model folder, optionally with a
 * LoRA adapter, through the model's chat template (or the raw prompt with --raw).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ChatMessage, ChatTemplateError } from "../model/chat-template.ts";
import { CheckpointError, loadModel } from "../model/checkpoint.ts";
import { generate } from "../model/generate.ts";
import { loadLora } from "../model/lora.ts";
import { Tokenizer, TokenizerError } from "../model/tokenizer.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, intOption, numberOption, parseOptions, printJson } from "./common.ts";

export const summary = "generate text from a model folder (+ LoRA adapter), chat template applied";

export const flags = {
  model: {
    type: "string",
    arg: "DIR",
    help: "Hugging Face model folder, or a PEFT adapter folder whose\nbase_model_name_or_path is a model folder",
  },
  adapter: { type: "string", arg: "DIR", help: "LoRA adapter (PEFT layout) to apply" },
  prompt: { type: "string", arg: "TEXT", help: "the user message ('-' reads it from stdin)" },
  system: { type: "string", arg: "TEXT", help: "a system message before it" },
  raw: { type: "boolean", help: "encode the prompt as-is, without the chat template" },
  "max-new-tokens": { type: "string", arg: "N", help: "default 128" },
  temperature: { type: "string", arg: "T", help: "0 = greedy (default 1)" },
  "top-p": { type: "string", arg: "P", help: "nucleus sampling (default 1)" },
  "top-k": { type: "string", arg: "K", help: "sample among the K most likely tokens (default all)" },
  stop: { type: "string", multiple: true, arg: "TEXT", help: "stop string (repeatable)" },
  seed: { type: "string", arg: "S", help: "default 0; the same seed gives the same text" },
  samples: { type: "string", arg: "N", help: "completions to sample (default 1)" },
  json: {
    type: "boolean",
    help: "print one JSON line: each completion's tokens with logprobs and top alternatives",
  },
  "top-logprobs": { type: "string", arg: "K", help: "alternatives per token in --json (default 5)" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({ usage: ["emlab generate --model DIR --prompt TEXT [options]"], flags });

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseOptions(argv, flags, false, { n: "samples" });
  if (v.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (!v.model) throw new CliError(`--model is required\n\n${HELP}`, EXIT.usage);
  if (v.prompt === undefined) throw new CliError(`--prompt is required\n\n${HELP}`, EXIT.usage);
  const s = samplingOptions(v);
  const prompt = v.prompt === "-" ? readFileSync(0, "utf8") : v.prompt;
  try {
    const { modelDir, adapterDir } = resolveDirs(v.model, v.adapter);
    const tok = Tokenizer.fromDir(modelDir);
    const model = loadModel(modelDir);
    if (adapterDir) loadLora(model, adapterDir);
    const { ids, rendered } = encodePrompt(tok, prompt, v);
    const outs = generate(
      model,
      Array.from({ length: s.samples }, () => ids),
      {
        maxNewTokens: s.maxNewTokens,
        temperature: s.temperature,
        topP: s.topP,
        topK: s.topK || undefined,
        seed: s.seed,
        eosTokenIds: [...new Set([...tok.eosIds, ...model.config.eosTokenIds])],
        stopStrings: v.stop,
        decode: (t) => tok.decode(t, { skipSpecialTokens: true }),
        logprobs: Boolean(v.json),
        topLogprobs: v.json ? s.topLogprobs : 0,
        padId: tok.padId ?? 0,
      },
    );
    if (v.json) printJson(completionsJson(tok, outs, { model: modelDir, adapter: adapterDir, rendered, ids }));
    else if (outs.length === 1) console.log(outs[0]!.text ?? "");
    else
      for (const [i, g] of outs.entries()) console.log(`--- sample ${i + 1} (${g.finishReason}) ---\n${g.text ?? ""}`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CheckpointError || err instanceof TokenizerError) throw new CliError(err.message);
    if (err instanceof ChatTemplateError) throw new CliError(`${err.message} (use --raw to skip the chat template)`);
    if (err instanceof Error && /adapter_config\.json|adapter_model\.safetensors/.test(err.message)) {
      throw new CliError(err.message);
    }
    throw err;
  }
}

/** The sampling flags, checked. */
function samplingOptions(v: Values) {
  const int = (name: keyof typeof flags, fallback: number, min: number): number =>
    intOption(name, v[name] as string | undefined, fallback, min);
  const temperature = numberOption("temperature", v.temperature, 1);
  const topP = numberOption("top-p", v["top-p"], 1);
  if (temperature < 0) throw new CliError("--temperature must be ≥ 0", EXIT.usage);
  if (!(topP > 0 && topP <= 1)) throw new CliError("--top-p must be in (0, 1]", EXIT.usage);
  return {
    maxNewTokens: int("max-new-tokens", 128, 1),
    samples: int("samples", 1, 1),
    topK: int("top-k", 0, 0),
    seed: int("seed", 0, 0),
    topLogprobs: int("top-logprobs", 5, 0),
    temperature,
    topP,
  };
}

/** The prompt's token ids: through the chat template (with --system), or as-is with --raw. */
function encodePrompt(tok: Tokenizer, prompt: string, v: Values): { ids: number[]; rendered: string } {
  let ids: number[];
  let rendered: string;
  if (v.raw) {
    rendered = v.system ? `${v.system}\n${prompt}` : prompt;
    ids = tok.encode(rendered);
  } else {
    const messages: ChatMessage[] = [];
    if (v.system !== undefined) messages.push({ role: "system", content: v.system });
    messages.push({ role: "user", content: prompt });
    rendered = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    ids = tok.encode(rendered, { addSpecialTokens: false });
  }
  if (ids.length === 0) throw new CliError("the prompt encodes to no tokens", EXIT.usage);
  return { ids, rendered };
}

/** --json's document: each completion's text and tokens with logprobs and top alternatives. */
function completionsJson(
  tok: Tokenizer,
  outs: ReturnType<typeof generate>,
  o: { model: string; adapter: string | undefined; rendered: string; ids: number[] },
) {
  const piece = (id: number) => tok.decode([id]);
  return {
    model: o.model,
    adapter: o.adapter ?? null,
    prompt: o.rendered,
    prompt_tokens: o.ids.length,
    completions: outs.map((g) => ({
      text: g.text ?? "",
      finish_reason: g.finishReason,
      tokens: g.logprobs.map((lp) => ({
        id: lp.token,
        text: piece(lp.token),
        logprob: lp.logprob,
        top: lp.top.map((t) => ({ id: t.token, text: piece(t.token), logprob: t.logprob })),
      })),
    })),
  };
}

/** --model may name an adapter folder; its adapter_config.json then says where the base model is. */
function resolveDirs(model: string, adapter: string | undefined): { modelDir: string; adapterDir?: string } {
  if (!existsSync(model)) throw new CliError(`${model}: model folder not found`);
  const adapterCfg = join(model, "adapter_config.json");
  if (!existsSync(join(model, "config.json")) && existsSync(adapterCfg)) {
    if (adapter)
      throw new CliError(
        `${model} is an adapter folder; pass its base model as --model with --adapter ${model}`,
        EXIT.usage,
      );
    const base = (JSON.parse(readFileSync(adapterCfg, "utf8")) as { base_model_name_or_path?: string })
      .base_model_name_or_path;
    if (!base || !existsSync(join(base, "config.json"))) {
      throw new CliError(
        `${adapterCfg}: base_model_name_or_path '${base ?? ""}' is not a local model folder; pass --model BASE --adapter ${model}`,
      );
    }
    return { modelDir: base, adapterDir: model };
  }
  if (adapter && !existsSync(join(adapter, "adapter_config.json"))) {
    throw new CliError(
      `${join(adapter, "adapter_config.json")}: file not found (--adapter must be a PEFT adapter folder)`,
    );
  }
  return { modelDir: model, adapterDir: adapter };
}
