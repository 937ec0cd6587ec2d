/**
 * The loops behind emlab's sparse autoencoder: top-k selection over a row of pre-activations
 * and the row-sparse products that TopK makes possible (only k latents per row are non-zero,
 * so the decoder and the encoder's weight gradient touch k contiguous weight rows per input
 * row instead of all of them).
 *
 * Every function writes into buffers the caller owns; none allocates.
 */

/**
 * Starts a top-k min-heap in the output slice with the first k values of the row:
 * outVal[outOff] is then the smallest kept value (shared by the TypeScript and SIMD top-k).
 */
export function heapStart(
  src: Float32Array,
  off: number,
  k: number,
  outIdx: Int32Array,
  outVal: Float32Array,
  outOff: number,
): void {
  for (let i = 0; i < k; i++) {
    outVal[outOff + i] = src[off + i]!;
    outIdx[outOff + i] = i;
  }
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(outVal, outIdx, outOff, k, i);
}

/**
 * Top-k of `src[off .. off+len)` by value: the k largest go to `outIdx`/`outVal` at `outOff`
 * (unsorted; indices are relative to `off`). A min-heap of size k: one comparison per
 * element once the heap holds the k largest so far, so ~len + k·log k·ln(len/k) operations.
 * Requires 1 ≤ k ≤ len. NaN never enters the heap after the first k.
 */
export function topkRow(
  src: Float32Array,
  off: number,
  len: number,
  k: number,
  outIdx: Int32Array,
  outVal: Float32Array,
  outOff: number,
): void {
  heapStart(src, off, k, outIdx, outVal, outOff);
  let min = outVal[outOff]!;
  for (let i = k; i < len; i++) {
    const v = src[off + i]!;
    if (v > min) {
      outVal[outOff] = v;
      outIdx[outOff] = i;
      siftDown(outVal, outIdx, outOff, k, 0);
      min = outVal[outOff]!;
    }
  }
}

export function siftDown(val: Float32Array, idx: Int32Array, base: number, n: number, i: number): void {
  const v = val[base + i]!;
  const id = idx[base + i]!;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && val[base + c + 1]! < val[base + c]!) c++;
    if (val[base + c]! >= v) break;
    val[base + i] = val[base + c]!;
    idx[base + i] = idx[base + c]!;
    i = c;
  }
  val[base + i] = v;
  idx[base + i] = id;
}

/** Sorts `k` (idx, val) pairs at `off` by value, largest first (insertion sort: k is small). */
export function sortPairsDesc(idx: Int32Array, val: Float32Array, off: number, k: number): void {
  for (let i = 1; i < k; i++) {
    const v = val[off + i]!;
    const id = idx[off + i]!;
    let j = i - 1;
    while (j >= 0 && val[off + j]! < v) {
      val[off + j + 1] = val[off + j]!;
      idx[off + j + 1] = idx[off + j]!;
      j--;
    }
    val[off + j + 1] = v;
    idx[off + j + 1] = id;
  }
}

/** y[yOff .. yOff+n) += a · x[xOff .. xOff+n). */
export function axpy(n: number, a: number, x: Float32Array, xOff: number, y: Float32Array, yOff: number): void {
  let t = 0;
  for (; t + 3 < n; t += 4) {
    y[yOff + t] = y[yOff + t]! + a * x[xOff + t]!;
    y[yOff + t + 1] = y[yOff + t + 1]! + a * x[xOff + t + 1]!;
    y[yOff + t + 2] = y[yOff + t + 2]! + a * x[xOff + t + 2]!;
    y[yOff + t + 3] = y[yOff + t + 3]! + a * x[xOff + t + 3]!;
  }
  for (; t < n; t++) y[yOff + t] = y[yOff + t]! + a * x[xOff + t]!;
}

