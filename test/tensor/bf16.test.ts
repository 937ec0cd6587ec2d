/**
 * The bfloat16 compute path (src/tensor/kernels/bf16.ts, native/bf16_gemm.c):
 * - rounding to bf16 is round-to-nearest-even (ties both ways, NaN, ±Inf);
 * - on every backend, a bf16 product equals the exact product of the bf16-rounded inputs
 *   up to fp32 summation (1e-5 relative) — which fails for truncation or no rounding — and
 *   stays within bf16's input error of the fp32 product (2⁻⁷ of Σ|a·b| per element), on
 *   random and edge shapes (1, odd, around 16/32, past the kernel's cache blocks);
 * - the native kernel, and its emulated fallback (EMLAB_BF16=emulate, the path of CPUs
 *   without avx512_bf16), agree;
 * - a linear layer's cached bf16 weight follows in-place updates (optimiser, markWeightsChanged);
 * - a model with dtype "bf16" keeps the fp32 model's top-1 on the parity fixtures' prompts
 *   and its gradients point the same way.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/model/checkpoint.ts";
import {
  AdamW,
  backward,
  markWeightsChanged,
  noGrad,
  ops,
  Rng,
  roundBf16,
  Tensor,
  withComputeDtype,
} from "../../src/tensor/index.ts";
import { bf16Hardware, matmulBf16Into } from "../../src/tensor/kernels/bf16.ts";
import { type MatmulBackend, matmulBackend } from "../../src/tensor/kernels/matmul.ts";
import { blasAvailable } from "../../src/tensor/kernels/native.ts";
import { ortAvailable } from "../../src/tensor/kernels/ort.ts";

const backends: MatmulBackend[] = [
  "ts",
  ...(ortAvailable() ? ["ort" as const] : []),
  ...(blasAvailable() ? ["native" as const] : []),
];

const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const fromBits = (u: number) => new Float32Array(Uint32Array.of(u).buffer)[0]!;

test("roundBf16 rounds to nearest, ties to even, and keeps NaN and ±Inf", () => {
  const cases: [number, number][] = [
    [0x3f800000, 0x3f800000], // 1 exactly
    [0x3f808000, 0x3f800000], // tie, even below: down
    [0x3f818000, 0x3f820000], // tie, odd below: up
    [0x3f808001, 0x3f810000], // just above the tie: up
    [0xbf80ffff, 0xbf810000], // negative: magnitude rounds
    [0x7f7fffff, 0x7f800000], // the largest float rounds to +Inf
    [0x7f800000, 0x7f800000], // +Inf
    [0xff800000, 0xff800000], // −Inf
  ];
  const r = roundBf16(Float32Array.from(cases.map(([u]) => fromBits(u))));
  for (const [i, [, want]] of cases.entries()) {
    assert.equal(bits(r[i]!), want >>> 0, `case ${i}: ${bits(r[i]!).toString(16)}`);
  }
  assert.ok(Number.isNaN(roundBf16(Float32Array.of(Number.NaN))[0]));
  assert.ok(Number.isNaN(roundBf16(Float32Array.of(fromBits(0x7f800001)))[0]), "a NaN with a low payload stays NaN");
});

function rand(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Exact (float64) alpha·op(A)·op(B) (+ init) per batch, and Σ|alpha·a·b| per element. */
function reference(
  a: Float32Array,
  b: Float32Array,
  init: Float32Array | null,
  s: { batchA: number; batchB: number; m: number; k: number; n: number; ta: boolean; tb: boolean; alpha: number },
): { y: Float64Array; mag: Float64Array } {
  const batch = Math.max(s.batchA, s.batchB);
  const { m, k, n } = s;
  const y = new Float64Array(batch * m * n);
  const mag = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    const ao = (s.batchA === 1 ? 0 : bi) * m * k;
    const bo = (s.batchB === 1 ? 0 : bi) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let acc = 0;
        let abs = 0;
        for (let p = 0; p < k; p++) {
          const av = s.ta ? a[ao + p * m + i]! : a[ao + i * k + p]!;
          const bv = s.tb ? b[bo + j * k + p]! : b[bo + p * n + j]!;
          acc += av * bv;
          abs += Math.abs(av * bv);
        }
        const o = bi * m * n + i * n + j;
        y[o] = s.alpha * acc + (init ? init[o]! : 0);
        mag[o] = Math.abs(s.alpha) * abs + 1e-30;
      }
  }
  return { y, mag };
}

const EDGE = [1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 65, 100];

