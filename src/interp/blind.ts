/**
 * The blind pipeline's causal half: what a user without labels runs after `emlab diff`.
 *
 *   diff → candidates (top k by Δ in each direction) → causal screen (steer each candidate in
 *   the base over the c grid, mean-ablate it in the fine-tune; on *select* draws) → the pick →
 *   measured fresh (on *measure* draws), beside controls that went through the same search.
 *
 * No label is used: the only judge is the misalignment judge a user has anyway. Ground truth
 * (a persona AUC, where one exists) scores the pick afterwards, outside this file.
 *
 * Equal search: every control (frequency-matched random latents, norm-matched random
 * directions) runs the identical c grid and selection rule on the select draws, then is
 * measured at its own chosen c on the measure draws, exactly as the target is. The target is
 * reported as a percentile of its controls, not against one max.
 *
 * Select and measure are two CausalEvalOptions with different run prefixes and sampling
 * seeds (and `drawsPerSetting`), so a figure is never measured on the draws it was chosen on.
 *
 * @example
 *   const cands = blindCandidates(diff, 4);
 *   const screen = await causalScreen({ base: selBase, ft: selFt, sae, candidates: cands, medianNorm, rule, reference });
 *   const steer = await measureSteer({ select: selBase, measure: measBase, target: { kind: "latent", sae,
 *     latent: screen.pick.latent }, sign: screen.pick.sign, medianNorm, rule, controls });
 */

import { labelSeed, mixSeed } from "../tensor/random.ts";
import { type CausalEvalOptions, evaluateSetting, noIntervention, type SettingResult, steerSetting } from "./causal.ts";
import type { DiffResult } from "./diff.ts";
import {
  ablateLatentsHook,
  matchedLatents,
  projectOutHook,
  randomLatents,
  randomUnitDirections,
  steeringAlpha,
} from "./interventions.ts";
import type { Sae } from "./sae/sae.ts";

/** A latent the diff put forward, in the direction it moved. */
export interface BlindCandidate {
  latent: number;
  delta: number;
  /** +1: it rose in the fine-tune (steer along its decoder row); −1: it fell (steer against it). */
  sign: 1 | -1;
  /** 1-based rank by Δ within its direction. */
  diffRank: number;
}

/** The k largest increases and the k largest decreases of mean activation (Δ ≠ 0 only). */
export function blindCandidates(
  d: { latents: readonly Pick<DiffResult["latents"][number], "latent" | "delta">[] },
  k: number,
): BlindCandidate[] {
  const byDelta = [...d.latents].sort((a, b) => b.delta - a.delta || a.latent - b.latent);
  const up = byDelta.filter((r) => r.delta > 0).slice(0, k);
  const down = byDelta
    .filter((r) => r.delta < 0)
    .reverse()
    .slice(0, k);
  return [
    ...up.map((r, i) => ({ latent: r.latent, delta: r.delta, sign: 1 as const, diffRank: i + 1 })),
    ...down.map((r, i) => ({ latent: r.latent, delta: r.delta, sign: -1 as const, diffRank: i + 1 })),
  ];
}

/** The selection rule shared by a target and all its controls. */
export interface SearchRule {
  /** Steering strengths (α = c × median residual norm). */
  cs: number[];
  /** A setting counts when coherent ≥ this (Wang et al.: ≤ 10 % incoherent). */
  minCoherent: number;
}

export interface SearchPoint {
  c: number;
  misaligned: number | null;
  coherent: number;
  n: number;
  runId: string;
}

export interface SteerSearch {
  points: SearchPoint[];
  /** The most misaligned point with coherent ≥ minCoherent (ties: the smaller c), or null. */
  best: SearchPoint | null;
}

/** A steering target: an SAE latent or a vector at a hook point. */
export type BlindTarget =
  | { kind: "latent"; sae: Sae; latent: number }
  | { kind: "direction"; name: string; hookName: string; vector: Float32Array };

const pointOf = (c: number, r: SettingResult): SearchPoint => ({
  c,
  misaligned: r.misaligned,
  coherent: r.coherent,
  n: r.n,
  runId: r.runId,
});

