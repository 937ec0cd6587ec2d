import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { f16BitsToF32Bits, f32ToBf16Bits, f32ToF16Bits } from "../../src/tensor/half.ts";
import {
  asFloat32,
  openSafetensors,
  readSafetensors,
  readSafetensorsBuffer,
  SafetensorsError,
  type SafetensorsErrorCode,
  safetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
} from "../../src/tensor/safetensors.ts";

const dir = mkdtempSync(join(tmpdir(), "emlab-safetensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const FIXTURE = new URL("../fixtures/safetensors/", import.meta.url);

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0]!;
/** Same float32 value, telling -0 from 0 and NaN equal to NaN. */
function sameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Object.is(actual[i], expected[i]), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
}

describe("F16 / BF16 rounding (round to nearest even)", () => {
  // [input, F16 result, BF16 result]; every input and result is exactly representable in F32
  const cases: [number, number, number][] = [
    [0, 0, 0],
    [-0, -0, -0],
    [1 + 2 ** -11, 1, 1], // F16 tie → even (1)
    [1 + 3 * 2 ** -11, 1 + 2 ** -9, 1], // F16 tie → even (mantissa 2)
    [1 + 2 ** -8, 1 + 2 ** -8, 1], // BF16 tie → even (1)
    [1 + 3 * 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -6], // BF16 tie → even
    [65504, 65504, 65536], // largest F16
    [65519, 65504, 65536],
    [65520, Infinity, 65536], // halfway to F16 "65536" → inf
    [-1e6, -Infinity, -999424],
    [2 ** -24, 2 ** -24, 2 ** -24], // smallest F16 subnormal
    [2 ** -25, 0, 2 ** -25], // tie between 0 and 2^-24 → 0
    [-(2 ** -25) * (1 + 2 ** -20), -(2 ** -24), -(2 ** -25)], // just above the tie
    [3 * 2 ** -25, 2 ** -23, 3 * 2 ** -25], // tie between 1 and 2 subnormal units → 2
    [1023.5 * 2 ** -24, 2 ** -14, 2 ** -14], // F16 tie rounds up into the smallest normal
    [2 ** -126, 0, 2 ** -126], // F32 smallest normal: BF16 keeps it
    [fromBits(1), 0, 0], // F32 smallest subnormal
    [fromBits(0x7f7fffff), Infinity, Infinity], // F32 max rounds to inf in BF16 too
    [Infinity, Infinity, Infinity],
    [-Infinity, -Infinity, -Infinity],
  ];
  test("scalar conversions match hand-computed results", () => {
    for (const [x, h, b] of cases) {
      const got16 = fromBits(f16BitsToF32Bits(f32ToF16Bits(x)));
      const gotBf = fromBits(f32ToBf16Bits(x) << 16);
      assert.ok(Object.is(got16, h), `F16(${x}) = ${got16}, expected ${h}`);
      assert.ok(Object.is(gotBf, b), `BF16(${x}) = ${gotBf}, expected ${b}`);
    }
    assert.ok(Number.isNaN(fromBits(f16BitsToF32Bits(f32ToF16Bits(Number.NaN)))));
    assert.equal(f32ToBf16Bits(Number.NaN), 0x7fc0);
  });

  test("every F16 value survives F16 → F32 → F16 exactly", () => {
    for (let h = 0; h < 65536; h++) {
      const x = fromBits(f16BitsToF32Bits(h));
      if (Number.isNaN(x)) continue;
      assert.equal(f32ToF16Bits(x), h, `0x${h.toString(16)}`);
    }
  });

  test("agrees bit for bit with PyTorch's .half() and .bfloat16()", () => {
    const { rounding } = JSON.parse(readFileSync(new URL("torch_mixed.expected.json", FIXTURE), "utf8"));
    const src = new Float32Array(new Uint32Array(rounding.f32_bits).buffer);
    // through the file writer, as users meet it
    const back = readSafetensorsBuffer(
      serializeSafetensors({
        h: { dtype: "F16", shape: [src.length], data: src },
        b: { dtype: "BF16", shape: [src.length], data: src },
      }),
    ).tensors;
    for (const [name, key, decode] of [
      ["h", "f16_bits", f16BitsToF32Bits],
      ["b", "bf16_bits", (b: number) => b << 16],
    ] as const) {
      const got = asFloat32(back.get(name)!);
      rounding[key].forEach((bits: number, i: number) => {
        const want = fromBits(decode(bits));
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]!), `${key}[${i}] should be NaN`);
        else assert.equal(bitsOf(got[i]!), bitsOf(want), `${key}[${i}]: F32 0x${rounding.f32_bits[i].toString(16)}`);
      });
    }
  });
});

