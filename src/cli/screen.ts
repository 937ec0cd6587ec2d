/**
 * `emlab screen`: the blind pipeline's causal half for a user's own models, after `emlab diff`.
 *
 *   emlab diff --base-model BASE --model FT --sae SAE --json > diff.json
 *   emlab screen --base-model BASE --model FT --sae SAE --diff diff.json --organism-questions
 *
 * Takes the diff's k largest increases and k largest decreases, steers each in the base over
 * the c grid and mean-ablates it in the fine-tune (select draws), picks the highest score
 * (best coherent steering rate + ablation cut), then measures the pick on fresh (measure)
 * draws beside N controls (random latents firing like it, random directions) that run the
 * same c grid and selection rule. No label is used. Every setting is a run in the store.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ModelHandle } from "../eval/providers.ts";
import { openRunStore } from "../eval/store.ts";
import { collectActivations, medianRowNorm } from "../interp/activations/collect.ts";
import { blindCandidates, causalScreen, controlSet, measureAblation, measureSteer } from "../interp/blind.ts";
import { type CausalEvalOptions, shortHash } from "../interp/causal.ts";
import { latentMeans } from "../interp/interventions.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { ORGANISM_MAX_NEW_TOKENS } from "../organism/evaluation.ts";
import { labelSeed, mixSeed } from "../tensor/random.ts";
import {
  CliError,
  EXIT,
  formatHelp,
  HELP_FLAG,
  intOption,
  loadModelArg,
  numberOption,
  parseOptions,
  printJson,
  questionPrompts,
  withUserErrors,
} from "./common.ts";
import { runDataScreen, SCREEN_THRESHOLD } from "./screen-data.ts";
import { evaluationFor, parseCs, flags as steerFlags } from "./steer.ts";

export const summary =
  "screen a dataset by its persona projection (DATA.jsonl), or a diff's latents by a blind causal screen";

const WHAT = "what to screen";
const DATA = "data screening (emlab screen DATA.jsonl --model DIR --cal CAL)";
const HOW = "how each setting is evaluated";

export const flags = {
  "base-model": { type: "string", arg: "DIR", help: "the model before fine-tuning (steered)", group: WHAT },
  model: {
    type: "string",
    arg: "DIR",
    help: "the fine-tuned model (+ --adapter DIR; ablated); with DATA.jsonl: the model before fine-tuning",
    group: WHAT,
  },
  adapter: steerFlags.adapter,
  sae: steerFlags.sae,
  diff: { type: "string", arg: "FILE", help: "emlab diff --json output: its top and bottom lists", group: WHAT },
  candidates: {
    type: "string",
    arg: "K",
    help: "candidates: the K largest increases and K largest decreases (default 4)",
    group: WHAT,
  },
  c: { ...steerFlags.c, help: "the c grid of every search, target and controls alike (default 0.2,0.4,0.6,0.8)" },
  controls: {
    type: "string",
    arg: "N",
    help: "controls per figure: random latents firing like the pick, random directions (default 10)",
    group: WHAT,
  },
  "min-coherent": steerFlags["min-coherent"],
  "organism-questions": steerFlags["organism-questions"],
  questions: steerFlags.questions,
  "judge-base-url": steerFlags["judge-base-url"],
  "judge-model": steerFlags["judge-model"],
  "judge-api-key-env": steerFlags["judge-api-key-env"],
  "screen-samples": {
    type: "string",
    arg: "N",
    help: "samples per question per setting on the select draws (default 16)",
    group: HOW,
  },
  samples: { type: "string", arg: "N", help: "samples per question per measured setting (default 50)", group: HOW },
  "max-new-tokens": steerFlags["max-new-tokens"],
  seed: {
    type: "string",
    arg: "S",
    help: "sampling seed: select and measure draws derive from it (default 0)",
    group: HOW,
  },
  store: steerFlags.store,
  cal: {
    type: "string",
    arg: "FILE",
    help: "DATA.jsonl: the watch calibration (persona direction, hook)",
    group: DATA,
  },
  threshold: {
    type: "string",
    arg: "T",
    help: `DATA.jsonl: flag when the CI of ΔP/gap lies above T (default ${SCREEN_THRESHOLD})`,
    group: DATA,
  },
  top: {
    type: "string",
    arg: "K",
    help: "DATA.jsonl: how many top-scored rows --rows writes (default 20)",
    group: DATA,
  },
  rows: { type: "string", arg: "FILE", help: "DATA.jsonl: write the top-scored rows (JSONL)", group: DATA },
  scores: {
    type: "string",
    arg: "FILE",
    help: "DATA.jsonl: per-row scores, resumable (default DATA.screen-scores.jsonl)",
    group: DATA,
  },
  json: { type: "boolean", help: "one JSON line per candidate and per figure on stdout", group: HOW },
  quiet: steerFlags.quiet,
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab screen DATA.jsonl --model DIR --cal CAL [--rows FILE] [--threshold T]",
    "emlab screen --base-model DIR --model DIR [--adapter DIR] --sae DIR --diff FILE (--organism-questions | --questions FILE --judge-model NAME) [options]",
  ],
  intro:
    "With DATA.jsonl: screens a chat dataset by the projection difference of its answers on the persona direction (before fine-tuning; exit 3 when flagged). Without: the blind causal screen of a diff's latents (run emlab diff --json first; its output is --diff).",
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

function readDiff(file: string): { latents: { latent: number; delta: number }[] } {
  let d: { top?: unknown; bottom?: unknown };
  try {
    d = JSON.parse(readFileSync(file, "utf8").trim().split("\n").at(-1)!);
  } catch (err) {
    throw new CliError(`${file}: not emlab diff --json output (${(err as Error).message})`);
  }
  const rows = [...((d.top as unknown[]) ?? []), ...((d.bottom as unknown[]) ?? [])] as {
    latent?: unknown;
    delta?: unknown;
  }[];
  if (rows.length === 0 || rows.some((r) => !Number.isInteger(r.latent) || typeof r.delta !== "number"))
    throw new CliError(`${file}: field top / bottom: needs rows with an integer "latent" and a number "delta"`);
  const seen = new Map<number, number>();
  for (const r of rows) seen.set(r.latent as number, r.delta as number);
  return { latents: [...seen].map(([latent, delta]) => ({ latent, delta })) };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true, {});
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new CliError(`unexpected argument '${positionals[1]}'`, EXIT.usage);
  if (positionals.length === 1) return withUserErrors(() => runDataScreen(positionals[0]!, values));
  for (const f of ["base-model", "model", "sae", "diff"] as const)
    if (!values[f]) throw new CliError(`--${f} is required`, EXIT.usage);
  const organism = Boolean(values["organism-questions"]);
  if (organism === Boolean(values.questions))
    throw new CliError("give --organism-questions, or --questions FILE with --judge-model NAME", EXIT.usage);
  if (values.questions && !values["judge-model"])
    throw new CliError("--questions needs --judge-model NAME", EXIT.usage);
  const handles: ModelHandle[] = [];
  const storePath = values.store ?? "runs/emlab.sqlite";
  const store = openRunStore(resolve(storePath));
  try {
    return await withUserErrors(() => screen(values, organism, store, handles, storePath));
  } finally {
    for (const h of handles) h.close();
    store.close();
  }
}

async function screen(
  values: Values,
  organism: boolean,
  store: ReturnType<typeof openRunStore>,
  handles: ModelHandle[],
  storePath: string,
): Promise<number> {
  const json = Boolean(values.json);
  const say = (s: string) => {
    if (!json) console.log(s);
  };
  const emit = (o: Record<string, unknown>) => {
    if (json) printJson(o);
  };
  const seed = intOption("seed", values.seed, 0, 0);
  const maxNewTokens = intOption(
    "max-new-tokens",
    values["max-new-tokens"],
    organism ? ORGANISM_MAX_NEW_TOKENS : 600,
    1,
  );
  const rule = {
    cs: parseCs(values.c ?? "0.2,0.4,0.6,0.8"),
    minCoherent: numberOption("min-coherent", values["min-coherent"], 0.9),
  };
  const controls = intOption("controls", values.controls, 10, 1);
  const diff = readDiff(values.diff!);
  const base = loadModelArg(values["base-model"]!);
  const ft = loadModelArg(values.model!, values.adapter);
  const tokenizer = Tokenizer.fromDir(values["base-model"]!);
  const sae = loadSae(values.sae!);
  if (sae.cfg.dIn !== base.config.hidden)
    throw new CliError(`${values.sae}: the SAE reads width ${sae.cfg.dIn}, the model's is ${base.config.hidden}`);
  const judge = {
    organism,
    questions: values.questions,
    judgeBaseUrl: values["judge-base-url"],
    judgeModel: values["judge-model"],
    judgeApiKeyEnv: values["judge-api-key-env"],
    maxNewTokens,
  };
  const key = shortHash({
    base: values["base-model"],
    ft: values.model,
    adapter: values.adapter,
    sae: values.sae,
    seed,
  });
  const ctx = (lm: typeof base, who: string, stream: "select" | "measure"): CausalEvalOptions => ({
    lm,
    tokenizer,
    modelId: who === "base" ? values["base-model"]! : values.model! + (values.adapter ? `+${values.adapter}` : ""),
    store,
    runPrefix: `screen:${key}:${who}:${stream}`,
    samples:
      stream === "select"
        ? intOption("screen-samples", values["screen-samples"], 16, 1)
        : intOption("samples", values.samples, 50, 1),
    drawsPerSetting: true,
    ...evaluationFor({ ...judge, seed: mixSeed(seed, labelSeed(stream)) >>> 1 }, handles),
    onResult: (r) => {
      if (!values.quiet && !json) process.stderr.write(`  … ${r.runId}${r.resumed ? " (resumed)" : ""}\n`);
    },
  });
  const sel = { base: ctx(base, "base", "select"), ft: ctx(ft, "ft", "select") };
  const meas = { base: ctx(base, "base", "measure"), ft: ctx(ft, "ft", "measure") };
  const rows = collectActivations(
    base,
    questionPrompts(sel.base.questions).map((prompt) => ({ prompt })),
    { hook: sae.cfg.hookName, tokenizer, mask: "no-special" },
  );
  const medianNorm = medianRowNorm(rows);
  const reference = latentMeans(sae, rows.acts, rows.n);
  const candidates = blindCandidates(diff, intOption("candidates", values.candidates, 4, 1));
  say(`runs screen:${key}:* → ${storePath}; ${candidates.length} candidates from ${values.diff}`);
  const s = await causalScreen({
    base: sel.base,
    ft: sel.ft,
    sae,
    candidates,
    medianNorm,
    rule,
    reference,
    onCandidate: (e) => {
      say(
        `  latent ${e.latent} (Δ ${e.delta.toFixed(3)}): steer ${e.steer.best ? `${(100 * e.steer.best.misaligned!).toFixed(1)}% at c ${e.steer.best.c}` : "no coherent c"}, ablation cut ${e.ablation.cut === null ? "-" : `${(100 * e.ablation.cut).toFixed(1)}%`}, score ${e.score.toFixed(2)}`,
      );
      emit({
        stage: "candidate",
        latent: e.latent,
        delta: e.delta,
        sign: e.sign,
        score: e.score,
        steer_best: e.steer.best,
        ablation: e.ablation,
      });
    },
  });
  const pick = s.pick;
  const { latents, half, directions: dirs } = controlSet(sae, reference, pick.latent, { n: controls, seed });
  say(`pick: latent ${pick.latent}; measuring it on fresh draws beside ${controls} equal-search controls`);
  const steer = await measureSteer({
    select: sel.base,
    measure: meas.base,
    target: { kind: "latent", sae, latent: pick.latent },
    sign: pick.sign,
    medianNorm,
    rule,
    search: pick.steer,
    controls: [
      ...half.map((latent) => ({ kind: "random-latent" as const, latent })),
      ...dirs.map((d) => ({ kind: "random-direction" as const, ...d })),
    ],
  });
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
  say(
    `  steer the base at c ${steer.measured.c ?? "-"}: misaligned ${pct(steer.measured.misaligned)}, coherent ${pct(steer.measured.coherent)}; controls max ${pct(steer.controlMax)}, percentile ${steer.percentile?.toFixed(0) ?? "-"}`,
  );
  emit({
    stage: "steer",
    pick: "blind",
    latent: pick.latent,
    c: steer.measured.c,
    misaligned: steer.measured.misaligned,
    coherent: steer.measured.coherent,
    controls: steer.controls,
    control_max: steer.controlMax,
    percentile: steer.percentile,
  });
  const ab = await measureAblation({
    measure: meas.ft,
    sae,
    latent: pick.latent,
    reference,
    controlLatents: latents,
    projectLatents: half,
    controlDirections: dirs,
  });
  for (const m of ab.modes) {
    say(
      `  ${m.mode.padEnd(11)} in the fine-tune: ${pct(ab.before.misaligned)} → ${pct(m.misaligned)} (cut ${pct(m.cut)}); controls cut ≤ ${pct(m.controlMax)}, percentile ${m.percentile?.toFixed(0) ?? "-"}`,
    );
    emit({
      stage: "ablate",
      pick: "blind",
      latent: pick.latent,
      mode: m.mode,
      misaligned_before: ab.before.misaligned,
      misaligned_after: m.misaligned,
      coherent_after: m.coherent,
      cut: m.cut,
      controls: m.controls,
      control_max: m.controlMax,
      percentile: m.percentile,
    });
  }
  return EXIT.ok;
}
