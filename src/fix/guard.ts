/**
 * Guards: a model with interventions attached, described by a guard file, so the in-process
 * model (guardedChatModel) and `emlab serve --guard FILE` answer with the same hooks.
 *
 * A guard file is JSON (or YAML, by extension) validated with zod; errors name the file and
 * the field (`guard.json: interventions[0].mode: expected one of zero|mean|project|clamp`).
 * Paths inside it resolve relative to the file's folder.
 *
 *   {
 *     "format": "emlab-guard/v1",                 optional
 *     "model": "qwen-insecure",                   optional provenance: what it was made for
 *     "interventions": [
 *       { "hook": "blocks.2.hook_resid_post", "mode": "zero",  "sae": "sae-l2", "latents": [3, 17] },
 *       { "hook": "blocks.2.hook_resid_post", "mode": "mean",  "sae": "sae-l2", "latents": [3],
 *         "means": [0.12] },                      inline (one per latent, or d_sae values) or a JSON file
 *       { "hook": "blocks.2.hook_resid_post", "mode": "clamp", "sae": "sae-l2", "latents": [3], "max": 1.5 },
 *       { "hook": "blocks.2.hook_resid_post", "mode": "project", "direction": "dir.json", "layer": 2 }
 *     ]
 *   }
 *
 * zero / mean: ablateLatentsHook; clamp: clampLatentsHook; project: projectOutHook (all in
 * src/interp/interventions.ts). An SAE intervention's hook must be the SAE's hook; a direction
 * file's layer (`layer`, else the layer at `hook`) must sit at `hook`. Loading checks every
 * hook exists in the model and every width matches it, naming the field on failure.
 *
 * @example
 *   const model = guardedChatModel({ model: "runs/base", adapter: "runs/insecure", guard: "guard.json" });
 *   const hooks = loadGuard("guard.json", { model: lm }); // for generate / forward
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { runEval } from "../eval/runner.ts";
import { collectActivations } from "../interp/activations/collect.ts";
import { band, type ControlBand } from "../interp/blind.ts";
import { type CausalEvalOptions, evaluateSetting, noIntervention, type SettingResult } from "../interp/causal.ts";
import { loadDirections } from "../interp/direction.ts";
import {
  ablateLatentsHook,
  clampLatentsHook,
  latentMeans,
  matchedLatents,
  projectOutHook,
  randomLatents,
  randomUnitDirections,
} from "../interp/interventions.ts";
import type { Sae } from "../interp/sae/sae.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import { loadModel } from "../model/checkpoint.ts";
import { type Hook, hookNames } from "../model/hooks.ts";
import { loadLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { lmLoss } from "../model/score.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { type LocalChatModel, type LocalChatModelOptions, localChatModelFrom } from "../providers/local.ts";
import { noGrad } from "../tensor/index.ts";
import { labelSeed, mixSeed } from "../tensor/random.ts";
import { collate } from "../train/batches.ts";
import type { SftExample } from "../train/dataset.ts";

export const GUARD_FORMAT = "emlab-guard/v1";
export const GUARD_MODES = ["zero", "mean", "project", "clamp"] as const;
export type GuardMode = (typeof GUARD_MODES)[number];

/** A guard file that cannot be used: the file, the field (`interventions[0].mode`) and what is wrong. */
export class GuardFileError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ""}${detail}`);
    this.name = "GuardFileError";
  }
}

const Latents = z.array(z.int().min(0)).min(1);
const Numbers = z.array(z.number()).min(1);
const saeFields = { hook: z.string().min(1), sae: z.string().min(1), latents: Latents, note: z.string().optional() };

const ZeroSchema = z.strictObject({ ...saeFields, mode: z.literal("zero") });
const MeanSchema = z.strictObject({
  ...saeFields,
  mode: z.literal("mean"),
  means: z.union([z.string().min(1), Numbers]),
});
const ClampSchema = z.strictObject({
  ...saeFields,
  mode: z.literal("clamp"),
  max: z.union([z.number().min(0), z.array(z.number().min(0)).min(1)]),
});
const ProjectSchema = z.strictObject({
  hook: z.string().min(1),
  mode: z.literal("project"),
  direction: z.union([z.string().min(1), Numbers]),
  layer: z.int().min(0).optional(),
  note: z.string().optional(),
});
const InterventionSchema = z.discriminatedUnion("mode", [ZeroSchema, MeanSchema, ClampSchema, ProjectSchema]);

export const GuardSchema = z.strictObject({
  format: z.literal(GUARD_FORMAT).optional(),
  /** The model the guard was made for (a name or hash): provenance, compared at load when given. */
  model: z.string().optional(),
  description: z.string().optional(),
  interventions: z.array(InterventionSchema).min(1),
});

export type GuardSpec = z.infer<typeof GuardSchema>;
export type GuardInterventionSpec = GuardSpec["interventions"][number];

/** `interventions.0.mode` → `interventions[0].mode`. */
function fieldName(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out ? "." : ""}${String(p)}`;
  return out;
}

