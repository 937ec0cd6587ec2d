/**
 * Element-wise ops with backward: broadcasting add/sub/mul/div, scalar ops and the unary
 * activations. Each op is one tight loop over Float32Arrays (no per-element allocation).
 */
import { accumulate, needsGrad, numel, record, sameShape, Tensor } from "../tensor.ts";
import { broadcastShapes, expandData, sumToShape } from "./strided.ts";

type BinaryOp = "add" | "sub" | "mul" | "div";

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const outShape = sameShape(a.shape, b.shape) ? a.shape : broadcastShapes(op, a.shape, b.shape);
  const n = numel(outShape);
  const ad = a.size === n ? a.data : expandData(a.data, a.shape, outShape, n);
  const bScalar = b.size === 1 && n !== 1;
  const bd = b.size === n || bScalar ? b.data : expandData(b.data, b.shape, outShape, n);
  const o = new Float32Array(n);
  if (bScalar) {
    const s = bd[0]!;
    if (op === "add") for (let i = 0; i < n; i++) o[i] = ad[i]! + s;
    else if (op === "sub") for (let i = 0; i < n; i++) o[i] = ad[i]! - s;
    else if (op === "mul") for (let i = 0; i < n; i++) o[i] = ad[i]! * s;
    else for (let i = 0; i < n; i++) o[i] = ad[i]! / s;
  } else if (op === "add") for (let i = 0; i < n; i++) o[i] = ad[i]! + bd[i]!;
  else if (op === "sub") for (let i = 0; i < n; i++) o[i] = ad[i]! - bd[i]!;
  else if (op === "mul") for (let i = 0; i < n; i++) o[i] = ad[i]! * bd[i]!;
  else for (let i = 0; i < n; i++) o[i] = ad[i]! / bd[i]!;
  const out = new Tensor(o, [...outShape]);
  if (!needsGrad(a, b)) return out;
  const bAt = bScalar ? () => bd[0]! : null;
  return record(out, [a, b], (g) => {
    if (a.requiresGrad) {
      let ga: Float32Array;
      if (op === "add" || op === "sub") ga = g;
      else {
        ga = new Float32Array(n);
        if (bAt) {
          const s = bAt();
          if (op === "mul") for (let i = 0; i < n; i++) ga[i] = g[i]! * s;
          else for (let i = 0; i < n; i++) ga[i] = g[i]! / s;
        } else if (op === "mul") for (let i = 0; i < n; i++) ga[i] = g[i]! * bd[i]!;
        else for (let i = 0; i < n; i++) ga[i] = g[i]! / bd[i]!;
      }
      // The tape drops g after this closure, so an input that is the only one needing it
      // may keep it as its gradient instead of a copy.
      accumulate(a, a.size === n ? ga : sumToShape(ga, outShape, a.shape, a.size), ga !== g || !b.requiresGrad);
    }
    if (b.requiresGrad) {
      if (op === "add" && b.size === n) {
        accumulate(b, g, true); // a (if it needed g) took a copy above
        return;
      }
      const gb = new Float32Array(n);
      if (op === "add") gb.set(g);
      else if (op === "sub") for (let i = 0; i < n; i++) gb[i] = -g[i]!;
      else if (op === "mul") for (let i = 0; i < n; i++) gb[i] = g[i]! * ad[i]!;
      else if (bAt) {
        const s = bAt();
        for (let i = 0; i < n; i++) gb[i] = (-g[i]! * ad[i]!) / (s * s);
      } else for (let i = 0; i < n; i++) gb[i] = (-g[i]! * o[i]!) / bd[i]!;
      accumulate(b, b.size === n ? gb : sumToShape(gb, outShape, b.shape, b.size), true);
    }
  });
}

/** a + b with broadcasting. */
export const add = (a: Tensor, b: Tensor) => binary("add", a, b);
/** a − b with broadcasting. */
export const sub = (a: Tensor, b: Tensor) => binary("sub", a, b);
/** a · b (element-wise) with broadcasting. */
export const mul = (a: Tensor, b: Tensor) => binary("mul", a, b);
/** a / b with broadcasting. */
export const div = (a: Tensor, b: Tensor) => binary("div", a, b);

/** x · s + c for scalars s, c (scale, shift, negate in one op). */
export function affine(x: Tensor, s: number, c = 0): Tensor {
  const n = x.size;
  const o = new Float32Array(n);
  const d = x.data;
  for (let i = 0; i < n; i++) o[i] = d[i]! * s + c;
  return record(new Tensor(o, x.shape), [x], (g) => {
    const gx = new Float32Array(n);
    for (let i = 0; i < n; i++) gx[i] = g[i]! * s;
    accumulate(x, gx, true);
  });
}
export const scale = (x: Tensor, s: number) => affine(x, s, 0);
export const addScalar = (x: Tensor, c: number) => affine(x, 1, c);
export const neg = (x: Tensor) => affine(x, -1, 0);

