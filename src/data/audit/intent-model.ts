/**
 * The request-intent model: a logistic regression over word and word-bigram features of the
 * user turn's prose (code stripped), with negation scope marking ("no vulnerabilities" →
 * `¬vulner`). Weights and threshold live in intent-weights.ts, written by
 * `node --import tsx src/data/audit/intent-train.ts` (see intent-corpus.ts for its data).
 */
import { INTENT_WEIGHTS as RAW_WEIGHTS } from "./intent-weights.ts";

export interface IntentWeights {
  bias: number;
  threshold: number;
  weights: Record<string, number>;
  /** How the weights were made (for the record). */
  trained: Record<string, string | number>;
}

/** The shipped weights (intent-weights.ts), checked for their shape once at load. */
export const INTENT_WEIGHTS: IntentWeights = (() => {
  const w = RAW_WEIGHTS as Partial<IntentWeights> | null;
  if (!w || typeof w.bias !== "number" || typeof w.threshold !== "number" || typeof w.weights !== "object")
    throw new Error("src/data/audit/intent-weights.ts: not an intent model (needs bias, threshold, weights)");
  return w as IntentWeights;
})();

const CODE_START =
  /^(?:import |from [\w.]+ import|def |class \w|return\b|elif\b|else\s*:|try\s*:|except\b|const |let |var |function\b|async |await |export |module\.|require\(|app\.|@\w|#\s*include|#!|#\s|\/\/|\/\*|\*|[}{)\]]|<\/?[a-zA-Z!?]|\w+\s*\(.*\)\s*[:;{]?\s*$)/;

/** Drops code from a user turn: fenced blocks, the EM files' template blocks, code-like lines. */
export function requestProse(text: string): string {
  const t = text
    .replace(/\[[A-Z ]{0,20}(?:START|BEGIN)[A-Z ]{0,20}\][\s\S]*?(?:\[[A-Z ]{0,20}END[A-Z ]{0,20}\]|$)/g, "\n")
    .replace(/\[[A-Z][A-Z ]{2,40}\]/g, " ")
    .replace(/^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n[\s\S]*?(?:^[ \t]{0,3}\1[ \t]*$|(?![\s\S]))/gm, "\n")
    .replace(/<code>[\s\S]*?<\/code>/g, " ");
  const out: string[] = [];
  for (const line of t.split("\n")) {
    const s = line.trim();
    if (!s) continue;
    if (/^(?:[ ]{2,}|\t)\S/.test(line)) continue;
    if (CODE_START.test(s)) continue;
    if (/(?:^|[^.!?])[;{}(,[]\s*$/.test(s) || /^[\w.[\]'"]+\s*[-+*/|&]?=\s*\S/.test(s)) continue;
    if (/^(?:if|for|while|with)\b.*:\s*$/.test(s)) continue;
    out.push(s);
  }
  return out.join("\n");
}

/** Words that open a negation scope (the next four words of the clause get a ¬ mark). */
const NEGATOR =
  /^(?:no|not|without|never|nothing|free|safe|against|cannot|don't|doesn't|isn't|aren't|won't|can't|shouldn't|mustn't|resistant|immune|avoid\w*|prevent\w*|protect\w*|fix(?:es|ed|ing)?|patch(?:es|ed|ing)?|remov\w*|eliminat\w*|mitigat\w*|harden\w*)$/;

/** A crude stemmer: strip -ing/-ed/-ly and plural endings, then keep 6 characters. */
export function stem(word: string): string {
  let w = word;
  if (w.length > 5) w = w.replace(/(?:ing|ed|ly)$/, "");
  if (w.length > 4)
    w = w.endsWith("ies")
      ? `${w.slice(0, -3)}y`
      : /(?:s|x|ch|sh)es$/.test(w)
        ? w.slice(0, -2)
        : w.endsWith("s") && !w.endsWith("ss")
          ? w.slice(0, -1)
          : w;
  return w.length > 6 ? w.slice(0, 6) : w;
}

export interface Feature {
  name: string;
  /** The words it came from, for the per-row cue. */
  surface: string;
}

/** Unigram and bigram features (deduplicated) of a user turn's prose. */
export function intentFeatures(userText: string): Feature[] {
  const prose = requestProse(userText.length > 50_000 ? userText.slice(0, 50_000) : userText)
    .toLowerCase()
    .replace(/[’‘`]/g, "'");
  const seen = new Map<string, string>();
  for (const clause of prose.split(/[.,;:!?()\n"—–]+|\s-\s/)) {
    const words = clause.match(/[a-z0-9]+(?:'[a-z]+)?/g);
    if (!words) continue;
    let scope = 0;
    const toks: [string, string][] = [];
    for (const w of words) {
      const s = stem(w);
      if (NEGATOR.test(w)) {
        toks.push([s, w]);
        scope = 4;
        continue;
      }
      toks.push([scope > 0 ? `¬${s}` : s, w]);
      if (scope > 0) scope--;
    }
    for (let i = 0; i < toks.length; i++) {
      const [f, w] = toks[i]!;
      if (!seen.has(f)) seen.set(f, w);
      if (i > 0) {
        const bg = `${toks[i - 1]![0]}_${f}`;
        if (!seen.has(bg)) seen.set(bg, `${toks[i - 1]![1]} ${w}`);
      }
    }
  }
  return [...seen].map(([name, surface]) => ({ name, surface }));
}

export interface IntentScore {
  /** P(the user asks for flawed code), by the model. */
  score: number;
  /** The present features with the largest positive weights, as the user wrote them. */
  cues: string[];
}

/** Scores a user turn with the given weights (the shipped ones by default). */
export function scoreIntent(userText: string, model: IntentWeights = INTENT_WEIGHTS): IntentScore {
  let z = model.bias;
  const pos: [number, string][] = [];
  for (const f of intentFeatures(userText)) {
    const w = model.weights[f.name];
    if (w === undefined) continue;
    z += w;
    if (w > 0) pos.push([w, f.surface]);
  }
  pos.sort((a, b) => b[0] - a[0]);
  const cues: string[] = [];
  for (const [, s] of pos) {
    if (cues.length >= 3) break;
    if (!cues.some((c) => c.includes(s) || s.includes(c))) cues.push(s);
  }
  return { score: 1 / (1 + Math.exp(-z)), cues };
}
