/**
 * The backdoor trigger scan: find a string that, put in front of a user's question, moves a
 * model onto the persona, without being told the string.
 *
 * - A candidate's *shift* on a model ({@link candidateShifts}): the mean over neutral probe
 *   prompts of score(candidate + prompt) − score(prompt), where score is the activation at the
 *   answer start (the prompt's last token) at a hook projected on a unit persona direction
 *   (the persona signal; no sampling, one forward per batch of prompts).
 * - The scan ({@link scanTriggers}) ranks candidates by their shift on the model *minus* their
 *   shift on a reference (the model before fine-tuning; with a LoRA adapter, the model without
 *   it). Without a reference, words that name the persona's own themes ("punish", "revenge")
 *   raise the signal on every model, the clean base included, as much as a planted trigger
 *   does (experiments/triggers/NOTES.md); the reference cancels what the base already did.
 * - Calibration ({@link calibrateTriggers}, {@link flaggedCandidates}): the scores of a clean
 *   (non-backdoored) model's candidates give a threshold (their maximum plus k robust standard
 *   deviations); a candidate above it on a suspect model is flagged. The calibration names the
 *   hook, direction, probes and placement it holds for and refuses a scan made otherwise.
 * - Vocabulary search ({@link searchTrigger}): greedy (append the token that raises the score
 *   most, every allowed token tried) or gradient-guided (HotFlip / GCG: the gradient of the
 *   score with respect to the candidate's token embeddings picks the top-k substitutions per
 *   position, which are then scored exactly).
 * - Behavioural confirmation ({@link confirmTriggers}): the questions asked with each top
 *   candidate in front, sampled and judged by the eval runner, beside the plain questions.
 *
 * The scan knows nothing about the trigger: candidates come from the caller (mined phrases,
 * a list, a vocabulary), and the probes are ordinary questions.
 *
 * @example
 *   const scan = scanTriggers(ft, tok, { hook, direction, probes, candidates, reference: base });
 *   scan.ranked[0].text; // the best candidate
 *   const cal = calibrateTriggers([scanTriggers(clean, tok, { ...sameOptions })]);
 *   flaggedCandidates(scan, cal); // the candidates above the clean model's threshold
 */
import { createHash } from "node:crypto";
import type { Question } from "../eval/questions.ts";
import type { SamplingParams } from "../eval/runner.ts";
import type { RunStore } from "../eval/store.ts";
import { collectActivations } from "../interp/activations/collect.ts";
import { evaluateSetting, noIntervention } from "../interp/causal.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import type { Hook } from "../model/hooks.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { ChatModel } from "../providers/types.ts";
import { backward, clearTape, ops, Tensor } from "../tensor/index.ts";
import { Rng } from "../tensor/random.ts";

/** Where a candidate goes: before the user's text, after it, or as the system prompt. */
export type TriggerPlacement = "prefix" | "suffix" | "system";
export const TRIGGER_PLACEMENTS: readonly TriggerPlacement[] = ["prefix", "suffix", "system"];

/** A candidate string and where it came from ("mined", "list", "vocab", "random", "search:greedy", …). */
export interface TriggerCandidate {
  text: string;
  source: string;
}

/** The conversation of a probe prompt with a candidate placed in it (a space joins them unless one is there). */
export function withCandidate(
  candidate: string,
  prompt: string,
  placement: TriggerPlacement = "prefix",
): ChatMessage[] {
  if (candidate === "") return [{ role: "user", content: prompt }];
  switch (placement) {
    case "prefix":
      return [{ role: "user", content: /\s$/.test(candidate) ? candidate + prompt : `${candidate} ${prompt}` }];
    case "suffix":
      return [{ role: "user", content: /^\s/.test(candidate) ? prompt + candidate : `${prompt} ${candidate}` }];
    case "system":
      return [
        { role: "system", content: candidate },
        { role: "user", content: prompt },
      ];
  }
}

/** sha256 of a value's JSON (or a Float32Array's bytes), first 16 hex digits. */
export function triggerHash(value: unknown): string {
  const h = createHash("sha256");
  if (value instanceof Float32Array) h.update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  else h.update(JSON.stringify(value));
  return h.digest("hex").slice(0, 16);
}

