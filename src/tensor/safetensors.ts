/**
 * Hugging Face safetensors files, read and written without the Tensor class.
 *
 * Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 N, then
 * N bytes of JSON header `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?:
 * { string: string } }` (padded with spaces), then the data bytes; offsets are relative to
 * the start of the data, little-endian, row-major.
 *
 * On load, float dtypes become a Float32Array: F32 as is, F16 and BF16 exactly, F64
 * rounded to F32. Integer and bool dtypes keep their own typed array (I64 → BigInt64Array,
 * I32 → Int32Array, U8/BOOL → Uint8Array, …) because converting ids or masks to float
 * would silently lose values above 2^24; `asFloat32` narrows with a clear error.
 * F8 dtypes are refused. Tensors are read straight into their destination buffer (F32 and
 * integers) or converted through a 1 MiB scratch buffer (F16/BF16/F64), so a file never
 * sits in memory twice.
 *
 * @example
 * const { tensors, metadata } = readSafetensors("sae_weights.safetensors", { names: ["W_dec"] });
 * const wDec = asFloat32(tensors.get("W_dec")!); // [d_sae, d_in]
 * writeSafetensors("out.safetensors", { W_dec: { dtype: "BF16", shape: [16384, 896], data } }, { format: "pt" });
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { dirname } from "node:path";
import { bf16ToF32Bits, f16ToF32Bits, f32ToBf16Array, f32ToF16Array } from "./half.ts";

type IntArray =
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;
type IntCtor = { new (n: number): IntArray; BYTES_PER_ELEMENT: number };

const FLOAT_DTYPES = { F64: 8, F32: 4, F16: 2, BF16: 2 } as const;
const INT_DTYPES: Record<string, IntCtor> = {
  I64: BigInt64Array,
  U64: BigUint64Array,
  I32: Int32Array,
  U32: Uint32Array,
  I16: Int16Array,
  U16: Uint16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};
export type FloatDtype = keyof typeof FLOAT_DTYPES;
export type IntDtype = "I64" | "U64" | "I32" | "U32" | "I16" | "U16" | "I8" | "U8" | "BOOL";
export type Dtype = FloatDtype | IntDtype;
/** Dtypes the writer produces from a Float32Array. */
export type WriteDtype = "F32" | "F16" | "BF16";

/** A loaded tensor; row-major `data`, `shape` [] for a scalar. */
export type SafeTensor =
  | { name: string; dtype: FloatDtype; shape: number[]; data: Float32Array }
  | { name: string; dtype: IntDtype; shape: number[]; data: IntArray };

/** One header entry; `begin`/`end` are absolute byte positions in the file. */
export type TensorInfo = { name: string; dtype: Dtype; shape: number[]; begin: number; end: number };
export type SafetensorsHeader = {
  metadata: Record<string, string>;
  /** In file order (by begin offset). */
  tensors: TensorInfo[];
  /** Total bytes the header says the file has at least (8 + N + data). */
  byteLength: number;
};

export type SafetensorsErrorCode =
  | "header_length"
  | "header_json"
  | "header_schema"
  | "dtype"
  | "offsets"
  | "missing_tensor"
  | "truncated"
  | "input";

/** Every problem with a file or a tensor to write; `file` and `tensor` say where. */
export class SafetensorsError extends Error {
  constructor(
    readonly code: SafetensorsErrorCode,
    readonly file: string,
    readonly tensor: string | undefined,
    detail: string,
  ) {
    super(`${file}: ${tensor === undefined ? "" : `tensor '${tensor}': `}${detail}`);
    this.name = "SafetensorsError";
  }
}

/** The safetensors reference implementation's limit on the header size. */
const MAX_HEADER = 100_000_000;
const SCRATCH_BYTES = 1 << 20;
if (endianness() !== "LE") throw new Error("safetensors.ts assumes a little-endian host");

// ---------------------------------------------------------------------------- reading

/** Fills `dst` with the bytes at `position`; throws `truncated` if the source ends first. */
type ByteSource = { label: string; size: number; read(dst: Uint8Array, position: number): void };

