/** Reductions with backward: sum / mean / max over axes, softmax and log-softmax. */
import { accumulate, fmtShape, numel, record, Tensor } from "../tensor.ts";

function normAxes(op: string, axes: number | number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = (Array.isArray(axes) ? axes : [axes]).map((a) => (a < 0 ? a + rank : a));
  for (const a of list) if (a < 0 || a >= rank) throw new Error(`${op}: axis out of range for rank ${rank}`);
  return [...new Set(list)].sort((a, b) => a - b);
}

/** [outer, d, inner] decomposition of a reduction over one axis. */
function split(shape: readonly number[], ax: number) {
  return { outer: numel(shape.slice(0, ax)), d: shape[ax]!, inner: numel(shape.slice(ax + 1)) };
}

function sumOne(x: Tensor, ax: number, keepDims: boolean): Tensor {
  const { outer, d, inner } = split(x.shape, ax);
  const o = new Float32Array(outer * inner);
  const src = x.data;
  for (let p = 0; p < outer; p++) {
    const ob = p * inner;
    for (let j = 0; j < d; j++) {
      const ib = (p * d + j) * inner;
      for (let q = 0; q < inner; q++) o[ob + q]! += src[ib + q]!;
    }
  }
  const shape = keepDims ? x.shape.map((s, i) => (i === ax ? 1 : s)) : x.shape.filter((_, i) => i !== ax);
  return record(new Tensor(o, shape), [x], (g) => {
    const gx = new Float32Array(x.size);
    for (let p = 0; p < outer; p++)
      for (let j = 0; j < d; j++) gx.set(g.subarray(p * inner, (p + 1) * inner), (p * d + j) * inner);
    accumulate(x, gx, true);
  });
}

/** Sum over the given axes (all by default). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const list = normAxes("sum", axes, x.rank);
  if (list.length === x.rank && !keepDims) {
    // Full reduction: one pass in float64.
    let s = 0;
    const d = x.data;
    for (let i = 0; i < d.length; i++) s += d[i]!;
    return record(new Tensor(Float32Array.of(s), []), [x], (g) => {
      accumulate(x, new Float32Array(x.size).fill(g[0]!), true);
    });
  }
  let out = x;
  for (let i = list.length - 1; i >= 0; i--) out = sumOne(out, list[i]!, keepDims);
  return out;
}

/** Mean over the given axes (all by default). */
export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const list = normAxes("mean", axes, x.rank);
  const count = list.reduce((c, a) => c * x.shape[a]!, 1);
  const s = sum(x, list, keepDims);
  const o = new Float32Array(s.size);
  for (let i = 0; i < o.length; i++) o[i] = s.data[i]! / count;
  return record(new Tensor(o, s.shape), [s], (g) => {
    const gs = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) gs[i] = g[i]! / count;
    accumulate(s, gs, true);
  });
}

/** Max over one axis; the gradient flows to the (first) arg-max. */
export function max(x: Tensor, axis = -1, keepDims = false): Tensor {
  const ax = normAxes("max", axis, x.rank)[0]!;
  const { outer, d, inner } = split(x.shape, ax);
  if (d === 0) throw new Error(`max: empty axis in ${fmtShape(x.shape)}`);
  const o = new Float32Array(outer * inner);
  const arg = new Int32Array(outer * inner);
  const src = x.data;
  for (let p = 0; p < outer; p++)
    for (let q = 0; q < inner; q++) {
      let best = Number.NEGATIVE_INFINITY;
      let bi = 0;
      for (let j = 0; j < d; j++) {
        const v = src[(p * d + j) * inner + q]!;
        if (v > best) {
          best = v;
          bi = j;
        }
      }
      o[p * inner + q] = best;
      arg[p * inner + q] = bi;
    }
  const shape = keepDims ? x.shape.map((s, i) => (i === ax ? 1 : s)) : x.shape.filter((_, i) => i !== ax);
  return record(new Tensor(o, shape), [x], (g) => {
    const gx = new Float32Array(x.size);
    for (let p = 0; p < outer; p++)
      for (let q = 0; q < inner; q++) gx[(p * d + arg[p * inner + q]!) * inner + q] = g[p * inner + q]!;
    accumulate(x, gx, true);
  });
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  const d = x.shape[x.rank - 1]!;
  const rows = x.size / d;
  const y = new Float32Array(x.size);
  softmaxRows(x.data, y, rows, d);
  return record(new Tensor(y, x.shape), [x], (g) => {
    // dx = y ⊙ (g − Σ g·y)
    const gx = new Float32Array(x.size);
    for (let r = 0; r < rows; r++) {
      const b = r * d;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += g[b + j]! * y[b + j]!;
      for (let j = 0; j < d; j++) gx[b + j] = y[b + j]! * (g[b + j]! - dot);
    }
    accumulate(x, gx, true);
  });
}

/** Row-wise stable softmax of [rows, d] from src into dst (dst may equal src). */
export function softmaxRows(src: Float32Array, dst: Float32Array, rows: number, d: number): void {
  for (let r = 0; r < rows; r++) {
    const b = r * d;
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < d; j++) if (src[b + j]! > m) m = src[b + j]!;
    let s = 0;
    for (let j = 0; j < d; j++) {
      const e = Math.exp(src[b + j]! - m);
      dst[b + j] = e;
      s += e;
    }
    const inv = 1 / s;
    for (let j = 0; j < d; j++) dst[b + j]! *= inv;
  }
}

/** Log-softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  const d = x.shape[x.rank - 1]!;
  const rows = x.size / d;
  const y = new Float32Array(x.size);
  const src = x.data;
  for (let r = 0; r < rows; r++) {
    const b = r * d;
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < d; j++) if (src[b + j]! > m) m = src[b + j]!;
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.exp(src[b + j]! - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < d; j++) y[b + j] = src[b + j]! - lse;
  }
  return record(new Tensor(y, x.shape), [x], (g) => {
    // dx = g − softmax · Σ g
    const gx = new Float32Array(x.size);
    for (let r = 0; r < rows; r++) {
      const b = r * d;
      let gs = 0;
      for (let j = 0; j < d; j++) gs += g[b + j]!;
      for (let j = 0; j < d; j++) gx[b + j] = g[b + j]! - Math.exp(y[b + j]!) * gs;
    }
    accumulate(x, gx, true);
  });
}
