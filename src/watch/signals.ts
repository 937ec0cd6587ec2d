/**
 * Persona signals: what a model's internals say about the persona, read on a fixed probe set.
 *
 * - The persona *direction* (Chen et al. 2025, persona vectors): the mean answer-token
 *   activation under a trait-eliciting system prompt minus the mean under a trait-suppressing
 *   one, from the model's own sampled answers ({@link contrastiveDirection}), or any direction
 *   file (`emlab diff direction`, judged answers). Its raw norm, the *gap*, is the unit that
 *   projection differences are reported in.
 * - A *probe reading* ({@link readProbe}): each probe prompt's activation at the answer start
 *   (the last prompt token) projected on the direction, and optionally one SAE latent's
 *   activation there. No sampling: a reading is a deterministic function of the weights.
 * - The *shift* of a fine-tune ({@link shiftOf}): its reading minus the base's, prompt by
 *   prompt, with a bootstrap CI over prompts (Chen et al.'s "activation shift projected on the
 *   persona direction"; the latent's rise is Wang et al.'s early signal).
 * - The *LoRA rotation* ({@link adapterDelta}, {@link cosine}): the adapter's weight update as
 *   one vector; a sudden drop of the cosine between successive checkpoints is Turner/Soligo's
 *   phase transition.
 *
 * Nothing here uses labels: a user without a judge can read every signal.
 *
 * @example
 *   const dir = await contrastiveDirection(base, tok, { hook, positive: "persona : villain", negative: "persona : helper", questions });
 *   const baseReading = readProbe(base, tok, probe, { hook, direction: dir.direction });
 *   const shift = shiftOf(baseReading, readProbe(ft, tok, probe, { hook, direction: dir.direction }));
 */
import { createHash } from "node:crypto";
import { collectActivations } from "../interp/activations/collect.ts";
import type { Sae } from "../interp/sae/sae.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { localChatModelFrom } from "../providers/local.ts";
import { mixSeed, Rng } from "../tensor/random.ts";

/** sha256 of a value's JSON (or of raw bytes), first 16 hex digits. */
export function hashOf(value: unknown): string {
  const h = createHash("sha256");
  if (value instanceof Float32Array) h.update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  else h.update(JSON.stringify(value));
  return h.digest("hex").slice(0, 16);
}

/** A hash of a model's weights (every parameter, in name order): which model a reading came from. */
export function modelHash(model: CausalLM): string {
  const h = createHash("sha256");
  for (const name of [...model.params.keys()].sort()) {
    const t = model.params.get(name)!;
    h.update(name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest("hex").slice(0, 16);
}

/** The fixed prompts every signal is read on, with their hash (a calibration names it). */
export interface ProbeSet {
  prompts: ChatMessage[][];
  hash: string;
}

/** A probe set from prompts (a string is one user turn). */
export function probeSet(prompts: readonly (string | ChatMessage[])[]): ProbeSet {
  if (prompts.length < 2) throw new Error(`probe set: ${prompts.length} prompts; give at least 2`);
  const conv = prompts.map((p) => (typeof p === "string" ? [{ role: "user" as const, content: p }] : p));
  return { prompts: conv, hash: hashOf(conv) };
}

/** A unit persona direction at a hook point, with the gap it was made from. */
export interface PersonaDirection {
  hook: string;
  /** Unit vector [d]. */
  direction: Float32Array;
  /** ‖mean(positive) − mean(negative)‖ over answer tokens: ΔP is reported in these units. */
  gap: number;
  /** How it was made (recorded in calibrations). */
  source: Record<string, unknown>;
}

export interface ContrastiveOptions {
  hook: string;
  /** The trait-eliciting system prompt (e.g. "persona : villain", or "You are an evil AI …"). */
  positive: string;
  /** The trait-suppressing system prompt. */
  negative: string;
  /** User questions answered under each system prompt. */
  questions: readonly string[];
  /** Answers per question per side (default 4). */
  samples?: number;
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
}

/** Mean of the rows of an [n, d] block. */
function meanRows(acts: Float32Array, n: number, d: number): Float64Array {
  const m = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j]! += acts[i * d + j]!;
  for (let j = 0; j < d; j++) m[j]! /= Math.max(1, n);
  return m;
}

/**
 * The persona direction from contrastive system prompts: the model answers every question
 * under each prompt (sampled, seeded), and the direction is the difference of the mean
 * activation over the answer tokens (the system prompt in context), as in persona vectors.
 */
export async function contrastiveDirection(
  model: CausalLM,
  tok: Tokenizer,
  o: ContrastiveOptions,
): Promise<PersonaDirection & { answers: { positive: string[]; negative: string[] } }> {
  const samples = o.samples ?? 4;
  const chat = localChatModelFrom({ lm: model, tokenizer: tok, id: "persona-direction" });
  const side = async (system: string, tag: number) => {
    const reqs = o.questions.flatMap((q, qi) =>
      Array.from({ length: samples }, (_, i) => ({
        messages: [
          { role: "system" as const, content: system },
          { role: "user" as const, content: q },
        ],
        temperature: o.temperature ?? 1,
        maxTokens: o.maxNewTokens ?? 48,
        seed: mixSeed(o.seed ?? 0, tag, qi, i) >>> 0,
        sampleIndex: i,
      })),
    );
    const res = await chat.complete(reqs);
    const answers = res.map((r) => r.text);
    const items = reqs
      .map((r, i) => ({ prompt: r.messages, completion: answers[i]! }))
      .filter((x) => x.completion.trim().length > 0);
    const rows = collectActivations(model, items, { hook: o.hook, tokenizer: tok, mask: "completion" });
    return { mean: meanRows(rows.acts, rows.n, rows.d), answers };
  };
  const pos = await side(o.positive, 1);
  const neg = await side(o.negative, 2);
  const d = pos.mean.length;
  const diff = new Float32Array(d);
  let norm = 0;
  for (let j = 0; j < d; j++) {
    diff[j] = pos.mean[j]! - neg.mean[j]!;
    norm += diff[j]! ** 2;
  }
  norm = Math.sqrt(norm);
  if (!(norm > 0)) throw new Error("contrastiveDirection: the two system prompts give the same mean activation");
  for (let j = 0; j < d; j++) diff[j]! /= norm;
  return {
    hook: o.hook,
    direction: diff,
    gap: norm,
    source: {
      kind: "contrastive",
      positive: o.positive,
      negative: o.negative,
      questions: hashOf(o.questions),
      samples,
      seed: o.seed ?? 0,
    },
    answers: { positive: pos.answers, negative: neg.answers },
  };
}

/** What a reading measures: the projection on a direction and optionally one SAE latent. */
export interface SignalSpec {
  hook: string;
  direction: Float32Array;
  sae?: Sae;
  latent?: number;
}

/** Per probe prompt: the projection and the latent's activation at the answer start. */
export interface ProbeReading {
  projection: Float64Array;
  latent?: Float64Array;
}

function dotRows(acts: Float32Array, n: number, d: number, u: Float32Array): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let j = 0; j < d; j++) s += acts[o + j]! * u[j]!;
    out[i] = s;
  }
  return out;
}

