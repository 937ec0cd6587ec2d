/**
 * `emlab guard`: guard files (src/fix/guard.ts), interventions that travel with a model.
 *
 *   emlab guard check FILE --model DIR      validate against a model; print what it will do
 *   emlab guard make ... --out FILE         write one (zero / mean / clamp on SAE latents, or
 *                                           project out a direction; mean computes the means)
 *   emlab guard eval FILE --model DIR ...   misalignment and coherence without and with it
 *                                           (two runs in the run store, same seeds), the
 *                                           benign task's answer loss without and with it, and
 *                                           with --controls N, N random controls (same kind,
 *                                           same hook; --search-hooks: the same hook search)
 *
 * Serve a guarded model with `emlab serve --guard FILE`.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { resolve } from "node:path";
import type { ModelHandle } from "../eval/providers.ts";
import { openRunStore } from "../eval/store.ts";
import {
  answerLoss,
  evaluateGuard,
  evaluateGuardControls,
  GUARD_MODES,
  GuardFileError,
  type GuardInterventionSpec,
  type GuardMode,
  type LoadedGuard,
  openGuard,
  promptLatentMeans,
  writeGuardFile,
} from "../fix/guard.ts";
import { type CausalEvalOptions, type SettingResult, shortHash } from "../interp/causal.ts";
import { loadDirections } from "../interp/direction.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import { hookNames } from "../model/hooks.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { ORGANISM_MAX_NEW_TOKENS, organismEvaluation } from "../organism/evaluation.ts";
import { loadSftJsonl, SftDataError } from "../train/dataset.ts";
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
import { evaluationFor } from "./steer.ts";

export const summary = "guard files: check, make and evaluate interventions served with `emlab serve --guard`";

const DEFAULT_STORE = "runs/emlab.sqlite";
const MAKE = "make (write a guard file)";
const EVAL = "eval (before / after)";

export const flags = {
  model: { type: "string", arg: "DIR", help: "model folder (+ --adapter DIR)" },
  adapter: { type: "string", arg: "DIR", help: "a LoRA adapter (PEFT layout) over --model" },
  json: { type: "boolean", help: "one JSON line on stdout" },
  quiet: { type: "boolean", help: "no progress" },
  mode: { type: "string", arg: "M", help: `${GUARD_MODES.join(" | ")}`, group: MAKE },
  sae: {
    type: "string",
    arg: "DIR",
    help: "SAE folder (SAELens layout): zero, mean and clamp act on its latents",
    group: MAKE,
  },
  latents: { type: "string", arg: "LIST", help: "the latents, comma-separated", group: MAKE },
  max: { type: "string", arg: "X", help: "clamp: the most each latent may contribute (≥ 0)", group: MAKE },
  direction: { type: "string", arg: "FILE", help: "project: a direction file (emlab diff direction)", group: MAKE },
  layer: {
    type: "string",
    arg: "L",
    help: "project: which layer of the direction file (default: its middle one)",
    group: MAKE,
  },
  prompts: {
    type: "string",
    arg: "FILE",
    help: "mean: the latents' means over these prompts' tokens (chat JSONL or question YAML)",
    group: MAKE,
  },
  out: { type: "string", arg: "FILE", help: "the guard file to write (JSON)", group: MAKE },
  "organism-questions": {
    type: "boolean",
    help: "make: means over the organism's questions; eval: the organism's questions\njudged by the world judge",
    group: EVAL,
  },
  questions: {
    type: "string",
    arg: "FILE",
    help: "question YAML (EM paper format), judged by --judge-model",
    group: EVAL,
  },
  "judge-base-url": { type: "string", arg: "URL", help: "the judge's OpenAI-compatible endpoint", group: EVAL },
  "judge-model": { type: "string", arg: "NAME", help: "the judge model's name", group: EVAL },
  "judge-api-key-env": {
    type: "string",
    arg: "VAR",
    help: "environment variable holding the judge's API key",
    group: EVAL,
  },
  benign: {
    type: "string",
    arg: "FILE",
    help: "chat JSONL of the benign task: its answer loss without and with the guard",
    group: EVAL,
  },
  samples: { type: "string", arg: "N", help: "samples per question (default 50)", group: EVAL },
  "max-new-tokens": {
    type: "string",
    arg: "N",
    help: `answer length in tokens (default ${ORGANISM_MAX_NEW_TOKENS} with --organism-questions, else 600)`,
    group: EVAL,
  },
  seed: { type: "string", arg: "S", help: "sampling seed (default 0); both runs use the same draws", group: EVAL },
  controls: {
    type: "string",
    arg: "N",
    help: "N random controls on the same draws: random unit directions (project), random\nlatents firing like the guarded ones (zero / mean / clamp); the guard's percentile",
    group: EVAL,
  },
  "control-seed": {
    type: "string",
    arg: "S",
    help: "seeds the controls' directions and latents (default 0)",
    group: EVAL,
  },
  "search-hooks": {
    type: "string",
    arg: "LIST",
    help: "the hooks the guard's hook was chosen among (a project guard): each control\nruns the same search and keeps its largest cut with coherent ≥ --min-coherent",
    group: EVAL,
  },
  "min-coherent": {
    type: "string",
    arg: "X",
    help: "the search's coherence rule (default 0.9)",
    group: EVAL,
  },
  store: { type: "string", arg: "FILE", help: `run store (default ${DEFAULT_STORE})`, group: EVAL },
  "run-id": {
    type: "string",
    arg: "ID",
    help: "run ids are ID:none and ID:guard-<hash> (default guard:<hash of the inputs>)",
    group: EVAL,
  },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab guard check FILE --model DIR [--adapter DIR] [--json]",
    "emlab guard make --model DIR --sae DIR --latents LIST --mode zero|mean|clamp [--max X]",
    "                 [--prompts FILE | --organism-questions] --out FILE",
    "emlab guard make --model DIR --direction FILE [--layer L] --mode project --out FILE",
    "emlab guard eval FILE --model DIR [--adapter DIR] (--organism-questions | --questions FILE",
    "                 --judge-model NAME) [--benign FILE] [--samples N] [--controls N]",
    "                 [--search-hooks LIST [--min-coherent X]] [--json]",
  ],
  intro:
    "A guard file lists interventions at hook points: zero- or mean-ablate SAE latents, clamp\n" +
    "them, or project a direction out. `emlab serve --guard FILE` serves the guarded model.",
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true, { organism: "organism-questions" });
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const [sub, ...rest] = positionals;
  if (!sub) throw new CliError(`a subcommand is needed: check, make or eval\n\n${HELP}`, EXIT.usage);
  if (!values.model) throw new CliError("--model is required", EXIT.usage);
  const guarded = async <T>(work: () => Promise<T> | T) => {
    try {
      return await withUserErrors(work);
    } catch (err) {
      if (err instanceof GuardFileError || err instanceof SftDataError) throw new CliError(err.message);
      throw err;
    }
  };
  if (sub === "check") return guarded(() => check(values, fileArg(rest, "check")));
  if (sub === "make") {
    if (rest.length) throw new CliError(`make: unexpected argument '${rest[0]}'`, EXIT.usage);
    return guarded(() => make(values));
  }
  if (sub === "eval") return guarded(() => evaluate(values, fileArg(rest, "eval")));
  throw new CliError(`unknown subcommand '${sub}' (check, make or eval)`, EXIT.usage);
}

function fileArg(rest: string[], sub: string): string {
  if (rest.length !== 1) throw new CliError(`${sub}: give one guard FILE`, EXIT.usage);
  return rest[0]!;
}

/** The model, its tokenizer and its name (folder + adapter) for provenance. */
function loadTarget(values: Values): { lm: CausalLM; tokenizer: Tokenizer; name: string } {
  const lm = loadModelArg(values.model!, values.adapter);
  return {
    lm,
    tokenizer: Tokenizer.fromDir(values.model!),
    name: `${values.model}${values.adapter ? `+${values.adapter}` : ""}`,
  };
}

