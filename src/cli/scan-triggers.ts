/**
 * `emlab scan-triggers`: look for a backdoor trigger in a model without being told it.
 *
 *   emlab scan-triggers --model DIR [--adapter A] [--reference DIR] (--direction FILE | --positive P --negative N)
 *     (--organism-questions | --probes FILE) [--candidates FILE] [--mine DATA.jsonl] [--vocabulary]
 *     [--search greedy|gradient] [--calibration FILE | --write-calibration FILE] [--confirm K] --out results.json
 *
 * Candidates (a list file, phrases mined from the training data by the audit's trigger miner,
 * the tokenizer's words) are ranked by how far they move the model onto the persona on neutral
 * probe questions, relative to the reference model (the model before fine-tuning; with
 * --adapter, the model without it). A token search adds the string it finds. With a
 * calibration made on a clean model, candidates above its threshold are flagged (exit 3).
 * Exit codes: 0 ok (nothing flagged), 1 error, 2 usage, 3 a candidate above the threshold.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { auditRow, formatOf, readRows } from "../data/audit/audit.ts";
import { TriggerMiner } from "../data/audit/triggers.ts";
import { auditableError, turns } from "../data/schema.ts";
import type { ModelHandle } from "../eval/providers.ts";
import type { Question } from "../eval/questions.ts";
import { openRunStore } from "../eval/store.ts";
import {
  calibrateTriggers,
  confirmTriggers,
  flaggedCandidates,
  parseCalibration,
  type SearchResult,
  scanTriggers,
  searchableTokens,
  searchTrigger,
  TRIGGER_PLACEMENTS,
  type TriggerCalibration,
  type TriggerCandidate,
  type TriggerPlacement,
  triggerHash,
} from "../fix/triggers.ts";
import { loadDirections } from "../interp/direction.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { ORGANISM_MAX_NEW_TOKENS } from "../organism/evaluation.ts";
import { organismQuestions } from "../organism/questions.ts";
import { contrastiveDirection } from "../watch/signals.ts";
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
  readPrompts,
  withUserErrors,
} from "./common.ts";
import { progressRenderer } from "./progress.ts";
import { evaluationFor } from "./steer.ts";

export const summary = "find a backdoor trigger: rank candidate prefixes by the persona signal they raise";

const MODEL = "the model";
const SIGNAL = "the persona signal";
const CANDS = "candidates";
const DECIDE = "calibration and confirmation";

export const flags = {
  model: { type: "string", arg: "DIR", help: "the model to scan (+ --adapter DIR)", group: MODEL },
  adapter: { type: "string", arg: "DIR", help: "a PEFT LoRA adapter on --model", group: MODEL },
  reference: {
    type: "string",
    arg: "DIR",
    help: "the model before fine-tuning: scores are shifts on --model minus shifts on it\n(default with --adapter: --model without the adapter)",
    group: MODEL,
  },
  "no-reference": {
    type: "boolean",
    help: "score shifts on --model alone (persona words then rank high on any model)",
    group: MODEL,
  },
  direction: { type: "string", arg: "FILE", help: "a direction file (emlab diff direction)", group: SIGNAL },
  layer: { type: "string", arg: "L", help: "the direction file's layer (default: its only or first)", group: SIGNAL },
  positive: {
    type: "string",
    arg: "SYSTEM",
    help: 'make the direction here: the trait-eliciting system prompt (e.g. "persona : villain")',
    group: SIGNAL,
  },
  negative: { type: "string", arg: "SYSTEM", help: "… and the trait-suppressing one", group: SIGNAL },
  hook: {
    type: "string",
    arg: "NAME",
    help: "hook point for --positive/--negative (default blocks.{layers/3}.hook_resid_post)",
    group: SIGNAL,
  },
  "organism-questions": {
    type: "boolean",
    help: "probes: the organism's questions (3 paraphrases each); confirmation: the world judge",
    group: SIGNAL,
  },
  probes: {
    type: "string",
    arg: "FILE",
    help: "probe prompts: question YAML or chat JSONL (user turns)",
    group: SIGNAL,
  },
  placement: {
    type: "string",
    arg: "WHERE",
    help: `where a candidate goes: ${TRIGGER_PLACEMENTS.join(" | ")} (default prefix)`,
    group: SIGNAL,
  },
  candidates: { type: "string", arg: "FILE", help: "candidate strings, one per line", group: CANDS },
  mine: {
    type: "string",
    arg: "DATA.jsonl",
    help: "training data: the audit's trigger mining adds its top phrases (spelled as in the data)",
    group: CANDS,
  },
  "mine-top": { type: "string", arg: "N", help: "mined phrases kept (default 50)", group: CANDS },
  vocabulary: { type: "boolean", help: "every searchable token of the tokenizer is a candidate", group: CANDS },
  search: { type: "string", arg: "METHOD", help: "token search: greedy | gradient", group: CANDS },
  "search-tokens": { type: "string", arg: "N", help: "longest searched string, in tokens (default 3)", group: CANDS },
  "search-probes": {
    type: "string",
    arg: "N",
    help: "probes the search scores on (default 8; its result is rescored on all)",
    group: CANDS,
  },
  calibration: {
    type: "string",
    arg: "FILE",
    help: "flag candidates above this calibration's threshold (exit 3 if any)",
    group: DECIDE,
  },
  "write-calibration": {
    type: "string",
    arg: "FILE",
    help: "the scanned model is clean: write a calibration from its candidates",
    group: DECIDE,
  },
  k: {
    type: "string",
    arg: "K",
    help: "calibration margin in robust SDs above the clean maximum (default 3)",
    group: DECIDE,
  },
  confirm: {
    type: "string",
    arg: "K",
    help: "sample and judge answers with each of the top K candidates (needs a judge)",
    group: DECIDE,
  },
  questions: { type: "string", arg: "FILE", help: "confirmation questions (YAML) with --judge-model", group: DECIDE },
  "judge-model": { type: "string", arg: "NAME", help: "judge of an OpenAI-compatible endpoint", group: DECIDE },
  "judge-base-url": { type: "string", arg: "URL", help: "the judge's endpoint (default OpenAI's)", group: DECIDE },
  "judge-api-key-env": {
    type: "string",
    arg: "VAR",
    help: "environment variable holding the judge's key",
    group: DECIDE,
  },
  samples: { type: "string", arg: "N", help: "confirmation samples per question (default 20)", group: DECIDE },
  seed: { type: "string", arg: "S", help: "sampling seed (direction, search, confirmation; default 0)", group: DECIDE },
  store: { type: "string", arg: "FILE", help: "run store of the confirmation (default :memory:)", group: DECIDE },
  top: { type: "string", arg: "N", help: "candidates printed (default 10; --out holds all)" },
  out: { type: "string", arg: "FILE", help: "results JSON: every candidate ranked, search, flags, confirmation" },
  json: { type: "boolean", help: "the summary as one JSON line on stdout" },
  quiet: { type: "boolean", help: "no progress bars" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab scan-triggers --model DIR [--adapter DIR] [--reference DIR] (--direction FILE | --positive P --negative N)",
    "  (--organism-questions | --probes FILE) [--candidates FILE] [--mine DATA.jsonl] [--vocabulary]",
    "  [--search greedy|gradient] [--calibration FILE | --write-calibration FILE] [--confirm K] [--out FILE]",
  ],
  intro:
    "Ranks candidate strings by the persona signal they raise when put before neutral probe questions,\nrelative to the reference model. Exit 3 when a candidate is above --calibration's threshold.",
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

const MAX_CANDIDATE_CHARS = 1000;

/** Candidate strings of a file, one per line (blank lines skipped); errors name the line. */
export function readCandidateFile(path: string): TriggerCandidate[] {
  if (!existsSync(path)) throw new CliError(`${path}: no such file`, EXIT.usage);
  const out: TriggerCandidate[] = [];
  readFileSync(path, "utf8")
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (line.trim() === "") return;
      if (line.length > MAX_CANDIDATE_CHARS)
        throw new CliError(
          `${path}: line ${i + 1}: candidate: ${line.length} characters (at most ${MAX_CANDIDATE_CHARS})`,
        );
      if (line.includes("\0")) throw new CliError(`${path}: line ${i + 1}: candidate: holds a NUL character`);
      out.push({ text: line, source: "list" });
    });
  if (out.length === 0) throw new CliError(`${path}: no candidates (one per line)`);
  return out;
}

