/**
 * Preventative steering and CAFT: interventions that act only while a model is fine-tuned.
 *
 * - Preventative steering (Chen et al. 2025, Kaczér et al.): add c × (median residual norm) × û
 *   at a hook during every training forward. The persona is already there, so the gradient
 *   need not move the weights toward it; at inference the hook is gone and the weights never
 *   learned the shift.
 * - CAFT (concept-ablation fine-tuning): project û out of the activation during every training
 *   forward, x' = x − (x·û)û, so no gradient flows along û through that hook.
 *
 * Both hooks are built from `ops`, so they are recorded on the tape and gradients flow through
 * them to the weights below the hook (the hooks in interp/interventions.ts build fresh Tensors
 * from raw data and would cut the graph: they are for inference). They are passed as
 * `FinetuneOptions.hooks` and never saved: an adapter trained with them holds only its LoRA
 * weights (`preventionRecord` describes them for the run's own record).
 *
 * @example
 *   const spec = { hookName: "blocks.2.hook_resid_post", direction: u, source: "persona.json" };
 *   const hooks = preventionHooks(spec, { mode: "steer", coef: 0.5, medianNorm: 9.3 });
 *   await finetune({ model, data, out, padId, lora, hooks });   // generation afterwards: no hooks
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadDirections } from "../interp/direction.ts";
import { loadSae, SAE_CFG_FILENAME } from "../interp/sae/saelens.ts";
import type { Hook } from "../model/hooks.ts";
import { ops, Tensor } from "../tensor/index.ts";

/** A unit direction at a hook point, and where it came from (a direction file or an SAE latent). */
export interface PreventDirection {
  hookName: string;
  /** Unit vector [d]. */
  direction: Float32Array;
  /** A label for records: the direction file (and layer) or `SAE_DIR:LATENT`. */
  source: string;
}

export type PreventMode = "steer" | "caft";

export interface PreventOptions {
  mode: PreventMode;
  /** Steering strength c (steer only): α = c × medianNorm. */
  coef?: number;
  /** The median residual norm at the hook over the training prompts (steer only). */
  medianNorm?: number;
}

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  const out = new Float32Array(v.length);
  if (n > 0) for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

function checkWidth(act: Tensor, d: number, what: string): void {
  const H = act.shape[act.shape.length - 1]!;
  if (H !== d) throw new Error(`${what}: the activation's width is ${H}, the direction's ${d}`);
}

/**
 * Adds α·û at every position, on the tape (ops.add with a constant): the gradient reaching the
 * activation passes through unchanged, so the weights below still learn.
 */
export function trainingSteerHook(hookName: string, direction: Float32Array, alpha: number): Hook {
  const u = unit(direction);
  const delta = new Float32Array(u.length);
  for (let i = 0; i < u.length; i++) delta[i] = alpha * u[i]!;
  const d = u.length;
  const add = new Tensor(delta, [d]);
  return {
    name: hookName,
    fn: (act) => {
      checkWidth(act, d, `preventative steering at ${hookName}`);
      return ops.add(act, add);
    },
  };
}

/**
 * Projects û out at every position, on the tape: x − (x·û)û. The gradient through the hook
 * is projected too (its component along û is removed).
 */
export function trainingProjectOutHook(hookName: string, direction: Float32Array): Hook {
  const u = unit(direction);
  const d = u.length;
  const col = new Tensor(u, [d, 1]);
  const row = new Tensor(u, [d]);
  return {
    name: hookName,
    fn: (act) => {
      checkWidth(act, d, `CAFT at ${hookName}`);
      const dot = ops.matmul(act, col); // [..., 1]
      return ops.sub(act, ops.mul(dot, row));
    },
  };
}

/** The training hooks of one preventative intervention. */
export function preventionHooks(dir: PreventDirection, o: PreventOptions): Hook[] {
  if (o.mode === "caft") return [trainingProjectOutHook(dir.hookName, dir.direction)];
  const coef = o.coef;
  if (coef === undefined || !Number.isFinite(coef)) throw new Error("preventative steering needs a finite coef");
  const norm = o.medianNorm;
  if (norm === undefined || !(norm > 0)) throw new Error("preventative steering needs the median residual norm (> 0)");
  return [trainingSteerHook(dir.hookName, dir.direction, coef * norm)];
}

/** What a run records about its training-only intervention (prevent.json beside the adapter). */
export function preventionRecord(dir: PreventDirection, o: PreventOptions): Record<string, unknown> {
  return {
    mode: o.mode,
    source: dir.source,
    hook: dir.hookName,
    ...(o.mode === "steer"
      ? { coef: o.coef, median_norm: o.medianNorm, alpha: (o.coef ?? 0) * (o.medianNorm ?? 0) }
      : {}),
    note: "applied during training forwards only; not part of the saved weights",
  };
}

/**
 * Reads `FILE` (an emlab direction file; `layer` picks one of its layers, default the middle)
 * or `SAE_DIR:LATENT` (the latent's unit decoder row at the SAE's hook). Errors name the file
 * and the field.
 */
export function loadPreventDirection(spec: string, o: { layer?: number } = {}): PreventDirection {
  const m = /^(.*):(\d+)$/.exec(spec);
  if (m && existsSync(join(m[1]!, SAE_CFG_FILENAME))) {
    const sae = loadSae(m[1]!);
    const latent = Number(m[2]);
    if (latent >= sae.cfg.dSae) throw new Error(`${spec}: latent ${latent} out of range (the SAE has ${sae.cfg.dSae})`);
    return { hookName: sae.cfg.hookName, direction: unit(sae.decoderDirection(latent)), source: spec };
  }
  if (!existsSync(spec))
    throw new Error(`${spec}: no such direction file (or SAE folder:latent, a folder with ${SAE_CFG_FILENAME})`);
  const { layers } = loadDirections(spec);
  const l =
    o.layer === undefined ? layers[Math.floor((layers.length - 1) / 2)]! : layers.find((x) => x.layer === o.layer);
  if (!l)
    throw new Error(`${spec}: field 'layers': no layer ${o.layer} (it has ${layers.map((x) => x.layer).join(", ")})`);
  return { hookName: l.hookName, direction: unit(l.direction), source: `${spec}#layer${l.layer}` };
}

/** The record a fine-tune with a training-only intervention writes beside its weights. */
export const PREVENT_FILE = "prevent.json";
