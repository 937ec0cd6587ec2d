import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SaeStep, type StepParams } from "../../../src/interp/training/step.ts";
import {
  type ActivationSource,
  evaluateSae,
  geometricMedian,
  matrixSource,
  trainSae,
} from "../../../src/interp/training/train.ts";
import { SimdArena, simdAvailable } from "../../../src/tensor/kernels/simd.ts";
import { Rng } from "../../../src/tensor/random.ts";

function randn(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/**
 * The training loss in float64, straight from its definition, with the active sets chosen
 * the same way (TopK per row or over the batch; the aux set among dead latents) and the aux
 * target e = x − x̂ held fixed (it carries no gradient).
 */
function refLoss(
  P: Record<keyof StepParams, Float64Array>,
  x: Float32Array,
  dims: { d: number; n: number; B: number; k: number; batch: boolean },
  dead: number[],
  kAux: number,
  auxCoef: number,
  eFixed?: Float64Array[],
): { loss: number; e: Float64Array[] } {
  const { d, n, B, k } = dims;
  const pres: Float64Array[] = [];
  for (let i = 0; i < B; i++) {
    const pre = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let a = P.bEnc[j]!;
      for (let t = 0; t < d; t++) a += P.encT[j * d + t]! * (x[i * d + t]! - P.bDec[t]!);
      pre[j] = a;
    }
    pres.push(pre);
  }
  const chosen: Set<number>[] = pres.map(() => new Set());
  if (dims.batch) {
    const all = pres.flatMap((pre, i) => [...pre].map((v, j) => [v, i, j] as const)).sort((a, b) => b[0] - a[0]);
    for (const [, i, j] of all.slice(0, k * B)) chosen[i]!.add(j);
  } else
    pres.forEach((pre, i) => {
      for (const j of [...pre.keys()].sort((a, b) => pre[b]! - pre[a]!).slice(0, k)) chosen[i]!.add(j);
    });
  let mse = 0;
  let aux = 0;
  const es: Float64Array[] = [];
  for (let i = 0; i < B; i++) {
    const xhat = Float64Array.from(P.bDec);
    for (const j of chosen[i]!) {
      const z = Math.max(0, pres[i]![j]!);
      for (let t = 0; t < d; t++) xhat[t]! += z * P.wDec[j * d + t]!;
    }
    const e = new Float64Array(d);
    for (let t = 0; t < d; t++) {
      e[t] = x[i * d + t]! - xhat[t]!;
      mse += e[t]! ** 2;
    }
    es.push(e);
    if (dead.length) {
      const target = eFixed ? eFixed[i]! : e;
      const top = [...dead].sort((a, b) => pres[i]![b]! - pres[i]![a]!).slice(0, Math.min(kAux, dead.length));
      const ehat = new Float64Array(d);
      for (const j of top) {
        const z = Math.max(0, pres[i]![j]!);
        for (let t = 0; t < d; t++) ehat[t]! += z * P.wDec[j * d + t]!;
      }
      for (let t = 0; t < d; t++) aux += (ehat[t]! - target[t]!) ** 2;
    }
  }
  return { loss: mse / B + (auxCoef * aux) / B, e: es };
}