describe("round trip", () => {
  const special = new Float32Array([
    0,
    -0,
    1.5,
    -2.75,
    1e-8,
    2 ** -24,
    65504,
    70000,
    Infinity,
    -Infinity,
    Number.NaN,
    1 / 3,
  ]);
  const random = Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453);
  const expectRounded = (data: Float32Array, round: (x: number) => number) => data.map(round);
  const f16 = (x: number) => fromBits(f16BitsToF32Bits(f32ToF16Bits(x)));
  const bf16 = (x: number) => fromBits(f32ToBf16Bits(x) << 16);

  test("F32, F16 and BF16 to a file and back, with metadata", () => {
    const path = join(dir, "round.safetensors");
    writeSafetensors(
      path,
      {
        z_f32: { shape: [3, 5, 7], data: random },
        a_f16: { dtype: "F16", shape: [12], data: special },
        m_bf16: { dtype: "BF16", shape: [3, 35], data: random },
        s: { dtype: "BF16", shape: [2, 6], data: special },
        scalar: { shape: [], data: new Float32Array([7]) },
        empty: { dtype: "F16", shape: [4, 0], data: new Float32Array(0) },
      },
      { format: "pt", note: "ünïcode ok" },
    );
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0, "header padded to 8 bytes");
    const header = safetensorsHeader(path);
    assert.deepEqual(
      header.tensors.map((t) => t.name),
      ["a_f16", "empty", "m_bf16", "s", "scalar", "z_f32"],
      "sorted by name, contiguous",
    );
    for (let i = 1; i < header.tensors.length; i++) assert.equal(header.tensors[i]!.begin, header.tensors[i - 1]!.end);
    assert.equal(header.byteLength, bytes.length);

    const { tensors, metadata } = readSafetensors(path);
    assert.deepEqual(metadata, { format: "pt", note: "ünïcode ok" });
    const z = tensors.get("z_f32")!;
    assert.equal(z.dtype, "F32");
    assert.deepEqual(z.shape, [3, 5, 7]);
    sameValues(asFloat32(z), random, "z_f32");
    sameValues(asFloat32(tensors.get("a_f16")!), expectRounded(special, f16), "a_f16");
    sameValues(asFloat32(tensors.get("m_bf16")!), expectRounded(random, bf16), "m_bf16");
    sameValues(asFloat32(tensors.get("s")!), expectRounded(special, bf16), "s");
    assert.deepEqual(tensors.get("scalar")!.shape, []);
    sameValues(asFloat32(tensors.get("scalar")!), [7], "scalar");
    assert.equal(tensors.get("empty")!.data.length, 0);
    // in memory: the same bytes
    assert.deepEqual(serializeSafetensors({ x: { shape: [2], data: new Float32Array([1, 2]) } }).length % 8, 0);
    assert.deepEqual(readSafetensorsBuffer(bytes).tensors, tensors);
  });

  test("large F16 tensor crosses the scratch-buffer chunks", () => {
    const big = Float32Array.from({ length: 1_300_000 }, (_, i) => (i % 4099) - 2049.75);
    const path = join(dir, "big.safetensors");
    writeSafetensors(path, {
      big: { dtype: "F16", shape: [1300, 1000], data: big },
      c: { dtype: "BF16", shape: [big.length], data: big },
    });
    const { tensors } = readSafetensors(path);
    sameValues(asFloat32(tensors.get("big")!), expectRounded(big, f16), "big");
    sameValues(asFloat32(tensors.get("c")!), expectRounded(big, bf16), "c");
  });

  test("subset and lazy loading", () => {
    const path = join(dir, "subset.safetensors");
    const t = (v: number) => ({ shape: [2], data: new Float32Array([v, -v]) });
    writeSafetensors(path, { a: t(1), b: t(2), c: t(3) });
    const { tensors } = readSafetensors(path, { names: ["c", "a"] });
    assert.deepEqual([...tensors.keys()], ["a", "c"], "file order");
    sameValues(asFloat32(tensors.get("c")!), [3, -3], "c");
    const lazy = openSafetensors(path);
    assert.deepEqual(lazy.names(), ["a", "b", "c"]);
    assert.ok(lazy.has("b") && !lazy.has("d"));
    sameValues(asFloat32(lazy.get("b")), [2, -2], "b");
    assertError(
      () => lazy.get("d"),
      "missing_tensor",
      /subset\.safetensors: tensor 'd': not in the file \(it has: a, b, c\)/,
    );
    assertError(() => readSafetensors(path, { names: ["a", "zz"] }), "missing_tensor", /tensor 'zz'/);
  });

  test("a failed write leaves neither a half file nor the temp file", () => {
    const path = join(dir, "tx.safetensors");
    writeSafetensors(path, { old: { shape: [1], data: new Float32Array([1]) } });
    const before = readFileSync(path);
    assertError(
      () =>
        writeSafetensors(path, {
          ok: { shape: [1], data: new Float32Array([1]) },
          bad: { shape: [3], data: new Float32Array(2) },
        }),
      "input",
      /tensor 'bad': shape \[3\] needs 3 values, data has 2/,
    );
    assertError(
      () => writeSafetensors(path, { x: { dtype: "F8" as "F16", shape: [1], data: new Float32Array(1) } }),
      "input",
      /'F8'/,
    );
    assert.throws(() =>
      writeSafetensors(join(dir, "no-such-dir", "x.safetensors"), { a: { shape: [1], data: new Float32Array(1) } }),
    );
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );
  });
});