test("bf16 matmul = exact product of bf16-rounded inputs (1e-5) and near fp32 (2⁻⁷ Σ|ab|), every backend", () => {
  const rng = new Rng(5);
  for (const which of backends) {
    for (let trial = 0; trial < 40; trial++) {
      const pick = () => (rng.next() < 0.6 ? EDGE[rng.int(EDGE.length)]! : 1 + rng.int(140));
      const m = pick();
      const n = pick();
      // some reductions span several of the kernel's 256-wide k blocks, some are odd
      const k = trial % 5 === 0 ? 257 + rng.int(300) : pick();
      const batch = trial % 4 === 0 ? 1 + rng.int(3) : 1;
      const share = batch > 1 ? rng.int(3) : 0; // 0: none, 1: B shared, 2: A shared
      const batchA = share === 2 ? 1 : batch;
      const batchB = share === 1 ? 1 : batch;
      const ta = rng.next() < 0.4;
      const tb = rng.next() < 0.5;
      const accumulate = rng.next() < 0.3;
      const alpha = rng.next() < 0.5 ? 1 : -0.75;
      const a = rand(batchA * m * k, rng);
      const b = rand(batchB * k * n, rng);
      const init = rand(batch * m * n, rng);
      const out = accumulate ? Float32Array.from(init) : new Float32Array(batch * m * n).fill(Number.NaN);
      matmulBf16Into({ a, b, out, batchA, batchB, m, k, n, transA: ta, transB: tb, alpha, accumulate }, which);
      const s = { batchA, batchB, m, k, n, ta, tb, alpha };
      const exact = reference(roundBf16(a), roundBf16(b), accumulate ? init : null, s);
      const fp32 = reference(a, b, accumulate ? init : null, s);
      const what = `${which} ${batchA}/${batchB}x${m}x${k}x${n} tA=${ta} tB=${tb} acc=${accumulate}`;
      for (let i = 0; i < out.length; i++) {
        const e1 = Math.abs(out[i]! - exact.y[i]!) / (exact.mag[i]! + (accumulate ? Math.abs(init[i]!) : 0));
        assert.ok(e1 <= 1e-5, `${what} [${i}]: ${out[i]} vs rounded-input product ${exact.y[i]} (rel ${e1})`);
        const e2 = Math.abs(out[i]! - fp32.y[i]!) / (fp32.mag[i]! + (accumulate ? Math.abs(init[i]!) : 0));
        assert.ok(e2 <= 2 ** -7, `${what} [${i}]: ${out[i]} vs fp32 ${fp32.y[i]} (rel ${e2})`);
      }
    }
  }
});

test("bf16 products of large shapes stay within bf16 error of fp32 (both threads, many blocks)", () => {
  const rng = new Rng(9);
  const [m, k, n] = [301, 600, 257];
  const a = rand(m * k, rng);
  const b = rand(n * k, rng);
  const out = new Float32Array(m * n);
  matmulBf16Into({ a, b, out, batchA: 1, batchB: 1, m, k, n, transB: true });
  const exact = reference(roundBf16(a), roundBf16(b), null, {
    batchA: 1,
    batchB: 1,
    m,
    k,
    n,
    ta: false,
    tb: true,
    alpha: 1,
  });
  let worst = 0;
  for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - exact.y[i]!) / exact.mag[i]!);
  assert.ok(worst <= 1e-5, `${matmulBackend()}: worst relative error ${worst}`);
});

test("the native bf16 kernel and its emulated fallback (EMLAB_BF16=emulate) agree", { skip: !blasAvailable() }, () => {
  const script = `
    import { Rng } from "./src/tensor/index.ts";
    import { bf16Hardware, matmulBf16Into } from "./src/tensor/kernels/bf16.ts";
    const rng = new Rng(3);
    const [m, k, n] = [37, 301, 45];
    const a = Float32Array.from({ length: m * k }, () => rng.normal());
    const b = Float32Array.from({ length: k * n }, () => rng.normal());
    const out = new Float32Array(m * n);
    matmulBf16Into({ a, b, out, batchA: 1, batchB: 1, m, k, n, transA: false, transB: false, alpha: 0.5 }, "native");
    console.log(JSON.stringify({ hw: bf16Hardware(), out: Array.from(out) }));`;
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      env: { ...process.env, ...env },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { hw: boolean; out: number[] };
  };
  const emulated = run({ EMLAB_BF16: "emulate" });
  const native = run({});
  assert.equal(emulated.hw, false, "EMLAB_BF16=emulate turns the vdpbf16ps path off");
  assert.equal(native.hw, bf16Hardware());
  let worst = 0;
  for (let i = 0; i < native.out.length; i++)
    worst = Math.max(worst, Math.abs(native.out[i]! - emulated.out[i]!) / (Math.abs(emulated.out[i]!) + 1));
  assert.ok(worst <= 1e-5, `worst difference ${worst}`);
});

