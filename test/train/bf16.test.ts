/**
 * Fine-tuning with dtype "bf16": the loss falls like fp32's (same data, same seed; the bf16
 * run's final loss within 5 % of fp32's), the weights stay fp32 and finite, the setting is
 * recorded in the checkpoint (a resume with fp32 is refused), and the model's dtype is
 * restored after training.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadModel } from "../../src/model/checkpoint.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { evaluateLoss, finetune, loadSftJsonl, ResumeError, readCheckpoint } from "../../src/train/index.ts";
import { makeToyModelDir, writeToyJsonl } from "./toy.ts";

const root = mkdtempSync(join(tmpdir(), "emlab-bf16-"));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = makeToyModelDir(root);
const tok = Tokenizer.fromDir(modelDir);
const padId = tok.padId!;

test("full fine-tuning in bf16 follows fp32's loss, keeps fp32 weights, records its dtype", async () => {
  const data = await loadSftJsonl(writeToyJsonl(join(root, "train.jsonl"), 64, 1), tok, { maxLen: 64 });
  const run = async (dtype: "fp32" | "bf16") => {
    const model = loadModel(modelDir);
    const before = evaluateLoss(model, data.examples, { padId });
    const out = join(root, `full-${dtype}`);
    const res = await finetune({ model, data, padId, out, steps: 30, batchSize: 8, lr: 1e-2, dtype });
    assert.equal(model.dtype, "fp32", "the model's dtype is restored");
    for (const p of model.params.values()) assert.ok(p.data.every(Number.isFinite));
    return { before, after: evaluateLoss(model, data.examples, { padId }), res, out };
  };
  const f32 = await run("fp32");
  const b16 = await run("bf16");
  assert.equal(f32.before, b16.before);
  assert.ok(b16.after < 0.8 * b16.before, `bf16 loss ${b16.before} → ${b16.after}`);
  const rel = Math.abs(b16.after - f32.after) / f32.after;
  assert.ok(rel <= 0.05, `final loss bf16 ${b16.after} vs fp32 ${f32.after} (${(100 * rel).toFixed(2)} %)`);
  assert.notEqual(b16.after, f32.after, "the bf16 run took the bf16 path");
  const ckpt = readCheckpoint(b16.res.checkpoints.at(-1)!);
  assert.equal(ckpt.state.settings.dtype, "bf16");
  assert.equal(readCheckpoint(f32.res.checkpoints.at(-1)!).state.settings.dtype, undefined);
  await assert.rejects(
    finetune({
      model: loadModel(modelDir),
      data,
      padId,
      out: b16.out,
      steps: 30,
      batchSize: 8,
      lr: 1e-2,
      resumeFrom: b16.out,
    }),
    (err: Error) => err instanceof ResumeError && /dtype: "bf16" → null/.test(err.message),
  );
});
