/**
 * A sparse autoencoder over one hook point's activations (Gao et al. 2024, "TopK SAE"):
 *
 *   x'      = activationScale · x                      raw model activation → SAE space
 *   pre     = W_encᵀ (x' − b_dec) + b_enc              [d_sae]  (b_dec = b_pre)
 *   latents = ReLU(TopK_k(pre))                        k non-zero at most
 *   x̂       = (W_dec latents + b_dec) / activationScale   [d_in], back in raw units
 *
 * BatchTopK SAEs select the top k·batch pre-activations over a whole batch while training;
 * at inference a latent fires when its pre-activation exceeds the learned `threshold`
 * (a JumpReLU with one threshold, which is how SAELens saves them).
 *
 * Weights use SAELens's layout so its files load without transposes: W_enc [d_in, d_sae],
 * W_dec [d_sae, d_in] (row j = latent j's decoder direction), b_enc [d_sae], b_dec [d_in].
 *
 * @example
 * const sae = Sae.random({ dIn: 64, dSae: 512, k: 8, architecture: "topk", hookName: "blocks.1.hook_resid_post" }, 0);
 * const { idx, val } = sae.encodeSparse(acts, n); // [n, k] active latents per token
 * const xHat = sae.reconstruct(acts, n);          // [n, 64]
 */
import { matmulInto } from "../../tensor/kernels/matmul.ts";
import { decodeNonZero, sortPairsDesc, sparseDecodeFixed, topkRow } from "../../tensor/kernels/sparse.ts";
import { Rng } from "../../tensor/random.ts";

export type SaeArchitecture = "topk" | "batchtopk";

export interface SaeConfig {
  dIn: number;
  dSae: number;
  /** Active latents per row (topk), or per row on average over a batch (batchtopk). */
  k: number;
  architecture: SaeArchitecture;
  /** TransformerLens hook name the SAE reads, e.g. "blocks.1.hook_resid_post". */
  hookName: string;
  modelName?: string;
  /** batchtopk at inference: a latent fires when its pre-activation > threshold. */
  threshold?: number;
  /** Subtract b_dec from the input before encoding (SAELens `apply_b_dec_to_input`); default true. */
  applyBDecToInput?: boolean;
  /**
   * Raw activations are multiplied by this before encoding and reconstructions divided by
   * it (training on normalised activations, e.g. mean norm √d_in); default 1.
   */
  activationScale?: number;
}

export interface SaeWeights {
  wEnc: Float32Array;
  bEnc: Float32Array;
  wDec: Float32Array;
  bDec: Float32Array;
}

/** Active latents per row: row i's entries are at [i·k, (i+1)·k); val 0 pads rows with fewer. */
export interface SparseLatents {
  idx: Int32Array;
  val: Float32Array;
  k: number;
}

/** Rows per encoder chunk, so the [rows, d_sae] pre-activation scratch stays near 16 MB. */
const CHUNK_FLOATS = 1 << 22;

export class Sae {
  readonly cfg: SaeConfig;
  wEnc: Float32Array; // [dIn, dSae]
  bEnc: Float32Array; // [dSae]
  wDec: Float32Array; // [dSae, dIn]
  bDec: Float32Array; // [dIn]

  constructor(cfg: SaeConfig, w: SaeWeights) {
    validateConfig(cfg);
    const { dIn, dSae } = cfg;
    const want: [keyof SaeWeights, number][] = [
      ["wEnc", dIn * dSae],
      ["bEnc", dSae],
      ["wDec", dSae * dIn],
      ["bDec", dIn],
    ];
    for (const [name, len] of want)
      if (w[name].length !== len)
        throw new Error(`Sae: ${name} has ${w[name].length} values, expected ${len} for d_in ${dIn}, d_sae ${dSae}`);
    this.cfg = { ...cfg };
    this.wEnc = w.wEnc;
    this.bEnc = w.bEnc;
    this.wDec = w.wDec;
    this.bDec = w.bDec;
  }

  /** Decoder rows random unit vectors, encoder = decoder transpose, biases zero. */
  static random(cfg: SaeConfig, seed: number): Sae {
    validateConfig(cfg);
    const { dIn, dSae } = cfg;
    const rng = new Rng(seed);
    const wDec = new Float32Array(dSae * dIn);
    for (let j = 0; j < dSae; j++) {
      let norm = 0;
      for (let t = 0; t < dIn; t++) {
        const v = rng.normal();
        wDec[j * dIn + t] = v;
        norm += v * v;
      }
      const inv = 1 / Math.sqrt(norm);
      for (let t = 0; t < dIn; t++) wDec[j * dIn + t]! *= inv;
    }
    const wEnc = new Float32Array(dIn * dSae);
    transposeInto(wDec, dSae, dIn, wEnc);
    return new Sae(cfg, { wEnc, bEnc: new Float32Array(dSae), wDec, bDec: new Float32Array(dIn) });
  }

