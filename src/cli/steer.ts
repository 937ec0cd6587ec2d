/**
 * `emlab steer`: causal tests, each setting evaluated by the evaluation runner and recorded as
 * a run in the run store. Steer along an SAE latent or a direction file at c × the median
 * residual norm for each c, beside R random latents / directions at the same α; ablate latents
 * (zero or mean) before / after; project a direction out before / after.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { resolve } from "node:path";
import { ConfigError } from "../eval/config.ts";
import { chatModelFromConfig, type ModelHandle } from "../eval/providers.ts";
import { loadQuestionFile, type Question } from "../eval/questions.ts";
import { openRunStore, type RunStore } from "../eval/store.ts";
import { collectActivations, medianRowNorm } from "../interp/activations/collect.ts";
import {
  ablationTest,
  type BeforeAfter,
  type CausalEvalOptions,
  projectOutTest,
  type SettingResult,
  type SteeringTarget,
  shortHash,
  steeringSweep,
} from "../interp/causal.ts";
import { type LayerDirection, loadDirections } from "../interp/direction.ts";
import { type AblationMode, latentMeans } from "../interp/interventions.ts";
import type { Sae } from "../interp/sae/sae.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { ORGANISM_MAX_NEW_TOKENS, organismEvaluation } from "../organism/evaluation.ts";
import { writeLinesReport } from "../report/report.ts";
import {
  CliError,
  EXIT,
  formatHelp,
  HELP_FLAG,
  intList,
  intOption,
  loadModelArg,
  numberOption,
  parseOptions,
  printJson,
  questionPrompts,
  readPrompts,
  withUserErrors,
} from "./common.ts";

export const summary =
  "steer, ablate or project out a latent / direction; every setting evaluated (misalignment, coherence)";

const DEFAULT_CS = "0.05,0.1,0.2,0.4,0.75";
const DEFAULT_STORE = "runs/emlab.sqlite";
const WHAT = "what to do";
const HOW = "how each setting is evaluated";

export const flags = {
  model: { type: "string", arg: "DIR", help: "model folder (+ --adapter DIR)", group: WHAT },
  adapter: { type: "string", arg: "DIR", help: "a LoRA adapter (PEFT layout) over --model", group: WHAT },
  sae: { type: "string", arg: "DIR", help: "SAE folder (SAELens layout); latents act at its hook", group: WHAT },
  latent: { type: "string", arg: "J", help: "steer along latent J's unit decoder direction", group: WHAT },
  direction: { type: "string", arg: "FILE", help: "steer along a direction file (emlab diff direction)", group: WHAT },
  layer: {
    type: "string",
    arg: "L",
    help: "which layer of a direction file (default: the middle one in the file)",
    group: WHAT,
  },
  c: {
    type: "string",
    arg: "LIST",
    help: `steering strengths, comma-separated: α = c × median residual norm\n(default ${DEFAULT_CS})`,
    group: WHAT,
  },
  random: {
    type: "string",
    arg: "R",
    help: "random latents / directions per setting at the same α (default 5)",
    group: WHAT,
  },
  ablate: { type: "string", arg: "LIST", help: "ablate these latents (comma-separated), before / after", group: WHAT },
  mode: {
    type: "string",
    arg: "zero|mean",
    help: "ablation: zero, or the latent's mean over the norm prompts (default mean)",
    group: WHAT,
  },
  "project-out": {
    type: "string",
    arg: "FILE",
    help: "project a direction file's direction out, before / after",
    group: WHAT,
  },
  "min-coherent": {
    type: "string",
    arg: "X",
    help: "a steering setting counts when coherent ≥ X (default 0.9)",
    group: WHAT,
  },
  "organism-questions": {
    type: "boolean",
    help: "the organism's eight first-plot questions, judged by the world judge",
    group: HOW,
  },
  questions: {
    type: "string",
    arg: "FILE",
    help: "question YAML (EM paper format), judged by --judge-model",
    group: HOW,
  },
  "judge-base-url": { type: "string", arg: "URL", help: "the judge's OpenAI-compatible endpoint", group: HOW },
  "judge-model": { type: "string", arg: "NAME", help: "the judge model's name", group: HOW },
  "judge-api-key-env": {
    type: "string",
    arg: "VAR",
    help: "environment variable holding the judge's API key",
    group: HOW,
  },
  "norm-prompts": {
    type: "string",
    arg: "FILE",
    help: "prompts for the median residual norm and the mean latent activations\n(chat JSONL or question YAML; default the evaluation's questions)",
    group: HOW,
  },
  samples: { type: "string", arg: "N", help: "samples per question per setting (default 50)", group: HOW },
  "max-new-tokens": {
    type: "string",
    arg: "N",
    help: `answer length in tokens (default ${ORGANISM_MAX_NEW_TOKENS} with --organism-questions, else 600)`,
    group: HOW,
  },
  seed: { type: "string", arg: "S", help: "sampling seed and random controls' seed (default 0)", group: HOW },
  store: { type: "string", arg: "FILE", help: `run store (default ${DEFAULT_STORE})`, group: HOW },
  "run-id": {
    type: "string",
    arg: "ID",
    help: "run ids are ID:<setting> (default steer:<hash of the inputs>: reruns resume)",
    group: HOW,
  },
  json: { type: "boolean", help: "one JSON line per result on stdout", group: HOW },
  report: {
    type: "string",
    arg: "FILE",
    help: "also write an HTML report of the results (plots; opens offline)",
    group: HOW,
  },
  quiet: { type: "boolean", help: "no progress", group: HOW },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab steer --model DIR (--sae DIR --latent J | --direction FILE) [--c LIST] [options]",
    "emlab steer --model DIR --sae DIR --ablate LIST [--mode zero|mean] [options]",
    "emlab steer --model DIR --project-out FILE [options]",
  ],
  intro: "Steering, ablation and projection may be combined in one call.",
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];
type Settings = ReturnType<typeof validate>;

/** The steering strengths of --c. */
export function parseCs(value: string): number[] {
  const cs = value.split(",").map((s) => Number(s.trim()));
  if (cs.length === 0 || cs.some((c) => !Number.isFinite(c) || c < 0))
    throw new CliError(`--c must be comma-separated non-negative numbers, got '${value}'`, EXIT.usage);
  return cs;
}