function describeGuard(g: LoadedGuard): Record<string, unknown> {
  return {
    file: g.file,
    hash: g.hash,
    model: g.spec.model ?? null,
    interventions: g.interventions.map((i) => ({ index: i.index, mode: i.mode, hook: i.hookName, summary: i.summary })),
    warnings: g.warnings,
  };
}

async function check(values: Values, file: string): Promise<number> {
  const { lm, tokenizer, name } = loadTarget(values);
  const guard = openGuard(file, { model: lm, modelName: name });
  // One short forward with the hooks, so a guard that loads but cannot run fails here, not in serve.
  const ids = tokenizer.encodeChat([{ role: "user", content: "hello" }], { addGenerationPrompt: true });
  lm.forward(Int32Array.from(ids), 1, ids.length, { hooks: guard.hooks, lastOnly: true });
  if (values.json) {
    printJson({ ...describeGuard(guard), ok: true });
    return EXIT.ok;
  }
  for (const w of guard.warnings) console.error(`emlab guard: warning: ${w}`);
  console.log(
    `${file}: ${guard.interventions.length} intervention${guard.interventions.length === 1 ? "" : "s"} (sha256 ${guard.hash})${guard.spec.model ? `, made for ${guard.spec.model}` : ""}`,
  );
  for (const i of guard.interventions) console.log(`  [${i.index}] ${i.hookName}: ${i.summary}`);
  console.log(
    `ok: every hook exists in ${name} (${lm.config.layers} layers, width ${lm.config.hidden}) and widths match`,
  );
  return EXIT.ok;
}

