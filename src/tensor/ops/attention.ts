/**
 * Scaled dot-product attention, fused forward + backward, with causal masking, grouped-query
 * attention (GQA) without copying K/V, a KV-cache offset and an optional key padding mask.
 *
 * Shapes: q [B, H, T, D]; k, v [B, Hkv, S, D] with H a multiple of Hkv (query head h reads
 * kv head ⌊h / (H/Hkv)⌋, as in Hugging Face). Query t sits at absolute position S − T + t,
 * so a causal query attends keys 0 … S − T + t (this is what a KV cache needs).
 * Both products run as one batched matmul over B·Hkv groups of [G·T, D] queries.
 */
import { type AttnDims, attentionBackward, attentionForward, nativeFused, useFused } from "../kernels/fused.ts";
import { matmulInto } from "../kernels/matmul.ts";
import type { AttnArgs } from "../kernels/native.ts";
import { accumulate, fmtShape, needsGrad, record, Tensor } from "../tensor.ts";

export interface AttentionOptions {
  causal?: boolean;
  /** Defaults to 1/sqrt(D). */
  scale?: number;
  /** [B, S]: 0 marks a padding key that no query may attend. */
  keyMask?: Uint8Array;
}

export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const bad = (why: string) =>
    new Error(`attention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}: ${why}`);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw bad("all must be [B, heads, seq, headDim]");
  const [B, H, T, D] = q.shape as [number, number, number, number];
  const [Bk, Hkv, S, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D || v.shape[0] !== B || v.shape[1] !== Hkv || v.shape[2] !== S || v.shape[3] !== D) {
    throw bad("batch, kv heads, key length or head dim differ");
  }
  if (H % Hkv !== 0) throw bad(`query heads ${H} not a multiple of kv heads ${Hkv}`);
  if (S < T) throw bad(`key length ${S} shorter than query length ${T}`);
  if (opts.keyMask && opts.keyMask.length !== B * S) throw bad(`keyMask has ${opts.keyMask.length} entries, need B·S`);
  const causal = opts.causal ?? true;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const G = H / Hkv;
  const groups = B * Hkv;
  const rowsPer = G * T;
  const native = nativeFused();
  if (native) {
    const dims: AttnArgs = [B, H, Hkv, T, S, D, scale, causal];
    return fusedAttention(
      q,
      k,
      v,
      S,
      (probs, out) => native.attentionForward(q.data, k.data, v.data, opts.keyMask ?? null, probs, out, ...dims),
      (probs, g, gq, gk, gv) => native.attentionBackward(probs, g, q.data, k.data, v.data, gq, gk, gv, ...dims),
    );
  }
  if (useFused()) return attentionOrt(q, k, v, { B, H, Hkv, T, S, D, scale }, causal, opts.keyMask);
  const probs = new Float32Array(groups * rowsPer * S); // [B·Hkv, G·T, S]
  matmulInto({
    a: q.data,
    b: k.data,
    out: probs,
    batchA: groups,
    batchB: groups,
    m: rowsPer,
    k: D,
    n: S,
    transB: true,
    alpha: scale,
  });
  const mask = opts.keyMask;
  const offset = S - T;
  for (let gi = 0; gi < groups; gi++) {
    const b = Math.floor(gi / Hkv);
    for (let r = 0; r < rowsPer; r++) {
      const base = (gi * rowsPer + r) * S;
      const limit = causal ? offset + (r % T) + 1 : S; // keys [0, limit) are visible
      let m = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < limit; j++) {
        if (mask && mask[b * S + j] === 0) continue;
        if (probs[base + j]! > m) m = probs[base + j]!;
      }
      if (m === Number.NEGATIVE_INFINITY) {
        probs.fill(0, base, base + S); // a query with no visible key (padding) outputs zeros
        continue;
      }
      let s = 0;
      for (let j = 0; j < limit; j++) {
        if (mask && mask[b * S + j] === 0) {
          probs[base + j] = 0;
          continue;
        }
        const e = Math.exp(probs[base + j]! - m);
        probs[base + j] = e;
        s += e;
      }
      const inv = 1 / s;
      for (let j = 0; j < limit; j++) probs[base + j]! *= inv;
      probs.fill(0, base + limit, base + S);
    }
  }
  const out = new Float32Array(q.size);
  matmulInto({ a: probs, b: v.data, out, batchA: groups, batchB: groups, m: rowsPer, k: S, n: D });
  const y = new Tensor(out, q.shape);
  if (!needsGrad(q, k, v)) return y;
  return record(y, [q, k, v], (g) => {
    if (v.requiresGrad) {
      const gv = new Float32Array(v.size); // Pᵀ·dO
      matmulInto({ a: probs, b: g, out: gv, batchA: groups, batchB: groups, m: S, k: rowsPer, n: D, transA: true });
      accumulate(v, gv, true);
    }
    if (!q.requiresGrad && !k.requiresGrad) return;
    const ds = new Float32Array(probs.length); // dP = dO·Vᵀ, then dS = P ⊙ (dP − Σ dP⊙P)
    matmulInto({ a: g, b: v.data, out: ds, batchA: groups, batchB: groups, m: rowsPer, k: D, n: S, transB: true });
    const rows = groups * rowsPer;
    for (let r = 0; r < rows; r++) {
      const base = r * S;
      let dot = 0;
      for (let j = 0; j < S; j++) dot += ds[base + j]! * probs[base + j]!;
      for (let j = 0; j < S; j++) ds[base + j] = probs[base + j]! * (ds[base + j]! - dot);
    }
    if (q.requiresGrad) {
      const gq = new Float32Array(q.size);
      matmulInto({ a: ds, b: k.data, out: gq, batchA: groups, batchB: groups, m: rowsPer, k: S, n: D, alpha: scale });
      accumulate(q, gq, true);
    }
    if (k.requiresGrad) {
      const gk = new Float32Array(k.size);
      matmulInto({
        a: ds,
        b: q.data,
        out: gk,
        batchA: groups,
        batchB: groups,
        m: S,
        k: rowsPer,
        n: D,
        transA: true,
        alpha: scale,
      });
      accumulate(k, gk, true);
    }
  });
}