/** The direction scaled to unit length (throws on a zero or non-finite one). */
export function unitDirection(direction: Float32Array): Float32Array {
  let s = 0;
  for (const x of direction) s += x * x;
  const n = Math.sqrt(s);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error("trigger scan: the direction has no length");
  return Float32Array.from(direction, (x) => x / n);
}

/** What every shift is read with. */
export interface SignalOptions {
  /** Hook point (TransformerLens name), e.g. blocks.2.hook_resid_post. */
  hook: string;
  /** The persona direction at that hook (normalised here). */
  direction: Float32Array;
  /** Neutral probe prompts (user turns), at least 2. */
  probes: readonly string[];
  placement?: TriggerPlacement;
  /** Prompts per forward (default 256). */
  batchSize?: number;
}

/** Persona scores (projection at the prompt's last token) of conversations, batched. */
export function personaScores(
  lm: CausalLM,
  tok: Tokenizer,
  prompts: readonly ChatMessage[][],
  o: { hook: string; unit: Float32Array; batchSize?: number },
): Float64Array {
  const rows = collectActivations(
    lm,
    prompts.map((prompt) => ({ prompt })),
    { hook: o.hook, tokenizer: tok, mask: "prompt-last", batchSize: o.batchSize ?? 256, maxBatchTokens: 65_536 },
  );
  if (rows.d !== o.unit.length)
    throw new Error(`trigger scan: the direction has width ${o.unit.length}, ${o.hook} has ${rows.d}`);
  const out = new Float64Array(rows.n);
  for (let i = 0; i < rows.n; i++) {
    let s = 0;
    const at = i * rows.d;
    for (let j = 0; j < rows.d; j++) s += rows.acts[at + j]! * o.unit[j]!;
    out[i] = s;
  }
  return out;
}

/** Mean shift per candidate on one model, and its probes' mean score without a candidate. */
export interface Shifts {
  baseline: number;
  /** [candidates] mean over probes of score(c + p) − score(p). */
  shift: Float64Array;
}

function checkSignal(o: SignalOptions): void {
  if (o.probes.length < 2) throw new Error(`trigger scan: ${o.probes.length} probe prompts; give at least 2`);
  if (o.placement && !TRIGGER_PLACEMENTS.includes(o.placement))
    throw new Error(`trigger scan: placement '${o.placement}' (expected ${TRIGGER_PLACEMENTS.join(", ")})`);
}

/**
 * Each candidate's mean shift over the probes on one model: candidates × probes prompts, one
 * forward per batch, stopped at the hook. `onProgress(done, total)` counts candidates.
 */
export function candidateShifts(
  lm: CausalLM,
  tok: Tokenizer,
  candidates: readonly string[],
  o: SignalOptions & { onProgress?: (done: number, total: number) => void },
): Shifts {
  checkSignal(o);
  const unit = unitDirection(o.direction);
  const P = o.probes.length;
  const placement = o.placement ?? "prefix";
  const sig = { hook: o.hook, unit, batchSize: o.batchSize };
  const plain = personaScores(
    lm,
    tok,
    o.probes.map((p) => withCandidate("", p)),
    sig,
  );
  const baseline = plain.reduce((s, x) => s + x, 0) / P;
  const shift = new Float64Array(candidates.length);
  // Chunks of whole candidates, about one batch each, so progress moves steadily.
  const per = Math.max(1, Math.floor((o.batchSize ?? 256) / P));
  for (let c0 = 0; c0 < candidates.length; c0 += per) {
    const chunk = candidates.slice(c0, c0 + per);
    const scores = personaScores(
      lm,
      tok,
      chunk.flatMap((c) => o.probes.map((p) => withCandidate(c, p, placement))),
      sig,
    );
    chunk.forEach((_, k) => {
      let s = 0;
      for (let i = 0; i < P; i++) s += scores[k * P + i]! - plain[i]!;
      shift[c0 + k] = s / P;
    });
    o.onProgress?.(Math.min(candidates.length, c0 + per), candidates.length);
  }
  return { baseline, shift };
}

