import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Sae, type SaeConfig } from "../../../src/interp/sae/sae.ts";
import { SimdArena, simdAvailable } from "../../../src/tensor/kernels/simd.ts";
import {
  type AdamHyper,
  adam,
  adamUnitRows,
  axpy,
  dot,
  sortPairsDesc,
  topkRow,
} from "../../../src/tensor/kernels/sparse.ts";
import { Rng } from "../../../src/tensor/random.ts";

const CFG: SaeConfig = { dIn: 12, dSae: 40, k: 5, architecture: "topk", hookName: "blocks.1.hook_resid_post" };

function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** A random SAE with non-zero biases (random() leaves them zero). */
function randomSae(cfg: SaeConfig, seed: number): Sae {
  const sae = Sae.random(cfg, seed);
  sae.bEnc.set(randn(cfg.dSae, seed + 1, 0.3));
  sae.bDec.set(randn(cfg.dIn, seed + 2, 0.5));
  return sae;
}

/** The textbook definition in float64: pre = W_encᵀ(s·x − b_dec) + b_enc per row. */
function naivePre(sae: Sae, x: Float32Array, n: number): Float64Array[] {
  const { dIn, dSae } = sae.cfg;
  const s = sae.cfg.activationScale ?? 1;
  const rows: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const pre = new Float64Array(dSae);
    for (let j = 0; j < dSae; j++) {
      let acc = sae.bEnc[j]!;
      for (let t = 0; t < dIn; t++) acc += sae.wEnc[t * dSae + j]! * (s * x[i * dIn + t]! - sae.bDec[t]!);
      pre[j] = acc;
    }
    rows.push(pre);
  }
  return rows;
}

function naiveEncode(sae: Sae, x: Float32Array, n: number): Float64Array[] {
  return naivePre(sae, x, n).map((pre) => {
    const out = new Float64Array(pre.length);
    if (sae.cfg.architecture === "batchtopk" && sae.cfg.threshold !== undefined) {
      for (let j = 0; j < pre.length; j++) if (pre[j]! > sae.cfg.threshold) out[j] = pre[j]!;
      return out;
    }
    const order = [...pre.keys()].sort((a, b) => pre[b]! - pre[a]!);
    for (const j of order.slice(0, sae.cfg.k)) out[j] = Math.max(0, pre[j]!);
    return out;
  });
}