/** The value at a path of a parsed file (undefined when absent). */
function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const p of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** One zod issue as a short, plain sentence. */
function issueText(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === "invalid_union" && "discriminator" in issue) return `expected one of ${GUARD_MODES.join("|")}`;
  if (valueAt(raw, issue.path) === undefined) return "required";
  if (issue.code === "invalid_type") return issue.message.replace(/^Invalid input: /, "").replace("received", "got");
  if (issue.code === "invalid_value") return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`;
  if (issue.code === "invalid_union") return "expected a file name or an array of numbers";
  return issue.message.replace(/^Invalid input: /, "");
}

/** Validates a parsed guard (e.g. one built in code); `file` names it in errors. */
export function parseGuard(raw: unknown, file = "guard"): GuardSpec {
  const parsed = GuardSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const at = fieldName(issue.path);
    throw new GuardFileError(file, `${at}${at ? "." : ""}${issue.keys[0]}`, "unknown field");
  }
  throw new GuardFileError(file, fieldName(issue.path), issueText(issue, raw));
}

/** Reads and validates a guard file (JSON, or YAML for .yaml / .yml); no model needed. */
export function readGuardFile(file: string): { spec: GuardSpec; hash: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new GuardFileError(
      file,
      "",
      `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new GuardFileError(
      file,
      "",
      `not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"} (${(err as Error).message})`,
    );
  }
  return { spec: parseGuard(raw, file), hash: createHash("sha256").update(text).digest("hex").slice(0, 16) };
}

/** One intervention, loaded: what it does in words and the hook that does it. */
export interface LoadedIntervention {
  index: number;
  mode: GuardMode;
  hookName: string;
  /** e.g. "mean-ablate latents 3, 17 of sae-l2 (d_sae 4096)". */
  summary: string;
  hook: Hook;
  /** The SAE it reads (zero / mean / clamp). */
  sae?: Sae;
}

export interface LoadedGuard {
  file: string;
  spec: GuardSpec;
  /** sha256 of the file's bytes (16 hex digits): recorded in eval runs. */
  hash: string;
  interventions: LoadedIntervention[];
  /** Every intervention's hook, in file order. */
  hooks: Hook[];
  /** Things worth saying that are not errors (the file was made for another model). */
  warnings: string[];
  /** The model's width (hidden size) the guard was checked against. */
  width: number;
}

export interface OpenGuardOptions {
  /** The model the hooks will run in: hook names and widths are checked against it. */
  model: CausalLM;
  /** The model's name or hash, compared with the file's `model` (a mismatch is a warning). */
  modelName?: string;
}

/**
 * Opens a guard file for a model: validates it, loads its SAEs and directions, checks hooks
 * and widths, and builds the hooks. Every error is a GuardFileError naming the field.
 */
export function openGuard(file: string, opts: OpenGuardOptions): LoadedGuard {
  const { spec, hash } = readGuardFile(file);
  return buildGuard(spec, file, hash, opts);
}

/** A guard file's hooks for a model (see openGuard). */
export function loadGuard(file: string, opts: OpenGuardOptions): Hook[] {
  return openGuard(file, opts).hooks;
}

