/**
 * `emlab report`: one self-contained HTML report (works offline from disk) from run stores,
 * result files and audit reports.
 */
import { existsSync } from "node:fs";
import { collectReport, REPORT_SIZE_LIMIT, writeReportHtml } from "../report/index.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, intOption, parseOptions, printJson } from "./common.ts";

export const summary = "write a self-contained HTML report (evaluation, audit, interpretability) from runs and results";

export const flags = {
  store: { type: "string", multiple: true, arg: "FILE", help: "SQLite run store, read-only (repeatable)" },
  "run-id": {
    type: "string",
    multiple: true,
    arg: "ID",
    help: "a run of the store to include (repeatable; default: every run); RUN… positionals too",
  },
  results: {
    type: "string",
    multiple: true,
    arg: "FILE",
    help: "JSONL result file: the demo's --out, experiments/*/results/*.jsonl (repeatable)",
  },
  audit: {
    type: "string",
    multiple: true,
    arg: "FILE",
    help: "audit report JSON (emlab audit --report FILE; repeatable)",
  },
  title: { type: "string", arg: "TEXT", help: "the report's title" },
  examples: { type: "string", arg: "N", help: "example answers kept per run (default 120, misaligned ones first)" },
  out: { type: "string", short: "o", arg: "FILE", help: "the HTML file to write (default report.html)" },
  json: { type: "boolean", help: "print {file, bytes, runs} as one JSON line" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: ["emlab report --store FILE [RUN…] [--run-id ID …] [--results FILE …] [--audit FILE …] -o report.html"],
  intro:
    "One HTML file with its plots (Vega-Lite) and data inside: it opens offline from disk and writes nothing else.\n" +
    "Stores are opened read-only.",
  flags,
});

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const stores = values.store ?? [];
  const runIds = [...(values["run-id"] ?? []), ...positionals];
  if (runIds.length && !stores.length) throw new CliError("run ids need a --store FILE to read them from", EXIT.usage);
  if (!stores.length && !values.results?.length && !values.audit?.length)
    throw new CliError("nothing to report: give --store FILE, --results FILE or --audit FILE", EXIT.usage);
  for (const f of [...stores, ...(values.results ?? []), ...(values.audit ?? [])])
    if (!existsSync(f)) throw new CliError(`${f}: no such file`, EXIT.usage);
  const out = values.out ?? "report.html";
  let data: ReturnType<typeof collectReport>;
  try {
    data = collectReport({
      title: values.title,
      stores,
      runIds: runIds.length ? runIds : undefined,
      results: values.results,
      audits: values.audit,
      examplesPerRun: intOption("examples", values.examples, 120, 0),
    });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const bytes = writeReportHtml(data, out);
  if (values.json) printJson({ file: out, bytes, runs: data.evaluation.rows.map((r) => r.id) });
  else console.log(`report: ${out} (${(bytes / 1024).toFixed(0)} KiB, ${data.evaluation.rows.length} runs)`);
  if (bytes > REPORT_SIZE_LIMIT)
    console.error(`emlab report: ${out} is over ${REPORT_SIZE_LIMIT / 1048576} MiB; lower --examples to shrink it`);
  return EXIT.ok;
}
