/**
 * Preventative steering and CAFT (src/fix/prevent.ts): the training hooks are on the tape, so
 * the LoRA's gradient through them matches a finite difference (the inference hook of
 * interp/interventions.ts, built from raw data, gives the LoRA no gradient at all); a fine-tune
 * with them still learns; and the saved adapter holds only the LoRA's weights: loaded without
 * the hook it reproduces the trained model without the hook.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { trainingProjectOutHook, trainingSteerHook } from "../../src/fix/prevent.ts";
import { steerHook } from "../../src/interp/interventions.ts";
import { loadModel } from "../../src/model/checkpoint.ts";
import type { Hook } from "../../src/model/hooks.ts";
import { attachLora, loadLora } from "../../src/model/lora.ts";
import type { CausalLM } from "../../src/model/model.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { backward, noGrad, ops, Rng } from "../../src/tensor/index.ts";
import { readSafetensors } from "../../src/tensor/safetensors.ts";
import { collate } from "../../src/train/batches.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { finetune } from "../../src/train/sft.ts";
import { makeToyModelDir, toyRows } from "../train/toy.ts";

const root = mkdtempSync(join(tmpdir(), "emlab-fix-prevent-"));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = makeToyModelDir(root);
const tok = Tokenizer.fromDir(modelDir);
const padId = tok.padId ?? 0;
const data = sftDataset(
  tok,
  toyRows(24, 1).map((r) => r.messages as never),
  64,
);
const batch = collate(data.examples, [0, 1, 2, 3], padId);
const HOOK = "blocks.0.hook_resid_post";
const direction = (() => {
  const rng = new Rng(5);
  return Float32Array.from({ length: 32 }, () => rng.normal());
})();

/** The toy model with a rank-2 LoRA on block 0 whose B is non-zero (so A and B both get gradients). */
function withLora(): CausalLM {
  const lm = loadModel(modelDir);
  attachLora(lm, { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj", "gate_proj"], layers: [0] }, 3);
  const rng = new Rng(9);
  for (const p of lm.trainableParams())
    if (/lora_B/.test(p.name ?? "")) for (let i = 0; i < p.size; i++) p.data[i] = 0.05 * rng.normal();
  return lm;
}

const lossOf = (lm: CausalLM, hooks: Hook[]) =>
  ops.crossEntropy(
    lm.forward(batch.ids, batch.B, batch.T, { keyMask: batch.keyMask, training: true, hooks }),
    batch.targets,
  );

/** Gradient of every LoRA weight, and a central finite difference at the one with the largest gradient. */
function gradientCheck(hooks: Hook[]): { analytic: number; numeric: number; total: number } {
  const lm = withLora();
  const params = lm.trainableParams();
  for (const p of params) p.grad = null;
  const loss = lossOf(lm, hooks);
  // A graph cut below the loss leaves nothing to differentiate: no weight gets a gradient.
  if (!loss.requiresGrad) return { analytic: 0, numeric: 0, total: 0 };
  backward(loss);
  let best = { p: params[0]!, i: 0, g: 0 };
  let total = 0;
  for (const p of params)
    for (let i = 0; i < p.size; i++) {
      const g = p.grad?.[i] ?? 0;
      total += Math.abs(g);
      if (Math.abs(g) > Math.abs(best.g)) best = { p, i, g };
    }
  const eps = 1e-2;
  const at = (x: number) => {
    const keep = best.p.data[best.i]!;
    best.p.data[best.i] = x;
    const v = noGrad(() => lossOf(lm, hooks).item());
    best.p.data[best.i] = keep;
    return v;
  };
  const x0 = best.p.data[best.i]!;
  return { analytic: best.g, numeric: (at(x0 + eps) - at(x0 - eps)) / (2 * eps), total };
}

test("preventative steering: the LoRA's gradient through the hook equals a finite difference", () => {
  const r = gradientCheck([trainingSteerHook(HOOK, direction, 3)]);
  assert.ok(Math.abs(r.analytic) > 1e-3, `a gradient reaches the LoRA: ${r.analytic}`);
  assert.ok(Math.abs(r.analytic - r.numeric) <= 0.05 * Math.abs(r.numeric) + 1e-4, `${r.analytic} vs ${r.numeric}`);
  // The inference hook builds a fresh tensor from raw data: the graph is cut there.
  const cut = gradientCheck([steerHook(HOOK, direction, 3)]);
  assert.equal(cut.total, 0, "interp's steerHook leaves the LoRA below it without a gradient");
});

test("CAFT: the gradient through the projection equals a finite difference", () => {
  const r = gradientCheck([trainingProjectOutHook(HOOK, direction)]);
  assert.ok(Math.abs(r.analytic) > 1e-3, `a gradient reaches the LoRA: ${r.analytic}`);
  assert.ok(Math.abs(r.analytic - r.numeric) <= 0.05 * Math.abs(r.numeric) + 1e-4, `${r.analytic} vs ${r.numeric}`);
  // The projection really removes û: the activation after the hook has no component along it.
  const lm = withLora();
  let dot = Number.NaN;
  const probe: Hook = {
    name: HOOK,
    fn: (x) => {
      const u = direction.map((v) => v / Math.hypot(...direction));
      dot = 0;
      for (let i = 0; i < 32; i++) dot += x.data[i]! * u[i]!;
    },
  };
  noGrad(() =>
    lm.forward(batch.ids, batch.B, batch.T, {
      keyMask: batch.keyMask,
      hooks: [trainingProjectOutHook(HOOK, direction), probe],
    }),
  );
  assert.ok(Math.abs(dot) < 1e-4, `x·û after the projection: ${dot}`);
});

test("a fine-tune with the steering hook learns, and its adapter holds only the LoRA (no steering)", async () => {
  const lm = loadModel(modelDir);
  const hooks = [trainingSteerHook(HOOK, direction, 2)];
  const out = join(root, "ft");
  const res = await finetune({
    model: lm,
    data,
    out,
    padId,
    lora: { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj", "gate_proj", "down_proj"], layers: [0] },
    steps: 30,
    batchSize: 8,
    lr: 2e-2,
    seed: 1,
    hooks,
  });
  assert.ok(
    res.losses.at(-1)! < 0.8 * res.losses[0]!,
    `the LoRA learns under the hook: ${res.losses[0]} → ${res.losses.at(-1)}`,
  );
  const names = [...readSafetensors(join(out, "adapter_model.safetensors")).tensors.keys()];
  assert.ok(names.length > 0 && names.every((n) => /\.lora_[AB]\.weight$/.test(n)), names.join(", "));
  // Loaded without the hook, the adapter reproduces the trained model without the hook...
  const fresh = loadModel(modelDir);
  loadLora(fresh, out);
  const logits = (m: CausalLM, h: Hook[] = []) =>
    noGrad(() => m.forward(batch.ids, batch.B, batch.T, { keyMask: batch.keyMask, hooks: h }).data);
  assert.deepEqual(logits(fresh), logits(lm));
  // ...and the hook was a real intervention: with it the logits differ.
  const withHook = logits(lm, hooks);
  const plain = logits(lm);
  assert.ok(
    withHook.some((v, i) => Math.abs(v - plain[i]!) > 1e-3),
    "the hook changes the forward",
  );
});
