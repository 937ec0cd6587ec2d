/**
 * One training step of a TopK / BatchTopK sparse autoencoder, forward and hand-written
 * backward, on buffers allocated once (internal to train.ts).
 *
 * Shapes: B batch rows, d = d_in, n = d_sae. The encoder is kept transposed, encT [n, d]
 * (row j = latent j's encoder weights), so that both the encoder-weight gradient and the
 * decoder are row-sparse: with TopK only k latents per row are active, and each active
 * (row i, latent j) touches two contiguous d-length rows. Only the encoder forward
 * (xc · encTᵀ, [B, d] × [d, n]) is a dense product; PyTorch's autograd does three.
 *
 * Loss (per batch, summed over d, averaged over rows as SAELens does):
 *   L = (1/B) Σ_i ‖x̂_i − x_i‖²  +  auxCoef · (1/B) Σ_i ‖ê_i − e_i‖²
 * where e_i = x_i − x̂_i (no gradient) and ê_i = Σ_{j∈A_i} ReLU(pre_ij) W_dec[j], A_i the top
 * k_aux pre-activations among dead latents (Gao et al. 2024, appendix A.2).
 */
import { matmulInto } from "../../tensor/kernels/matmul.ts";
import { SimdArena } from "../../tensor/kernels/simd.ts";

export interface StepParams {
  encT: Float32Array; // [n, d]
  bEnc: Float32Array; // [n]
  wDec: Float32Array; // [n, d], rows unit-norm
  bDec: Float32Array; // [d]
}

export interface StepResult {
  /** Mean squared error per element, (1/(B·d)) Σ (x̂ − x)². */
  mse: number;
  /** Σ‖x̂ − x‖² / Σ‖x − mean(x)‖² over the batch. */
  fvu: number;
  /** Mean number of active latents per row. */
  l0: number;
  /** The auxiliary loss term (with its coefficient), 0 without dead latents. */
  auxLoss: number;
  /** BatchTopK: the smallest positive activation kept in this batch (NaN if none). */
  minKept: number;
}

export class SaeStep {
  readonly grads: StepParams;
  /** The gradients a row's backward adds into (views of `grads`). */
  private readonly rowGrads: { dec: Float32Array; enc: Float32Array; bias: Float32Array };
  // per-batch buffers
  private readonly xc: Float32Array; // [B, d]  x − b_dec
  private readonly pre: Float32Array; // [B, n]
  private readonly rowStart: Int32Array; // [B + 1] CSR over active latents
  private readonly idx: Int32Array; // [B·k]
  private readonly val: Float32Array; // [B·k]  ReLU'd activations
  private readonly xhat: Float32Array; // [B, d]
  private readonly delta: Float32Array; // [B, d]  ∂L/∂x̂
  private readonly heapIdx: Int32Array;
  private readonly heapVal: Float32Array;
  private readonly rowCount: Int32Array;
  // auxiliary-loss buffers
  private readonly auxIdx: Int32Array; // [≤ n]
  private readonly auxVal: Float32Array;
  private readonly deadPre: Float32Array; // [n] one row's dead pre-activations
  private readonly ehat: Float32Array; // [d] one row at a time
  private readonly mean: Float64Array; // [d] scratch for the batch variance

  /** Buffers and SIMD kernels; the trainer allocates its parameters here too. */
  readonly arena: SimdArena;

  /** Float32/Int32 elements a step's own buffers take in an arena. */
  static arenaFloats(d: number, n: number, batch: number, k: number, architecture: "topk" | "batchtopk"): number {
    const heap = architecture === "batchtopk" ? batch * k : 0;
    return 2 * n * d + n + d + batch * n + 3 * batch * d + 2 * batch * k + 2 * heap + 2 * batch + 1 + d + 3 * n;
  }

