/** Finite-difference gradient checks for every op with a backward, on random shapes. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ops, Rng, Tensor, tapeLength } from "../../src/tensor/index.ts";
import { gradcheck, randShape, randTensor } from "./gradcheck.ts";

const SEEDS = [1, 2, 3];

describe("element-wise, broadcasting", () => {
  for (const op of ["add", "sub", "mul", "div"] as const) {
    test(`${op} with broadcasting and batch dims`, () => {
      for (const seed of SEEDS) {
        const rng = new Rng(seed);
        const full = randShape(rng, 3);
        // b broadcasts: some dims set to 1, possibly fewer dims
        const bShape = full.slice(rng.int(2)).map((d) => (rng.next() < 0.4 ? 1 : d));
        const a = randTensor(full, seed);
        const b =
          op === "div"
            ? Tensor.uniform(bShape, 0.5, 2, { seed: seed + 50, requiresGrad: true })
            : randTensor(bShape, seed + 50);
        gradcheck(`${op} ${full} ${bShape}`, (x, y) => ops[op](x, y), [a, b]);
        const aPos = op === "div" ? Tensor.uniform(full, 0.5, 2, { seed, requiresGrad: true }) : a;
        gradcheck(`${op} reversed`, (x, y) => ops[op](y, x), [aPos, b]);
      }
    });
  }
  test("scalar tensor operand", () => {
    gradcheck("mul scalar", (x, y) => ops.mul(x, y), [randTensor([2, 3], 4), randTensor([1], 5)]);
    gradcheck("div scalar", (x, y) => ops.div(x, y), [
      randTensor([2, 3], 4),
      Tensor.from([1.7], [1], { requiresGrad: true }),
    ]);
  });
  test("affine / scale / addScalar / neg / pow / square", () => {
    const x = randTensor([3, 4], 7);
    gradcheck("affine", (t) => ops.affine(t, 1.5, -0.3), [x]);
    gradcheck("neg", (t) => ops.neg(t), [x]);
    gradcheck("square", (t) => ops.square(t), [x]);
    gradcheck("pow", (t) => ops.pow(t, 3), [x]);
  });
  const unaries = {
    exp: (t: Tensor) => ops.exp(t),
    tanh: (t: Tensor) => ops.tanh(t),
    sigmoid: (t: Tensor) => ops.sigmoid(t),
    silu: (t: Tensor) => ops.silu(t),
    gelu_tanh: (t: Tensor) => ops.gelu(t, "tanh"),
    gelu_erf: (t: Tensor) => ops.gelu(t, "none"),
    relu: (t: Tensor) => ops.relu(t),
  };
  for (const [name, f] of Object.entries(unaries)) {
    test(name, () => {
      for (const seed of SEEDS) {
        const x = randTensor(randShape(new Rng(seed), 3), seed);
        if (name === "relu") for (let i = 0; i < x.size; i++) if (Math.abs(x.data[i]!) < 0.05) x.data[i] = 0.3; // off the kink
        gradcheck(name, f, [x]);
      }
    });
  }
  test("log and sqrt on positive inputs", () => {
    const x = Tensor.uniform([3, 5], 0.5, 3, { seed: 3, requiresGrad: true });
    gradcheck("log", (t) => ops.log(t), [x]);
    gradcheck("sqrt", (t) => ops.sqrt(t), [x]);
  });
});

describe("reductions", () => {
  test("sum / mean over axes, keepDims", () => {
    for (const seed of SEEDS) {
      const x = randTensor(randShape(new Rng(seed), 3, 2, 4), seed);
      gradcheck("sum all", (t) => ops.sum(t), [x]);
      gradcheck("sum axis 1", (t) => ops.sum(t, 1), [x]);
      gradcheck("sum axes [0,2] keep", (t) => ops.sum(t, [0, 2], true), [x]);
      gradcheck("mean -1", (t) => ops.mean(t, -1), [x]);
      gradcheck("mean all", (t) => ops.mean(t), [x]);
    }
  });
  test("max over an axis", () => {
    const x = Tensor.from([0.1, 0.9, -0.5, 2.0, 1.2, 0.4, 3.1, -1, 0.0, 0.5, 0.7, 0.2], [2, 2, 3], {
      requiresGrad: true,
    });
    gradcheck("max -1", (t) => ops.max(t, -1), [x]);
    gradcheck("max 0 keep", (t) => ops.max(t, 0, true), [x]);
  });
  test("softmax and logSoftmax", () => {
    for (const seed of SEEDS) {
      const x = randTensor(randShape(new Rng(seed), 3, 2, 5), seed);
      gradcheck("softmax", (t) => ops.softmax(t), [x]);
      gradcheck("logSoftmax", (t) => ops.logSoftmax(t), [x]);
    }
  });
});

describe("shape ops", () => {
  test("reshape / permute / transpose", () => {
    const x = randTensor([2, 3, 4], 1);
    gradcheck("reshape", (t) => ops.reshape(t, [4, -1]), [x]);
    gradcheck("permute", (t) => ops.permute(t, [2, 0, 1]), [x]);
    gradcheck("transpose", (t) => ops.transpose(t, 0, 2), [x]);
  });
  test("slice / concat", () => {
    const x = randTensor([3, 5, 2], 2);
    const y = randTensor([3, 2, 2], 3);
    gradcheck("slice", (t) => ops.slice(t, 1, 1, 4), [x]);
    gradcheck("concat", (a, b) => ops.concat([a, b, a], 1), [x, y]);
  });
  test("gather (embedding) scatter-adds repeated ids", () => {
    const table = randTensor([5, 3], 4);
    gradcheck("gather", (t) => ops.gather(t, [1, 4, 1, 0, 1, 3], [2, 3]), [table]);
  });
  test("repeatInterleave", () => {
    gradcheck("repeatInterleave", (t) => ops.repeatInterleave(t, 3, 1), [randTensor([2, 2, 3], 5)]);
  });
});

describe("matmul and linear", () => {
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    test(`matmul transA=${ta} transB=${tb}, 2-D, batched and broadcast`, () => {
      for (const seed of SEEDS) {
        const rng = new Rng(seed);
        const [m, k, n, bt] = randShape(rng, 4, 1, 5) as [number, number, number, number];
        const sa = (batch: number[]) => [...batch, ...(ta ? [k, m] : [m, k])];
        const sb = (batch: number[]) => [...batch, ...(tb ? [n, k] : [k, n])];
        const f = (x: Tensor, y: Tensor) => ops.matmul(x, y, { transA: ta, transB: tb, alpha: 0.7 });
        gradcheck("2d", f, [randTensor(sa([]), seed), randTensor(sb([]), seed + 1)]);
        gradcheck("batched", f, [randTensor(sa([2, bt]), seed), randTensor(sb([2, bt]), seed + 1)]);
        gradcheck("B shared", f, [randTensor(sa([bt + 1]), seed), randTensor(sb([]), seed + 1)]);
        gradcheck("A shared", f, [randTensor(sa([]), seed), randTensor(sb([bt + 1]), seed + 1)]);
      }
    });
  }
  test("linear with and without bias", () => {
    const x = randTensor([2, 3, 4], 1);
    const w = randTensor([5, 4], 2);
    const b = randTensor([5], 3);
    gradcheck("linear", (a, c, d) => ops.linear(a, c, d), [x, w, b]);
    gradcheck("linear no bias", (a, c) => ops.linear(a, c), [x, w]);
  });
});

describe("normalisation, rotary, attention", () => {
  test("layerNorm", () => {
    for (const seed of SEEDS) {
      const shape = randShape(new Rng(seed), 3, 2, 5);
      const d = shape[2]!;
      gradcheck("layerNorm", (x, w, b) => ops.layerNorm(x, w, b, 1e-5), [
        randTensor(shape, seed),
        randTensor([d], seed + 1),
        randTensor([d], seed + 2),
      ]);
    }
  });
  test("rmsNorm", () => {
    for (const seed of SEEDS) {
      const shape = randShape(new Rng(seed), 3, 2, 5);
      gradcheck("rmsNorm", (x, w) => ops.rmsNorm(x, w, 1e-6), [
        randTensor(shape, seed),
        randTensor([shape[2]!], seed + 1),
      ]);
    }
  });
  test("rope with shared and per-batch positions", () => {
    const x = randTensor([2, 3, 4, 6], 1);
    gradcheck("rope", (t) => ops.rope(t, [0, 1, 2, 3], 10000), [x]);
    gradcheck("rope per batch", (t) => ops.rope(t, [5, 6, 7, 8, 0, 1, 2, 3], 500), [x]);
  });
  test("attention: causal, GQA, KV offset, key mask", () => {
    for (const seed of SEEDS) {
      const q = randTensor([2, 4, 3, 4], seed);
      const k = randTensor([2, 2, 5, 4], seed + 1);
      const v = randTensor([2, 2, 5, 4], seed + 2);
      gradcheck("attn causal gqa offset", (a, b, c) => ops.attention(a, b, c), [q, k, v]);
      gradcheck("attn non-causal", (a, b, c) => ops.attention(a, b, c, { causal: false }), [q, k, v]);
      const keyMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
      gradcheck("attn masked", (a, b, c) => ops.attention(a, b, c, { keyMask }), [q, k, v]);
    }
  });
});

describe("losses and selection", () => {
  test("crossEntropy with ignore index, mean / sum / none", () => {
    const logits = randTensor([2, 3, 6], 1);
    const targets = [1, 5, -100, 0, 2, -100];
    gradcheck("ce mean", (t) => ops.crossEntropy(t, targets), [logits]);
    gradcheck("ce sum", (t) => ops.crossEntropy(t, targets, { reduction: "sum" }), [logits]);
    gradcheck("ce none", (t) => ops.crossEntropy(t, targets, { reduction: "none" }), [logits]);
  });
  test("topk gradient reaches the selected entries only", () => {
    const x = Tensor.from([0.5, 2, -1, 3, 0.1, 1.5, 0.2, -0.3], [2, 4], { requiresGrad: true });
    gradcheck("topk", (t) => ops.topk(t, 2).values, [x]);
  });
  test("dropout (fixed mask per seed)", () => {
    const x = randTensor([4, 5], 2);
    gradcheck("dropout", (t) => ops.dropout(t, 0.3, new Rng(11)), [x]);
  });
});

test("the tape is empty after backward (intermediates released)", () => {
  const x = randTensor([3, 3], 1);
  gradcheck("chain", (t) => ops.tanh(ops.matmul(t, t)), [x]);
  assert.equal(tapeLength(), 0);
});

test("swiglu", () => {
  gradcheck("swiglu", (a, b) => ops.swiglu(a, b), [randTensor([3, 5], 1), randTensor([3, 5], 2)]);
});
