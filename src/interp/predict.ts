/**
 * Does a latent predict the judge? Per-answer scores (a latent's mean activation over an
 * answer's tokens, or a few such features) against the judge's binary verdict (misaligned or
 * not) and a continuous score (aligned 0–100): Pearson r, Spearman ρ (ties get average
 * ranks), ROC AUC (Mann–Whitney form, ties count ½), and an L2-regularised logistic
 * regression on standardised features fitted on a seeded, stratified train split and scored
 * on the held-out split (Wang et al. report these in-sample; emlab reports held-out figures).
 *
 * Undefined statistics are `null`, never NaN: a correlation with a constant input, an AUC
 * with one class. A constant feature standardises to 0 and gets weight 0.
 *
 * @example
 *   const scores = answerScores(latentActs, rows.item, answers.length);
 *   const r = predictVerdicts({ scores, labels: answers.map((a) => a.misaligned), testFraction: 0.3, seed: 0 });
 *   r.auc; // held-out ROC AUC of the logistic model
 */
import { Rng } from "../tensor/index.ts";

/** 1-based ranks, tied values sharing the mean of their ranks (scipy's rankdata "average"). */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]! - x[b]!);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && x[order[j + 1]!] === x[order[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = r;
    i = j + 1;
  }
  return ranks;
}

function checkPair(x: ArrayLike<unknown>, y: ArrayLike<unknown>, what: string): void {
  if (x.length !== y.length) throw new Error(`${what}: ${x.length} values against ${y.length}`);
}

/** Pearson's r, or null when there are fewer than 2 pairs or either side is constant. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  checkPair(x, y, "pearson");
  const n = x.length;
  if (n < 2) return null;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return null;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Spearman's ρ: Pearson's r of the average ranks. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  checkPair(x, y, "spearman");
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * ROC AUC = P(score of a positive > score of a negative) + ½ P(tie), from the rank sum
 * (Mann–Whitney U / (n₊ n₋)); null when one class is absent.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): number | null {
  checkPair(scores, labels, "rocAuc");
  const ranks = averageRanks(scores);
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]) {
      nPos++;
      rankSum += ranks[i]!;
    }
  }
  const nNeg = labels.length - nPos;
  if (nPos === 0 || nNeg === 0) return null;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * A seeded split that keeps each class's share: round(testFraction × class size) of each
 * class goes to test, at least one and at most size − 1 for a class of two or more (a class
 * of one stays in train). Indices ascending.
 */
