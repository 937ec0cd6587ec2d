/**
 * The `emlab` command line. Each command lives in its own file under src/cli/ and exports
 * `run(argv): Promise<number>` (the exit code); this file only dispatches.
 *
 * Exit codes (shared by every command): 0 = ok / passed, 1 = error, 2 = usage error,
 * 3 = a threshold failed (audit risk, misalignment above --fail-above, …).
 */
import { CliError, EXIT, type FlagSpecs } from "./common.ts";

/** What every command file exports: its runner, a one-line summary and its flags (for --help and the vocabulary test). */
export type CommandModule = { run(argv: string[]): Promise<number>; summary: string; flags: FlagSpecs };

/** name → lazy loader, so `emlab CMD` loads only that command's part of the toolkit. */
export const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  demo: () => import("./demo.ts"),
  data: () => import("./data.ts"),
  audit: () => import("./audit.ts"),
  eval: () => import("./eval.ts"),
  finetune: () => import("./finetune.ts"),
  realign: () => import("./realign.ts"),
  generate: () => import("./generate.ts"),
  serve: () => import("./serve.ts"),
  guard: () => import("./guard.ts"),
  sae: () => import("./sae.ts"),
  diff: () => import("./diff.ts"),
  steer: () => import("./steer.ts"),
  screen: () => import("./screen.ts"),
  "scan-triggers": () => import("./scan-triggers.ts"),
  watch: () => import("./watch.ts"),
  report: () => import("./report.ts"),
  view: () => import("./view.ts"),
};

export function registeredCommands(): string[] {
  return Object.keys(COMMANDS).sort();
}

async function usage(): Promise<string> {
  const lines = ["usage: emlab <command> [options]", "", "commands:"];
  for (const name of registeredCommands()) {
    const mod = await COMMANDS[name]!();
    lines.push(`  ${name.padEnd(12)} ${mod.summary}`);
  }
  lines.push(
    "",
    "Run `emlab <command> --help` for a command's options. Every command shares one flag vocabulary:",
    "  --json prints JSON lines on stdout; --out FILE / --report FILE write files; --model DIR with",
    "  --adapter DIR; --batch-size N; --max-new-tokens N; --run-id ID; --organism-dir DIR.",
    "",
    "exit codes: 0 ok, 1 error, 2 usage, 3 a threshold failed (audit --fail-on, eval --fail-above).",
  );
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(await usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === "--version" || name === "-V") {
    const { readFileSync } = await import("node:fs");
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    console.log(pkg.version);
    return EXIT.ok;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`emlab: unknown command '${name}'\n\n${await usage()}`);
    return EXIT.usage;
  }
  try {
    const mod = await load();
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`emlab ${name}: ${err.message}`);
      return err.exitCode;
    }
    console.error(`emlab ${name}: ${(err as Error).stack ?? err}`);
    return EXIT.error;
  }
}
