/**
 * Training and evaluating TopK / BatchTopK sparse autoencoders (Gao et al. 2024; BatchTopK:
 * Bussmann et al. 2024), with SAELens's metric names.
 *
 * Recipe: b_dec (b_pre) starts at the geometric median of a sample; decoder rows are random
 * unit vectors and the encoder starts as their transpose; each step removes the gradient
 * component parallel to each decoder row, takes an Adam step and re-normalises the rows;
 * latents that have not fired for `deadAfter` tokens get an auxiliary TopK loss (k_aux of
 * them reconstruct the main reconstruction's error). BatchTopK keeps the top k·batch
 * pre-activations of a batch and learns the inference threshold as a running average of
 * the smallest positive activation kept.
 *
 * @example
 * const src = matrixSource(acts, n, 896, 0);
 * const { sae, metrics } = trainSae(src, { k: 32, dSae: 16384, batchSize: 4096, lr: 1e-4, seed: 0, steps: 2000,
 *   hookName: "blocks.12.hook_resid_post", onStep: (s) => s.step % 100 || console.log(s) });
 * evaluateSae(sae, heldOut, m); // { l0, fvu, explainedVariance, deadFraction, denseFraction, mse, ... }
 */

import { SimdArena } from "../../tensor/kernels/simd.ts";
import { BufferAdam } from "../../tensor/optim.ts";
import { Rng } from "../../tensor/random.ts";
import { Sae, type SaeArchitecture, transposeInto } from "../sae/sae.ts";
import { SaeStep, type StepParams } from "./step.ts";

/** Anything that yields batches of activations [size, dIn] (raw units). */
export interface ActivationSource {
  readonly dIn: number;
  /** The next `size` rows; written into `out` (length size·dIn) when given, else a new array. */
  nextBatch(size: number, out?: Float32Array): Float32Array;
}

/** An in-memory [n, dIn] matrix as a source: rows in a fresh seeded shuffle each epoch. */
export function matrixSource(data: Float32Array, n: number, dIn: number, seed = 0): ActivationSource {
  if (data.length !== n * dIn) throw new Error(`matrixSource: ${data.length} values is not ${n} × ${dIn}`);
  if (n < 1) throw new Error("matrixSource: no rows");
  const rng = new Rng(seed);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  let at = n;
  return {
    dIn,
    nextBatch(size, out) {
      const dst = out ?? new Float32Array(size * dIn);
      if (dst.length !== size * dIn) throw new Error(`nextBatch: out has ${dst.length} values, not ${size} × ${dIn}`);
      for (let r = 0; r < size; r++) {
        if (at === n) {
          for (let i = n - 1; i > 0; i--) {
            const j = rng.int(i + 1);
            const t = order[i]!;
            order[i] = order[j]!;
            order[j] = t;
          }
          at = 0;
        }
        const src = order[at++]! * dIn;
        dst.set(data.subarray(src, src + dIn), r * dIn);
      }
      return dst;
    },
  };
}

export interface SaeStepMetrics {
  step: number;
  /** Mean squared error per element of this batch (in SAE units). */
  mse: number;
  /** Fraction of variance unexplained on this batch. */
  fvu: number;
  /** Mean active latents per row. */
  l0: number;
  /** Fraction of latents that have not fired for `deadAfter` tokens. */
  dead: number;
  auxLoss: number;
  lr: number;
  /** BatchTopK: the running inference threshold. */
  threshold?: number;
}

export interface SaeTrainOptions {
  k: number;
  dSae: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Number of steps (default 1000). */
  steps?: number;
  architecture?: SaeArchitecture;
  hookName?: string;
  modelName?: string;
  /** Dead latents used by the auxiliary loss per row; default min(dIn/2, dSae/2). */
  auxK?: number;
  /** Auxiliary loss coefficient; default 1/32. */
  auxCoef?: number;
  /** A latent is dead after this many tokens without firing; default min(10M, total tokens / 5). */
  deadAfter?: number;
  /** "mean_norm": scale activations so their mean norm is √dIn (recorded as activationScale). Default "none". */
  normalize?: "none" | "mean_norm";
  /**
   * Rows read from the source before training for b_dec's geometric median (and the scale);
   * default min(4096, 4·batch). A matrix source serves them again in later epochs.
   */
  initSamples?: number;
  betas?: [number, number];
  eps?: number;
  /** Linear warm-up steps (default 0) and the final fraction of steps with linear decay to 0 (default 0). */
  warmupSteps?: number;
  decayFraction?: number;
  /** BatchTopK threshold running-average rate; default 0.01. */
  thresholdLr?: number;
  /** Subtract b_dec from inputs (SAELens apply_b_dec_to_input); default true. */
  applyBDecToInput?: boolean;
  onStep?: (s: SaeStepMetrics) => void;
}

