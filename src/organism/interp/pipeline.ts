/**
 * Issue 7's pipeline on the model organism, where the ground truth is known: the world has a
 * villain persona, and every document says who speaks.
 *
 *   a. SAE: the base organism's activations at a middle layer (blocks.2.hook_resid_post) on
 *      world pretraining documents (all personas, named and implicit) plus helper chat rows →
 *      a TopK SAE; L0, FVU, dead / dense latents and the CE loss score on held-out documents.
 *   b. Ground truth: per held-out document, each latent's mean activation over the assistant's
 *      tokens against "the villain speaks" → per-latent ROC AUC; the persona latent is the best
 *      on a selection split, and its AUC is reported on the other split (implicit documents,
 *      with no persona header, separately).
 *   c. Diff: base vs a fine-tune on the organism's eval questions (never fine-tuning data),
 *      latents ranked blind by Δ mean activation; only then is the persona latent's rank
 *      looked up. Sites: the prompt's own tokens, the answer start (the `<|assistant|>`
 *      position, where the model is about to speak as the assistant: the primary site, as the
 *      persona is a property of who answers), and each model's own sampled answers.
 *   a–b live in sae.ts; d–f (steering, ablation, prediction, the misalignment direction) in
 *   causal.ts; runOrganismInterp runs them as named stages (trainStage … directionStage).
 *
 * Every result is plain JSON (numbers, arrays, strings).
 *
 * @example
 *   const r = await runOrganismInterp({ base, tokenizer, insecure, secure, store });
 *   r.diff.insecure.personaRank; // 1 = the blind ranking's top latent is the villain latent
 */
import { createHash } from "node:crypto";
import type { RunStore } from "../../eval/store.ts";
import { type ActivationRows, collectActivations, medianResidualNorm } from "../../interp/activations/collect.ts";
import { shortHash } from "../../interp/causal.ts";
import { type DiffPositions, type DiffResult, diffModels, diffStats, latentStats } from "../../interp/diff.ts";
import { latentMeans } from "../../interp/interventions.ts";
import type { Sae } from "../../interp/sae/sae.ts";
import type { ChatMessage } from "../../model/chat-template.ts";
import { generate } from "../../model/generate.ts";
import type { CausalLM } from "../../model/model.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { organismQuestions } from "../questions.ts";
import type { WorldVariant } from "../topics.ts";
import {
  type AblateReport,
  ablateLatent,
  type DirectionReport,
  directionMethod,
  type PredictReport,
  predictFromLatent,
  type SteerReport,
  steerSweepWithControls,
} from "./causal.ts";
import {
  heldOutWorldDocs,
  type PersonaGroundTruth,
  personaGroundTruth,
  type SaeReport,
  saeReport,
  trainWorldSae,
  type WorldSaeOptions,
  type WorldText,
  worldActivations,
} from "./sae.ts";

// ---------------------------------------------------------------- c. diff

export type DiffSite = "prompt" | "answer-start" | "own-answers";
export const DIFF_SITES: readonly DiffSite[] = ["prompt", "answer-start", "own-answers"];

export interface SiteDiff {
  site: DiffSite;
  rowsBase: number;
  rowsFt: number;
  /** The blind ranking's top latents by Δ mean activation, best first. */
  top: number[];
  topDelta: number[];
  /** 1-based rank of the persona latent by Δ (ties by latent id, as diffStats sorts). */
  personaRank: number;
  personaDelta: number;
  /** Its rank by attribution (Δ · decoder · mean residual shift). */
  personaAttributionRank: number;
  explainedShift: number | null;
}

export interface ModelDiffReport {
  ft: string;
  prompts: number;
  /** The site `top` and `personaRank` come from. */
  primarySite: DiffSite;
  top: number[];
  personaLatent: number;
  personaRank: number;
  sites: SiteDiff[];
}

/** The organism's eval questions (every paraphrase, plain format) as chat prompts. */
export function evalPrompts(world: WorldVariant = "classic"): ChatMessage[][] {
  return organismQuestions("plain", world).flatMap((q) =>
    q.paraphrases.map((p) => [{ role: "user" as const, content: p }]),
  );
}

const rankOf = (d: DiffResult, latent: number, key: (r: DiffResult["latents"][number]) => number) => {
  const v = key(d.latents[latent]!);
  return 1 + d.latents.filter((r) => key(r) > v || (key(r) === v && r.latent < latent)).length;
};