describe("hand-written backward", () => {
  // d 5: the SIMD kernels' four-wide part plus a scalar tail; "arena": every buffer in wasm memory
  // (SIMD paths, n 68 ≥ 64 uses the vector top-k scan); "arrays": parameters as plain arrays (TypeScript paths).
  const cases = [
    { batch: false, params: "arena", n: 68 },
    { batch: true, params: "arena", n: 68 },
    { batch: false, params: "arrays", n: 14 },
    { batch: true, params: "arrays", n: 14 },
  ] as const;
  for (const { batch, params, n } of cases)
    test(`matches finite differences (${batch ? "batchtopk" : "topk"}, auxiliary loss, ${params})`, () => {
      const rng = new Rng(batch ? 21 : 20);
      const d = 5;
      const B = 4;
      const k = 3;
      const arch = batch ? "batchtopk" : "topk";
      const arena = new SimdArena(SaeStep.arenaFloats(d, n, B, k, arch) + 2 * n * d + n + d);
      const alloc = (len: number, scale: number) => {
        const a = params === "arena" ? arena.allocF32(len) : new Float32Array(len);
        a.set(randn(len, rng, scale));
        return a;
      };
      const p: StepParams = {
        encT: alloc(n * d, 0.6),
        bEnc: alloc(n, 0.3),
        wDec: alloc(n * d, 0.5),
        bDec: alloc(d, 0.3),
      };
      if (params === "arena" && simdAvailable()) assert.ok(arena.owns(p.wDec));
      const x = randn(B * d, rng);
      const dead = [1, 4, 6, 9, 13, n - 1];
      const kAux = 3;
      const auxCoef = 0.5;
      const step = new SaeStep(d, n, B, k, arch, true, arena);
      const fired = new Float64Array(n);
      const r = step.run(p, x, fired, Int32Array.from(dead), dead.length, kAux, auxCoef);
      const P = {
        encT: Float64Array.from(p.encT),
        bEnc: Float64Array.from(p.bEnc),
        wDec: Float64Array.from(p.wDec),
        bDec: Float64Array.from(p.bDec),
      };
      const dims = { d, n, B, k, batch };
      const base = refLoss(P, x, dims, dead, kAux, auxCoef);
      assert.ok(Math.abs(r.mse * d + r.auxLoss - base.loss) < 1e-4 * (1 + base.loss), "loss value");
      const h = 1e-6;
      let worst = 0;
      for (const name of ["encT", "bEnc", "wDec", "bDec"] as const) {
        for (let i = 0; i < P[name].length; i++) {
          const keep = P[name][i]!;
          P[name][i] = keep + h;
          const up = refLoss(P, x, dims, dead, kAux, auxCoef, base.e).loss;
          P[name][i] = keep - h;
          const down = refLoss(P, x, dims, dead, kAux, auxCoef, base.e).loss;
          P[name][i] = keep;
          const num = (up - down) / (2 * h);
          const got = step.grads[name][i]!;
          const err = Math.abs(got - num) / (1e-3 + Math.abs(num));
          worst = Math.max(worst, err);
          assert.ok(err < 2e-3, `${name}[${i}]: analytic ${got} vs numeric ${num}`);
        }
      }
      assert.ok(worst < 2e-3);
      assert.ok(fired.reduce((s, v) => s + v, 0) > 0);
    });
});

describe("geometricMedian", () => {
  test("ignores a few far outliers where the mean does not", () => {
    const rng = new Rng(1);
    const d = 3;
    const pts: number[] = [];
    for (let i = 0; i < 200; i++) pts.push(1 + 0.1 * rng.normal(), -2 + 0.1 * rng.normal(), 0.5 + 0.1 * rng.normal());
    for (let i = 0; i < 20; i++) pts.push(1000, 1000, -1000);
    const gm = geometricMedian(Float32Array.from(pts), 220, d);
    assert.ok(Math.abs(gm[0]! - 1) < 0.1 && Math.abs(gm[1]! + 2) < 0.1 && Math.abs(gm[2]! - 0.5) < 0.1, `${gm}`);
  });
  test("of collinear symmetric points is the middle one", () => {
    const gm = geometricMedian(Float32Array.of(0, 0, 1, 0, 10, 0), 3, 2);
    assert.ok(Math.abs(gm[0]! - 1) < 1e-3 && Math.abs(gm[1]!) < 1e-3, `${gm}`);
  });
});

/** 64-d data made of ≤ 3 of 256 sparse unit ground-truth directions with positive weights, plus an offset. */
function synthetic(rows: number, seed: number) {
  const rng = new Rng(seed);
  const d = 64;
  const m = 256;
  const dirs = new Float32Array(m * d);
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let t = 0; t < d; t++) s += (dirs[j * d + t] = rng.normal()) ** 2;
    for (let t = 0; t < d; t++) dirs[j * d + t]! /= Math.sqrt(s);
  }
  const offset = randn(d, rng, 2);
  const data = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    data.set(offset, i * d);
    const active = 1 + rng.int(3);
    for (let a = 0; a < active; a++) {
      const j = rng.int(m);
      const w = 0.5 + rng.next() * 1.5;
      for (let t = 0; t < d; t++) data[i * d + t]! += w * dirs[j * d + t]!;
    }
  }
  return { d, m, dirs, data };
}

/** Mean over ground-truth directions of the best cosine with any decoder row. */
function recovery(dirs: Float32Array, m: number, wDec: Float32Array, nLat: number, d: number): number {
  let total = 0;
  for (let g = 0; g < m; g++) {
    let best = -1;
    for (let j = 0; j < nLat; j++) {
      let c = 0;
      let nn = 0;
      for (let t = 0; t < d; t++) {
        c += dirs[g * d + t]! * wDec[j * d + t]!;
        nn += wDec[j * d + t]! ** 2;
      }
      best = Math.max(best, c / Math.sqrt(nn));
    }
    total += best;
  }
  return total / m;
}