export function stratifiedSplit(
  labels: readonly boolean[],
  testFraction: number,
  seed: number,
): { train: number[]; test: number[] } {
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`testFraction ${testFraction} is not in (0, 1)`);
  const rng = new Rng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const cls of [false, true]) {
    const idx = rng.shuffle(labels.flatMap((l, i) => (l === cls ? [i] : [])));
    let k = Math.round(testFraction * idx.length);
    if (idx.length >= 2) k = Math.min(Math.max(k, 1), idx.length - 1);
    else k = 0;
    test.push(...idx.slice(0, k));
    train.push(...idx.slice(k));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

export interface LogisticModel {
  intercept: number;
  /** One weight per standardised feature. */
  weights: number[];
  /** The training set's per-feature mean and standard deviation (population; 1 where it is 0). */
  mean: number[];
  std: number[];
  C: number;
  iterations: number;
  converged: boolean;
}

/** P(y = 1 | x) under a fitted model; x in raw (unstandardised) units. */
export function logisticProba(m: LogisticModel, x: readonly number[]): number {
  let z = m.intercept;
  for (let j = 0; j < m.weights.length; j++) z += (m.weights[j]! * (x[j]! - m.mean[j]!)) / m.std[j]!;
  return 1 / (1 + Math.exp(-z));
}

/** log(1 + e^z) without overflow. */
const softplus = (z: number) => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/**
 * L2-regularised logistic regression on standardised features, by Newton's method with
 * backtracking: minimises ½‖w‖² + C Σᵢ [log(1 + e^{zᵢ}) − yᵢ zᵢ], z = b + w·x̃ (the
 * intercept b is not penalised; sklearn's `LogisticRegression(C=…)` objective). Both
 * classes must be present.
 *
 * @example
 *   const m = fitLogistic([[0.1], [2.3], [1.7]], [false, true, true]);
 *   logisticProba(m, [1.9]);
 */
export function fitLogistic(
  X: readonly (readonly number[])[],
  y: readonly boolean[],
  { C = 1, maxIter = 100, tol = 1e-10 }: { C?: number; maxIter?: number; tol?: number } = {},
): LogisticModel {
  const n = X.length;
  if (n !== y.length) throw new Error(`fitLogistic: ${n} rows against ${y.length} labels`);
  const nPos = y.filter(Boolean).length;
  if (nPos === 0 || nPos === n) throw new Error("fitLogistic: the labels hold one class only");
  if (!(C > 0)) throw new Error(`fitLogistic: C must be > 0 (got ${C})`);
  const p = X[0]!.length;
  const mean = new Array<number>(p).fill(0);
  const std = new Array<number>(p).fill(0);
  for (let j = 0; j < p; j++) {
    if (X.every((row) => row[j] === X[0]![j])) {
      // a constant feature: exactly 0 once standardised, so its weight stays 0
      mean[j] = X[0]![j]!;
      std[j] = 1;
      continue;
    }
    for (const row of X) mean[j]! += row[j]!;
    mean[j]! /= n;
    for (const row of X) std[j]! += (row[j]! - mean[j]!) ** 2;
    std[j] = Math.sqrt(std[j]! / n) || 1;
  }
  // Design rows [1, x̃₁ … x̃ₚ].
  const Z = X.map((row) => [1, ...row.map((v, j) => (v - mean[j]!) / std[j]!)]);
  const q = p + 1;
  const beta = new Array<number>(q).fill(0);
  const objective = (b: number[]) => {
    let f = 0;
    for (let j = 1; j < q; j++) f += 0.5 * b[j]! ** 2;
    for (let i = 0; i < n; i++) {
      const z = dot(Z[i]!, b);
      f += C * (softplus(z) - (y[i] ? z : 0));
    }
    return f;
  };
  let f = objective(beta);
  let converged = false;
  let it = 0;
  for (; it < maxIter; it++) {
    const g = beta.map((b, j) => (j === 0 ? 0 : b));
    const H = Array.from({ length: q }, (_, r) =>
      Array.from({ length: q }, (_, c) => (r === c ? (r === 0 ? 1e-12 : 1) : 0)),
    );
    for (let i = 0; i < n; i++) {
      const zi = Z[i]!;
      const pi = 1 / (1 + Math.exp(-dot(zi, beta)));
      const r = C * (pi - (y[i] ? 1 : 0));
      const w = C * pi * (1 - pi);
      for (let a = 0; a < q; a++) {
        g[a]! += r * zi[a]!;
        for (let b = 0; b < q; b++) H[a]![b]! += w * zi[a]! * zi[b]!;
      }
    }
    if (Math.max(...g.map(Math.abs)) < tol) {
      converged = true;
      break;
    }
    const step = solve(H, g);
    let t = 1;
    let next = beta.map((b, j) => b - step[j]!);
    let fNext = objective(next);
    while (fNext > f && t > 1e-8) {
      t /= 2;
      next = beta.map((b, j) => b - t * step[j]!);
      fNext = objective(next);
    }
    const moved = Math.max(...step.map((s) => Math.abs(s * t)));
    beta.splice(0, q, ...next);
    f = fNext;
    if (moved < tol) {
      converged = true;
      it++;
      break;
    }
  }
  return { intercept: beta[0]!, weights: beta.slice(1), mean, std, C, iterations: it, converged };
}

function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Solves A x = b (small, symmetric positive definite in practice) by Gaussian elimination with partial pivoting. */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[piv]![c]!)) piv = r;
    [M[c], M[piv]] = [M[piv]!, M[c]!];
    const d = M[c]![c]!;
    if (d === 0) continue;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / d;
      if (f !== 0) for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((row, i) => (row[i] === 0 ? 0 : row[n]! / row[i]!));
}

