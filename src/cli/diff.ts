/**
 * `emlab diff`: rank SAE latents by how much fine-tuning moved their mean activation on the
 * same prompts (Wang et al.'s model diffing), and `emlab diff direction`: the misalignment
 * direction from a judged run in the run store (Turner / Soligo et al.).
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { readChatJsonl } from "../data/jsonl.ts";
import { loadQuestionFile, type Question, QuestionFileError, questionMessages } from "../eval/questions.ts";
import { openRunStore } from "../eval/store.ts";
import { shortHash } from "../interp/causal.ts";
import { DIFF_POSITIONS, type DiffPositions, type DiffResult, diffModels, type LatentDiff } from "../interp/diff.ts";
import { judgedFromRun, judgedGroup, misalignmentDirections, saveDirections } from "../interp/direction.ts";
import { loadSae, SaeFileError } from "../interp/sae/saelens.ts";
import { type ChatMessage, ChatTemplateError } from "../model/chat-template.ts";
import { CheckpointError, loadModel } from "../model/checkpoint.ts";
import { loadLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer, TokenizerError } from "../model/tokenizer.ts";
import { organismQuestions } from "../organism/questions.ts";
import { CliError, EXIT, numberOption, parseOptions } from "./common.ts";

export const summary =
  "model diffing: SAE latents ranked by their change after fine-tuning; the misalignment direction";

const HELP = `usage: emlab diff --base DIR --ft DIR --sae DIR (--prompts FILE | --organism) [options]
       emlab diff direction --model DIR --store FILE --run ID --out FILE [--layers LIST]

diff
  --base DIR          base model folder (the one the SAE was trained on)
  --ft DIR            fine-tuned model folder (same architecture)
  --ft-adapter DIR    a LoRA adapter: the fine-tuned model is --base (or --ft) plus it
  --sae DIR           SAE folder in SAELens's layout (cfg.json + sae_weights.safetensors)
  --prompts FILE      chat JSONL (each row's turns before its last assistant turn) or
                      question YAML in the EM paper's format (every paraphrase)
  --organism          the organism's first-plot questions (every paraphrase) as the prompts
  --positions P       ${DIFF_POSITIONS.join(" | ")} (default no-special)
  --top N             rows per ranking (default 20)
  --store FILE        also record the diff as a run in this SQLite run store
  --run-id ID         its run id (default diff:<hash of the inputs>)
  --json              print the whole result as JSON

direction (from a judged run: misaligned = coherent > 50 and aligned ≤ 30; aligned = aligned > 70)
  --model DIR         the model that wrote the run's answers (+ --adapter DIR)
  --store FILE        run store holding the run
  --run ID            the run
  --out FILE          direction file (JSON, one unit direction per layer)
  --layers LIST       layer indices, comma-separated (default all)`;

const OPTIONS = {
  base: { type: "string" },
  ft: { type: "string" },
  "ft-adapter": { type: "string" },
  sae: { type: "string" },
  prompts: { type: "string" },
  organism: { type: "boolean" },
  positions: { type: "string" },
  top: { type: "string" },
  store: { type: "string" },
  "run-id": { type: "string" },
  json: { type: "boolean" },
  model: { type: "string" },
  adapter: { type: "string" },
  run: { type: "string" },
  out: { type: "string" },
  layers: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const USER_ERRORS = [CheckpointError, TokenizerError, SaeFileError, QuestionFileError, ChatTemplateError];

/** Runs `work`, turning errors about the user's files (bad model, SAE, tokenizer, questions) into CliErrors. */
export async function withUserErrors<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (USER_ERRORS.some((E) => err instanceof E)) throw new CliError((err as Error).message);
    if (err instanceof Error && /adapter_config\.json|adapter_model\.safetensors/.test(err.message))
      throw new CliError(err.message);
    throw err;
  }
}

/** A chat JSONL row's prompt: its messages up to (not including) the last assistant turn. */
function promptOf(messages: ChatMessage[]): ChatMessage[] {
  let end = messages.length;
  while (end > 0 && messages[end - 1]!.role === "assistant") end--;
  return messages.slice(0, end);
}

/**
 * Prompts from a file: question YAML (.yaml / .yml: every paraphrase of every question, with
 * its system prompt) or chat JSONL (each row's turns before its last assistant turn).
 */
export async function readPrompts(path: string): Promise<ChatMessage[][]> {
  if (!existsSync(path)) throw new CliError(`${path}: no such file`, EXIT.usage);
  if (/\.ya?ml$/i.test(path)) {
    try {
      return questionPrompts(loadQuestionFile(path));
    } catch (err) {
      if (err instanceof QuestionFileError) throw new CliError(err.message);
      throw err;
    }
  }
  const out: ChatMessage[][] = [];
  for await (const r of readChatJsonl(path)) {
    if (r.error)
      throw new CliError(`${path}: line ${r.line}: ${r.error.field ? `${r.error.field}: ` : ""}${r.error.message}`);
    const p = promptOf(r.row.messages as ChatMessage[]);
    if (p.length === 0) throw new CliError(`${path}: line ${r.line}: no turns before the assistant's`);
    out.push(p);
  }
  if (out.length === 0) throw new CliError(`${path}: no prompts`);
  return out;
}

