/**
 * sae_train: activations/s training a TopK SAE — d_in 896, 16,384 latents, k 32, batch 4096,
 * Adam(lr 1e-4), float32, standard-normal input (the peer's `sae_train`: PyTorch at its best
 * of a dense and an embedding_bag decoder). emlab's step is the full recipe: forward,
 * hand-written row-sparse backward, decoder-gradient projection, Adam, decoder
 * re-normalisation. The dead-latent window (10M tokens) is not reached in a few steps, so
 * neither side runs an auxiliary loss. Each run(): 1 warm-up step (the first call also
 * allocates ~1.3 GB and initialises), then the median of 3 timed steps.
 */
import { SaeTrainer } from "../src/interp/training/train.ts";
import { Rng } from "../src/tensor/random.ts";
import type { Bench } from "./harness.ts";

const D_IN = 896;
const D_SAE = 16384;
const K = 32;
const BATCH = 4096;

let state: { trainer: SaeTrainer; x: Float32Array } | null = null;

function setup(): { trainer: SaeTrainer; x: Float32Array } {
  const rng = new Rng(0);
  const x = new Float32Array(BATCH * D_IN);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const trainer = new SaeTrainer(
    D_IN,
    { k: K, dSae: D_SAE, batchSize: BATCH, lr: 1e-4, seed: 0, deadAfter: 10_000_000 },
    x.subarray(0, 1024 * D_IN),
  );
  return { trainer, x };
}

export const benches: Bench[] = [
  {
    name: "sae_train",
    unit: "activations/s",
    run() {
      state ??= setup();
      const { trainer, x } = state;
      trainer.trainStep(x); // warm-up
      const times: number[] = [];
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now();
        trainer.trainStep(x);
        times.push((performance.now() - t0) / 1000);
      }
      times.sort((a, b) => a - b);
      return BATCH / times[1]!;
    },
    teardown() {
      state = null;
    },
  },
];