/** Checks the flags' combinations before anything is loaded. */
function validate(v: Values) {
  if (!v.model) throw new CliError("--model is required", EXIT.usage);
  if (v.latent !== undefined && v.direction) throw new CliError("give --latent or --direction, not both", EXIT.usage);
  const steer = v.latent !== undefined || Boolean(v.direction);
  if (!steer && !v.ablate && !v["project-out"])
    throw new CliError(
      "nothing to do: give --latent J or --direction FILE, --ablate LIST, or --project-out FILE",
      EXIT.usage,
    );
  if ((v.latent !== undefined || v.ablate) && !v.sae)
    throw new CliError("--latent and --ablate need --sae DIR", EXIT.usage);
  if (v.c !== undefined && !steer) throw new CliError("--c needs --latent or --direction", EXIT.usage);
  const mode = (v.mode ?? "mean") as AblationMode;
  if (mode !== "zero" && mode !== "mean")
    throw new CliError(`--mode must be zero or mean, got '${v.mode}'`, EXIT.usage);
  const organism = Boolean(v["organism-questions"]);
  if (organism && v.questions) throw new CliError("give --organism-questions or --questions, not both", EXIT.usage);
  if (!organism && !v.questions)
    throw new CliError(
      "how to evaluate: give --organism-questions, or --questions FILE with --judge-model NAME",
      EXIT.usage,
    );
  if (v.questions && !v["judge-model"])
    throw new CliError("--questions needs --judge-model NAME (and --judge-base-url URL)", EXIT.usage);
  const minCoherent = numberOption("min-coherent", v["min-coherent"], 0.9);
  if (minCoherent < 0 || minCoherent > 1) throw new CliError("--min-coherent must be in [0, 1]", EXIT.usage);
  return {
    steer,
    mode,
    organism,
    cs: parseCs(v.c ?? DEFAULT_CS),
    random: intOption("random", v.random, 5, 0),
    samples: intOption("samples", v.samples, 50, 1),
    maxNewTokens: intOption("max-new-tokens", v["max-new-tokens"], organism ? ORGANISM_MAX_NEW_TOKENS : 600, 1),
    seed: intOption("seed", v.seed, 0, 0),
    latent: v.latent === undefined ? undefined : intOption("latent", v.latent, 0, 0),
    ablate: v.ablate ? intList("ablate", v.ablate) : undefined,
    layer: v.layer === undefined ? undefined : intOption("layer", v.layer, 0, 0),
    minCoherent,
  };
}

