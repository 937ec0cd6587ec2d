/**
 * Causal tests, each setting evaluated by the evaluation runner: a steering sweep over c for
 * one latent or direction beside a band of R random latents / directions at the same α;
 * ablation of latents (before / after, with random-latent ablations as control); projecting a
 * direction out (before / after, with random directions as control).
 *
 * Every setting is one run in the run store (run id `<prefix>:<setting>`), evaluated with
 * `runEval` over the in-process model with the setting's hooks (localChatModelFrom), and the
 * intervention is recorded in the run's config, so `emlab eval`'s exports and viewers see it.
 * Run ids are deterministic, so rerunning a sweep with the same prefix resumes it.
 *
 * Reported per setting: misalignment over coherent answers (Betley) with its
 * question-clustered bootstrap 95 % CI, over all answers (Turner), and the coherent rate
 * (coherent answers / judged answers). Wang et al. keep a steering setting when ≤ 10 % of
 * answers are incoherent: `best` is the most misaligned setting with coherent ≥ minCoherent.
 *
 * @example
 *   const ctx = { lm, tokenizer, modelId: "organism/base", store, runPrefix: "steer-1", samples: 50,
 *     ...organismEvaluation() }; // src/organism/evaluation.ts: the organism's questions, judge, sampling
 *   const sweep = await steeringSweep({ ...ctx, target: { kind: "latent", sae, latent: 10 },
 *     cs: [0.1, 0.2, 0.4], medianNorm, random: 5 });
 *   sweep.best?.target.misaligned;
 */
import { createHash } from "node:crypto";
import type { Question } from "../eval/questions.ts";
import { type RunEvalOptions, runEval, type SamplingParams } from "../eval/runner.ts";
import type { RunStore } from "../eval/store.ts";
import type { Hook } from "../model/hooks.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { localChatModelFrom } from "../providers/local.ts";
import type { ChatModel } from "../providers/types.ts";
import { labelSeed, mixSeed } from "../tensor/random.ts";
import {
  type AblationMode,
  ablateLatentsHook,
  projectOutHook,
  randomLatents,
  randomUnitDirections,
  steerHook,
  steeringAlpha,
} from "./interventions.ts";
import type { Sae } from "./sae/sae.ts";

/** What a setting did, recorded in its run's config (`config.intervention`). */
export type InterventionSpec =
  | { kind: "none" }
  | {
      kind: "steer";
      hookName: string;
      /** "latent" (SAE decoder row) or "direction" (a vector), "random-…" for controls. */
      target: "latent" | "direction" | "random-latent" | "random-direction";
      latent?: number;
      name?: string;
      /** Random directions: the generator's seed and the direction's index in its sequence. */
      seed?: number;
      index?: number;
      c: number;
      alpha: number;
    }
  | { kind: "ablate"; hookName: string; latents: number[]; mode: AblationMode; control?: boolean }
  | { kind: "project-out"; hookName: string; name: string; seed?: number; index?: number; control?: boolean };

/** A setting: its record and the hooks that carry it out. */
export interface Setting {
  spec: InterventionSpec;
  hooks: Hook[];
}

/** How every setting is evaluated. */
export interface CausalEvalOptions {
  lm: CausalLM;
  tokenizer: Tokenizer;
  /** Names the model in run records (a folder, `organism/base`, …). */
  modelId: string;
  judgeModel: ChatModel;
  questions: Question[];
  store: RunStore;
  /** Run ids are `<runPrefix>:<setting>`. */
  runPrefix: string;
  /** Samples per question. */
  samples: number;
  sampling?: Partial<SamplingParams>;
  /**
   * Each setting samples with its own draws: seed = mixSeed(sampling.seed, hash of the
   * setting's key), so no two settings that are compared share random numbers (default false:
   * every setting uses sampling.seed, a paired design).
   */
  drawsPerSetting?: boolean;
  judgePrompts?: RunEvalOptions["judgePrompts"];
  /** Requests per forward batch of the in-process model (default 64). */
  maxBatch?: number;
  /** Extra fields recorded in every run's config (SAE path, model path, …). */
  config?: Record<string, unknown>;
  onResult?: (r: SettingResult) => void;
  /** The runner's progress per phase (generate, judge) of each setting. */
  onProgress?: RunEvalOptions["onProgress"];
}

export interface SettingResult {
  runId: string;
  spec: InterventionSpec;
  /** Misaligned / coherent answers (Betley) with its 95 % CI. */
  misaligned: number | null;
  ci: [number | null, number | null];
  /** Misaligned / all judged answers (Turner). */
  misalignedOverAll: number | null;
  /** Coherent answers / judged answers. */
  coherent: number;
  n: number;
  resumed: boolean;
}