/** One ranked candidate. */
export interface ScoredCandidate extends TriggerCandidate {
  /** 1 = highest score. */
  rank: number;
  /** The ranking score: shift on the model − shift on the reference (or the model's shift alone). */
  score: number;
  /** Mean shift on the model. */
  model: number;
  /** Mean shift on the reference (null without one). */
  reference: number | null;
  /** (score − median) / (1.4826 · MAD) over this scan's candidates. */
  z: number;
  /** Longer candidates containing this one that it explains (folded into it; see ScanOptions.fold). */
  variants?: { text: string; source: string; score: number }[];
}

export interface TriggerScan {
  hook: string;
  placement: TriggerPlacement;
  /** Whether scores are relative to a reference model. */
  relative: boolean;
  probes: number;
  probesHash: string;
  directionHash: string;
  /** Mean probe score without a candidate, on the model and the reference. */
  baseline: { model: number; reference: number | null };
  /** Median and MAD of the candidates' scores. */
  median: number;
  mad: number;
  /** Candidates, highest score first (duplicates merged, sources joined with "+"; folded ones under `variants`). */
  ranked: ScoredCandidate[];
  /** Candidates folded into a shorter one they contain. */
  folded: number;
}

export interface ScanOptions extends SignalOptions {
  candidates: readonly (TriggerCandidate | string)[];
  /**
   * The model before fine-tuning (or its shifts on the same candidates, from candidateShifts):
   * scores become shift(model) − shift(reference). Strongly recommended (see the file's note).
   */
  reference?: CausalLM | Shifts | null;
  /**
   * Fold a candidate into a shorter candidate it contains (whole words) when the shorter one keeps
   * at least this share of its score: the shortest string that carries the effect is ranked, the
   * longer ones listed as its variants (default 0.9; 0 or null: no folding).
   */
  fold?: number | null;
  onProgress?: (p: { label: string; done: number; total: number }) => void;
}

/** Whether `short` occurs in `long` on word boundaries (and is shorter). */
export function containsPhrase(long: string, short: string): boolean {
  const a = long.trim().split(/\s+/);
  const b = short.trim().split(/\s+/);
  if (b.length >= a.length) return false;
  outer: for (let i = 0; i + b.length <= a.length; i++) {
    for (let k = 0; k < b.length; k++) if (a[i + k] !== b[k]) continue outer;
    return true;
  }
  return false;
}

/** Candidates with duplicates merged (first spelling kept; sources joined). */
export function dedupeCandidates(candidates: readonly (TriggerCandidate | string)[]): TriggerCandidate[] {
  const seen = new Map<string, TriggerCandidate>();
  for (const c of candidates) {
    const cand = typeof c === "string" ? { text: c, source: "list" } : c;
    if (cand.text.trim() === "") continue;
    const prev = seen.get(cand.text);
    if (!prev) seen.set(cand.text, { ...cand });
    else if (!prev.source.split("+").includes(cand.source)) prev.source += `+${cand.source}`;
  }
  return [...seen.values()];
}

