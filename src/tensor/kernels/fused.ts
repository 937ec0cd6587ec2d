/**
 * Fused kernels that run as small onnxruntime graphs when the "ort" backend is selected:
 * the exp-heavy parts of training (softmax over the vocabulary, attention probabilities,
 * SwiGLU's sigmoid), where V8's scalar Math.exp would cost more than all the matmuls.
 * ORT's MLAS kernels are vectorised and multi-threaded. Each op in ops/ keeps its plain
 * TypeScript loop as the fallback (EMLAB_BACKEND=ts) and the tests run both.
 */
import { matmulBackend } from "./matmul.ts";
import { type NativeKernels, nativeKernels } from "./native.ts";
import { ortAvailable, ortRun, ortSession } from "./ort.ts";

/** True when fused ORT graphs should be used (the "ort" and "native" backends, onnxruntime loaded). */
export function useFused(): boolean {
  return matmulBackend() !== "ts" && ortAvailable();
}

/** The addon's C kernels under the "native" backend, else null. */
export function nativeFused(): NativeKernels | null {
  return matmulBackend() === "native" ? nativeKernels() : null;
}

const AXIS_LAST = BigInt64Array.of(-1n);

/**
 * Row-wise softmax and log-sum-exp of x [rows, d]: `probs` (optional, [rows, d]) and
 * `lse` ([rows]).
 */
export function softmaxLse(x: Float32Array, rows: number, d: number, lse: Float32Array, probs?: Float32Array): void {
  const withProbs = probs !== undefined;
  const session = ortSession(`softmax_lse:${withProbs}`, () => ({
    nodes: [
      ...(withProbs ? [{ op: "Softmax", inputs: ["X"], outputs: ["P"], attrs: [{ name: "axis", int: 1 }] }] : []),
      {
        op: "ReduceLogSumExp",
        inputs: ["X"],
        outputs: ["L"],
        attrs: [
          { name: "axes", ints: [1] },
          { name: "keepdims", int: 0 },
        ],
      },
    ],
    inputs: [{ name: "X", dims: ["rows", "d"] }],
    outputs: [...(withProbs ? [{ name: "P", dims: ["rows", "d"] }] : []), { name: "L", dims: ["rows"] }],
  }));
  const outputs: Record<string, { data: Float32Array; dims: number[] }> = { L: { data: lse, dims: [rows] } };
  if (probs) outputs.P = { data: probs, dims: [rows, d] };
  ortRun(session, { X: { data: x, dims: [rows, d] } }, outputs);
}

/** SwiGLU forward: s = σ(gate), y = gate · s · up (all the same size). */
export function swigluForward(gate: Float32Array, up: Float32Array, y: Float32Array, s: Float32Array): void {
  const session = ortSession("swiglu", () => ({
    nodes: [
      { op: "Sigmoid", inputs: ["G"], outputs: ["S"] },
      { op: "Mul", inputs: ["G", "S"], outputs: ["GS"] },
      { op: "Mul", inputs: ["GS", "U"], outputs: ["Y"] },
    ],
    inputs: [
      { name: "G", dims: ["n"] },
      { name: "U", dims: ["n"] },
    ],
    outputs: [
      { name: "Y", dims: ["n"] },
      { name: "S", dims: ["n"] },
    ],
  }));
  const dims = [gate.length];
  ortRun(session, { G: { data: gate, dims }, U: { data: up, dims } }, { Y: { data: y, dims }, S: { data: s, dims } });
}

export interface AttnDims {
  B: number;
  H: number;
  Hkv: number;
  T: number;
  S: number;
  D: number;
  scale: number;
}

/**
 * Attention forward: P = softmax(scale·QKᵀ + mask) [B, H, T, S] and O = P·V [B, H, T, D].
 * q [B, H, T, D] is read as [B, Hkv, G·T, D]; mask [B, 1, T, S] is additive (0 or −1e9).
 */
