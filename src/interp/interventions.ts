/**
 * Interventions as hooks: steer (add α·û), project a direction out, zero- or mean-ablate SAE
 * latents, and the random controls (seeded unit directions, random latents) that every
 * causal claim is compared against. Each function returns a `Hook` (src/model/hooks.ts) for
 * one hook point; pass it to `model.forward`, `generate` or `localChatModelFrom({ hooks })`.
 * Hooks run at every position of every forward, so during KV-cached generation they act on
 * the prompt and on each generated token alike (Wang et al.'s "all positions").
 *
 * Arithmetic is per row of the [B, T, H] activation, in float64 for the dot products, and
 * exact where it should be: α = 0, a zero direction, or an ablation whose reference equals
 * the latent's own activation leave the activation bit-identical.
 *
 * @example
 *   const alpha = steeringAlpha(0.4, medianNorm);           // α = c × median residual norm
 *   const hooks = [latentSteerHook(sae, 10, alpha)];        // along latent 10's unit decoder row
 *   const steered = localChatModelFrom({ lm, tokenizer, id: "steered", hooks });
 */
import type { Hook } from "../model/hooks.ts";
import { Rng, Tensor } from "../tensor/index.ts";
import type { Sae } from "./sae/sae.ts";

/** α = c × the median residual norm at the hook (Wang et al. sweep c ≈ 0.05–0.75). */
export function steeringAlpha(c: number, medianResidualNorm: number): number {
  return c * medianResidualNorm;
}