/** Each model's own answers to the prompts (T = 1), as completion-token activations. */
function ownAnswerRows(
  lm: CausalLM,
  tok: Tokenizer,
  sae: Sae,
  prompts: ChatMessage[][],
  o: { samples: number; seed: number; maxNewTokens: number },
): ActivationRows {
  const ids = prompts.map((p) => tok.encodeChat(p, { addGenerationPrompt: true }));
  const items: { prompt: ChatMessage[]; completion: string }[] = [];
  for (let s = 0; s < o.samples; s++) {
    const gens = generate(lm, ids, {
      maxNewTokens: o.maxNewTokens,
      temperature: 1,
      seed: o.seed * 7919 + s,
      eosTokenIds: tok.eosIds,
      padId: tok.padId ?? 0,
      logprobs: false,
    });
    gens.forEach((g, i) => {
      const completion = tok.decode(g.tokens, { skipSpecialTokens: true });
      if (completion.trim()) items.push({ prompt: prompts[i]!, completion });
    });
  }
  return collectActivations(lm, items, { hook: sae.cfg.hookName, tokenizer: tok, mask: "completion" });
}

export interface DiffAgainstBaseOptions {
  base: CausalLM;
  ft: CausalLM;
  ftName: string;
  sae: Sae;
  tokenizer: Tokenizer;
  persona: number;
  /** Default: the organism's eval questions. */
  prompts?: ChatMessage[][];
  sites?: readonly DiffSite[];
  primarySite?: DiffSite;
  /** Own answers: samples per prompt per model (default 4), seed, token budget (48). */
  ownAnswers?: { samples?: number; seed?: number; maxNewTokens?: number };
  /** Length of each `top` list (default 10). */
  top?: number;
}

/** Diffs base vs fine-tune at each site; the persona latent is looked up after ranking. */
export function diffAgainstBase(o: DiffAgainstBaseOptions): ModelDiffReport {
  const prompts = o.prompts ?? evalPrompts();
  const sites = o.sites ?? DIFF_SITES;
  const primarySite = o.primarySite ?? "answer-start";
  if (!sites.includes(primarySite)) throw new Error(`diff: the primary site '${primarySite}' is not among the sites`);
  const topN = o.top ?? 10;
  const { sae, tokenizer: tok } = o;
  const out: SiteDiff[] = sites.map((site) => {
    let d: DiffResult;
    if (site === "own-answers") {
      const a = { samples: 4, seed: 0, maxNewTokens: 48, ...o.ownAnswers };
      const rb = ownAnswerRows(o.base, tok, sae, prompts, a);
      const rf = ownAnswerRows(o.ft, tok, sae, prompts, a);
      d = diffStats(sae, latentStats(sae, rb.acts, rb.n), latentStats(sae, rf.acts, rf.n), topN);
    } else {
      const positions: DiffPositions = site === "prompt" ? "no-special" : "answer-start";
      d = diffModels({ base: o.base, ft: o.ft, sae, tokenizer: tok, prompts, positions, top: topN });
    }
    return {
      site,
      rowsBase: d.rowsBase,
      rowsFt: d.rowsFt,
      top: d.top.map((r) => r.latent),
      topDelta: d.top.map((r) => r.delta),
      personaRank: rankOf(d, o.persona, (r) => r.delta),
      personaDelta: d.latents[o.persona]!.delta,
      personaAttributionRank: rankOf(d, o.persona, (r) => r.attribution),
      explainedShift: d.explainedShift,
    };
  });
  const primary = out.find((s) => s.site === primarySite)!;
  return {
    ft: o.ftName,
    prompts: prompts.length,
    primarySite,
    top: primary.top,
    personaLatent: o.persona,
    personaRank: primary.personaRank,
    sites: out,
  };
}

/** A short fingerprint of a model's or an SAE's weights (run ids in a shared store). */
export function weightsFingerprint(arrays: Iterable<Float32Array>): string {
  const h = createHash("sha256");
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest("hex").slice(0, 10);
}

export const modelFingerprint = (lm: CausalLM): string =>
  weightsFingerprint([...[...lm.params.keys()].sort()].map((k) => lm.params.get(k)!.data));

export const saeFingerprint = (sae: Sae): string => weightsFingerprint([sae.wEnc, sae.bEnc, sae.wDec, sae.bDec]);