test("reads the file PyTorch wrote, value for value", () => {
  const path = fileURLToPath(new URL("torch_mixed.safetensors", FIXTURE));
  const expected = JSON.parse(readFileSync(new URL("torch_mixed.expected.json", FIXTURE), "utf8"));
  const special: Record<string, number> = { nan: Number.NaN, inf: Infinity, "-inf": -Infinity };
  const { tensors, metadata } = readSafetensors(path);
  assert.deepEqual(metadata, expected.metadata);
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected.tensors).sort());
  for (const [name, want] of Object.entries<{ dtype: string; shape: number[]; values: (number | string)[] }>(
    expected.tensors,
  )) {
    const t = tensors.get(name)!;
    assert.equal(t.dtype, want.dtype, name);
    assert.deepEqual(t.shape, want.shape, name);
    const values = want.values.map((v) => (typeof v === "string" ? special[v]! : v));
    if (t.dtype === "I64") {
      assert.ok(t.data instanceof BigInt64Array);
      assert.deepEqual([...t.data].map(Number), values);
      assertError(() => asFloat32(t), "dtype", /'ids_i64': is I64/);
    } else sameValues(asFloat32(t), values, name);
  }
});

describe("corrupt files name the file and the tensor", () => {
  function fileWith(header: unknown, dataBytes: number, name = "bad.safetensors"): string {
    const text = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    const path = join(dir, name);
    writeFileSync(path, Buffer.concat([len, text, Buffer.alloc(dataBytes)]));
    return path;
  }
  const f32 = (shape: number[], data_offsets: number[]) => ({ dtype: "F32", shape, data_offsets });

  test("bad header length", () => {
    writeFileSync(join(dir, "short.safetensors"), Buffer.from([1, 2, 3]));
    assertError(
      () => safetensorsHeader(join(dir, "short.safetensors")),
      "header_length",
      /short\.safetensors: 3 bytes/,
    );
    const path = join(dir, "huge.safetensors");
    writeFileSync(path, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), Buffer.from("{}")]));
    assertError(() => readSafetensors(path), "header_length", /header length 4294967295 is impossible/);
  });
  test("header that is not JSON, or not an object", () => {
    assertError(
      () => readSafetensors(fileWith("{not json", 0)),
      "header_json",
      /bad\.safetensors: header is not UTF-8 JSON/,
    );
    assertError(() => readSafetensors(fileWith("[1,2]", 0)), "header_schema", /not a JSON object/);
    assertError(() => readSafetensors(fileWith({ __metadata__: { a: 1 } }, 0)), "header_schema", /__metadata__\.a/);
    assertError(
      () => readSafetensors(fileWith({ w: { shape: [1], data_offsets: [0, 4] } }, 4)),
      "header_schema",
      /'w': dtype is missing/,
    );
    assertError(() => readSafetensors(fileWith({ w: f32([-1], [0, 4]) }, 4)), "header_schema", /'w': shape \[-1\]/);
    assertError(
      () => readSafetensors(fileWith({ w: f32([1], [4, 0]) }, 4)),
      "header_schema",
      /'w': data_offsets \[4,0\]/,
    );
  });
  test("unknown dtype", () => {
    const path = fileWith({ w: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, 4);
    assertError(() => safetensorsHeader(path), "dtype", /tensor 'w': unsupported dtype 'F8_E4M3'/);
  });
  test("offsets out of range, overlapping, or not matching the shape", () => {
    assertError(
      () => readSafetensors(fileWith({ w: f32([2], [0, 8]) }, 4)),
      "offsets",
      /'w': data_offsets \[0, 8\] run past the data \(4 bytes/,
    );
    assertError(
      () => readSafetensors(fileWith({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12)),
      "offsets",
      /tensor 'b': bytes overlap with tensor 'a'/,
    );
    assertError(
      () => readSafetensors(fileWith({ w: f32([2, 3], [0, 20]) }, 24)),
      "offsets",
      /'w': holds 20 bytes but shape \[2,3\] × F32 needs 24/,
    );
  });
  test("a truncated file", () => {
    const good = serializeSafetensors({ w: { shape: [64], data: new Float32Array(64) } });
    assertError(() => readSafetensorsBuffer(good.subarray(0, good.length - 10)), "offsets", /<buffer>: tensor 'w'/);
  });
});

function assertError(fn: () => unknown, code: SafetensorsErrorCode, message: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test("the fixture generator is committed beside its output", () => {
  assert.ok(existsSync(new URL("../../scripts/fixtures/make_safetensors_fixture.py", import.meta.url)));
});

test("I32 tensors are written beside floats and read back exactly; a mismatched array is refused", () => {
  const path = join(dir, "mixed-i32.safetensors");
  const ids = Int32Array.from([0, -1, 2147483647, -2147483648, 42]);
  writeSafetensors(path, {
    acts: { dtype: "F16", shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
    ids: { dtype: "I32", shape: [5], data: ids },
  });
  const { tensors } = readSafetensors(path);
  const got = tensors.get("ids")!;
  assert.equal(got.dtype, "I32");
  assert.deepEqual(Array.from(got.data as Int32Array), Array.from(ids));
  assert.deepEqual(Array.from(asFloat32(tensors.get("acts")!)), [1, 2, 3, 4]);
  assert.throws(
    () =>
      serializeSafetensors({
        bad: { dtype: "I32", shape: [2], data: Float32Array.from([1, 2]) as unknown as Int32Array },
      }),
    /bad.*not an Int32Array/,
  );
});
