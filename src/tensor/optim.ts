/**
 * emlab's optimisers and learning-rate schedules: AdamW (decoupled weight decay), SGD with
 * momentum, global-norm gradient clipping, linear warm-up then linear or cosine decay. They
 * update `param.data` in place from `param.grad` in one loop per tensor.
 *
 * Adam has two front ends over the same update (Kingma & Ba, PyTorch's formula): `AdamW`
 * for Tensors, whose gradients the tape allocates, and `BufferAdam` for parameters held as
 * raw buffers whose gradients a hand-written backward adds into (the SAE trainer), with
 * unit-norm rows as an option. Their loops are kernels: native C or TypeScript for AdamW,
 * wasm SIMD (kernels/simd.ts) or TypeScript (kernels/sparse.ts) for BufferAdam.
 *
 * @example
 *   const opt = new AdamW(params, { lr: 3e-4, weightDecay: 0.1 });
 *   const sched = warmupSchedule({ peak: 3e-4, warmup: 100, total: 1000, decay: "cosine" });
 *   backward(loss); clipGradNorm(params, 1.0); opt.step(sched(step)); opt.zeroGrad();
 */
import { markWeightsChanged } from "./kernels/bf16.ts";
import { nativeFused } from "./kernels/fused.ts";
import { type AdamHyper, adam as adamLoop, adamUnitRows as adamUnitRowsLoop } from "./kernels/sparse.ts";
import type { Tensor } from "./tensor.ts";

export interface AdamWOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Params (by identity) that get no weight decay, e.g. norms and biases. */
  noDecay?: Set<Tensor>;
}

export interface OptimizerState {
  step: number;
  /** Per-param moment buffers, in the order of the params array. */
  buffers: Float32Array[][];
}

export class AdamW {
  readonly params: Tensor[];
  lr: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;
  private readonly noDecay: Set<Tensor>;
  private m: Float32Array[];
  private v: Float32Array[];
  stepCount = 0;

  constructor(params: Tensor[], opts: AdamWOptions = {}) {
    this.params = params;
    this.lr = opts.lr ?? 1e-3;
    this.b1 = opts.beta1 ?? 0.9;
    this.b2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.wd = opts.weightDecay ?? 0.01;
    this.noDecay = opts.noDecay ?? new Set();
    this.m = params.map((p) => new Float32Array(p.size));
    this.v = params.map((p) => new Float32Array(p.size));
  }

  /** One update with learning rate `lr` (default: this.lr). Params without a grad are skipped. */
  step(lr = this.lr): void {
    markWeightsChanged(this.params.map((p) => p.data)); // packed bf16 copies go stale
    this.stepCount++;
    const t = this.stepCount;
    const b1 = this.b1;
    const b2 = this.b2;
    const c1 = 1 / (1 - b1 ** t);
    const c2 = 1 / (1 - b2 ** t);
    const eps = this.eps;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      const w = p.data;
      const m = this.m[i]!;
      const v = this.v[i]!;
      const decay = this.noDecay.has(p) ? 1 : 1 - lr * this.wd;
      const native = nativeFused();
      if (native) {
        native.adamw(w, g, m, v, lr, b1, b2, eps, decay, c1, c2);
        return;
      }
      for (let j = 0; j < w.length; j++) {
        const gj = g[j]!;
        const mj = b1 * m[j]! + (1 - b1) * gj;
        const vj = b2 * v[j]! + (1 - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        w[j] = w[j]! * decay - (lr * mj * c1) / (Math.sqrt(vj * c2) + eps);
      }
    });
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  state(): OptimizerState {
    return { step: this.stepCount, buffers: this.params.map((_, i) => [this.m[i]!, this.v[i]!]) };
  }
  loadState(s: OptimizerState): void {
    if (s.buffers.length !== this.params.length) {
      throw new Error(`AdamW.loadState: ${s.buffers.length} buffers for ${this.params.length} params`);
    }
    this.stepCount = s.step;
    s.buffers.forEach(([m, v], i) => {
      if (m!.length !== this.params[i]!.size) throw new Error(`AdamW.loadState: buffer ${i} has the wrong size`);
      this.m[i]!.set(m!);
      this.v[i]!.set(v!);
    });
  }
}

/** The loops a BufferAdam runs and where its moments live: TypeScript arrays, or a SimdArena. */
export interface AdamKernels {
  /** Adam over one flat parameter; zeroes the gradient. */
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper): void;
  /** Adam on rows of length d kept at unit norm (parallel gradient removed first); zeroes g. */
  adamUnitRows(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, d: number, h: AdamHyper): void;
  allocF32(n: number): Float32Array;
}

export type { AdamHyper };

/** The TypeScript loops of kernels/sparse.ts, moments in ordinary arrays. */
const ADAM_LOOPS: AdamKernels = {
  adam: adamLoop,
  adamUnitRows: adamUnitRowsLoop,
  allocF32: (n) => new Float32Array(n),
};

/** A parameter held as raw buffers: its values and the gradient a backward adds into. */
export interface BufferParam {
  data: Float32Array;
  grad: Float32Array;
  /**
   * Keep rows of this length at unit norm (an SAE's decoder): each step removes the gradient's
   * component along its row, steps, and re-normalises the row.
   */
  unitRows?: number;
}

export interface BufferAdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Default: the TypeScript loops; a SimdArena that holds the parameters runs the wasm SIMD loops. */
  kernels?: AdamKernels;
}