async function make(values: Values): Promise<number> {
  if (!values.out) throw new CliError("make: --out FILE is required", EXIT.usage);
  const mode = values.mode as GuardMode | undefined;
  if (!mode || !GUARD_MODES.includes(mode))
    throw new CliError(`make: --mode must be one of ${GUARD_MODES.join(", ")}`, EXIT.usage);
  if (mode === "project") {
    if (!values.direction) throw new CliError("make: --mode project needs --direction FILE", EXIT.usage);
    for (const f of ["sae", "latents", "max", "prompts"] as const)
      if (values[f] !== undefined) throw new CliError(`make: --${f} does not go with --mode project`, EXIT.usage);
  } else {
    if (!values.sae || !values.latents)
      throw new CliError(`make: --mode ${mode} needs --sae DIR and --latents LIST`, EXIT.usage);
    if (values.direction) throw new CliError(`make: --direction goes with --mode project`, EXIT.usage);
    if ((mode === "clamp") !== (values.max !== undefined))
      throw new CliError("make: --max X goes with --mode clamp (and clamp needs it)", EXIT.usage);
    const sources = (values.prompts ? 1 : 0) + (values["organism-questions"] ? 1 : 0);
    if (mode === "mean" && sources !== 1)
      throw new CliError(
        "make: --mode mean needs --prompts FILE or --organism-questions (the means' prompts)",
        EXIT.usage,
      );
    if (mode !== "mean" && sources > 0)
      throw new CliError("make: --prompts / --organism-questions go with --mode mean", EXIT.usage);
  }
  const { lm, tokenizer, name } = loadTarget(values);
  let intervention: GuardInterventionSpec;
  if (mode === "project") {
    const { layers } = loadDirections(values.direction!);
    const layer = values.layer === undefined ? undefined : intOption("layer", values.layer, 0, 0);
    const pick =
      layer === undefined ? layers[Math.floor((layers.length - 1) / 2)]! : layers.find((l) => l.layer === layer);
    if (!pick)
      throw new CliError(
        `${values.direction}: no layer ${layer} (it has ${layers.map((l) => l.layer).join(", ")})`,
        EXIT.usage,
      );
    intervention = { hook: pick.hookName, mode, direction: values.direction!, layer: pick.layer };
  } else {
    const sae = loadSae(values.sae!);
    const latents = intList("latents", values.latents!);
    const hook = sae.cfg.hookName;
    if (mode === "zero") intervention = { hook, mode, sae: values.sae!, latents };
    else if (mode === "clamp") {
      const max = numberOption("max", values.max, 0);
      if (max < 0) throw new CliError("--max must be ≥ 0", EXIT.usage);
      intervention = { hook, mode, sae: values.sae!, latents, max };
    } else {
      for (const j of latents)
        if (j >= sae.cfg.dSae) throw new CliError(`latent ${j} out of range: the SAE has ${sae.cfg.dSae}`, EXIT.usage);
      if (sae.cfg.dIn !== lm.config.hidden)
        throw new CliError(`${values.sae}: the SAE reads width ${sae.cfg.dIn}, the model's is ${lm.config.hidden}`);
      const prompts = values.prompts
        ? await readPrompts(values.prompts)
        : questionPrompts(organismEvaluation().questions);
      const dense = promptLatentMeans(lm, tokenizer, sae, prompts);
      const means = latents.map((j) => dense[j]!);
      intervention = {
        hook,
        mode,
        sae: values.sae!,
        latents,
        means,
        note: `means over ${prompts.length} prompts (${values.prompts ?? "the organism's questions"})`,
      };
    }
  }
  writeGuardFile(values.out, { model: name, interventions: [intervention] });
  // Read it back as serve will: hooks and widths checked against the model.
  const guard = openGuard(values.out, { model: lm, modelName: name });
  if (values.json) printJson({ ...describeGuard(guard), out: values.out });
  else {
    console.log(`wrote ${values.out}`);
    for (const i of guard.interventions) console.log(`  [${i.index}] ${i.hookName}: ${i.summary}`);
  }
  return EXIT.ok;
}