describe("training on synthetic sparse data", () => {
  const { d, m, dirs, data } = synthetic(40_000, 7);
  const train = data.subarray(0, 36_000 * d);
  const test_ = data.subarray(36_000 * d);

  test("TopK: low FVU, recovers the directions, few dead latents", () => {
    const steps: number[] = [];
    const { sae, metrics } = trainSae(matrixSource(train, 36_000, d, 1), {
      k: 4,
      dSae: 256,
      batchSize: 256,
      lr: 2e-3,
      seed: 3,
      steps: 1500,
      deadAfter: 20_000,
      hookName: "blocks.0.hook_resid_post",
      onStep: (s) => steps.push(s.step),
    });
    assert.equal(steps.length, 1500);
    assert.equal(metrics.history[0]!.step, 1);
    assert.ok(metrics.history[0]!.fvu > metrics.final.fvu);
    const ev = evaluateSae(sae, test_, 4000);
    const rec = recovery(dirs, m, sae.wDec, 256, d);
    console.log(
      `# topk: fvu ${ev.fvu.toFixed(4)} l0 ${ev.l0.toFixed(2)} dead ${ev.deadFraction.toFixed(3)} recovery ${rec.toFixed(3)} (${metrics.seconds.toFixed(1)} s)`,
    );
    assert.ok(ev.fvu < 0.1, `fvu ${ev.fvu}`);
    assert.ok(ev.l0 <= 4);
    assert.ok(Math.abs(ev.explainedVariance - (1 - ev.fvu)) < 1e-12);
    assert.ok(rec > 0.9, `recovery ${rec}`);
    assert.ok(ev.deadFraction < 0.1, `dead ${ev.deadFraction}`);
    for (let j = 0; j < 256; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += sae.wDec[j * d + t]! ** 2;
      assert.ok(Math.abs(s - 1) < 1e-4, "decoder rows stay unit-norm");
    }
    assert.equal(sae.cfg.hookName, "blocks.0.hook_resid_post");
  });

  test("BatchTopK: learns a threshold that gives about k active latents at inference", () => {
    const { sae, metrics } = trainSae(matrixSource(train, 36_000, d, 2), {
      k: 4,
      dSae: 256,
      batchSize: 256,
      lr: 2e-3,
      seed: 4,
      steps: 1500,
      architecture: "batchtopk",
      deadAfter: 20_000,
      normalize: "mean_norm",
    });
    assert.ok(metrics.threshold !== undefined && metrics.threshold > 0);
    assert.equal(sae.cfg.threshold, metrics.threshold);
    assert.ok(Math.abs(metrics.activationScale - 1) > 1e-3, "mean_norm rescales this data");
    assert.equal(sae.cfg.activationScale, metrics.activationScale);
    assert.ok(Math.abs(metrics.final.l0 - 4) < 1e-9, "exactly k per row on average while training");
    const ev = evaluateSae(sae, test_, 4000);
    const rec = recovery(dirs, m, sae.wDec, 256, d);
    console.log(
      `# batchtopk: fvu ${ev.fvu.toFixed(4)} l0 ${ev.l0.toFixed(2)} threshold ${metrics.threshold!.toFixed(3)} recovery ${rec.toFixed(3)}`,
    );
    assert.ok(ev.l0 > 1 && ev.l0 < 8, `inference l0 ${ev.l0}`);
    assert.ok(ev.fvu < 0.2, `fvu ${ev.fvu}`);
    assert.ok(rec > 0.85, `recovery ${rec}`);
  });

  test("the auxiliary loss revives latents that a bad init left dead", () => {
    // A window of two batches: latents that miss two batches in a row count as dead.
    const aux: number[] = [];
    const { metrics } = trainSae(matrixSource(train, 36_000, d, 3), {
      k: 4,
      dSae: 256,
      batchSize: 256,
      lr: 2e-3,
      seed: 5,
      steps: 300,
      deadAfter: 512,
      onStep: (s) => aux.push(s.auxLoss),
    });
    assert.ok(
      aux.some((a) => a > 0),
      "aux loss is used when latents are dead",
    );
    assert.ok(metrics.final.dead < 0.5, `dead ${metrics.final.dead}`);
  });
});

describe("ActivationSource and evaluateSae", () => {
  test("matrixSource visits every row once per epoch", () => {
    const data = Float32Array.from({ length: 10 * 2 }, (_, i) => Math.floor(i / 2));
    const src: ActivationSource = matrixSource(data, 10, 2, 0);
    const seen = [...src.nextBatch(4), ...src.nextBatch(6)].filter((_, i) => i % 2 === 0).sort((a, b) => a - b);
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
  test("trainSae validates its options", () => {
    const src = matrixSource(new Float32Array(8), 4, 2);
    assert.throws(() => trainSae(src, { k: 5, dSae: 4, batchSize: 2, lr: 1e-3, seed: 0 }), /k 5 exceeds/);
    assert.throws(() => trainSae(src, { k: 1, dSae: 4, batchSize: 0, lr: 1e-3, seed: 0 }), /batchSize/);
  });
});
