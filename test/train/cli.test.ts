/** `emlab finetune` and `emlab generate` on the tiny model: output, JSON, and bad input. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.ts";
import { makeToyModelDir, writeToyJsonl } from "./toy.ts";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "emlab-cli-train-"));
const modelDir = makeToyModelDir(root);
const data = writeToyJsonl(join(root, "train.jsonl"), 16, 2);
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs the CLI in-process, capturing what it prints. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await main(argv), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("emlab generate prints a completion and exits 0", () => {
  const stdout = execFileSync(
    process.execPath,
    [
      join(repo, "bin/emlab.js"),
      "generate",
      "--model",
      modelDir,
      "--prompt",
      "Fruit for red?",
      "--max-new-tokens",
      "12",
      "--seed",
      "1",
    ],
    { encoding: "utf8" },
  );
  assert.ok(stdout.trim().length > 0, `printed: ${JSON.stringify(stdout)}`);
});

test("emlab generate: same seed → same text; --json gives tokens with logprobs; --raw skips the template", async () => {
  const base = ["generate", "--model", modelDir, "--prompt", "Fruit for red?", "--max-new-tokens", "6"];
  const a = await cli([...base, "--seed", "3", "--samples", "2"]);
  const b = await cli([...base, "--seed", "3", "--samples", "2"]);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  assert.match(a.out, /--- sample 2 /);
  const j = await cli([...base, "--json", "--top-logprobs", "3", "--temperature", "0"]);
  assert.equal(j.code, 0, j.err);
  const doc = JSON.parse(j.out);
  assert.match(doc.prompt, /<\|im_start\|>user\nFruit for red\?<\|im_end\|>\n<\|im_start\|>assistant\n$/);
  const tok = doc.completions[0].tokens[0];
  assert.ok(tok.logprob <= 0 && tok.top.length === 3 && typeof tok.text === "string");
  assert.equal(tok.id, tok.top[0].id, "greedy picks the top token");
  const raw = await cli([...base, "--raw", "--json"]);
  assert.equal(JSON.parse(raw.out).prompt, "Fruit for red?");
});

test("emlab finetune writes a PEFT adapter that emlab generate loads (--adapter, or the folder as --model)", async () => {
  const out = join(root, "ft");
  const ft = await cli([
    "finetune",
    "--model",
    modelDir,
    "--data",
    data,
    "--out",
    out,
    "--lora-rank",
    "2",
    "--steps",
    "3",
    "--quiet",
  ]);
  assert.equal(ft.code, 0, ft.err);
  assert.match(ft.err, /3 steps, final loss \d+\.\d+/);
  const cfg = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
  assert.equal(cfg.r, 2);
  assert.equal(cfg.lora_alpha, 4);
  assert.equal(cfg.target_modules.length, 7);
  const viaAdapter = await cli([
    "generate",
    "--model",
    modelDir,
    "--adapter",
    out,
    "--prompt",
    "hi",
    "--max-new-tokens",
    "4",
  ]);
  const viaFolder = await cli(["generate", "--model", out, "--prompt", "hi", "--max-new-tokens", "4"]);
  assert.equal(viaAdapter.code, 0, viaAdapter.err);
  assert.equal(viaFolder.out, viaAdapter.out);
  const again = await cli(["finetune", "--model", modelDir, "--data", data, "--out", out, "--steps", "1", "--quiet"]);
  assert.equal(again.code, 1);
  assert.match(again.err, /already holds a fine-tune/);
});

test("bad input: missing options are usage errors (2); a missing file or malformed line names it (1)", async () => {
  const out = join(root, "bad-out");
  const noModel = await cli(["finetune", "--data", data, "--out", out]);
  assert.equal(noModel.code, 2);
  assert.match(noModel.err, /--model is required/);
  const missing = await cli(["finetune", "--model", modelDir, "--data", join(root, "nope.jsonl"), "--out", out]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /nope\.jsonl: file not found/);
  const bad = join(root, "bad.jsonl");
  writeFileSync(bad, `${readFileSync(data, "utf8").split("\n").slice(0, 2).join("\n")}\n{"messages": "oops"}\n`);
  const malformed = await cli(["finetune", "--model", modelDir, "--data", bad, "--out", out]);
  assert.equal(malformed.code, 1);
  assert.match(malformed.err, /bad\.jsonl:3: schema error: field 'messages'/);
  const noModelDir = await cli(["finetune", "--model", join(root, "no-model"), "--data", data, "--out", out]);
  assert.equal(noModelDir.code, 1);
  assert.match(noModelDir.err, /no-model\/config\.json: file not found/);
  const badRank = await cli(["finetune", "--model", modelDir, "--data", data, "--out", out, "--lora-rank", "x"]);
  assert.equal(badRank.code, 2);
  const genNoModel = await cli(["generate", "--prompt", "hi"]);
  assert.equal(genNoModel.code, 2);
  assert.match(genNoModel.err, /--model is required/);
  const genMissing = await cli(["generate", "--model", join(root, "no-model"), "--prompt", "hi"]);
  assert.equal(genMissing.code, 1);
  assert.match(genMissing.err, /no-model: model folder not found/);
});
