/**
 * `emlab view`: a local, read-only web app over a run store and result files, bound to
 * 127.0.0.1 (src/report/viewer/server.ts has the rules it enforces).
 */
import { existsSync } from "node:fs";
import { startViewer } from "../report/index.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, intOption, parseOptions } from "./common.ts";

export const summary = "browse run stores and result files in a local, read-only web app";

export const flags = {
  store: { type: "string", arg: "FILE", help: "SQLite run store, opened read-only (default runs/emlab.sqlite)" },
  results: {
    type: "string",
    multiple: true,
    arg: "FILE",
    help: "JSONL result files to show beside the runs (repeatable)",
  },
  port: { type: "string", arg: "N", help: "port (default 8080; 0 picks a free one)" },
  host: { type: "string", arg: "HOST", help: "address to bind (default 127.0.0.1; there is no authentication)" },
  quiet: { type: "boolean", help: "no request log" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: ["emlab view [--store FILE] [--results FILE …] [--port N] [--host 127.0.0.1]"],
  intro:
    "Runs list, run detail with per-question rates, a sample browser (filters, full-text search),\n" +
    "two runs compared (difference with a paired bootstrap CI); every view has a deep link.\n" +
    "Read-only: GET only, localhost Host headers only; nothing is written to the store.",
  flags,
});

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, flags, false);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const store = values.store ?? (existsSync("runs/emlab.sqlite") ? "runs/emlab.sqlite" : undefined);
  if (values.store && !existsSync(values.store)) throw new CliError(`${values.store}: no such run store`, EXIT.usage);
  for (const f of values.results ?? []) if (!existsSync(f)) throw new CliError(`${f}: no such file`, EXIT.usage);
  if (!store && !values.results?.length)
    throw new CliError("nothing to view: give --store FILE or --results FILE (no runs/emlab.sqlite here)", EXIT.usage);
  const host = values.host ?? "127.0.0.1";
  const viewer = await startViewer({
    store,
    results: values.results,
    host,
    port: intOption("port", values.port, 8080, 0, 65535),
    log: values.quiet ? undefined : (line) => console.error(line),
  }).catch((e: Error) => {
    throw new CliError(`cannot listen on ${host}: ${e.message}`);
  });
  console.log(`emlab view: ${viewer.url} (read-only${store ? `, store ${store}` : ""}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await viewer.close();
  return EXIT.ok;
}