  /** Pre-activations before TopK / threshold: [n, dSae]. */
  preActivations(x: Float32Array, n: number): Float32Array {
    this.checkInput(x, n, "preActivations");
    const out = new Float32Array(n * this.cfg.dSae);
    const rows = this.chunkRows();
    const xc = new Float32Array(Math.min(rows, n) * this.cfg.dIn);
    for (let r0 = 0; r0 < n; r0 += rows) {
      const m = Math.min(rows, n - r0);
      this.preChunk(x, r0, m, xc, out.subarray(r0 * this.cfg.dSae, (r0 + m) * this.cfg.dSae));
    }
    return out;
  }

  /** Dense latents [n, dSae]: ReLU(TopK(pre)) (topk), or pre where pre > threshold (batchtopk). */
  encode(x: Float32Array, n: number): Float32Array {
    const s = this.encodeSparse(x, n);
    const out = new Float32Array(n * this.cfg.dSae);
    for (let i = 0; i < n; i++)
      for (let p = i * s.k; p < (i + 1) * s.k; p++) {
        const v = s.val[p]!;
        if (v !== 0) out[i * this.cfg.dSae + s.idx[p]!] = v;
      }
    return out;
  }

  /**
   * Active latents per row, largest first: [n, k] with k = cfg.k (topk), or for a batchtopk
   * SAE with a threshold the largest number of latents that fired in any row of this call.
   */
  encodeSparse(x: Float32Array, n: number): SparseLatents {
    this.checkInput(x, n, "encodeSparse");
    const { dSae } = this.cfg;
    const useThreshold = this.cfg.architecture === "batchtopk" && this.cfg.threshold !== undefined;
    const rows = this.chunkRows();
    const xc = new Float32Array(Math.min(rows, n) * this.cfg.dIn);
    const pre = new Float32Array(Math.min(rows, n) * dSae);
    if (!useThreshold) {
      const k = Math.min(this.cfg.k, dSae);
      const idx = new Int32Array(n * k);
      const val = new Float32Array(n * k);
      for (let r0 = 0; r0 < n; r0 += rows) {
        const m = Math.min(rows, n - r0);
        this.preChunk(x, r0, m, xc, pre);
        for (let i = 0; i < m; i++) {
          const o = (r0 + i) * k;
          topkRow(pre, i * dSae, dSae, k, idx, val, o);
          sortPairsDesc(idx, val, o, k);
          for (let p = o; p < o + k; p++) if (!(val[p]! > 0)) val[p] = 0;
        }
      }
      return { idx, val, k };
    }
    // Threshold (JumpReLU) path: rows fire a variable number of latents; collect, then pack.
    const thr = Math.max(this.cfg.threshold!, 0);
    const counts = new Int32Array(n);
    let cap = Math.max(16, n * this.cfg.k);
    let allIdx = new Int32Array(cap);
    let allVal = new Float32Array(cap);
    let used = 0;
    for (let r0 = 0; r0 < n; r0 += rows) {
      const m = Math.min(rows, n - r0);
      this.preChunk(x, r0, m, xc, pre);
      for (let i = 0; i < m; i++) {
        const base = i * dSae;
        for (let j = 0; j < dSae; j++) {
          const v = pre[base + j]!;
          if (v > thr) {
            if (used === cap) {
              cap *= 2;
              const ni = new Int32Array(cap);
              ni.set(allIdx);
              allIdx = ni;
              const nv = new Float32Array(cap);
              nv.set(allVal);
              allVal = nv;
            }
            allIdx[used] = j;
            allVal[used++] = v;
            counts[r0 + i]!++;
          }
        }
      }
    }
    let k = 1;
    for (let i = 0; i < n; i++) k = Math.max(k, counts[i]!);
    const idx = new Int32Array(n * k);
    const val = new Float32Array(n * k);
    let p = 0;
    for (let i = 0; i < n; i++) {
      const c = counts[i]!;
      idx.set(allIdx.subarray(p, p + c), i * k);
      val.set(allVal.subarray(p, p + c), i * k);
      sortPairsDesc(idx, val, i * k, c);
      p += c;
    }
    return { idx, val, k };
  }

  /** Dense latents [n, dSae] → reconstruction [n, dIn] in raw units (zeros are skipped). */
  decode(latents: Float32Array, n: number): Float32Array {
    const { dIn, dSae } = this.cfg;
    if (latents.length !== n * dSae)
      throw new Error(`Sae.decode: latents have ${latents.length} values, expected ${n} × ${dSae}`);
    let nz = 0;
    for (let i = 0; i < latents.length; i++) if (latents[i] !== 0) nz++;
    const out = new Float32Array(n * dIn);
    if (nz > latents.length / 8) {
      // Mostly dense (e.g. steering vectors): one matrix product is faster than row loops.
      matmulInto({ a: latents, b: this.wDec, out, batchA: 1, batchB: 1, m: n, k: dSae, n: dIn });
      for (let i = 0; i < n; i++) for (let t = 0; t < dIn; t++) out[i * dIn + t]! += this.bDec[t]!;
    } else decodeNonZero(n, dSae, dIn, latents, this.wDec, this.bDec, out);
    this.unscale(out);
    return out;
  }