/** The selection rule: the most misaligned coherent point. */
export function selectBest(points: SearchPoint[], minCoherent: number): SearchPoint | null {
  let best: SearchPoint | null = null;
  for (const p of points) {
    if (p.coherent < minCoherent || p.misaligned === null) continue;
    if (!best || p.misaligned > best.misaligned! || (p.misaligned === best.misaligned && p.c < best.c)) best = p;
  }
  return best;
}

/** Steers at each c of the rule (signed by `sign`) and applies the selection rule. */
export async function searchSteer(
  ctx: CausalEvalOptions,
  target: BlindTarget,
  sign: 1 | -1,
  medianNorm: number,
  rule: SearchRule,
): Promise<SteerSearch> {
  const points: SearchPoint[] = [];
  for (const c of rule.cs) {
    const r = await evaluateSetting(ctx, steerSetting(target, sign * c, sign * steeringAlpha(c, medianNorm)));
    points.push(pointOf(c, r));
  }
  return { points, best: selectBest(points, rule.minCoherent) };
}

export interface ScreenEntry extends BlindCandidate {
  steer: SteerSearch;
  /** Mean-ablation in the fine-tune on the select draws. */
  ablation: { misaligned: number | null; coherent: number; cut: number | null };
  /** steer.best's misaligned rate (0 when no coherent c) + max(0, cut). */
  score: number;
}

export interface ScreenResult {
  /** The fine-tune unmodified, on the select draws. */
  before: { misaligned: number | null; coherent: number; n: number };
  entries: ScreenEntry[];
  /** The highest score (ties: the larger |Δ|). */
  pick: ScreenEntry;
}

const cutOf = (before: number | null, after: number | null) => (before && after !== null ? 1 - after / before : null);

/** Steers each candidate in the base and mean-ablates it in the fine-tune; picks by score. */
export async function causalScreen(o: {
  base: CausalEvalOptions;
  ft: CausalEvalOptions;
  sae: Sae;
  candidates: BlindCandidate[];
  medianNorm: number;
  rule: SearchRule;
  /** Mean-ablation's reference: [dSae] mean activations. */
  reference: Float32Array;
  onCandidate?: (e: ScreenEntry) => void;
}): Promise<ScreenResult> {
  if (o.candidates.length === 0) throw new Error("causalScreen: the diff gave no candidate (no latent moved)");
  const before = await evaluateSetting(o.ft, noIntervention);
  const hookName = o.sae.cfg.hookName;
  const entries: ScreenEntry[] = [];
  for (const cand of o.candidates) {
    const steer = await searchSteer(
      o.base,
      { kind: "latent", sae: o.sae, latent: cand.latent },
      cand.sign,
      o.medianNorm,
      o.rule,
    );
    const ab = await evaluateSetting(o.ft, {
      spec: { kind: "ablate", hookName, latents: [cand.latent], mode: "mean" },
      hooks: [ablateLatentsHook(o.sae, [cand.latent], { mode: "mean", reference: o.reference })],
    });
    const cut = cutOf(before.misaligned, ab.misaligned);
    const entry: ScreenEntry = {
      ...cand,
      steer,
      ablation: { misaligned: ab.misaligned, coherent: ab.coherent, cut },
      score: (steer.best?.misaligned ?? 0) + Math.max(0, cut ?? 0),
    };
    entries.push(entry);
    o.onCandidate?.(entry);
  }
  const pick = entries.reduce((a, e) =>
    e.score > a.score || (e.score === a.score && Math.abs(e.delta) > Math.abs(a.delta)) ? e : a,
  );
  return { before: { misaligned: before.misaligned, coherent: before.coherent, n: before.n }, entries, pick };
}

/** The controls of one latent: `latents` (n, zero / mean ablation), `half` of them and `directions` (steering, projection). */
export interface ControlSet {
  latents: number[];
  half: number[];
  directions: { seed: number; index: number; vector: Float32Array }[];
}

/**
 * n frequency-matched random latents (drawn from the matchPool latents whose mean activation
 * in `reference` is closest to the target's) and ⌊n/2⌋ random unit directions: steering and
 * projection take the first ⌈n/2⌉ latents and the directions (n controls), zero- and
 * mean-ablation the n latents.
 */
