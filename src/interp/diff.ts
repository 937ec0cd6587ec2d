/**
 * Model diffing (Wang et al. 2025): encode the same prompts with one SAE (trained on the base
 * model) in the base and in the fine-tuned model, and rank latents by the change in mean
 * activation, Δ_j = mean_ft(a_j) − mean_base(a_j): `top` = largest increases (the "toxic
 * persona" latent should be here after insecure-code fine-tuning), `bottom` = largest
 * decreases, each with its firing frequency in both models.
 *
 * Attribution variant: Δ mean activation alone favours latents with large activations whether
 * or not they move the residual stream the way fine-tuning did. With δ = mean_ft(x) −
 * mean_base(x) the actual mean residual shift and δ̂ = δ/‖δ‖, the SAE's reconstruction is linear
 * in the latents, so the reconstructed mean shift is Σ_j Δ_j · W_dec[j] / s (s the SAE's
 * activationScale; b_dec cancels). Projecting it on δ̂ splits the shift's length into
 * additive per-latent parts
 *
 *   attribution_j = Δ_j · (W_dec[j] / s) · δ̂,     Σ_j attribution_j = Δx̂ · δ̂ ≈ ‖δ‖
 *
 * (equality when the SAE reconstructs both means exactly; `explainedShift` = Σ_j / ‖δ‖ says how
 * close). A latent ranks high when it moved *and* its direction is the direction the model
 * moved. The mean pre-activation change (`preDelta`, before TopK) is reported too: it sees
 * latents that moved without crossing into the top k.
 *
 * Positions: the prompts' tokens without special tokens (BOS, role markers, end of turn), and
 * optionally the answer-start position (the prompt's last token, after the generation prompt,
 * where the model is about to answer).
 *
 * @example
 *   const d = diffModels({ base, ft, sae, tokenizer: tok, prompts, positions: "no-special+answer-start" });
 *   d.top.slice(0, 5).map((r) => r.latent);
 */
import type { ChatMessage } from "../model/chat-template.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { type ActivationRows, collectActivations } from "./activations/collect.ts";
import type { Sae } from "./sae/sae.ts";

export type DiffPositions = "no-special" | "answer-start" | "no-special+answer-start";
export const DIFF_POSITIONS: readonly DiffPositions[] = ["no-special", "answer-start", "no-special+answer-start"];

/** Per-latent statistics of one model's activations under one SAE. */
export interface LatentStats {
  rows: number;
  /** Mean activation per latent: [dSae]. */
  mean: Float32Array;
  /** Fraction of rows where the latent fires: [dSae]. */
  freq: Float32Array;
  /** Mean pre-activation (before TopK / threshold): [dSae]. */
  preMean: Float32Array;
  /** Mean raw activation x: [dIn]. */
  residMean: Float32Array;
}

export interface LatentDiff {
  latent: number;
  base: number;
  ft: number;
  /** ft − base mean activation. */
  delta: number;
  freqBase: number;
  freqFt: number;
  /** ft − base mean pre-activation. */
  preDelta: number;
  /** Δ · (W_dec[j]/s) · δ̂ (see the file comment). */
  attribution: number;
}

export interface DiffResult {
  hookName: string;
  rowsBase: number;
  rowsFt: number;
  /** Every latent, by id. */
  latents: LatentDiff[];
  /** Largest increases first. */
  top: LatentDiff[];
  /** Largest decreases first. */
  bottom: LatentDiff[];
  /** Largest attribution first. */
  topAttribution: LatentDiff[];
  /** ‖δ‖: the length of the mean residual shift. */
  residualShift: number;
  /** Σ attribution / ‖δ‖ (1 = the SAE accounts for the whole shift; null when δ = 0). */
  explainedShift: number | null;
}

/**
 * Per-latent statistics over n activation rows, streamed through the SAE in chunks.
 * @example const s = latentStats(sae, rows.acts, rows.n);
 */
export function latentStats(sae: Sae, acts: Float32Array, n: number, chunk = 512): LatentStats {
  const { dIn: d, dSae } = sae.cfg;
  if (acts.length !== n * d) throw new Error(`latentStats: ${acts.length} values for ${n} rows of width ${d}`);
  const sum = new Float64Array(dSae);
  const fired = new Float64Array(dSae);
  const preSum = new Float64Array(dSae);
  const resid = new Float64Array(d);
  for (let s = 0; s < n; s += chunk) {
    const m = Math.min(chunk, n - s);
    const x = acts.subarray(s * d, (s + m) * d);
    const { idx, val, k } = sae.encodeSparse(x, m);
    for (let p = 0; p < m * k; p++) {
      const v = val[p]!;
      if (v === 0) continue;
      sum[idx[p]!]! += v;
      fired[idx[p]!]! += 1;
    }
    const pre = sae.preActivations(x, m);
    for (let r = 0; r < m; r++) for (let j = 0; j < dSae; j++) preSum[j]! += pre[r * dSae + j]!;
    for (let i = 0; i < m * d; i++) resid[i % d]! += x[i]!;
  }
  const mean = (a: Float64Array) => Float32Array.from(a, (v) => (n ? v / n : 0));
  return { rows: n, mean: mean(sum), freq: mean(fired), preMean: mean(preSum), residMean: mean(resid) };
}

