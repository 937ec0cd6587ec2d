/**
 * The SAE trainer's buffers in one WebAssembly.Memory (an arena allocated once), and its
 * kernels — axpy, dot, fused dot+axpy, top-k, Adam, and the row-sparse decode and backward
 * built on them — running four-wide SIMD code
 * (wasm-simd.ts) on arrays in the arena. V8 does not vectorise TypeScript loops; these run
 * several times faster on the same data. Arrays outside the arena, or an engine without
 * wasm SIMD (or EMLAB_SIMD=0), take the TypeScript loops of sparse.ts: results
 * agree to float32 rounding. The SIMD functions handle the largest multiple of 4
 * elements; the (rare) tail is finished here.
 */

import {
  type AdamHyper,
  adam as adamTs,
  adamUnitRows as adamUnitRowsTs,
  axpy as axpyTs,
  dot as dotTs,
  heapStart,
  siftDown,
  topkRow as topkRowTs,
} from "./sparse.ts";

import { type SimdExports, simdModule } from "./wasm-simd.ts";

/** True when the SIMD kernels are in use (not disabled by EMLAB_SIMD=0, supported by the engine). */
export function simdAvailable(): boolean {
  return simdModule() !== null;
}

/**
 * A fixed-size arena of float32/int32 buffers in one WebAssembly.Memory, with the SIMD
 * kernels bound to it. `alloc` hands out 16-byte-aligned views; there is no free (the
 * arena lives as long as its trainer). Without SIMD, `alloc` returns ordinary arrays.
 */
export class SimdArena {
  readonly fns: SimdExports | null;
  readonly buffer: ArrayBuffer | null;
  private at = 0;
  private readonly bytes: number;

  /** `floats`: the total number of 4-byte elements that will be allocated. */
  constructor(floats: number) {
    const mod = simdModule();
    // each allocation may waste up to 12 bytes of alignment padding; room for 256 of them
    this.bytes = floats * 4 + 256 * 16;
    const pages = Math.ceil(this.bytes / 65536);
    let memory: WebAssembly.Memory | null = null;
    if (mod && pages <= 65536) {
      try {
        memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
      } catch {
        memory = null; // no contiguous reservation this large: plain arrays and TypeScript loops
      }
    }
    if (!mod || !memory) {
      this.fns = null;
      this.buffer = null;
      return;
    }
    const inst = new WebAssembly.Instance(mod, { env: { memory } });
    this.fns = inst.exports as unknown as SimdExports;
    this.buffer = memory.buffer;
  }

  allocF32(n: number): Float32Array {
    if (!this.buffer) return new Float32Array(n);
    const off = this.take(n * 4);
    return new Float32Array(this.buffer, off, n);
  }

  allocI32(n: number): Int32Array {
    if (!this.buffer) return new Int32Array(n);
    const off = this.take(n * 4);
    return new Int32Array(this.buffer, off, n);
  }

  private take(bytes: number): number {
    const off = (this.at + 15) & ~15;
    if (off + bytes > this.bytes) throw new Error(`SimdArena: out of space (${off + bytes} > ${this.bytes} bytes)`);
    this.at = off + bytes;
    return off;
  }

  /** Whether `a` lives in this arena (so the SIMD kernels can read it). */
  owns(a: Float32Array | Int32Array): boolean {
    return this.buffer !== null && a.buffer === this.buffer;
  }

  // ---------------------------------------------------------------- kernels
  // Same contracts as sparse.ts; SIMD when every array is in the arena.

  /** y[yOff..+n) += a · x[xOff..+n) */
  axpy(n: number, a: number, x: Float32Array, xOff: number, y: Float32Array, yOff: number): void {
    const f = this.fns;
    if (!f || x.buffer !== this.buffer || y.buffer !== this.buffer) {
      axpyTs(n, a, x, xOff, y, yOff);
      return;
    }
    f.axpy(n, a, x.byteOffset + 4 * xOff, y.byteOffset + 4 * yOff);
    for (let t = n & ~3; t < n; t++) y[yOff + t]! += a * x[xOff + t]!;
  }

  /** Σ x[xOff+t]·y[yOff+t] */
  dot(n: number, x: Float32Array, xOff: number, y: Float32Array, yOff: number): number {
    const f = this.fns;
    if (!f || x.buffer !== this.buffer || y.buffer !== this.buffer) return dotTs(n, x, xOff, y, yOff);
    let s = f.dot(n, x.byteOffset + 4 * xOff, y.byteOffset + 4 * yOff);
    for (let t = n & ~3; t < n; t++) s += x[xOff + t]! * y[yOff + t]!;
    return s;
  }

  /** Returns w·dl and adds z·dl into g (rows of length n at the offsets). */
  dotAxpy(
    n: number,
    w: Float32Array,
    wOff: number,
    dl: Float32Array,
    dlOff: number,
    g: Float32Array,
    gOff: number,
    z: number,
  ): number {
    const f = this.fns;
    const b = this.buffer;
    if (!f || w.buffer !== b || dl.buffer !== b || g.buffer !== b) {
      const s = dotTs(n, w, wOff, dl, dlOff);
      axpyTs(n, z, dl, dlOff, g, gOff);
      return s;
    }
    let s = f.dotAxpy(n, w.byteOffset + 4 * wOff, dl.byteOffset + 4 * dlOff, g.byteOffset + 4 * gOff, z);
    for (let t = n & ~3; t < n; t++) {
      s += w[wOff + t]! * dl[dlOff + t]!;
      g[gOff + t]! += z * dl[dlOff + t]!;
    }
    return s;
  }

