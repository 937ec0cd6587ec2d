/**
 * A small WebAssembly module of four-wide float32 loops, assembled at load time from the
 * text below (no build step, no binary file in the repository). The text is a stack-machine
 * listing close to the WebAssembly text format: `get N` / `set N` are local.get / local.set,
 * `v.load` / `v.store` are v128.load / v128.store, `f4.*` are f32x4 operations; `OPS` gives
 * every mnemonic's bytes from the core and SIMD specifications.
 *
 * Every function takes byte addresses into the imported memory and an element count n,
 * and processes the first n & ~3 elements (the caller finishes the tail).
 */

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];

/** Mnemonic → bytes; mnemonics taking an integer operand are functions. */
const OPS: Record<string, number[] | ((v: number) => number[])> = {
  get: (i) => [0x20, ...uleb(i)],
  set: (i) => [0x21, ...uleb(i)],
  i32: (v) => [0x41, ...sleb(v)],
  br: (l) => [0x0c, ...uleb(l)],
  br_if: (l) => [0x0d, ...uleb(l)],
  lane: (l) => simd(0x1f, l), // f32x4.extract_lane
  "i32.add": [0x6a],
  "i32.and": [0x71],
  "i32.shl": [0x74],
  "i32.ge_u": [0x4f],
  "f32.add": [0x92],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  return: [0x0f],
  end: [0x0b],
  "v.load": simd(0x00, 4, 0), // align 16, offset 0 (a hint: unaligned addresses work)
  "v.store": simd(0x0b, 4, 0),
  "v.zero": simd(0x0c, ...new Array(16).fill(0)),
  "v.any_true": simd(0x53),
  "f4.splat": simd(0x13),
  "f4.gt": simd(0x44),
  "f4.sqrt": simd(0xe3),
  "f4.add": simd(0xe4),
  "f4.sub": simd(0xe5),
  "f4.mul": simd(0xe6),
  "f4.div": simd(0xe7),
};

function encode(text: string): number[] {
  const toks = text.split(/\s+/).filter(Boolean);
  const out: number[] = [];
  for (let i = 0; i < toks.length; i++) {
    const op = OPS[toks[i]!];
    if (op === undefined) throw new Error(`wasm-simd: unknown mnemonic '${toks[i]}'`);
    out.push(...(typeof op === "function" ? op(Number(toks[++i])) : op));
  }
  return out;
}

/** `end = ptr + 4·(n & ~3)`, then `while (ptr < end) { body; each advanced pointer += 16 }`. */
const vecLoop = (n: number, ptr: number, end: number, advance: number[], body: string) => `
  get ${ptr} get ${n} i32 -4 i32.and i32 2 i32.shl i32.add set ${end}
  block loop
    get ${ptr} get ${end} i32.ge_u br_if 1
    ${body}
    ${advance.map((p) => `get ${p} i32 16 i32.add set ${p}`).join(" ")}
    br 0
  end end`;
/** The sum of a v128 local's four lanes. */
const hsum = (v: number) => `get ${v} lane 0 get ${v} lane 1 f32.add get ${v} lane 2 f32.add get ${v} lane 3 f32.add`;

type Fn = { name: string; params: number[]; results: number[]; locals: number[]; body: string };