test("a bf16 linear layer's cached weight follows in-place updates", () => {
  const rng = new Rng(11);
  const x = new Tensor(rand(6 * 40, rng), [6, 40]);
  const w = new Tensor(rand(70 * 40, rng), [70, 40], true);
  const run = () => noGrad(() => withComputeDtype("bf16", () => ops.linear(x, w)));
  const before = run().data;
  const direct = withComputeDtype("bf16", () => ops.linear(x, w.detach())).data;
  assert.deepEqual(Array.from(run().data), Array.from(before), "the cached copy gives the same result");
  for (let i = 0; i < before.length; i++)
    assert.ok(Math.abs(before[i]! - direct[i]!) <= 1e-5 * (1 + Math.abs(direct[i]!)));
  // an optimiser step writes the weight in place: the next forward must see it
  w.grad = new Float32Array(w.size).fill(1);
  new AdamW([w], { lr: 0.5, weightDecay: 0 }).step();
  const afterStep = run().data;
  const expect = noGrad(() =>
    withComputeDtype("bf16", () => ops.linear(x, new Tensor(Float32Array.from(w.data), w.shape))),
  ).data;
  assert.deepEqual(Array.from(afterStep), Array.from(expect));
  assert.notDeepEqual(Array.from(afterStep), Array.from(before));
  // a hand-written update is seen after markWeightsChanged
  w.data.fill(0);
  markWeightsChanged([w.data]);
  assert.ok(run().data.every((v) => v === 0));
});

const FIXTURES = fileURLToPath(new URL("../fixtures/models/", import.meta.url));

test("dtype bf16 keeps the fp32 model's top-1 on the parity fixtures' prompts (≥ 99 %)", () => {
  let agree = 0;
  let total = 0;
  for (const name of ["llama-gqa", "qwen2", "mistral", "gpt2"]) {
    const model = loadModel(`${FIXTURES}${name}`);
    const expected = JSON.parse(readFileSync(`${FIXTURES}${name}/expected.json`, "utf8"));
    const ids = Int32Array.from((expected.input_ids as number[][]).flat());
    const [B, T] = [expected.input_ids.length, expected.input_ids[0].length];
    const f32 = noGrad(() => model.forward(ids, B, T)).data;
    model.setDtype("bf16");
    const b16 = noGrad(() => model.forward(ids, B, T)).data;
    model.setDtype("fp32");
    const V = model.config.vocab;
    let worst = 0;
    for (let r = 0; r < B * T; r++) {
      let i32 = 0;
      let i16 = 0;
      for (let v = 1; v < V; v++) {
        if (f32[r * V + v]! > f32[r * V + i32]!) i32 = v;
        if (b16[r * V + v]! > b16[r * V + i16]!) i16 = v;
      }
      agree += i32 === i16 ? 1 : 0;
      total++;
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(f32[r * V + v]! - b16[r * V + v]!));
    }
    assert.ok(worst > 0, `${name}: bf16 logits are not identical to fp32 (the path is taken)`);
    assert.ok(worst < 0.05, `${name}: logits differ by up to ${worst}`);
  }
  assert.ok(agree / total >= 0.99, `top-1 agreement ${agree}/${total}`);
});

test("a bf16 training step's gradients follow the fp32 ones (cosine ≥ 0.999 per weight)", () => {
  const model = loadModel(`${FIXTURES}llama-gqa`);
  const rng = new Rng(2);
  const [B, T] = [2, 12];
  const ids = Int32Array.from({ length: B * T }, () => rng.int(model.config.vocab));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(model.config.vocab));
  const grads = (dtype: "fp32" | "bf16") => {
    model.setDtype(dtype);
    for (const p of model.params.values()) p.grad = null;
    backward(ops.crossEntropy(model.forward(ids, B, T), targets));
    return new Map([...model.params].map(([k, p]) => [k, Float32Array.from(p.grad!)]));
  };
  const g32 = grads("fp32");
  const g16 = grads("bf16");
  model.setDtype("fp32");
  for (const [name, a] of g32) {
    const b = g16.get(name)!;
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    if (na === 0) continue;
    const cos = dot / Math.sqrt(na * nb);
    assert.ok(cos >= 0.999, `${name}: cosine ${cos}`);
  }
});