  constructor(
    readonly d: number,
    readonly n: number,
    readonly batch: number,
    readonly k: number,
    readonly architecture: "topk" | "batchtopk",
    readonly applyBDecToInput: boolean,
    arena?: SimdArena,
  ) {
    const B = batch;
    const a = arena ?? new SimdArena(SaeStep.arenaFloats(d, n, B, k, architecture));
    this.arena = a;
    this.grads = {
      encT: a.allocF32(n * d),
      bEnc: a.allocF32(n),
      wDec: a.allocF32(n * d),
      bDec: a.allocF32(d),
    };
    this.rowGrads = { dec: this.grads.wDec, enc: this.grads.encT, bias: this.grads.bEnc };
    this.xc = a.allocF32(B * d);
    this.pre = a.allocF32(B * n);
    this.rowStart = a.allocI32(B + 1);
    this.idx = a.allocI32(B * k);
    this.val = a.allocF32(B * k);
    this.xhat = a.allocF32(B * d);
    this.delta = a.allocF32(B * d);
    const heap = architecture === "batchtopk" ? B * k : 0;
    this.heapIdx = a.allocI32(heap);
    this.heapVal = a.allocF32(heap);
    this.rowCount = a.allocI32(B);
    this.ehat = a.allocF32(d);
    this.deadPre = a.allocF32(n);
    this.auxIdx = a.allocI32(n);
    this.auxVal = a.allocF32(n);
    this.mean = new Float64Array(d);
  }

  /**
   * Forward + backward for one batch `x` [B, d] (already in SAE units). Adds the gradients
   * into `this.grads` (the caller zeroes them, e.g. inside the optimiser loop). `fired`
   * receives the number of activations per latent; `deadList` (length nDead) names the
   * latents the auxiliary loss may use.
   */
  run(
    p: StepParams,
    x: Float32Array,
    fired: Float64Array,
    deadList: Int32Array,
    nDead: number,
    kAux: number,
    auxCoef: number,
  ): StepResult {
    const { d, n, batch: B, k } = this;
    const { xc, pre, rowStart, idx, val, xhat, delta, arena: K } = this;
    const g = this.grads;

    // ---- encoder forward: pre = (x − b_dec) · encTᵀ + b_enc   [B, n]
    xc.set(x);
    if (this.applyBDecToInput) for (let i = 0; i < B; i++) K.axpy(d, -1, p.bDec, 0, xc, i * d);
    matmulInto({ a: xc, b: p.encT, out: pre, batchA: 1, batchB: 1, m: B, k: d, n, transB: true });
    for (let i = 0; i < B; i++) K.axpy(n, 1, p.bEnc, 0, pre, i * n);

    // ---- activation: TopK per row, or BatchTopK over the batch → CSR (idx, val = ReLU(pre))
    let minKept = Number.NaN;
    if (this.architecture === "topk") {
      for (let i = 0; i < B; i++) {
        rowStart[i] = i * k;
        K.topkRow(pre, i * n, n, k, idx, val, i * k);
      }
      rowStart[B] = B * k;
    } else minKept = this.batchTopk();
    let active = 0;
    for (let q = 0; q < rowStart[B]!; q++) {
      const v = val[q]!;
      if (v > 0) {
        fired[idx[q]!]!++;
        active++;
      } else val[q] = 0;
    }

    // ---- decoder forward (row-sparse) and the reconstruction error
    let se = 0;
    for (let i = 0; i < B; i++) {
      const o = i * d;
      K.decodeRow(d, idx, val, rowStart[i]!, rowStart[i + 1]!, p.wDec, p.bDec, xhat, o);
      for (let t = 0; t < d; t++) {
        const r = xhat[o + t]! - x[o + t]!;
        se += r * r;
        delta[o + t] = (2 / B) * r;
      }
    }
    const fvu = se / Math.max(batchVariance(x, B, d, this.mean), 1e-30);

    // ---- backward through the decoder and ReLU∘TopK into the encoder (row-sparse)
    for (let i = 0; i < B; i++)
      K.sparseBackwardRow(d, idx, val, rowStart[i]!, rowStart[i + 1]!, p.wDec, delta, i * d, xc, i * d, this.rowGrads);
    for (let i = 0; i < B; i++) {
      const o = i * d;
      for (let t = 0; t < d; t++) g.bDec[t]! += delta[o + t]!;
    }

    // ---- auxiliary TopK loss on dead latents
    let auxLoss = 0;
    if (nDead > 0 && auxCoef > 0 && kAux > 0) auxLoss = this.auxBackward(p, nDead, deadList, kAux, auxCoef);

    // ---- b_dec through the encoder input: ∂L/∂b_dec −= Σ_j (Σ_i ∂L/∂pre_ij) encT[j]
    if (this.applyBDecToInput) {
      for (let j = 0; j < n; j++) {
        const gb = g.bEnc[j]!;
        if (gb !== 0) K.axpy(d, -gb, p.encT, j * d, g.bDec, 0);
      }
    }
    return { mse: se / (B * d), fvu, l0: active / B, auxLoss, minKept };
  }

