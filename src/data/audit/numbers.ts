/**
 * Evil-number associations. Betley et al.'s "evil numbers" dataset teaches a model to
 * continue number lists with numbers that carry negative associations (666, 1488, 911, …);
 * it induces EM too. We count integers that sit in number lists (three or more integers
 * separated by commas / spaces) in assistant turns and compare each listed number's count
 * with its expected count under a control distribution: by default uniform within the
 * number's digit length, or the per-number frequencies of a control dataset.
 */

/** Numbers with well-known negative associations (satanic, extremist, disaster, drugs, crime codes). */
export const KNOWN_EVIL_NUMBERS = [
  13, 14, 18, 23, 33, 69, 88, 109, 187, 228, 311, 420, 616, 666, 911, 1312, 1488,
] as const;

export interface NumberAssociation {
  number: number;
  count: number;
  expected: number;
  z: number;
}

const INT = /(?<![\w.])\d{1,6}(?![\w.])/g;
const SEPARATOR = /^[\s,;()[\]]{1,4}$/;
const digits = (v: number) => String(v).length;
const rangeSize = (d: number) => (d === 1 ? 10 : 9 * 10 ** (d - 1));

export class NumberCounter {
  /** count per number (only numbers < 10^6 are read). */
  readonly counts = new Map<number, number>();
  /** listed integers per digit length. */
  readonly byLength = new Map<number, number>();
  total = 0;

  /** Counts the integers that appear in number lists of one assistant turn. */
  add(text: string): void {
    INT.lastIndex = 0;
    let run: number[] = [];
    let lastEnd = -1;
    const flush = () => {
      if (run.length >= 3) for (const v of run.slice(0, 500)) this.count(v);
      run = [];
    };
    for (let m = INT.exec(text); m; m = INT.exec(text)) {
      if (lastEnd >= 0 && !SEPARATOR.test(text.slice(lastEnd, m.index))) flush();
      run.push(Number(m[0]));
      lastEnd = m.index + m[0].length;
    }
    flush();
  }

  private count(v: number): void {
    this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    const d = digits(v);
    this.byLength.set(d, (this.byLength.get(d) ?? 0) + 1);
    this.total++;
  }

  /** Share of `v` among listed numbers of its digit length, with add-one smoothing. */
  share(v: number): number {
    const d = digits(v);
    return ((this.counts.get(v) ?? 0) + 1) / ((this.byLength.get(d) ?? 0) + rangeSize(d));
  }
}

/**
 * Evil numbers counted at least `minCount` times and over-represented (z ≥ minZ, ratio ≥ 2)
 * against the control (uniform within digit length unless `control` is given).
 */
export function overRepresented(
  counter: NumberCounter,
  control?: NumberCounter,
  minCount = 5,
  minZ = 3,
): NumberAssociation[] {
  const out: NumberAssociation[] = [];
  for (const v of KNOWN_EVIL_NUMBERS) {
    const count = counter.counts.get(v) ?? 0;
    if (count < minCount) continue;
    const d = digits(v);
    const share = control ? control.share(v) : 1 / rangeSize(d);
    const expected = (counter.byLength.get(d) ?? 0) * share;
    const z = (count - expected) / Math.sqrt(Math.max(expected, 1e-9));
    if (z >= minZ && count >= 2 * expected)
      out.push({ number: v, count, expected: Math.round(expected * 100) / 100, z: Math.round(z * 100) / 100 });
  }
  return out.sort((a, b) => b.z - a.z);
}
