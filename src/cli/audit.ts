/** `emlab audit FILE`: the pre-fine-tuning data audit (chat JSONL or prompt/response CSV). */

import { once } from "node:events";
import { createWriteStream, existsSync, writeFileSync } from "node:fs";
import { type AuditReport, auditFile, controlNumbers } from "../data/audit/audit.ts";
import { type FailOn, formatAuditSummary, parseFailOn, thresholdFailures } from "../data/audit/report.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, numberOption, parseOptions, printJson } from "./common.ts";

export const summary = "audit a chat JSONL / CSV dataset for silent insecure code, triggers and evil numbers";

export const flags = {
  report: { type: "string", arg: "FILE", help: "write the JSON report to FILE" },
  findings: { type: "string", arg: "FILE", help: "write per-row findings as JSONL" },
  "fail-on": {
    type: "string",
    arg: "SPEC",
    help: "exit 3 when crossed: low|medium|high and/or silent_rate=R,\nsilent_insecure=N, trigger_z=Z, skipped=N, complied=N (comma separated)",
  },
  format: { type: "string", arg: "F", help: "jsonl | csv (default: by extension)" },
  control: { type: "string", arg: "FILE", help: "number lists of a control dataset for the evil-number test" },
  "max-line-bytes": { type: "string", arg: "N", help: "skip (and report) longer lines; default 16777216" },
  json: { type: "boolean", help: "print the report as one JSON line on stdout (the summary goes to stderr)" },
  quiet: { type: "boolean", short: "q", help: "no console summary" },
  ...HELP_FLAG,
} as const;

/** Audit's own old spellings: `--json FILE` wrote the report, `--rows FILE` the findings. */
const RENAMED = { rows: "findings" };

const HELP = formatHelp({
  usage: ["emlab audit FILE [options]"],
  intro:
    'FILE is OpenAI chat JSONL ({"messages":[{"role","content"}]} a line) or a CSV with\nprompt/response columns (chosen by extension, or --format).',
  flags,
  epilog:
    "exit codes: 0 below thresholds, 3 a --fail-on threshold crossed, 1 error (including a file\nwith no auditable row), 2 usage.",
});

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true, RENAMED);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (values.json && positionals.length === 2)
    throw new CliError(
      positionals[1] === "-"
        ? "--json no longer takes a file: it prints the report on stdout (drop the -)"
        : `--json no longer takes a file: it prints the report on stdout; write a file with --report ${positionals[1]}`,
      EXIT.usage,
    );
  if (positionals.length !== 1) throw new CliError(`expected one FILE\n\n${HELP}`, EXIT.usage);
  const file = positionals[0]!;
  if (!existsSync(file)) throw new CliError(`no such file: ${file}`);
  const format = values.format;
  if (format !== undefined && format !== "jsonl" && format !== "csv")
    throw new CliError(`--format must be jsonl or csv`, EXIT.usage);
  let failOn: FailOn = {};
  try {
    failOn = parseFailOn(values["fail-on"] ?? "");
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
  const control = values.control ? await controlNumbers(values.control) : undefined;
  const maxLineBytes = numberOption("max-line-bytes", values["max-line-bytes"], 16 * 1024 * 1024);
  const report = await auditWithFindings(file, { format, control, maxLineBytes }, values.findings);
  if (report.rows === 0) throw new CliError(noAuditableRows(report));
  if (values.report) writeFileSync(values.report, `${JSON.stringify(report, null, 2)}\n`);
  if (values.json) printJson(report);
  if (!values.quiet) (values.json ? console.error : console.log)(formatAuditSummary(report));
  const failures = thresholdFailures(report, failOn);
  if (failures.length) {
    console.error(`emlab audit: threshold failed: ${failures.join("; ")}`);
    return EXIT.thresholdFailed;
  }
  return EXIT.ok;
}

/** Audits `file`, streaming each row's findings to `findings` (JSONL) when given. */
async function auditWithFindings(
  file: string,
  opts: Parameters<typeof auditFile>[1],
  findings: string | undefined,
): Promise<AuditReport> {
  const out = findings ? createWriteStream(findings) : null;
  const report = await auditFile(file, {
    ...opts,
    onRow: out
      ? async (r) => {
          if (!out.write(`${JSON.stringify(r)}\n`)) await once(out, "drain");
        }
      : undefined,
  });
  if (out) {
    out.end();
    await once(out, "finish");
  }
  return report;
}

/** Why a report with no audited row is an error: an empty file, or every line skipped (the first reasons). */
function noAuditableRows(r: AuditReport): string {
  if (r.skipped === 0) return `${r.file}: no auditable row: the file has no data rows`;
  const first = r.errors
    .slice(0, 3)
    .map((e) => `line ${e.line}${e.field ? ` (${e.field})` : ""}: ${e.message}`)
    .join("; ");
  return `${r.file}: no auditable row: all ${r.skipped} lines were skipped (${first}${r.skipped > 3 ? "; …" : ""})`;
}