  /** Top k·B pre-activations over the whole batch; fills the CSR and returns the smallest positive kept. */
  private batchTopk(): number {
    const { n, batch: B, k, pre, rowStart, idx, val, heapIdx, heapVal, rowCount } = this;
    const K = B * k;
    this.arena.topkRow(pre, 0, B * n, K, heapIdx, heapVal, 0);
    rowCount.fill(0);
    for (let q = 0; q < K; q++) rowCount[Math.floor(heapIdx[q]! / n)]!++;
    rowStart[0] = 0;
    for (let i = 0; i < B; i++) rowStart[i + 1] = rowStart[i]! + rowCount[i]!;
    rowCount.fill(0);
    let minPos = Number.POSITIVE_INFINITY;
    for (let q = 0; q < K; q++) {
      const flat = heapIdx[q]!;
      const i = Math.floor(flat / n);
      const at = rowStart[i]! + rowCount[i]!++;
      const v = heapVal[q]!;
      idx[at] = flat - i * n;
      val[at] = v;
      if (v > 0 && v < minPos) minPos = v;
    }
    return Number.isFinite(minPos) ? minPos : Number.NaN;
  }

  /** Adds the auxiliary loss's gradients; returns auxCoef · (1/B) Σ‖ê − e‖². */
  private auxBackward(p: StepParams, nDead: number, deadList: Int32Array, kAux: number, auxCoef: number): number {
    const { d, n, batch: B, pre, xc, delta, ehat } = this;
    const ka = Math.min(kAux, nDead);
    const { deadPre, auxIdx: aIdx, auxVal: aVal, arena: K } = this;
    let loss = 0;
    for (let i = 0; i < B; i++) {
      const o = i * d;
      for (let q = 0; q < nDead; q++) deadPre[q] = pre[i * n + deadList[q]!]!;
      K.topkRow(deadPre, 0, nDead, ka, aIdx, aVal, 0);
      for (let q = 0; q < ka; q++) {
        aIdx[q] = deadList[aIdx[q]!]!; // position among the dead → latent
        if (!(aVal[q]! > 0)) aVal[q] = 0; // ReLU
      }
      // ê_i and the aux residual: e_i = x_i − x̂_i = −(B/2)·delta_i
      K.decodeRow(d, aIdx, aVal, 0, ka, p.wDec, null, ehat, 0);
      for (let t = 0; t < d; t++) {
        const diff = ehat[t]! + (B / 2) * delta[o + t]!; // ê − e
        loss += diff * diff;
        ehat[t] = ((2 * auxCoef) / B) * diff; // reuse as ∂L_aux/∂ê
      }
      K.sparseBackwardRow(d, aIdx, aVal, 0, ka, p.wDec, ehat, 0, xc, o, this.rowGrads);
    }
    return (auxCoef * loss) / B;
  }
}

/** Σ_i ‖x_i − mean(x)‖² over B rows of width d. */
function batchVariance(x: Float32Array, B: number, d: number, mean: Float64Array): number {
  mean.fill(0);
  for (let i = 0; i < B; i++) for (let t = 0; t < d; t++) mean[t]! += x[i * d + t]!;
  for (let t = 0; t < d; t++) mean[t]! /= B;
  let v = 0;
  for (let i = 0; i < B; i++)
    for (let t = 0; t < d; t++) {
      const c = x[i * d + t]! - mean[t]!;
      v += c * c;
    }
  return v;
}
