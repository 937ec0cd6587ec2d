/**
 * The Tensor: a Float32Array in row-major order plus a shape, and the tape that records
 * operations for reverse-mode autodiff.
 *
 * Autodiff is a global tape: while gradients are enabled, every op whose inputs require a
 * gradient appends a node (its output and a closure that pushes the output's gradient to
 * its inputs). `backward(loss)` walks the tape in reverse, then clears it, so intermediate
 * buffers are released as soon as backward is done.
 *
 * @example
 *   const w = Tensor.randn([4, 3], 1, { requiresGrad: true });
 *   const loss = ops.mean(ops.square(ops.matmul(x, w)));
 *   backward(loss); // w.grad is a Float32Array of w's size
 */

import { nativeFused } from "./kernels/fused.ts";
import { Rng } from "./random.ts";

export type Shape = readonly number[];

/** A node of the tape: the op's output and the closure that back-propagates into inputs. */
interface TapeNode {
  out: Tensor;
  backward: (gradOut: Float32Array) => void;
}

let tape: TapeNode[] = [];
let gradEnabled = true;

export class Tensor {
  readonly data: Float32Array;
  readonly shape: Shape;
  /** Accumulated gradient (same size as data), or null before backward. */
  grad: Float32Array | null = null;
  requiresGrad: boolean;
  /** True when this tensor is the output of a recorded op (not a leaf). */
  hasNode = false;
  /** Optional name, used in error messages and by optimisers / checkpoints. */
  name?: string;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    const n = numel(shape);
    if (data.length !== n) {
      throw new Error(`Tensor: data length ${data.length} does not match shape [${shape.join(",")}] (${n} elements)`);
    }
    this.data = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }
  get rank(): number {
    return this.shape.length;
  }
  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new Error(`item: tensor has ${this.data.length} elements, shape [${this.shape}]`);
    return this.data[0]!;
  }
  toArray(): number[] {
    return Array.from(this.data);
  }
  /** A copy that does not require grad and is not on the tape. */
  detach(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }
  toString(): string {
    return `Tensor([${this.shape.join(", ")}]${this.requiresGrad ? ", requiresGrad" : ""})`;
  }

  static zeros(shape: Shape, opts: { requiresGrad?: boolean } = {}): Tensor {
    return new Tensor(new Float32Array(numel(shape)), [...shape], opts.requiresGrad);
  }
  static ones(shape: Shape, opts: { requiresGrad?: boolean } = {}): Tensor {
    return Tensor.full(shape, 1, opts);
  }
  static full(shape: Shape, value: number, opts: { requiresGrad?: boolean } = {}): Tensor {
    return new Tensor(new Float32Array(numel(shape)).fill(value), [...shape], opts.requiresGrad);
  }
  static scalar(value: number): Tensor {
    return new Tensor(Float32Array.of(value), []);
  }
  static from(values: ArrayLike<number>, shape?: Shape, opts: { requiresGrad?: boolean } = {}): Tensor {
    const data = Float32Array.from(values);
    return new Tensor(data, shape ? [...shape] : [data.length], opts.requiresGrad);
  }
  /** Normal(0, std²) entries from a seeded generator (an Rng or a seed). */
  static randn(shape: Shape, std = 1, opts: { seed?: number; rng?: Rng; requiresGrad?: boolean } = {}): Tensor {
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    return new Tensor(data, [...shape], opts.requiresGrad);
  }
  /** Uniform entries in [lo, hi) from a seeded generator. */
  static uniform(
    shape: Shape,
    lo: number,
    hi: number,
    opts: { seed?: number; rng?: Rng; requiresGrad?: boolean } = {},
  ) {
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rng.next();
    return new Tensor(data, [...shape], opts.requiresGrad);
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(",")}]`);
    n *= d;
  }
  return n;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function fmtShape(s: Shape): string {
  return `[${s.join(",")}]`;
}

// ---------------------------------------------------------------------------------------
// Grad mode and the tape
// ---------------------------------------------------------------------------------------

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording anything on the tape (inference, optimiser updates).
 * @example const logits = noGrad(() => model.forward(ids));
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op over these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

/**
 * Records `out` on the tape with its backward closure, when any input requires grad.
 * Returns `out` for chaining. Ops call this once, after computing the forward value.
 */
export function record(out: Tensor, inputs: (Tensor | null | undefined)[], backward: (g: Float32Array) => void) {
  if (!needsGrad(...inputs)) return out;
  out.requiresGrad = true;
  out.hasNode = true;
  tape.push({ out, backward });
  return out;
}

/**
 * Adds `g` into `t.grad` (allocating on first use). When `owned` is true the caller hands
 * over `g` and it may become t.grad itself, saving a copy.
 */
export function accumulate(t: Tensor | null | undefined, g: Float32Array, owned = false): void {
  if (!t?.requiresGrad) return;
  if (t.grad === null) {
    t.grad = owned ? g : g.slice();
    return;
  }
  const dst = t.grad;
  const native = dst.length >= 4096 ? nativeFused() : null;
  if (native) native.addInto(dst, g);
  else for (let i = 0; i < dst.length; i++) dst[i]! += g[i]!;
}

/** Number of nodes now on the tape (for tests and leak checks). */
export function tapeLength(): number {
  return tape.length;
}

/** Drops every recorded node without back-propagating (e.g. after an aborted step). */
export function clearTape(): void {
  tape = [];
}

/**
 * Back-propagates from `loss` (a one-element tensor unless `gradOut` is given) into every
 * leaf tensor that requires grad, accumulating into `.grad`. Intermediate gradients and the
 * tape are released afterwards.
 */
export function backward(loss: Tensor, gradOut?: Float32Array): void {
  if (!loss.requiresGrad) throw new Error("backward: the loss does not require grad (nothing to differentiate)");
  if (!gradOut && loss.size !== 1) {
    throw new Error(`backward: loss must have one element, got shape ${fmtShape(loss.shape)}; pass gradOut`);
  }
  const seed = gradOut ?? Float32Array.of(1);
  if (seed.length !== loss.size) throw new Error(`backward: gradOut has ${seed.length} elements, loss ${loss.size}`);
  accumulate(loss, seed);
  const nodes = tape;
  tape = [];
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      const g = node.out.grad;
      if (g !== null) node.backward(g);
      // Release the intermediate's gradient and the node (its closure holds activations).
      node.out.grad = null;
      nodes[i] = undefined as unknown as TapeNode;
    }
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Gradients of `loss` with respect to `params`, returned as fresh arrays; the params'
 * `.grad` fields are left as they were before the call.
 */
export function grad(loss: Tensor, params: Tensor[]): Float32Array[] {
  const saved = params.map((p) => p.grad);
  for (const p of params) p.grad = null;
  backward(loss);
  const out = params.map((p) => p.grad ?? new Float32Array(p.size));
  params.forEach((p, i) => {
    p.grad = saved[i]!;
  });
  return out;
}