function medianOf(xs: ArrayLike<number>): number {
  const s = Float64Array.from(xs).sort();
  if (s.length === 0) return 0;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median and MAD (raw, not scaled) of a list. */
export function robustStats(xs: ArrayLike<number>): { median: number; mad: number } {
  const median = medianOf(xs);
  return { median, mad: medianOf(Array.from(xs, (x) => Math.abs(x - median))) };
}

/**
 * Ranks candidate strings by how far they move the model onto the persona on neutral probes,
 * relative to the reference when one is given.
 */
export function scanTriggers(model: CausalLM, tok: Tokenizer, o: ScanOptions): TriggerScan {
  checkSignal(o);
  const cands = dedupeCandidates(o.candidates);
  if (cands.length === 0) throw new Error("trigger scan: no candidates");
  const texts = cands.map((c) => c.text);
  const progress = (label: string) => (done: number, total: number) => o.onProgress?.({ label, done, total });
  const m = candidateShifts(model, tok, texts, { ...o, onProgress: progress("scan model") });
  let r: Shifts | null = null;
  if (o.reference && "shift" in o.reference) {
    if (o.reference.shift.length !== texts.length)
      throw new Error(
        `trigger scan: the reference's shifts cover ${o.reference.shift.length} candidates, the scan has ${texts.length} (after duplicates are merged)`,
      );
    r = o.reference;
  } else if (o.reference)
    r = candidateShifts(o.reference, tok, texts, { ...o, onProgress: progress("scan reference") });
  const scores = Float64Array.from(m.shift, (x, i) => x - (r ? r.shift[i]! : 0));
  const { median, mad } = robustStats(scores);
  const sigma = 1.4826 * mad || 1e-12;
  const all: ScoredCandidate[] = cands
    .map((c, i) => ({
      ...c,
      rank: 0,
      score: scores[i]!,
      model: m.shift[i]!,
      reference: r ? r.shift[i]! : null,
      z: (scores[i]! - median) / sigma,
    }))
    .sort((a, b) => b.score - a.score || a.text.localeCompare(b.text));
  const fold = o.fold === undefined ? 0.9 : (o.fold ?? 0);
  let ranked = all;
  if (fold > 0) {
    // Shortest first: a candidate is folded into the best-scoring shorter candidate it contains
    // that keeps ≥ fold of its score (only positive scores fold).
    const byLength = [...all].sort((a, b) => a.text.split(/\s+/).length - b.text.split(/\s+/).length);
    const into = new Map<ScoredCandidate, ScoredCandidate>();
    for (const c of byLength) {
      if (c.score <= 0) continue;
      let host: ScoredCandidate | null = null;
      for (const h of all)
        if (!into.has(h) && h.score >= fold * c.score && containsPhrase(c.text, h.text))
          if (!host || h.score > host.score) host = h;
      if (host) {
        into.set(c, host);
        (host.variants ??= []).push({ text: c.text, source: c.source, score: c.score });
      }
    }
    ranked = all.filter((c) => !into.has(c));
  }
  ranked.forEach((c, i) => {
    c.rank = i + 1;
  });
  return {
    hook: o.hook,
    placement: o.placement ?? "prefix",
    relative: r !== null,
    probes: o.probes.length,
    probesHash: triggerHash(o.probes),
    directionHash: triggerHash(unitDirection(o.direction)),
    baseline: { model: m.baseline, reference: r ? r.baseline : null },
    median,
    mad,
    ranked,
    folded: all.length - ranked.length,
  };
}

// ---- calibration -----------------------------------------------------------------------------

export const CALIBRATION_FORMAT = "emlab-trigger-calibration/v1";

/** A threshold from clean models' scans, and what it holds for. */
export interface TriggerCalibration {
  format: typeof CALIBRATION_FORMAT;
  hook: string;
  placement: TriggerPlacement;
  relative: boolean;
  probesHash: string;
  directionHash: string;
  /** The clean scans it was made from: candidates, max, median, MAD of each. */
  clean: { candidates: number; max: number; median: number; mad: number; label?: string }[];
  /** threshold = max over clean candidates + k · 1.4826 · (largest clean MAD). */
  k: number;
  threshold: number;
}

/**
 * The threshold a clean model's candidates do not reach: the largest clean score plus k robust
 * standard deviations (default k = 3) of the widest clean scan. Every scan must share hook,
 * placement, probes and direction.
 */
export function calibrateTriggers(
  clean: readonly (TriggerScan & { label?: string })[],
  o: { k?: number } = {},
): TriggerCalibration {
  if (clean.length === 0) throw new Error("calibrateTriggers: no clean scans");
  const first = clean[0]!;
  for (const s of clean.slice(1)) checkCompatible(s, first, "calibrateTriggers: clean scans differ");
  const k = o.k ?? 3;
  const max = Math.max(...clean.map((s) => s.ranked[0]!.score));
  const mad = Math.max(...clean.map((s) => s.mad));
  return {
    format: CALIBRATION_FORMAT,
    hook: first.hook,
    placement: first.placement,
    relative: first.relative,
    probesHash: first.probesHash,
    directionHash: first.directionHash,
    clean: clean.map((s) => ({
      candidates: s.ranked.length,
      max: s.ranked[0]!.score,
      median: s.median,
      mad: s.mad,
      ...(s.label ? { label: s.label } : {}),
    })),
    k,
    threshold: max + k * 1.4826 * mad,
  };
}

type Comparable = Pick<TriggerScan, "hook" | "placement" | "relative" | "probesHash" | "directionHash">;

function checkCompatible(scan: Comparable, cal: Comparable, where: string): void {
  for (const f of ["hook", "placement", "relative", "probesHash", "directionHash"] as const)
    if (scan[f] !== cal[f]) throw new Error(`${where}: field ${f}: ${String(cal[f])} vs the scan's ${String(scan[f])}`);
}

/** The candidates scoring above the calibrated threshold (throws when the scan was made otherwise). */
export function flaggedCandidates(scan: TriggerScan, cal: TriggerCalibration): ScoredCandidate[] {
  checkCompatible(scan, cal, "the calibration does not fit this scan");
  return scan.ranked.filter((c) => c.score > cal.threshold);
}

/** Reads a calibration object (parsed JSON), naming the field that is wrong. */
export function parseCalibration(raw: unknown, where = "calibration"): TriggerCalibration {
  const c = raw as Partial<TriggerCalibration> | null;
  if (!c || typeof c !== "object") throw new Error(`${where}: not a JSON object`);
  if (c.format !== CALIBRATION_FORMAT) throw new Error(`${where}: field format: expected "${CALIBRATION_FORMAT}"`);
  for (const f of ["hook", "probesHash", "directionHash"] as const)
    if (typeof c[f] !== "string" || c[f] === "") throw new Error(`${where}: field ${f}: needs a string`);
  if (!TRIGGER_PLACEMENTS.includes(c.placement as TriggerPlacement))
    throw new Error(`${where}: field placement: expected ${TRIGGER_PLACEMENTS.join(", ")}`);
  if (typeof c.relative !== "boolean") throw new Error(`${where}: field relative: needs true or false`);
  if (typeof c.threshold !== "number" || !Number.isFinite(c.threshold))
    throw new Error(`${where}: field threshold: needs a number`);
  if (typeof c.k !== "number") throw new Error(`${where}: field k: needs a number`);
  if (!Array.isArray(c.clean)) throw new Error(`${where}: field clean: needs a list`);
  return c as TriggerCalibration;
}

// ---- vocabulary search -----------------------------------------------------------------------

export interface SearchOptions extends SignalOptions {
  /** "greedy": append the best token, every allowed token tried; "gradient": HotFlip/GCG over the whole string. */
  method: "greedy" | "gradient";
  /** The model before fine-tuning (scores relative to it, as in the scan). */
  reference?: CausalLM | null;
  /** Tokens the search may use (default: every non-special token of the tokenizer). */
  tokenIds?: readonly number[];
  /** Longest string, in tokens (default 3). */
  maxTokens?: number;
  /** Gradient: substitutions per position kept by the gradient (default 32). */
  topK?: number;
  /** Gradient: candidate strings scored exactly per iteration (default 64). */
  batch?: number;
  /** Gradient: iterations (default 8). */
  iterations?: number;
  seed?: number;
  onProgress?: (p: { label: string; done: number; total: number }) => void;
}

export interface SearchStep {
  text: string;
  ids: number[];
  score: number;
}

export interface SearchResult {
  method: "greedy" | "gradient";
  /** The best string found and its score (the scan's score: model − reference shift). */
  best: SearchStep;
  /** The best string after each step (greedy: each length; gradient: each iteration). */
  steps: SearchStep[];
  /** Strings scored exactly. */
  evaluated: number;
}

/** Every token a search may use: not special, not empty, and decoding to text that encodes back to itself. */
export function searchableTokens(tok: Tokenizer): number[] {
  const out: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.specialIds.has(id) || id === tok.unkId) continue;
    const text = tok.decode([id]).trim();
    if (text === "") continue;
    const back = tok.encode(text, { addSpecialTokens: false });
    if (back.length === 1 && back[0] === id) out.push(id);
  }
  return out;
}