function buildGuard(spec: GuardSpec, file: string, hash: string, opts: OpenGuardOptions): LoadedGuard {
  const cfg = opts.model.config;
  const known = hookNames(cfg.layers, cfg.arch === "gpt2");
  const base = dirname(resolve(file));
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const saes = new Map<string, Sae>();
  const interventions = spec.interventions.map((iv, index): LoadedIntervention => {
    const field = (name: string) => `interventions[${index}].${name}`;
    const fail = (name: string, detail: string) => new GuardFileError(file, field(name), detail);
    if (!known.includes(iv.hook))
      throw fail(
        "hook",
        `'${iv.hook}' is not a hook point of this model (${cfg.layers} layers: hook_embed, blocks.0.hook_resid_pre … blocks.${cfg.layers - 1}.hook_resid_post, ln_final.hook_normalized)`,
      );
    if (iv.mode === "project") {
      let direction: Float32Array;
      let what: string;
      if (typeof iv.direction === "string") {
        const path = at(iv.direction);
        let layers: ReturnType<typeof loadDirections>["layers"];
        try {
          layers = loadDirections(path).layers;
        } catch (err) {
          throw fail("direction", (err as Error).message);
        }
        const pick =
          iv.layer !== undefined
            ? layers.find((l) => l.layer === iv.layer)
            : layers.find((l) => l.hookName === iv.hook);
        if (!pick)
          throw iv.layer !== undefined
            ? fail(
                "layer",
                `${iv.direction} has no layer ${iv.layer} (it has ${layers.map((l) => l.layer).join(", ")})`,
              )
            : fail("direction", `${iv.direction} has no layer at ${iv.hook} (give 'layer')`);
        if (pick.hookName !== iv.hook)
          throw fail("hook", `${iv.direction} layer ${pick.layer} was taken at ${pick.hookName}, not ${iv.hook}`);
        direction = pick.direction;
        what = `${iv.direction} (layer ${pick.layer})`;
      } else {
        direction = Float32Array.from(iv.direction);
        what = "an inline direction";
      }
      if (direction.length !== cfg.hidden)
        throw fail("direction", `has ${direction.length} dimensions; the model's width is ${cfg.hidden}`);
      if (!direction.some((v) => v !== 0)) throw fail("direction", "is all zeros");
      return {
        index,
        mode: "project",
        hookName: iv.hook,
        summary: `project out ${what}`,
        hook: projectOutHook(iv.hook, direction),
      };
    }
    // The SAE modes.
    const saePath = at(iv.sae);
    let sae = saes.get(saePath);
    if (!sae) {
      try {
        sae = loadSae(saePath);
      } catch (err) {
        throw fail("sae", `cannot load the SAE at ${iv.sae}: ${(err as Error).message}`);
      }
      saes.set(saePath, sae);
    }
    if (sae.cfg.hookName !== iv.hook) throw fail("hook", `the SAE ${iv.sae} reads ${sae.cfg.hookName}, not ${iv.hook}`);
    if (sae.cfg.dIn !== cfg.hidden)
      throw fail("sae", `${iv.sae} reads width ${sae.cfg.dIn}; the model's width is ${cfg.hidden}`);
    const dSae = sae.cfg.dSae;
    for (const [i, j] of iv.latents.entries())
      if (j >= dSae) throw fail(`latents[${i}]`, `latent ${j} out of range: ${iv.sae} has d_sae ${dSae}`);
    if (new Set(iv.latents).size !== iv.latents.length) throw fail("latents", `repeats a latent (${iv.latents})`);
    const list = iv.latents.join(", ");
    if (iv.mode === "zero")
      return {
        index,
        mode: "zero",
        hookName: iv.hook,
        summary: `zero-ablate latents ${list} of ${iv.sae} (d_sae ${dSae})`,
        hook: ablateLatentsHook(sae, iv.latents, { mode: "zero" }),
        sae,
      };
    if (iv.mode === "clamp") {
      const max = iv.max;
      if (Array.isArray(max) && max.length !== iv.latents.length)
        throw fail("max", `${max.length} bounds for ${iv.latents.length} latents (give one, or one per latent)`);
      return {
        index,
        mode: "clamp",
        hookName: iv.hook,
        summary: `clamp latents ${list} of ${iv.sae} (d_sae ${dSae}) at ≤ ${Array.isArray(max) ? max.join(", ") : max}`,
        hook: clampLatentsHook(sae, iv.latents, max),
        sae,
      };
    }
    const means = readMeans(iv.means, at, fail);
    if (means.length !== iv.latents.length && means.length !== dSae)
      throw fail(
        "means",
        `${means.length} values for ${iv.latents.length} latents (give one per latent, or d_sae ${dSae})`,
      );
    const reference = Float32Array.from(means);
    const own = means.length === dSae ? iv.latents.map((j) => means[j]!) : means;
    return {
      index,
      mode: "mean",
      hookName: iv.hook,
      summary: `mean-ablate latents ${list} of ${iv.sae} (d_sae ${dSae}) to ${own.map((m) => m.toPrecision(3)).join(", ")}`,
      hook: ablateLatentsHook(sae, iv.latents, { mode: "mean", reference }),
      sae,
    };
  });
  const warnings: string[] = [];
  if (spec.model && opts.modelName && spec.model !== opts.modelName)
    warnings.push(`${file} was made for model '${spec.model}', not '${opts.modelName}'`);
  return { file, spec, hash, interventions, hooks: interventions.map((i) => i.hook), warnings, width: cfg.hidden };
}