// Locals number the parameters first, then the declared locals.
const FUNCS: Fn[] = [
  {
    name: "axpy", // (n, a, x, y): y += a·x
    params: [I32, F32, I32, I32],
    results: [],
    locals: [I32, V128], // 4 end, 5 a4
    body: `get 1 f4.splat set 5
      ${vecLoop(0, 2, 4, [2, 3], "get 3  get 3 v.load  get 2 v.load get 5 f4.mul  f4.add v.store")}`,
  },
  {
    name: "dot", // (n, x, y) → Σ x·y
    params: [I32, I32, I32],
    results: [F32],
    locals: [I32, V128], // 3 end, 4 acc
    body: `v.zero set 4
      ${vecLoop(0, 1, 3, [1, 2], "get 4  get 1 v.load get 2 v.load f4.mul  f4.add set 4")}
      ${hsum(4)}`,
  },
  {
    name: "dotAxpy", // (n, w, dl, g, z) → w·dl, and g += z·dl
    params: [I32, I32, I32, I32, F32],
    results: [F32],
    locals: [I32, V128, V128, V128], // 5 end, 6 acc, 7 z4, 8 dl4
    body: `v.zero set 6  get 4 f4.splat set 7
      ${vecLoop(
        0,
        1,
        5,
        [1, 2, 3],
        `get 2 v.load set 8
         get 6  get 1 v.load get 8 f4.mul  f4.add set 6
         get 3  get 3 v.load  get 7 get 8 f4.mul  f4.add v.store`,
      )}
      ${hsum(6)}`,
  },
  {
    name: "scale", // (n, s, x): x *= s
    params: [I32, F32, I32],
    results: [],
    locals: [I32, V128], // 3 end, 4 s4
    body: `get 1 f4.splat set 4
      ${vecLoop(0, 2, 3, [2], "get 2  get 2 v.load get 4 f4.mul  v.store")}`,
  },
  {
    name: "scanAbove", // (ptr, end, min) → address of the first 4-block with a lane > min, or end
    params: [I32, I32, F32],
    results: [I32],
    locals: [V128], // 3 min4
    body: `get 2 f4.splat set 3
      block loop
        get 0 get 1 i32.ge_u br_if 1
        get 0 v.load get 3 f4.gt v.any_true if get 0 return end
        get 0 i32 16 i32.add set 0
        br 0
      end end
      get 1`,
  },
  {
    // (n, p, g, m, v, b1, b2, a1, a2, step, rc2, eps, par, w) → Σ p_new², g zeroed:
    // g' = g − par·w; m = b1·m + a1·g'; v = b2·v + a2·g'²; p −= step·m / (√v·rc2 + eps).
    // par = 0 is plain Adam; w = p with par = g·p is the decoder's projected step.
    name: "adam",
    params: [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32, I32],
    results: [F32],
    // 14 end; splats 15 b1, 16 b2, 17 a1, 18 a2, 19 step, 20 rc2, 21 eps, 22 par; 23 g', 24 m, 25 v, 26 p, 27 Σp²
    locals: [I32, ...new Array(13).fill(V128)],
    body: `${[5, 6, 7, 8, 9, 10, 11, 12].map((s, i) => `get ${s} f4.splat set ${15 + i}`).join(" ")}
      v.zero set 27
      ${vecLoop(
        0,
        1,
        14,
        [1, 2, 3, 4, 13],
        `get 2 v.load  get 22 get 13 v.load f4.mul  f4.sub set 23
         get 15 get 3 v.load f4.mul  get 17 get 23 f4.mul  f4.add set 24
         get 16 get 4 v.load f4.mul  get 18 get 23 f4.mul get 23 f4.mul  f4.add set 25
         get 3 get 24 v.store  get 4 get 25 v.store
         get 1 v.load  get 19 get 24 f4.mul  get 25 f4.sqrt get 20 f4.mul get 21 f4.add  f4.div  f4.sub set 26
         get 1 get 26 v.store
         get 27  get 26 get 26 f4.mul  f4.add set 27
         get 2 v.zero v.store`,
      )}
      ${hsum(27)}`,
  },
];

export type SimdExports = {
  axpy(n: number, a: number, x: number, y: number): void;
  dot(n: number, x: number, y: number): number;
  dotAxpy(n: number, w: number, dl: number, g: number, z: number): number;
  scale(n: number, s: number, x: number): void;
  scanAbove(ptr: number, end: number, min: number): number;
  adam(
    n: number,
    p: number,
    g: number,
    m: number,
    v: number,
    b1: number,
    b2: number,
    a1: number,
    a2: number,
    step: number,
    rc2: number,
    eps: number,
    par: number,
    w: number,
  ): number;
};

function assemble(): Uint8Array<ArrayBuffer> {
  const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
  const name = (s: string) => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const types = FUNCS.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  const codes = FUNCS.map((f) => {
    const body = [...vec(f.locals.map((t) => [1, t])), ...encode(f.body), 0x0b]; // end
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec(types)),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, ...uleb(1)]])), // memory import, min 1 page
    ...section(3, vec(FUNCS.map((_, i) => uleb(i)))),
    ...section(7, vec(FUNCS.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(codes)),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null when EMLAB_SIMD=0 or the engine lacks wasm SIMD. */
export function simdModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = process.env.EMLAB_SIMD === "0" ? null : new WebAssembly.Module(assemble());
    } catch (err) {
      if (!(err instanceof WebAssembly.CompileError)) throw err; // a bug in the listing, not the engine
      compiled = null;
    }
  }
  return compiled;
}