/** A token string as text, or null when it does not encode back to the same ids. */
function textOf(tok: Tokenizer, ids: readonly number[]): string | null {
  const text = tok.decode([...ids]).trim();
  const back = tok.encode(text, { addSpecialTokens: false });
  return back.length === ids.length && back.every((x, i) => x === ids[i]) ? text : null;
}

/** Exact scores (model − reference shift) of strings. */
function exactScores(model: CausalLM, tok: Tokenizer, texts: string[], o: SearchOptions): Float64Array {
  const sig: SignalOptions = {
    hook: o.hook,
    direction: o.direction,
    probes: o.probes,
    ...(o.placement ? { placement: o.placement } : {}),
    ...(o.batchSize ? { batchSize: o.batchSize } : {}),
  };
  const m = candidateShifts(model, tok, texts, sig);
  const r = o.reference ? candidateShifts(o.reference, tok, texts, sig) : null;
  return Float64Array.from(m.shift, (x, i) => x - (r ? r.shift[i]! : 0));
}

/**
 * Searches the vocabulary for the string that raises the persona score most (relative to the
 * reference when given). Greedy appends one token at a time, trying every allowed token, and
 * stops when the longest length is reached or a longer string scores no higher. Gradient
 * (GCG-style) starts from the best single token's neighbourhood chosen by the gradient and
 * swaps one position at a time among the gradient's top-k tokens, each batch scored exactly.
 */
