/**
 * Finite-difference gradient checking for tests: compares the tape's gradients of
 * L = Σ out ⊙ R (R a fixed random weighting) with central differences on every input entry.
 */
import assert from "node:assert/strict";
import { backward, noGrad, ops, type Rng, Tensor } from "../../src/tensor/index.ts";

export function randTensor(shape: number[], seed: number, requiresGrad = true, std = 1): Tensor {
  return Tensor.randn(shape, std, { seed, requiresGrad });
}

/** Random small shape: `rank` dims each in [lo, hi]. */
export function randShape(rng: Rng, rank: number, lo = 1, hi = 4): number[] {
  return Array.from({ length: rank }, () => lo + rng.int(hi - lo + 1));
}

export function gradcheck(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; tol?: number } = {},
): void {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 2e-2;
  for (const x of inputs) x.grad = null;
  const out = f(...inputs);
  const r = Tensor.randn([...out.shape], 1, { seed: 999 });
  const loss = ops.sum(ops.mul(out, r));
  backward(loss);
  const lossAt = () =>
    noGrad(() => {
      const o = f(...inputs);
      let s = 0;
      for (let i = 0; i < o.size; i++) s += o.data[i]! * r.data[i]!;
      return s;
    });
  inputs.forEach((x, xi) => {
    if (!x.requiresGrad) return;
    const analytic = x.grad ?? new Float32Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const orig = x.data[i]!;
      x.data[i] = orig + eps;
      const lp = lossAt();
      x.data[i] = orig - eps;
      const lm = lossAt();
      x.data[i] = orig;
      const numeric = (lp - lm) / (2 * eps);
      const a = analytic[i]!;
      const err = Math.abs(a - numeric) / Math.max(1, Math.abs(a), Math.abs(numeric));
      assert.ok(
        err < tol,
        `${name}: input ${xi} [${x.shape}] entry ${i}: analytic ${a} vs numeric ${numeric} (rel err ${err.toFixed(4)})`,
      );
    }
  });
}
