/**
 * The optional native kernels: native/emlab_native.c, built at install time into
 * build/emlab_native.node (scripts/build-native.mjs).
 * - BLAS: the addon opens a CBLAS library at run time — Debian's OpenBLAS
 *   (`apt-get install libopenblas0-pthread`) unless EMLAB_BLAS_LIB names another — and runs
 *   single-precision GEMM on Float32Arrays in place, about 1 µs per call. When the addon was
 *   not built or no library loads, `blasAvailable()` is false and matmul stays on
 *   onnxruntime (matmul.ts).
 * - Fused elementwise kernels in C (`nativeKernels()`), used by the ops under the "blas"
 *   backend; the ops keep their onnxruntime and TypeScript paths.
 *
 * OpenBLAS 0.3.21 (Debian 12) misdetects recent Intel CPUs and picks its slowest kernels;
 * as PyTorch's peer does, OPENBLAS_CORETYPE is set from /proc/cpuinfo before the library
 * loads, unless the environment already sets it. Thread count: EMLAB_THREADS, else
 * `setBlasThreads(n)`, else the number of CPUs.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { profiling, recordKernel } from "./profile.ts";

/** B, H, Hkv, T, S, D, scale, causal. */
export type AttnArgs = [number, number, number, number, number, number, number, boolean];

/** The addon's elementwise kernels (native/emlab_native.c); sizes are checked there. */
export interface NativeKernels {
  /** s = σ(gate) (when s is given), y = gate · σ(gate) · up. */
  swiglu(gate: Float32Array, up: Float32Array, y: Float32Array, s: Float32Array | null): void;
  /** gg = g·up·s·(1 + gate·(1 − s)), gu = g·gate·s (each when given; overwritten). */
  swigluBackward(
    gate: Float32Array,
    up: Float32Array,
    s: Float32Array,
    g: Float32Array,
    gg: Float32Array | null,
    gu: Float32Array | null,
  ): void;
  /**
   * Walks `shape` row-major; element i of the contiguous `dst` pairs with
   * src[srcOff + Σ idx·strides]. accumulate false: dst[i] = src[…]; true: src[…] += dst[i].
   */
  strided(
    src: Float32Array,
    srcOff: number,
    strides: Int32Array,
    dst: Float32Array,
    shape: Int32Array,
    accumulate: boolean,
  ): void;
  /** Per row of d: rstd = 1/√(mean(x²) + eps), y = x·rstd·w. */
  rmsNorm(x: Float32Array, w: Float32Array | null, y: Float32Array, rstd: Float32Array, d: number, eps: number): void;
  /** gx (overwritten) and gw (accumulated) of rmsNorm, each when given. */
  rmsNormBackward(
    x: Float32Array,
    w: Float32Array | null,
    rstd: Float32Array,
    g: Float32Array,
    gx: Float32Array | null,
    gw: Float32Array | null,
    d: number,
  ): void;
  /** Per row of d: lse = log Σ exp(x); probs = softmax(x) when given. */
  softmaxLse(x: Float32Array, d: number, lse: Float32Array, probs: Float32Array | null): void;
  /** In place: row r of probs becomes scale[r]·(probs − onehot(targets[r])); scale 0 zeroes the row. */
  crossEntropyBackward(probs: Float32Array, targets: Int32Array, scale: Float32Array): void;
  /** One AdamW step in place (float32 arithmetic): m, v updated, w ← w·decay − lr·c1·m / (√(v·c2) + eps). */
  adamw(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    decay: number,
    c1: number,
    c2: number,
  ): void;
  /**
   * Attention forward over q [B, H, T, D] (read as [B·Hkv, G·T, D]), k, v [B, Hkv, S, D]:
   * probs [B, H, T, S] = softmax(scale·QKᵀ) over the visible keys (causal window, key mask;
   * 0 elsewhere, a row with no visible key all 0), out = probs·V.
   */
  attentionForward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    keyMask: Uint8Array | null,
    probs: Float32Array,
    out: Float32Array,
    ...dims: AttnArgs
  ): void;
  /** dQ, dK, dV (overwritten) from the saved probabilities and dOut. */
  attentionBackward(
    probs: Float32Array,
    gOut: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    gq: Float32Array,
    gk: Float32Array,
    gv: Float32Array,
    ...dims: AttnArgs
  ): void;
  /** dst += src. */
  addInto(dst: Float32Array, src: Float32Array): void;
  /** Rotate-half rotary embedding of src [B, H, T, D] into dst; sign −1 rotates back. */
  rope(
    src: Float32Array,
    dst: Float32Array,
    positions: Int32Array,
    B: number,
    H: number,
    T: number,
    D: number,
    cos: Float32Array,
    sin: Float32Array,
    sign: number,
  ): void;
}

interface Addon extends NativeKernels {
  load(path: string): string | null;
  info(): { core: string | null };
  setThreads(n: number): void;
  sgemm: typeof blasSgemm;
}

