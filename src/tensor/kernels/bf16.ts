/**
 * The bfloat16 compute path: matrix products whose inputs are rounded to bf16 (8-bit
 * mantissa, round to nearest even) and whose sums are fp32, as torch.autocast(bfloat16)
 * and llm.c do. Tensors stay Float32Array: the rounding is fused into the kernel's packing
 * of its operands, so weights keep their fp32 master copy and the optimiser its fp32 state.
 *
 * - The compute dtype is a scope: `withComputeDtype("bf16", fn)` (CausalLM with
 *   `dtype: "bf16"` opens it around its forward; ops record it for their backward).
 * - native backend, CPU with avx512_bf16 (cpuid at run time): the addon's own GEMM on
 *   `vdpbf16ps` (native/bf16_gemm.c). Debian's OpenBLAS has no cblas_sbgemm.
 * - native backend without avx512_bf16, or EMLAB_BF16=emulate: the addon rounds A and B
 *   to bf16 values and calls sgemm — the same numbers up to fp32 summation order, slower.
 * - ort / ts backends: the same emulation in TypeScript around the fp32 kernel.
 * - A linear layer's weight that gets no gradient (inference, a frozen LoRA base) is packed
 *   to bf16 once and cached (half the memory traffic when decoding). Whatever writes
 *   weights in place calls `markWeightsChanged(arrays)` (the optimisers, mergeLora).
 */
import { callGemm, type MatmulArgs, type MatmulBackend, matmulBackend, matmulInto } from "./matmul.ts";
import { blasAvailable, type GemmFn, nativeKernels } from "./native.ts";

export type ComputeDtype = "fp32" | "bf16";

let dtype: ComputeDtype = "fp32";

/** The compute dtype of matrix products in the current scope. */
export function computeDtype(): ComputeDtype {
  return dtype;
}

/** Runs fn with matrix products in `dt` (restored afterwards, also on throw). */
export function withComputeDtype<T>(dt: ComputeDtype, fn: () => T): T {
  const prev = dtype;
  dtype = dt;
  try {
    return fn();
  } finally {
    dtype = prev;
  }
}

/** Checks a user-supplied dtype option ("fp32" | "bf16"). */
export function parseDtype(v: unknown, where = "dtype"): ComputeDtype {
  if (v === undefined || v === "fp32" || v === "float32") return "fp32";
  if (v === "bf16" || v === "bfloat16") return "bf16";
  throw new Error(`${where}: expected fp32 or bf16, got ${JSON.stringify(v)}`);
}

interface Bf16Addon {
  bf16Info(): { avx512bf16: boolean };
  sbgemm: GemmFn;
  bf16PackedLength(n: number, k: number): number;
  bf16PackWeight(w: Float32Array, n: number, k: number, out: Uint16Array): void;
  bf16Linear(
    x: Float32Array,
    packed: Uint16Array,
    out: Float32Array,
    m: number,
    k: number,
    n: number,
    beta: number,
  ): void;
}

function addon(): Bf16Addon | null {
  if (!blasAvailable()) return null;
  const mod = nativeKernels() as unknown as Partial<Bf16Addon> | null;
  return mod && typeof mod.sbgemm === "function" ? (mod as Bf16Addon) : null;
}

/** True when the native addon runs bf16 products on vdpbf16ps (else they are emulated). */
export function bf16Hardware(): boolean {
  return addon()?.bf16Info().avx512bf16 ?? false;
}

/** One line for describeKernels-style output. */
export function describeBf16(which: MatmulBackend = matmulBackend()): string {
  if (which === "native" && addon()) {
    return bf16Hardware()
      ? "bf16: vdpbf16ps GEMM (native/bf16_gemm.c)"
      : "bf16: emulated (inputs rounded to bf16, OpenBLAS sgemm; no avx512_bf16 or EMLAB_BF16=emulate)";
  }
  return `bf16: emulated (inputs rounded to bf16, ${which} fp32 kernel)`;
}

/** dst[i] = x[i] rounded to the nearest bf16 (ties to even); NaN stays NaN. dst may be src. */
export function roundBf16(src: Float32Array, dst = new Float32Array(src.length)): Float32Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const d = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < s.length; i++) {
    const u = s[i]!;
    if ((u & 0x7fffffff) > 0x7f800000) d[i] = (u | 0x00400000) & 0xffff0000;
    else d[i] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  }
  return dst;
}

/** matmulInto's contract with bf16 inputs and fp32 sums. */
export function matmulBf16Into(args: MatmulArgs, which: MatmulBackend = matmulBackend()): void {
  const mod = which === "native" ? addon() : null;
  if (mod) {
    // (timed by nativeKernels' proxy under EMLAB_PROFILE=1)
    callGemm(mod.sbgemm, args);
    return;
  }
  matmulInto({ ...args, a: roundBf16(args.a), b: roundBf16(args.b) }, which);
}

/** Packed bf16 copies of weights for inference, dropped by markWeightsChanged(). */
let packed = new WeakMap<Float32Array, Uint16Array>();

/**
 * Call after writing weights in place (optimiser steps, LoRA merges): drops the packed bf16
 * copies of those arrays, or of every array when none are named.
 */
export function markWeightsChanged(arrays?: readonly Float32Array[]): void {
  if (!arrays) packed = new WeakMap();
  else for (const a of arrays) packed.delete(a);
}

function packedWeight(mod: Bf16Addon, w: Float32Array, outF: number, inF: number): Uint16Array {
  let p = packed.get(w);
  if (!p) {
    p = new Uint16Array(mod.bf16PackedLength(outF, inF));
    mod.bf16PackWeight(w, outF, inF, p);
    packed.set(w, p);
  }
  return p;
}

/**
 * y [rows, outF] = x [rows, inF] · Wᵀ (+ bias) in bf16. `cacheWeight`: W will not change
 * before markWeightsChanged() (inference), so its packed bf16 copy is kept and reused.
 */
export function linearBf16Into(
  x: Float32Array,
  w: Float32Array,
  out: Float32Array,
  rows: number,
  inF: number,
  outF: number,
  bias: Float32Array | null | undefined,
  cacheWeight: boolean,
  which: MatmulBackend = matmulBackend(),
): void {
  const mod = which === "native" ? addon() : null;
  if (bias) for (let r = 0; r < rows; r++) out.set(bias, r * outF);
  const beta = bias ? 1 : 0;
  if (mod && cacheWeight && bf16Hardware() && rows > 0) {
    mod.bf16Linear(x, packedWeight(mod, w, outF, inF), out, rows, inF, outF, beta);
    return;
  }
  matmulBf16Into(
    { a: x, b: w, out, batchA: 1, batchB: 1, m: rows, k: inF, n: outF, transB: true, accumulate: !!bias },
    which,
  );
}