export function attentionForward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array,
  d: AttnDims,
  probs: Float32Array,
  out: Float32Array,
): void {
  const session = ortSession(`attn_fwd:${d.scale}`, () => ({
    nodes: [
      {
        op: "FusedMatMul",
        domain: "com.microsoft",
        inputs: ["Q", "K"],
        outputs: ["Sc"],
        attrs: [
          { name: "transB", int: 1 },
          { name: "alpha", float: d.scale },
        ],
      },
      { op: "Reshape", inputs: ["Sc", "heads_shape"], outputs: ["Sc4"] },
      { op: "Add", inputs: ["Sc4", "M"], outputs: ["Sm"] },
      { op: "Softmax", inputs: ["Sm"], outputs: ["P"], attrs: [{ name: "axis", int: -1 }] },
      { op: "Reshape", inputs: ["P", "group_shape"], outputs: ["Pg"] },
      { op: "MatMul", inputs: ["Pg", "V"], outputs: ["O"] },
    ],
    inputs: [
      { name: "Q", dims: ["b", "hkv", "gt", "d"] },
      { name: "K", dims: ["b", "hkv", "s", "d"] },
      { name: "V", dims: ["b", "hkv", "s", "d"] },
      { name: "M", dims: ["b", 1, "t", "s"] },
      { name: "heads_shape", elemType: 7, dims: [4] },
      { name: "group_shape", elemType: 7, dims: [4] },
    ],
    outputs: [
      { name: "P", dims: ["b", "h", "t", "s"] },
      { name: "O", dims: ["b", "hkv", "gt", "d"] },
    ],
  }));
  const G = d.H / d.Hkv;
  const { B, H, Hkv, T, S, D } = d;
  ortRun(
    session,
    {
      Q: { data: q, dims: [B, Hkv, G * T, D] },
      K: { data: k, dims: [B, Hkv, S, D] },
      V: { data: v, dims: [B, Hkv, S, D] },
      M: { data: mask, dims: [B, 1, T, S] },
      heads_shape: { data: BigInt64Array.from([B, H, T, S].map(BigInt)), dims: [4] },
      group_shape: { data: BigInt64Array.from([B, Hkv, G * T, S].map(BigInt)), dims: [4] },
    },
    { P: { data: probs, dims: [B, H, T, S] }, O: { data: out, dims: [B, Hkv, G * T, D] } },
  );
}

/** Attention backward from the saved probabilities: dQ, dK, dV. */
export function attentionBackward(
  probs: Float32Array,
  gOut: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  d: AttnDims,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
): void {
  const mm = (a: string, b: string, out: string, ta: number, tb: number, alpha: number) => ({
    op: "FusedMatMul",
    domain: "com.microsoft",
    inputs: [a, b],
    outputs: [out],
    attrs: [
      { name: "transA", int: ta },
      { name: "transB", int: tb },
      { name: "alpha", float: alpha },
    ],
  });
  const session = ortSession(`attn_bwd:${d.scale}`, () => ({
    nodes: [
      mm("P", "dO", "dV", 1, 0, 1),
      mm("dO", "V", "dP", 0, 1, 1),
      { op: "Mul", inputs: ["dP", "P"], outputs: ["PdP"] },
      { op: "ReduceSum", inputs: ["PdP", "axes"], outputs: ["R"], attrs: [{ name: "keepdims", int: 1 }] },
      { op: "Sub", inputs: ["dP", "R"], outputs: ["dPc"] },
      { op: "Mul", inputs: ["P", "dPc"], outputs: ["dS"] },
      mm("dS", "K", "dQ", 0, 0, d.scale),
      mm("dS", "Q", "dK", 1, 0, d.scale),
    ],
    inputs: [
      { name: "P", dims: ["b", "hkv", "gt", "s"] },
      { name: "dO", dims: ["b", "hkv", "gt", "d"] },
      { name: "Q", dims: ["b", "hkv", "gt", "d"] },
      { name: "K", dims: ["b", "hkv", "s", "d"] },
      { name: "V", dims: ["b", "hkv", "s", "d"] },
      { name: "axes", elemType: 7, dims: [1] },
    ],
    outputs: [
      { name: "dQ", dims: ["b", "hkv", "gt", "d"] },
      { name: "dK", dims: ["b", "hkv", "s", "d"] },
      { name: "dV", dims: ["b", "hkv", "s", "d"] },
    ],
  }));
  const G = d.H / d.Hkv;
  const { B, Hkv, T, S, D } = d;
  const gtShape = [B, Hkv, G * T, D];
  const sShape = [B, Hkv, S, D];
  ortRun(
    session,
    {
      P: { data: probs, dims: [B, Hkv, G * T, S] },
      dO: { data: gOut, dims: gtShape },
      Q: { data: q, dims: gtShape },
      K: { data: k, dims: sShape },
      V: { data: v, dims: sShape },
      axes: { data: AXIS_LAST, dims: [1] },
    },
    { dQ: { data: gq, dims: gtShape }, dK: { data: gk, dims: sShape }, dV: { data: gv, dims: sShape } },
  );
}