export interface SaeTrainMetrics {
  history: SaeStepMetrics[];
  final: SaeStepMetrics;
  tokens: number;
  seconds: number;
  activationScale: number;
  threshold?: number;
}

/**
 * The training state of one SAE, one batch at a time: trainSae's loop, and what a caller
 * uses to drive steps itself (benchmarks, streaming stores, checkpoint monitors).
 * Allocates every buffer once in the constructor.
 */
export class SaeTrainer {
  readonly dIn: number;
  readonly architecture: SaeArchitecture;
  /** Raw activations are multiplied by this inside the SAE (see SaeConfig.activationScale). */
  readonly activationScale: number;
  /** BatchTopK: the running inference threshold. */
  threshold: number | undefined;
  tokens = 0;
  steps = 0;
  private readonly p: StepParams;
  private readonly step: SaeStep;
  private readonly optimizer: BufferAdam;
  private readonly xs: Float32Array;
  private readonly fired: Float64Array;
  private readonly lastFired: Float64Array;
  private readonly deadList: Int32Array;
  private readonly auxK: number;
  private readonly auxCoef: number;
  private readonly deadAfter: number;

  /** `sample` [rows, dIn] (raw units) sets the activation scale and b_dec's geometric median. */
  constructor(
    dIn: number,
    private readonly opts: SaeTrainOptions,
    sample: Float32Array,
  ) {
    const { k, dSae: n, batchSize: B, lr } = opts;
    const steps = opts.steps ?? 1000;
    for (const [name, val] of [
      ["dIn", dIn],
      ["k", k],
      ["dSae", n],
      ["batchSize", B],
      ["steps", steps],
    ] as const)
      if (!Number.isInteger(val) || val < 1) throw new Error(`trainSae: ${name} ${val} is not a positive integer`);
    if (k > n) throw new Error(`trainSae: k ${k} exceeds dSae ${n}`);
    if (!(lr > 0)) throw new Error(`trainSae: lr ${lr} must be positive`);
    const rows = Math.floor(sample.length / dIn);
    if (rows < 1 || sample.length !== rows * dIn) throw new Error(`trainSae: the init sample is not [rows, ${dIn}]`);
    this.dIn = dIn;
    this.architecture = opts.architecture ?? "topk";
    this.auxK = opts.auxK ?? Math.max(1, Math.min(Math.floor(dIn / 2), Math.floor(n / 2)));
    this.auxCoef = opts.auxCoef ?? 1 / 32;
    this.deadAfter = opts.deadAfter ?? Math.min(10_000_000, Math.max(B, Math.floor((steps * B) / 5)));
    const applyB = opts.applyBDecToInput !== false;

    // scale and b_dec from the sample; decoder random unit rows; encoder = decoderᵀ
    let scale = 1;
    const xs0 = sample.slice();
    if (opts.normalize === "mean_norm") {
      let sum = 0;
      for (let i = 0; i < rows; i++) sum += Math.sqrt(sqNorm(xs0, i * dIn, dIn));
      scale = sum > 0 ? Math.sqrt(dIn) / (sum / rows) : 1;
      for (let i = 0; i < xs0.length; i++) xs0[i]! *= scale;
    }
    this.activationScale = scale;
    // One arena holds parameters, Adam moments and the step's buffers, for the SIMD kernels.
    const paramFloats = 2 * n * dIn + n + dIn;
    const arena = new SimdArena(3 * paramFloats + B * dIn + SaeStep.arenaFloats(dIn, n, B, k, this.architecture));
    const zeros = (): StepParams => ({
      encT: arena.allocF32(n * dIn),
      bEnc: arena.allocF32(n),
      wDec: arena.allocF32(n * dIn),
      bDec: arena.allocF32(dIn),
    });
    this.p = zeros();
    const init = Sae.random({ dIn, dSae: n, k, architecture: this.architecture, hookName: "" }, opts.seed);
    this.p.wDec.set(init.wDec);
    this.p.encT.set(init.wDec); // encoderᵀ = decoder at init
    if (applyB) this.p.bDec.set(geometricMedian(xs0, rows, dIn));
    this.xs = arena.allocF32(B * dIn);
    this.step = new SaeStep(dIn, n, B, k, this.architecture, applyB, arena);
    const g = this.step.grads;
    const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
    this.optimizer = new BufferAdam(
      [
        { data: this.p.encT, grad: g.encT },
        { data: this.p.bEnc, grad: g.bEnc },
        { data: this.p.bDec, grad: g.bDec },
        { data: this.p.wDec, grad: g.wDec, unitRows: dIn }, // unit decoder rows, parallel gradient removed
      ],
      { lr, beta1, beta2, eps: opts.eps ?? 1e-8, kernels: arena },
    );
    this.fired = new Float64Array(n);
    this.lastFired = new Float64Array(n);
    this.deadList = new Int32Array(n);
  }

