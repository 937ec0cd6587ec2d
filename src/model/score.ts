/**
 * Scoring: the log-likelihood of given completions, and the language-model loss over a
 * masked batch (what SFT and evaluation of perplexity use).
 *
 * @example
 *   const { total, perToken } = completionLogprobs(model, promptIds, completionIds);
 */
import { noGrad, ops, type Tensor } from "../tensor/index.ts";
import type { CausalLM, ForwardOptions } from "./model.ts";

/**
 * Mean next-token cross-entropy of ids [B·T] where `targets[i]` is the token to predict at
 * position i (−100 = ignored): a Tensor with gradient when grad mode is on.
 */
export function lmLoss(
  model: CausalLM,
  ids: Int32Array,
  targets: Int32Array,
  B: number,
  T: number,
  opts: ForwardOptions = {},
): Tensor {
  return ops.crossEntropy(model.forward(ids, B, T, opts), targets);
}

/** Shifts a [B, T] id/mask pair into next-token targets: target[t] = ids[t+1] where mask[t+1]. */
export function nextTokenTargets(ids: Int32Array, lossMask: Uint8Array, B: number, T: number): Int32Array {
  const targets = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++)
    for (let t = 0; t + 1 < T; t++) if (lossMask[b * T + t + 1]) targets[b * T + t] = ids[b * T + t + 1]!;
  return targets;
}

/** Log-probability of `completion` after `prompt`: the total and each token's. */
export function completionLogprobs(
  model: CausalLM,
  prompt: readonly number[],
  completion: readonly number[],
): { total: number; perToken: number[] } {
  if (prompt.length === 0) throw new Error("completionLogprobs: the prompt needs at least one token (e.g. BOS)");
  const all = Int32Array.from([...prompt, ...completion]);
  const T = all.length;
  const targets = new Int32Array(T).fill(-100);
  for (let i = 0; i < completion.length; i++) targets[prompt.length - 1 + i] = completion[i]!;
  const losses = noGrad(() => ops.crossEntropy(model.forward(all, 1, T), targets, { reduction: "none" }));
  const perToken = completion.map((_, i) => -losses.data[prompt.length - 1 + i]!);
  return { total: perToken.reduce((s, x) => s + x, 0), perToken };
}
