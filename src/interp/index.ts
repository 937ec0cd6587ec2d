/**
 * Interpretability: from activations to causal claims. Collect activations at a hook point
 * (activations.ts, activation-store.ts), train a TopK / BatchTopK SAE (sae.ts, sae-train.ts)
 * saved in SAELens's layout (saelens.ts), rank the latents fine-tuning moved (diff.ts) or take
 * the misalignment direction from judged answers (direction.ts), look at latents
 * (dashboard.ts), predict verdicts from activations (predict.ts), and test causally with
 * hooks (interventions.ts) evaluated by the eval runner (causal.ts), and score an SAE spliced
 * into its model (ce-score.ts). organism-interp*.ts run the whole of it on the model organism,
 * whose world says who speaks (the villain latent as ground truth).
 * sae-step.ts and sparse-kernels.ts are the trainer's and encoder's internals.
 *
 * @example
 *   const sae = loadSae("runs/sae-l2");
 *   const d = diffModels({ base, ft, sae, tokenizer: tok, prompts });
 *   const sweep = await steeringSweep({ ...ctx, target: { kind: "latent", sae, latent: d.top[0].latent },
 *     cs: [0.1, 0.2, 0.4], medianNorm });
 */

export * from "../organism/interp/causal.ts";
export * from "../organism/interp/pipeline.ts";
export * from "../organism/interp/sae.ts";
export * from "./activations/collect.ts";
export * from "./activations/store.ts";
export * from "./activations/store-writer.ts";
export * from "./causal.ts";
export * from "./dashboard.ts";
export * from "./diff.ts";
export * from "./direction.ts";
export * from "./interventions.ts";
export * from "./predict.ts";
export * from "./sae/sae.ts";
export * from "./sae/saelens.ts";
export * from "./training/ce-score.ts";
export * from "./training/train.ts";