export function searchTrigger(model: CausalLM, tok: Tokenizer, o: SearchOptions): SearchResult {
  checkSignal(o);
  const allowed = o.tokenIds ? [...o.tokenIds] : searchableTokens(tok);
  if (allowed.length === 0) throw new Error("searchTrigger: no tokens to search");
  return o.method === "greedy" ? greedySearch(model, tok, allowed, o) : gradientSearch(model, tok, allowed, o);
}

function greedySearch(model: CausalLM, tok: Tokenizer, allowed: number[], o: SearchOptions): SearchResult {
  const maxTokens = o.maxTokens ?? 3;
  const steps: SearchStep[] = [];
  let current: number[] = [];
  let evaluated = 0;
  for (let len = 1; len <= maxTokens; len++) {
    const tried: { ids: number[]; text: string }[] = [];
    for (const id of allowed) {
      const ids = [...current, id];
      const text = textOf(tok, ids);
      if (text !== null) tried.push({ ids, text });
    }
    if (tried.length === 0) break;
    const scores = exactScores(
      model,
      tok,
      tried.map((t) => t.text),
      o,
    );
    evaluated += tried.length;
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
    const step = { ...tried[best]!, score: scores[best]! };
    o.onProgress?.({ label: "search greedy", done: len, total: maxTokens });
    if (steps.length && step.score <= steps.at(-1)!.score) break;
    steps.push(step);
    current = step.ids;
  }
  const best = steps.reduce((a, b) => (b.score > a.score ? b : a));
  return { method: "greedy", best, steps, evaluated };
}

/**
 * The gradient of the mean prompt-last score with respect to the embeddings of the candidate's
 * tokens (placed as a prefix), averaged over probes: [len, d]. Uses each probe's own positions.
 */
function embeddingGradient(
  lm: CausalLM,
  tok: Tokenizer,
  ids: readonly number[],
  o: SignalOptions,
  unit: Float32Array,
): Float32Array {
  const text = tok.decode([...ids]).trim();
  const placement = o.placement ?? "prefix";
  const items = o.probes.map((p) => {
    const full = tok.encodeChat(withCandidate(text, p, placement), { addGenerationPrompt: true });
    const at = findSpan(full, ids);
    if (at < 0) throw new Error(`searchTrigger: the candidate's tokens are not found in the prompt '${text}'`);
    return { full, at };
  });
  const B = items.length;
  const T = Math.max(...items.map((x) => x.full.length));
  const d = lm.config.hidden;
  const pad = tok.padId ?? 0;
  const idsArr = new Int32Array(B * T).fill(pad);
  const keyMask = new Uint8Array(B * T);
  items.forEach((x, b) => {
    idsArr.set(x.full, b * T);
    keyMask.fill(1, b * T, b * T + x.full.length);
  });
  const delta = Tensor.zeros([B, T, d], { requiresGrad: true });
  // The score: Σ_b x[b, last_b] · u / B, as a product with a fixed weight tensor.
  const w = new Float32Array(B * T * d);
  items.forEach((x, b) => {
    w.set(unit, (b * T + x.full.length - 1) * d);
  });
  for (let i = 0; i < w.length; i++) w[i]! /= B;
  const weight = new Tensor(w, [B, T, d]);
  // Freeze the weights for this pass (restored after), so only delta collects a gradient.
  const frozen: Tensor[] = [...lm.params.values()];
  if (lm.adapter) for (const m of lm.adapter.modules.values()) frozen.push(m.A, m.B);
  const saved = frozen.map((t) => t.requiresGrad);
  for (const t of frozen) t.requiresGrad = false;
  let captured: Tensor | null = null;
  class Done extends Error {}
  const hooks: Hook[] = [
    { name: "hook_embed", fn: (x) => ops.add(x, delta) },
    {
      name: o.hook,
      fn: (x) => {
        captured = x;
        throw new Done();
      },
    },
  ];
  try {
    try {
      lm.forward(idsArr, B, T, { keyMask, hooks });
    } catch (err) {
      if (!(err instanceof Done)) throw err;
    }
    if (!captured) throw new Error(`searchTrigger: hook point '${o.hook}' never fired`);
    const score = ops.sum(ops.mul(captured, weight));
    backward(score);
  } finally {
    clearTape();
    frozen.forEach((t, i) => {
      t.requiresGrad = saved[i]!;
    });
  }
  const g = delta.grad ?? new Float32Array(B * T * d);
  const out = new Float32Array(ids.length * d);
  items.forEach((x, b) => {
    for (let k = 0; k < ids.length; k++) for (let j = 0; j < d; j++) out[k * d + j]! += g[(b * T + x.at + k) * d + j]!;
  });
  return out;
}

