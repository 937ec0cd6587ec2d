/** The onnxruntime matmul and the TypeScript fallback agree; backend selection works. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { matmulBackend, ops, Rng, setMatmulBackend, Tensor } from "../../src/tensor/index.ts";
import { linearInto, matmulInto } from "../../src/tensor/kernels/matmul.ts";
import { blasAvailable } from "../../src/tensor/kernels/native.ts";
import { ortAvailable } from "../../src/tensor/kernels/ort.ts";

function rand(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

test("onnxruntime and TypeScript matmul agree within 1e-4 relative on random shapes", { skip: !ortAvailable() }, () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 40; trial++) {
    const m = 1 + rng.int(70);
    const k = 1 + rng.int(90);
    const n = 1 + rng.int(70);
    const batch = 1 + rng.int(3);
    const shareB = rng.next() < 0.3;
    const transA = rng.next() < 0.5;
    const transB = rng.next() < 0.5;
    const batchB = shareB ? 1 : batch;
    const a = rand(batch * m * k, rng);
    const b = rand(batchB * k * n, rng);
    const outOrt = new Float32Array(batch * m * n);
    const outTs = new Float32Array(batch * m * n);
    const args = { a, b, batchA: batch, batchB, m, k, n, transA, transB, alpha: 0.5 };
    matmulInto({ ...args, out: outOrt }, "ort");
    matmulInto({ ...args, out: outTs }, "ts");
    let maxRef = 0;
    let maxDiff = 0;
    for (let i = 0; i < outTs.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(outTs[i]!));
      maxDiff = Math.max(maxDiff, Math.abs(outTs[i]! - outOrt[i]!));
    }
    assert.ok(
      maxDiff <= 1e-4 * maxRef,
      `trial ${trial} [${batch}x${m}x${k}x${n} tA=${transA} tB=${transB}]: ${maxDiff} vs ${maxRef}`,
    );
  }
});

test("accumulate mode adds into the output on both backends", { skip: !ortAvailable() }, () => {
  const rng = new Rng(3);
  const a = rand(6 * 5, rng);
  const b = rand(5 * 4, rng);
  for (const which of ["ort", "ts"] as const) {
    const out = new Float32Array(24).fill(1);
    const ref = new Float32Array(24);
    matmulInto({ a, b, out, batchA: 1, batchB: 1, m: 6, k: 5, n: 4, accumulate: true }, which);
    matmulInto({ a, b, out: ref, batchA: 1, batchB: 1, m: 6, k: 5, n: 4 }, "ts");
    for (let i = 0; i < 24; i++) assert.ok(Math.abs(out[i]! - (ref[i]! + 1)) < 1e-5);
  }
});

test("setMatmulBackend switches the backend used by ops", () => {
  const prev = matmulBackend();
  try {
    const x = Tensor.randn([3, 4], 1, { seed: 1 });
    const w = Tensor.randn([4, 2], 1, { seed: 2 });
    setMatmulBackend("ts");
    const a = ops.matmul(x, w).toArray();
    if (ortAvailable()) {
      setMatmulBackend("ort");
      const b = ops.matmul(x, w).toArray();
      for (const [i, v] of a.entries()) assert.ok(Math.abs(v - b[i]!) < 1e-5);
    }
  } finally {
    setMatmulBackend(prev);
  }
});

test("a shape mismatch names the op and both shapes", () => {
  const a = Tensor.zeros([2, 3]);
  const b = Tensor.zeros([4, 5]);
  assert.throws(() => ops.matmul(a, b), /matmul: shapes \[2,3\] and \[4,5\] do not match \(inner dims 3 ≠ 4\)/);
  assert.throws(() => ops.add(a, b), /add: shapes \[2,3\] and \[4,5\] cannot be broadcast/);
  assert.throws(() => ops.linear(a, Tensor.zeros([5, 4])), /linear: input \[2,3\] does not match weight \[5,4\]/);
  assert.throws(() => ops.reshape(a, [4, 2]), /reshape: cannot view \[2,3\]/);
  assert.throws(() => ops.concat([a, b], 0), /concat: shapes \[2,3\] and \[4,5\]/);
});

test("EMLAB_PROFILE=1 prints the time per kernel and shape at exit", { skip: !ortAvailable() }, () => {
  const code =
    'import { matmulInto } from "./src/tensor/kernels/matmul.ts";' +
    'import { blasAvailable } from "./src/tensor/kernels/native.ts";' +
    "const a = new Float32Array(6), b = new Float32Array(12), out = new Float32Array(8);" +
    'matmulInto({ a, b, out, batchA: 1, batchB: 1, m: 2, k: 3, n: 4 }, "ort");' +
    'matmulInto({ a, b, out, batchA: 1, batchB: 1, m: 2, k: 3, n: 4 }, "ort");' +
    'if (blasAvailable()) matmulInto({ a, b, out, batchA: 1, batchB: 1, m: 2, k: 3, n: 4, transB: false }, "native");';
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      encoding: "utf8",
      env: { ...process.env, EMLAB_PROFILE: "", EMLAB_ORT_PROFILE: "", EMLAB_BACKEND: "", ...env },
    });
  for (const env of [{ EMLAB_PROFILE: "1" }, { EMLAB_ORT_PROFILE: "1" }] as Record<string, string>[]) {
    const on = run(env);
    assert.equal(on.status, 0, on.stderr);
    assert.match(on.stderr, /kernel calls: \d+ ms in all/);
    assert.match(on.stderr, / 2 calls {2}ort fmm:\S+ A\[1,2,3\] B\[1,3,4\]/);
    if (blasAvailable()) assert.match(on.stderr, / 1 calls {2}native sgemm 1x2x3 @ 1x3x4\n/);
  }
  const off = run({});
  assert.equal(off.status, 0, off.stderr);
  assert.doesNotMatch(off.stderr, /kernel calls/);
});

test("linearInto: x·Wᵀ on both routes (few rows: (W·xᵀ)ᵀ on onnxruntime) matches the TypeScript loop", {
  skip: !ortAvailable(),
}, () => {
  const rng = new Rng(11);
  for (const [rows, inF, outF] of [
    [1, 64, 300],
    [2, 64, 300],
    [16, 96, 512],
    [32, 40, 257],
    [33, 40, 257],
    [16, 64, 100],
  ] as const) {
    const x = Float32Array.from({ length: rows * inF }, () => rng.normal());
    const w = Float32Array.from({ length: outF * inF }, () => rng.normal());
    const ref = new Float32Array(rows * outF);
    const got = new Float32Array(rows * outF);
    linearInto(x, w, ref, rows, inF, outF, "ts");
    linearInto(x, w, got, rows, inF, outF, "ort");
    for (let i = 0; i < ref.length; i++)
      assert.ok(
        Math.abs(got[i]! - ref[i]!) <= 1e-4 * (1 + Math.abs(ref[i]!)),
        `[${rows}, ${inF}] · [${outF}, ${inF}]ᵀ at ${i}`,
      );
  }
});