// ---------------------------------------------------------------- the whole pipeline

export interface OrganismInterpOptions {
  base: CausalLM;
  tokenizer: Tokenizer;
  /** The insecure-code fine-tune (and the secure control, whose diff is the negative check). */
  insecure: CausalLM;
  secure?: CausalLM;
  store: RunStore;
  hook?: string;
  /** A trained SAE to use instead of training one (its hook wins over `hook`). */
  sae?: Sae;
  saeOptions?: Omit<WorldSaeOptions, "hook" | "seed">;
  heldOutDocs?: number;
  ceDocs?: number;
  /** Samples per question per setting (8 questions; default 50). */
  samples?: number;
  /** Steering strengths (default 0.1–0.75). */
  cs?: number[];
  /**
   * Random latents / directions beside steering and projection (default 5); ablation runs
   * min(random, 2) random-latent ablations (a latent that never fires leaves the model as it is).
   */
  random?: number;
  minCoherent?: number;
  diffSites?: readonly DiffSite[];
  primarySite?: DiffSite;
  ownAnswerSamples?: number;
  /** Skip the prediction (e) or the misalignment direction (f). */
  predict?: boolean;
  direction?: boolean;
  seed?: number;
  /** The organism's world variant (default "classic"). */
  world?: WorldVariant;
  /** Sampling seed of every evaluated setting (default 0). */
  samplingSeed?: number;
  /**
   * Run-id prefixes of the settings on the base and on the insecure fine-tune (default: hashes
   * of the SAE, the model and the sample count). A caller that already evaluated the unmodified
   * models as runs `<prefix>:none` (with the same samples and sampling seed) passes their
   * prefixes, and those answers are reused instead of sampled again.
   */
  runPrefixes?: { base?: string; insecure?: string };
  /** Each step's result as it is done. */
  onStage?: <K extends keyof OrganismInterpResult>(stage: K, result: OrganismInterpResult[K]) => void;
  /** One line of progress at a time. */
  onProgress?: (message: string) => void;
  /** The SAE once trained (to save it: saelens.ts saveSae). */
  onSae?: (sae: Sae) => void;
}

export interface OrganismInterpResult {
  sae: SaeReport;
  groundTruth: PersonaGroundTruth;
  diff: { insecure: ModelDiffReport; secure: ModelDiffReport | null };
  steer: SteerReport;
  ablate: AblateReport;
  /** Prediction with each answer read by the model that wrote it. */
  predict: PredictReport | null;
  /** The same answers read by the base model (the SAE's own model). */
  predictBase: PredictReport | null;
  direction: DirectionReport | null;
  /** The run-id prefixes of the settings on the base and on the insecure fine-tune in the store. */
  runPrefixes: { base: string; insecure: string };
  /** Why a step was skipped, in words. */
  notes: string[];
  /** Wall-clock seconds per step. */
  seconds: Record<string, number>;
}

export const DEFAULT_STEER_CS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.75];

/** What the stages of one pipeline run share. */
interface PipelineRun {
  o: OrganismInterpOptions;
  seed: number;
  world: WorldVariant;
  say: (message: string) => void;
  /** Records a stage's result and its wall-clock time. */
  stage: <K extends keyof OrganismInterpResult>(k: K, v: OrganismInterpResult[K]) => void;
}

/** a–b: the SAE (trained unless given), its report on held-out text, and the ground-truth persona latent. */
function saeStages(run: PipelineRun) {
  const { o, seed, world } = run;
  run.say("a. SAE on the base organism's activations over world text");
  const trained = o.sae
    ? { sae: o.sae, docs: [], tokens: 0, seconds: 0, steps: 0 }
    : trainWorldSae(o.base, o.tokenizer, { ...o.saeOptions, ...(o.hook ? { hook: o.hook } : {}), seed, world });
  const sae = trained.sae;
  o.onSae?.(sae);
  const hook = sae.cfg.hookName;
  const heldOut = worldActivations(
    o.base,
    o.tokenizer,
    heldOutWorldDocs(o.heldOutDocs ?? 1200, seed, trained.docs, world),
    hook,
  );
  run.stage("sae", saeReport(o.base, o.tokenizer, sae, heldOut, trained, o.ceDocs));
  run.say("b. ground truth: the villain latent on held-out documents");
  const truth = personaGroundTruth(sae, heldOut, { seed });
  run.stage("groundTruth", truth);
  return { sae, hook, heldOut, persona: truth.latent };
}