/** ‖v‖₂ (float64 accumulation). */
export function vectorNorm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** v / ‖v‖ (a zero vector stays zero). */
export function unitVector(v: Float32Array): Float32Array {
  const n = vectorNorm(v);
  const out = new Float32Array(v.length);
  if (n === 0) return out;
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

function checkWidth(act: Tensor, d: number, what: string): number {
  const H = act.shape[act.shape.length - 1]!;
  if (H !== d) throw new Error(`${what}: the activation's width is ${H}, the vector's ${d}`);
  return act.size / H;
}

/**
 * Adds α·û at every position, û = direction / ‖direction‖ (a zero direction adds nothing).
 * @example model.forward(ids, 1, T, { hooks: [steerHook("blocks.2.hook_resid_post", dir, 3.5)] })
 */
export function steerHook(hookName: string, direction: Float32Array, alpha: number): Hook {
  const u = unitVector(direction);
  const d = u.length;
  const delta = new Float32Array(d);
  for (let i = 0; i < d; i++) delta[i] = alpha * u[i]!;
  return {
    name: hookName,
    fn: (act) => {
      const rows = checkWidth(act, d, `steer at ${hookName}`);
      const out = new Float32Array(act.data);
      for (let r = 0; r < rows; r++) {
        const o = r * d;
        for (let i = 0; i < d; i++) out[o + i] = out[o + i]! + delta[i]!;
      }
      return new Tensor(out, act.shape);
    },
  };
}

/** Steers along an SAE latent's unit decoder direction, at the SAE's hook point. */
export function latentSteerHook(sae: Sae, latent: number, alpha: number): Hook {
  checkLatent(sae, latent);
  return steerHook(sae.cfg.hookName, sae.decoderDirection(latent), alpha);
}

/**
 * Projects a direction out of every position: x' = x − (x·û)û, so x'·û = 0 up to rounding.
 * (Turner/Soligo: projecting the misalignment direction out removes most EM.)
 */
export function projectOutHook(hookName: string, direction: Float32Array): Hook {
  const u = unitVector(direction);
  const d = u.length;
  return {
    name: hookName,
    fn: (act) => {
      const rows = checkWidth(act, d, `project-out at ${hookName}`);
      const out = new Float32Array(act.data);
      for (let r = 0; r < rows; r++) {
        const o = r * d;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += out[o + i]! * u[i]!;
        for (let i = 0; i < d; i++) out[o + i] = out[o + i]! - dot * u[i]!;
      }
      return new Tensor(out, act.shape);
    },
  };
}

export type AblationMode = "zero" | "mean";

export interface AblateOptions {
  mode: AblationMode;
  /**
   * Reference activation per ablated latent for mean-ablation (the latent's mean over a
   * corpus: `latentMeans`), indexed like `latents`, or a dense [dSae] vector.
   */
  reference?: Float32Array;
}

/**
 * Ablates SAE latents while keeping the SAE's reconstruction error: at each position the
 * SAE encodes x (a = encode(x)), and for each ablated latent j
 *
 *   x' = x − (a_j − a_ref_j) · W_dec[j] / activationScale
 *
 * with a_ref = 0 (zero-ablation) or the latent's mean activation (mean-ablation). Only the
 * latent's own contribution to the reconstruction moves; x − x̂ (the error term) is untouched,
 * which is what "splice the SAE in, edit the latent" amounts to without the SAE's error.
 * W_dec[j] is the raw decoder row (SAELens decoders need not be unit-norm), and the SAE's
 * activationScale (training on normalised activations) maps it back to raw units.
 *
 * @example ablateLatentsHook(sae, [10], { mode: "mean", reference: latentMeans(sae, acts, n) })
 */
export function ablateLatentsHook(sae: Sae, latents: readonly number[], opts: AblateOptions): Hook {
  const { dIn: d, dSae } = sae.cfg;
  for (const j of latents) checkLatent(sae, j);
  if (new Set(latents).size !== latents.length) throw new Error(`ablate: latents repeat (${latents.join(", ")})`);
  const ref = new Float32Array(latents.length);
  if (opts.mode === "mean") {
    const r = opts.reference;
    if (!r) throw new Error("mean-ablation needs reference activations (latentMeans over a corpus)");
    if (r.length === dSae) for (const [i, j] of latents.entries()) ref[i] = r[j]!;
    else if (r.length === latents.length) ref.set(r);
    else throw new Error(`mean-ablation: ${r.length} reference values for ${latents.length} latents (d_sae ${dSae})`);
  }
  // Latent j contributes a_j · W_dec[j] / activationScale to the reconstruction in raw units.
  const inv = 1 / (sae.cfg.activationScale ?? 1);
  const wDec = sae.wDec;
  const slot = new Map(latents.map((j, i) => [j, i]));
  return {
    name: sae.cfg.hookName,
    fn: (act) => {
      const rows = checkWidth(act, d, `ablate at ${sae.cfg.hookName}`);
      const { idx, val, k } = sae.encodeSparse(act.data, rows); // [rows, k] active latents
      const a = new Float32Array(latents.length);
      const out = new Float32Array(act.data);
      for (let r = 0; r < rows; r++) {
        a.fill(0);
        for (let p = r * k; p < (r + 1) * k; p++) {
          const i = slot.get(idx[p]!);
          if (i !== undefined && val[p] !== 0) a[i] = val[p]!;
        }
        const o = r * d;
        latents.forEach((j, i) => {
          const coef = (a[i]! - ref[i]!) * inv;
          if (coef === 0) return;
          const w = j * d;
          for (let t = 0; t < d; t++) out[o + t] = out[o + t]! - coef * wDec[w + t]!;
        });
      }
      return new Tensor(out, act.shape);
    },
  };
}

/**
 * Clamps SAE latents from above: at each position where latent j fires above `max`,
 *
 *   x' = x − (a_j − max_j) · W_dec[j] / activationScale
 *
 * and positions where a_j ≤ max_j stay bit-identical. As with ablateLatentsHook, only the
 * latent's own share of the reconstruction moves; the SAE's error term is kept. `max` is one
 * bound for every latent or one per latent (indexed like `latents`), each ≥ 0.
 *
 * @example clampLatentsHook(sae, [10, 12], 2.5) // latents 10 and 12 contribute at most 2.5 each
 */
export function clampLatentsHook(sae: Sae, latents: readonly number[], max: number | readonly number[]): Hook {
  const { dIn: d } = sae.cfg;
  for (const j of latents) checkLatent(sae, j);
  if (new Set(latents).size !== latents.length) throw new Error(`clamp: latents repeat (${latents.join(", ")})`);
  const bound = typeof max === "number" ? latents.map(() => max) : [...max];
  if (bound.length !== latents.length)
    throw new Error(`clamp: ${bound.length} bounds for ${latents.length} latents (give one, or one per latent)`);
  if (bound.some((m) => !Number.isFinite(m) || m < 0))
    throw new Error(`clamp: bounds must be ≥ 0 (${bound.join(", ")})`);
  const inv = 1 / (sae.cfg.activationScale ?? 1);
  const wDec = sae.wDec;
  const slot = new Map(latents.map((j, i) => [j, i]));
  return {
    name: sae.cfg.hookName,
    fn: (act) => {
      const rows = checkWidth(act, d, `clamp at ${sae.cfg.hookName}`);
      const { idx, val, k } = sae.encodeSparse(act.data, rows);
      const out = new Float32Array(act.data);
      for (let r = 0; r < rows; r++) {
        const o = r * d;
        for (let p = r * k; p < (r + 1) * k; p++) {
          const i = slot.get(idx[p]!);
          if (i === undefined || !(val[p]! > bound[i]!)) continue;
          const coef = (val[p]! - bound[i]!) * inv;
          const w = idx[p]! * d;
          for (let t = 0; t < d; t++) out[o + t] = out[o + t]! - coef * wDec[w + t]!;
        }
      }
      return new Tensor(out, act.shape);
    },
  };
}

/** Mean activation of every latent over n activation rows: [dSae] (mean-ablation's reference). */
export function latentMeans(sae: Sae, acts: Float32Array, n: number, chunk = 1024): Float32Array {
  const { dIn: d, dSae } = sae.cfg;
  const sum = new Float64Array(dSae);
  for (let s = 0; s < n; s += chunk) {
    const m = Math.min(chunk, n - s);
    const a = sae.encode(acts.subarray(s * d, (s + m) * d), m);
    for (let r = 0; r < m; r++) for (let j = 0; j < dSae; j++) sum[j] = sum[j]! + a[r * dSae + j]!;
  }
  return Float32Array.from(sum, (v) => (n ? v / n : 0));
}

/**
 * `count` random unit directions in R^d (seeded Gaussian, normalised): the control band of
 * steering and projection. Scale by the same α as the direction under test for "same norm".
 */
export function randomUnitDirections(d: number, count: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const v = new Float32Array(d);
    for (let i = 0; i < d; i++) v[i] = rng.normal();
    return unitVector(v);
  });
}