/** One layer of a direction file: --layer, or the middle of the layers it holds. */
function pickDirection(file: string, layer: number | undefined): LayerDirection {
  const { layers } = loadDirections(file);
  if (layer === undefined) return layers[Math.floor((layers.length - 1) / 2)]!;
  const l = layers.find((x) => x.layer === layer);
  if (!l)
    throw new CliError(`${file}: no layer ${layer} (it has ${layers.map((x) => x.layer).join(", ")})`, EXIT.usage);
  return l;
}

const pct = (x: number | null) => (x === null ? "   -  " : `${(100 * x).toFixed(1).padStart(5)}%`);

function line(label: string, r: SettingResult): string {
  return `  ${label.padEnd(34)} misaligned ${pct(r.misaligned)} [${pct(r.ci[0])}, ${pct(r.ci[1])}]  coherent ${pct(r.coherent)}  n ${r.n}`;
}

/** Where results go: a table on stdout, or (--json) one JSON line per result. */
interface Output {
  say(s: string): void;
  emit(obj: Record<string, unknown>): void;
}

/** What the flags name, loaded and checked against each other. */
interface Inputs {
  lm: CausalLM;
  tokenizer: Tokenizer;
  sae?: Sae;
  dir?: LayerDirection;
  proj?: LayerDirection;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, flags, false, { organism: "organism-questions" });
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const o = validate(values);
  const handles: ModelHandle[] = [];
  const storePath = values.store ?? DEFAULT_STORE;
  const store = openRunStore(resolve(storePath));
  const json = Boolean(values.json);
  const lines: Record<string, unknown>[] = [];
  const out: Output = {
    say: (s) => {
      if (!json) console.log(s);
    },
    emit: (obj) => {
      lines.push(obj);
      if (json) printJson(obj);
    },
  };
  try {
    return await withUserErrors(async () => {
      const inputs = loadInputs(values, o);
      const evaluation = evaluationSettings(values, o, handles);
      let done = 0;
      const ctx = causalContext(values, o, inputs, evaluation, store, () => {
        done++;
      });
      out.say(`runs ${ctx.runPrefix}:* → ${storePath}`);
      const rowsAt = await normRows(values, inputs, evaluation.questions);
      if (o.steer) await steerStage(ctx, o, inputs, values.direction, rowsAt, out);
      if (o.ablate) await ablateStage(ctx, o, inputs.sae!, o.ablate, rowsAt, out);
      if (inputs.proj) await projectOutStage(ctx, o, values["project-out"]!, inputs.proj, out);
      if (!values.quiet && !json) process.stderr.write(`emlab steer: ${done} settings evaluated\n`);
      if (values.report) {
        writeLinesReport(lines, values.report, { title: "emlab steer", store });
        if (!values.quiet) process.stderr.write(`emlab steer: report written to ${values.report}\n`);
      }
      return EXIT.ok;
    });
  } finally {
    for (const h of handles) h.close();
    store.close();
  }
}

/** Loads the model, the SAE and the direction files, and checks their widths agree. */
function loadInputs(values: Values, o: Settings): Inputs {
  const lm = loadModelArg(values.model!, values.adapter);
  const tokenizer = Tokenizer.fromDir(values.model!);
  const sae = values.sae ? loadSae(values.sae) : undefined;
  if (sae && sae.cfg.dIn !== lm.config.hidden)
    throw new CliError(`${values.sae}: the SAE reads width ${sae.cfg.dIn}, the model's is ${lm.config.hidden}`);
  for (const j of [...(o.latent !== undefined ? [o.latent] : []), ...(o.ablate ?? [])])
    if (sae && j >= sae.cfg.dSae)
      throw new CliError(`latent ${j} out of range: the SAE has ${sae.cfg.dSae}`, EXIT.usage);
  const dir = values.direction ? pickDirection(values.direction, o.layer) : undefined;
  const proj = values["project-out"] ? pickDirection(values["project-out"], o.layer) : undefined;
  for (const [f, d] of [
    [values.direction, dir],
    [values["project-out"], proj],
  ] as const)
    if (d && d.direction.length !== lm.config.hidden)
      throw new CliError(`${f}: the direction has ${d.direction.length} dimensions, the model ${lm.config.hidden}`);
  return { lm, tokenizer, sae, dir, proj };
}

export type Evaluation = Pick<CausalEvalOptions, "judgeModel" | "questions" | "sampling">;

/** How settings are judged: the organism's questions and world judge, or a question file and an HTTP judge. */
export interface JudgeChoice {
  organism: boolean;
  questions?: string;
  judgeBaseUrl?: string;
  judgeModel?: string;
  judgeApiKeyEnv?: string;
  maxNewTokens: number;
  seed: number;
}

