/** The tape API: grad(), noGrad(), accumulation, release, optimiser and schedule basics. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AdamW,
  backward,
  clipGradNorm,
  grad,
  noGrad,
  ops,
  SGD,
  Tensor,
  tapeLength,
  warmupSchedule,
} from "../../src/tensor/index.ts";

test("grad(loss, params) returns gradients without touching .grad", () => {
  const w = Tensor.from([1, 2, 3], [3], { requiresGrad: true });
  w.grad = Float32Array.of(9, 9, 9);
  const [g] = grad(ops.sum(ops.square(w)), [w]);
  assert.deepEqual(Array.from(g!), [2, 4, 6]);
  assert.deepEqual(Array.from(w.grad), [9, 9, 9]);
});

test("backward accumulates into .grad across calls; noGrad records nothing", () => {
  const w = Tensor.from([1, -1], [2], { requiresGrad: true });
  backward(ops.sum(ops.scale(w, 3)));
  backward(ops.sum(ops.scale(w, 3)));
  assert.deepEqual(Array.from(w.grad!), [6, 6]);
  const y = noGrad(() => ops.tanh(ops.scale(w, 2)));
  assert.equal(y.requiresGrad, false);
  assert.equal(tapeLength(), 0);
  assert.throws(() => backward(y), /does not require grad/);
});

test("AdamW decoupled weight decay and SGD move weights as expected", () => {
  // With zero gradient, AdamW only decays: w ← w·(1 − lr·wd).
  const w = Tensor.from([2], [1], { requiresGrad: true });
  w.grad = Float32Array.of(0);
  new AdamW([w], { lr: 0.1, weightDecay: 0.5 }).step();
  assert.ok(Math.abs(w.data[0]! - 2 * (1 - 0.05)) < 1e-6);
  // First AdamW step with a gradient moves by ≈ lr·sign(g).
  const v = Tensor.from([1], [1], { requiresGrad: true });
  v.grad = Float32Array.of(0.3);
  new AdamW([v], { lr: 0.01, weightDecay: 0 }).step();
  assert.ok(Math.abs(v.data[0]! - 0.99) < 1e-5);
  const u = Tensor.from([1], [1], { requiresGrad: true });
  u.grad = Float32Array.of(2);
  new SGD([u], { lr: 0.1 }).step();
  assert.ok(Math.abs(u.data[0]! - 0.8) < 1e-6);
});

test("clipGradNorm scales to the max norm and returns the norm before", () => {
  const a = Tensor.zeros([2], { requiresGrad: true });
  const b = Tensor.zeros([1], { requiresGrad: true });
  a.grad = Float32Array.of(3, 0);
  b.grad = Float32Array.of(4);
  assert.ok(Math.abs(clipGradNorm([a, b], 1) - 5) < 1e-9);
  const n = Math.hypot(a.grad[0]!, a.grad[1]!, b.grad[0]!);
  assert.ok(Math.abs(n - 1) < 1e-4);
});

test("warm-up then cosine / linear decay", () => {
  const cos = warmupSchedule({ peak: 1, warmup: 10, total: 110, decay: "cosine", minRatio: 0.1 });
  assert.ok(Math.abs(cos(0) - 0.1) < 1e-12);
  assert.ok(Math.abs(cos(9) - 1) < 1e-12);
  assert.ok(Math.abs(cos(60) - (0.1 + 0.9 * 0.5)) < 1e-9);
  assert.ok(Math.abs(cos(110) - 0.1) < 1e-9);
  const lin = warmupSchedule({ peak: 2, warmup: 0, total: 100, decay: "linear" });
  assert.ok(Math.abs(lin(50) - 1) < 1e-9);
});