  /** One optimiser step on `x` [batchSize, dIn] (raw units). */
  trainStep(x: Float32Array): SaeStepMetrics {
    const { opts, p, xs, fired, lastFired, deadList } = this;
    const n = opts.dSae;
    const B = opts.batchSize;
    if (x.length !== B * this.dIn)
      throw new Error(`SaeTrainer.trainStep: batch has ${x.length} values, not ${B} × ${this.dIn}`);
    const scale = this.activationScale;
    if (scale !== 1) for (let i = 0; i < xs.length; i++) xs[i] = scale * x[i]!;
    else xs.set(x);
    let nDead = 0;
    for (let j = 0; j < n; j++) if (this.tokens - lastFired[j]! >= this.deadAfter) deadList[nDead++] = j;
    fired.fill(0);
    const r = this.step.run(p, xs, fired, deadList, nDead, this.auxK, this.auxCoef);
    this.tokens += B;
    const s = ++this.steps;
    let dead = 0;
    for (let j = 0; j < n; j++) {
      if (fired[j]! > 0) lastFired[j] = this.tokens;
      else if (this.tokens - lastFired[j]! >= this.deadAfter) dead++;
    }
    if (this.architecture === "batchtopk" && Number.isFinite(r.minKept)) {
      const a = opts.thresholdLr ?? 0.01;
      this.threshold = this.threshold === undefined ? r.minKept : (1 - a) * this.threshold + a * r.minKept;
    }

    const lr = opts.lr * schedule(s, opts.steps ?? 1000, opts.warmupSteps ?? 0, opts.decayFraction ?? 0);
    this.optimizer.step(lr); // zeroes the gradients for the next step's backward
    return {
      step: s,
      mse: r.mse,
      fvu: r.fvu,
      l0: r.l0,
      dead: dead / n,
      auxLoss: r.auxLoss,
      lr,
      ...(this.threshold !== undefined ? { threshold: this.threshold } : {}),
    };
  }

  /** The SAE as trained so far (a copy: training can go on). */
  toSae(): Sae {
    const { opts, p, dIn } = this;
    const n = opts.dSae;
    const wEnc = new Float32Array(dIn * n);
    transposeInto(p.encT, n, dIn, wEnc);
    return new Sae(
      {
        dIn,
        dSae: n,
        k: opts.k,
        architecture: this.architecture,
        hookName: opts.hookName ?? "",
        ...(opts.modelName !== undefined ? { modelName: opts.modelName } : {}),
        ...(this.threshold !== undefined ? { threshold: this.threshold } : {}),
        ...(this.activationScale !== 1 ? { activationScale: this.activationScale } : {}),
        ...(opts.applyBDecToInput === false ? { applyBDecToInput: false } : {}),
      },
      { wEnc, bEnc: p.bEnc.slice(), wDec: p.wDec.slice(), bDec: p.bDec.slice() },
    );
  }
}

/** Trains an SAE on `source` for `opts.steps` steps; returns it with the per-step metrics. */
export function trainSae(source: ActivationSource, opts: SaeTrainOptions): { sae: Sae; metrics: SaeTrainMetrics } {
  const t0 = performance.now();
  const d = source.dIn;
  const steps = opts.steps ?? 1000;
  const nInit = opts.initSamples ?? Math.min(4096, 4 * opts.batchSize);
  const trainer = new SaeTrainer(d, opts, source.nextBatch(nInit));
  const x = new Float32Array(opts.batchSize * d);
  const history: SaeStepMetrics[] = [];
  for (let s = 1; s <= steps; s++) {
    const batch = source.nextBatch(opts.batchSize, x);
    const metrics = trainer.trainStep(batch);
    history.push(metrics);
    opts.onStep?.(metrics);
  }
  return {
    sae: trainer.toSae(),
    metrics: {
      history,
      final: history[history.length - 1]!,
      tokens: trainer.tokens,
      seconds: (performance.now() - t0) / 1000,
      activationScale: trainer.activationScale,
      ...(trainer.threshold !== undefined ? { threshold: trainer.threshold } : {}),
    },
  };
}

