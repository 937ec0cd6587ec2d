/**
 * 16-bit floats (IEEE F16 and bfloat16) ↔ F32, bit-exact, for the safetensors reader and writer.
 *
 * F32 → F16/BF16 rounds to nearest, ties to even (as PyTorch's `.half()` / `.bfloat16()`):
 * overflow goes to ±inf, values below half the smallest subnormal go to ±0, and NaN becomes
 * the canonical quiet NaN (F16 `sign|0x7e00`, BF16 `0x7fc0`, PyTorch's choice too).
 * F16/BF16 → F32 is exact (every 16-bit value is representable), NaN payloads included.
 *
 * The array functions work on bit views (`Uint16Array` in, `Uint32Array` over the F32
 * destination out), so callers can convert a chunk of a file without a float round trip.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The F16 bit pattern nearest to `x` (round to nearest even). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 : sign | 0x7c00; // NaN | ±inf
  const e = exp - 127 + 15; // F16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: ±inf
  if (e <= 0) {
    // F16 subnormal (or zero): value = m × 2^-24 with m = (1.mant × 2^23) >> (14 - e)
    if (e < -10) return sign; // below 2^-25: rounds to ±0
    const full = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = full & ((1 << shift) - 1);
    let m = full >>> shift;
    if (rem > half || (rem === half && m & 1)) m++; // m may reach 0x400: the smallest normal, correctly encoded
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is right, up to inf
  return sign | h;
}

/** The BF16 bit pattern nearest to `x` (round to nearest even). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0; // NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** F32 bits of an F16 value; exact. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalise so the leading 1 becomes the implicit bit
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let f16Table: Uint32Array | undefined;

/** 65,536-entry table F16 bits → F32 bits (256 KB, built on first use). */
function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** dst[dstStart + i] = F32 bits of F16 src[i], for every i in src. */
export function f16ToF32Bits(src: Uint16Array, dst: Uint32Array, dstStart = 0): void {
  const table = f16ToF32Table();
  for (let i = 0; i < src.length; i++) dst[dstStart + i] = table[src[i]!]!;
}

/** dst[dstStart + i] = F32 bits of BF16 src[i]: BF16 is the top half of an F32. */
export function bf16ToF32Bits(src: Uint16Array, dst: Uint32Array, dstStart = 0): void {
  for (let i = 0; i < src.length; i++) dst[dstStart + i] = src[i]! << 16;
}

/** dst[i] = F16 bits of src[srcStart + i], for every i in dst. */
export function f32ToF16Array(src: Float32Array, dst: Uint16Array, srcStart = 0): void {
  for (let i = 0; i < dst.length; i++) dst[i] = f32ToF16Bits(src[srcStart + i]!);
}

/** dst[i] = BF16 bits of src[srcStart + i], for every i in dst (bit arithmetic, no float ops). */
export function f32ToBf16Array(src: Float32Array, dst: Uint16Array, srcStart = 0): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < dst.length; i++) {
    const b = bits[srcStart + i]!;
    dst[i] = (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}