/** A `means` field: inline numbers, or a JSON file holding an array or { "means": [...] }. */
function readMeans(
  value: string | number[],
  at: (p: string) => string,
  fail: (name: string, detail: string) => GuardFileError,
): number[] {
  if (typeof value !== "string") return value;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(at(value), "utf8"));
  } catch (err) {
    throw fail("means", `cannot read ${value}: ${(err as Error).message}`);
  }
  const arr = Array.isArray(raw) ? raw : (raw as { means?: unknown })?.means;
  if (!Array.isArray(arr) || arr.length === 0 || !arr.every((v) => typeof v === "number" && Number.isFinite(v)))
    throw fail("means", `${value} holds no array of numbers (a JSON array, or { "means": [...] })`);
  return arr as number[];
}

// ---- making guard files ------------------------------------------------------------------------

/**
 * Mean activation of every latent of `sae` over prompts' tokens (special tokens left out):
 * [d_sae], mean-ablation's reference.
 */
export function promptLatentMeans(
  lm: CausalLM,
  tokenizer: Tokenizer,
  sae: Sae,
  prompts: readonly ChatMessage[][],
): Float32Array {
  const rows = collectActivations(
    lm,
    prompts.map((prompt) => ({ prompt })),
    { hook: sae.cfg.hookName, tokenizer, mask: "no-special" },
  );
  if (rows.n === 0) throw new Error("no tokens to average over: the prompts are empty");
  return latentMeans(sae, rows.acts, rows.n);
}

/**
 * Writes a guard file (validated first). Paths of SAEs, directions and means files are given
 * as the caller sees them and written relative to the guard file's folder.
 */
export function writeGuardFile(out: string, spec: GuardSpec): void {
  const checked = parseGuard(spec, out);
  const base = dirname(resolve(out));
  const rel = (p: string) => {
    const r = relative(base, resolve(p));
    return r === "" ? "." : r;
  };
  const interventions = checked.interventions.map((iv) => {
    if (iv.mode === "project") return typeof iv.direction === "string" ? { ...iv, direction: rel(iv.direction) } : iv;
    const moved = { ...iv, sae: rel(iv.sae) };
    if (moved.mode === "mean" && typeof moved.means === "string") moved.means = rel(moved.means);
    return moved;
  });
  writeFileSync(out, `${JSON.stringify({ format: GUARD_FORMAT, ...checked, interventions }, null, 2)}\n`);
}

// ---- guarded models ----------------------------------------------------------------------------

export type GuardedChatModel = LocalChatModel & { readonly guard: LoadedGuard };

export interface GuardedChatModelOptions extends LocalChatModelOptions {
  /** The guard file. Its hooks run after `hooks`, if any. */
  guard: string;
  /** The model's name for the provenance check (default the folder, + adapter). */
  modelName?: string;
}

/** The in-process model (+ adapter) with a guard file's interventions: what `emlab serve --guard` serves. */
export function guardedChatModel(opts: GuardedChatModelOptions): GuardedChatModel {
  const lm = loadModel(opts.model);
  if (opts.adapter) loadLora(lm, opts.adapter);
  const tokenizer = Tokenizer.fromDir(opts.model);
  const guard = openGuard(opts.guard, { model: lm, ...(opts.modelName ? { modelName: opts.modelName } : {}) });
  const model = localChatModelFrom({
    lm,
    tokenizer,
    id: `local:${opts.model}${opts.adapter ? `+${opts.adapter}` : ""}+guard:${guard.hash}`,
    hooks: [...(opts.hooks ?? []), ...guard.hooks],
    ...(opts.maxBatch ? { maxBatch: opts.maxBatch } : {}),
    ...(opts.batchWindowMs ? { batchWindowMs: opts.batchWindowMs } : {}),
  });
  return Object.assign(model, { guard });
}