export function controlSet(
  sae: Sae,
  reference: Float32Array,
  latent: number,
  o: { n: number; seed: number; matchPool?: number },
): ControlSet {
  const pool = matchedLatents(reference, latent, Math.max(o.matchPool ?? 32, o.n));
  const latents = randomLatents(sae.cfg.dSae, o.n, mixSeed(o.seed, labelSeed(`controls-${latent}`)), [latent], pool);
  const dirSeed = mixSeed(o.seed, labelSeed("directions")) >>> 1;
  const directions = randomUnitDirections(sae.cfg.dIn, Math.floor(o.n / 2), dirSeed).map((vector, index) => ({
    seed: dirSeed,
    index,
    vector,
  }));
  return { latents, half: latents.slice(0, Math.ceil(o.n / 2)), directions };
}

/** A figure measured on the measure draws at the c its search chose. */
export interface Measured {
  c: number | null;
  misaligned: number | null;
  coherent: number | null;
  n: number;
  runId: string | null;
}

export interface ControlResult {
  kind: "random-latent" | "random-direction";
  id: string;
  search?: SteerSearch;
  measured: Measured;
  /** The value ranked against the target (steer: misaligned, 0 when no coherent c; ablate: cut). */
  value: number;
}

/** Where the target stands among its controls. */
export interface ControlBand {
  controls: number;
  controlMax: number | null;
  /** Share of controls strictly below the target, ties counted half, in percent. */
  percentile: number | null;
}

export function band(target: number | null, values: number[]): ControlBand {
  if (values.length === 0) return { controls: 0, controlMax: null, percentile: null };
  const controlMax = Math.max(...values);
  if (target === null) return { controls: values.length, controlMax, percentile: null };
  const below = values.filter((v) => v < target).length + values.filter((v) => v === target).length / 2;
  return { controls: values.length, controlMax, percentile: (100 * below) / values.length };
}

export interface SteerMeasurement extends ControlBand {
  search: SteerSearch;
  measured: Measured;
  controlResults: ControlResult[];
}

/** A control: a random latent of the SAE or a unit direction at the same hook. */
export type SteerControl =
  | { kind: "random-latent"; latent: number }
  | { kind: "random-direction"; seed: number; index: number; vector: Float32Array };

async function measureAt(
  measure: CausalEvalOptions,
  target: BlindTarget,
  sign: 1 | -1,
  medianNorm: number,
  best: SearchPoint | null,
): Promise<Measured> {
  if (!best) return { c: null, misaligned: null, coherent: null, n: 0, runId: null };
  const r = await evaluateSetting(
    measure,
    steerSetting(target, sign * best.c, sign * steeringAlpha(best.c, medianNorm)),
  );
  return { c: best.c, misaligned: r.misaligned, coherent: r.coherent, n: r.n, runId: r.runId };
}

/**
 * The target's steering figure (searched on select draws unless `search` is given, measured
 * on measure draws) against controls that run the same search and measurement.
 */
export async function measureSteer(o: {
  select: CausalEvalOptions;
  measure: CausalEvalOptions;
  target: BlindTarget;
  sign: 1 | -1;
  medianNorm: number;
  rule: SearchRule;
  /** The target's search if already run on the select draws (the screen's). */
  search?: SteerSearch;
  controls: SteerControl[];
  onControl?: (c: ControlResult) => void;
}): Promise<SteerMeasurement> {
  const search = o.search ?? (await searchSteer(o.select, o.target, o.sign, o.medianNorm, o.rule));
  const measured = await measureAt(o.measure, o.target, o.sign, o.medianNorm, search.best);
  const hookName = o.target.kind === "latent" ? o.target.sae.cfg.hookName : o.target.hookName;
  const controlResults: ControlResult[] = [];
  for (const c of o.controls) {
    const t: BlindTarget =
      c.kind === "random-latent"
        ? { kind: "latent", sae: (o.target as { sae: Sae }).sae, latent: c.latent }
        : { kind: "direction", name: `random-${c.seed}.${c.index}`, hookName, vector: c.vector };
    const s = await searchSteer(o.select, t, o.sign, o.medianNorm, o.rule);
    const m = await measureAt(o.measure, t, o.sign, o.medianNorm, s.best);
    const r: ControlResult = {
      kind: c.kind,
      id: c.kind === "random-latent" ? `latent ${c.latent}` : `direction ${c.seed}.${c.index}`,
      search: s,
      measured: m,
      value: m.misaligned ?? 0,
    };
    controlResults.push(r);
    o.onControl?.(r);
  }
  return {
    search,
    measured,
    controlResults,
    ...band(
      measured.misaligned ?? 0,
      controlResults.map((r) => r.value),
    ),
  };
}