/** The same attention as one onnxruntime graph each way (see kernels/fused.ts). */
function attentionOrt(q: Tensor, k: Tensor, v: Tensor, d: AttnDims, causal: boolean, keyMask?: Uint8Array): Tensor {
  const { B, T, S } = d;
  // Additive mask [B, 1, T, S]: 0 where visible, −1e9 where not (exp underflows to exactly 0).
  // A query with no visible key gets uniform weights instead of zeros (only padding rows).
  const mask = new Float32Array(B * T * S);
  const offset = S - T;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const base = (b * T + t) * S;
      const limit = causal ? offset + t + 1 : S;
      if (limit < S) mask.fill(-1e9, base + limit, base + S);
      if (keyMask) for (let j = 0; j < limit; j++) if (keyMask[b * S + j] === 0) mask[base + j] = -1e9;
    }
  return fusedAttention(
    q,
    k,
    v,
    S,
    (probs, out) => attentionForward(q.data, k.data, v.data, mask, d, probs, out),
    (probs, g, gq, gk, gv) => attentionBackward(probs, g, q.data, k.data, v.data, d, gq, gk, gv),
  );
}

/** A fused kernel pair: the forward fills probs [B, H, T, S] and out; the backward writes dQ, dK, dV. */
function fusedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  S: number,
  forward: (probs: Float32Array, out: Float32Array) => void,
  backwardFn: (probs: Float32Array, g: Float32Array, gq: Float32Array, gk: Float32Array, gv: Float32Array) => void,
): Tensor {
  const [B, H, T] = q.shape as [number, number, number, number];
  const probs = new Float32Array(B * H * T * S);
  const out = new Float32Array(q.size);
  forward(probs, out);
  const y = new Tensor(out, q.shape);
  if (!needsGrad(q, k, v)) return y;
  return record(y, [q, k, v], (g) => {
    const gq = new Float32Array(q.size);
    const gk = new Float32Array(k.size);
    const gv = new Float32Array(v.size);
    backwardFn(probs, g, gq, gk, gv);
    accumulate(q, gq, true);
    accumulate(k, gk, true);
    accumulate(v, gv, true);
  });
}