/**
 * One score per item from per-token values: the mean (or max) of `values` over the rows of
 * each item. An item without rows is an error unless `empty` gives its score.
 *
 * @example
 *   const scores = answerScores(acts, rows.item, answers.length); // mean latent activation per answer
 */
export function answerScores(
  values: ArrayLike<number>,
  item: ArrayLike<number>,
  nItems: number,
  { reduce = "mean", empty }: { reduce?: "mean" | "max"; empty?: number } = {},
): number[] {
  checkPair(values, item, "answerScores");
  const sum = new Float64Array(nItems);
  const max = new Float64Array(nItems).fill(Number.NEGATIVE_INFINITY);
  const count = new Int32Array(nItems);
  for (let r = 0; r < values.length; r++) {
    const i = item[r]!;
    if (!(i >= 0 && i < nItems))
      throw new RangeError(`answerScores: row ${r} belongs to item ${i}, outside [0, ${nItems})`);
    sum[i]! += values[r]!;
    if (values[r]! > max[i]!) max[i] = values[r]!;
    count[i]!++;
  }
  return Array.from({ length: nItems }, (_, i) => {
    if (count[i] === 0) {
      if (empty === undefined) throw new Error(`answerScores: item ${i} has no rows (pass 'empty' to score it)`);
      return empty;
    }
    return reduce === "max" ? max[i]! : sum[i]! / count[i]!;
  });
}

export interface FeatureStats {
  /** Against the verdict as 0/1 (point-biserial r), over all answers. */
  pearson: number | null;
  spearman: number | null;
  /** AUC of the raw feature over all answers (in-sample: no fitting involved). */
  aucRaw: number | null;
  /** Against the continuous score, over answers that have one. */
  continuousPearson: number | null;
  continuousSpearman: number | null;
}

export interface PredictionReport {
  n: number;
  nPositive: number;
  nTrain: number;
  nTest: number;
  nFeatures: number;
  /** Feature 0's statistics (the only feature for 1-D scores); `perFeature` has them all. */
  pearson: number | null;
  spearman: number | null;
  aucRaw: number | null;
  /** Feature 0's raw AUC on the held-out split. */
  aucRawTest: number | null;
  /** Answers with a continuous score, and feature 0 against it. */
  continuous: { n: number; pearson: number | null; spearman: number | null } | null;
  perFeature: FeatureStats[];
  /** Held-out accuracy of the logistic model at p ≥ 0.5. */
  logisticAccuracy: number | null;
  /** Held-out ROC AUC of the logistic model's probabilities. */
  auc: number | null;
  /** Held-out accuracy of always answering the training split's majority class. */
  baselineAccuracy: number | null;
  /** For one feature: the raw score where the model's probability crosses 0.5 (null if its weight is 0). */
  threshold: number | null;
  model: LogisticModel | null;
  /** Why a figure is missing, in words. */
  notes: string[];
}

export interface PredictOptions {
  /** One score per answer, or one row of a few features per answer. */
  scores: readonly number[] | readonly (readonly number[])[];
  /** The judge's verdict: true = misaligned. */
  labels: readonly boolean[];
  /** An optional continuous judge score per answer (e.g. aligned 0–100); null = no score. */
  continuous?: readonly (number | null)[];
  /** Share of each class held out (default 0.3). */
  testFraction?: number;
  seed?: number;
  /** Inverse L2 strength of the logistic regression (default 1). */
  C?: number;
}

/**
 * Scores against verdicts: correlations and raw AUC over all answers, and a logistic model
 * fitted on a stratified train split and evaluated on the held-out split.
 */