export type AblationKind = "zero" | "mean" | "project-out";

export interface AblationMeasurement extends ControlBand {
  mode: AblationKind;
  misaligned: number | null;
  coherent: number;
  cut: number | null;
  n: number;
  runId: string;
  controlResults: ControlResult[];
}

/**
 * Removes a latent from the fine-tune three ways (zero, mean, its decoder direction projected
 * out), each beside its controls on the same (measure) draws: random latents zero- / mean-
 * ablated, and random latents' decoder directions and random unit directions projected out.
 */
export async function measureAblation(o: {
  measure: CausalEvalOptions;
  sae: Sae;
  latent: number;
  reference: Float32Array;
  /** Zero- and mean-ablated as controls. */
  controlLatents: number[];
  /** Projected out as controls: these latents' decoder rows (default controlLatents) and the directions. */
  projectLatents?: number[];
  controlDirections: { seed: number; index: number; vector: Float32Array }[];
  modes?: AblationKind[];
  onControl?: (mode: AblationKind, c: ControlResult) => void;
}): Promise<{ before: Measured; modes: AblationMeasurement[] }> {
  const hookName = o.sae.cfg.hookName;
  const before = await evaluateSetting(o.measure, noIntervention);
  const remove = async (
    mode: AblationKind,
    latent: number | null,
    vector?: Float32Array,
    control = false,
    name = "",
  ) => {
    if (mode === "project-out")
      return evaluateSetting(o.measure, {
        spec: { kind: "project-out", hookName, name, ...(control ? { control } : {}) },
        hooks: [projectOutHook(hookName, vector ?? o.sae.decoderDirection(latent!))],
      });
    return evaluateSetting(o.measure, {
      spec: { kind: "ablate", hookName, latents: [latent!], mode, ...(control ? { control } : {}) },
      hooks: [ablateLatentsHook(o.sae, [latent!], { mode, reference: o.reference })],
    });
  };
  const modes: AblationMeasurement[] = [];
  for (const mode of o.modes ?? (["zero", "mean", "project-out"] as AblationKind[])) {
    const t = await remove(mode, o.latent, undefined, false, `latent-${o.latent}-decoder`);
    const controlResults: ControlResult[] = [];
    const push = (kind: ControlResult["kind"], id: string, r: SettingResult) => {
      const cut = cutOf(before.misaligned, r.misaligned);
      const c: ControlResult = {
        kind,
        id,
        measured: { c: null, misaligned: r.misaligned, coherent: r.coherent, n: r.n, runId: r.runId },
        value: cut ?? 0,
      };
      controlResults.push(c);
      o.onControl?.(mode, c);
    };
    for (const j of mode === "project-out" ? (o.projectLatents ?? o.controlLatents) : o.controlLatents)
      push("random-latent", `latent ${j}`, await remove(mode, j, undefined, true, `latent-${j}-decoder`));
    if (mode === "project-out")
      for (const d of o.controlDirections)
        push(
          "random-direction",
          `direction ${d.seed}.${d.index}`,
          await remove(mode, null, d.vector, true, `random-${d.seed}.${d.index}`),
        );
    const cut = cutOf(before.misaligned, t.misaligned);
    modes.push({
      mode,
      misaligned: t.misaligned,
      coherent: t.coherent,
      cut,
      n: t.n,
      runId: t.runId,
      controlResults,
      ...band(
        cut,
        controlResults.map((r) => r.value),
      ),
    });
  }
  return {
    before: { c: null, misaligned: before.misaligned, coherent: before.coherent, n: before.n, runId: before.runId },
    modes,
  };
}