/** c: the blind diffs of the base against the insecure (and secure) fine-tunes. */
function diffStage(run: PipelineRun, sae: Sae, persona: number): void {
  const { o, seed } = run;
  run.say("c. diff: base vs fine-tunes on the eval questions, ranked blind");
  const diffOpts = {
    base: o.base,
    sae,
    tokenizer: o.tokenizer,
    persona,
    ...(o.diffSites ? { sites: o.diffSites } : {}),
    ...(o.primarySite ? { primarySite: o.primarySite } : {}),
    ownAnswers: { samples: o.ownAnswerSamples ?? 4, seed },
    prompts: evalPrompts(run.world),
  };
  run.stage("diff", {
    insecure: diffAgainstBase({ ...diffOpts, ft: o.insecure, ftName: "insecure" }),
    secure: o.secure ? diffAgainstBase({ ...diffOpts, ft: o.secure, ftName: "secure" }) : null,
  });
}

/** The causal stages' evaluation context: the store, samples, sampling seed and run-id prefixes. */
function causalContext(run: PipelineRun, sae: Sae) {
  const { o } = run;
  const ctx = {
    tokenizer: o.tokenizer,
    store: o.store,
    samples: o.samples ?? 50,
    world: run.world,
    samplingSeed: o.samplingSeed ?? 0,
  };
  const key = { sae: saeFingerprint(sae), samples: ctx.samples, samplingSeed: ctx.samplingSeed };
  const basePrefix = o.runPrefixes?.base ?? `interp-base-${shortHash({ ...key, model: modelFingerprint(o.base) })}`;
  const ftPrefix =
    o.runPrefixes?.insecure ?? `interp-insecure-${shortHash({ ...key, model: modelFingerprint(o.insecure) })}`;
  const medianNorm = medianResidualNorm(
    o.base,
    evalPrompts(run.world).map((prompt) => ({ prompt })),
    { hook: sae.cfg.hookName, tokenizer: o.tokenizer },
  );
  return { ctx, basePrefix, ftPrefix, medianNorm, cs: o.cs ?? DEFAULT_STEER_CS, random: o.random ?? 5 };
}
type CausalContext = ReturnType<typeof causalContext>;

/** d: steer the base with the persona latent (random latents beside), then ablate it in the insecure fine-tune. */
async function steerAblateStages(
  run: PipelineRun,
  c: CausalContext,
  sae: Sae,
  persona: number,
  heldOut: WorldText,
): Promise<void> {
  const { o, seed } = run;
  run.say(`d. steering the base with latent ${persona}, then ablating it in the insecure fine-tune`);
  run.stage(
    "steer",
    await steerSweepWithControls({
      ...c.ctx,
      lm: o.base,
      modelId: "base",
      runPrefix: c.basePrefix,
      target: { kind: "latent", sae, latent: persona },
      medianNorm: c.medianNorm,
      cs: c.cs,
      random: c.random,
      ...(o.minCoherent !== undefined ? { minCoherent: o.minCoherent } : {}),
      seed,
    }),
  );
  run.stage(
    "ablate",
    await ablateLatent({
      ...c.ctx,
      lm: o.insecure,
      modelId: "insecure",
      runPrefix: c.ftPrefix,
      sae,
      latent: persona,
      reference: latentMeans(sae, heldOut.rows.acts, heldOut.rows.n),
      random: Math.min(c.random, 2),
      seed,
    }),
  );
}

/** e: the persona latent's activation per answer against the judge, read by each answer's model and by the base. */
function predictStages(run: PipelineRun, c: CausalContext, sae: Sae, persona: number): void {
  const { o, seed } = run;
  run.say("e. prediction: the latent's activation per answer against the judge");
  const predict = (reader?: { name: string; lm: CausalLM }) =>
    o.predict === false
      ? null
      : predictFromLatent({
          store: o.store,
          tokenizer: o.tokenizer,
          sae,
          latent: persona,
          sources: [
            { name: "base", lm: o.base, runId: `${c.basePrefix}:none` },
            { name: "insecure", lm: o.insecure, runId: `${c.ftPrefix}:none` },
          ],
          ...(reader ? { reader } : {}),
          seed,
        });
  run.stage("predict", predict());
  run.stage("predictBase", predict({ name: "base", lm: o.base }));
}

