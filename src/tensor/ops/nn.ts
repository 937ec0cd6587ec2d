/**
 * Neural-network ops with fused backward: rotary position embedding, cross-entropy with an
 * ignore index, top-k, dropout.
 */
import { nativeFused, softmaxLse, swigluForward, useFused } from "../kernels/fused.ts";
import type { Rng } from "../random.ts";
import { accumulate, fmtShape, needsGrad, record, Tensor } from "../tensor.ts";

const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array; rows: number }>();

/** cos/sin of pos·θ^(−2j/D) for pos < rows, computed as PyTorch does (float32 inv_freq and angle). */
function ropeTables(theta: number, D: number, rows: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${theta}:${D}`;
  const hit = ropeCache.get(key);
  if (hit && hit.rows >= rows) return hit;
  const half = D / 2;
  const n = Math.max(rows, 2 * (hit?.rows ?? 0), 256);
  const cos = new Float32Array(n * half);
  const sin = new Float32Array(n * half);
  for (let j = 0; j < half; j++) {
    const invFreq = Math.fround(1 / theta ** ((2 * j) / D));
    for (let pos = 0; pos < n; pos++) {
      const ang = Math.fround(pos * invFreq);
      cos[pos * half + j] = Math.cos(ang);
      sin[pos * half + j] = Math.sin(ang);
    }
  }
  const entry = { cos, sin, rows: n };
  ropeCache.set(key, entry);
  return entry;
}

/**
 * Rotary position embedding in Hugging Face's "rotate half" layout, on x [B, H, T, D]:
 * out[j] = x[j]·cos − x[j+D/2]·sin, out[j+D/2] = x[j+D/2]·cos + x[j]·sin, angle = pos·θ^(−2j/D).
 * `positions` is [T] (shared by the batch) or [B·T].
 */
export function rope(x: Tensor, positions: Int32Array | readonly number[], theta = 10000): Tensor {
  if (x.rank !== 4) throw new Error(`rope: input must be [B, H, T, D], got ${fmtShape(x.shape)}`);
  const [B, H, T, D] = x.shape as [number, number, number, number];
  if (D % 2 !== 0) throw new Error(`rope: head dim ${D} must be even`);
  const perBatch = positions.length === B * T;
  if (!perBatch && positions.length !== T) {
    throw new Error(`rope: ${positions.length} positions for T=${T}, B=${B} (need T or B·T)`);
  }
  const half = D / 2;
  let maxPos = 0;
  for (let p = 0; p < positions.length; p++) {
    const pos = positions[p]!;
    if (!(Number.isInteger(pos) && pos >= 0)) throw new Error(`rope: position ${pos} must be a non-negative integer`);
    if (pos > maxPos) maxPos = pos;
  }
  // cos/sin tables indexed by position value [maxPos+1, half], cached across calls.
  const { cos, sin } = ropeTables(theta, D, maxPos + 1);
  const rotate = (src: Float32Array, dst: Float32Array, sign: number) => {
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++) {
          const base = ((b * H + h) * T + t) * D;
          const tb = positions[perBatch ? b * T + t : t]! * half;
          for (let j = 0; j < half; j++) {
            const c = cos[tb + j]!;
            const s = sign * sin[tb + j]!;
            const x1 = src[base + j]!;
            const x2 = src[base + half + j]!;
            dst[base + j] = x1 * c - x2 * s;
            dst[base + half + j] = x2 * c + x1 * s;
          }
        }
  };
  const native = nativeFused();
  const pos = native ? (positions instanceof Int32Array ? positions : Int32Array.from(positions)) : null;
  const run = (src: Float32Array, dst: Float32Array, sign: number) => {
    if (native) native.rope(src, dst, pos!, B, H, T, D, cos, sin, sign);
    else rotate(src, dst, sign);
  };
  const y = new Float32Array(x.size);
  run(x.data, y, 1);
  return record(new Tensor(y, x.shape), [x], (g) => {
    const gx = new Float32Array(x.size);
    run(g, gx, -1); // the adjoint of a rotation is the rotation by −angle
    accumulate(x, gx, true);
  });
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (Hugging Face uses −100). */
  ignoreIndex?: number;
  /** "mean" over non-ignored targets (default), "sum", or "none" (per-row losses). */
  reduction?: "mean" | "sum" | "none";
}

/**
 * Cross-entropy of logits [..., V] against integer targets (one per row), fused: the forward
 * keeps the softmax, which the backward turns into the gradient in place.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array | readonly number[], opts: CrossEntropyOptions = {}) {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? "mean";
  const V = logits.shape[logits.rank - 1]!;
  const rows = logits.size / V;
  if (targets.length !== rows) {
    throw new Error(`crossEntropy: ${targets.length} targets for logits ${fmtShape(logits.shape)} (${rows} rows)`);
  }
  const src = logits.data;
  const keepProbs = needsGrad(logits);
  const probs = keepProbs ? new Float32Array(logits.size) : null;
  const losses = new Float32Array(rows);
  let count = 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t !== ignore && !(t >= 0 && t < V))
      throw new Error(`crossEntropy: target ${t} at row ${r} out of range [0, ${V})`);
  }
  const native = nativeFused();
  if (native || useFused()) {
    // One native or ORT call: softmax (kept for backward) and log-sum-exp per row, vectorised.
    const lse = new Float32Array(rows);
    if (native) native.softmaxLse(src, V, lse, probs);
    else softmaxLse(src, rows, V, lse, probs ?? undefined);
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      if (t === ignore) continue;
      const l = lse[r]! - src[r * V + t]!;
      losses[r] = l;
      total += l;
      count++;
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      if (t === ignore) continue;
      const base = r * V;
      let m = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < V; j++) if (src[base + j]! > m) m = src[base + j]!;
      let s = 0;
      if (probs) {
        for (let j = 0; j < V; j++) {
          const e = Math.exp(src[base + j]! - m);
          probs[base + j] = e;
          s += e;
        }
        const inv = 1 / s;
        for (let j = 0; j < V; j++) probs[base + j]! *= inv;
      } else for (let j = 0; j < V; j++) s += Math.exp(src[base + j]! - m);
      const l = m + Math.log(s) - src[base + t]!;
      losses[r] = l;
      total += l;
      count++;
    }
  }
  const out =
    reduction === "none"
      ? new Tensor(losses, logits.shape.slice(0, -1))
      : new Tensor(Float32Array.of(reduction === "mean" ? (count ? total / count : 0) : total), []);
  if (!probs) return out;
  return record(out, [logits], (g) => {
    const gl = probs; // reused in place: p − onehot, scaled
    const nk = nativeFused();
    if (nk) {
      const scale = new Float32Array(rows);
      const tg = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const t = targets[r]!;
        tg[r] = t;
        scale[r] = t === ignore ? 0 : reduction === "none" ? g[r]! : reduction === "mean" ? g[0]! / count : g[0]!;
      }
      nk.crossEntropyBackward(gl, tg, scale);
      accumulate(logits, gl, true);
      return;
    }
    for (let r = 0; r < rows; r++) {
      const base = r * V;
      const t = targets[r]!;
      if (t === ignore) {
        gl.fill(0, base, base + V);
        continue;
      }
      const scale = reduction === "none" ? g[r]! : reduction === "mean" ? g[0]! / count : g[0]!;
      gl[base + t]! -= 1;
      for (let j = 0; j < V; j++) gl[base + j]! *= scale;
    }
    accumulate(logits, gl, true);
  });
}

/** The k largest entries of the last dim: values (with gradient to them) and their indices. */
export function topk(x: Tensor, k: number): { values: Tensor; indices: Int32Array } {
  const d = x.shape[x.rank - 1]!;
  if (!(k >= 1 && k <= d)) throw new Error(`topk: k=${k} out of range for last dim ${d} of ${fmtShape(x.shape)}`);
  const rows = x.size / d;
  const vals = new Float32Array(rows * k);
  const idx = new Int32Array(rows * k);
  const src = x.data;
  // Per row: a small sorted buffer of the best k (k is small next to d in SAEs).
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    const ob = r * k;
    let filled = 0;
    for (let j = 0; j < d; j++) {
      const v = src[base + j]!;
      if (filled === k && v <= vals[ob + k - 1]!) continue;
      let pos = filled < k ? filled++ : k - 1;
      while (pos > 0 && vals[ob + pos - 1]! < v) {
        vals[ob + pos] = vals[ob + pos - 1]!;
        idx[ob + pos] = idx[ob + pos - 1]!;
        pos--;
      }
      vals[ob + pos] = v;
      idx[ob + pos] = j;
    }
  }
  const values = new Tensor(vals, [...x.shape.slice(0, -1), k]);
  record(values, [x], (g) => {
    const gx = new Float32Array(x.size);
    for (let r = 0; r < rows; r++) for (let i = 0; i < k; i++) gx[r * d + idx[r * k + i]!]! += g[r * k + i]!;
    accumulate(x, gx, true);
  });
  return { values, indices: idx };
}

/** Inverted dropout: zeroes entries with probability p and scales the rest by 1/(1−p). */
export function dropout(x: Tensor, p: number, rng: Rng, training = true): Tensor {
  if (!training || p === 0) return x;
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p=${p} must be in [0, 1)`);
  const scale = 1 / (1 - p);
  const mask = new Float32Array(x.size);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() >= p ? scale : 0;
  const y = new Float32Array(x.size);
  for (let i = 0; i < y.length; i++) y[i] = x.data[i]! * mask[i]!;
  return record(new Tensor(y, x.shape), [x], (g) => {
    const gx = new Float32Array(x.size);
    for (let i = 0; i < gx.length; i++) gx[i] = g[i]! * mask[i]!;
    accumulate(x, gx, true);
  });
}

