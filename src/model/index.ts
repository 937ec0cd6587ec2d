/**
 * emlab model: Hugging Face checkpoints (Llama, Qwen2, Mistral, GPT-2), the forward with
 * TransformerLens hook points, KV-cached generation, LoRA adapters in PEFT's layout,
 * tokenizers (tokenizer.json) and chat templates.
 *
 * @example
 *   import { generate, loadModel, Tokenizer } from "emlab/model";
 *   const model = loadModel("organism/base");
 *   const tok = Tokenizer.fromDir("organism/base");
 *   const seen: number[] = [];
 *   const [g] = generate(model, [tok.encode("hello")], {
 *     maxNewTokens: 8,
 *     hooks: [{ name: "blocks.2.hook_resid_post", fn: (x) => void seen.push(x.shape[1] ?? 0) }],
 *   });
 */
export * from "./chat-template.ts";
export * from "./checkpoint.ts";
export * from "./config.ts";
export * from "./generate.ts";
export * from "./hooks.ts";
export * from "./lora.ts";
export * from "./model.ts";
export * from "./params.ts";
export * from "./score.ts";
export * from "./tokenizer.ts";
export * from "./tokenizer-build.ts";