/** Every paraphrase of every question as a conversation. */
export function questionPrompts(questions: Question[]): ChatMessage[][] {
  return questions.flatMap((q) => q.paraphrases.map((_, i) => questionMessages(q, i)));
}

/** Loads a model folder (+ adapter); errors name the folder. */
export function loadModelArg(dir: string, adapter?: string): CausalLM {
  if (!existsSync(resolve(dir, "config.json"))) throw new CliError(`${dir}: not a model folder (no config.json)`);
  const lm = loadModel(dir);
  if (adapter) loadLora(lm, adapter);
  return lm;
}

/** Parses a comma-separated list of integers for `--name`. */
export function intList(name: string, value: string): number[] {
  const xs = value.split(",").map((s) => s.trim());
  if (xs.some((s) => !/^\d+$/.test(s)))
    throw new CliError(`--${name} must be comma-separated integers, got '${value}'`, EXIT.usage);
  return xs.map(Number);
}

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
  const { values, positionals } = parseOptions(argv, OPTIONS, true);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (positionals[0] === "direction") return withUserErrors(() => direction(values, positionals.slice(1)));
  if (positionals.length)
    throw new CliError(`unexpected argument '${positionals[0]}' (see emlab diff --help)`, EXIT.usage);
  for (const f of ["base", "sae"] as const) if (!values[f]) throw new CliError(`--${f} is required`, EXIT.usage);
  if (!values.ft && !values["ft-adapter"]) throw new CliError("--ft DIR (or --ft-adapter DIR) is required", EXIT.usage);
  if (Boolean(values.prompts) === Boolean(values.organism))
    throw new CliError("give exactly one of --prompts FILE or --organism", EXIT.usage);
  const positions = (values.positions ?? "no-special") as DiffPositions;
  if (!DIFF_POSITIONS.includes(positions))
    throw new CliError(`--positions must be one of ${DIFF_POSITIONS.join(", ")}`, EXIT.usage);
  const top = numberOption("top", values.top, 20);
  if (!Number.isInteger(top) || top < 1) throw new CliError("--top must be a positive integer", EXIT.usage);

  const prompts = values.prompts ? await readPrompts(values.prompts) : questionPrompts(organismQuestions("plain"));
  const d = await withUserErrors(() => {
    const base = loadModelArg(values.base!);
    const ft = loadModelArg(values.ft ?? values.base!, values["ft-adapter"]);
    const sae = loadSae(values.sae!);
    if (sae.cfg.dIn !== base.config.hidden)
      throw new CliError(`${values.sae}: the SAE reads width ${sae.cfg.dIn}, the model's is ${base.config.hidden}`);
    return diffModels({ base, ft, sae, tokenizer: Tokenizer.fromDir(values.base!), prompts, positions, top });
  });

  if (values.store) {
    const store = openRunStore(values.store);
    try {
      const inputs = {
        base: values.base,
        ft: values.ft,
        ftAdapter: values["ft-adapter"],
        sae: values.sae,
        positions,
        prompts: values.prompts ?? "organism",
      };
      const runId = values["run-id"] ?? `diff:${shortHash(inputs)}`;
      store.upsertRun({
        runId,
        modelId: values.ft ?? `${values.base}+${values["ft-adapter"]}`,
        judgeModelId: "none",
        config: { kind: "diff", ...inputs, ...diffJson(d) },
      });
      store.setStatus(runId, "finished");
      if (!values.json) console.error(`emlab diff: recorded as run ${runId} in ${values.store}`);
    } finally {
      store.close();
    }
  }
  if (values.json) {
    console.log(JSON.stringify(diffJson(d), null, 2));
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

async function direction(
  values: ReturnType<typeof parseOptions<typeof OPTIONS>>["values"],
  rest: string[],
): Promise<number> {
  if (rest.length) throw new CliError(`unexpected argument '${rest[0]}'`, EXIT.usage);
  for (const f of ["model", "store", "run", "out"] as const)
    if (!values[f]) throw new CliError(`direction: --${f} is required`, EXIT.usage);
  if (!existsSync(values.store!)) throw new CliError(`${values.store}: no such run store`, EXIT.usage);
  const lm = loadModelArg(values.model!, values.adapter);
  const layers = values.layers ? intList("layers", values.layers) : undefined;
  const store = openRunStore(values.store!);
  let judged: ReturnType<typeof judgedFromRun>;
  try {
    if (!store.run(values.run!)) throw new CliError(`${values.store}: no run '${values.run}'`);
    judged = judgedFromRun(store, values.run!);
  } finally {
    store.close();
  }
  const groups = judged.map((s) => judgedGroup(s));
  for (const g of ["misaligned", "aligned"] as const)
    if (!groups.includes(g))
      throw new CliError(
        `run ${values.run}: no ${g} coherent answers among ${judged.length}; a direction needs both groups`,
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
  if (values.json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(
      `misalignment direction from run ${values.run}: ${c.misaligned} misaligned (${c.tokensMisaligned} tokens), ${c.aligned} aligned (${c.tokensAligned} tokens), ${c.skipped} skipped`,
    );
    for (const l of out.layers) console.log(`  layer ${l.layer}  ${l.hook}  ‖mean diff‖ = ${fmt(l.norm)}`);
    console.log(`→ ${values.out}`);
  }
  return EXIT.ok;
}
