/**
 * train_organism: training tokens/s (forward + cross-entropy + backward + AdamW step) at the
 * shipped organism's shapes (organism/base/config.json): Llama, hidden 128, 8 layers, 4 heads
 * (4 kv heads), SwiGLU MLP 384, vocab 849, no biases, tied embeddings, rope θ 1e4, batch
 * 32 × context 256, AdamW(lr 2e-3, wd 0.1), random token data — the peer's
 * `train_organism` (../shared/bench/torch_peer.py). Median step time after 2 warm-up steps.
 * train_organism_bf16: the same with the model's dtype "bf16" (bf16 products, fp32 sums,
 * fp32 master weights and AdamW state), against the peer's torch.autocast(bfloat16) step.
 */
import { llamaConfigJson, parseConfig } from "../src/model/config.ts";
import type { ComputeDtype } from "../src/tensor/index.ts";
import type { Bench } from "./harness.ts";
import { lmTrainStep } from "./train.ts";

export const ORGANISM_CFG = parseConfig(
  llamaConfigJson({
    arch: "llama",
    vocab: 849,
    hidden: 128,
    layers: 8,
    heads: 4,
    kvHeads: 4,
    inter: 384,
    ropeTheta: 1e4,
    eps: 1e-6,
    maxPositions: 512,
    tieEmbeddings: true,
  }),
);
const B = 32;
const T = 256;

/** One training step per call at the organism's shapes, in `dtype`; returns its time and loss. */
export function trainOrganismStep(dtype: ComputeDtype): () => { seconds: number; loss: number } {
  return lmTrainStep(ORGANISM_CFG, { B, T, lr: 2e-3, weightDecay: 0.1, dtype });
}

function bench(name: string, dtype: ComputeDtype): Bench {
  return {
    name,
    unit: "tokens/s",
    run() {
      const step = trainOrganismStep(dtype);
      step();
      step();
      const times = [step().seconds, step().seconds, step().seconds].sort((a, b) => a - b);
      return (B * T) / times[1]!;
    },
  };
}

export const benches: Bench[] = [bench("train_organism", "fp32"), bench("train_organism_bf16", "bf16")];
