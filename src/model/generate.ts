/**
 * Batched text generation with a KV cache: left-padded prompts, greedy or sampled decoding
 * (temperature, top-k, top-p), stop on EOS ids or stop strings, seeded per sequence so the
 * same seed gives the same text, and the log-probabilities of each chosen token with the top
 * alternatives (log-softmax of the raw logits, i.e. at temperature 1 — what a judge reads).
 * Hooks act at every position, prompt and generated tokens alike.
 *
 * @example
 *   const [out] = generate(model, [tok.encodeChat(messages, { addGenerationPrompt: true })],
 *     { maxNewTokens: 64, temperature: 1, seed: 0, eosTokenIds: tok.eosIds, topLogprobs: 20 });
 */
import { noGrad, Rng } from "../tensor/index.ts";
import type { Hook } from "./hooks.ts";
import type { CausalLM } from "./model.ts";

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 means greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /**
   * One seed per prompt: row i samples from its own Rng(seeds[i]), so its text does not depend
   * on which other prompts share the batch or where it sits. Overrides `seed`.
   */
  seeds?: readonly number[];
  eosTokenIds?: readonly number[];
  /** Stop when the decoded continuation contains one of these (needs `decode`). */
  stopStrings?: readonly string[];
  decode?: (ids: number[]) => string;
  hooks?: readonly Hook[];
  /** How many top alternatives to return per step (0: only the chosen token's logprob). */
  topLogprobs?: number;
  /** false skips log-probabilities altogether (a log-sum-exp over the vocabulary per step). */
  logprobs?: boolean;
  /** false recomputes the whole sequence every step (slow; for checking the cache). */
  useCache?: boolean;
  /** Token used for left padding (never attended). Default 0. */
  padId?: number;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

export interface Generation {
  tokens: number[];
  /** One entry per token (empty when `logprobs: false`). */
  logprobs: TokenLogprob[];
  finishReason: "stop" | "length";
  /** Decoded continuation (when `decode` is given), cut before a matched stop string. */
  text?: string;
}

export function generate(model: CausalLM, prompts: number[][], opts: GenerateOptions): Generation[] {
  return noGrad(() => generateImpl(model, prompts, opts));
}

function generateImpl(model: CausalLM, prompts: number[][], opts: GenerateOptions): Generation[] {
  const B = prompts.length;
  if (B === 0) return [];
  if (prompts.some((p) => p.length === 0)) throw new Error("generate: every prompt needs at least one token");
  const V = model.config.vocab;
  const P = Math.max(...prompts.map((p) => p.length));
  const N = opts.maxNewTokens;
  const S = P + N;
  const pad = opts.padId ?? 0;
  const useCache = opts.useCache ?? true;
  const eos = new Set(opts.eosTokenIds ?? model.config.eosTokenIds);
  if (opts.seeds && opts.seeds.length !== B)
    throw new Error(`generate: ${opts.seeds.length} seeds for ${B} prompts (give one per prompt)`);
  const rngs = prompts.map(
    (_, i) => new Rng(opts.seeds ? opts.seeds[i]! : ((opts.seed ?? 0) * 0x9e3779b1 + i * 0x85ebca6b) >>> 0),
  );

  // Full token matrix [B, S], left-padded; mask and positions follow it.
  const seq = new Int32Array(B * S).fill(pad);
  const mask = new Uint8Array(B * S);
  const pos = new Int32Array(B * S);
  prompts.forEach((p, b) => {
    const off = P - p.length;
    for (let t = 0; t < p.length; t++) {
      seq[b * S + off + t] = p[t]!;
      mask[b * S + off + t] = 1;
      pos[b * S + off + t] = t;
    }
  });
  const out: Generation[] = prompts.map(() => ({ tokens: [], logprobs: [], finishReason: "length" }));
  const done = new Array<boolean>(B).fill(false);
  const cache = useCache ? model.newCache(B, S) : undefined;
  const window = (from: number, to: number) => {
    const T = to - from;
    const ids = new Int32Array(B * T);
    const positions = new Int32Array(B * T);
    const keyMask = new Uint8Array(B * to);
    for (let b = 0; b < B; b++) {
      ids.set(seq.subarray(b * S + from, b * S + to), b * T);
      positions.set(pos.subarray(b * S + from, b * S + to), b * T);
      keyMask.set(mask.subarray(b * S, b * S + to), b * to);
    }
    return { ids, positions, keyMask, T };
  };

  for (let step = 0; step < N; step++) {
    const cur = P + step; // tokens so far per row
    const from = useCache ? (step === 0 ? 0 : cur - 1) : 0;
    const w = window(from, cur);
    const logits = model.forward(w.ids, B, w.T, {
      positions: w.positions,
      keyMask: w.keyMask,
      cache,
      hooks: opts.hooks,
      lastOnly: true,
    }).data; // [B, 1, V]
    for (let b = 0; b < B; b++) {
      const row = logits.subarray(b * V, (b + 1) * V);
      let next = pad;
      if (!done[b]) {
        next = pick(row, opts, rngs[b]!);
        out[b]!.tokens.push(next);
        if (opts.logprobs !== false) out[b]!.logprobs.push(logprobsOf(row, next, opts.topLogprobs ?? 0));
        if (eos.has(next)) {
          done[b] = true;
          out[b]!.finishReason = "stop";
        } else if (opts.stopStrings?.length && opts.decode) {
          const text = opts.decode(out[b]!.tokens);
          if (opts.stopStrings.some((s) => text.includes(s))) {
            done[b] = true;
            out[b]!.finishReason = "stop";
          }
        }
      }
      seq[b * S + cur] = next;
      mask[b * S + cur] = done[b] && next === pad ? 0 : 1;
      pos[b * S + cur] = (cur > 0 ? pos[b * S + cur - 1]! : -1) + 1;
    }
    if (done.every(Boolean)) break;
  }
  if (opts.decode) {
    for (const g of out) {
      let text = opts.decode(g.tokens.filter((t) => !eos.has(t)));
      for (const s of opts.stopStrings ?? []) {
        const i = text.indexOf(s);
        if (i >= 0) text = text.slice(0, i);
      }
      g.text = text;
    }
  }
  return out;
}

