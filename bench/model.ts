/**
 * forward_qwen05b: tokens/s of a no-grad forward with full logits [4, 128, 151936] through a
 * randomly initialised model with Qwen2.5-0.5B's shapes (hidden 896, 24 layers, 14 heads,
 * 2 KV heads, MLP 4864, vocab 151936, q/k/v biases, tied embeddings, float32).
 * decode_qwen05b: new tokens/s of greedy batched decoding with the KV cache (batch 16,
 * prompt 32, 32 new tokens): B·N / (prefill + N−1 cached steps), as the peer counts it.
 * Both are the peer's shapes and settings (../shared/bench/torch_peer.py).
 * forward_qwen05b_bf16 / decode_qwen05b_bf16: the same with the model's dtype "bf16" (bf16
 * products with fp32 sums; each weight packed to bf16 once, on the warm-up run, then
 * reused), against the peer's model in torch.bfloat16.
 */
import { llamaConfigJson, parseConfig } from "../src/model/config.ts";
import { generate } from "../src/model/generate.ts";
import { CausalLM } from "../src/model/model.ts";
import { expectedParams } from "../src/model/params.ts";
import { type ComputeDtype, noGrad, Rng, Tensor } from "../src/tensor/index.ts";
import type { Bench } from "./harness.ts";

const QWEN05B = parseConfig(
  llamaConfigJson({
    arch: "qwen2",
    vocab: 151936,
    hidden: 896,
    layers: 24,
    heads: 14,
    kvHeads: 2,
    inter: 4864,
    ropeTheta: 1e6,
    eps: 1e-6,
    maxPositions: 4096,
    tieEmbeddings: true,
  }),
);

let model: CausalLM | undefined;

/** Uniform(±0.035) ≈ std 0.02 weights, filled fast (0.5 B parameters). */
function qwenModel(dtype: ComputeDtype): CausalLM {
  if (model) return model.setDtype(dtype);
  const rng = new Rng(0);
  const params = new Map<string, Tensor>();
  for (const [name, shape] of expectedParams(QWEN05B)) {
    const t = name.endsWith("norm.weight")
      ? Tensor.ones(shape)
      : name.endsWith(".bias")
        ? Tensor.zeros(shape)
        : Tensor.uniform(shape, -0.035, 0.035, { rng });
    params.set(name, t);
  }
  model = new CausalLM(QWEN05B, params, { dtype });
  return model;
}

function randomIds(n: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(QWEN05B.vocab));
}

function forwardBench(name: string, dtype: ComputeDtype): Bench {
  return {
    name,
    unit: "tokens/s",
    run() {
      const m = qwenModel(dtype);
      const B = 4;
      const T = 128;
      const ids = randomIds(B * T, 1);
      noGrad(() => m.forward(ids, B, T)); // warm-up
      const t0 = performance.now();
      noGrad(() => m.forward(ids, B, T));
      return (B * T) / ((performance.now() - t0) / 1000);
    },
  };
}

function decodeBench(name: string, dtype: ComputeDtype): Bench {
  return {
    name,
    unit: "new_tokens/s",
    run() {
      const m = qwenModel(dtype);
      const B = 16;
      const P = 32;
      const N = 32;
      const ids = randomIds(B * P, 2);
      const prompts = Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * P, (b + 1) * P)));
      generate(m, prompts, { maxNewTokens: 4, temperature: 0, eosTokenIds: [], logprobs: false }); // warm-up
      const t0 = performance.now();
      const out = generate(m, prompts, { maxNewTokens: N, temperature: 0, eosTokenIds: [], logprobs: false });
      const seconds = (performance.now() - t0) / 1000;
      if (out.some((g) => g.tokens.length !== N)) throw new Error(`${name}: a sequence stopped early`);
      return (B * N) / seconds;
    },
  };
}

export const benches: Bench[] = [
  forwardBench("forward_qwen05b", "fp32"),
  decodeBench("decode_qwen05b", "fp32"),
  forwardBench("forward_qwen05b_bf16", "bf16"),
  decodeBench("decode_qwen05b_bf16", "bf16"),
];
