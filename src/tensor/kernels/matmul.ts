/**
 * Matrix multiplication kernels: C = alpha · op(A) · op(B), batched with broadcasting of a
 * batch-less operand, where op(X) is X or Xᵀ over the last two dims.
 *
 * Three backends:
 * - "native": a CBLAS library's sgemm (OpenBLAS, the library PyTorch uses on Linux) through
 *   emlab's native addon (native.ts), the default when the addon is built and a library loads;
 * - "ort": onnxruntime-node's FusedMatMul (MLAS, multi-threaded), the default otherwise;
 * - "ts": a plain TypeScript loop, used when neither is available, when EMLAB_BACKEND=ts,
 *   and as the reference in the consistency test.
 * EMLAB_BACKEND=native|ort|ts picks one. Under "native" the fused non-matmul kernels run in
 * the addon's C where it has them and on onnxruntime otherwise (fused.ts).
 */
import { blasAvailable, blasInfo, blasLoadError, blasSgemm, blasThreads, type GemmFn } from "./native.ts";
import { ortAvailable, ortLoadError, ortRun, ortSession, ortThreads } from "./ort.ts";

export type MatmulBackend = "native" | "ort" | "ts";

function defaultBackend(): MatmulBackend {
  const env = process.env.EMLAB_BACKEND;
  if (env !== undefined && env !== "") {
    if (env !== "native" && env !== "ort" && env !== "ts")
      throw new Error(`EMLAB_BACKEND: expected native, ort or ts, got "${env}"`);
    if (env === "native" && !blasAvailable()) throw new Error(`EMLAB_BACKEND=native: ${blasLoadError()}`);
    if (env === "ort" && !ortAvailable()) throw new Error(`EMLAB_BACKEND=ort: onnxruntime-node: ${ortLoadError()}`);
    return env;
  }
  if (blasAvailable()) return "native";
  return ortAvailable() ? "ort" : "ts";
}

let backend: MatmulBackend = defaultBackend();

/** Selects the matmul backend for every later op. */
export function setMatmulBackend(b: MatmulBackend): void {
  if (b === "ort" && !ortAvailable()) throw new Error("setMatmulBackend: onnxruntime-node is unavailable");
  if (b === "native" && !blasAvailable())
    throw new Error(`setMatmulBackend: the native backend is unavailable: ${blasLoadError()}`);
  backend = b;
}
export function matmulBackend(): MatmulBackend {
  return backend;
}

/** One line naming the kernels in use (printed by the benchmarks and `emlab demo`). */
export function describeKernels(): string {
  if (backend === "native") {
    const info = blasInfo();
    const core = info?.core ? `, core ${info.core.trim()}` : "";
    return `native (sgemm from ${info?.lib}${core}, ${blasThreads()} threads; C kernels for attention, SwiGLU, norms, rotary, softmax, AdamW)`;
  }
  if (backend === "ort")
    return `onnxruntime (${ortThreads()} threads; native addon: ${blasLoadError() ?? "not selected"})`;
  return "TypeScript loops";
}

/**
 * One matmul problem. Shapes: A is [batchA, m, k] (or [batchA, k, m] when transA), B is
 * [batchB, k, n] (or [batchB, n, k] when transB); batchA and batchB are equal or one is 1.
 * `out` is [max(batchA, batchB), m, n].
 */
export interface MatmulArgs {
  a: Float32Array;
  b: Float32Array;
  out: Float32Array;
  batchA: number;
  batchB: number;
  m: number;
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
}

/** Calls a positional GEMM with one problem's arguments. */
export function callGemm(fn: GemmFn, args: MatmulArgs): void {
  const { a, b, out, batchA, batchB, m, k, n } = args;
  fn(a, b, out, batchA, batchB, m, k, n, !!args.transA, !!args.transB, args.alpha ?? 1, args.accumulate ? 1 : 0);
}

export function matmulInto(args: MatmulArgs, which: MatmulBackend = backend): void {
  const { batchA, batchB } = args;
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
    throw new Error(`matmul kernel: batch sizes ${batchA} and ${batchB} do not broadcast`);
  }
  if (which === "ts" || args.m * args.n * args.k < 8) {
    matmulTs(args);
    return;
  }
  if (which === "native") {
    callGemm(blasSgemm, args);
    return;
  }
  if (args.accumulate) {
    const tmp = new Float32Array(args.out.length);
    matmulOrt({ ...args, out: tmp, accumulate: false });
    const o = args.out;
    for (let i = 0; i < o.length; i++) o[i]! += tmp[i]!;
    return;
  }
  matmulOrt(args);
}

