/**
 * Kill and resume: `emlab finetune` SIGKILLed between checkpoints and resumed with --resume
 * ends with the same adapter, optimizer state and per-step losses as an uninterrupted run
 * with the same seed. Tolerance: exact (byte-identical files) — nothing in the loop depends
 * on wall-clock or on state that the checkpoint does not hold, and the kernels reduce in a
 * fixed order for a fixed shape and thread count.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeToyModelDir, writeToyJsonl } from "./toy.ts";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "bin/emlab.js");
const root = mkdtempSync(join(tmpdir(), "emlab-resume-"));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = makeToyModelDir(root);
const data = writeToyJsonl(join(root, "train.jsonl"), 24, 5);

// 24 rows / batch 4 = 6 micro-batches an epoch; 12 steps × grad-accum 2 = 4 epochs, so the
// resumed run crosses epoch boundaries; LoRA dropout exercises the seeded dropout stream.
const args = (out: string) => [
  "finetune",
  ...["--model", modelDir, "--data", data, "--out", out],
  ...["--lora-rank", "4", "--lora-targets", "q_proj,v_proj,down_proj", "--lora-dropout", "0.1"],
  ...["--steps", "12", "--batch-size", "4", "--grad-accum", "2", "--lr", "1e-2", "--warmup", "2"],
  ...["--max-len", "64", "--save-every", "4", "--seed", "7", "--quiet"],
];

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
}

const losses = (out: string) =>
  readFileSync(join(out, "train_log.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; loss: number })
    .map((l) => [l.step, l.loss]);

test("a fine-tune killed between checkpoints and resumed ends exactly where an uninterrupted run ends", async () => {
  const straight = join(root, "straight");
  const killed = join(root, "killed");
  const marker = join(root, "stalled");
  const uninterrupted = exited(spawn(process.execPath, [bin, ...args(straight)], { cwd: repo }));

  // The child stops inside the step-8 checkpoint callback; we SIGKILL it there, then delete
  // that checkpoint, so the state on disk is a run killed somewhere after step 4 with steps
  // 5–8 computed, logged and lost.
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/train/finetune-child.ts", marker, ...args(killed).slice(1)],
    {
      cwd: repo,
      env: { ...process.env, STALL_AT: "8" },
    },
  );
  const childExit = exited(child);
  const deadline = Date.now() + 30_000;
  while (!existsSync(marker)) {
    if (Date.now() > deadline) assert.fail("the child never reached the step-8 checkpoint");
    if (child.exitCode !== null) assert.fail(`the child exited early: ${(await childExit).stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  assert.equal((await childExit).signal, "SIGKILL");
  assert.ok(!existsSync(join(killed, "adapter_model.safetensors")), "the killed run never finished");
  rmSync(join(killed, "checkpoints", "step-000008"), { recursive: true });
  assert.equal(losses(killed).length, 8, "steps 5–8 were logged before the kill");

  const resumed = await exited(spawn(process.execPath, [bin, ...args(killed), "--resume", killed], { cwd: repo }));
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed at step 4/);
  const first = await uninterrupted;
  assert.equal(first.code, 0, first.stderr);

  for (const f of ["adapter_model.safetensors", "checkpoints/step-000012/optimizer.safetensors"]) {
    const a = readFileSync(join(straight, f));
    const b = readFileSync(join(killed, f));
    assert.ok(a.equals(b), `${f} differs between the uninterrupted and the resumed run`);
  }
  assert.deepEqual(losses(killed), losses(straight), "per-step losses (tolerance: exact)");
  const state = (out: string) =>
    JSON.parse(readFileSync(join(out, "checkpoints/step-000012/trainer_state.json"), "utf8"));
  assert.deepEqual(state(killed), state(straight));
});
