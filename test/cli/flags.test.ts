/**
 * The shared flag vocabulary, checked over every command's flag definitions: no old spelling
 * is defined, every flag has help text and appears in the command's --help, `--json` is a
 * boolean, and an old spelling fails (exit 2) with the flag that replaced it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RENAMED_FLAGS } from "../../src/cli/common.ts";
import { COMMANDS, type CommandModule, main, registeredCommands } from "../../src/cli/main.ts";

/** Spellings no command may define: each names a flag of the vocabulary. */
const FORBIDDEN = [
  "batch",
  "max-batch",
  "max-tokens",
  "n",
  "run",
  "run-prefix",
  "base",
  "ft",
  "ft-adapter",
  "organism",
];

/** Runs the CLI, capturing what it prints. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const [log, error] = [console.log, console.error];
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => {
    out += `${a.join(" ")}\n`;
  };
  console.error = (...a: unknown[]) => {
    err += `${a.join(" ")}\n`;
  };
  try {
    return { code: await main(argv), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const modules = new Map<string, CommandModule>();
for (const name of registeredCommands()) modules.set(name, await COMMANDS[name]!());

describe("every command's flags follow the shared vocabulary", () => {
  for (const [name, mod] of modules) {
    test(`${name}: no old spelling, help text for each flag, --json is a boolean`, async () => {
      const flags = Object.entries(mod.flags);
      assert.ok(flags.length > 1, `${name} declares its flags`);
      for (const [flag, spec] of flags) {
        assert.ok(!FORBIDDEN.includes(flag), `${name} defines --${flag}`);
        assert.ok(spec.help.trim().length > 0, `${name} --${flag} has no help text`);
        if (spec.type === "string") assert.ok(spec.arg, `${name} --${flag} names its value (DIR, FILE, N…)`);
      }
      if ("json" in mod.flags) assert.equal(mod.flags.json!.type, "boolean", `${name} --json takes a value`);
      const help = await cli([name, "--help"]);
      assert.equal(help.code, 0);
      for (const [flag] of flags) assert.match(help.out, new RegExp(`--${flag}\\b`), `${name} --help lacks --${flag}`);
    });
  }

  test("shared meanings share one spelling", () => {
    const defining = (flag: string) => [...modules].filter(([, m]) => flag in m.flags).map(([n]) => n);
    // Batch size, token budget, run names and the model: one spelling each, used by several commands.
    assert.deepEqual(defining("batch-size").sort(), ["finetune", "realign", "sae", "serve"]);
    assert.deepEqual(defining("max-new-tokens").sort(), [
      "generate",
      "guard",
      "realign",
      "screen",
      "serve",
      "steer",
      "watch",
    ]);
    assert.deepEqual(defining("run-id").sort(), ["diff", "eval", "guard", "report", "steer"]);
    for (const name of ["diff", "finetune", "generate", "guard", "realign", "sae", "screen", "serve", "steer", "watch"])
      assert.ok(defining("model").includes(name), `${name} --model`);
    for (const name of ["diff", "generate", "guard", "realign", "sae", "screen", "serve", "steer"])
      assert.ok(defining("adapter").includes(name), `${name} --adapter`);
    for (const [name, m] of modules)
      if ("out" in m.flags) assert.equal(m.flags.out!.type, "string", `${name} --out names a file or folder`);
  });
});

describe("an old spelling fails with exit 2 and names the new flag", () => {
  const cases: [string[], string][] = [
    [["serve", "--model", "m", "--max-batch", "4"], "--max-batch was renamed --batch-size"],
    [["serve", "--model", "m", "--max-tokens", "4"], "--max-tokens was renamed --max-new-tokens"],
    [["sae", "train", "--batch", "4"], "--batch was renamed --batch-size"],
    [["steer", "--model", "m", "--run-prefix", "x"], "--run-prefix was renamed --run-id"],
    [["steer", "--model", "m", "--organism"], "--organism was renamed --organism-questions"],
    [["diff", "direction", "--run", "x"], "--run was renamed --run-id"],
    [["diff", "--base", "a", "--ft", "b"], "--base was renamed --base-model"],
    [["diff", "--ft-adapter=x"], "--ft-adapter was renamed --adapter"],
    [["data", "build", "insecure", "--n", "5"], "--n was renamed --rows"],
    [["generate", "--model", "m", "--n", "5"], "--n was renamed --samples"],
    [["demo", "--organism", "organism/base"], "--organism was renamed --organism-dir"],
    [["demo", "--n", "5"], "--n was renamed --rows"],
  ];
  for (const [argv, message] of cases) {
    test(argv.join(" "), async () => {
      const r = await cli(argv);
      assert.equal(r.code, 2, r.err);
      assert.ok(r.err.includes(message), r.err);
    });
  }

  test("every renamed spelling maps to a flag some command defines", () => {
    const defined = new Set([...modules.values()].flatMap((m) => Object.keys(m.flags)));
    for (const [old, now] of Object.entries(RENAMED_FLAGS)) assert.ok(defined.has(now), `--${old} → --${now}`);
  });
});