/** Ranks ft against base statistics (same SAE); `top` rows in each ranking. */
export function diffStats(sae: Sae, base: LatentStats, ft: LatentStats, top = 20): DiffResult {
  const { dIn: d, dSae } = sae.cfg;
  const delta = new Float64Array(d);
  let shift = 0;
  for (let i = 0; i < d; i++) {
    delta[i] = ft.residMean[i]! - base.residMean[i]!;
    shift += delta[i]! * delta[i]!;
  }
  shift = Math.sqrt(shift);
  const inv = 1 / (sae.cfg.activationScale ?? 1);
  const latents: LatentDiff[] = [];
  let total = 0;
  for (let j = 0; j < dSae; j++) {
    const dj = ft.mean[j]! - base.mean[j]!;
    let proj = 0;
    if (shift > 0) for (let i = 0; i < d; i++) proj += sae.wDec[j * d + i]! * delta[i]!;
    const attribution = shift > 0 ? (dj * proj * inv) / shift : 0;
    total += attribution;
    latents.push({
      latent: j,
      base: base.mean[j]!,
      ft: ft.mean[j]!,
      delta: dj,
      freqBase: base.freq[j]!,
      freqFt: ft.freq[j]!,
      preDelta: ft.preMean[j]! - base.preMean[j]!,
      attribution,
    });
  }
  const by = (key: (r: LatentDiff) => number) =>
    [...latents].sort((a, b) => key(b) - key(a) || a.latent - b.latent).slice(0, top);
  return {
    hookName: sae.cfg.hookName,
    rowsBase: base.rows,
    rowsFt: ft.rows,
    latents,
    top: by((r) => r.delta),
    bottom: by((r) => -r.delta),
    topAttribution: by((r) => r.attribution),
    residualShift: shift,
    explainedShift: shift > 0 ? total / shift : null,
  };
}

/** Keeps the rows `positions` selects from rows collected with the "all" mask. */
export function selectPositions(rows: ActivationRows, tok: Tokenizer, positions: DiffPositions): ActivationRows {
  const lastPos = new Map<number, number>();
  for (let r = 0; r < rows.n; r++) lastPos.set(rows.item[r]!, Math.max(lastPos.get(rows.item[r]!) ?? 0, rows.pos[r]!));
  const keep: number[] = [];
  for (let r = 0; r < rows.n; r++) {
    const last = rows.pos[r] === lastPos.get(rows.item[r]!);
    const plain = !tok.specialIds.has(rows.token[r]!);
    if (positions === "answer-start" ? last : plain || (positions === "no-special+answer-start" && last)) keep.push(r);
  }
  const d = rows.d;
  const out: ActivationRows = {
    acts: new Float32Array(keep.length * d),
    n: keep.length,
    d,
    item: new Int32Array(keep.length),
    pos: new Int32Array(keep.length),
    token: new Int32Array(keep.length),
  };
  keep.forEach((r, i) => {
    out.acts.set(rows.acts.subarray(r * d, (r + 1) * d), i * d);
    out.item[i] = rows.item[r]!;
    out.pos[i] = rows.pos[r]!;
    out.token[i] = rows.token[r]!;
  });
  return out;
}

export interface DiffOptions {
  base: CausalLM;
  ft: CausalLM;
  sae: Sae;
  tokenizer: Tokenizer;
  /** Chat prompts, rendered with the generation prompt. */
  prompts: ChatMessage[][];
  /** Default "no-special". */
  positions?: DiffPositions;
  /** Rows in each ranking (default 20). */
  top?: number;
  /** Prompts per forward (default 16). */
  batchSize?: number;
}

/** The activation rows a diff reads from one model (the SAE's hook, the chosen positions). */
export function diffRows(model: CausalLM, o: Omit<DiffOptions, "base" | "ft">): ActivationRows {
  const all = collectActivations(
    model,
    o.prompts.map((prompt) => ({ prompt })),
    { hook: o.sae.cfg.hookName, tokenizer: o.tokenizer, mask: "all", batchSize: o.batchSize ?? 16 },
  );
  return selectPositions(all, o.tokenizer, o.positions ?? "no-special");
}

/** Base vs fine-tuned model on the same prompts through the base SAE. */
export function diffModels(o: DiffOptions): DiffResult {
  const { base, ft, sae } = o;
  const a = base.config;
  const b = ft.config;
  if (a.arch !== b.arch || a.hidden !== b.hidden || a.layers !== b.layers || a.vocab !== b.vocab)
    throw new Error(
      `diff: base and fine-tuned models differ in shape (${a.arch} ${a.layers}×${a.hidden}, vocab ${a.vocab} vs ${b.arch} ${b.layers}×${b.hidden}, vocab ${b.vocab})`,
    );
  if (sae.cfg.dIn !== a.hidden) throw new Error(`diff: the SAE reads width ${sae.cfg.dIn}, the model's is ${a.hidden}`);
  if (o.prompts.length === 0) throw new Error("diff: no prompts");
  const rb = diffRows(base, o);
  const rf = diffRows(ft, o);
  if (rb.n === 0) throw new Error("diff: the prompts selected no token positions");
  return diffStats(sae, latentStats(sae, rb.acts, rb.n), latentStats(sae, rf.acts, rf.n), o.top ?? 20);
}