/**
 * SwiGLU, the Llama/Qwen MLP gate: silu(gate) ⊙ up, fused so σ(gate) is computed once and
 * kept for the backward (no exp in the backward pass).
 */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (gate.size !== up.size) {
    throw new Error(`swiglu: gate ${fmtShape(gate.shape)} and up ${fmtShape(up.shape)} differ`);
  }
  const n = gate.size;
  const y = new Float32Array(n);
  const grad = needsGrad(gate, up);
  const s = new Float32Array(grad ? n : 0);
  const gd = gate.data;
  const ud = up.data;
  const native = nativeFused();
  if (native) native.swiglu(gd, ud, y, grad ? s : null);
  else if (useFused()) swigluForward(gd, ud, y, grad ? s : new Float32Array(n));
  else if (grad)
    for (let i = 0; i < n; i++) {
      const sg = 1 / (1 + Math.exp(-gd[i]!));
      s[i] = sg;
      y[i] = gd[i]! * sg * ud[i]!;
    }
  else for (let i = 0; i < n; i++) y[i] = (gd[i]! * ud[i]!) / (1 + Math.exp(-gd[i]!));
  return record(new Tensor(y, gate.shape), [gate, up], (g) => {
    // One pass for both gradients: d/dgate = g·up·σ·(1 + gate·(1 − σ)), d/dup = g·gate·σ.
    const gg = gate.requiresGrad ? new Float32Array(n) : null;
    const gu = up.requiresGrad ? new Float32Array(n) : null;
    const nk = nativeFused();
    if (nk) nk.swigluBackward(gd, ud, s, g, gg, gu);
    else
      for (let i = 0; i < n; i++) {
        const sg = s[i]!;
        const gi = g[i]!;
        const gs = gd[i]! * sg;
        if (gg) gg[i] = gi * ud[i]! * (sg + gs * (1 - sg));
        if (gu) gu[i] = gi * gs;
      }
    if (gg) accumulate(gate, gg, true);
    if (gu) accumulate(up, gu, true);
  });
}