function fdSource(fd: number, label: string): ByteSource {
  return {
    label,
    size: fstatSync(fd).size,
    read(dst, position) {
      let done = 0;
      while (done < dst.length) {
        const n = readSync(fd, dst, done, Math.min(dst.length - done, 1 << 30), position + done);
        if (n === 0) throw new SafetensorsError("truncated", label, undefined, `file ends at byte ${position + done}`);
        done += n;
      }
    },
  };
}

function bufferSource(u8: Uint8Array, label: string): ByteSource {
  return {
    label,
    size: u8.length,
    read(dst, position) {
      if (position + dst.length > u8.length)
        throw new SafetensorsError("truncated", label, undefined, `buffer ends at byte ${u8.length}`);
      dst.set(u8.subarray(position, position + dst.length));
    },
  };
}

function parseHeader(src: ByteSource): SafetensorsHeader {
  const fail = (code: SafetensorsErrorCode, detail: string, tensor?: string) =>
    new SafetensorsError(code, src.label, tensor, detail);
  if (src.size < 8) throw fail("header_length", `${src.size} bytes is too short for the 8-byte header length`);
  const lenBytes = new Uint8Array(8);
  src.read(lenBytes, 0);
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n < 2n || n > BigInt(Math.min(MAX_HEADER, src.size - 8)))
    throw fail("header_length", `header length ${n} is impossible for ${src.size} bytes (not a safetensors file?)`);
  const headerBytes = new Uint8Array(Number(n));
  src.read(headerBytes, 8);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw fail("header_json", `header is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw fail("header_schema", "header is not a JSON object");

  const dataStart = 8 + Number(n);
  const dataLength = src.size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry))
        throw fail("header_schema", "__metadata__ is not an object of strings");
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") throw fail("header_schema", `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== "object" || e === null) throw fail("header_schema", "entry is not an object", name);
    const { dtype, shape, data_offsets: offs } = e;
    if (typeof dtype !== "string") throw fail("header_schema", "dtype is missing", name);
    const itemSize = dtypeSize(dtype);
    if (itemSize === undefined)
      throw fail(
        "dtype",
        `unsupported dtype '${dtype}' (supported: ${Object.keys(FLOAT_DTYPES)}, ${Object.keys(INT_DTYPES)})`,
        name,
      );
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw fail("header_schema", `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    )
      throw fail(
        "header_schema",
        `data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`,
        name,
      );
    const [begin, end] = offs as [number, number];
    if (end > dataLength)
      throw fail(
        "offsets",
        `data_offsets [${begin}, ${end}] run past the data (${dataLength} bytes after the header)`,
        name,
      );
    const expected = numel(shape) * itemSize;
    if (end - begin !== expected)
      throw fail("offsets", `holds ${end - begin} bytes but shape [${shape}] × ${dtype} needs ${expected}`, name);
    tensors.push({
      name,
      dtype: dtype as Dtype,
      shape: shape as number[],
      begin: dataStart + begin,
      end: dataStart + end,
    });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1]!;
    const cur = tensors[i]!;
    if (cur.begin < prev.end) throw fail("offsets", `bytes overlap with tensor '${prev.name}'`, cur.name);
  }
  const byteLength = tensors.reduce((m, t) => Math.max(m, t.end), dataStart);
  return { metadata, tensors, byteLength };
}

function dtypeSize(dtype: string): number | undefined {
  if (Object.hasOwn(FLOAT_DTYPES, dtype)) return FLOAT_DTYPES[dtype as FloatDtype];
  return Object.hasOwn(INT_DTYPES, dtype) ? INT_DTYPES[dtype]!.BYTES_PER_ELEMENT : undefined;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function readTensor(src: ByteSource, info: TensorInfo, scratch: { buf?: Uint8Array }): SafeTensor {
  const { name, dtype, shape, begin, end } = info;
  const n = numel(shape);
  const intCtor = Object.hasOwn(INT_DTYPES, dtype) ? INT_DTYPES[dtype] : undefined;
  if (intCtor || dtype === "F32") {
    // straight into the destination: no intermediate copy
    const data = intCtor ? new intCtor(n) : new Float32Array(n);
    src.read(new Uint8Array(data.buffer, 0, end - begin), begin);
    return { name, dtype, shape: [...shape], data } as SafeTensor;
  }
  const data = new Float32Array(n);
  const bits = new Uint32Array(data.buffer);
  scratch.buf ??= new Uint8Array(SCRATCH_BYTES);
  const item = FLOAT_DTYPES[dtype as FloatDtype];
  const perChunk = SCRATCH_BYTES / item;
  for (let i = 0; i < n; i += perChunk) {
    const count = Math.min(perChunk, n - i);
    const chunk = scratch.buf.subarray(0, count * item);
    src.read(chunk, begin + i * item);
    if (dtype === "F16") f16ToF32Bits(new Uint16Array(chunk.buffer, 0, count), bits, i);
    else if (dtype === "BF16") bf16ToF32Bits(new Uint16Array(chunk.buffer, 0, count), bits, i);
    else data.set(new Float64Array(chunk.buffer, 0, count), i); // F64, rounded to nearest F32
  }
  return { name, dtype: dtype as FloatDtype, shape: [...shape], data };
}

function pick(header: SafetensorsHeader, label: string, names?: readonly string[]): TensorInfo[] {
  if (!names) return header.tensors;
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const missing = names.filter((n) => !byName.has(n));
  if (missing.length) {
    const have = header.tensors.map((t) => t.name);
    const shown = have.slice(0, 8).join(", ") + (have.length > 8 ? `, … (${have.length} in all)` : "");
    throw new SafetensorsError(
      "missing_tensor",
      label,
      missing[0],
      `not in the file (it has: ${shown || "no tensors"})`,
    );
  }
  const wanted = new Set(names);
  return header.tensors.filter((t) => wanted.has(t.name)); // file order: sequential reads
}

function withFile<T>(path: string, fn: (src: ByteSource) => T): T {
  const fd = openSync(path, "r");
  try {
    return fn(fdSource(fd, path));
  } finally {
    closeSync(fd);
  }
}

export type LoadedSafetensors = { metadata: Record<string, string>; tensors: Map<string, SafeTensor> };

/** The header only (names, dtypes, shapes, offsets, metadata): reads a few KB. */
export function safetensorsHeader(path: string): SafetensorsHeader {
  return withFile(path, parseHeader);
}

/** Reads all tensors, or only `names` (a name not in the file is an error), in file order. */
export function readSafetensors(path: string, opts: { names?: readonly string[] } = {}): LoadedSafetensors {
  return withFile(path, (src) => readAll(src, opts.names));
}

/** The same as readSafetensors for a file already in memory (copies each tensor out). */
export function readSafetensorsBuffer(
  bytes: Uint8Array,
  opts: { names?: readonly string[]; label?: string } = {},
): LoadedSafetensors {
  return readAll(bufferSource(bytes, opts.label ?? "<buffer>"), opts.names);
}

function readAll(src: ByteSource, names?: readonly string[]): LoadedSafetensors {
  const header = parseHeader(src);
  const scratch = {};
  const tensors = new Map<string, SafeTensor>();
  for (const info of pick(header, src.label, names)) tensors.set(info.name, readTensor(src, info, scratch));
  return { metadata: header.metadata, tensors };
}

export type SafetensorsFile = SafetensorsHeader & {
  path: string;
  names(): string[];
  has(name: string): boolean;
  /** Reads one tensor now (opens and closes the file; nothing stays open between calls). */
  get(name: string): SafeTensor;
};

/** Parses the header now and reads tensors on demand: for checkpoints larger than memory. */
export function openSafetensors(path: string): SafetensorsFile {
  const header = safetensorsHeader(path);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  return {
    ...header,
    path,
    names: () => header.tensors.map((t) => t.name),
    has: (name) => byName.has(name),
    get(name) {
      const info = pick(header, path, [name])[0]!;
      return withFile(path, (src) => {
        if (src.size < header.byteLength)
          throw new SafetensorsError("truncated", path, name, "the file shrank since its header was read");
        return readTensor(src, info, {});
      });
    },
  };
}

/** The tensor's data as a Float32Array, or an error naming it when its dtype is an integer. */
export function asFloat32(t: SafeTensor, file = "<safetensors>"): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  throw new SafetensorsError("dtype", file, t.name, `is ${t.dtype}, expected a float dtype`);
}

// ---------------------------------------------------------------------------- writing

/** A tensor to write: floats as F32 / F16 / BF16 (rounded), or integers as I32 (an Int32Array). */
export type TensorToWrite =
  | { dtype?: WriteDtype; shape: readonly number[]; data: Float32Array }
  | { dtype: "I32"; shape: readonly number[]; data: Int32Array };
const WRITE_SIZE: Record<WriteDtype | "I32", number> = { F32: 4, F16: 2, BF16: 2, I32: 4 };

type Layout = { header: Uint8Array; entries: [string, TensorToWrite][]; byteLength: number };

/** Validates the input and lays it out: names sorted, data contiguous, header padded to 8 bytes. */
function layout(
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> | undefined,
  label: string,
): Layout {
  const entries = Object.entries(tensors).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== "string")
        throw new SafetensorsError("input", label, undefined, `metadata '${k}' is not a string`);
    json.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const fail = (detail: string) => new SafetensorsError("input", label, name, detail);
    if (name === "__metadata__") throw fail("the name is reserved for metadata");
    const dtype = t.dtype ?? "F32";
    if (!Object.hasOwn(WRITE_SIZE, dtype)) throw fail(`cannot write dtype '${dtype}' (F32, F16, BF16 or I32)`);
    if (dtype === "I32" ? !(t.data instanceof Int32Array) : !(t.data instanceof Float32Array))
      throw fail(`data is not ${dtype === "I32" ? "an Int32Array" : "a Float32Array"}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw fail(`shape [${t.shape}] is not non-negative integers`);
    if (numel(t.shape) !== t.data.length)
      throw fail(`shape [${t.shape}] needs ${numel(t.shape)} values, data has ${t.data.length}`);
    const bytes = t.data.length * WRITE_SIZE[dtype];
    json[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = JSON.stringify(json);
  const textBytes = new TextEncoder().encode(text);
  const padded = Math.ceil(textBytes.length / 8) * 8; // 8 + N stays a multiple of 8: aligned data
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + textBytes.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(textBytes, 8);
  return { header, entries, byteLength: header.length + offset };
}

/** The file's bytes in order; a yielded chunk is only valid until the next one is asked for. */
function* chunks({ header, entries }: Layout): Generator<Uint8Array> {
  yield header;
  const scratch = new Uint16Array(SCRATCH_BYTES / 2);
  for (const [, t] of entries) {
    if (t.dtype === "I32" || (t.dtype ?? "F32") === "F32") {
      yield new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      continue;
    }
    const dtype = t.dtype;
    const convert = dtype === "F16" ? f32ToF16Array : f32ToBf16Array;
    for (let i = 0; i < t.data.length; i += scratch.length) {
      const part = scratch.subarray(0, Math.min(scratch.length, t.data.length - i));
      convert(t.data, part, i);
      yield new Uint8Array(part.buffer, 0, part.byteLength);
    }
  }
}

/** The whole file in memory (for small files, tests, and sending over the wire). */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const plan = layout(tensors, metadata, "<buffer>");
  const out = new Uint8Array(plan.byteLength);
  let at = 0;
  for (const c of chunks(plan)) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes `tensors` (sorted by name, F32 unless `dtype` says F16/BF16, rounded to nearest
 * even) to `path` transactionally: into `path.tmp-<pid>`, fsync, then rename, so a crash
 * or an error leaves either the old file or the new one, never half a file.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): void {
  const plan = layout(tensors, metadata, path); // validate before touching the disk
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | undefined = openSync(tmp, "w");
  try {
    for (const c of chunks(plan)) {
      for (let done = 0; done < c.length; ) done += writeSync(fd, c, done, c.length - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
  try {
    // make the rename itself durable; not possible on every platform, hence best effort
    const dir = openSync(dirname(path), "r");
    fsyncSync(dir);
    closeSync(dir);
  } catch {}
}
