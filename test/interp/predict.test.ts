import assert from "node:assert/strict";
import { test } from "node:test";
import {
  answerScores,
  averageRanks,
  fitLogistic,
  logisticProba,
  pearson,
  predictVerdicts,
  rocAuc,
  spearman,
  stratifiedSplit,
} from "../../src/interp/predict.ts";
import { Rng } from "../../src/tensor/index.ts";

const close = (a: number | null, b: number, tol = 1e-9) =>
  assert.ok(a !== null && Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("correlations and ranks against hand-computed values", () => {
  // x = 1..5, y = [2, 4, 5, 4, 5]: Sxy = 6, Sxx = 10, Syy = 6 → r = 6/√60
  close(pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]), 6 / Math.sqrt(60)); // scipy: 0.7745966692414834
  // ranks of y with ties: [1, 2.5, 4.5, 2.5, 4.5] → ρ = 7/√90
  assert.deepEqual([...averageRanks([2, 4, 5, 4, 5])], [1, 2.5, 4.5, 2.5, 4.5]);
  close(spearman([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]), 7 / Math.sqrt(90)); // scipy: 0.7378647873726218
  close(spearman([1, 2, 3, 4], [1, 4, 9, 16]), 1);
  close(pearson([1, 2, 3], [3, 2, 1]), -1);
  assert.equal(pearson([1, 1, 1], [1, 2, 3]), null, "constant input");
  assert.equal(spearman([1, 2], [5, 5]), null);
  assert.equal(pearson([1], [2]), null);
  assert.throws(() => pearson([1, 2], [1]), /2 values against 1/);
});

test("ROC AUC in Mann–Whitney form, ties counting ½", () => {
  close(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75); // sklearn's documented example
  close(rocAuc([1, 1, 2, 2], [false, true, false, true]), 0.5);
  close(rocAuc([0.5, 0.5, 0.5, 0.9], [0, 1, 1, 1]), 2 / 3); // ½ + ½ + 1 over 3 pairs
  close(rocAuc([3, 2, 1], [1, 0, 0]), 1);
  close(rocAuc([3, 2, 1], [0, 1, 1]), 0);
  close(rocAuc([7, 7, 7, 7], [0, 1, 0, 1]), 0.5);
  assert.equal(rocAuc([1, 2], [1, 1]), null);
});

test("stratified split keeps class shares, is seeded, and covers every index once", () => {
  const labels = Array.from({ length: 40 }, (_, i) => i < 10);
  const a = stratifiedSplit(labels, 0.3, 7);
  assert.equal(a.test.filter((i) => labels[i]).length, 3);
  assert.equal(a.test.filter((i) => !labels[i]).length, 9);
  assert.deepEqual(
    [...a.train, ...a.test].sort((x, y) => x - y),
    labels.map((_, i) => i),
  );
  assert.deepEqual(stratifiedSplit(labels, 0.3, 7), a);
  assert.notDeepEqual(stratifiedSplit(labels, 0.3, 8), a);
  // a class of 2 still puts one in each split; a class of one stays in train
  const tiny = stratifiedSplit([true, true, false], 0.1, 0);
  assert.equal(tiny.test.length, 1);
  assert.ok(tiny.train.includes(2));
  assert.throws(() => stratifiedSplit(labels, 1, 0), /testFraction 1/);
});

test("logistic regression: the gradient vanishes at the fit; intercept-only case = logit of the base rate", () => {
  const rng = new Rng(1);
  const X: number[][] = [];
  const y: boolean[] = [];
  for (let i = 0; i < 60; i++) {
    const a = rng.normal();
    const b = rng.normal() * 3 + 1;
    X.push([a, b]);
    y.push(a + 0.3 * b + rng.normal() > 0.5);
  }
  const m = fitLogistic(X, y, { C: 0.5 });
  assert.ok(m.converged);
  // ∇ = w + C Σ (p − y) x̃ (no penalty on the intercept) must be ~0
  const g = [0, ...m.weights];
  X.forEach((row, i) => {
    const r = 0.5 * (logisticProba(m, row) - (y[i] ? 1 : 0));
    g[0]! += r;
    row.forEach((v, j) => {
      g[j + 1]! += (r * (v - m.mean[j]!)) / m.std[j]!;
    });
  });
  for (const v of g) assert.ok(Math.abs(v) < 1e-7, `gradient ${g}`);
  assert.ok(m.weights[0]! > 0 && m.weights[1]! > 0);

  const flat = fitLogistic([[7], [7], [7], [7]], [true, true, true, false]);
  close(flat.weights[0]!, 0);
  close(flat.intercept, Math.log(3), 1e-8);
  assert.throws(() => fitLogistic([[1], [2]], [true, true]), /one class/);
});