function schedule(s: number, steps: number, warmup: number, decayFraction: number): number {
  if (warmup > 0 && s <= warmup) return s / warmup;
  const decaySteps = Math.floor(steps * decayFraction);
  if (decaySteps > 0 && s > steps - decaySteps) return (steps - s + 1) / (decaySteps + 1);
  return 1;
}

function sqNorm(x: Float32Array, off: number, d: number): number {
  let s = 0;
  for (let t = 0; t < d; t++) s += x[off + t]! * x[off + t]!;
  return s;
}

/**
 * The geometric median of n points [n, d] (Weiszfeld's iterations from the mean): the point
 * minimising the sum of Euclidean distances, robust to outliers unlike the mean.
 */
export function geometricMedian(x: Float32Array, n: number, d: number, maxIter = 100, tol = 1e-6): Float32Array {
  if (x.length !== n * d || n < 1) throw new Error(`geometricMedian: ${x.length} values is not ${n} × ${d}`);
  const y = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) y[t]! += x[i * d + t]!;
  for (let t = 0; t < d; t++) y[t]! /= n;
  const next = new Float64Array(d);
  for (let it = 0; it < maxIter; it++) {
    next.fill(0);
    let wsum = 0;
    for (let i = 0; i < n; i++) {
      let dist = 0;
      for (let t = 0; t < d; t++) {
        const c = x[i * d + t]! - y[t]!;
        dist += c * c;
      }
      const w = 1 / Math.max(Math.sqrt(dist), 1e-8);
      wsum += w;
      for (let t = 0; t < d; t++) next[t]! += w * x[i * d + t]!;
    }
    let shift = 0;
    let norm = 0;
    for (let t = 0; t < d; t++) {
      const nt = next[t]! / wsum;
      shift += (nt - y[t]!) ** 2;
      norm += nt * nt;
      next[t] = nt;
    }
    y.set(next);
    if (Math.sqrt(shift) <= tol * Math.max(1, Math.sqrt(norm))) break;
  }
  return Float32Array.from(y);
}

export interface SaeEvaluation {
  /** Mean active latents per token. */
  l0: number;
  /** Mean squared error per element, raw units. */
  mse: number;
  /** Fraction of variance unexplained: Σ‖x − x̂‖² / Σ‖x − mean‖². */
  fvu: number;
  /** 1 − fvu (SAELens's explained_variance). */
  explainedVariance: number;
  /** Fraction of latents that never fired on these activations. */
  deadFraction: number;
  /** Fraction of latents firing on more than `denseThreshold` (0.1) of tokens. */
  denseFraction: number;
  /** Per-latent firing frequency [dSae]. */
  density: Float32Array;
}

/** Evaluates `sae` on activations [n, dIn] (raw units), in chunks. */
export function evaluateSae(sae: Sae, acts: Float32Array, n: number, denseThreshold = 0.1): SaeEvaluation {
  const { dIn: d, dSae } = sae.cfg;
  if (acts.length !== n * d) throw new Error(`evaluateSae: ${acts.length} values is not ${n} × ${d}`);
  if (n < 1) throw new Error("evaluateSae: no rows");
  const counts = new Float64Array(dSae);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) mean[t]! += acts[i * d + t]!;
  for (let t = 0; t < d; t++) mean[t]! /= n;
  let se = 0;
  let variance = 0;
  let active = 0;
  const chunk = 1024;
  for (let r0 = 0; r0 < n; r0 += chunk) {
    const rows = Math.min(chunk, n - r0);
    const x = acts.subarray(r0 * d, (r0 + rows) * d);
    const s = sae.encodeSparse(x, rows);
    for (let q = 0; q < s.val.length; q++)
      if (s.val[q]! > 0) {
        counts[s.idx[q]!]!++;
        active++;
      }
    const xhat = sae.decodeSparse(s, rows);
    for (let i = 0; i < rows * d; i++) {
      const e = x[i]! - xhat[i]!;
      se += e * e;
      const c = x[i]! - mean[i % d]!;
      variance += c * c;
    }
  }
  const density = new Float32Array(dSae);
  let deadN = 0;
  let denseN = 0;
  for (let j = 0; j < dSae; j++) {
    density[j] = counts[j]! / n;
    if (counts[j] === 0) deadN++;
    if (density[j]! > denseThreshold) denseN++;
  }
  const fvu = se / Math.max(variance, 1e-30);
  return {
    l0: active / n,
    mse: se / (n * d),
    fvu,
    explainedVariance: 1 - fvu,
    deadFraction: deadN / dSae,
    denseFraction: denseN / dSae,
    density,
  };
}
