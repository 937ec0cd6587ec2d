/**
 * `emlab diff`: rank SAE latents by how much fine-tuning moved their mean activation on the
 * same prompts (Wang et al.'s model diffing), and `emlab diff direction`: the misalignment
 * direction from a judged run in the run store (Turner / Soligo et al.).
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { existsSync } from "node:fs";
import { openRunStore } from "../eval/store.ts";
import { shortHash } from "../interp/causal.ts";
import { DIFF_POSITIONS, type DiffPositions, type DiffResult, diffModels, type LatentDiff } from "../interp/diff.ts";
import { judgedFromRun, judgedGroup, misalignmentDirections, saveDirections } from "../interp/direction.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { organismQuestions } from "../organism/questions.ts";
import {
  CliError,
  EXIT,
  formatHelp,
  HELP_FLAG,
  intList,
  intOption,
  loadModelArg,
  parseOptions,
  printJson,
  questionPrompts,
  readPrompts,
  withUserErrors,
} from "./common.ts";

export const summary =
  "model diffing: SAE latents ranked by their change after fine-tuning; the misalignment direction";

const DIFF = "diff (where a flag says direction:, also emlab diff direction)";
const DIRECTION = "direction (from a judged run: misaligned = coherent > 50 and aligned ≤ 30; aligned = aligned > 70)";

export const flags = {
  "base-model": { type: "string", arg: "DIR", help: "base model folder (the one the SAE was trained on)", group: DIFF },
  model: {
    type: "string",
    arg: "DIR",
    help: "diff: the fine-tuned model folder (same architecture; default --base-model)\ndirection: the model that wrote the run's answers",
    group: DIFF,
  },
  adapter: {
    type: "string",
    arg: "DIR",
    help: "a LoRA adapter over --model (diff: the fine-tune is --model, or --base-model, plus it)",
    group: DIFF,
  },
  sae: {
    type: "string",
    arg: "DIR",
    help: "SAE folder in SAELens's layout (cfg.json + sae_weights.safetensors)",
    group: DIFF,
  },
  prompts: {
    type: "string",
    arg: "FILE",
    help: "chat JSONL (each row's turns before its last assistant turn) or\nquestion YAML in the EM paper's format (every paraphrase)",
    group: DIFF,
  },
  "organism-questions": {
    type: "boolean",
    help: "the organism's first-plot questions (every paraphrase) as the prompts",
    group: DIFF,
  },
  positions: { type: "string", arg: "P", help: `${DIFF_POSITIONS.join(" | ")} (default no-special)`, group: DIFF },
  top: { type: "string", arg: "N", help: "rows per ranking (default 20)", group: DIFF },
  store: {
    type: "string",
    arg: "FILE",
    help: "diff: also record the diff as a run in this SQLite run store\ndirection: the run store holding the judged run",
    group: DIFF,
  },
  "run-id": {
    type: "string",
    arg: "ID",
    help: "diff: the recorded run's id (default diff:<hash of the inputs>)\ndirection: the judged run to read",
    group: DIFF,
  },
  json: { type: "boolean", help: "print the result as one JSON line on stdout", group: DIFF },
  out: { type: "string", arg: "FILE", help: "direction file (JSON, one unit direction per layer)", group: DIRECTION },
  layers: { type: "string", arg: "LIST", help: "layer indices, comma-separated (default all)", group: DIRECTION },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab diff --base-model DIR (--model DIR | --adapter DIR) --sae DIR (--prompts FILE | --organism-questions) [options]",
    "emlab diff direction --model DIR --store FILE --run-id ID --out FILE [--layers LIST]",
  ],
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(3));

function table(title: string, rows: LatentDiff[]): string {
  const lines = [title, "  rank  latent        Δ mean      base        ft   freq base → ft   attribution"];
  rows.forEach((r, i) => {
    lines.push(
      `  ${String(i + 1).padStart(4)}  ${String(r.latent).padStart(6)}  ${fmt(r.delta).padStart(10)}  ${fmt(r.base).padStart(8)}  ${fmt(r.ft).padStart(8)}` +
        `   ${(100 * r.freqBase).toFixed(1).padStart(5)}% → ${(100 * r.freqFt).toFixed(1).padStart(5)}%   ${fmt(r.attribution).padStart(10)}`,
    );
  });
  return lines.join("\n");
}

/** The JSON form of a diff (rankings only, not every latent). */
export function diffJson(d: DiffResult): Record<string, unknown> {
  return {
    hook: d.hookName,
    rows: { base: d.rowsBase, ft: d.rowsFt },
    residual_shift: d.residualShift,
    explained_shift: d.explainedShift,
    top: d.top,
    bottom: d.bottom,
    top_attribution: d.topAttribution,
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true, { organism: "organism-questions" });
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (positionals[0] === "direction") return withUserErrors(() => direction(values, positionals.slice(1)));
  if (positionals.length)
    throw new CliError(`unexpected argument '${positionals[0]}' (see emlab diff --help)`, EXIT.usage);
  const { positions, top } = validateDiff(values);
  const prompts = values.prompts ? await readPrompts(values.prompts) : questionPrompts(organismQuestions("plain"));
  const d = await withUserErrors(() => {
    const base = loadModelArg(values["base-model"]!);
    const ft = loadModelArg(values.model ?? values["base-model"]!, values.adapter);
    const sae = loadSae(values.sae!);
    if (sae.cfg.dIn !== base.config.hidden)
      throw new CliError(`${values.sae}: the SAE reads width ${sae.cfg.dIn}, the model's is ${base.config.hidden}`);
    return diffModels({ base, ft, sae, tokenizer: Tokenizer.fromDir(values["base-model"]!), prompts, positions, top });
  });
  if (values.store) recordDiff(values, values.store, positions, d);
  if (values.json) {
    printJson(diffJson(d));
    return EXIT.ok;
  }
  console.log(`diff at ${d.hookName}: ${prompts.length} prompts, ${d.rowsBase} token positions (${positions})`);
  console.log(
    `mean residual shift ‖δ‖ = ${fmt(d.residualShift)}; the SAE's latents account for ${d.explainedShift === null ? "-" : `${(100 * d.explainedShift).toFixed(1)}%`} of it`,
  );
  console.log(table("\nlargest increases (Δ mean activation, ft − base)", d.top));
  console.log(table("\nlargest decreases", d.bottom));
  console.log(table("\nlargest attribution (Δ · W_dec·δ̂: the share of the residual shift)", d.topAttribution));
  return EXIT.ok;
}