function naiveDecode(sae: Sae, z: Float64Array[]): Float64Array[] {
  const { dIn, dSae } = sae.cfg;
  const s = sae.cfg.activationScale ?? 1;
  return z.map((row) => {
    const out = Float64Array.from(sae.bDec);
    for (let j = 0; j < dSae; j++) for (let t = 0; t < dIn; t++) out[t]! += row[j]! * sae.wDec[j * dIn + t]!;
    return out.map((v) => v / s);
  });
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]}`,
    );
}

describe("topkRow", () => {
  test("selects the k largest, including negatives and k = len", () => {
    const rng = new Rng(3);
    for (const [len, k] of [
      [50, 7],
      [9, 9],
      [30, 1],
    ] as const) {
      const src = Float32Array.from({ length: len + 4 }, () => rng.normal());
      const idx = new Int32Array(k + 2);
      const val = new Float32Array(k + 2);
      topkRow(src, 2, len, k, idx, val, 1);
      sortPairsDesc(idx, val, 1, k);
      const want = [...src.subarray(2, 2 + len)].map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
      for (let p = 0; p < k; p++) {
        assert.equal(idx[1 + p], want[p]![1]);
        assert.equal(val[1 + p], want[p]![0]);
      }
    }
  });
});

describe("SIMD kernels agree with the TypeScript loops", () => {
  test("wasm SIMD is available on this Node (unless EMLAB_SIMD=0)", () => {
    assert.equal(simdAvailable(), process.env.EMLAB_SIMD !== "0");
  });
  const rng = new Rng(17);
  const arena = new SimdArena(20_000);
  const inArena = (src: Float32Array) => {
    const a = arena.allocF32(src.length);
    a.set(src);
    return a;
  };
  const near = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
    for (let i = 0; i < b.length; i++)
      assert.ok(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  };

  for (const n of [4, 7, 64, 131])
    test(`axpy, dot, dotAxpy (n ${n}, offsets)`, () => {
      const x = Float32Array.from({ length: n + 3 }, () => rng.normal());
      const y = Float32Array.from({ length: n + 5 }, () => rng.normal());
      const ax = inArena(x);
      const ay = inArena(y);
      const ref = y.slice();
      axpy(n, 0.7, x, 3, ref, 5);
      arena.axpy(n, 0.7, ax, 3, ay, 5);
      near(ay, ref, 1e-6, "axpy");
      assert.ok(Math.abs(arena.dot(n, ax, 3, ay, 5) - dot(n, x, 3, ref, 5)) < 1e-4 * n);
      const g = inArena(y);
      const gRef = y.slice();
      const s = arena.dotAxpy(n, ax, 3, ay, 5, g, 5, -1.5);
      axpy(n, -1.5, ref, 5, gRef, 5);
      near(g, gRef, 1e-5, "dotAxpy g");
      assert.ok(Math.abs(s - dot(n, x, 3, ref, 5)) < 1e-4 * n);
    });

  test("top-k with the vector scan", () => {
    for (const [len, k] of [
      [1000, 32],
      [203, 5],
      [64, 64],
    ] as const) {
      const src = Float32Array.from({ length: len + 1 }, () => rng.normal());
      const a = inArena(src);
      const i1 = new Int32Array(k);
      const v1 = new Float32Array(k);
      const i2 = new Int32Array(k);
      const v2 = new Float32Array(k);
      topkRow(src, 1, len, k, i1, v1, 0);
      arena.topkRow(a, 1, len, k, i2, v2, 0);
      sortPairsDesc(i1, v1, 0, k);
      sortPairsDesc(i2, v2, 0, k);
      assert.deepEqual([...i2], [...i1]);
    }
  });

  test("Adam and the unit-row decoder step", () => {
    const d = 12;
    const rows = 5;
    const h: AdamHyper = { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, c1: 1 - 0.9 ** 3, c2: 1 - 0.999 ** 3 };
    const mk = () => Float32Array.from({ length: rows * d }, () => rng.normal());
    const [w, g, m] = [mk(), mk(), mk()];
    const v = mk().map((x) => x * x);
    for (let j = 0; j < rows; j++) {
      const nrm = Math.sqrt(dot(d, w, j * d, w, j * d));
      for (let t = 0; t < d; t++) w[j * d + t]! /= nrm;
    }
    const A = [w, g, m, v].map(inArena) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const R = [w, g, m, v].map((a) => a.slice()) as [Float32Array, Float32Array, Float32Array, Float32Array];
    arena.adamUnitRows(...A, d, h);
    adamUnitRows(...R, d, h);
    for (let q = 0; q < 4; q++) near(A[q]!, R[q]!, 1e-5, `unit rows ${q}`);
    const B = [w, g, m, v].map(inArena) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const S = [w, g, m, v].map((a) => a.slice()) as [Float32Array, Float32Array, Float32Array, Float32Array];
    arena.adam(...B, h);
    adam(...S, h);
    for (let q = 0; q < 4; q++) near(B[q]!, S[q]!, 1e-5, `adam ${q}`);
    assert.ok(
      B[1].every((x) => x === 0),
      "gradient zeroed",
    );
  });
});

describe("Sae", () => {
  const n = 7;
  const x = randn(n * CFG.dIn, 11, 2);

  test("random(): unit decoder rows, encoder = decoder transpose", () => {
    const sae = Sae.random(CFG, 1);
    for (let j = 0; j < CFG.dSae; j++) {
      let norm = 0;
      for (let t = 0; t < CFG.dIn; t++) {
        norm += sae.wDec[j * CFG.dIn + t]! ** 2;
        assert.equal(sae.wEnc[t * CFG.dSae + j], sae.wDec[j * CFG.dIn + t]);
      }
      assert.ok(Math.abs(norm - 1) < 1e-5);
    }
  });

  for (const variant of ["topk", "topk scaled, no b_dec on input", "batchtopk threshold"] as const) {
    test(`encode / decode / reconstruct match the naive definition (${variant})`, () => {
      const cfg: SaeConfig =
        variant === "topk"
          ? CFG
          : variant === "batchtopk threshold"
            ? { ...CFG, architecture: "batchtopk", threshold: 0.4 }
            : { ...CFG, activationScale: 0.5 };
      const sae = randomSae(cfg, 5);
      if (variant === "topk scaled, no b_dec on input") {
        // applyBDecToInput false: the reference subtracts nothing
        const sae2 = new Sae({ ...cfg, applyBDecToInput: false }, sae);
        const pre = sae2.preActivations(x, n);
        const zero = new Sae(cfg, { ...sae, bDec: new Float32Array(cfg.dIn) });
        close(
          pre,
          naivePre(zero, x, n).flatMap((r) => [...r]),
          1e-5,
          "pre (no b_dec)",
        );
      }
      close(
        sae.preActivations(x, n),
        naivePre(sae, x, n).flatMap((r) => [...r]),
        1e-5,
        "pre",
      );
      const want = naiveEncode(sae, x, n);
      const dense = sae.encode(x, n);
      close(
        dense,
        want.flatMap((r) => [...r]),
        1e-5,
        "encode",
      );
      const sp = sae.encodeSparse(x, n);
      if (cfg.architecture === "topk") assert.equal(sp.k, cfg.k);
      else assert.equal(sp.k, Math.max(1, ...want.map((r) => r.filter((v) => v !== 0).length)));
      for (let i = 0; i < n; i++)
        for (let p = 0; p < sp.k - 1; p++) assert.ok(sp.val[i * sp.k + p]! >= sp.val[i * sp.k + p + 1]!, "sorted");
      const xhat = naiveDecode(sae, want).flatMap((r) => [...r]);
      close(sae.decode(dense, n), xhat, 1e-5, "decode");
      close(sae.decodeSparse(sp, n), xhat, 1e-5, "decodeSparse");
      close(sae.reconstruct(x, n), xhat, 1e-5, "reconstruct");
    });
  }

  test("decode of dense (steering-like) latents uses the matrix product and agrees", () => {
    const sae = randomSae(CFG, 8);
    const z = randn(3 * CFG.dSae, 9);
    const want = naiveDecode(
      sae,
      [0, 1, 2].map((i) => Float64Array.from(z.subarray(i * CFG.dSae, (i + 1) * CFG.dSae))),
    );
    close(
      sae.decode(z, 3),
      want.flatMap((r) => [...r]),
      1e-4,
      "dense decode",
    );
  });

  test("decoderDirection is a unit copy", () => {
    const sae = randomSae(CFG, 2);
    sae.wDec[3 * CFG.dIn] = 5;
    const u = sae.decoderDirection(3);
    assert.ok(Math.abs(u.reduce((s, v) => s + v * v, 0) - 1) < 1e-5);
    u[0] = 99;
    assert.equal(sae.wDec[3 * CFG.dIn], 5);
    assert.throws(() => sae.decoderDirection(CFG.dSae), /outside/);
  });

  test("rejects wrong shapes and configs", () => {
    const sae = Sae.random(CFG, 0);
    assert.throws(() => sae.encode(new Float32Array(5), 1), /expected 1 × d_in 12/);
    assert.throws(() => new Sae(CFG, { ...sae, bEnc: new Float32Array(3) }), /bEnc has 3 values/);
    assert.throws(() => Sae.random({ ...CFG, k: 41 }, 0), /k: 41 exceeds/);
    assert.throws(() => Sae.random({ ...CFG, architecture: "gated" as "topk" }, 0), /architecture/);
    assert.throws(
      () => sae.decodeSparse({ idx: Int32Array.of(40), val: Float32Array.of(1), k: 1 }, 1),
      /latent index 40/,
    );
  });

  test("large batches are encoded in chunks with the same result", () => {
    const cfg: SaeConfig = { ...CFG, dSae: 70000, k: 3 }; // > 4M floats per 60 rows → several chunks
    const sae = randomSae({ ...cfg, dSae: 70000 }, 4);
    const m = 130;
    const xs = randn(m * cfg.dIn, 12);
    const sp = sae.encodeSparse(xs, m);
    for (const i of [0, 59, 60, 129]) {
      const one = sae.encodeSparse(xs.subarray(i * cfg.dIn, (i + 1) * cfg.dIn), 1);
      assert.deepEqual([...one.idx], [...sp.idx.subarray(i * 3, i * 3 + 3)]);
    }
  });
});
