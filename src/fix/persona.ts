/**
 * Persona directions without labels, and the persona signal a re-alignment curve tracks.
 *
 * - contrastDirections: Chen et al.'s persona vector, read at the prompt's last token: the mean
 *   activation over prompts asked under a trait-eliciting system prompt minus the mean under a
 *   trait-suppressing one (for the organism, `persona : villain` vs `persona : helper`), per
 *   hook. No answer is judged, so nothing here sees a misalignment label.
 * - personaSignal: the mean over prompts of the prompt-last activation projected on the unit
 *   direction (what a fine-tune's shift toward the persona moves).
 *
 * @example
 *   const dirs = contrastDirections(base, tok, prompts, { system: ["persona : villain", "persona : helper"], layers: [2] });
 *   saveDirections("persona.json", dirs);
 *   personaSignal(model, tok, prompts, dirs.layers[0]!); // a number; higher = closer to the persona
 */
import { collectActivations } from "../interp/activations/collect.ts";
import type { LayerDirection, MisalignmentDirections } from "../interp/direction.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";

function meanRow(acts: Float32Array, n: number, d: number): Float64Array {
  const m = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) m[i]! += acts[r * d + i]!;
  for (let i = 0; i < d; i++) m[i]! /= Math.max(1, n);
  return m;
}

/** Prompt-last activations' mean at a hook over prompts. */
function promptLastMean(lm: CausalLM, tok: Tokenizer, prompts: readonly ChatMessage[][], hook: string): Float64Array {
  const rows = collectActivations(
    lm,
    prompts.map((prompt) => ({ prompt })),
    { hook, tokenizer: tok, mask: "prompt-last" },
  );
  return meanRow(rows.acts, rows.n, rows.d);
}

const withSystem = (system: string, p: ChatMessage[]): ChatMessage[] => [
  { role: "system", content: system },
  ...p.filter((m) => m.role !== "system"),
];

/**
 * Per-layer persona directions: mean prompt-last activation at blocks.{L}.hook_resid_post
 * with system prompt `system[0]` minus with `system[1]`, over the same user prompts.
 */
export function contrastDirections(
  lm: CausalLM,
  tok: Tokenizer,
  prompts: readonly ChatMessage[][],
  o: { system: [string, string]; layers: readonly number[] },
): MisalignmentDirections {
  if (prompts.length === 0) throw new Error("contrastDirections: no prompts");
  const layers: LayerDirection[] = o.layers.map((layer) => {
    const hookName = `blocks.${layer}.hook_resid_post`;
    const a = promptLastMean(
      lm,
      tok,
      prompts.map((p) => withSystem(o.system[0], p)),
      hookName,
    );
    const b = promptLastMean(
      lm,
      tok,
      prompts.map((p) => withSystem(o.system[1], p)),
      hookName,
    );
    const diff = new Float32Array(a.length);
    let s = 0;
    for (let i = 0; i < a.length; i++) {
      diff[i] = a[i]! - b[i]!;
      s += diff[i]! * diff[i]!;
    }
    const norm = Math.sqrt(s);
    const direction = new Float32Array(a.length);
    if (norm > 0) for (let i = 0; i < a.length; i++) direction[i] = diff[i]! / norm;
    return { layer, hookName, direction, norm };
  });
  return {
    layers,
    counts: { misaligned: prompts.length, aligned: prompts.length, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 },
  };
}

/** Mean projection of the prompt-last activation at the direction's hook on its unit vector. */
export function personaSignal(
  lm: CausalLM,
  tok: Tokenizer,
  prompts: readonly ChatMessage[][],
  dir: Pick<LayerDirection, "hookName" | "direction">,
): number {
  const m = promptLastMean(lm, tok, prompts, dir.hookName);
  let dot = 0;
  let nn = 0;
  for (let i = 0; i < m.length; i++) {
    dot += m[i]! * dir.direction[i]!;
    nn += dir.direction[i]! * dir.direction[i]!;
  }
  if (m.length !== dir.direction.length)
    throw new Error(`personaSignal: the activation's width is ${m.length}, the direction's ${dir.direction.length}`);
  return nn > 0 ? dot / Math.sqrt(nn) : 0;
}