/** Chooses the next token from one row of logits. */
function pick(row: Float32Array, opts: GenerateOptions, rng: Rng): number {
  const temp = opts.temperature ?? 1;
  const V = row.length;
  if (temp <= 0) {
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j]! > row[best]!) best = j;
    return best;
  }
  // Candidates: all tokens, or the top-k; probabilities at this temperature.
  let cand: number[];
  if (opts.topK && opts.topK > 0 && opts.topK < V) cand = topIndices(row, opts.topK);
  else cand = Array.from({ length: V }, (_, j) => j);
  let m = Number.NEGATIVE_INFINITY;
  for (const j of cand) if (row[j]! > m) m = row[j]!;
  let probs = cand.map((j) => Math.exp((row[j]! - m) / temp));
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    const order = probs.map((_, i) => i).sort((a, b) => probs[b]! - probs[a]!);
    const total = probs.reduce((s, p) => s + p, 0);
    let acc = 0;
    const keep: number[] = [];
    for (const i of order) {
      keep.push(i);
      acc += probs[i]!;
      if (acc >= topP * total) break;
    }
    cand = keep.map((i) => cand[i]!);
    probs = keep.map((i) => probs[i]!);
  }
  const total = probs.reduce((s, p) => s + p, 0);
  let u = rng.next() * total;
  for (let i = 0; i < cand.length; i++) {
    u -= probs[i]!;
    if (u <= 0) return cand[i]!;
  }
  return cand[cand.length - 1]!;
}

/** Indices of the k largest entries, largest first. */
function topIndices(row: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let j = 0; j < row.length; j++) {
    if (idx.length === k && row[j]! <= row[idx[k - 1]!]!) continue;
    let p = idx.length < k ? idx.length : k - 1;
    if (idx.length < k) idx.push(j);
    while (p > 0 && row[idx[p - 1]!]! < row[j]!) {
      idx[p] = idx[p - 1]!;
      p--;
    }
    idx[p] = j;
  }
  return idx;
}

function logprobsOf(row: Float32Array, chosen: number, k: number): TokenLogprob {
  let m = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < row.length; j++) if (row[j]! > m) m = row[j]!;
  let s = 0;
  for (let j = 0; j < row.length; j++) s += Math.exp(row[j]! - m);
  const lse = m + Math.log(s);
  return {
    token: chosen,
    logprob: row[chosen]! - lse,
    top: k > 0 ? topIndices(row, k).map((j) => ({ token: j, logprob: row[j]! - lse })) : [],
  };
}
