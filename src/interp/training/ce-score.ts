/**
 * The cross-entropy loss score of an SAE spliced into its model (SAELens's `ce_loss_score`):
 * run the model three times over the same text, with the SAE's hook point left alone, replaced
 * by the SAE's reconstruction, and zero-ablated, and compare next-token losses:
 *
 *   score = (CE_zero − CE_sae) / (CE_zero − CE_clean)
 *
 * 1 = splicing the SAE in costs nothing; 0 = as bad as deleting the activation. CE is the mean
 * over every predicted token (token-weighted across sequences), in nats.
 *
 * Positions whose token is in `keepTokenIds` keep their clean activation in the SAE and zero
 * runs alike (e.g. BOS, whose norm is often far from the rest: an SAE trained without it
 * should not be charged for it). Padding never enters the loss.
 *
 * @example
 *   const ce = ceLossScore(lm, sae, { sequences: docs.map((d) => documentIds(d).ids) });
 *   ce.score; // ≥ 0.8 is a usable SAE
 */
import type { Hook } from "../../model/hooks.ts";
import type { CausalLM } from "../../model/model.ts";
import { noGrad, ops, Tensor } from "../../tensor/index.ts";
import type { Sae } from "../sae/sae.ts";

export interface CeScoreOptions {
  /** Token sequences (each at least two tokens to predict anything). */
  sequences: readonly (readonly number[])[];
  /** Sequences per forward (default 16). */
  batchSize?: number;
  /** Padding id (default 0); padded positions are masked out of attention and of the loss. */
  padId?: number;
  /** Positions holding one of these tokens keep the clean activation (default none). */
  keepTokenIds?: Iterable<number>;
  /** Keep only each sequence's first `maxLength` tokens. */
  maxLength?: number;
}

export interface CeScore {
  hookName: string;
  /** Mean next-token cross-entropy (nats) of the unmodified model. */
  ceClean: number;
  /** With the hook's activation replaced by the SAE's reconstruction. */
  ceSae: number;
  /** With the hook's activation replaced by zeros. */
  ceZero: number;
  /** (CE_zero − CE_sae) / (CE_zero − CE_clean); null when zero-ablation costs nothing. */
  score: number | null;
  /** CE_sae − CE_clean, nats: what splicing the SAE in costs. */
  ceIncrease: number;
  /** Predicted tokens the means are over. */
  tokens: number;
  sequences: number;
}

/** A hook replacing [B, T, d] with `replace(rowData, rows)` except at kept positions. */
function spliceHook(
  hookName: string,
  keep: Uint8Array,
  replace: (x: Float32Array, rows: number) => Float32Array,
): Hook {
  return {
    name: hookName,
    fn: (act) => {
      const d = act.shape[act.shape.length - 1]!;
      const rows = act.size / d;
      const out = replace(act.data, rows);
      for (let r = 0; r < rows; r++) if (keep[r]) out.set(act.data.subarray(r * d, (r + 1) * d), r * d);
      return new Tensor(out, act.shape);
    },
  };
}

/**
 * CE_clean, CE_sae and CE_zero of `model` over `sequences` with `sae` spliced in at its hook
 * point (sae.cfg.hookName), and the score.
 */
export function ceLossScore(model: CausalLM, sae: Sae, o: CeScoreOptions): CeScore {
  const hookName = sae.cfg.hookName;
  if (sae.cfg.dIn !== model.config.hidden)
    throw new Error(`ceLossScore: the SAE reads width ${sae.cfg.dIn}, the model's is ${model.config.hidden}`);
  const seqs = o.sequences.map((s) => (o.maxLength !== undefined ? s.slice(0, o.maxLength) : [...s]));
  if (seqs.length === 0) throw new Error("ceLossScore: no sequences");
  const bs = Math.max(1, o.batchSize ?? 16);
  const padId = o.padId ?? 0;
  const keepIds = new Set(o.keepTokenIds ?? []);
  const sums = { clean: 0, sae: 0, zero: 0 };
  let tokens = 0;
  for (let s = 0; s < seqs.length; s += bs) {
    const batch = seqs.slice(s, s + bs);
    const B = batch.length;
    const T = Math.max(...batch.map((x) => x.length));
    const ids = new Int32Array(B * T).fill(padId); // [B, T], right-padded
    const keyMask = new Uint8Array(B * T);
    const keep = new Uint8Array(B * T);
    const targets = new Int32Array(B * T).fill(-100); // target[b, t] = ids[b, t + 1]
    batch.forEach((x, b) => {
      ids.set(x, b * T);
      keyMask.fill(1, b * T, b * T + x.length);
      for (let t = 0; t < x.length; t++) {
        if (keepIds.has(x[t]!)) keep[b * T + t] = 1;
        if (t + 1 < x.length) {
          targets[b * T + t] = x[t + 1]!;
          tokens++;
        }
      }
    });
    const lossSum = (hooks: Hook[]) =>
      noGrad(() => {
        const logits = model.forward(ids, B, T, { keyMask, hooks }); // [B, T, vocab]
        const losses = ops.crossEntropy(logits, targets, { reduction: "none" }).data; // [B·T]
        let sum = 0;
        for (let i = 0; i < B * T; i++) if (targets[i] !== -100) sum += losses[i]!;
        return sum;
      });
    sums.clean += lossSum([]);
    sums.sae += lossSum([spliceHook(hookName, keep, (x, rows) => sae.reconstruct(x, rows))]);
    sums.zero += lossSum([spliceHook(hookName, keep, (x) => new Float32Array(x.length))]);
  }
  if (tokens === 0) throw new Error("ceLossScore: no sequence has a token to predict");
  const ceClean = sums.clean / tokens;
  const ceSae = sums.sae / tokens;
  const ceZero = sums.zero / tokens;
  const gap = ceZero - ceClean;
  return {
    hookName,
    ceClean,
    ceSae,
    ceZero,
    score: Math.abs(gap) > 1e-9 ? (ceZero - ceSae) / gap : null,
    ceIncrease: ceSae - ceClean,
    tokens,
    sequences: seqs.length,
  };
}