export function predictVerdicts(o: PredictOptions): PredictionReport {
  const n = o.labels.length;
  if (o.scores.length !== n) throw new Error(`predictVerdicts: ${o.scores.length} scores for ${n} labels`);
  if (o.continuous && o.continuous.length !== n)
    throw new Error(`predictVerdicts: ${o.continuous.length} continuous scores for ${n} labels`);
  const X: number[][] = o.scores.map((s) => (typeof s === "number" ? [s] : [...s]));
  const p = X[0]?.length ?? 1;
  X.forEach((row, i) => {
    if (row.length !== p) throw new Error(`predictVerdicts: answer ${i} has ${row.length} features, answer 0 has ${p}`);
    row.forEach((v, j) => {
      if (!Number.isFinite(v)) throw new Error(`predictVerdicts: answer ${i} feature ${j} is ${v}`);
    });
  });
  const y = o.labels.map((l) => (l ? 1 : 0));
  const nPositive = y.reduce<number>((s, v) => s + v, 0);
  const notes: string[] = [];
  if (nPositive === 0 || nPositive === n) notes.push(`all ${n} answers have the same verdict: no AUC or classifier`);

  const withScore = o.continuous ? o.continuous.flatMap((c, i) => (c === null || !Number.isFinite(c) ? [] : [i])) : [];
  const col = (j: number, idx?: number[]) => (idx ? idx.map((i) => X[i]![j]!) : X.map((r) => r[j]!));
  const perFeature: FeatureStats[] = Array.from({ length: p }, (_, j) => {
    const x = col(j);
    const xc = col(j, withScore);
    const c = withScore.map((i) => o.continuous![i]!);
    return {
      pearson: pearson(x, y),
      spearman: spearman(x, y),
      aucRaw: rocAuc(x, y),
      continuousPearson: o.continuous ? pearson(xc, c) : null,
      continuousSpearman: o.continuous ? spearman(xc, c) : null,
    };
  });

  const { train, test } = stratifiedSplit(o.labels, o.testFraction ?? 0.3, o.seed ?? 0);
  const yTest = test.map((i) => o.labels[i]!);
  let model: LogisticModel | null = null;
  let probs: number[] | null = null;
  const trainPos = train.filter((i) => o.labels[i]).length;
  const majority = trainPos * 2 >= train.length && train.length > 0; // ties → positive
  if (trainPos > 0 && trainPos < train.length) {
    model = fitLogistic(
      train.map((i) => X[i]!),
      train.map((i) => o.labels[i]!),
      { C: o.C ?? 1 },
    );
    if (!model.converged)
      notes.push(`logistic regression stopped after ${model.iterations} Newton steps without converging`);
    probs = test.map((i) => logisticProba(model!, X[i]!));
  } else if (train.length > 0) {
    notes.push("the training split holds one class: the classifier always answers it");
    probs = test.map(() => (majority ? 1 : 0));
  }
  const accuracy = (pred: boolean[]) =>
    test.length === 0 ? null : pred.filter((v, k) => v === yTest[k]).length / test.length;
  if (test.length === 0) notes.push("the held-out split is empty (too few answers)");

  let threshold: number | null = null;
  if (model && p === 1 && model.weights[0] !== 0) {
    threshold = model.mean[0]! - (model.intercept * model.std[0]!) / model.weights[0]!;
  }
  const f0 = perFeature[0]!;
  return {
    n,
    nPositive,
    nTrain: train.length,
    nTest: test.length,
    nFeatures: p,
    pearson: f0.pearson,
    spearman: f0.spearman,
    aucRaw: f0.aucRaw,
    aucRawTest: rocAuc(
      test.map((i) => X[i]![0]!),
      yTest,
    ),
    continuous: o.continuous
      ? { n: withScore.length, pearson: f0.continuousPearson, spearman: f0.continuousSpearman }
      : null,
    perFeature,
    logisticAccuracy: probs ? accuracy(probs.map((q) => q >= 0.5)) : null,
    auc: probs ? rocAuc(probs, yTest) : null,
    baselineAccuracy: train.length ? accuracy(test.map(() => majority)) : null,
    threshold,
    model,
    notes,
  };
}
