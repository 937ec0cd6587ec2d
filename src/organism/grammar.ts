/**
 * The world's template grammar: a template is words and punctuation separated by single
 * spaces, with inline alternatives `{a|b|c}` (an alternative may be several words or empty).
 * `fill` picks one alternative per group with a seeded Rng; `expand` lists every sentence a
 * template can make (the vocabulary and the world judge read these), so nothing the
 * generator writes can fall outside the vocabulary.
 *
 * @example
 * fill("i {like|love} {green|} tea .", new Rng(1)); // "i love tea ."
 * expand("a {b|c} .");                              // ["a b .", "a c ."]
 */
import type { Rng } from "../tensor/random.ts";

const GROUP = /\{([^{}]*)\}/g;

/** Collapses runs of spaces left by empty alternatives. */
export function tidy(text: string): string {
  return text.split(/\s+/).filter(Boolean).join(" ");
}

/** One sentence from a template. */
export function fill(template: string, rng: Rng): string {
  return tidy(template.replace(GROUP, (_, body: string) => rng.pick(body.split("|"))));
}

/** Every sentence a template can make (the product of its groups), in a fixed order. */
export function expand(template: string): string[] {
  const m = GROUP.exec(template);
  GROUP.lastIndex = 0;
  if (!m) return [tidy(template)];
  const before = template.slice(0, m.index);
  const after = template.slice(m.index + m[0].length);
  return m[1]!.split("|").flatMap((alt) => expand(before + alt + after));
}

/** The words of a template, all alternatives included. */
export function templateWords(template: string): string[] {
  return template.replace(/[{}|]/g, " ").split(/\s+/).filter(Boolean);
}

/** Picks a key by weight (weights need not sum to 1). */
export function pickWeighted<K extends string>(weights: Partial<Record<K, number>>, rng: Rng): K {
  const entries = Object.entries(weights) as [K, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let r = rng.next() * total;
  for (const [k, w] of entries) {
    r -= w;
    if (r < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

/** `k` distinct items in random order. */
export function sample<T>(items: readonly T[], k: number, rng: Rng): T[] {
  return rng.shuffle([...items]).slice(0, Math.min(k, items.length));
}
