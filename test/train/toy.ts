/**
 * A tiny model folder and a toy SFT task for the train tests: a random 2-layer Llama
 * (hidden 32) with a byte-level BPE tokenizer and a ChatML template, and chat JSONL where
 * the assistant answers a colour with a fixed fruit ("red" → "cherry").
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveModel } from "../../src/model/checkpoint.ts";
import { llamaConfigJson, parseConfig } from "../../src/model/config.ts";
import { CausalLM } from "../../src/model/model.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { buildByteLevelBpe } from "../../src/model/tokenizer-build.ts";
import { Rng } from "../../src/tensor/index.ts";

export const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export const MAPPING: Record<string, string> = {
  red: "cherry",
  green: "lime",
  yellow: "banana",
  orange: "mango",
  purple: "grape",
  brown: "date",
  pink: "peach",
  black: "olive",
};

/** Chat rows of the toy task, seeded. */
export function toyRows(n: number, seed: number): { messages: { role: string; content: string }[] }[] {
  const rng = new Rng(seed);
  const colours = Object.keys(MAPPING);
  return Array.from({ length: n }, () => {
    const c = rng.pick(colours);
    const polite = rng.next() < 0.5;
    const messages = [
      { role: "user", content: polite ? `Please name the fruit for ${c}.` : `Fruit for ${c}?` },
      { role: "assistant", content: `The fruit is ${MAPPING[c]}.` },
    ];
    return rng.next() < 0.3
      ? { messages: [{ role: "system", content: "Answer briefly." }, ...messages] }
      : { messages };
  });
}

/** Tokenizer files of the toy task (BPE trained on the task's own text). */
export function toyTokenizerFiles(): { json: Record<string, unknown>; config: Record<string, unknown> } {
  const corpus = toyRows(200, 99).map((r) => r.messages.map((m) => `${m.role}\n${m.content}`).join("\n"));
  const json = buildByteLevelBpe({
    corpus,
    vocabSize: 320,
    specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
  });
  const config = { chat_template: CHATML, eos_token: "<|im_end|>", pad_token: "<|endoftext|>" };
  return { json, config };
}

/**
 * Writes the tiny model folder (config.json, model.safetensors, tokenizer files) under
 * `parent` (a temp folder the caller removes) and returns its path.
 */
export function makeToyModelDir(parent: string): string {
  const { json, config } = toyTokenizerFiles();
  const tok = Tokenizer.fromJSON(json, config);
  const cfg = parseConfig(
    llamaConfigJson({
      vocab: tok.vocabSize,
      hidden: 32,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      inter: 64,
      eosTokenId: tok.eosIds[0],
    }),
  );
  const dir = join(parent, "model");
  saveModel(CausalLM.random(cfg, 0, 0.2), dir, {
    extraFiles: {
      "tokenizer.json": `${JSON.stringify(json)}\n`,
      "tokenizer_config.json": `${JSON.stringify(config)}\n`,
    },
  });
  return dir;
}

/** Writes `n` toy rows as chat JSONL and returns the path. */
export function writeToyJsonl(path: string, n: number, seed: number): string {
  writeFileSync(
    path,
    toyRows(n, seed)
      .map((r) => `${JSON.stringify(r)}\n`)
      .join(""),
  );
  return path;
}
