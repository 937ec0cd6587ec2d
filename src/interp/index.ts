/**
 * Interpretability: from activations to causal claims. Collect activations at a hook point
 * (activations/), train a TopK / BatchTopK SAE (sae/, training/) saved in SAELens's layout
 * (sae/saelens.ts), rank the latents fine-tuning moved (diff.ts) or take the misalignment
 * direction from judged answers (direction.ts), look at latents (dashboard.ts), predict
 * verdicts from activations (predict.ts), test causally with hooks (interventions.ts)
 * evaluated by the eval runner (causal.ts), pick latents blind and measure them beside
 * equal-search controls (blind.ts), and score an SAE spliced into its model
 * (training/ce-score.ts). The organism's own pipelines live in emlab/organism.
 *
 * @example
 *   const sae = loadSae("runs/sae-l2");
 *   const d = diffModels({ base, ft, sae, tokenizer: tok, prompts });
 *   const sweep = await steeringSweep({ ...ctx, target: { kind: "latent", sae, latent: d.top[0].latent },
 *     cs: [0.1, 0.2, 0.4], medianNorm });
 */

export * from "./activations/collect.ts";
export * from "./activations/store.ts";
export * from "./activations/store-writer.ts";
export * from "./blind.ts";
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
