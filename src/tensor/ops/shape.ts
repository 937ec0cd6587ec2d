/** Shape ops with backward: reshape, permute/transpose, slice, concat, gather (embedding). */
import { accumulate, fmtShape, numel, record, type Shape, Tensor } from "../tensor.ts";
import { contiguousStrides, stridedAccumulate, stridedCopy } from "./strided.ts";

/** Same data, new shape (one dim may be -1). Shares the buffer: no copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    const known = s.reduce((acc, d, i) => (i === infer ? acc : acc * d), 1);
    s[infer] = known === 0 ? 0 : x.size / known;
  }
  if (!s.every((d) => Number.isInteger(d) && d >= 0) || numel(s) !== x.size) {
    throw new Error(`reshape: cannot view ${fmtShape(x.shape)} (${x.size} elements) as ${fmtShape(shape)}`);
  }
  return record(new Tensor(x.data, s), [x], (g) => accumulate(x, g, true)); // the tape drops g after this
}

function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Reorders dims: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const r = x.rank;
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(`permute: [${perm}] is not a permutation of the dims of ${fmtShape(x.shape)}`);
  }
  const inStrides = contiguousStrides(x.shape);
  const outShape = perm.map((p) => x.shape[p]!);
  const o = new Float32Array(x.size);
  stridedCopy(
    x.data,
    0,
    perm.map((p) => inStrides[p]!),
    o,
    outShape,
  );
  return record(new Tensor(o, outShape), [x], (g) => {
    // Adjoint: scatter g back through the same strides.
    const gx = new Float32Array(x.size);
    stridedAccumulate(
      g,
      gx,
      0,
      perm.map((p) => inStrides[p]!),
      outShape,
    );
    accumulate(x, gx, true);
  });
}

/** Swaps two dims (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = normAxis("transpose", a, x.rank);
  const j = normAxis("transpose", b, x.rank);
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return permute(x, perm);
}

/** x[..., start:end, ...] along one axis. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis("slice", axis, x.rank);
  const dim = x.shape[ax]!;
  if (start < 0 || end > dim || start > end) {
    throw new Error(`slice: [${start}, ${end}) out of range for axis ${ax} of ${fmtShape(x.shape)}`);
  }
  const outer = numel(x.shape.slice(0, ax));
  const inner = numel(x.shape.slice(ax + 1));
  const len = end - start;
  const outShape = x.shape.map((d, i) => (i === ax ? len : d));
  const o = new Float32Array(outer * len * inner);
  for (let p = 0; p < outer; p++) {
    o.set(x.data.subarray((p * dim + start) * inner, (p * dim + end) * inner), p * len * inner);
  }
  return record(new Tensor(o, outShape), [x], (g) => {
    const gx = new Float32Array(x.size);
    for (let p = 0; p < outer; p++)
      gx.set(g.subarray(p * len * inner, (p + 1) * len * inner), (p * dim + start) * inner);
    accumulate(x, gx, true);
  });
}

/** Joins tensors along one axis; every other dim must match. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error("concat: no tensors");
  const first = xs[0]!;
  const ax = normAxis("concat", axis, first.rank);
  for (const t of xs) {
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(`concat: shapes ${fmtShape(first.shape)} and ${fmtShape(t.shape)} differ off axis ${ax}`);
    }
  }
  const outer = numel(first.shape.slice(0, ax));
  const inner = numel(first.shape.slice(ax + 1));
  const total = xs.reduce((s, t) => s + t.shape[ax]!, 0);
  const outShape = first.shape.map((d, i) => (i === ax ? total : d));
  const o = new Float32Array(outer * total * inner);
  let off = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    const len = t.shape[ax]!;
    offsets.push(off);
    for (let p = 0; p < outer; p++) {
      o.set(t.data.subarray(p * len * inner, (p + 1) * len * inner), (p * total + off) * inner);
    }
    off += len;
  }
  return record(new Tensor(o, outShape), xs, (g) => {
    xs.forEach((t, k) => {
      if (!t.requiresGrad) return;
      const len = t.shape[ax]!;
      const gt = new Float32Array(t.size);
      for (let p = 0; p < outer; p++) {
        gt.set(g.subarray((p * total + offsets[k]!) * inner, (p * total + offsets[k]! + len) * inner), p * len * inner);
      }
      accumulate(t, gt, true);
    });
  });
}

/**
 * Rows of `table` [V, D] picked by integer ids (any shape) → [...idsShape, D]: the embedding
 * lookup. Backward scatter-adds into the picked rows.
 */
export function gather(table: Tensor, ids: Int32Array | readonly number[], idsShape?: Shape): Tensor {
  if (table.rank !== 2) throw new Error(`gather: table must be [rows, dim], got ${fmtShape(table.shape)}`);
  const [rows, dim] = table.shape as [number, number];
  const n = ids.length;
  const shape = idsShape ? [...idsShape] : [n];
  if (numel(shape) !== n) throw new Error(`gather: ${n} ids do not fit shape ${fmtShape(shape)}`);
  const o = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < rows)) throw new Error(`gather: id ${id} at position ${i} out of range [0, ${rows})`);
    o.set(table.data.subarray(id * dim, (id + 1) * dim), i * dim);
  }
  return record(new Tensor(o, [...shape, dim]), [table], (g) => {
    if (table.grad === null) table.grad = new Float32Array(table.size);
    const gt = table.grad;
    for (let i = 0; i < n; i++) {
      const base = ids[i]! * dim;
      for (let j = 0; j < dim; j++) gt[base + j]! += g[i * dim + j]!;
    }
  });
}

/** Repeats each index along `axis` `times` times in place (GQA: kv heads → query heads). */
export function repeatInterleave(x: Tensor, times: number, axis: number): Tensor {
  const ax = normAxis("repeatInterleave", axis, x.rank);
  if (times === 1) return x;
  const outer = numel(x.shape.slice(0, ax + 1));
  const inner = numel(x.shape.slice(ax + 1));
  const outShape = x.shape.map((d, i) => (i === ax ? d * times : d));
  const o = new Float32Array(x.size * times);
  for (let p = 0; p < outer; p++) {
    const src = x.data.subarray(p * inner, (p + 1) * inner);
    for (let r = 0; r < times; r++) o.set(src, (p * times + r) * inner);
  }
  return record(new Tensor(o, outShape), [x], (g) => {
    const gx = new Float32Array(x.size);
    for (let p = 0; p < outer; p++)
      for (let r = 0; r < times; r++) {
        const base = (p * times + r) * inner;
        for (let j = 0; j < inner; j++) gx[p * inner + j]! += g[base + j]!;
      }
    accumulate(x, gx, true);
  });
}

export { contiguousStrides, stridedCopy };
