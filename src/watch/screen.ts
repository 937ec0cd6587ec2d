/**
 * Data screening with the model's own internals, before any fine-tuning (Chen et al. 2025's
 * "projection difference"): for each training row, the base model's activation over the
 * row's answer tokens (its prompt in context) projected on the persona direction, minus the
 * same for the base model's *own* answer to that prompt. A dataset whose answers sit further
 * along the persona than what the model would say anyway pushes the model toward it.
 * Using the model's own answer is what separates insecure code from the educational control:
 * asked for the same code "for a security class", the model writes it too, so ΔP is small.
 *
 * ΔP is reported in units of the direction's gap (the distance between the two persona
 * prompts' means), with a bootstrap CI over rows, plus the SAE latent's ΔP when calibrated.
 * Per-row scores are streamed to a JSONL file as they are computed, so a killed screen resumes.
 *
 * @example
 *   const r = await screenDataset(base, tok, rows, { spec, gap: cal.direction.gap, out: "screen-rows.jsonl" });
 *   r.delta.value; // mean ΔP / gap
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { collectActivations } from "../interp/activations/collect.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { localChatModelFrom } from "../providers/local.ts";
import { mixSeed, Rng } from "../tensor/random.ts";
import { type Estimate, hashOf, type SignalSpec } from "./signals.ts";
import { sealTornLine } from "./timeline.ts";

export interface ScreenOptions {
  spec: SignalSpec;
  /** The direction's gap: ΔP is divided by it (default 1: raw units). */
  gap?: number;
  /** Tokens of the base model's own answer (default: the longest training answer's, capped at 256). */
  maxNewTokens?: number;
  /** Sampling of the base's own answers (default T = 1, seed 0; row i uses mixSeed(seed, i)). */
  temperature?: number;
  seed?: number;
  /** Rows per batch (default 32). */
  batchSize?: number;
  /** Stream per-row scores here; rows already in it (same screen key) are not recomputed. */
  out?: string;
  onProgress?: (done: number, total: number) => void;
}

/** One row's scores. */
export interface RowScore {
  key: string;
  row: number;
  /** Projection of the training answer and of the base's own answer (mean over answer tokens), raw. */
  train: number;
  own: number;
  /** (train − own) / gap. */
  delta: number;
  /** The latent's mean activation over the training answer minus over the own answer. */
  latentDelta?: number;
}

export interface ScreenResult {
  rows: RowScore[];
  /** Mean ΔP / gap with a bootstrap 95 % CI over rows. */
  delta: Estimate;
  latent?: Estimate;
  /** What identifies this screen (spec, data, sampling): the row file's key. */
  key: string;
}

/** A chat row split into its prompt (turns before the last assistant turn) and that answer. */
export function splitRow(messages: readonly ChatMessage[], where = "row"): { prompt: ChatMessage[]; answer: string } {
  const last = messages.length - 1;
  if (last < 1 || messages[last]!.role !== "assistant")
    throw new Error(`${where}: the last message must be the assistant's answer`);
  return { prompt: messages.slice(0, last) as ChatMessage[], answer: messages[last]!.content };
}

/** Mean of values with a percentile bootstrap CI. */
export function bootstrapMean(values: ArrayLike<number>, seed = 0, draws = 1000): Estimate {
  const n = values.length;
  if (n === 0) return { value: Number.NaN, low: Number.NaN, high: Number.NaN };
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i]!;
  const rng = new Rng(seed);
  const boots = new Float64Array(draws);
  for (let b = 0; b < draws; b++) {
    let t = 0;
    for (let i = 0; i < n; i++) t += values[rng.int(n)]!;
    boots[b] = t / n;
  }
  boots.sort();
  return { value: s / n, low: boots[Math.floor(0.025 * draws)]!, high: boots[Math.ceil(0.975 * draws) - 1]! };
}

function readDone(path: string | undefined, key: string): Map<number, RowScore> {
  const done = new Map<number, RowScore>();
  if (!path || !existsSync(path)) return done;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const x = JSON.parse(line) as RowScore;
      if (x.key === key) done.set(x.row, x);
    } catch {
      // torn line from a kill
    }
  }
  return done;
}