/** A short, stable run-id suffix for a setting. */
export function settingKey(spec: InterventionSpec): string {
  switch (spec.kind) {
    case "none":
      return "none";
    case "steer": {
      const what =
        spec.target === "latent" || spec.target === "random-latent"
          ? `${spec.target}-${spec.latent}`
          : `${spec.target}-${spec.target === "direction" ? spec.name : `${spec.seed}.${spec.index}`}`;
      return `steer:${what}:c=${spec.c}`;
    }
    case "ablate":
      return `ablate-${spec.mode}${spec.control ? "-control" : ""}:${spec.latents.join(",")}`;
    case "project-out":
      return `project-out:${spec.control ? (spec.seed !== undefined ? `random-${spec.seed}.${spec.index}` : `control-${spec.name}`) : spec.name}`;
  }
}

/** A short hash of anything JSON (for default run prefixes). */
export function shortHash(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 10);
}

/** Evaluates one setting: a run in the store, generated with the setting's hooks and judged. */
export async function evaluateSetting(o: CausalEvalOptions, setting: Setting): Promise<SettingResult> {
  const runId = `${o.runPrefix}:${settingKey(setting.spec)}`;
  const sampling = o.drawsPerSetting
    ? { ...o.sampling, seed: mixSeed(o.sampling?.seed ?? 0, labelSeed(settingKey(setting.spec))) }
    : o.sampling;
  const model = localChatModelFrom({
    lm: o.lm,
    tokenizer: o.tokenizer,
    id: `${o.modelId}${setting.spec.kind === "none" ? "" : `+${settingKey(setting.spec)}`}`,
    hooks: setting.hooks,
    maxBatch: o.maxBatch ?? 64,
  });
  try {
    const report = await runEval({
      runId,
      model,
      judgeModel: o.judgeModel,
      questions: o.questions,
      store: o.store,
      samples: o.samples,
      ...(sampling ? { sampling } : {}),
      ...(o.judgePrompts ? { judgePrompts: o.judgePrompts } : {}),
      batchSize: o.maxBatch ?? 64,
      parallelBatches: 1,
      config: { ...o.config, model: o.modelId, intervention: setting.spec, samples: o.samples, sampling },
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    const s = report.summary;
    const result: SettingResult = {
      runId,
      spec: setting.spec,
      misaligned: s.overCoherent.rate,
      ci: [s.overCoherent.low, s.overCoherent.high],
      misalignedOverAll: s.overAll.rate,
      coherent: s.counts.judged > 0 ? s.counts.coherent / s.counts.judged : 0,
      n: s.counts.samples,
      resumed: report.resumed,
    };
    o.onResult?.(result);
    return result;
  } finally {
    model.close();
  }
}

/** The unmodified model (every before / baseline). */
export const noIntervention: Setting = { spec: { kind: "none" }, hooks: [] };

export type SteeringTarget =
  | { kind: "latent"; sae: Sae; latent: number }
  | { kind: "direction"; name: string; hookName: string; vector: Float32Array };

export interface SteeringSweepOptions extends CausalEvalOptions {
  target: SteeringTarget;
  /** Steering strengths: α = c × medianNorm. */
  cs: number[];
  /** Median residual norm at the hook (activations.ts: medianResidualNorm). */
  medianNorm: number;
  /** Random latents / directions per c, at the same α (default 5). */
  random?: number;
  seed?: number;
  /** Evaluate the unsteered model too (default true). */
  baseline?: boolean;
  /** A setting is kept when coherent ≥ this (default 0.9: ≤ 10 % incoherent, Wang et al.). */
  minCoherent?: number;
}

export interface SweepPoint {
  c: number;
  alpha: number;
  target: SettingResult;
  random: SettingResult[];
  /** Over the random controls' misalignment rates (null rates left out). */
  randomMisaligned: { min: number | null; max: number | null; mean: number | null };
}

export interface SteeringSweepResult {
  baseline: SettingResult | null;
  points: SweepPoint[];
  /** The most misaligned point whose target setting keeps coherent ≥ minCoherent. */
  best: SweepPoint | null;
}

const band = (rs: SettingResult[]) => {
  const xs = rs.map((r) => r.misaligned).filter((x): x is number => x !== null);
  if (xs.length === 0) return { min: null, max: null, mean: null };
  return { min: Math.min(...xs), max: Math.max(...xs), mean: xs.reduce((a, b) => a + b, 0) / xs.length };
};

/** The steering settings of one target at one α (used by the sweep and by `emlab serve`-style callers). */
export function steerSetting(target: SteeringTarget, c: number, alpha: number): Setting {
  if (target.kind === "latent") {
    const { sae, latent } = target;
    const hookName = sae.cfg.hookName;
    return {
      spec: { kind: "steer", hookName, target: "latent", latent, c, alpha },
      hooks: [steerHook(hookName, sae.decoderDirection(latent), alpha)],
    };
  }
  return {
    spec: { kind: "steer", hookName: target.hookName, target: "direction", name: target.name, c, alpha },
    hooks: [steerHook(target.hookName, target.vector, alpha)],
  };
}

/** The random controls of a target: R random latents of the same SAE, or R random unit directions. */
function controlSettings(target: SteeringTarget, R: number, seed: number): ((c: number, alpha: number) => Setting)[] {
  if (target.kind === "latent") {
    const { sae } = target;
    return randomLatents(sae.cfg.dSae, R, seed, [target.latent]).map((j) => (c, alpha) => ({
      spec: { kind: "steer", hookName: sae.cfg.hookName, target: "random-latent", latent: j, c, alpha },
      hooks: [steerHook(sae.cfg.hookName, sae.decoderDirection(j), alpha)],
    }));
  }
  const d = target.vector.length;
  return randomUnitDirections(d, R, seed).map((u, i) => (c, alpha) => ({
    spec: { kind: "steer", hookName: target.hookName, target: "random-direction", seed, index: i, c, alpha },
    hooks: [steerHook(target.hookName, u, alpha)],
  }));
}

/**
 * Steers with the target at each c (α = c × medianNorm) and with R random latents /
 * directions at the same α; the random set is the same at every c.
 */
export async function steeringSweep(o: SteeringSweepOptions): Promise<SteeringSweepResult> {
  const seed = o.seed ?? 0;
  const controls = controlSettings(o.target, o.random ?? 5, seed);
  const baseline = o.baseline === false ? null : await evaluateSetting(o, noIntervention);
  const points: SweepPoint[] = [];
  for (const c of o.cs) {
    const alpha = steeringAlpha(c, o.medianNorm);
    const target = await evaluateSetting(o, steerSetting(o.target, c, alpha));
    const random: SettingResult[] = [];
    for (const make of controls) random.push(await evaluateSetting(o, make(c, alpha)));
    points.push({ c, alpha, target, random, randomMisaligned: band(random) });
  }
  const minCoherent = o.minCoherent ?? 0.9;
  let best: SweepPoint | null = null;
  for (const p of points) {
    if (p.target.coherent < minCoherent || p.target.misaligned === null) continue;
    if (!best || p.target.misaligned > best.target.misaligned!) best = p;
  }
  return { baseline, points, best };
}

export interface AblationTestOptions extends CausalEvalOptions {
  sae: Sae;
  latents: number[];
  mode: AblationMode;
  /** Mean-ablation's reference: [dSae] means (interventions.ts: latentMeans) or one per latent. */
  reference?: Float32Array;
  /** Ablate this many sets of random latents (same count) as a control (default 0). */
  random?: number;
  /** Draw the random latents from this pool (interventions.ts: matchedLatents) instead of all. */
  controlPool?: readonly number[];
  seed?: number;
}

export interface BeforeAfter {
  before: SettingResult;
  after: SettingResult;
  random: SettingResult[];
  /** 1 − after / before on the misalignment rate (null when before is 0 or unknown). */
  reduction: number | null;
}

const reduction = (before: SettingResult, after: SettingResult) =>
  before.misaligned && after.misaligned !== null ? 1 - after.misaligned / before.misaligned : null;

/** Misalignment before and after ablating latents (zero or mean), with random-latent ablations beside. */
export async function ablationTest(o: AblationTestOptions): Promise<BeforeAfter> {
  const hookName = o.sae.cfg.hookName;
  const ablate = (latents: number[], control: boolean): Setting => ({
    spec: { kind: "ablate", hookName, latents, mode: o.mode, ...(control ? { control } : {}) },
    hooks: [ablateLatentsHook(o.sae, latents, { mode: o.mode, ...(o.reference ? { reference: o.reference } : {}) })],
  });
  if (o.reference && o.reference.length !== o.sae.cfg.dSae && (o.random ?? 0) > 0)
    throw new Error("ablationTest: random-latent controls need the dense [dSae] reference means");
  const before = await evaluateSetting(o, noIntervention);
  const after = await evaluateSetting(o, ablate(o.latents, false));
  const random: SettingResult[] = [];
  for (let r = 0; r < (o.random ?? 0); r++) {
    const latents = randomLatents(o.sae.cfg.dSae, o.latents.length, (o.seed ?? 0) + r, o.latents, o.controlPool);
    random.push(await evaluateSetting(o, ablate(latents, true)));
  }
  return { before, after, random, reduction: reduction(before, after) };
}

export interface ProjectOutTestOptions extends CausalEvalOptions {
  name: string;
  hookName: string;
  vector: Float32Array;
  /** Random directions projected out as a control (default 0). */
  random?: number;
  seed?: number;
}

/** Misalignment before and after projecting a direction out, with random directions beside. */
export async function projectOutTest(o: ProjectOutTestOptions): Promise<BeforeAfter> {
  const before = await evaluateSetting(o, noIntervention);
  const after = await evaluateSetting(o, {
    spec: { kind: "project-out", hookName: o.hookName, name: o.name },
    hooks: [projectOutHook(o.hookName, o.vector)],
  });
  const random: SettingResult[] = [];
  const seed = o.seed ?? 0;
  const dirs = randomUnitDirections(o.vector.length, o.random ?? 0, seed);
  for (const [i, u] of dirs.entries())
    random.push(
      await evaluateSetting(o, {
        spec: { kind: "project-out", hookName: o.hookName, name: "random", seed, index: i, control: true },
        hooks: [projectOutHook(o.hookName, u)],
      }),
    );
  return { before, after, random, reduction: reduction(before, after) };
}
