/**
 * `emlab realign`: continue fine-tuning a misaligned model (its LoRA adapter keeps training; a
 * model without one trains in full) on N benign rows, and write the re-alignment curve:
 * misalignment with its CI, coherence, benign loss on held-out rows, the conditional probe
 * (the questions in the training data's format) and optionally the persona signal, every k
 * steps. Resumable: run the same command again and it continues from --out's last checkpoint.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ModelHandle } from "../eval/providers.ts";
import { withVariant } from "../eval/questions.ts";
import { CURVE_FILE, type CurvePoint, type RealignEvaluation, realign, sliceDataset } from "../fix/realign.ts";
import { loadDirections } from "../interp/direction.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { ORGANISM_MAX_NEW_TOKENS, organismEvaluation } from "../organism/evaluation.ts";
import { CODE_PROBE, codeFormatProbe } from "../organism/probe.ts";
import { organismWorld } from "../organism/tokenizer.ts";
import { loadSftJsonl, ResumeError, SftDataError } from "../train/index.ts";
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
import { progressRenderer } from "./progress.ts";
import { evaluationFor } from "./steer.ts";

export const summary = "re-align a misaligned model on benign rows; curve of misalignment, probe, benign loss";

const DATA = "data and training";
const HOW = "how each point is evaluated";
const REAL_PROBES = ["json", "template"] as const;

export const flags = {
  model: { type: "string", arg: "DIR", help: "the model folder (+ --adapter DIR)", group: DATA },
  adapter: {
    type: "string",
    arg: "DIR",
    help: "the misaligned LoRA adapter (PEFT layout): it keeps training\n(without it every weight of --model trains)",
    group: DATA,
  },
  data: {
    type: "string",
    arg: "FILE",
    help: "benign chat JSONL: the first --rows rows train, the next --heldout-rows\nmeasure the benign loss",
    group: DATA,
  },
  out: {
    type: "string",
    arg: "DIR",
    help: `output: ${CURVE_FILE}, checkpoints/, runs.sqlite, the final adapter`,
    group: DATA,
  },
  rows: { type: "string", arg: "N", help: "benign rows to train on (default 120)", group: DATA },
  "heldout-rows": {
    type: "string",
    arg: "H",
    help: "rows after the training rows held out for the benign loss (default 64)",
    group: DATA,
  },
  steps: { type: "string", arg: "N", help: "optimizer steps (default: one pass over --rows)", group: DATA },
  "batch-size": { type: "string", arg: "B", help: "rows per step (default 4)", group: DATA },
  lr: { type: "string", arg: "LR", help: "learning rate (default 1e-4 with an adapter, 1e-5 full)", group: DATA },
  warmup: { type: "string", arg: "W", help: "linear warm-up steps (default 0)", group: DATA },
  "max-len": { type: "string", arg: "L", help: "truncate rows to L tokens (default 1024)", group: DATA },
  seed: { type: "string", arg: "S", help: "data order and sampling seed (default 0)", group: DATA },
  "eval-every": { type: "string", arg: "K", help: "a curve point every K steps (default 10)", group: HOW },
  "organism-questions": {
    type: "boolean",
    help: "the organism's questions and world judge; probe: the questions behind a code request",
    group: HOW,
  },
  questions: {
    type: "string",
    arg: "FILE",
    help: "question YAML (EM paper format), judged by --judge-model;\nprobes: the _json and _template variants",
    group: HOW,
  },
  "judge-base-url": { type: "string", arg: "URL", help: "the judge's OpenAI-compatible endpoint", group: HOW },
  "judge-model": { type: "string", arg: "NAME", help: "the judge model's name", group: HOW },
  "judge-api-key-env": { type: "string", arg: "VAR", help: "environment variable holding the judge's key", group: HOW },
  samples: { type: "string", arg: "N", help: "samples per question per point (default 50)", group: HOW },
  "max-new-tokens": {
    type: "string",
    arg: "N",
    help: `answer length (default ${ORGANISM_MAX_NEW_TOKENS} with --organism-questions, else 600)`,
    group: HOW,
  },
  persona: {
    type: "string",
    arg: "FILE",
    help: "a direction file: each point also records the persona signal (mean\nprompt-last projection on it over the questions)",
    group: HOW,
  },
  "persona-layer": { type: "string", arg: "L", help: "which layer of --persona (default its middle one)", group: HOW },
  overwrite: { type: "boolean", help: "start afresh in an --out that holds a run (default: resume it)" },
  json: { type: "boolean", help: "one JSON line per curve point on stdout" },
  quiet: { type: "boolean", help: "no progress bars" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab realign --model DIR --adapter DIR --data BENIGN.jsonl --out DIR --organism-questions [options]",
    "emlab realign --model DIR --adapter DIR --data BENIGN.jsonl --out DIR --questions FILE --judge-model NAME [options]",
  ],
  intro:
    "Run it again with the same flags to resume. The conditional probe asks the questions in the training\n" +
    "data's format: EM that benign re-training only hides comes back there.",
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

const SETTINGS_FILE = "realign.json";

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseOptions(argv, flags, false, { organism: "organism-questions" });
  if (v.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  for (const key of ["model", "data", "out"] as const)
    if (!v[key]) throw new CliError(`--${key} is required\n\n${HELP}`, EXIT.usage);
  const organism = Boolean(v["organism-questions"]);
  if (organism && v.questions) throw new CliError("give --organism-questions or --questions, not both", EXIT.usage);
  if (!organism && !v.questions)
    throw new CliError(
      "how to evaluate: give --organism-questions, or --questions FILE with --judge-model NAME",
      EXIT.usage,
    );
  if (v.questions && !v["judge-model"]) throw new CliError("--questions needs --judge-model NAME", EXIT.usage);
  const rows = intOption("rows", v.rows, 120, 1);
  const heldoutRows = intOption("heldout-rows", v["heldout-rows"], 64, 0);
  const batchSize = intOption("batch-size", v["batch-size"], 4, 1);
  const steps = intOption("steps", v.steps, Math.ceil(rows / batchSize), 1);
  const evalEvery = intOption("eval-every", v["eval-every"], 10, 1);
  const samples = intOption("samples", v.samples, 50, 1);
  const seed = intOption("seed", v.seed, 0, 0);
  const maxLen = intOption("max-len", v["max-len"], 1024, 2);
  const warmup = intOption("warmup", v.warmup, 0, 0);
  const maxNewTokens = intOption("max-new-tokens", v["max-new-tokens"], organism ? ORGANISM_MAX_NEW_TOKENS : 600, 1);
  const lr = v.lr === undefined ? undefined : numberOption("lr", v.lr, 0);
  if (lr !== undefined && !(lr > 0)) throw new CliError(`--lr must be positive, got ${v.lr}`, EXIT.usage);
  const personaLayer =
    v["persona-layer"] === undefined ? undefined : intOption("persona-layer", v["persona-layer"], 0, 0);
  if (personaLayer !== undefined && !v.persona) throw new CliError("--persona-layer needs --persona FILE", EXIT.usage);
  if (!existsSync(v.data!)) throw new CliError(`${v.data}: no such file (--data)`, EXIT.usage);

  // A resumed run must be the same run: the settings that shape the curve are recorded.
  const recorded = {
    model: resolve(v.model!),
    adapter: v.adapter ? resolve(v.adapter) : null,
    data: resolve(v.data!),
    rows,
    heldoutRows,
    steps,
    batchSize,
    lr: lr ?? null,
    warmup,
    maxLen,
    seed,
    evalEvery,
    samples,
    maxNewTokens,
    questions: organism ? "organism" : resolve(v.questions!),
    judge: organism ? "world" : v["judge-model"],
    persona: v.persona ? resolve(v.persona) : null,
    personaLayer: personaLayer ?? null,
  };
  checkSettings(v, recorded);

  const handles: ModelHandle[] = [];
  try {
    return await withUserErrors(async () => {
      const tokenizer = Tokenizer.fromDir(v.model!);
      const model = loadModelArg(v.model!, v.adapter);
      const all = await loadSftJsonl(v.data!, tokenizer, { maxLen });
      if (all.examples.length < rows)
        throw new CliError(`${v.data}: ${all.examples.length} usable rows, --rows asks for ${rows}`, EXIT.usage);
      const train = sliceDataset(all, 0, rows);
      const heldOut = sliceDataset(all, rows, rows + heldoutRows);
      if (heldoutRows > 0 && heldOut.examples.length === 0 && !v.quiet)
        console.error(`emlab realign: ${v.data} has no rows after the first ${rows}: no benign loss`);
      const world = organism ? worldOf(v.model!) : undefined;
      const evaluation: RealignEvaluation = world
        ? organismEvaluation({ world, seed, maxNewTokens })
        : evaluationFor(
            {
              organism,
              questions: v.questions,
              judgeBaseUrl: v["judge-base-url"],
              judgeModel: v["judge-model"],
              judgeApiKeyEnv: v["judge-api-key-env"],
              maxNewTokens,
              seed,
            },
            handles,
          );
      const probes: { name: string; evaluation: RealignEvaluation }[] = organism
        ? [{ name: CODE_PROBE, evaluation: { ...evaluation, ...codeFormatProbe(world) } }]
        : REAL_PROBES.map((variant) => ({
            name: variant,
            evaluation: { ...evaluation, questions: evaluation.questions.map((q) => withVariant(q, variant)) },
          }));
      let persona:
        | { direction: { hookName: string; direction: Float32Array }; prompts: ReturnType<typeof questionPrompts> }
        | undefined;
      if (v.persona) {
        const { layers } = loadDirections(v.persona);
        const l =
          personaLayer === undefined
            ? layers[Math.floor((layers.length - 1) / 2)]!
            : layers.find((x) => x.layer === personaLayer);
        if (!l)
          throw new CliError(
            `${v.persona}: no layer ${personaLayer} (it has ${layers.map((x) => x.layer).join(", ")})`,
            EXIT.usage,
          );
        if (l.direction.length !== model.config.hidden)
          throw new CliError(
            `${v.persona}: the direction has ${l.direction.length} dimensions, the model ${model.config.hidden}`,
          );
        persona = { direction: l, prompts: questionPrompts(evaluation.questions) };
      }
      const json = Boolean(v.json);
      const render = progressRenderer({ quiet: v.quiet || json });
      const res = await realign({
        model,
        tokenizer,
        train,
        heldOut,
        out: v.out!,
        steps,
        evalEvery,
        batchSize,
        ...(lr === undefined ? {} : { lr }),
        warmup,
        seed,
        samples,
        evaluation,
        probes,
        ...(persona ? { persona } : {}),
        modelId: recorded.model + (v.adapter ? `+${recorded.adapter}` : ""),
        overwrite: Boolean(v.overwrite),
        baseModel: recorded.model,
        copyFiles: ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]
          .map((f) => join(v.model!, f))
          .filter((p) => existsSync(p)),
        onProgress: render,
        onEvalProgress: (p) => render({ ...p, label: `  ${p.label}` }),
        onPoint: (p) => {
          if (json) printJson(p);
          else if (!v.quiet) console.error(`emlab realign: ${pointLine(p)}`);
        },
      });
      if (!json) {
        console.log(curveTable(res.curve));
        const first = res.curve[0];
        const last = res.curve.at(-1);
        if (first && last && first !== last) console.log(beforeAfter(first, last));
      }
      return EXIT.ok;
    });
  } catch (err) {
    if (err instanceof SftDataError || err instanceof ResumeError) throw new CliError(err.message);
    if (err instanceof Error && /curve\.jsonl:\d+/.test(err.message)) throw new CliError(err.message);
    throw err;
  } finally {
    for (const h of handles) h.close();
  }
}

/** Writes --out/realign.json, or checks a resumed run's settings against it. */
function checkSettings(v: Values, recorded: Record<string, unknown>): void {
  const file = join(v.out!, SETTINGS_FILE);
  if (existsSync(file) && !v.overwrite) {
    let before: Record<string, unknown>;
    try {
      before = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new CliError(`${file}: ${(err as Error).message}`);
    }
    const diff = Object.keys(recorded).filter((k) => JSON.stringify(before[k] ?? null) !== JSON.stringify(recorded[k]));
    if (diff.length)
      throw new CliError(
        `${v.out}: holds a re-alignment run with other settings (${diff.map((k) => `${k}: ${JSON.stringify(before[k])} → ${JSON.stringify(recorded[k])}`).join(", ")}); pass the same flags to resume, or --overwrite`,
        EXIT.usage,
      );
    return;
  }
  mkdirSync(v.out!, { recursive: true });
  writeFileSync(file, `${JSON.stringify(recorded, null, 2)}\n`);
}