/** The questions, judge and sampling every setting is evaluated with (emlab steer, emlab screen). */
export function evaluationFor(c: JudgeChoice, handles: ModelHandle[]): Evaluation {
  if (c.organism) {
    const e = organismEvaluation({ seed: c.seed });
    return { ...e, sampling: { ...e.sampling, maxTokens: c.maxNewTokens, seed: c.seed } };
  }
  const questions: Question[] = loadQuestionFile(c.questions!);
  let judge: ModelHandle;
  try {
    judge = chatModelFromConfig(
      {
        provider: "http",
        baseUrl: c.judgeBaseUrl ?? "https://api.openai.com/v1",
        model: c.judgeModel!,
        ...(c.judgeApiKeyEnv ? { apiKeyEnv: c.judgeApiKeyEnv } : {}),
        concurrency: 16,
        timeoutMs: 60_000,
        maxRetries: 6,
      },
      { role: "judge" },
    );
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
  handles.push(judge);
  return { judgeModel: judge.model, questions, sampling: { temperature: 1, maxTokens: c.maxNewTokens, seed: c.seed } };
}

const evaluationSettings = (values: Values, o: Settings, handles: ModelHandle[]): Evaluation =>
  evaluationFor(
    {
      organism: o.organism,
      questions: values.questions,
      judgeBaseUrl: values["judge-base-url"],
      judgeModel: values["judge-model"],
      judgeApiKeyEnv: values["judge-api-key-env"],
      maxNewTokens: o.maxNewTokens,
      seed: o.seed,
    },
    handles,
  );

/** The options every causal test shares; the run prefix is --run-id or a hash of the inputs. */
function causalContext(
  values: Values,
  o: Settings,
  inputs: Inputs,
  evaluation: Evaluation,
  store: RunStore,
  onDone: () => void,
): CausalEvalOptions {
  // The keys keep their old names so that the default run prefix of a rerun stays the same.
  const recorded = {
    model: values.model,
    adapter: values.adapter,
    sae: values.sae,
    direction: values.direction,
    projectOut: values["project-out"],
    layer: o.layer,
    questions: o.organism ? "organism" : values.questions,
    judge: o.organism ? "world" : values["judge-model"],
    normPrompts: values["norm-prompts"],
    samples: o.samples,
    maxTokens: o.maxNewTokens,
    seed: o.seed,
  };
  const quiet = Boolean(values.quiet || values.json);
  return {
    lm: inputs.lm,
    tokenizer: inputs.tokenizer,
    modelId: values.model! + (values.adapter ? `+${values.adapter}` : ""),
    store,
    runPrefix: values["run-id"] ?? `steer:${shortHash(recorded)}`,
    samples: o.samples,
    ...evaluation,
    config: { command: "emlab steer", ...recorded },
    onResult: (r) => {
      onDone();
      if (!quiet) process.stderr.write(`  … ${r.runId}${r.resumed ? " (resumed)" : ""}\n`);
    },
  };
}

/** Activations at a hook over the norm prompts: α's unit (median norm) and mean-ablation's means. */
async function normRows(values: Values, inputs: Inputs, questions: Question[]) {
  const prompts = values["norm-prompts"] ? await readPrompts(values["norm-prompts"]) : questionPrompts(questions);
  const items = prompts.map((prompt) => ({ prompt }));
  return (hook: string) =>
    collectActivations(inputs.lm, items, { hook, tokenizer: inputs.tokenizer, mask: "no-special" });
}

type RowsAt = Awaited<ReturnType<typeof normRows>>;

/** Steering sweep over c for the latent or direction, beside random controls at the same α. */
async function steerStage(
  ctx: CausalEvalOptions,
  o: Settings,
  inputs: Inputs,
  directionFile: string | undefined,
  rowsAt: RowsAt,
  out: Output,
): Promise<void> {
  const dir = inputs.dir;
  const target: SteeringTarget =
    o.latent !== undefined
      ? { kind: "latent", sae: inputs.sae!, latent: o.latent }
      : { kind: "direction", name: directionFile!, hookName: dir!.hookName, vector: dir!.direction };
  const hook = target.kind === "latent" ? target.sae.cfg.hookName : target.hookName;
  const medianNorm = medianRowNorm(rowsAt(hook));
  const sweep = await steeringSweep({
    ...ctx,
    target,
    cs: o.cs,
    medianNorm,
    random: o.random,
    seed: o.seed,
    minCoherent: o.minCoherent,
  });
  const what = target.kind === "latent" ? { latent: target.latent } : { direction: target.name, layer: dir!.layer };
  out.say(
    `steering ${target.kind === "latent" ? `latent ${target.latent}` : `direction ${target.name}`} at ${hook} (median residual norm ${medianNorm.toPrecision(4)})`,
  );
  if (sweep.baseline) {
    const b = sweep.baseline;
    out.say(line("no intervention", b));
    out.emit({ stage: "baseline", run_id: b.runId, misaligned: b.misaligned, ci: b.ci, coherent: b.coherent, n: b.n });
  }
  for (const p of sweep.points) {
    out.say(line(`c = ${p.c} (α = ${p.alpha.toPrecision(3)})`, p.target));
    if (p.random.length)
      out.say(
        `    random ×${p.random.length}: misaligned max ${pct(p.randomMisaligned.max)}, mean ${pct(p.randomMisaligned.mean)}`,
      );
    out.emit({
      stage: "steer",
      ...what,
      c: p.c,
      alpha: p.alpha,
      misaligned: p.target.misaligned,
      ci: p.target.ci,
      coherent: p.target.coherent,
      random_misaligned_max: p.randomMisaligned.max,
      random_misaligned_mean: p.randomMisaligned.mean,
      random_coherent_min: p.random.length ? Math.min(...p.random.map((r) => r.coherent)) : null,
      run_id: p.target.runId,
    });
  }
  const best = sweep.best;
  out.say(
    best
      ? `  best with coherent ≥ ${pct(o.minCoherent).trim()}: c = ${best.c}, misaligned ${pct(best.target.misaligned)}`
      : `  no setting kept coherent ≥ ${pct(o.minCoherent).trim()}`,
  );
  out.emit({
    stage: "steer-best",
    ...what,
    c: best?.c ?? null,
    misaligned: best?.target.misaligned ?? null,
    coherent: best?.target.coherent ?? null,
  });
}

function sayBeforeAfter(out: Output, label: string, r: BeforeAfter): void {
  out.say(line(`${label}: before`, r.before));
  out.say(line(`${label}: after`, r.after));
  for (const [i, x] of r.random.entries()) out.say(line(`${label}: random control ${i + 1}`, x));
  out.say(`  reduction ${r.reduction === null ? "-" : `${(100 * r.reduction).toFixed(1)}%`}`);
}

/** Zero- or mean-ablation of latents, before / after, beside random-latent ablations. */
async function ablateStage(
  ctx: CausalEvalOptions,
  o: Settings,
  sae: Sae,
  latents: number[],
  rowsAt: RowsAt,
  out: Output,
): Promise<void> {
  let reference: Float32Array | undefined;
  if (o.mode === "mean") {
    const rows = rowsAt(sae.cfg.hookName);
    reference = latentMeans(sae, rows.acts, rows.n);
  }
  const r = await ablationTest({
    ...ctx,
    sae,
    latents,
    mode: o.mode,
    ...(reference ? { reference } : {}),
    random: o.random,
    seed: o.seed,
  });
  sayBeforeAfter(out, `${o.mode}-ablate ${latents.join(",")}`, r);
  out.emit({
    stage: "ablate",
    latent: latents.length === 1 ? latents[0] : latents,
    mode: o.mode,
    misaligned_before: r.before.misaligned,
    misaligned_after: r.after.misaligned,
    coherent_before: r.before.coherent,
    coherent_after: r.after.coherent,
    reduction: r.reduction,
    random_misaligned_after: r.random.map((x) => x.misaligned),
    run_id: r.after.runId,
  });
}

/** Projecting a direction out, before / after, beside random same-norm directions. */
async function projectOutStage(
  ctx: CausalEvalOptions,
  o: Settings,
  file: string,
  proj: LayerDirection,
  out: Output,
): Promise<void> {
  const r = await projectOutTest({
    ...ctx,
    name: file,
    hookName: proj.hookName,
    vector: proj.direction,
    random: o.random,
    seed: o.seed,
  });
  sayBeforeAfter(out, `project out ${file} (layer ${proj.layer})`, r);
  out.emit({
    stage: "project-out",
    direction: file,
    layer: proj.layer,
    misaligned_before: r.before.misaligned,
    misaligned_after: r.after.misaligned,
    coherent_after: r.after.coherent,
    reduction: r.reduction,
    random_misaligned_after: r.random.map((x) => x.misaligned),
    run_id: r.after.runId,
  });
}