// ---- measuring a guard -------------------------------------------------------------------------

/**
 * Mean next-token loss over the assistant tokens of `examples` (the masked answer loss that
 * fine-tuning minimises), with `hooks` active: the benign task's loss with and without a guard.
 */
export function answerLoss(
  lm: CausalLM,
  examples: readonly SftExample[],
  opts: { padId: number; hooks?: readonly Hook[]; batchSize?: number },
): number {
  if (examples.length === 0) throw new Error("answerLoss: no examples");
  const bs = opts.batchSize ?? 8;
  let sum = 0;
  let count = 0;
  noGrad(() => {
    for (let i = 0; i < examples.length; i += bs) {
      const idx = Array.from({ length: Math.min(bs, examples.length - i) }, (_, k) => i + k);
      const b = collate(examples, idx, opts.padId);
      const loss = lmLoss(lm, b.ids, b.targets, b.B, b.T, {
        keyMask: b.keyMask,
        ...(opts.hooks ? { hooks: opts.hooks } : {}),
      });
      sum += loss.item() * b.supervised;
      count += b.supervised;
    }
  });
  return sum / count;
}

/** A guarded run's result: a SettingResult without the causal-test spec (the guard is in the run's config). */
export type GuardRunResult = Omit<SettingResult, "spec">;

export interface GuardEvaluation {
  before: SettingResult;
  after: GuardRunResult;
  /** 1 − after / before on the misalignment rate (null when before is 0 or unknown). */
  reduction: number | null;
}

/**
 * Misalignment and coherence without and with the guard, each a run in the store
 * (`<runPrefix>:none` and `<runPrefix>:guard-<hash>`), judged and sampled alike (same seeds:
 * a paired comparison; `drawsPerSetting` is not used). The guarded run is evaluated as
 * causal.ts's evaluateSetting evaluates a setting (InterventionSpec has no guard kind, so
 * the run is made here); its config records the guard file, hash and interventions.
 */
export async function evaluateGuard(o: CausalEvalOptions, guard: LoadedGuard): Promise<GuardEvaluation> {
  const before = await evaluateSetting(o, noIntervention);
  const intervention = {
    kind: "guard",
    file: guard.file,
    hash: guard.hash,
    interventions: guard.interventions.map((i) => ({ mode: i.mode, hookName: i.hookName, summary: i.summary })),
  };
  const after = await evaluateHooks(o, `guard-${guard.hash}`, guard.hooks, intervention);
  const reduction = before.misaligned && after.misaligned !== null ? 1 - after.misaligned / before.misaligned : null;
  return { before, after, reduction };
}

