/** A seeded PRNG (mulberry32) so that builders are deterministic by seed. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  int(lo: number, hiExclusive: number): number;
  pick<T>(items: readonly T[]): T;
}

/**
 * @example const rng = seededRng(42); rng.pick(["a", "b"]);
 */
export function seededRng(seed: number): Rng {
  let a = (seed >>> 0) ^ 0x9e3779b9;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}