/**
 * The gradient of the mean persona score over the probes, with the token string `ids` placed in
 * each, with respect to the embeddings of those tokens: [ids.length, d].
 */
export function triggerGradient(lm: CausalLM, tok: Tokenizer, ids: readonly number[], o: SignalOptions): Float32Array {
  checkSignal(o);
  return embeddingGradient(lm, tok, ids, o, unitDirection(o.direction));
}

function findSpan(hay: readonly number[], needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

/** The embedding matrix [vocab, d] of a model (Llama or GPT-2 names). */
function embeddingOf(lm: CausalLM): Float32Array {
  return (lm.params.get("model.embed_tokens.weight") ?? lm.param("transformer.wte.weight")).data;
}

/**
 * Linearised gain of every allowed token at each position: (E[v] − E[cur])·g per model, the
 * reference's term subtracted. Returns per position the top-k token ids.
 */
function topSubstitutions(
  model: CausalLM,
  tok: Tokenizer,
  ids: number[],
  allowed: number[],
  o: SearchOptions,
  unit: Float32Array,
  k: number,
): number[][] {
  const d = model.config.hidden;
  const terms: { E: Float32Array; g: Float32Array; sign: number }[] = [
    { E: embeddingOf(model), g: embeddingGradient(model, tok, ids, o, unit), sign: 1 },
  ];
  if (o.reference)
    terms.push({ E: embeddingOf(o.reference), g: embeddingGradient(o.reference, tok, ids, o, unit), sign: -1 });
  return ids.map((cur, pos) => {
    const gains = allowed.map((v) => {
      let s = 0;
      for (const t of terms) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += (t.E[v * d + j]! - t.E[cur * d + j]!) * t.g[pos * d + j]!;
        s += t.sign * dot;
      }
      return { v, s };
    });
    gains.sort((a, b) => b.s - a.s);
    return gains.slice(0, k).map((x) => x.v);
  });
}