/** Where the install step writes the addon (package root / build). */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL("../../../build/emlab_native.node", import.meta.url));
const DEFAULT_LIBS = [
  "libopenblas.so.0",
  "libopenblas.so",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
];

let threads = Number(process.env.EMLAB_THREADS) || availableParallelism();
let native: Addon | null | undefined;
let nativeError: string | undefined;
let blas: Addon | null | undefined;
let loadError: string | undefined;
let libName: string | undefined;

function coreTypeFromCpu(): string | undefined {
  let flags = "";
  try {
    flags = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return undefined;
  }
  if (/ avx512f/.test(flags)) return "SkylakeX";
  if (/ avx2/.test(flags)) return "Haswell";
  return undefined;
}

function loadNative(): Addon | null {
  if (native !== undefined) return native;
  native = null;
  if (!existsSync(NATIVE_ADDON_PATH)) {
    nativeError = `${NATIVE_ADDON_PATH} was not built (npm install builds it when a C compiler and Node's headers are present)`;
    return native;
  }
  try {
    native = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as Addon;
  } catch (err) {
    nativeError = `${NATIVE_ADDON_PATH}: ${(err as Error).message}`;
  }
  return native;
}

function loadBlas(): Addon | null {
  if (blas !== undefined) return blas;
  blas = null;
  const mod = loadNative();
  if (!mod) {
    loadError = nativeError;
    return blas;
  }
  if (process.env.OPENBLAS_CORETYPE === undefined) {
    const core = coreTypeFromCpu();
    if (core) process.env.OPENBLAS_CORETYPE = core;
  }
  const candidates = process.env.EMLAB_BLAS_LIB ? [process.env.EMLAB_BLAS_LIB] : DEFAULT_LIBS;
  const errors: string[] = [];
  for (const lib of candidates) {
    const err = mod.load(lib);
    if (err === null) {
      libName = lib;
      mod.setThreads(threads);
      blas = mod;
      return blas;
    }
    errors.push(err);
  }
  loadError = `no CBLAS library loaded (${errors.join("; ")})`;
  return blas;
}

let timed: NativeKernels | undefined;

/** The native elementwise kernels, or null when the addon was not built (timed under EMLAB_PROFILE=1). */
export function nativeKernels(): NativeKernels | null {
  const mod = loadNative();
  if (!mod || !profiling) return mod;
  timed ??= new Proxy(mod, {
    get(target, name: string) {
      const fn = (target as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!;
      return (...args: unknown[]) => {
        const t0 = performance.now();
        const r = fn.apply(target, args);
        const sizes = args.filter((a) => a instanceof Float32Array).map((a) => (a as Float32Array).length);
        recordKernel(`native ${name} [${sizes.join(",")}]`, performance.now() - t0);
        return r;
      };
    },
  });
  return timed;
}

/** True when the bridge is built and a CBLAS library is loaded. */
export function blasAvailable(): boolean {
  return loadBlas() !== null;
}
/** Why the bridge is unavailable (undefined when it is available). */
export function blasLoadError(): string | undefined {
  loadBlas();
  return loadError;
}
/** The loaded library and, for OpenBLAS, the kernel family it picked (e.g. "SkylakeX"). */
export function blasInfo(): { lib: string; core: string | null } | undefined {
  const a = loadBlas();
  return a ? { lib: libName ?? "", core: a.info().core } : undefined;
}
export function blasThreads(): number {
  return threads;
}
export function setBlasThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setBlasThreads: need a positive integer, got ${n}`);
  threads = n;
  blas?.setThreads(n);
}

/** A positional GEMM entry point: out[i] = alpha · op(A[i]) · op(B[i]) + beta · out[i] (native sgemm, bf16 sbgemm). */
export type GemmFn = (
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  batchA: number,
  batchB: number,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
) => void;

/** out[i] = alpha · op(A[i]) · op(B[i]) + beta · out[i] over the batch (a batch of 1 broadcasts). */
export const blasSgemm: GemmFn = (a, b, out, batchA, batchB, m, k, n, transA, transB, alpha, beta) => {
  const mod = loadBlas();
  if (!mod) throw new Error(`BLAS bridge unavailable: ${loadError}`);
  if (!profiling) {
    mod.sgemm(a, b, out, batchA, batchB, m, k, n, transA, transB, alpha, beta);
    return;
  }
  const t0 = performance.now();
  mod.sgemm(a, b, out, batchA, batchB, m, k, n, transA, transB, alpha, beta);
  const shape = `${batchA}x${m}x${k}${transA ? "ᵀ" : ""} @ ${batchB}x${k}x${n}${transB ? "ᵀ" : ""}`;
  recordKernel(`native sgemm ${shape}${beta ? " +=" : ""}`, performance.now() - t0);
};