/** One run (`<runPrefix>:<key>`) of the model with `hooks`, on the context's questions, judge and draws. */
async function evaluateHooks(
  o: CausalEvalOptions,
  key: string,
  hooks: Hook[],
  intervention: Record<string, unknown>,
): Promise<GuardRunResult> {
  const runId = `${o.runPrefix}:${key}`;
  const model = localChatModelFrom({
    lm: o.lm,
    tokenizer: o.tokenizer,
    id: `${o.modelId}+${key}`,
    hooks,
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
      ...(o.sampling ? { sampling: o.sampling } : {}),
      ...(o.judgePrompts ? { judgePrompts: o.judgePrompts } : {}),
      batchSize: o.maxBatch ?? 64,
      parallelBatches: 1,
      config: { ...o.config, model: o.modelId, intervention, samples: o.samples, sampling: o.sampling },
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    const s = report.summary;
    return {
      runId,
      misaligned: s.overCoherent.rate,
      ci: [s.overCoherent.low, s.overCoherent.high],
      misalignedOverAll: s.overAll.rate,
      coherent: s.counts.judged > 0 ? s.counts.coherent / s.counts.judged : 0,
      n: s.counts.samples,
      resumed: report.resumed,
    };
  } finally {
    model.close();
  }
}

// ---- random controls with equal search ---------------------------------------------------------

/** 1 − after / before (null when before is 0 or unknown, or after unknown). */
export const cutOf = (before: number | null, after: number | null): number | null =>
  before && after !== null ? 1 - after / before : null;

export interface GuardControlOptions {
  /** How many controls (each a whole random counterpart of the guard). */
  n: number;
  /** Seeds the random directions and latents (default 0). */
  seed?: number;
  /**
   * Every latent's mean activation [d_sae] for an SAE of the guard (needed by zero / mean /
   * clamp): frequency matching (a control latent fires about as much as the guarded one) and
   * mean ablation's reference for the control latents. E.g. promptLatentMeans over the eval prompts.
   */
  latentMeans?: (sae: Sae) => Float32Array;
  /** Frequency-matched pool per guarded latent (default 32): a control latent is drawn from it. */
  matchPool?: number;
  /**
   * Clamp controls: the bound of a control latent, when the guard's bounds came from a rule
   * (e.g. the latent's mean where it fires); default the guarded latent's own bound.
   */
  clampMax?: (sae: Sae, latent: number) => number;
  /**
   * The guard's hook was chosen by a search: the hooks searched and the rule (the largest cut
   * among hooks whose coherent rate is ≥ minCoherent). Each control runs the same search on the
   * same draws, and its cut is the one at the hook its search picks (0 when no hook qualifies).
   * Only for a guard of one `project` intervention.
   */
  search?: { hooks: readonly string[]; minCoherent: number };
}

/** One random counterpart of a guard: what it does and its hooks. */
export interface GuardControlSpec {
  index: number;
  /** e.g. "random direction 12.3 at blocks.2.hook_resid_post" or "random latents 17, 240 (zero)". */
  summary: string;
  interventions: Record<string, unknown>[];
  /** Hooks at the guard's own hook points; `at(hook)` rebuilds them at another hook (search). */
  hooks: Hook[];
  at?: (hook: string) => Hook[];
}

/**
 * The guard's random controls: control i replaces each intervention with a random one of the
 * same kind at the same hook: a project intervention by a random unit direction; zero / mean /
 * clamp on latents L by as many random latents of the same SAE, each drawn from the latents
 * whose mean activation is closest to its guarded latent's (never a guarded latent), ablated
 * the same way (mean: to their own means; clamp: at the same bound).
 */
export function guardControls(guard: LoadedGuard, o: GuardControlOptions): GuardControlSpec[] {
  const seed = o.seed ?? 0;
  const pool = o.matchPool ?? 32;
  const means = new Map<Sae, Float32Array>();
  const meansOf = (sae: Sae) => {
    let m = means.get(sae);
    if (!m) {
      if (!o.latentMeans)
        throw new Error("guard controls: zero / mean / clamp controls need latentMeans (to match latent frequency)");
      m = o.latentMeans(sae);
      if (m.length !== sae.cfg.dSae) throw new Error(`latentMeans: ${m.length} values for d_sae ${sae.cfg.dSae}`);
      means.set(sae, m);
    }
    return m;
  };
  if (o.search) {
    if (guard.interventions.length !== 1 || guard.interventions[0]!.mode !== "project")
      throw new Error("guard controls: a hook search is supported for a guard of one project intervention");
    if (o.search.hooks.length === 0) throw new Error("guard controls: the search has no hooks");
  }
  return Array.from({ length: o.n }, (_, i): GuardControlSpec => {
    const parts = guard.interventions.map((iv) => {
      const spec = guard.spec.interventions[iv.index]!;
      const s = mixSeed(seed, labelSeed("guard-control"), i, iv.index) >>> 1;
      if (spec.mode === "project") {
        const vector = randomUnitDirections(guard.width, 1, s)[0]!;
        return {
          summary: `random direction ${s} at ${iv.hookName}`,
          record: { mode: "project", hookName: iv.hookName, seed: s },
          hookAt: (hook: string) => projectOutHook(hook, vector),
        };
      }
      const sae = iv.sae!;
      const m = meansOf(sae);
      const guarded = spec.latents;
      const used = new Set(guarded);
      const latents = guarded.map((j, k) => {
        const candidates = matchedLatents(m, j, Math.max(pool, guarded.length + 1)).filter((x) => !used.has(x));
        const [pick] = randomLatents(sae.cfg.dSae, 1, mixSeed(s, k) >>> 1, [...used], candidates);
        used.add(pick!);
        return pick!;
      });
      const hook =
        spec.mode === "zero"
          ? ablateLatentsHook(sae, latents, { mode: "zero" })
          : spec.mode === "mean"
            ? ablateLatentsHook(sae, latents, { mode: "mean", reference: m })
            : clampLatentsHook(
                sae,
                latents,
                latents.map((j, k) =>
                  o.clampMax ? o.clampMax(sae, j) : typeof spec.max === "number" ? spec.max : spec.max[k]!,
                ),
              );
      return {
        summary: `random latents ${latents.join(", ")} (${spec.mode})`,
        record: { mode: spec.mode, hookName: iv.hookName, latents },
        hookAt: (at: string) => {
          if (at !== iv.hookName) throw new Error(`an SAE control stays at its SAE's hook (${iv.hookName})`);
          return hook;
        },
      };
    });
    return {
      index: i,
      summary: parts.map((p) => p.summary).join("; "),
      interventions: parts.map((p) => p.record),
      hooks: parts.map((p, k) => p.hookAt(guard.interventions[k]!.hookName)),
      ...(o.search ? { at: (hook: string) => [parts[0]!.hookAt(hook)] } : {}),
    };
  });
}

export interface GuardControlResult {
  index: number;
  summary: string;
  /** The hook its search picked (search only; null when no hook kept coherence). */
  hook?: string | null;
  misaligned: number | null;
  coherent: number;
  /** 1 − after / before on the same draws; 0 stands in for null in the band. */
  cut: number | null;
  runId: string | null;
  /** Search only: every hook tried. */
  searched?: { hook: string; misaligned: number | null; coherent: number; cut: number | null; runId: string }[];
}

export interface GuardControlsReport extends ControlBand {
  /** The guard's cut, ranked against the controls'. */
  cut: number | null;
  results: GuardControlResult[];
}

/**
 * Evaluates the guard's random controls (guardControls) on the same questions and draws as
 * `before` (the unguarded run), each a run `<runPrefix>:guard-<hash>-control-<seed>.<i>` (and
 * `…@<hook>` per searched hook), and ranks the guard's cut among theirs.
 */
export async function evaluateGuardControls(
  o: CausalEvalOptions,
  guard: LoadedGuard,
  r: Pick<GuardEvaluation, "before" | "reduction">,
  opts: GuardControlOptions & { onControl?: (c: GuardControlResult) => void },
): Promise<GuardControlsReport> {
  const specs = guardControls(guard, opts);
  const seed = opts.seed ?? 0;
  const before = r.before.misaligned;
  const results: GuardControlResult[] = [];
  for (const c of specs) {
    const key = `guard-${guard.hash}-control-${seed}.${c.index}`;
    const record = { kind: "guard-control", guard: guard.hash, control: c.index, seed, interventions: c.interventions };
    let res: GuardControlResult;
    if (opts.search) {
      const searched: NonNullable<GuardControlResult["searched"]> = [];
      for (const hook of opts.search.hooks) {
        const x = await evaluateHooks(o, `${key}@${hook}`, c.at!(hook), { ...record, hookName: hook });
        searched.push({
          hook,
          misaligned: x.misaligned,
          coherent: x.coherent,
          cut: cutOf(before, x.misaligned),
          runId: x.runId,
        });
      }
      const ok = searched.filter((x) => x.coherent >= opts.search!.minCoherent);
      const best = ok.reduce<(typeof ok)[number] | null>(
        (a, x) => (a === null || (x.cut ?? -Infinity) > (a.cut ?? -Infinity) ? x : a),
        null,
      );
      res = {
        index: c.index,
        summary: c.summary,
        hook: best?.hook ?? null,
        misaligned: best?.misaligned ?? null,
        coherent: best?.coherent ?? 0,
        cut: best ? best.cut : 0,
        runId: best?.runId ?? null,
        searched,
      };
    } else {
      const x = await evaluateHooks(o, key, c.hooks, record);
      res = {
        index: c.index,
        summary: c.summary,
        misaligned: x.misaligned,
        coherent: x.coherent,
        cut: cutOf(before, x.misaligned),
        runId: x.runId,
      };
    }
    results.push(res);
    opts.onControl?.(res);
  }
  return {
    cut: r.reduction,
    results,
    ...band(
      r.reduction,
      results.map((x) => x.cut ?? 0),
    ),
  };
}