/** Σ x[xOff+t]·y[yOff+t] over t < n (four partial sums, accumulated in double). */
export function dot(n: number, x: Float32Array, xOff: number, y: Float32Array, yOff: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t = 0;
  for (; t + 3 < n; t += 4) {
    s0 += x[xOff + t]! * y[yOff + t]!;
    s1 += x[xOff + t + 1]! * y[yOff + t + 1]!;
    s2 += x[xOff + t + 2]! * y[yOff + t + 2]!;
    s3 += x[xOff + t + 3]! * y[yOff + t + 3]!;
  }
  for (; t < n; t++) s0 += x[xOff + t]! * y[yOff + t]!;
  return s0 + s1 + s2 + s3;
}

/**
 * Row-sparse decode: out[i] = bias + Σ_p val[i,p] · w[idx[i,p]] for rows i < n, where row
 * i's entries are at [i·k, (i+1)·k) and w is [*, d] row-major. out: [n, d].
 */
export function sparseDecodeFixed(
  n: number,
  d: number,
  k: number,
  idx: Int32Array,
  val: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  out: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    const o = i * d;
    if (bias) out.set(bias, o);
    else out.fill(0, o, o + d);
    for (let p = i * k; p < (i + 1) * k; p++) {
      const v = val[p]!;
      if (v !== 0) axpy(d, v, w, idx[p]! * d, out, o);
    }
  }
}

/**
 * Decode of mostly-zero dense codes: out[i] = bias + Σ_j codes[i, j] · w[j] over the non-zero
 * codes of row i, for rows i < n. codes [n, m], w [m, d] row-major, out [n, d].
 */
export function decodeNonZero(
  n: number,
  m: number,
  d: number,
  codes: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  out: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    const o = i * d;
    if (bias) out.set(bias, o);
    else out.fill(0, o, o + d);
    for (let j = 0; j < m; j++) {
      const v = codes[i * m + j]!;
      if (v !== 0) axpy(d, v, w, j * d, out, o);
    }
  }
}

export interface AdamHyper {
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  /** Bias corrections 1 − β1^t and 1 − β2^t. */
  c1: number;
  c2: number;
}

/** Adam (PyTorch's formula) over one flat parameter; zeroes the gradient as it goes. */
export function adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper): void {
  const { b1, b2, eps } = h;
  const stepSize = h.lr / h.c1;
  const rc2 = 1 / Math.sqrt(h.c2);
  const a1 = 1 - b1;
  const a2 = 1 - b2;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = b1 * m[i]! + a1 * gi;
    const vi = b2 * v[i]! + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! - (stepSize * mi) / (Math.sqrt(vi) * rc2 + eps);
    g[i] = 0;
  }
}

/**
 * Adam for the decoder [rows, d], one row (latent) at a time: remove the gradient's
 * component along the (unit) row, step, re-normalise the row to unit norm. Zeroes g.
 */
export function adamUnitRows(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  d: number,
  h: AdamHyper,
): void {
  const { b1, b2, eps } = h;
  const stepSize = h.lr / h.c1;
  const rc2 = 1 / Math.sqrt(h.c2);
  const a1 = 1 - b1;
  const a2 = 1 - b2;
  const rows = w.length / d;
  for (let j = 0; j < rows; j++) {
    const o = j * d;
    const par = dot(d, g, o, w, o);
    let norm = 0;
    for (let t = 0; t < d; t++) {
      const gi = g[o + t]! - par * w[o + t]!;
      const mi = b1 * m[o + t]! + a1 * gi;
      const vi = b2 * v[o + t]! + a2 * gi * gi;
      m[o + t] = mi;
      v[o + t] = vi;
      const wi = w[o + t]! - (stepSize * mi) / (Math.sqrt(vi) * rc2 + eps);
      w[o + t] = wi;
      norm += wi * wi;
      g[o + t] = 0;
    }
    if (norm > 0) {
      const inv = 1 / Math.sqrt(norm);
      for (let t = 0; t < d; t++) w[o + t]! *= inv;
    }
  }
}