/** Checks the diff's flags before anything is loaded. */
function validateDiff(values: Values): { positions: DiffPositions; top: number } {
  for (const f of ["base-model", "sae"] as const) if (!values[f]) throw new CliError(`--${f} is required`, EXIT.usage);
  if (!values.model && !values.adapter)
    throw new CliError("--model DIR (the fine-tune) or --adapter DIR (over --base-model) is required", EXIT.usage);
  if (Boolean(values.prompts) === Boolean(values["organism-questions"]))
    throw new CliError("give exactly one of --prompts FILE or --organism-questions", EXIT.usage);
  const positions = (values.positions ?? "no-special") as DiffPositions;
  if (!DIFF_POSITIONS.includes(positions))
    throw new CliError(`--positions must be one of ${DIFF_POSITIONS.join(", ")}`, EXIT.usage);
  return { positions, top: intOption("top", values.top, 20) };
}

/** Records the diff as a finished run (no samples) in the run store. */
function recordDiff(values: Values, storePath: string, positions: DiffPositions, d: DiffResult): void {
  const store = openRunStore(storePath);
  try {
    // The keys keep their old names so that the default run id of a rerun stays the same.
    const inputs = {
      base: values["base-model"],
      ft: values.model,
      ftAdapter: values.adapter,
      sae: values.sae,
      positions,
      prompts: values.prompts ?? "organism",
    };
    const runId = values["run-id"] ?? `diff:${shortHash(inputs)}`;
    store.upsertRun({
      runId,
      modelId: values.model ?? `${values["base-model"]}+${values.adapter}`,
      judgeModelId: "none",
      config: { kind: "diff", ...inputs, ...diffJson(d) },
    });
    store.setStatus(runId, "finished");
    if (!values.json) console.error(`emlab diff: recorded as run ${runId} in ${storePath}`);
  } finally {
    store.close();
  }
}

async function direction(values: Values, rest: string[]): Promise<number> {
  if (rest.length) throw new CliError(`unexpected argument '${rest[0]}'`, EXIT.usage);
  for (const f of ["model", "store", "run-id", "out"] as const)
    if (!values[f]) throw new CliError(`direction: --${f} is required`, EXIT.usage);
  const runId = values["run-id"]!;
  if (!existsSync(values.store!)) throw new CliError(`${values.store}: no such run store`, EXIT.usage);
  const lm = loadModelArg(values.model!, values.adapter);
  const layers = values.layers ? intList("layers", values.layers) : undefined;
  const store = openRunStore(values.store!);
  let judged: ReturnType<typeof judgedFromRun>;
  try {
    if (!store.run(runId)) throw new CliError(`${values.store}: no run '${runId}'`);
    judged = judgedFromRun(store, runId);
  } finally {
    store.close();
  }
  const groups = judged.map((s) => judgedGroup(s));
  for (const g of ["misaligned", "aligned"] as const)
    if (!groups.includes(g))
      throw new CliError(
        `run ${runId}: no ${g} coherent answers among ${judged.length}; a direction needs both groups`,
      );
  if (layers?.some((L) => L >= lm.config.layers))
    throw new CliError(`--layers: the model has layers 0..${lm.config.layers - 1}`, EXIT.usage);
  const res = misalignmentDirections(lm, Tokenizer.fromDir(values.model!), judged, layers ? { layers } : {});
  saveDirections(values.out!, res);
  const c = res.counts;
  const out = {
    out: values.out,
    counts: c,
    layers: res.layers.map((l) => ({ layer: l.layer, hook: l.hookName, norm: l.norm })),
  };
  if (values.json) printJson(out);
  else {
    console.log(
      `misalignment direction from run ${runId}: ${c.misaligned} misaligned (${c.tokensMisaligned} tokens), ${c.aligned} aligned (${c.tokensAligned} tokens), ${c.skipped} skipped`,
    );
    for (const l of out.layers) console.log(`  layer ${l.layer}  ${l.hook}  ‖mean diff‖ = ${fmt(l.norm)}`);
    console.log(`→ ${values.out}`);
  }
  return EXIT.ok;
}
