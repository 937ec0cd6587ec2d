/**
 * Matrix products with backward: `matmul` (batched, optional transposes) and `linear`
 * (y = x·Wᵀ + b, Hugging Face's weight layout [out, in]). The FLOPs go to the fast kernel
 * (onnxruntime's MLAS by default, see kernels/matmul.ts).
 */
import { type ComputeDtype, computeDtype, linearBf16Into, matmulBf16Into } from "../kernels/bf16.ts";
import { linearInto, type MatmulArgs, matmulInto } from "../kernels/matmul.ts";
import { accumulate, fmtShape, isGradEnabled, needsGrad, numel, record, Tensor } from "../tensor.ts";

/** matmulInto in the compute dtype `dt` (bf16: rounded inputs, fp32 sums; kernels/bf16.ts). */
function mm(args: MatmulArgs, dt: ComputeDtype): void {
  if (dt === "bf16") matmulBf16Into(args);
  else matmulInto(args);
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Scale applied to the product (free inside the kernel). */
  alpha?: number;
}

interface Dims {
  batchShape: number[];
  batchA: number;
  batchB: number;
  m: number;
  k: number;
  n: number;
}

function dims(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Dims {
  const bad = (why: string) =>
    new Error(
      `matmul: shapes ${fmtShape(a.shape)}${ta ? "ᵀ" : ""} and ${fmtShape(b.shape)}${tb ? "ᵀ" : ""} do not match (${why})`,
    );
  if (a.rank < 2 || b.rank < 2) throw bad("both operands need at least 2 dims");
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const m = ta ? ac : ar;
  const k = ta ? ar : ac;
  const kb = tb ? bc : br;
  const n = tb ? br : bc;
  if (k !== kb) throw bad(`inner dims ${k} ≠ ${kb}`);
  const bsA = a.shape.slice(0, -2);
  const bsB = b.shape.slice(0, -2);
  let batchShape: number[];
  if (bsA.length === 0) batchShape = [...bsB];
  else if (bsB.length === 0) batchShape = [...bsA];
  else if (bsA.length === bsB.length && bsA.every((d, i) => d === bsB[i])) batchShape = [...bsA];
  else throw bad("batch dims must be equal, or one operand must be 2-D");
  return { batchShape, batchA: numel(bsA), batchB: numel(bsB), m, k, n };
}

/**
 * alpha · op(a) · op(b) over the last two dims; batch dims equal, or one operand 2-D.
 * @example matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(d) }) // [B,T,d]·[B,T,d]ᵀ
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const ta = !!opts.transA;
  const tb = !!opts.transB;
  const alpha = opts.alpha ?? 1;
  const d = dims(a, b, ta, tb);
  const dt = computeDtype(); // the backward's products use the forward's dtype
  const out = new Float32Array(Math.max(d.batchA, d.batchB) * d.m * d.n);
  product(a.data, b.data, out, d, ta, tb, alpha, dt);
  const y = new Tensor(out, [...d.batchShape, d.m, d.n]);
  if (!needsGrad(a, b)) return y;
  return record(y, [a, b], (g) => {
    const batch = Math.max(d.batchA, d.batchB);
    if (a.requiresGrad) {
      // dA = g·op(B)ᵀ, or op(B)·gᵀ when A was transposed; summed over batch if A was 2-D.
      const ga = new Float32Array(batch * d.m * d.k);
      const gd: Dims = { ...d, batchA: batch, batchB: d.batchB };
      if (!ta) product(g, b.data, ga, { ...gd, m: d.m, k: d.n, n: d.k }, false, !tb, alpha, dt);
      else
        product(b.data, g, ga, { ...gd, batchA: d.batchB, batchB: batch, m: d.k, k: d.n, n: d.m }, tb, true, alpha, dt);
      accumulate(a, d.batchA === batch ? ga : sumBatch(ga, batch, d.m * d.k), true);
    }
    if (b.requiresGrad) {
      // dB = op(A)ᵀ·g, or gᵀ·op(A) when B was transposed.
      const gb = new Float32Array(batch * d.k * d.n);
      if (d.batchB === 1 && batch > 1 && !ta) {
        // B shared across the batch: one 2-D product over the flattened batch (no reduction pass).
        const flat: Dims = { ...d, batchA: 1, batchB: 1, m: batch * d.m };
        const gb2 = new Float32Array(d.k * d.n);
        if (!tb) product(a.data, g, gb2, { ...flat, m: d.k, k: batch * d.m, n: d.n }, true, false, alpha, dt);
        else product(g, a.data, gb2, { ...flat, m: d.n, k: batch * d.m, n: d.k }, true, false, alpha, dt);
        accumulate(b, gb2, true);
        return;
      }
      const gd: Dims = { ...d, batchA: d.batchA, batchB: batch };
      if (!tb) product(a.data, g, gb, { ...gd, m: d.k, k: d.m, n: d.n }, !ta, false, alpha, dt);
      else
        product(g, a.data, gb, { ...gd, batchA: batch, batchB: d.batchA, m: d.n, k: d.m, n: d.k }, true, ta, alpha, dt);
      accumulate(b, d.batchB === batch ? gb : sumBatch(gb, batch, d.k * d.n), true);
    }
  });
}

function product(
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  d: Dims,
  ta: boolean,
  tb: boolean,
  alpha: number,
  dt: ComputeDtype,
) {
  // A batched non-transposed A times a shared B is one tall 2-D product.
  if (d.batchB === 1 && d.batchA > 1 && !ta) {
    mm(
      {
        a,
        b,
        out,
        batchA: 1,
        batchB: 1,
        m: d.batchA * d.m,
        k: d.k,
        n: d.n,
        transA: false,
        transB: tb,
        alpha,
      },
      dt,
    );
    return;
  }
  mm({ a, b, out, batchA: d.batchA, batchB: d.batchB, m: d.m, k: d.k, n: d.n, transA: ta, transB: tb, alpha }, dt);
}

function sumBatch(x: Float32Array, batch: number, size: number): Float32Array {
  const o = new Float32Array(size);
  for (let bi = 0; bi < batch; bi++) {
    const base = bi * size;
    for (let i = 0; i < size; i++) o[i]! += x[base + i]!;
  }
  return o;
}

/**
 * y = x·Wᵀ + b over the last dim: x [..., in], weight [out, in], bias [out] → [..., out].
 * @example const h = linear(x, layer.qProj.weight, layer.qProj.bias);
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.rank !== 2) throw new Error(`linear: weight must be [out, in], got ${fmtShape(weight.shape)}`);
  const [outF, inF] = weight.shape as [number, number];
  if (x.shape[x.rank - 1] !== inF) {
    throw new Error(`linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(weight.shape)} (in = ${inF})`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) {
    throw new Error(`linear: bias ${fmtShape(bias.shape)} does not match weight ${fmtShape(weight.shape)}`);
  }
  const rows = x.size / inF;
  const out = new Float32Array(rows * outF);
  const dt = computeDtype();
  // bf16: the weight's packed copy is cached when it gets no gradient here (inference, a
  // frozen base under LoRA); optimisers drop the copies of what they update.
  const frozen = !(isGradEnabled() && weight.requiresGrad);
  if (dt === "bf16") linearBf16Into(x.data, weight.data, out, rows, inF, outF, bias?.data, frozen);
  else linearInto(x.data, weight.data, out, rows, inF, outF, undefined, bias?.data);
  const y = new Tensor(out, [...x.shape.slice(0, -1), outF]);
  if (!needsGrad(x, weight, bias)) return y;
  return record(y, [x, weight, bias], (g) => {
    if (x.requiresGrad) {
      const gx = new Float32Array(x.size); // [rows, in] = g [rows, out] · W [out, in]
      mm({ a: g, b: weight.data, out: gx, batchA: 1, batchB: 1, m: rows, k: outF, n: inF }, dt);
      accumulate(x, gx, true);
    }
    if (weight.requiresGrad) {
      // dW [out, in] = gᵀ [out, rows] · x [rows, in], accumulated straight into .grad.
      const fresh = weight.grad === null;
      if (fresh) weight.grad = new Float32Array(weight.size);
      mm(
        {
          a: g,
          b: x.data,
          out: weight.grad!,
          batchA: 1,
          batchB: 1,
          m: outF,
          k: rows,
          n: inF,
          transA: true,
          accumulate: !fresh,
        },
        dt,
      );
    }
    if (bias?.requiresGrad) {
      const gb = new Float32Array(outF);
      for (let r = 0; r < rows; r++) {
        const base = r * outF;
        for (let j = 0; j < outF; j++) gb[j]! += g[base + j]!;
      }
      accumulate(bias, gb, true);
    }
  });
}