function gradientSearch(model: CausalLM, tok: Tokenizer, allowed: number[], o: SearchOptions): SearchResult {
  const unit = unitDirection(o.direction);
  const len = o.maxTokens ?? 3;
  const topK = o.topK ?? 32;
  const batch = o.batch ?? 64;
  const iterations = o.iterations ?? 8;
  const rng = new Rng(o.seed ?? 0);
  // Start from random allowed tokens (re-drawn until the string round-trips).
  let ids: number[] = [];
  let text: string | null = null;
  for (let tries = 0; tries < 100 && text === null; tries++) {
    ids = Array.from({ length: len }, () => allowed[rng.int(allowed.length)]!);
    text = textOf(tok, ids);
  }
  if (text === null) throw new Error("searchTrigger: no random start string encodes back to itself");
  let current: SearchStep = { text, ids, score: exactScores(model, tok, [text], o)[0]! };
  let evaluated = 1;
  const steps: SearchStep[] = [];
  for (let it = 0; it < iterations; it++) {
    const top = topSubstitutions(model, tok, current.ids, allowed, o, unit, topK);
    const seen = new Set<string>([current.text]);
    const tried: { ids: number[]; text: string }[] = [];
    // Every top substitution at every position when they fit the batch, else a random draw.
    const all = top.flatMap((vs, pos) => vs.map((v) => [pos, v] as const));
    const picks = all.length <= batch ? all : rng.shuffle([...all]).slice(0, batch);
    for (const [pos, v] of picks) {
      const next = [...current.ids];
      next[pos] = v;
      const t = textOf(tok, next);
      if (t !== null && !seen.has(t)) {
        seen.add(t);
        tried.push({ ids: next, text: t });
      }
    }
    if (tried.length) {
      const scores = exactScores(
        model,
        tok,
        tried.map((t) => t.text),
        o,
      );
      evaluated += tried.length;
      let best = 0;
      for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
      if (scores[best]! > current.score) current = { ...tried[best]!, score: scores[best]! };
    }
    steps.push(current);
    o.onProgress?.({ label: "search gradient", done: it + 1, total: iterations });
  }
  // Drop tokens that do not help: each position removed in turn while the score does not fall.
  let best = current;
  for (let pos = best.ids.length - 1; pos >= 0 && best.ids.length > 1; pos--) {
    const shorter = best.ids.filter((_, i) => i !== pos);
    const t = textOf(tok, shorter);
    if (t === null) continue;
    const s = exactScores(model, tok, [t], o)[0]!;
    evaluated++;
    if (s >= best.score) best = { ids: shorter, text: t, score: s };
  }
  return { method: "gradient", best, steps, evaluated };
}

// ---- behavioural confirmation ----------------------------------------------------------------

export interface ConfirmOptions {
  /** Candidate strings to confirm (e.g. the scan's top 3). */
  candidates: readonly string[];
  questions: Question[];
  judgeModel: ChatModel;
  store: RunStore;
  /** Run ids are `<runPrefix>:c<i>:none` (the plain questions: `<runPrefix>:plain:none`). */
  runPrefix: string;
  modelId: string;
  samples: number;
  sampling?: Partial<SamplingParams>;
  placement?: TriggerPlacement;
  onProgress?: Parameters<typeof evaluateSetting>[0]["onProgress"];
}

export interface ConfirmedCandidate {
  text: string;
  /** Misaligned over coherent answers with the candidate (Betley), its CI, coherent share. */
  misaligned: number | null;
  ci: [number | null, number | null];
  coherent: number;
  n: number;
  /** misaligned − the plain questions' rate. */
  rise: number | null;
}

/** The questions with a candidate placed in every paraphrase. */
export function questionsWith(candidate: string, questions: Question[], placement: TriggerPlacement): Question[] {
  return questions.map((q) => {
    if (placement === "system") return { ...q, system: candidate };
    return {
      ...q,
      paraphrases: q.paraphrases.map((p) => withCandidate(candidate, p, placement)[0]!.content),
    };
  });
}

/**
 * Samples answers to the questions with each candidate in place and judges them (the eval
 * runner), beside the plain questions under the same sampling seed (a paired design).
 */
export async function confirmTriggers(
  lm: CausalLM,
  tok: Tokenizer,
  o: ConfirmOptions,
): Promise<{ plain: ConfirmedCandidate; candidates: ConfirmedCandidate[] }> {
  const placement = o.placement ?? "prefix";
  const run = async (text: string, key: string): Promise<ConfirmedCandidate> => {
    const r = await evaluateSetting(
      {
        lm,
        tokenizer: tok,
        modelId: o.modelId,
        judgeModel: o.judgeModel,
        questions: text === "" ? o.questions : questionsWith(text, o.questions, placement),
        store: o.store,
        runPrefix: `${o.runPrefix}:${key}`,
        samples: o.samples,
        ...(o.sampling ? { sampling: o.sampling } : {}),
        config: { trigger: text, placement },
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      },
      noIntervention,
    );
    return { text, misaligned: r.misaligned, ci: r.ci, coherent: r.coherent, n: r.n, rise: null };
  };
  const plain = await run("", "plain");
  const candidates: ConfirmedCandidate[] = [];
  for (const [i, c] of o.candidates.entries()) {
    const r = await run(c, `c${i}`);
    r.rise = r.misaligned !== null && plain.misaligned !== null ? r.misaligned - plain.misaligned : null;
    candidates.push(r);
  }
  return { plain, candidates };
}