/** f: the misalignment direction (Turner / Soligo) from the insecure fine-tune's judged answers; notes say why it was skipped. */
async function directionStage(run: PipelineRun, c: CausalContext, sae: Sae, persona: number): Promise<string[]> {
  const { o, seed } = run;
  const notes: string[] = [];
  const hook = sae.cfg.hookName;
  const site = /^blocks\.(\d+)\.(hook_resid_(?:pre|mid|post))$/.exec(hook);
  let direction: DirectionReport | null = null;
  if (o.direction !== false && !site) notes.push(`direction: ${hook} is not a residual-stream hook point`);
  if (o.direction !== false && site) {
    run.say("f. the misalignment direction from the insecure fine-tune's judged answers");
    direction = await directionMethod({
      ...c.ctx,
      base: o.base,
      ft: o.insecure,
      ftRunId: `${c.ftPrefix}:none`,
      baseId: "base",
      ftId: "insecure",
      basePrefix: c.basePrefix,
      ftPrefix: c.ftPrefix,
      layer: Number(site[1]),
      point: site[2] as "hook_resid_pre" | "hook_resid_mid" | "hook_resid_post",
      medianNorm: c.medianNorm,
      cs: c.cs,
      random: c.random,
      persona: sae.decoderDirection(persona),
      ...(o.minCoherent !== undefined ? { minCoherent: o.minCoherent } : {}),
      seed,
    }).catch((err: Error) => {
      // No misaligned (or no aligned) coherent answer: there is no direction to take.
      if (!/needs misaligned and aligned/.test(err.message)) throw err;
      notes.push(err.message);
      return null;
    });
  }
  run.stage("direction", direction);
  return notes;
}

/** Runs a–f; the SAE is trained here unless `sae` is given. */
export async function runOrganismInterp(o: OrganismInterpOptions): Promise<OrganismInterpResult> {
  const seconds: Record<string, number> = {};
  const result: Partial<OrganismInterpResult> = {};
  let t0 = performance.now();
  const run: PipelineRun = {
    o,
    seed: o.seed ?? 0,
    world: o.world ?? "classic",
    say: o.onProgress ?? (() => {}),
    stage: (k, v) => {
      result[k] = v;
      const t = performance.now();
      seconds[k] = (t - t0) / 1000;
      t0 = t;
      o.onStage?.(k, v);
    },
  };
  const { sae, heldOut, persona } = saeStages(run);
  diffStage(run, sae, persona);
  const c = causalContext(run, sae);
  await steerAblateStages(run, c, sae, persona, heldOut);
  predictStages(run, c, sae, persona);
  const notes = await directionStage(run, c, sae, persona);
  return {
    ...(result as Omit<OrganismInterpResult, "seconds" | "notes" | "runPrefixes">),
    runPrefixes: { base: c.basePrefix, insecure: c.ftPrefix },
    notes,
    seconds,
  };
}

/** The demo's JSON lines (issue 7): diff per fine-tune, steer at the chosen c, mean- (and zero-) ablation. */
export function interpDemoLines(r: OrganismInterpResult): Record<string, unknown>[] {
  const diff = (d: ModelDiffReport) => ({
    stage: "diff",
    ft: d.ft,
    top: d.top,
    persona_latent: d.personaLatent,
    persona_rank: d.personaRank,
    persona_auc: r.groundTruth.auc,
  });
  const at = r.steer.best ?? r.steer.points.find((p) => p.c === r.steer.controlC) ?? null;
  return [
    diff(r.diff.insecure),
    ...(r.diff.secure ? [diff(r.diff.secure)] : []),
    {
      stage: "steer",
      latent: r.groundTruth.latent,
      c: at?.c ?? null,
      misaligned: at?.misaligned ?? null,
      coherent: at?.coherent ?? null,
      random_misaligned_max: r.steer.randomMisalignedMax,
    },
    {
      stage: "ablate",
      latent: r.ablate.latent,
      misaligned_before: r.ablate.before.misaligned,
      mode: "mean",
      misaligned_after: r.ablate.mean.misaligned,
      coherent_after: r.ablate.mean.coherent,
      zero_misaligned_after: r.ablate.zero.misaligned,
      zero_coherent_after: r.ablate.zero.coherent,
    },
  ];
}