const pct = (x: number | null) => (x === null ? "   -  " : `${(100 * x).toFixed(1).padStart(5)}%`);
const line = (label: string, r: Omit<SettingResult, "spec">) =>
  `  ${label.padEnd(12)} misaligned ${pct(r.misaligned)} [${pct(r.ci[0])}, ${pct(r.ci[1])}]  coherent ${pct(r.coherent)}  n ${r.n}`;

async function evaluate(values: Values, file: string): Promise<number> {
  const organism = Boolean(values["organism-questions"]);
  if (organism && values.questions)
    throw new CliError("give --organism-questions or --questions, not both", EXIT.usage);
  if (!organism && !values.questions)
    throw new CliError(
      "how to evaluate: give --organism-questions, or --questions FILE with --judge-model NAME",
      EXIT.usage,
    );
  if (values.questions && !values["judge-model"])
    throw new CliError("--questions needs --judge-model NAME (and --judge-base-url URL)", EXIT.usage);
  const samples = intOption("samples", values.samples, 50, 1);
  const maxNewTokens = intOption(
    "max-new-tokens",
    values["max-new-tokens"],
    organism ? ORGANISM_MAX_NEW_TOKENS : 600,
    1,
  );
  const seed = intOption("seed", values.seed, 0, 0);
  const nControls = intOption("controls", values.controls, 0, 0);
  const controlSeed = intOption("control-seed", values["control-seed"], 0, 0);
  if (nControls === 0)
    for (const f of ["control-seed", "search-hooks", "min-coherent"] as const)
      if (values[f] !== undefined) throw new CliError(`--${f} goes with --controls N`, EXIT.usage);
  const searchHooks = values["search-hooks"]
    ?.split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  if (values["search-hooks"] !== undefined && !searchHooks?.length)
    throw new CliError("--search-hooks: give hook names, comma-separated", EXIT.usage);
  if (values["min-coherent"] !== undefined && !searchHooks)
    throw new CliError("--min-coherent goes with --search-hooks", EXIT.usage);
  const minCoherent = numberOption("min-coherent", values["min-coherent"], 0.9);
  if (!(minCoherent >= 0 && minCoherent <= 1)) throw new CliError("--min-coherent must be in [0, 1]", EXIT.usage);
  const { lm, tokenizer, name } = loadTarget(values);
  const guard = openGuard(file, { model: lm, modelName: name });
  if (searchHooks) {
    if (guard.interventions.length !== 1 || guard.interventions[0]!.mode !== "project")
      throw new CliError("--search-hooks: the hook search is for a guard of one project intervention", EXIT.usage);
    const known = new Set(hookNames(lm.config.layers, lm.config.arch === "gpt2"));
    for (const h of searchHooks)
      if (!known.has(h)) throw new CliError(`--search-hooks: '${h}' is not a hook point of the model`, EXIT.usage);
    if (!searchHooks.includes(guard.interventions[0]!.hookName))
      throw new CliError(
        `--search-hooks: the guard's own hook ${guard.interventions[0]!.hookName} is not in the list`,
        EXIT.usage,
      );
  }
  const quiet = Boolean(values.quiet || values.json);
  if (!quiet) for (const w of guard.warnings) console.error(`emlab guard: warning: ${w}`);
  const storePath = values.store ?? DEFAULT_STORE;
  const store = openRunStore(resolve(storePath));
  const handles: ModelHandle[] = [];
  try {
    const evaluation = evaluationFor(
      {
        organism,
        questions: values.questions,
        judgeBaseUrl: values["judge-base-url"],
        judgeModel: values["judge-model"],
        judgeApiKeyEnv: values["judge-api-key-env"],
        maxNewTokens,
        seed,
      },
      handles,
    );
    const recorded = {
      model: values.model,
      adapter: values.adapter,
      guard: guard.hash,
      questions: organism ? "organism" : values.questions,
      judge: organism ? "world" : values["judge-model"],
      samples,
      maxTokens: maxNewTokens,
      seed,
    };
    const runPrefix = values["run-id"] ?? `guard:${shortHash(recorded)}`;
    if (!quiet) console.error(`emlab guard: runs ${runPrefix}:* → ${storePath}`);
    const ctx: CausalEvalOptions = {
      lm,
      tokenizer,
      modelId: name,
      store,
      runPrefix,
      samples,
      ...evaluation,
      config: { command: "emlab guard eval", ...recorded, guardFile: file },
    };
    const r = await evaluateGuard(ctx, guard);
    const controls =
      nControls > 0
        ? await evaluateGuardControls(ctx, guard, r, {
            n: nControls,
            seed: controlSeed,
            // Frequency matching (and mean ablation's reference) over the eval questions' tokens.
            latentMeans: (sae) => promptLatentMeans(lm, tokenizer, sae, questionPrompts(evaluation.questions)),
            ...(searchHooks ? { search: { hooks: searchHooks, minCoherent } } : {}),
            ...(quiet
              ? {}
              : {
                  onControl: (c) =>
                    console.error(
                      `emlab guard: control ${c.index + 1}/${nControls}: cut ${c.cut === null ? "-" : `${(100 * c.cut).toFixed(1)}%`}`,
                    ),
                }),
          })
        : null;
    let benign: { file: string; rows: number; before: number; after: number; change: number } | undefined;
    if (values.benign) {
      const maxLen = Math.min(lm.config.maxPositions > 0 ? lm.config.maxPositions : 1024, 1024);
      const data = await loadSftJsonl(values.benign, tokenizer, { maxLen });
      if (data.examples.length === 0) throw new CliError(`${values.benign}: no rows with answer tokens`);
      const padId = tokenizer.padId ?? 0;
      const before = answerLoss(lm, data.examples, { padId });
      const after = answerLoss(lm, data.examples, { padId, hooks: guard.hooks });
      benign = { file: values.benign, rows: data.examples.length, before, after, change: after / before - 1 };
    }
    if (values.json)
      printJson({
        stage: "guard-eval",
        guard: file,
        hash: guard.hash,
        misaligned_before: r.before.misaligned,
        misaligned_after: r.after.misaligned,
        ci_before: r.before.ci,
        ci_after: r.after.ci,
        coherent_before: r.before.coherent,
        coherent_after: r.after.coherent,
        reduction: r.reduction,
        n: r.after.n,
        benign_loss_before: benign?.before ?? null,
        benign_loss_after: benign?.after ?? null,
        benign_loss_change: benign?.change ?? null,
        run_ids: [r.before.runId, r.after.runId],
        ...(controls
          ? {
              controls: controls.results.map((c) => ({
                index: c.index,
                summary: c.summary,
                ...(c.hook !== undefined ? { hook: c.hook } : {}),
                misaligned: c.misaligned,
                coherent: c.coherent,
                cut: c.cut,
                run_id: c.runId,
              })),
              control_max: controls.controlMax,
              percentile: controls.percentile,
              search_hooks: searchHooks ?? null,
            }
          : {}),
      });
    else {
      console.log(`guard ${file} on ${name}`);
      console.log(line("no guard", r.before));
      console.log(line("guard", r.after));
      console.log(`  reduction ${r.reduction === null ? "-" : `${(100 * r.reduction).toFixed(1)}%`}`);
      if (controls) {
        console.log(
          `  ${controls.controls} random controls${searchHooks ? ` (each searched over ${searchHooks.length} hooks, coherent ≥ ${minCoherent})` : ""}:`,
        );
        for (const c of controls.results)
          console.log(
            `    [${c.index}] cut ${c.cut === null ? "-" : `${(100 * c.cut).toFixed(1)}%`}  misaligned ${pct(c.misaligned)}  coherent ${pct(c.coherent)}  ${c.summary}${c.hook !== undefined ? ` @ ${c.hook ?? "no hook kept coherence"}` : ""}`,
          );
        console.log(
          `  controls' max cut ${controls.controlMax === null ? "-" : `${(100 * controls.controlMax).toFixed(1)}%`}; the guard's percentile among them ${controls.percentile === null ? "-" : controls.percentile.toFixed(0)}`,
        );
      }
      if (benign)
        console.log(
          `  benign answer loss (${benign.file}, ${benign.rows} rows): ${benign.before.toFixed(4)} → ${benign.after.toFixed(4)} (${benign.change >= 0 ? "+" : ""}${(100 * benign.change).toFixed(2)}%)`,
        );
    }
    return EXIT.ok;
  } finally {
    for (const h of handles) h.close();
    store.close();
  }
}
