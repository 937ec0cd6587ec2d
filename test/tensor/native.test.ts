/**
 * The native addon (build/emlab_native.node): its sgemm agrees with the TypeScript loop on
 * random shapes (batches, broadcasting, transposes, alpha, accumulate), its fused kernels
 * agree with the TypeScript ops, and it rejects bad arguments. Skipped, with the reason,
 * where the addon was not built or no OpenBLAS loads; CI installs OpenBLAS and runs the
 * whole suite on this backend (EMLAB_BACKEND=native).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { AdamW, backward, matmulBackend, ops, Rng, setMatmulBackend, Tensor } from "../../src/tensor/index.ts";
import { linearInto, matmulInto } from "../../src/tensor/kernels/matmul.ts";
import { blasAvailable, blasLoadError, blasSgemm, nativeKernels } from "../../src/tensor/kernels/native.ts";

const skip = blasAvailable() ? false : `native backend unavailable: ${blasLoadError()}`;

function rand(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function maxRelDiff(ref: Float32Array, got: Float32Array): number {
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(ref[i]! - got[i]!));
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

test("native sgemm and the TypeScript matmul agree within 1e-4 relative on random shapes", { skip }, () => {
  const rng = new Rng(17);
  for (let trial = 0; trial < 60; trial++) {
    const m = 1 + rng.int(70);
    const k = 1 + rng.int(90);
    const n = 1 + rng.int(70);
    const batch = 1 + rng.int(3);
    const share = rng.int(3); // 0: none, 1: B shared, 2: A shared
    const transA = rng.next() < 0.5;
    const transB = rng.next() < 0.5;
    const accumulate = rng.next() < 0.3;
    const batchA = share === 2 ? 1 : batch;
    const batchB = share === 1 ? 1 : batch;
    const a = rand(batchA * m * k, rng);
    const b = rand(batchB * k * n, rng);
    const init = rand(batch * m * n, rng);
    const outNative = Float32Array.from(init);
    const outTs = Float32Array.from(init);
    const args = { a, b, batchA, batchB, m, k, n, transA, transB, alpha: 0.5, accumulate };
    matmulInto({ ...args, out: outNative }, "native");
    matmulInto({ ...args, out: outTs }, "ts");
    const d = maxRelDiff(outTs, outNative);
    const what = `${batchA}/${batchB}x${m}x${k}x${n} tA=${transA} tB=${transB} acc=${accumulate}`;
    assert.ok(d <= 1e-4, `trial ${trial} [${what}]: relative difference ${d}`);
  }
});

test("native linearInto with a bias matches the TypeScript loop, few rows and many", { skip }, () => {
  const rng = new Rng(5);
  for (const [rows, inF, outF] of [
    [1, 64, 300],
    [16, 96, 512],
    [33, 40, 257],
    [128, 32, 48],
  ] as const) {
    const x = rand(rows * inF, rng);
    const w = rand(outF * inF, rng);
    const bias = rand(outF, rng);
    const ref = new Float32Array(rows * outF);
    const got = new Float32Array(rows * outF);
    linearInto(x, w, ref, rows, inF, outF, "ts", bias);
    linearInto(x, w, got, rows, inF, outF, "native", bias);
    assert.ok(maxRelDiff(ref, got) <= 1e-4, `${rows}x${inF}→${outF}`);
  }
});

test("native swiglu matches the TypeScript op forward and backward, and carries NaN", { skip }, () => {
  const prev = matmulBackend();
  try {
    const run = (backend: "native" | "ts") => {
      setMatmulBackend(backend);
      const gate = Tensor.randn([7, 33], 3, { seed: 1, requiresGrad: true });
      const up = Tensor.randn([7, 33], 1, { seed: 2, requiresGrad: true });
      const y = ops.swiglu(gate, up);
      backward(ops.sum(ops.mul(y, y)));
      return { y: y.data, gg: gate.grad!, gu: up.grad! };
    };
    const a = run("native");
    const b = run("ts");
    assert.ok(maxRelDiff(b.y, a.y) < 1e-5);
    assert.ok(maxRelDiff(b.gg, a.gg) < 1e-5);
    assert.ok(maxRelDiff(b.gu, a.gu) < 1e-5);
    const k = nativeKernels()!;
    const g = Float32Array.of(Number.NaN, -100, 100, 0);
    const u = Float32Array.of(1, 1, 2, 5);
    const y = new Float32Array(4);
    const s = new Float32Array(4);
    k.swiglu(g, u, y, s);
    assert.ok(Number.isNaN(y[0]!), "NaN in, NaN out");
    assert.equal(Math.abs(y[1]!), 0);
    assert.equal(y[2], 200);
    assert.deepEqual([...s.subarray(1)], [0, 1, 0.5]);
  } finally {
    setMatmulBackend(prev);
  }
});

test("the addon rejects arrays that do not match the sizes, and non-Float32Arrays", { skip }, () => {
  const a = new Float32Array(6);
  const b = new Float32Array(12);
  assert.throws(() => blasSgemm(a, b, new Float32Array(7), 1, 1, 2, 3, 4, false, false, 1, 0), /sizes do not match/);
  assert.throws(() => blasSgemm(a, b, new Float32Array(8), 2, 1, 2, 3, 4, false, false, 1, 0), /sizes do not match/);
  assert.throws(
    () =>
      blasSgemm(
        a,
        new Float64Array(12) as unknown as Float32Array,
        new Float32Array(8),
        1,
        1,
        2,
        3,
        4,
        false,
        false,
        1,
        0,
      ),
    /expected a Float32Array/,
  );
  const k = nativeKernels()!;
  assert.throws(() => k.swiglu(a, new Float32Array(5), new Float32Array(6), null), /differ in length/);
});

test("EMLAB_BACKEND names the backend; a bad value is an error naming the variable", () => {
  const run = (backend: string) =>
    spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        'import("./src/tensor/kernels/matmul.ts").then((m) => console.log(m.matmulBackend()))',
      ],
      { encoding: "utf8", env: { ...process.env, EMLAB_BACKEND: backend } },
    );
  const bad = run("cuda");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /EMLAB_BACKEND: expected native, ort or ts, got "cuda"/);
  const ts = run("ts");
  assert.equal(ts.status, 0, ts.stderr);
  assert.equal(ts.stdout.trim(), "ts");
});

test("native cross-entropy matches the TypeScript op (loss and gradient, ignored rows, NaN logits)", { skip }, () => {
  const prev = matmulBackend();
  try {
    const targets = Int32Array.of(3, -100, 0, 7, 2);
    const run = (backend: "native" | "ts", reduction: "mean" | "sum" | "none") => {
      setMatmulBackend(backend);
      const logits = Tensor.randn([5, 11], 4, { seed: 9, requiresGrad: true });
      const loss = ops.crossEntropy(logits, targets, { reduction });
      backward(ops.sum(ops.mul(loss, loss)));
      return { loss: loss.data, grad: logits.grad! };
    };
    for (const reduction of ["mean", "sum", "none"] as const) {
      const a = run("native", reduction);
      const b = run("ts", reduction);
      assert.ok(maxRelDiff(b.loss, a.loss) < 1e-5, reduction);
      assert.ok(maxRelDiff(b.grad, a.grad) < 1e-5, reduction);
      assert.deepEqual([...a.grad.subarray(11, 22)], new Array(11).fill(0), "the ignored row has no gradient");
    }
    setMatmulBackend("native");
    const bad = new Tensor(Float32Array.of(0, Number.NaN, 1, 2), [2, 2]);
    assert.ok(Number.isNaN(ops.crossEntropy(bad, [0, 1]).item()), "a NaN logit gives a NaN loss");
  } finally {
    setMatmulBackend(prev);
  }
});

test("native rmsNorm, rope and strided copies match the TypeScript ops, forward and backward", { skip }, () => {
  const prev = matmulBackend();
  try {
    const run = (backend: "native" | "ts") => {
      setMatmulBackend(backend);
      // Big enough (≥ 4096 elements) that permute and its backward take the native strided path.
      const x = Tensor.randn([2, 3, 40, 32], 1, { seed: 4, requiresGrad: true });
      const w = Tensor.randn([32], 1, { seed: 5, requiresGrad: true });
      const h = ops.rmsNorm(x, w, 1e-6);
      const r = ops.rope(
        h,
        Int32Array.from({ length: 40 }, (_, i) => 3 * i),
        1e4,
      );
      const p = ops.permute(r, [0, 2, 1, 3]);
      const s = ops.sum(ops.mul(p, ops.sum(p, 2, true))); // the permuted layout matters
      backward(s);
      return { y: p.data, gx: x.grad!, gw: w.grad! };
    };
    const a = run("native");
    const b = run("ts");
    assert.ok(maxRelDiff(b.y, a.y) < 1e-5, "forward");
    assert.ok(maxRelDiff(b.gx, a.gx) < 1e-4, "x gradient");
    assert.ok(maxRelDiff(b.gw, a.gw) < 1e-4, "weight gradient");
  } finally {
    setMatmulBackend(prev);
  }
});

test("native AdamW steps and gradient accumulation match the TypeScript loops", { skip }, () => {
  const prev = matmulBackend();
  try {
    const run = (backend: "native" | "ts") => {
      setMatmulBackend(backend);
      const w = Tensor.randn([80, 64], 1, { seed: 21, requiresGrad: true }); // 5,120 ≥ the native threshold
      const opt = new AdamW([w], { lr: 1e-2, weightDecay: 0.1 });
      const x = Tensor.randn([80, 64], 1, { seed: 22 });
      for (let step = 0; step < 3; step++) {
        opt.zeroGrad();
        backward(ops.sum(ops.mul(ops.mul(w, x), w))); // w used twice: its gradient accumulates
        opt.step();
      }
      return w.data;
    };
    const a = run("native");
    const b = run("ts");
    assert.ok(maxRelDiff(b, a) < 1e-5, `relative difference ${maxRelDiff(b, a)}`);
  } finally {
    setMatmulBackend(prev);
  }
});

test("native attention matches the TypeScript op: GQA, causal with a KV prefix, key masks, empty rows", {
  skip,
}, () => {
  const prev = matmulBackend();
  try {
    const cases = [
      { B: 2, H: 4, Hkv: 2, T: 5, S: 5, D: 8, causal: true, mask: false },
      { B: 2, H: 6, Hkv: 2, T: 3, S: 7, D: 16, causal: true, mask: true }, // a cached prefix of 4 keys
      { B: 1, H: 2, Hkv: 2, T: 4, S: 6, D: 4, causal: false, mask: true },
      // Vector blocks with remainders, and enough work (≥ 2^20) for the kernel's second thread.
      { B: 2, H: 4, Hkv: 2, T: 64, S: 67, D: 32, causal: true, mask: true },
    ];
    for (const c of cases) {
      const keyMask = c.mask ? Uint8Array.from({ length: c.B * c.S }, (_, i) => (i % 3 === 1 ? 0 : 1)) : undefined;
      if (keyMask) keyMask.fill(0, 0, c.S); // batch 0 sees no key at all for its first rows
      const run = (backend: "native" | "ts") => {
        setMatmulBackend(backend);
        const q = Tensor.randn([c.B, c.H, c.T, c.D], 1, { seed: 31, requiresGrad: true });
        const k = Tensor.randn([c.B, c.Hkv, c.S, c.D], 1, { seed: 32, requiresGrad: true });
        const v = Tensor.randn([c.B, c.Hkv, c.S, c.D], 1, { seed: 33, requiresGrad: true });
        const y = ops.attention(q, k, v, { causal: c.causal, keyMask });
        const w = Tensor.randn(y.shape, 1, { seed: 34 });
        backward(ops.sum(ops.mul(y, w)));
        return [y.data, q.grad!, k.grad!, v.grad!];
      };
      const a = run("native");
      const b = run("ts");
      for (const [i, name] of ["out", "dq", "dk", "dv"].entries())
        assert.ok(maxRelDiff(b[i]!, a[i]!) < 1e-5, `${JSON.stringify(c)} ${name}: ${maxRelDiff(b[i]!, a[i]!)}`);
    }
  } finally {
    setMatmulBackend(prev);
  }
});

test("kernels split over two threads (≥ 2^18 elements) match plain loops", { skip }, () => {
  const k = nativeKernels()!;
  const rng = new Rng(41);
  const n = 300_001;
  const g = rand(n, rng);
  const u = rand(n, rng);
  const y = new Float32Array(n);
  const s = new Float32Array(n);
  k.swiglu(g, u, y, s);
  const refY = Float32Array.from(g, (gi, i) => (gi * u[i]!) / (1 + Math.exp(-gi)));
  assert.ok(maxRelDiff(refY, y) < 1e-5, "swiglu");
  const gg = new Float32Array(n);
  k.swigluBackward(g, u, s, u, gg, null);
  const refGg = Float32Array.from(g, (gi, i) => {
    const sg = 1 / (1 + Math.exp(-gi));
    return u[i]! * u[i]! * (sg + gi * sg * (1 - sg));
  });
  assert.ok(maxRelDiff(refGg, gg) < 1e-5, "swiglu backward");
  const rows = 101;
  const d = 3001;
  const x = rand(rows * d, rng);
  const lse = new Float32Array(rows);
  k.softmaxLse(x, d, lse, null);
  const refLse = Float32Array.from({ length: rows }, (_, r) => {
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, x[r * d + j]!);
    let sum = 0;
    for (let j = 0; j < d; j++) sum += Math.exp(x[r * d + j]! - m);
    return m + Math.log(sum);
  });
  assert.ok(maxRelDiff(refLse, lse) < 1e-5, "softmaxLse");
  const w = rand(n, rng);
  const w0 = Float32Array.from(w);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  k.adamw(w, g, m, v, 0.01, 0.9, 0.999, 1e-8, 0.999, 10, 1000);
  const refW = Float32Array.from(w0, (wi, i) => {
    const mi = 0.1 * g[i]!;
    const vi = 0.001 * g[i]! * g[i]!;
    return wi * 0.999 - (0.01 * mi * 10) / (Math.sqrt(vi * 1000) + 1e-8);
  });
  assert.ok(maxRelDiff(refW, w) < 1e-5, "adamw");
});