  /** Sparse latents ([n, k], as from encodeSparse) → reconstruction [n, dIn] in raw units. */
  decodeSparse(s: SparseLatents, n: number): Float32Array {
    const { dIn, dSae } = this.cfg;
    if (s.idx.length !== n * s.k || s.val.length !== n * s.k)
      throw new Error(`Sae.decodeSparse: expected ${n} × ${s.k} indices and values`);
    for (let p = 0; p < s.idx.length; p++) {
      const j = s.idx[p]!;
      if (j < 0 || j >= dSae) throw new Error(`Sae.decodeSparse: latent index ${j} outside [0, ${dSae})`);
    }
    const out = new Float32Array(n * dIn);
    sparseDecodeFixed(n, dIn, s.k, s.idx, s.val, this.wDec, this.bDec, out);
    this.unscale(out);
    return out;
  }

  /** decode(encode(x)) without the dense latents: [n, dIn]. */
  reconstruct(x: Float32Array, n: number): Float32Array {
    return this.decodeSparse(this.encodeSparse(x, n), n);
  }

  /** Unit-norm copy of latent j's decoder direction (row j of W_dec): [dIn]. */
  decoderDirection(j: number): Float32Array {
    const { dIn, dSae } = this.cfg;
    if (!Number.isInteger(j) || j < 0 || j >= dSae)
      throw new Error(`Sae.decoderDirection: latent ${j} outside [0, ${dSae})`);
    const row = this.wDec.slice(j * dIn, (j + 1) * dIn);
    let norm = 0;
    for (let t = 0; t < dIn; t++) norm += row[t]! * row[t]!;
    norm = Math.sqrt(norm);
    if (norm > 0) for (let t = 0; t < dIn; t++) row[t]! /= norm;
    return row;
  }

  // ------------------------------------------------------------------ internals

  private chunkRows(): number {
    return Math.max(1, Math.floor(CHUNK_FLOATS / this.cfg.dSae));
  }

  private checkInput(x: Float32Array, n: number, what: string): void {
    if (!Number.isInteger(n) || n < 0) throw new Error(`Sae.${what}: row count ${n} is not a non-negative integer`);
    if (x.length !== n * this.cfg.dIn)
      throw new Error(`Sae.${what}: input has ${x.length} values, expected ${n} × d_in ${this.cfg.dIn}`);
  }

  /** pre[0..m) = W_encᵀ(s·x[r0+i] − b_dec) + b_enc for m rows from r0; xc is scratch [m, dIn]. */
  private preChunk(x: Float32Array, r0: number, m: number, xc: Float32Array, pre: Float32Array): void {
    const { dIn, dSae } = this.cfg;
    const s = this.cfg.activationScale ?? 1;
    const sub = this.cfg.applyBDecToInput !== false;
    const b = this.bDec;
    for (let i = 0; i < m; i++) {
      const src = (r0 + i) * dIn;
      const dst = i * dIn;
      for (let t = 0; t < dIn; t++) xc[dst + t] = s * x[src + t]! - (sub ? b[t]! : 0);
    }
    const out = pre.length === m * dSae ? pre : pre.subarray(0, m * dSae);
    matmulInto({ a: xc.subarray(0, m * dIn), b: this.wEnc, out, batchA: 1, batchB: 1, m, k: dIn, n: dSae });
    const be = this.bEnc;
    for (let i = 0; i < m; i++) {
      const o = i * dSae;
      for (let j = 0; j < dSae; j++) out[o + j]! += be[j]!;
    }
  }

  private unscale(out: Float32Array): void {
    const s = this.cfg.activationScale ?? 1;
    if (s !== 1) {
      const inv = 1 / s;
      for (let i = 0; i < out.length; i++) out[i]! *= inv;
    }
  }
}

export function validateConfig(cfg: SaeConfig): void {
  const bad = (field: string, why: string) => new Error(`SaeConfig.${field}: ${why}`);
  for (const f of ["dIn", "dSae", "k"] as const)
    if (!Number.isInteger(cfg[f]) || cfg[f] < 1) throw bad(f, `${cfg[f]} is not a positive integer`);
  if (cfg.k > cfg.dSae) throw bad("k", `${cfg.k} exceeds dSae ${cfg.dSae}`);
  if (cfg.architecture !== "topk" && cfg.architecture !== "batchtopk")
    throw bad("architecture", `'${cfg.architecture}' is not "topk" or "batchtopk"`);
  if (typeof cfg.hookName !== "string") throw bad("hookName", "must be a string");
  if (cfg.threshold !== undefined && !Number.isFinite(cfg.threshold))
    throw bad("threshold", `${cfg.threshold} is not finite`);
  const s = cfg.activationScale;
  if (s !== undefined && !(Number.isFinite(s) && s > 0)) throw bad("activationScale", `${s} is not a positive number`);
}

/** dst[c, r] = src[r, c] for src [rows, cols]; blocked for cache reuse. */
export function transposeInto(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B)
    for (let c0 = 0; c0 < cols; c0 += B) {
      const r1 = Math.min(r0 + B, rows);
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c]!;
    }
}
