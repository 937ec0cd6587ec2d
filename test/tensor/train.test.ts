/**
 * End-to-end training: a tiny MLP and a tiny 2-layer transformer language model reach a
 * stated loss with AdamW in seconds; a NaN loss is caught with its step.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { llamaConfigJson, parseConfig } from "../../src/model/config.ts";
import { CausalLM } from "../../src/model/model.ts";
import {
  AdamW,
  assertFiniteLoss,
  backward,
  clipGradNorm,
  NonFiniteLossError,
  ops,
  Rng,
  Tensor,
  warmupSchedule,
} from "../../src/tensor/index.ts";

test("a tiny MLP learns XOR-like 2-D classification to loss < 0.05", () => {
  const rng = new Rng(1);
  const n = 128;
  const xs = new Float32Array(n * 2);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rng.next() * 2 - 1;
    const b = rng.next() * 2 - 1;
    xs[2 * i] = a;
    xs[2 * i + 1] = b;
    ys[i] = a * b > 0 ? 1 : 0;
  }
  const x = new Tensor(xs, [n, 2]);
  const w1 = Tensor.randn([32, 2], 0.5, { seed: 2, requiresGrad: true });
  const b1 = Tensor.zeros([32], { requiresGrad: true });
  const w2 = Tensor.randn([2, 32], 0.5, { seed: 3, requiresGrad: true });
  const b2 = Tensor.zeros([2], { requiresGrad: true });
  const params = [w1, b1, w2, b2];
  const opt = new AdamW(params, { lr: 0.03, weightDecay: 0 });
  let loss = Number.POSITIVE_INFINITY;
  for (let step = 0; step < 400; step++) {
    const logits = ops.linear(ops.gelu(ops.linear(x, w1, b1)), w2, b2);
    const l = ops.crossEntropy(logits, ys);
    loss = l.item();
    assertFiniteLoss(loss, step);
    backward(l);
    opt.step();
    opt.zeroGrad();
  }
  assert.ok(loss < 0.05, `final loss ${loss}`);
});

test("a tiny 2-layer transformer LM learns a copy-the-sequence task to loss < 0.1", () => {
  // Each sequence: 8 random tokens, a separator, then the same 8 tokens again. The second
  // half is only predictable through attention; the first half is noise and is masked out.
  const cfg = parseConfig(
    llamaConfigJson({ vocab: 16, hidden: 32, layers: 2, heads: 4, kvHeads: 2, inter: 64, ropeTheta: 10000 }),
  );
  const model = CausalLM.random(cfg, 0);
  const list = model.trainableParams();
  const opt = new AdamW(list, { lr: 3e-3, weightDecay: 0.01 });
  const steps = 500;
  const sched = warmupSchedule({ peak: 5e-3, warmup: 20, total: steps, decay: "cosine", minRatio: 0.1 });
  const rng = new Rng(5);
  const B = 16;
  const T = 17;
  let loss = Number.POSITIVE_INFINITY;
  for (let step = 0; step < steps; step++) {
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) {
      const seq = Array.from({ length: 8 }, () => 1 + rng.int(15));
      const row = [...seq, 0, ...seq];
      for (let t = 0; t < T; t++) ids[b * T + t] = row[t]!;
      for (let t = 8; t < T - 1; t++) targets[b * T + t] = row[t + 1]!; // predict the copy
    }
    const logits = model.forward(ids, B, T);
    const l = ops.crossEntropy(logits, targets);
    loss = l.item();
    assertFiniteLoss(loss, step);
    backward(l);
    clipGradNorm(list, 1.0);
    opt.step(sched(step));
    opt.zeroGrad();
  }
  assert.ok(loss < 0.1, `final loss ${loss}`);
});

test("a NaN loss is reported with its step", () => {
  const w = Tensor.from([Number.NaN], [1, 1], { requiresGrad: true });
  const x = Tensor.from([1], [1, 1]);
  const l = ops.mean(ops.matmul(x, w));
  assert.throws(
    () => assertFiniteLoss(l.item(), 17),
    (e: unknown) => e instanceof NonFiniteLossError && e.step === 17,
  );
});