/**
 * Adam without weight decay over raw buffers (see the file's comment). A step reads every
 * gradient and zeroes it, so the next backward adds into clean buffers; there is no zeroGrad.
 *
 * @example
 *   const opt = new BufferAdam([{ data: wDec, grad: gDec, unitRows: d }, { data: bDec, grad: gB }], { kernels: arena });
 *   backwardInto(gDec, gB); opt.step(lr);
 */
export class BufferAdam {
  readonly params: readonly BufferParam[];
  lr: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly kernels: AdamKernels;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  stepCount = 0;

  constructor(params: readonly BufferParam[], opts: BufferAdamOptions = {}) {
    for (const [i, p] of params.entries()) {
      if (p.grad.length !== p.data.length)
        throw new Error(`BufferAdam: param ${i} has ${p.data.length} values but a ${p.grad.length}-value gradient`);
      const d = p.unitRows;
      if (d !== undefined && (!Number.isInteger(d) || d < 1 || p.data.length % d !== 0))
        throw new Error(`BufferAdam: param ${i} (${p.data.length} values) is not made of rows of ${d}`);
    }
    this.params = params;
    this.lr = opts.lr ?? 1e-3;
    this.b1 = opts.beta1 ?? 0.9;
    this.b2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.kernels = opts.kernels ?? ADAM_LOOPS;
    this.m = params.map((p) => this.kernels.allocF32(p.data.length));
    this.v = params.map((p) => this.kernels.allocF32(p.data.length));
  }

  /** One update of every parameter with learning rate `lr` (default: this.lr); zeroes the gradients. */
  step(lr = this.lr): void {
    const t = ++this.stepCount;
    const h: AdamHyper = { lr, b1: this.b1, b2: this.b2, eps: this.eps, c1: 1 - this.b1 ** t, c2: 1 - this.b2 ** t };
    const K = this.kernels;
    this.params.forEach((p, i) => {
      if (p.unitRows !== undefined) K.adamUnitRows(p.data, p.grad, this.m[i]!, this.v[i]!, p.unitRows, h);
      else K.adam(p.data, p.grad, this.m[i]!, this.v[i]!, h);
    });
  }

  state(): OptimizerState {
    return { step: this.stepCount, buffers: this.params.map((_, i) => [this.m[i]!, this.v[i]!]) };
  }
  loadState(s: OptimizerState): void {
    if (s.buffers.length !== this.params.length) {
      throw new Error(`BufferAdam.loadState: ${s.buffers.length} buffers for ${this.params.length} params`);
    }
    s.buffers.forEach(([m, v], i) => {
      const n = this.params[i]!.data.length;
      if (m?.length !== n || v?.length !== n) throw new Error(`BufferAdam.loadState: buffer ${i} has the wrong size`);
    });
    this.stepCount = s.step;
    s.buffers.forEach(([m, v], i) => {
      this.m[i]!.set(m!);
      this.v[i]!.set(v!);
    });
  }
}

export class SGD {
  readonly params: Tensor[];
  lr: number;
  private readonly momentum: number;
  private readonly wd: number;
  private buf: Float32Array[];

  constructor(params: Tensor[], opts: { lr?: number; momentum?: number; weightDecay?: number } = {}) {
    this.params = params;
    this.lr = opts.lr ?? 1e-2;
    this.momentum = opts.momentum ?? 0;
    this.wd = opts.weightDecay ?? 0;
    this.buf = params.map((p) => new Float32Array(p.size));
  }
  step(lr = this.lr): void {
    markWeightsChanged(this.params.map((p) => p.data)); // packed bf16 copies go stale
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      const w = p.data;
      const b = this.buf[i]!;
      for (let j = 0; j < w.length; j++) {
        const gj = g[j]! + this.wd * w[j]!;
        const bj = this.momentum * b[j]! + gj;
        b[j] = bj;
        w[j]! -= lr * bj;
      }
    });
  }
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
}

/** Scales all grads so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  let ss = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let j = 0; j < g.length; j++) ss += g[j]! * g[j]!;
  }
  const norm = Math.sqrt(ss);
  if (norm > maxNorm && norm > 0) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) {
      const g = p.grad;
      if (g) for (let j = 0; j < g.length; j++) g[j]! *= s;
    }
  }
  return norm;
}

export interface ScheduleOptions {
  peak: number;
  warmup: number;
  total: number;
  decay?: "linear" | "cosine" | "constant";
  /** Final learning rate as a fraction of peak (default 0). */
  minRatio?: number;
}

/** step (0-based) → learning rate: linear warm-up to `peak`, then linear/cosine decay. */
export function warmupSchedule(o: ScheduleOptions): (step: number) => number {
  const min = o.peak * (o.minRatio ?? 0);
  return (step) => {
    if (o.warmup > 0 && step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
    if (o.decay === "constant" || !o.decay) return o.peak;
    const span = Math.max(1, o.total - o.warmup);
    const frac = Math.min(1, (step - o.warmup) / span);
    if (o.decay === "linear") return min + (o.peak - min) * (1 - frac);
    return min + (o.peak - min) * 0.5 * (1 + Math.cos(Math.PI * frac));
  };
}

/** Thrown by training loops when the loss stops being a finite number. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
  ) {
    super(`loss is ${loss} at step ${step}: training diverged (lower the learning rate or check the data)`);
    this.name = "NonFiniteLossError";
  }
}

/** Throws NonFiniteLossError when loss is NaN or ±Inf. */
export function assertFiniteLoss(loss: number, step: number): void {
  if (!Number.isFinite(loss)) throw new NonFiniteLossError(step, loss);
}