/**
 * `count` distinct random latent ids, none of them in `exclude`: from [0, dSae), or from `pool`
 * when given (e.g. matchedLatents: a control that fires about as much as the latent under test).
 */
export function randomLatents(
  dSae: number,
  count: number,
  seed: number,
  exclude: readonly number[] = [],
  pool?: readonly number[],
): number[] {
  const skip = new Set(exclude);
  const from = pool ? [...new Set(pool)].filter((j) => !skip.has(j)) : null;
  const allowed = from ? from.length : dSae - skip.size;
  if (count > allowed) throw new Error(`randomLatents: ${count} latents asked of ${allowed} allowed`);
  const rng = new Rng(seed);
  const out: number[] = [];
  while (out.length < count) {
    const j = from ? from[rng.int(from.length)]! : rng.int(dSae);
    if (!skip.has(j)) {
      skip.add(j);
      out.push(j);
    }
  }
  return out;
}

/**
 * The `count` latents whose mean activation (`means`, e.g. latentMeans over held-out text) is
 * closest to `latent`'s on a log scale, the latent itself left out (latents that never fire
 * only when nothing else is left): the pool of a frequency-matched random-latent control.
 */
export function matchedLatents(means: Float32Array, latent: number, count: number): number[] {
  if (latent < 0 || latent >= means.length) throw new Error(`matchedLatents: latent ${latent} of ${means.length}`);
  const tiny = 1e-12;
  const target = Math.log(Math.max(tiny, means[latent]!));
  const ids = [...means.keys()].filter((j) => j !== latent);
  const dist = (j: number) => (means[j]! > 0 ? Math.abs(Math.log(Math.max(tiny, means[j]!)) - target) : Infinity);
  ids.sort((a, b) => dist(a) - dist(b) || a - b);
  return ids.slice(0, Math.min(count, ids.length));
}

function checkLatent(sae: Sae, j: number): void {
  if (!Number.isInteger(j) || j < 0 || j >= sae.cfg.dSae)
    throw new Error(`latent ${j} out of range [0, ${sae.cfg.dSae})`);
}