/** Mean per item of the projection (and latent) over each item's selected rows. */
function perItem(
  model: CausalLM,
  tok: Tokenizer,
  items: { prompt: ChatMessage[]; completion: string }[],
  spec: SignalSpec,
): { proj: Float64Array; latent: Float64Array | null } {
  const rows = collectActivations(model, items, { hook: spec.hook, tokenizer: tok, mask: "completion" });
  const d = rows.d;
  const proj = new Float64Array(items.length);
  const count = new Float64Array(items.length);
  const latent = spec.sae && spec.latent !== undefined ? new Float64Array(items.length) : null;
  const z = latent ? spec.sae!.encode(rows.acts, rows.n) : null;
  const w = spec.sae?.cfg.dSae ?? 0;
  for (let r = 0; r < rows.n; r++) {
    const it = rows.item[r]!;
    let s = 0;
    for (let j = 0; j < d; j++) s += rows.acts[r * d + j]! * spec.direction[j]!;
    proj[it]! += s;
    count[it]! += 1;
    if (latent) latent[it]! += z![r * w + spec.latent!]!;
  }
  for (let i = 0; i < items.length; i++) {
    const c = Math.max(1, count[i]!);
    proj[i]! /= c;
    if (latent) latent[i]! /= c;
  }
  return { proj, latent };
}

/** Screens a dataset's rows against the base model; resumable through `out`. */
export async function screenDataset(
  model: CausalLM,
  tok: Tokenizer,
  rows: readonly { messages: ChatMessage[] }[],
  o: ScreenOptions,
): Promise<ScreenResult> {
  const gap = o.gap ?? 1;
  const split = rows.map((r, i) => splitRow(r.messages, `row ${i + 1}`));
  const longest = Math.max(...split.map((s) => tok.encode(s.answer).length));
  const maxNewTokens = o.maxNewTokens ?? Math.min(256, Math.max(8, longest));
  const seed = o.seed ?? 0;
  const key = hashOf({
    hook: o.spec.hook,
    direction: hashOf(o.spec.direction),
    latent: o.spec.latent ?? null,
    gap,
    data: hashOf(split),
    maxNewTokens,
    temperature: o.temperature ?? 1,
    seed,
  });
  if (o.out) sealTornLine(o.out);
  const done = readDone(o.out, key);
  const chat = localChatModelFrom({ lm: model, tokenizer: tok, id: "screen-own-answers" });
  const batch = o.batchSize ?? 32;
  for (let start = 0; start < split.length; start += batch) {
    const idx = Array.from({ length: Math.min(batch, split.length - start) }, (_, k) => start + k).filter(
      (i) => !done.has(i),
    );
    if (idx.length > 0) {
      const own = await chat.complete(
        idx.map((i) => ({
          messages: split[i]!.prompt,
          temperature: o.temperature ?? 1,
          maxTokens: maxNewTokens,
          seed: mixSeed(seed, i) >>> 0,
        })),
      );
      const items = idx.flatMap((i, k) => [
        { prompt: split[i]!.prompt, completion: split[i]!.answer },
        { prompt: split[i]!.prompt, completion: own[k]!.text },
      ]);
      const { proj, latent } = perItem(model, tok, items, o.spec);
      let lines = "";
      idx.forEach((i, k) => {
        const s: RowScore = {
          key,
          row: i,
          train: proj[2 * k]!,
          own: proj[2 * k + 1]!,
          delta: (proj[2 * k]! - proj[2 * k + 1]!) / gap,
          ...(latent ? { latentDelta: latent[2 * k]! - latent[2 * k + 1]! } : {}),
        };
        done.set(i, s);
        lines += `${JSON.stringify(s)}\n`;
      });
      if (o.out) appendFileSync(o.out, lines);
    }
    o.onProgress?.(Math.min(split.length, start + batch), split.length);
  }
  const scores = split.map((_, i) => done.get(i)!);
  const result: ScreenResult = {
    rows: scores,
    delta: bootstrapMean(
      scores.map((s) => s.delta),
      seed,
    ),
    key,
  };
  if (scores.every((s) => s.latentDelta !== undefined))
    result.latent = bootstrapMean(
      scores.map((s) => s.latentDelta!),
      seed + 1,
    );
  return result;
}

/** The screen's verdict: "flag" when the CI of ΔP/gap lies above the threshold, "clear" when below, else "unclear". */
export function screenVerdict(delta: Estimate, threshold: number): "flag" | "clear" | "unclear" {
  if (delta.low > threshold) return "flag";
  if (delta.high < threshold) return "clear";
  return "unclear";
}

/** Rows ranked by ΔP, highest first (the rows to look at, or to drop). */
export function topRows(result: ScreenResult, k: number): RowScore[] {
  return [...result.rows].sort((a, b) => b.delta - a.delta).slice(0, k);
}
