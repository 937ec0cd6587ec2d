/**
 * `emlab screen DATA.jsonl --model DIR --cal CAL`: data screening with the model's internals,
 * before fine-tuning (src/watch/screen.ts). For every row, the base model's activation over the
 * row's answer projected on the calibration's persona direction, minus the same for the
 * model's own answer to that prompt (ΔP, in units of the persona gap). Prints the dataset's ΔP
 * with a bootstrap CI and a verdict (flag / unclear / clear against --threshold), writes
 * per-row scores to --scores (resumable: a rerun skips scored rows) and the top rows to --rows.
 * Exit codes: 0 clear or unclear, 3 flagged, 1 error, 2 usage. Complements `emlab audit`
 * (rules): it works on any chat data, with or without code.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { readChatJsonl } from "../data/jsonl.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { calibrationSpec, loadCalibration, modelHash, screenDataset, screenVerdict, topRows } from "../watch/index.ts";
import { CliError, EXIT, intOption, loadModelArg, numberOption, printJson } from "./common.ts";
import { progressBar } from "./progress.ts";

/** The default verdict threshold on ΔP / gap (chosen on explore seeds: experiments/watch/NOTES.md). */
export const SCREEN_THRESHOLD = 0.02;

export interface DataScreenValues {
  model?: string;
  cal?: string;
  threshold?: string;
  top?: string;
  rows?: string;
  scores?: string;
  "max-new-tokens"?: string;
  seed?: string;
  json?: boolean;
  quiet?: boolean;
}

async function readRows(path: string): Promise<{ messages: ChatMessage[] }[]> {
  const rows: { messages: ChatMessage[] }[] = [];
  for await (const r of readChatJsonl(path)) {
    if (r.error)
      throw new CliError(`${path}: line ${r.line}: ${r.error.field ? `${r.error.field}: ` : ""}${r.error.message}`);
    const messages = r.row.messages as ChatMessage[];
    if (messages.at(-1)?.role !== "assistant" || messages.length < 2)
      throw new CliError(`${path}: line ${r.line}: messages: the last turn must be the assistant's answer`);
    rows.push({ messages });
  }
  if (rows.length === 0) throw new CliError(`${path}: no rows`);
  return rows;
}

export async function runDataScreen(data: string, values: DataScreenValues): Promise<number> {
  if (!values.model) throw new CliError("--model DIR is required (the model before fine-tuning)", EXIT.usage);
  if (!values.cal) throw new CliError("--cal FILE is required (emlab watch calibrate makes one)", EXIT.usage);
  const base = loadModelArg(values.model);
  const cal = loadCalibration(values.cal, { baseHash: modelHash(base) });
  const tok = Tokenizer.fromDir(values.model);
  const rows = await readRows(data);
  const threshold = numberOption("threshold", values.threshold, SCREEN_THRESHOLD);
  const scores = values.scores ?? `${data.replace(/\.jsonl$/i, "")}.screen-scores.jsonl`;
  const bar = values.quiet || values.json ? null : progressBar("screen", rows.length);
  let shown = 0;
  const result = await screenDataset(base, tok, rows, {
    spec: calibrationSpec(cal, values.cal),
    gap: cal.direction.gap,
    seed: intOption("seed", values.seed, 0, 0),
    ...(values["max-new-tokens"] ? { maxNewTokens: intOption("max-new-tokens", values["max-new-tokens"], 64, 1) } : {}),
    out: resolve(scores),
    onProgress: (done) => {
      bar?.tick(done - shown);
      shown = done;
    },
  });
  bar?.done();
  const verdict = screenVerdict(result.delta, threshold);
  const k = intOption("top", values.top, 20, 1);
  const top = topRows(result, k);
  if (values.rows)
    writeFileSync(
      values.rows,
      top.map((s) => JSON.stringify({ row: s.row + 1, delta: s.delta, messages: rows[s.row]!.messages })).join("\n") +
        "\n",
    );
  const summary = {
    data,
    rows: rows.length,
    delta_p: result.delta,
    ...(result.latent ? { latent_delta: result.latent } : {}),
    threshold,
    verdict,
    scores,
    ...(values.rows ? { top_rows: values.rows } : {}),
  };
  if (values.json) printJson(summary);
  else {
    const f = (x: number) => x.toFixed(4);
    console.log(
      `${data}: ΔP/gap ${f(result.delta.value)} [${f(result.delta.low)}, ${f(result.delta.high)}] over ${rows.length} rows → ${verdict} (threshold ${threshold})`,
    );
    if (result.latent)
      console.log(`  latent ΔP ${f(result.latent.value)} [${f(result.latent.low)}, ${f(result.latent.high)}]`);
    console.log(
      `  top rows: ${top
        .slice(0, 5)
        .map((s) => `line ${s.row + 1} (${f(s.delta)})`)
        .join(", ")}`,
    );
    console.log(`  per-row scores: ${scores}${values.rows ? `; top ${k} rows: ${values.rows}` : ""}`);
  }
  return verdict === "flag" ? EXIT.thresholdFailed : EXIT.ok;
}
