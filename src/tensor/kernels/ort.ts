/**
 * onnxruntime-node, called synchronously: emlab builds tiny one-op ONNX graphs (see
 * onnx-proto.ts), loads each once per op kind, and runs them through the native binding's
 * synchronous `run` (the public API wraps it in a Promise; eager tensor ops cannot await).
 * Outputs are written into buffers emlab allocates (pre-allocated fetches), so no copy.
 *
 * Thread count: EMLAB_THREADS, else `setOrtThreads(n)`, else the number of CPUs.
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { type OnnxNode, type OnnxValue, onnxModel } from "./onnx-proto.ts";
import { profiling, recordKernel } from "./profile.ts";

interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: object, fetches: object, options: object): Record<string, { data: unknown }>;
  dispose(): void;
}
interface OrtModule {
  Session: new () => NativeSession;
  TensorCtor: new (type: string, data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]) => object;
}

let ort: OrtModule | null | undefined;
let loadError: string | undefined;
let threads = Number(process.env.EMLAB_THREADS) || availableParallelism();
const sessions = new Map<string, NativeSession>();
const sessionKeys = new WeakMap<NativeSession, string>();

function loadOrt(): OrtModule | null {
  if (ort !== undefined) return ort;
  try {
    const require = createRequire(import.meta.url);
    const { binding, initOrt } = require("onnxruntime-node/dist/binding.js");
    const { Tensor } = require("onnxruntime-common");
    initOrt();
    ort = { Session: binding.InferenceSession, TensorCtor: Tensor };
  } catch (err) {
    loadError = (err as Error).message;
    ort = null;
  }
  return ort;
}

/** True when onnxruntime-node loaded (it is an optional fast path; TypeScript kernels remain). */
export function ortAvailable(): boolean {
  return loadOrt() !== null;
}
export function ortLoadError(): string | undefined {
  loadOrt();
  return loadError;
}

/** Sets the intra-op thread count for sessions created from now on (and drops cached ones). */
export function setOrtThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setOrtThreads: need a positive integer, got ${n}`);
  threads = n;
  for (const s of sessions.values()) s.dispose();
  sessions.clear();
}
export function ortThreads(): number {
  return threads;
}

/** A cached session for one op kind; `build` describes its graph the first time. */
export function ortSession(
  key: string,
  build: () => { nodes: OnnxNode[]; inputs: OnnxValue[]; outputs: OnnxValue[] },
): NativeSession {
  let s = sessions.get(key);
  if (s) return s;
  const m = loadOrt();
  if (!m) throw new Error(`onnxruntime-node is unavailable: ${loadError}`);
  const g = build();
  const bytes = onnxModel(g.nodes, g.inputs, g.outputs);
  s = new m.Session();
  s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // Spinning worker threads would steal the core that runs emlab's own loops between calls.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  sessions.set(key, s);
  sessionKeys.set(s, key);
  return s;
}

export type OrtArray = Float32Array | BigInt64Array | Int32Array;

/** Runs a cached session with the given inputs, writing outputs into pre-allocated buffers. */
export function ortRun(
  session: NativeSession,
  inputs: Record<string, { data: OrtArray; dims: readonly number[] }>,
  outputs: Record<string, { data: Float32Array; dims: readonly number[] }>,
): void {
  const m = ort!;
  const feeds: Record<string, object> = {};
  for (const [name, v] of Object.entries(inputs)) feeds[name] = new m.TensorCtor(typeName(v.data), v.data, v.dims);
  const fetches: Record<string, object> = {};
  for (const [name, v] of Object.entries(outputs)) fetches[name] = new m.TensorCtor("float32", v.data, v.dims);
  if (!profiling) {
    session.run(feeds, fetches, {});
    return;
  }
  const t0 = performance.now();
  session.run(feeds, fetches, {});
  const shapes = Object.entries(inputs).map(([k, v]) => `${k}[${v.dims.join(",")}]`);
  recordKernel(`ort ${sessionKeys.get(session) ?? "?"} ${shapes.join(" ")}`, performance.now() - t0);
}

function typeName(a: OrtArray): string {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof BigInt64Array) return "int64";
  return "int32";
}