test("predictVerdicts: perfect separation gives finite weights, accuracy 1 and AUC 1", () => {
  const scores = Array.from({ length: 40 }, (_, i) => i / 4);
  const labels = scores.map((s) => s >= 5);
  const r = predictVerdicts({ scores, labels, testFraction: 0.25, seed: 3 });
  assert.equal(r.n, 40);
  assert.equal(r.nPositive, 20);
  assert.equal(r.nTest, 10);
  assert.equal(r.nTrain, 30);
  assert.equal(r.aucRaw, 1);
  assert.equal(r.auc, 1);
  assert.equal(r.aucRawTest, 1);
  assert.equal(r.logisticAccuracy, 1);
  assert.equal(r.baselineAccuracy, 0.5);
  assert.ok(Number.isFinite(r.model!.weights[0]!) && r.model!.converged);
  assert.ok(r.threshold! > 4 && r.threshold! < 6, `threshold ${r.threshold}`);
  assert.ok(r.pearson! > 0.8 && r.spearman! > 0.8);
  assert.deepEqual(r.notes, []);
  JSON.stringify(r); // plain data
});

test("predictVerdicts: a score that predicts negatively, several features, the continuous score", () => {
  const rng = new Rng(5);
  const n = 200;
  const labels = Array.from({ length: n }, () => rng.next() < 0.3);
  const good = labels.map((l) => (l ? -1 : 1) + rng.normal() * 0.7);
  const noise = labels.map(() => rng.normal());
  const aligned = labels.map((l, i) => (i % 10 === 0 ? null : l ? 10 + rng.next() * 20 : 60 + rng.next() * 40));
  const one = predictVerdicts({ scores: good, labels, continuous: aligned, seed: 0 });
  assert.ok(one.aucRaw! < 0.2, `raw AUC ${one.aucRaw}`);
  assert.ok(one.auc! > 0.8, `held-out AUC ${one.auc}`);
  assert.ok(one.model!.weights[0]! < 0);
  assert.equal(one.continuous!.n, n - 20);
  assert.ok(one.continuous!.pearson! > 0.5 && one.continuous!.spearman! > 0.5);
  const two = predictVerdicts({ scores: noise.map((v, i) => [v, good[i]!]), labels, seed: 0 });
  assert.equal(two.nFeatures, 2);
  assert.ok(Math.abs(two.aucRaw! - 0.5) < 0.15, "feature 0 is noise");
  assert.ok(two.perFeature[1]!.aucRaw! < 0.2);
  assert.ok(two.auc! > 0.8);
  assert.equal(two.threshold, null, "threshold is for one feature");
  assert.throws(() => predictVerdicts({ scores: [[1, 2], [1]], labels: [true, false] }), /answer 1 has 1 features/);
  assert.throws(() => predictVerdicts({ scores: [1, Number.NaN], labels: [true, false] }), /answer 1 feature 0 is NaN/);
});

test("predictVerdicts: constant scores and one-class labels give clear results, no NaN", () => {
  const labels = Array.from({ length: 20 }, (_, i) => i % 4 === 0);
  const flat = predictVerdicts({ scores: labels.map(() => 2), labels, seed: 1 });
  assert.equal(flat.pearson, null);
  assert.equal(flat.spearman, null);
  assert.equal(flat.aucRaw, 0.5);
  assert.equal(flat.auc, 0.5);
  assert.equal(flat.model!.weights[0], 0);
  assert.equal(flat.threshold, null);
  assert.equal(flat.logisticAccuracy, flat.baselineAccuracy, "predicts the majority");
  const same = predictVerdicts({ scores: labels.map((_, i) => i), labels: labels.map(() => false), seed: 1 });
  assert.equal(same.auc, null);
  assert.equal(same.aucRaw, null);
  assert.equal(same.model, null);
  assert.equal(same.logisticAccuracy, 1);
  assert.ok(same.notes.some((s) => /same verdict/.test(s)));
  assert.ok(!JSON.stringify([flat, same]).includes("NaN"));
});

test("answerScores: mean or max per item; empty items are an error unless scored", () => {
  const values = [1, 3, 10, 2, 4];
  const item = [0, 0, 2, 2, 2];
  assert.throws(() => answerScores(values, item, 3), /item 1 has no rows/);
  assert.deepEqual(answerScores(values, item, 3, { empty: 0 }), [2, 0, 16 / 3]);
  assert.deepEqual(answerScores(values, item, 3, { reduce: "max", empty: -1 }), [3, -1, 10]);
  assert.throws(() => answerScores([1], [5], 3), /item 5/);
});