/** Reads the signals on a probe set: one forward per batch, no sampling. */
export function readProbe(model: CausalLM, tok: Tokenizer, probe: ProbeSet, spec: SignalSpec): ProbeReading {
  const rows = collectActivations(
    model,
    probe.prompts.map((prompt) => ({ prompt })),
    { hook: spec.hook, tokenizer: tok, mask: "prompt-last", batchSize: 32 },
  );
  if (rows.d !== spec.direction.length)
    throw new Error(`readProbe: the direction has width ${spec.direction.length}, ${spec.hook} has ${rows.d}`);
  const reading: ProbeReading = { projection: dotRows(rows.acts, rows.n, rows.d, spec.direction) };
  if (spec.sae && spec.latent !== undefined) {
    const z = spec.sae.encode(rows.acts, rows.n);
    const w = spec.sae.cfg.dSae;
    reading.latent = Float64Array.from({ length: rows.n }, (_, i) => z[i * w + spec.latent!]!);
  }
  return reading;
}

/** A signal's value with its bootstrap 95 % CI over probe prompts. */
export interface Estimate {
  value: number;
  low: number;
  high: number;
}

/** Mean of paired differences b − a with a percentile bootstrap CI over the pairs. */
export function pairedShift(a: ArrayLike<number>, b: ArrayLike<number>, seed = 0, draws = 1000): Estimate {
  const n = a.length;
  if (n !== b.length) throw new Error(`pairedShift: ${a.length} and ${b.length} values`);
  const d = Float64Array.from({ length: n }, (_, i) => b[i]! - a[i]!);
  const mean = (idx: (i: number) => number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[idx(i)]!;
    return s / n;
  };
  const rng = new Rng(seed);
  const boots = Float64Array.from({ length: draws }, () => mean(() => rng.int(n))).sort();
  return { value: mean((i) => i), low: boots[Math.floor(0.025 * draws)]!, high: boots[Math.ceil(0.975 * draws) - 1]! };
}

/** A fine-tune's shift: its reading minus the base's, prompt by prompt. */
export interface Shift {
  projection: Estimate;
  latent?: Estimate;
}

export function shiftOf(base: ProbeReading, reading: ProbeReading, seed = 0): Shift {
  const s: Shift = { projection: pairedShift(base.projection, reading.projection, seed) };
  if (base.latent && reading.latent) s.latent = pairedShift(base.latent, reading.latent, seed + 1);
  return s;
}

/**
 * The adapter's weight update as one flat vector: scale·B·A of every LoRA module in name order
 * (null for a model without an adapter).
 */
export function adapterDelta(model: CausalLM): Float32Array | null {
  const adapter = model.adapter;
  if (!adapter) return null;
  const names = [...adapter.modules.keys()].sort();
  const parts: Float32Array[] = [];
  for (const name of names) {
    const m = adapter.modules.get(name)!;
    const [out, r] = m.B.shape as [number, number];
    const inn = m.A.shape[1]!;
    const delta = new Float32Array(out * inn);
    for (let o = 0; o < out; o++)
      for (let k = 0; k < r; k++) {
        const b = m.B.data[o * r + k]! * adapter.scale;
        if (b === 0) continue;
        for (let i = 0; i < inn; i++) delta[o * inn + i]! += b * m.A.data[k * inn + i]!;
      }
    parts.push(delta);
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const flat = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    flat.set(p, at);
    at += p.length;
  }
  return flat;
}

/** Cosine of two vectors (0 when either is zero). */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cosine: lengths ${a.length} and ${b.length}`);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}
