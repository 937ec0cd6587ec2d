/**
 * train_small: training tokens/s (forward + cross-entropy + backward + AdamW step) of the
 * peer's decoder — hidden 256, 4 layers, 8 heads (8 kv heads), SwiGLU MLP 1024, vocab 4096,
 * q/k/v biases, tied embeddings, rope θ 1e4 — at batch 32 × context 128, AdamW(lr 3e-4,
 * wd 0.1), float32, random token data (as the peer). Median step time after 2 warm-up steps.
 */
import { llamaConfigJson, type ModelConfig, parseConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/model.ts";
import { AdamW, backward, type ComputeDtype, ops, Rng } from "../src/tensor/index.ts";
import type { Bench } from "./harness.ts";

const CFG = parseConfig(
  llamaConfigJson({
    arch: "qwen2",
    vocab: 4096,
    hidden: 256,
    layers: 4,
    heads: 8,
    kvHeads: 8,
    inter: 1024,
    ropeTheta: 1e4,
    eps: 1e-6,
    tieEmbeddings: true,
  }),
);
const B = 32;
const T = 128;

/**
 * One language-model training step per call (forward, cross-entropy, backward, AdamW) on a
 * fixed batch of random tokens; returns the step's time and loss. Shared by train_small and
 * train_organism, so both sides of every bench step are the same loop.
 */
export function lmTrainStep(
  cfg: ModelConfig,
  o: { B: number; T: number; lr: number; weightDecay: number; dtype?: ComputeDtype },
): () => { seconds: number; loss: number } {
  const { B, T } = o;
  const model = CausalLM.random(cfg, 0);
  if (o.dtype) model.setDtype(o.dtype);
  const opt = new AdamW(model.trainableParams(), { lr: o.lr, weightDecay: o.weightDecay });
  const rng = new Rng(0);
  const data = Int32Array.from({ length: B * (T + 1) }, () => rng.int(cfg.vocab));
  const ids = new Int32Array(B * T); // [B, T]
  const targets = new Int32Array(B * T); // [B, T]: the next token
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = data[b * (T + 1) + t]!;
      targets[b * T + t] = data[b * (T + 1) + t + 1]!;
    }
  return () => {
    const t0 = performance.now();
    const loss = ops.crossEntropy(model.forward(ids, B, T), targets);
    opt.zeroGrad();
    backward(loss);
    opt.step();
    return { seconds: (performance.now() - t0) / 1000, loss: loss.item() };
  };
}

export function trainSmallStep(): () => { seconds: number; loss: number } {
  return lmTrainStep(CFG, { B, T, lr: 3e-4, weightDecay: 0.1 });
}

export const benches: Bench[] = [
  {
    name: "train_small",
    unit: "tokens/s",
    run() {
      const step = trainSmallStep();
      step();
      step();
      const times = [step().seconds, step().seconds, step().seconds].sort((a, b) => a - b);
      return (B * T) / times[1]!;
    },
  },
];
