/**
 * Hook points with TransformerLens names. A hook reads an activation (to cache it) or
 * returns a replacement of the same shape (to steer, ablate or patch it). Hooks run at every
 * forward, including each step of KV-cached generation, where they see the new positions.
 *
 * Names: hook_embed (hook_pos_embed for GPT-2), blocks.{L}.hook_resid_pre,
 * blocks.{L}.hook_attn_out, blocks.{L}.hook_resid_mid, blocks.{L}.hook_mlp_out,
 * blocks.{L}.hook_resid_post, ln_final.hook_normalized (the final norm's output, weight
 * included: what enters the unembedding). Activations are [B, T, hidden].
 *
 * @example
 *   // add a steering vector at layer 6 at every position
 *   const hooks = [{ name: "blocks.6.hook_resid_post", fn: (x) => ops.add(x, steer) }];
 */
import type { Tensor } from "../tensor/index.ts";
import { fmtShape, sameShape } from "../tensor/tensor.ts";

export interface HookContext {
  name: string;
  /** Block index, or null for hook_embed / ln_final. */
  layer: number | null;
  batch: number;
  /** Number of positions in this forward (1 per step during cached generation). */
  seq: number;
  /** Absolute position of each token, [batch·seq] row-major. */
  positions: Int32Array;
}

export type HookFn = (act: Tensor, ctx: HookContext) => Tensor | undefined | void;

export interface Hook {
  /** An exact hook name, a pattern, or a predicate. */
  name: string | RegExp | ((name: string) => boolean);
  fn: HookFn;
}

export function hookMatches(h: Hook, name: string): boolean {
  if (typeof h.name === "string") return h.name === name;
  if (h.name instanceof RegExp) return h.name.test(name);
  return h.name(name);
}

/** Every hook name a model with `layers` blocks exposes. */
export function hookNames(layers: number, gpt2 = false): string[] {
  const names = ["hook_embed", ...(gpt2 ? ["hook_pos_embed"] : [])];
  for (let L = 0; L < layers; L++) {
    for (const p of ["hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"]) {
      names.push(`blocks.${L}.${p}`);
    }
  }
  names.push("ln_final.hook_normalized");
  return names;
}

/** Runs the matching hooks on one activation; a hook's return value replaces it. */
export function runHooks(hooks: readonly Hook[] | undefined, act: Tensor, ctx: HookContext): Tensor {
  if (!hooks || hooks.length === 0) return act;
  let x = act;
  for (const h of hooks) {
    if (!hookMatches(h, ctx.name)) continue;
    const r = h.fn(x, ctx);
    if (r) {
      if (!sameShape(r.shape, x.shape)) {
        throw new Error(`hook at ${ctx.name} returned shape ${fmtShape(r.shape)}, expected ${fmtShape(x.shape)}`);
      }
      x = r;
    }
  }
  return x;
}