/**
 * Defines a unary op from its forward loop body and its derivative, expressed through the
 * input x and output y (whichever is cheaper).
 */
function unary(
  x: Tensor,
  forward: (src: Float32Array, dst: Float32Array) => void,
  derivative: (x: Float32Array, y: Float32Array, g: Float32Array, gx: Float32Array) => void,
): Tensor {
  const o = new Float32Array(x.size);
  forward(x.data, o);
  return record(new Tensor(o, x.shape), [x], (g) => {
    const gx = new Float32Array(x.size);
    derivative(x.data, o, g, gx);
    accumulate(x, gx, true);
  });
}

export const exp = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = Math.exp(s[i]!);
    },
    (_x, y, g, gx) => {
      for (let i = 0; i < y.length; i++) gx[i] = g[i]! * y[i]!;
    },
  );

export const log = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = Math.log(s[i]!);
    },
    (xs, _y, g, gx) => {
      for (let i = 0; i < xs.length; i++) gx[i] = g[i]! / xs[i]!;
    },
  );

export const sqrt = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = Math.sqrt(s[i]!);
    },
    (_x, y, g, gx) => {
      for (let i = 0; i < y.length; i++) gx[i] = (0.5 * g[i]!) / y[i]!;
    },
  );

export const square = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = s[i]! * s[i]!;
    },
    (xs, _y, g, gx) => {
      for (let i = 0; i < xs.length; i++) gx[i] = 2 * g[i]! * xs[i]!;
    },
  );

/** x^p for a scalar exponent p. */
export const pow = (x: Tensor, p: number) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = s[i]! ** p;
    },
    (xs, _y, g, gx) => {
      for (let i = 0; i < xs.length; i++) gx[i] = g[i]! * p * xs[i]! ** (p - 1);
    },
  );

export const tanh = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = Math.tanh(s[i]!);
    },
    (_x, y, g, gx) => {
      for (let i = 0; i < y.length; i++) gx[i] = g[i]! * (1 - y[i]! * y[i]!);
    },
  );

export const sigmoid = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = 1 / (1 + Math.exp(-s[i]!));
    },
    (_x, y, g, gx) => {
      for (let i = 0; i < y.length; i++) gx[i] = g[i]! * y[i]! * (1 - y[i]!);
    },
  );

/** SiLU (swish): x · σ(x), the activation of Llama/Qwen MLPs. */
export const silu = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = s[i]! / (1 + Math.exp(-s[i]!));
    },
    (xs, _y, g, gx) => {
      for (let i = 0; i < xs.length; i++) {
        const sg = 1 / (1 + Math.exp(-xs[i]!));
        gx[i] = g[i]! * sg * (1 + xs[i]! * (1 - sg));
      }
    },
  );

export const relu = (x: Tensor) =>
  unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) d[i] = Math.max(s[i]!, 0);
    },
    (xs, _y, g, gx) => {
      for (let i = 0; i < xs.length; i++) gx[i] = xs[i]! > 0 ? g[i]! : 0;
    },
  );

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * GELU. approximate "tanh" is GPT-2's gelu_new (PyTorch `approximate="tanh"`); "none" is the
 * exact erf form (PyTorch's default).
 */
export function gelu(x: Tensor, approximate: "tanh" | "none" = "tanh"): Tensor {
  if (approximate === "none") {
    return unary(
      x,
      (s, d) => {
        for (let i = 0; i < s.length; i++) d[i] = 0.5 * s[i]! * (1 + erf(s[i]! * INV_SQRT_2));
      },
      (xs, _y, g, gx) => {
        for (let i = 0; i < xs.length; i++) {
          const v = xs[i]!;
          const cdf = 0.5 * (1 + erf(v * INV_SQRT_2));
          gx[i] = g[i]! * (cdf + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
        }
      },
    );
  }
  return unary(
    x,
    (s, d) => {
      for (let i = 0; i < s.length; i++) {
        const v = s[i]!;
        d[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      }
    },
    (xs, _y, g, gx) => {
      for (let i = 0; i < xs.length; i++) {
        const v = xs[i]!;
        const t = Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
        const dt = (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * v * v);
        gx[i] = g[i]! * (0.5 * (1 + t) + 0.5 * v * dt);
      }
    },
  );
}

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for float32. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}