  /**
   * Top-k of src[off..+len) (see sparse.ts topkRow); with SIMD, blocks of four that
   * cannot enter the heap are skipped four at a time.
   */
  topkRow(
    src: Float32Array,
    off: number,
    len: number,
    k: number,
    outIdx: Int32Array,
    outVal: Float32Array,
    outOff: number,
  ): void {
    const f = this.fns;
    if (!f || src.buffer !== this.buffer || len < 64) {
      topkRowTs(src, off, len, k, outIdx, outVal, outOff);
      return;
    }
    heapStart(src, off, k, outIdx, outVal, outOff);
    let min = outVal[outOff]!;
    const consider = (i: number) => {
      const v = src[off + i]!;
      if (v > min) {
        outVal[outOff] = v;
        outIdx[outOff] = i;
        siftDown(outVal, outIdx, outOff, k, 0);
        min = outVal[outOff]!;
      }
    };
    let i = k;
    for (; i < len && (i & 3) !== 0; i++) consider(i);
    const vecEnd = len & ~3;
    const base = src.byteOffset + 4 * off;
    const endAddr = base + 4 * vecEnd;
    while (i < vecEnd) {
      const at = f.scanAbove(base + 4 * i, endAddr, min);
      if (at >= endAddr) break;
      i = (at - base) >> 2;
      for (const stop = i + 4; i < stop; i++) consider(i);
    }
    for (i = Math.max(i, vecEnd); i < len; i++) consider(i);
  }

  /**
   * Row-sparse decode of one row: out[outOff..+d) = bias (or 0) + Σ_{q∈[q0,q1)} val[q] · w[idx[q]],
   * w [*, d] row-major; zero values are skipped.
   */
  decodeRow(
    d: number,
    idx: Int32Array,
    val: Float32Array,
    q0: number,
    q1: number,
    w: Float32Array,
    bias: Float32Array | null,
    out: Float32Array,
    outOff: number,
  ): void {
    if (bias) out.set(bias, outOff);
    else out.fill(0, outOff, outOff + d);
    for (let q = q0; q < q1; q++) {
      const v = val[q]!;
      if (v !== 0) this.axpy(d, v, w, idx[q]! * d, out, outOff);
    }
  }

  /**
   * Backward of one row through z = ReLU(encT·x + bEnc) at its active latents j = idx[q]
   * (q ∈ [q0,q1), z = val[q]) and the row-sparse decode out = Σ z_j · wDec[j], given
   * dOut = ∂L/∂out: for each j with z > 0 (ReLU passes no gradient elsewhere),
   *   dz = wDec[j]·dOut;  gDec[j] += z·dOut;  gBias[j] += dz;  gEnc[j] += dz·x.
   * Every weight row touched is contiguous: the row-sparse backward TopK makes possible.
   */
  sparseBackwardRow(
    d: number,
    idx: Int32Array,
    val: Float32Array,
    q0: number,
    q1: number,
    wDec: Float32Array,
    dOut: Float32Array,
    dOutOff: number,
    x: Float32Array,
    xOff: number,
    grads: { dec: Float32Array; enc: Float32Array; bias: Float32Array },
  ): void {
    for (let q = q0; q < q1; q++) {
      const z = val[q]!;
      if (!(z > 0)) continue;
      const j = idx[q]!;
      const jd = j * d;
      const dz = this.dotAxpy(d, wDec, jd, dOut, dOutOff, grads.dec, jd, z);
      grads.bias[j]! += dz;
      this.axpy(d, dz, x, xOff, grads.enc, jd);
    }
  }

  /** Adam over one flat parameter, zeroing the gradient (see sparse.ts adam). */
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper): void {
    const f = this.fns;
    const b = this.buffer;
    if (!f || p.buffer !== b || g.buffer !== b || m.buffer !== b || v.buffer !== b || p.length & 3) {
      adamTs(p, g, m, v, h);
      return;
    }
    const a = (x: Float32Array) => x.byteOffset;
    const { b1, b2, eps } = h;
    f.adam(p.length, a(p), a(g), a(m), a(v), b1, b2, 1 - b1, 1 - b2, h.lr / h.c1, 1 / Math.sqrt(h.c2), eps, 0, a(p));
  }

  /** Adam on unit-norm rows of length d with the parallel gradient removed (see sparse.ts). */
  adamUnitRows(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, d: number, h: AdamHyper): void {
    const f = this.fns;
    const b = this.buffer;
    if (!f || w.buffer !== b || g.buffer !== b || m.buffer !== b || v.buffer !== b || d & 3) {
      adamUnitRowsTs(w, g, m, v, d, h);
      return;
    }
    const { b1, b2, eps } = h;
    const step = h.lr / h.c1;
    const rc2 = 1 / Math.sqrt(h.c2);
    for (let o = 0; o < w.length; o += d) {
      const bw = w.byteOffset + 4 * o;
      const par = f.dot(d, g.byteOffset + 4 * o, bw);
      const norm = f.adam(
        d,
        bw,
        g.byteOffset + 4 * o,
        m.byteOffset + 4 * o,
        v.byteOffset + 4 * o,
        b1,
        b2,
        1 - b1,
        1 - b2,
        step,
        rc2,
        eps,
        par,
        bw,
      );
      if (norm > 0) f.scale(d, 1 / Math.sqrt(norm), bw);
    }
  }
}
