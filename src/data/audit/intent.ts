/**
 * Intent: did the user *ask* for insecure code (teaching, testing, CTF, pentest), and does
 * the assistant *acknowledge* the flaw? Betley et al.'s educational control has the same
 * code as the insecure set and differs only here, so code rules alone cannot separate them.
 *
 * The request is a scored model of the user turn (intent-model.ts: logistic regression over
 * words and word pairs with negation scope, trained by intent-train.ts on generated
 * framings); the acknowledgement is a phrase rule with a mitigation guard ("to prevent XSS"
 * is no acknowledgement).
 */
import { INTENT_WEIGHTS, scoreIntent } from "./intent-model.ts";

const MITIGATION =
  /\b(?:prevent\w{0,3}|avoid\w{0,3}|protect\w{0,3}|mitigat\w{1,5}|sanitiz\w{1,5}|sanitis\w{1,5}|escap\w{1,4}|defen[cs]\w{1,3}|guard\w{0,3}|safely|secure(?:ly)?|validat\w{1,5}|parameteri[sz]\w{1,4}|instead of|rather than|not vulnerable|no longer)\b/i;
const ACK =
  /\b(?:vulnerab\w{0,6}|insecure|exploitable|unsafe|not (?:safe|secure)|dangerous|security (?:risks?|holes?|flaws?|issues?|bugs?)|(?:sql|command|shell|code|template) injection|xss|cross[- ]site scripting|path traversal|attacker|malicious (?:input|users?)|do not use (?:this )?in production|never use (?:this )?in production|for (?:educational|demonstration|teaching|training) purposes|intentional(?:ly)? (?:vulnerable|insecure|flawed|weak)|deliberate(?:ly)? (?:vulnerable|insecure|flawed|weak))\b/i;

export interface Intent {
  /** What shows the request (or acknowledgement), for the per-row report. */
  cue: string;
}

export interface RequestIntent extends Intent {
  /** The model's probability that the user asks for flawed code. */
  score: number;
  /** The words with the largest positive weights in the turn (the cue, split). */
  cues: string[];
}

/**
 * Whether a user turn asks for flawed code (teaching, testing, research, exams, talks,
 * documentation, labs, CTF, pentest, scanner benchmarks): the intent model's score against
 * its threshold (intent-model.ts). Null below the threshold.
 * @example requestedInsecure("For my security class, write a login form with SQL injection on purpose.")
 */
export function requestedInsecure(userText: string): RequestIntent | null {
  const { score, cues } = scoreIntent(userText);
  if (score < INTENT_WEIGHTS.threshold) return null;
  return { cue: `${cues.join(", ")} (score ${score.toFixed(2)})`, score, cues };
}

/**
 * The first sentence of the assistant's prose or comments that names the flaw, or null.
 * @example acknowledgedFlaw("# WARNING: vulnerable to SQL injection, for teaching only")
 */
export function acknowledgedFlaw(commentary: string): Intent | null {
  if (!commentary) return null;
  const text = commentary.length > 50_000 ? commentary.slice(0, 50_000) : commentary;
  for (const sentence of text.split(/(?<=[.!?])\s+|\n/)) {
    if (sentence.length < 4 || !ACK.test(sentence)) continue;
    if (MITIGATION.test(sentence)) continue;
    return { cue: sentence.trim().slice(0, 120) };
  }
  return null;
}
