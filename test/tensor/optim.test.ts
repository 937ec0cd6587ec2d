/**
 * BufferAdam, the engine's Adam over raw buffers (the SAE trainer's optimiser): the same
 * update as AdamW without weight decay, gradients zeroed by the step, unit-norm rows for
 * decoders, the wasm SIMD loops when its buffers live in a SimdArena, and exact resume.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AdamW, BufferAdam, type BufferParam, Rng, Tensor } from "../../src/tensor/index.ts";
import { SimdArena, simdAvailable } from "../../src/tensor/kernels/simd.ts";

const randn = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function rowNorms(w: Float32Array, d: number): number[] {
  return Array.from({ length: w.length / d }, (_, j) => Math.hypot(...w.subarray(j * d, (j + 1) * d)));
}

describe("BufferAdam", () => {
  test("takes AdamW's steps (no weight decay) and zeroes the gradient it reads", () => {
    const n = 37;
    const w0 = randn(n, 1);
    const t = new Tensor(w0.slice(), [n]);
    const adamw = new AdamW([t], { lr: 0.01, weightDecay: 0 });
    const p: BufferParam = { data: w0.slice(), grad: new Float32Array(n) };
    const opt = new BufferAdam([p], { lr: 0.01 });
    for (let s = 0; s < 6; s++) {
      const g = randn(n, 100 + s);
      t.grad = g.slice();
      p.grad.set(g);
      adamw.step();
      opt.step();
      assert.ok(
        p.grad.every((x) => x === 0),
        "gradient zeroed",
      );
    }
    assert.ok(maxAbsDiff(p.data, t.data) < 1e-6, `differs from AdamW by ${maxAbsDiff(p.data, t.data)}`);
    assert.ok(maxAbsDiff(p.data, w0) > 0.03, "the weights moved"); // 6 steps of ≈ lr each
  });

  test("unit rows: rows stay unit-norm, and the gradient along a row is removed", () => {
    const d = 16;
    const rows = 6;
    const w = randn(rows * d, 2);
    for (let j = 0; j < rows; j++) {
      const nrm = Math.hypot(...w.subarray(j * d, (j + 1) * d));
      for (let i = 0; i < d; i++) w[j * d + i]! /= nrm;
    }
    const start = w.slice();
    // Adding a multiple of each row to the gradient changes nothing: the step removes it.
    const g0 = randn(w.length, 199);
    const bare: BufferParam = { data: w.slice(), grad: g0.slice(), unitRows: d };
    const along: BufferParam = { data: w.slice(), grad: g0.map((x, i) => x + 3 * w[i]!), unitRows: d };
    new BufferAdam([bare], { lr: 0.05 }).step();
    new BufferAdam([along], { lr: 0.05 }).step();
    assert.ok(maxAbsDiff(bare.data, start) > 0.05, "the rows moved");
    assert.ok(maxAbsDiff(along.data, bare.data) < 1e-4, "the parallel component moved the rows");
    // A random gradient moves the rows but keeps them unit-norm; the plain Adam step would not.
    const rowsP: BufferParam = { data: w.slice(), grad: new Float32Array(w.length), unitRows: d };
    const plain: BufferParam = { data: w.slice(), grad: new Float32Array(w.length) };
    const a = new BufferAdam([rowsP], { lr: 0.05 });
    const b = new BufferAdam([plain], { lr: 0.05 });
    for (let s = 0; s < 5; s++) {
      const g = randn(w.length, 200 + s);
      rowsP.grad.set(g);
      plain.grad.set(g);
      a.step();
      b.step();
    }
    assert.ok(maxAbsDiff(rowsP.data, start) > 0.05, "the rows moved");
    for (const nrm of rowNorms(rowsP.data, d)) assert.ok(Math.abs(nrm - 1) < 1e-5, `row norm ${nrm}`);
    assert.ok(
      rowNorms(plain.data, d).some((nrm) => Math.abs(nrm - 1) > 1e-3),
      "plain Adam keeps no unit rows",
    );
  });

  test("a SimdArena runs the same update, its moments in the arena", () => {
    const d = 20;
    const rows = 8;
    const arena = new SimdArena(6 * rows * d + 64);
    const inArena = (a: Float32Array) => {
      const x = arena.allocF32(a.length);
      x.set(a);
      return x;
    };
    const w = randn(rows * d, 3);
    const b = randn(d, 4);
    const make = (alloc: (a: Float32Array) => Float32Array): BufferParam[] => [
      { data: alloc(w), grad: alloc(new Float32Array(w.length)), unitRows: d },
      { data: alloc(b), grad: alloc(new Float32Array(d)) },
    ];
    const A = make(inArena);
    const R = make((a) => a.slice());
    const simd = new BufferAdam(A, { lr: 0.02, kernels: arena });
    const loops = new BufferAdam(R, { lr: 0.02 });
    for (let s = 0; s < 4; s++) {
      for (const [i, p] of A.entries()) {
        const g = randn(p.data.length, 300 + 10 * s + i);
        p.grad.set(g);
        R[i]!.grad.set(g);
      }
      simd.step();
      loops.step();
    }
    for (let i = 0; i < 2; i++) assert.ok(maxAbsDiff(A[i]!.data, R[i]!.data) < 1e-5, `param ${i}`);
    if (simdAvailable()) for (const [m, v] of simd.state().buffers) assert.ok(arena.owns(m!) && arena.owns(v!));
  });

  test("loadState resumes exactly", () => {
    const n = 24;
    const grads = Array.from({ length: 3 }, (_, s) => randn(n, 400 + s));
    const p: BufferParam = { data: randn(n, 5), grad: new Float32Array(n) };
    const a = new BufferAdam([p], { lr: 0.01 });
    for (const g of grads.slice(0, 2)) {
      p.grad.set(g);
      a.step();
    }
    const saved = a.state();
    const copy = { step: saved.step, buffers: saved.buffers.map((bs) => bs.map((x) => x.slice())) };
    const q: BufferParam = { data: p.data.slice(), grad: grads[2]!.slice() };
    p.grad.set(grads[2]!);
    a.step();
    const b = new BufferAdam([q], { lr: 0.01 });
    b.loadState(copy);
    b.step();
    assert.deepEqual([...q.data], [...p.data]);
    assert.throws(() => b.loadState({ step: 1, buffers: [] }), /0 buffers for 1 params/);
  });

  test("rejects a gradient of the wrong length and rows that do not divide the parameter", () => {
    const x = new Float32Array(10);
    assert.throws(
      () => new BufferAdam([{ data: x, grad: new Float32Array(9) }]),
      /param 0 has 10 values but a 9-value/,
    );
    assert.throws(
      () => new BufferAdam([{ data: x, grad: new Float32Array(10), unitRows: 3 }]),
      /not made of rows of 3/,
    );
  });
});