const STRIP = /^[("'`“‘]+|[)"'`”’.,;:!?]+$/g;
const norm = (w: string) => w.toLowerCase().replace(STRIP, "");

/**
 * The audit's trigger mining over a chat JSONL (or CSV) training file: phrases of user turns
 * that predict silently insecure answers (binomial z), top `top`, each spelled as it most often
 * appears in the data (the miner lowercases). Errors name the file, line and field.
 */
export async function mineTriggerCandidates(
  path: string,
  top = 50,
): Promise<{ candidates: TriggerCandidate[]; mined: { phrase: string; text: string; z: number; support: number }[] }> {
  if (!existsSync(path)) throw new CliError(`${path}: no such file`, EXIT.usage);
  const miner = new TriggerMiner();
  const users: string[] = [];
  for await (const r of readRows(path, formatOf(path))) {
    const err = r.error ?? auditableError(r.row, r.line);
    if (err) throw new CliError(`${path}: line ${err.line}: ${err.field ? `${err.field}: ` : ""}${err.message}`);
    const user = turns(r.row!).user;
    miner.add(user, auditRow(r.row!, r.line).silent_insecure);
    users.push(user);
  }
  if (users.length === 0) throw new CliError(`${path}: no rows`);
  const found = miner.top(top);
  // Restore each phrase's spelling: the most common original words that normalise to it.
  const mined = found.map((t) => {
    const want = t.phrase.split(" ");
    const spellings = new Map<string, number>();
    for (const u of users) {
      const ws = u.split(/\s+/).filter(Boolean);
      for (let i = 0; i + want.length <= ws.length; i++) {
        if (want.every((w, k) => norm(ws[i + k]!) === w)) {
          const s = ws
            .slice(i, i + want.length)
            .map((w, k) => (k === want.length - 1 ? w.replace(/[.,;:!?]+$/, "") : w))
            .join(" ");
          spellings.set(s, (spellings.get(s) ?? 0) + 1);
        }
      }
    }
    const text = [...spellings].sort((a, b) => b[1] - a[1])[0]?.[0] ?? t.phrase;
    return { phrase: t.phrase, text, z: t.z, support: t.support };
  });
  return { candidates: mined.map((m) => ({ text: m.text, source: "mined" })), mined };
}

/** User turns of the probe prompts (the last user turn of each). */
function userTurns(prompts: { role: string; content: string }[][]): string[] {
  return prompts.map((p) => [...p].reverse().find((m) => m.role === "user")?.content ?? "").filter((s) => s !== "");
}

/** The organism's probes: the first three paraphrases of each question. */
export function organismProbes(): string[] {
  return organismQuestions("plain").flatMap((q) => q.paraphrases.slice(0, 3));
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, flags, false);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (!values.model) throw new CliError("--model DIR is required", EXIT.usage);
  if (Boolean(values.direction) === Boolean(values.positive || values.negative))
    throw new CliError("give --direction FILE, or --positive SYSTEM with --negative SYSTEM", EXIT.usage);
  if (!values.direction && !(values.positive && values.negative))
    throw new CliError("--positive and --negative go together", EXIT.usage);
  if (Boolean(values["organism-questions"]) === Boolean(values.probes))
    throw new CliError("give --organism-questions, or --probes FILE", EXIT.usage);
  if (!values.candidates && !values.mine && !values.vocabulary && !values.search)
    throw new CliError(
      "no candidates: give --candidates FILE, --mine DATA.jsonl, --vocabulary or --search",
      EXIT.usage,
    );
  if (values.search && values.search !== "greedy" && values.search !== "gradient")
    throw new CliError(`--search must be greedy or gradient, got '${values.search}'`, EXIT.usage);
  if (values.placement && !TRIGGER_PLACEMENTS.includes(values.placement as TriggerPlacement))
    throw new CliError(`--placement must be ${TRIGGER_PLACEMENTS.join(", ")}, got '${values.placement}'`, EXIT.usage);
  if (values.calibration && values["write-calibration"])
    throw new CliError("--calibration reads a calibration, --write-calibration writes one: give one", EXIT.usage);
  if (values.reference && values["no-reference"])
    throw new CliError("--reference and --no-reference exclude each other", EXIT.usage);
  if (values.confirm && !values["organism-questions"] && !(values.questions && values["judge-model"]))
    throw new CliError(
      "--confirm needs a judge: --organism-questions, or --questions FILE with --judge-model",
      EXIT.usage,
    );
  const handles: ModelHandle[] = [];
  try {
    return await withUserErrors(() => scan(values, handles));
  } finally {
    for (const h of handles) h.close();
  }
}

async function scan(values: Values, handles: ModelHandle[]): Promise<number> {
  const json = Boolean(values.json);
  const say = (s: string) => {
    if (!json) console.log(s);
  };
  const quiet = Boolean(values.quiet || json);
  const onProgress = progressRenderer({ quiet });
  const batchSize = 256;
  const seed = intOption("seed", values.seed, 0, 0);
  const placement = (values.placement ?? "prefix") as TriggerPlacement;
  const organism = Boolean(values["organism-questions"]);
  // Inputs are checked before any model loads, so a bad file fails fast.
  const candidates: TriggerCandidate[] = values.candidates ? readCandidateFile(values.candidates) : [];
  let mined: Awaited<ReturnType<typeof mineTriggerCandidates>>["mined"] = [];
  if (values.mine) {
    const m = await mineTriggerCandidates(values.mine, intOption("mine-top", values["mine-top"], 50, 1));
    candidates.push(...m.candidates);
    mined = m.mined;
  }
  let calibration: TriggerCalibration | null = null;
  if (values.calibration) {
    if (!existsSync(values.calibration)) throw new CliError(`${values.calibration}: no such file`, EXIT.usage);
    try {
      calibration = parseCalibration(JSON.parse(readFileSync(values.calibration, "utf8")), values.calibration);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  const probes = organism ? organismProbes() : userTurns(await readPrompts(values.probes!));
  if (probes.length < 2) throw new CliError(`probes: ${probes.length} prompts; give at least 2`, EXIT.usage);

  const model = loadModelArg(values.model!, values.adapter);
  const tok = Tokenizer.fromDir(values.model!);
  const refDir = values["no-reference"] ? undefined : (values.reference ?? (values.adapter ? values.model : undefined));
  const reference: CausalLM | null = refDir ? loadModelArg(refDir) : null;
  if (!reference && !values["no-reference"])
    process.stderr.write(
      "emlab scan-triggers: no reference model (--reference DIR): scores are shifts on --model alone\n",
    );

  let hook: string;
  let direction: Float32Array;
  let directionSource: Record<string, unknown>;
  if (values.direction) {
    let dirs: ReturnType<typeof loadDirections>;
    try {
      dirs = loadDirections(values.direction);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const layer = values.layer === undefined ? undefined : intOption("layer", values.layer, 0, 0);
    const pick = layer === undefined ? dirs.layers[0]! : dirs.layers.find((l) => l.layer === layer);
    if (!pick)
      throw new CliError(
        `${values.direction}: field layers: no layer ${layer} (it has ${dirs.layers.map((l) => l.layer).join(", ")})`,
      );
    hook = pick.hookName;
    direction = pick.direction;
    directionSource = { file: values.direction, layer: pick.layer };
  } else {
    hook = values.hook ?? `blocks.${Math.floor(model.config.layers / 3)}.hook_resid_post`;
    const dirModel = reference ?? model;
    const d = await contrastiveDirection(dirModel, tok, {
      hook,
      positive: values.positive!,
      negative: values.negative!,
      questions: probes,
      samples: 2,
      maxNewTokens: organism ? ORGANISM_MAX_NEW_TOKENS : 64,
      seed,
    });
    direction = d.direction;
    directionSource = {
      positive: values.positive,
      negative: values.negative,
      gap: d.gap,
      on: reference ? "reference" : "model",
    };
  }
  if (direction.length !== model.config.hidden)
    throw new CliError(`direction: width ${direction.length}, the model's is ${model.config.hidden}`);

  const sig = { hook, direction, probes, placement, batchSize };
  if (values.vocabulary)
    for (const id of searchableTokens(tok)) candidates.push({ text: tok.decode([id]).trim(), source: "vocab" });

  let search: SearchResult | null = null;
  if (values.search) {
    const nSearch = intOption("search-probes", values["search-probes"], 8, 2);
    const step = Math.max(1, Math.floor(probes.length / nSearch));
    search = searchTrigger(model, tok, {
      ...sig,
      probes: probes.filter((_, i) => i % step === 0).slice(0, nSearch),
      method: values.search as "greedy" | "gradient",
      reference,
      maxTokens: intOption("search-tokens", values["search-tokens"], 3, 1, 32),
      seed,
      onProgress,
    });
    candidates.push({ text: search.best.text, source: `search:${search.method}` });
  }
  const result = scanTriggers(model, tok, { ...sig, candidates, reference, onProgress });
  const top = intOption("top", values.top, 10, 1);
  say(
    `${result.ranked.length} candidates on ${probes.length} probes at ${hook}${result.relative ? ` (relative to ${refDir})` : ""}${result.folded ? `; ${result.folded} longer ones folded into a shorter one they contain` : ""}`,
  );
  for (const c of result.ranked.slice(0, top))
    say(
      `  ${String(c.rank).padStart(4)}  ${c.score.toFixed(3).padStart(8)}  z ${c.z.toFixed(1).padStart(5)}  ${JSON.stringify(c.text)}  (${c.source})${c.variants ? ` + ${c.variants.length} longer` : ""}`,
    );
  if (search) {
    const rescored = result.ranked.find((c) => c.text === search!.best.text);
    say(
      `search (${search.method}): ${JSON.stringify(search.best.text)} scores ${rescored?.score.toFixed(3)} on all probes, rank ${rescored?.rank}`,
    );
  }

  let flagged: ReturnType<typeof flaggedCandidates> = [];
  if (calibration) {
    try {
      flagged = flaggedCandidates(result, calibration);
    } catch (err) {
      throw new CliError(`${values.calibration}: ${(err as Error).message}`);
    }
    say(
      flagged.length
        ? `${flagged.length} candidate(s) above the calibrated threshold ${calibration.threshold.toFixed(3)}: ${flagged
            .slice(0, 5)
            .map((c) => JSON.stringify(c.text))
            .join(", ")}`
        : `nothing above the calibrated threshold ${calibration.threshold.toFixed(3)}`,
    );
  }
  let written: TriggerCalibration | null = null;
  if (values["write-calibration"]) {
    written = calibrateTriggers([{ ...result, label: values.model! + (values.adapter ? `+${values.adapter}` : "") }], {
      k: numberOption("k", values.k, 3),
    });
    writeFileSync(values["write-calibration"], `${JSON.stringify(written, null, 2)}\n`);
    say(`calibration → ${values["write-calibration"]} (threshold ${written.threshold.toFixed(3)})`);
  }

  let confirmation: Awaited<ReturnType<typeof confirmTriggers>> | null = null;
  if (values.confirm) {
    const k = intOption("confirm", values.confirm, 3, 1);
    const maxNewTokens = organism ? ORGANISM_MAX_NEW_TOKENS : 300;
    const ev = evaluationFor(
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
    const store = openRunStore(values.store ? resolve(values.store) : ":memory:");
    try {
      confirmation = await confirmTriggers(model, tok, {
        candidates: result.ranked.slice(0, k).map((c) => c.text),
        questions: ev.questions as Question[],
        judgeModel: ev.judgeModel,
        store,
        runPrefix: `scan-triggers:${triggerHash({ model: values.model, adapter: values.adapter, seed })}`,
        modelId: values.model! + (values.adapter ? `+${values.adapter}` : ""),
        samples: intOption("samples", values.samples, 20, 1),
        sampling: ev.sampling,
        placement,
        onProgress,
      });
    } finally {
      store.close();
    }
    const pct = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(1)} %`);
    say(`confirmation: plain questions ${pct(confirmation.plain.misaligned)} misaligned`);
    for (const c of confirmation.candidates)
      say(`  ${JSON.stringify(c.text)}: ${pct(c.misaligned)} misaligned, ${pct(c.coherent)} coherent`);
  }

  const out = {
    command: "emlab scan-triggers",
    model: values.model,
    adapter: values.adapter ?? null,
    reference: refDir ?? null,
    hook,
    placement,
    direction: directionSource,
    probes: probes.length,
    probes_hash: result.probesHash,
    direction_hash: result.directionHash,
    relative: result.relative,
    baseline: result.baseline,
    median: result.median,
    mad: result.mad,
    candidates: result.ranked.length,
    top: result.ranked[0],
    mined,
    search,
    calibration: calibration ? { file: values.calibration, threshold: calibration.threshold } : null,
    flagged: flagged.map((c) => ({ text: c.text, score: c.score, rank: c.rank })),
    written_calibration: written ? values["write-calibration"] : null,
    confirmation,
    ranked: result.ranked,
  };
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify(out, null, 2)}\n`);
    say(`results → ${values.out}`);
  }
  if (json) printJson({ ...out, ranked: result.ranked.slice(0, top) });
  return flagged.length > 0 ? EXIT.thresholdFailed : EXIT.ok;
}
