/**
 * Strided loops shared by the shape ops and broadcasting: copy or accumulate between a
 * contiguous buffer and a strided view, recursing over the leading dims with a tight loop
 * on the last one. No per-element allocation.
 */
import { nativeFused } from "../kernels/fused.ts";
import { fmtShape, type Shape } from "../tensor.ts";

/** Views big enough to be worth a native call (small ones stay in the TypeScript loop). */
const NATIVE_MIN = 4096;

function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** dst[contiguous over `shape`] = src[srcOff + Σ idx·srcStrides]. */
export function stridedCopy(src: Float32Array, srcOff: number, srcStrides: number[], dst: Float32Array, shape: Shape) {
  if (shape.length === 0) {
    dst[0] = src[srcOff]!;
    return;
  }
  const native = shape.length <= 16 && sizeOf(shape) >= NATIVE_MIN ? nativeFused() : null;
  if (native) {
    native.strided(src, srcOff, Int32Array.from(srcStrides), dst, Int32Array.from(shape), false);
    return;
  }
  let w = 0;
  const last = shape.length - 1;
  const rec = (dim: number, off: number) => {
    const n = shape[dim]!;
    const st = srcStrides[dim]!;
    if (dim === last) {
      if (st === 1 && n >= 256) {
        dst.set(src.subarray(off, off + n), w); // long rows: memcpy (short ones: the loop, no subarray)
        w += n;
      } else for (let i = 0; i < n; i++) dst[w++] = src[off + i * st]!;
      return;
    }
    for (let i = 0; i < n; i++) rec(dim + 1, off + i * st);
  };
  rec(0, srcOff);
}

/** dst[dstOff + Σ idx·dstStrides] += src[contiguous over `shape`] (stride 0 sums). */
export function stridedAccumulate(
  src: Float32Array,
  dst: Float32Array,
  dstOff: number,
  dstStrides: number[],
  shape: Shape,
) {
  if (shape.length === 0) {
    dst[dstOff]! += src[0]!;
    return;
  }
  const native = shape.length <= 16 && sizeOf(shape) >= NATIVE_MIN ? nativeFused() : null;
  if (native) {
    native.strided(dst, dstOff, Int32Array.from(dstStrides), src, Int32Array.from(shape), true);
    return;
  }
  let r = 0;
  const last = shape.length - 1;
  const rec = (dim: number, off: number) => {
    const n = shape[dim]!;
    const st = dstStrides[dim]!;
    if (dim === last) {
      if (st === 0) {
        let s = 0;
        for (let i = 0; i < n; i++) s += src[r++]!;
        dst[off]! += s;
      } else for (let i = 0; i < n; i++) dst[off + i * st]! += src[r++]!;
      return;
    }
    for (let i = 0; i < n; i++) rec(dim + 1, off + i * st);
  };
  rec(0, dstOff);
}

/** The broadcast shape of a and b (numpy rules), or an error naming the op and both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `inShape` read as `outShape` (0 on broadcast dims). */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const strides = contiguousStrides(inShape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - inShape.length;
  for (let i = 0; i < inShape.length; i++) out[off + i] = inShape[i] === 1 ? 0 : strides[i]!;
  return out;
}

/** A contiguous copy of `data` (shape inShape) broadcast to outShape. */
export function expandData(data: Float32Array, inShape: Shape, outShape: Shape, size: number): Float32Array {
  const out = new Float32Array(size);
  stridedCopy(data, 0, broadcastStrides(inShape, outShape), out, outShape);
  return out;
}

/** Sums a gradient of shape outShape down to inShape (the adjoint of broadcasting). */
export function sumToShape(g: Float32Array, outShape: Shape, inShape: Shape, inSize: number): Float32Array {
  const out = new Float32Array(inSize);
  stridedAccumulate(g, out, 0, broadcastStrides(inShape, outShape), outShape);
  return out;
}
