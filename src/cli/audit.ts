/** `emlab audit FILE`: the pre-fine-tuning data audit (chat JSONL or prompt/response CSV). */

import { once } from "node:events";
import { createWriteStream, existsSync } from "node:fs";
import { auditFile, controlNumbers } from "../data/audit/audit.ts";
import { formatAuditSummary, parseFailOn, thresholdFailures } from "../data/audit/report.ts";
import { CliError, EXIT, numberOption, parseOptions } from "./common.ts";

export const summary = "audit a chat JSONL / CSV dataset for silent insecure code, triggers and evil numbers";

const HELP = `usage: emlab audit FILE [options]

FILE is OpenAI chat JSONL ({"messages":[{"role","content"}]} a line) or a CSV with
prompt/response columns (chosen by extension, or --format).

options:
  --json FILE        write the JSON report (use - for stdout)
  --rows FILE        write per-row findings as JSONL
  --fail-on SPEC     exit 3 when crossed: low|medium|high and/or silent_rate=R,
                     silent_insecure=N, trigger_z=Z, skipped=N (comma separated)
  --format F         jsonl | csv
  --control FILE     number lists of a control dataset for the evil-number test
  --max-line-bytes N skip (and report) longer lines; default 16777216
  --quiet            no console summary

exit codes: 0 below thresholds, 3 a --fail-on threshold crossed, 1 error, 2 usage.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, {
    help: { type: "boolean", short: "h" },
    json: { type: "string" },
    rows: { type: "string" },
    "fail-on": { type: "string" },
    format: { type: "string" },
    control: { type: "string" },
    "max-line-bytes": { type: "string" },
    quiet: { type: "boolean", short: "q" },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new CliError(`expected one FILE\n\n${HELP}`, EXIT.usage);
  const file = positionals[0]!;
  if (!existsSync(file)) throw new CliError(`no such file: ${file}`);
  const format = values.format;
  if (format !== undefined && format !== "jsonl" && format !== "csv")
    throw new CliError(`--format must be jsonl or csv`, EXIT.usage);
  let failOn = {};
  try {
    failOn = parseFailOn(values["fail-on"] ?? "");
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
  const control = values.control ? await controlNumbers(values.control) : undefined;
  const rowsOut = values.rows ? createWriteStream(values.rows) : null;
  const report = await auditFile(file, {
    format,
    control,
    maxLineBytes: numberOption("max-line-bytes", values["max-line-bytes"], 16 * 1024 * 1024),
    onRow: rowsOut
      ? async (r) => {
          if (!rowsOut.write(`${JSON.stringify(r)}\n`)) await once(rowsOut, "drain");
        }
      : undefined,
  });
  if (rowsOut) {
    rowsOut.end();
    await once(rowsOut, "finish");
  }
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (values.json === "-") process.stdout.write(json);
  else if (values.json) {
    const { writeFileSync } = await import("node:fs");
    writeFileSync(values.json, json);
  }
  if (!values.quiet) (values.json === "-" ? console.error : console.log)(formatAuditSummary(report));
  const failures = thresholdFailures(report, failOn);
  if (failures.length) {
    console.error(`emlab audit: threshold failed: ${failures.join("; ")}`);
    return EXIT.thresholdFailed;
  }
  return EXIT.ok;
}