function matmulOrt(args: MatmulArgs): void {
  const { a, b, out, batchA, batchB, m, k, n } = args;
  const ta = args.transA ? 1 : 0;
  const tb = args.transB ? 1 : 0;
  const alpha = args.alpha ?? 1;
  // A batch-less operand is passed as 2-D so ORT broadcasts it without a copy.
  const ra = batchA === 1 && batchB > 1 ? 2 : 3;
  const rb = batchB === 1 && batchA > 1 ? 2 : 3;
  const key = `fmm:${ta}${tb}:${ra}${rb}:${alpha}`;
  const sym = (p: string, r: number) => (r === 3 ? ["batch", `${p}0`, `${p}1`] : [`${p}0`, `${p}1`]);
  const session = ortSession(key, () => ({
    nodes: [
      {
        op: "FusedMatMul",
        domain: "com.microsoft",
        inputs: ["A", "B"],
        outputs: ["Y"],
        attrs: [
          { name: "transA", int: ta },
          { name: "transB", int: tb },
          { name: "alpha", float: alpha },
        ],
      },
    ],
    inputs: [
      { name: "A", dims: sym("a", ra) },
      { name: "B", dims: sym("b", rb) },
    ],
    outputs: [{ name: "Y", dims: ra === 3 || rb === 3 ? ["batch", "m", "n"] : ["m", "n"] }],
  }));
  const dimsA = ta ? [k, m] : [m, k];
  const dimsB = tb ? [n, k] : [k, n];
  const batch = Math.max(batchA, batchB);
  ortRun(
    session,
    {
      A: { data: a, dims: ra === 3 ? [batchA, ...dimsA] : dimsA },
      B: { data: b, dims: rb === 3 ? [batchB, ...dimsB] : dimsB },
    },
    { Y: { data: out, dims: ra === 3 || rb === 3 ? [batch, m, n] : [m, n] } },
  );
}

/** Row counts (and widths) where linearInto takes the transposed route (measured in docs/performance.md). */
const SKINNY_MIN_ROWS = 2;
const SKINNY_MAX_ROWS = 32;
const SKINNY_MIN_OUT = 256;

/**
 * y [rows, outF] = x [rows, inF] · Wᵀ, W [outF, inF] (a linear layer's product). With few rows
 * (decoding) on onnxruntime it runs as (W · xᵀ)ᵀ: MLAS then streams W straight from memory
 * as the A operand instead of packing it as B on every call, the cost that dominates when
 * only a few rows share each weight (decode_qwen05b in docs/performance.md); the small
 * [outF, rows] result is transposed back inside the same onnxruntime call.
 */
export function linearInto(
  x: Float32Array,
  w: Float32Array,
  out: Float32Array,
  rows: number,
  inF: number,
  outF: number,
  which: MatmulBackend = backend,
  bias?: Float32Array | null,
): void {
  const skinny = skinnyRoute(which, rows, outF);
  if (bias && which === "native" && !skinny) {
    // The bias is written into each row first and the product added onto it (beta = 1):
    // one pass over the output fewer than adding it afterwards.
    for (let r = 0; r < rows; r++) out.set(bias, r * outF);
    blasSgemm(x, w, out, 1, 1, rows, inF, outF, false, true, 1, 1);
    return;
  }
  if (skinny) {
    const session = ortSession("skinny-linear", () => ({
      nodes: [
        {
          op: "FusedMatMul",
          domain: "com.microsoft",
          inputs: ["W", "X"],
          outputs: ["YT"],
          attrs: [
            { name: "transA", int: 0 },
            { name: "transB", int: 1 },
            { name: "alpha", float: 1 },
          ],
        },
        { op: "Transpose", inputs: ["YT"], outputs: ["Y"], attrs: [{ name: "perm", ints: [1, 0] }] },
      ],
      inputs: [
        { name: "W", dims: ["n", "k"] },
        { name: "X", dims: ["m", "k"] },
      ],
      outputs: [{ name: "Y", dims: ["m", "n"] }],
    }));
    ortRun(
      session,
      { W: { data: w, dims: [outF, inF] }, X: { data: x, dims: [rows, inF] } },
      { Y: { data: out, dims: [rows, outF] } },
    );
  } else matmulInto({ a: x, b: w, out, batchA: 1, batchB: 1, m: rows, k: inF, n: outF, transB: true }, which);
  if (bias)
    for (let r = 0; r < rows; r++) {
      const base = r * outF;
      for (let j = 0; j < outF; j++) out[base + j]! += bias[j]!;
    }
}

function skinnyRoute(which: MatmulBackend, rows: number, outF: number): boolean {
  return (
    (which === "ort" || (which === "native" && ortAvailable())) &&
    rows >= SKINNY_MIN_ROWS &&
    rows <= SKINNY_MAX_ROWS &&
    outF >= SKINNY_MIN_OUT
  );
}

/** The TypeScript reference: i-p-j loop order so the inner loop streams rows of B and C. */
function matmulTs(args: MatmulArgs): void {
  const { a, b, out, batchA, batchB, m, k, n } = args;
  const ta = !!args.transA;
  const tb = !!args.transB;
  const alpha = args.alpha ?? 1;
  const batch = Math.max(batchA, batchB);
  const row = new Float64Array(n);
  for (let bi = 0; bi < batch; bi++) {
    const aOff = (batchA === 1 ? 0 : bi) * m * k;
    const bOff = (batchB === 1 ? 0 : bi) * k * n;
    const oOff = bi * m * n;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const av = ta ? a[aOff + p * m + i]! : a[aOff + i * k + p]!;
        if (tb) {
          for (let j = 0; j < n; j++) row[j]! += av * b[bOff + j * k + p]!;
        } else {
          const base = bOff + p * n;
          for (let j = 0; j < n; j++) row[j]! += av * b[base + j]!;
        }
      }
      const o = oOff + i * n;
      if (args.accumulate) for (let j = 0; j < n; j++) out[o + j]! += alpha * row[j]!;
      else for (let j = 0; j < n; j++) out[o + j] = alpha * row[j]!;
    }
  }
}