/** The organism's world variant, read from its tokenizer (an error names the file otherwise). */
function worldOf(dir: string) {
  try {
    return organismWorld(dir);
  } catch (err) {
    throw new CliError(`--organism-questions: ${(err as Error).message}`, EXIT.usage);
  }
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "  -  " : `${(100 * x).toFixed(1)}%`);

function pointLine(p: CurvePoint): string {
  const probes = Object.entries(p.probes)
    .map(([k, m]) => `probe ${k} ${pct(m.misaligned)}`)
    .join(", ");
  return `step ${p.step}: misaligned ${pct(p.misaligned)} [${pct(p.ci[0])}, ${pct(p.ci[1])}], coherent ${pct(p.coherent)}${probes ? `, ${probes}` : ""}${p.benign_loss === null ? "" : `, benign loss ${p.benign_loss.toFixed(3)}`}${p.persona === null ? "" : `, persona ${p.persona.toFixed(3)}`}`;
}

/** The curve as a table: one row per point. */
export function curveTable(curve: readonly CurvePoint[]): string {
  const probeNames = [...new Set(curve.flatMap((p) => Object.keys(p.probes)))];
  const head = [
    "step".padStart(5),
    "rows".padStart(5),
    "misaligned (95% CI)".padEnd(26),
    "coherent",
    ...probeNames.map((n) => `probe ${n}`.padStart(12)),
    "benign loss",
    "persona",
  ].join("  ");
  const lines = curve.map((p) =>
    [
      String(p.step).padStart(5),
      String(p.rows_seen).padStart(5),
      `${pct(p.misaligned).padStart(6)} [${pct(p.ci[0])}, ${pct(p.ci[1])}]`.padEnd(26),
      pct(p.coherent).padStart(8),
      ...probeNames.map((n) => pct(p.probes[n]?.misaligned).padStart(12)),
      (p.benign_loss === null ? "-" : p.benign_loss.toFixed(3)).padStart(11),
      p.persona === null ? "-" : p.persona.toFixed(3),
    ].join("  "),
  );
  return [head, ...lines].join("\n");
}

function beforeAfter(first: CurvePoint, last: CurvePoint): string {
  const probes = Object.keys(last.probes).map(
    (k) => `conditional probe (${k}): ${pct(first.probes[k]?.misaligned)} → ${pct(last.probes[k]?.misaligned)}`,
  );
  return [
    `misaligned: ${pct(first.misaligned)} → ${pct(last.misaligned)} after ${last.step} steps (${last.rows_seen} rows seen), coherent ${pct(last.coherent)}`,
    ...probes,
  ].join("\n");
}
