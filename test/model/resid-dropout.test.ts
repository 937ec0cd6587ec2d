/** Residual dropout (GPT-2's resid_pdrop): only in training mode, on both architectures, with gradients. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/model/checkpoint.ts";
import { lmLoss, nextTokenTargets } from "../../src/model/score.ts";
import { backward, noGrad, Rng } from "../../src/tensor/index.ts";

const B = 2;
const T = 6;
const ids = Int32Array.from({ length: B * T }, (_, i) => 5 + ((i * 7) % 40));
const targets = nextTokenTargets(ids, new Uint8Array(B * T).fill(1), B, T);

for (const name of ["qwen2", "gpt2"]) {
  const dir = fileURLToPath(new URL(`../fixtures/models/${name}`, import.meta.url));

  test(`${name}: residual dropout changes training-mode logits only`, () => {
    const model = loadModel(dir);
    const plain = noGrad(() => model.forward(ids, B, T)).data.slice();
    const trainingNoDrop = noGrad(() => model.forward(ids, B, T, { training: true })).data.slice();
    assert.deepEqual(trainingNoDrop, plain, "training mode without dropout is the plain forward");
    model.residDropout = { p: 0.5, rng: new Rng(1) };
    const evalWithDrop = noGrad(() => model.forward(ids, B, T)).data;
    assert.deepEqual(evalWithDrop, plain, "dropout is never applied outside training");
    const dropped = noGrad(() => model.forward(ids, B, T, { training: true })).data;
    let maxDiff = 0;
    for (let i = 0; i < dropped.length; i++) maxDiff = Math.max(maxDiff, Math.abs(dropped[i]! - plain[i]!));
    assert.ok(maxDiff > 1e-3, `training-mode logits should move under dropout (max diff ${maxDiff})`);
    model.residDropout = { p: 0, rng: new Rng(1) };
    assert.deepEqual(noGrad(() => model.forward(ids, B, T, { training: true })).data, plain, "p = 0 is off");
  });

  test(`${name}: gradients flow through residual dropout, masked as in the forward`, () => {
    const gradsWith = (p: number) => {
      const model = loadModel(dir);
      model.residDropout = { p, rng: new Rng(2) };
      const loss = lmLoss(model, ids, targets, B, T, { training: true });
      assert.ok(Number.isFinite(loss.item()));
      backward(loss);
      return model.trainableParams().map((t) => Float32Array.from(t.grad ?? []));
    };
    const off = gradsWith(0);
    const on = gradsWith(0.3);
    assert.ok(
      on.some((g) => g.some((v) => v !== 0)),
      "some parameter has a non-zero gradient",
    );
    assert.ok(
      on.some((g, i) => g.some((v, j) => Math.abs(v - off[i]![j]!) > 1e-6)),
      "the gradient sees the dropout mask",
    );
  });
}

test("setResidDropout: p in [0, 1), an rng when p > 0, p = 0 turns it off", () => {
  const model = loadModel(fileURLToPath(new URL("../fixtures/models/qwen2", import.meta.url)));
  assert.throws(() => model.setResidDropout(1, new Rng(0)), /p 1 must be in \[0, 1\)/);
  assert.throws(() => model.setResidDropout(-0.1, new Rng(0)), /must be in \[0, 1\)/);
  assert.throws(() => model.setResidDropout(0.1), /needs an rng/);
  model.setResidDropout(0.1, new Rng(0));
  assert.equal(model.residDropout?.p, 0.1);
  model.setResidDropout(0);
  assert.equal(model.residDropout, null);
});
