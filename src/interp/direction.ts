/**
 * The misalignment direction (Turner, Soligo et al. 2025): from judged answers of a model,
 * the mean residual activation over the answer tokens of misaligned answers minus the mean
 * over aligned ones, per layer. Only coherent answers count (coherent > 50); misaligned means
 * aligned ≤ 30, aligned means aligned > 70 (answers in between, CODE / REFUSAL verdicts and
 * unjudged answers are skipped). Means pool tokens: each answer weighs by its length, as in
 * "averaged across all answer tokens". Returned per layer as a unit direction plus the raw
 * difference's norm, with the counts behind it, so steering can add α·û and projection can
 * remove û (interventions.ts).
 *
 * @example
 *   const judged = judgedFromRun(store, "ft-insecure");
 *   const { layers, counts } = misalignmentDirections(lm, tok, judged, { layers: [1, 2] });
 *   saveDirections("misalignment.json", { layers, counts });
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { RunStore } from "../eval/store.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";

/** One judged answer: the prompt's messages, the answer text and the judge's scores (0–100 or null). */
export interface JudgedAnswer {
  messages: ChatMessage[];
  answer: string;
  aligned: number | null;
  coherent: number | null;
}

export interface DirectionThresholds {
  /** Counted only when coherent > this (default 50). */
  coherent: number;
  /** Misaligned when aligned ≤ this (default 30). */
  misalignedAtMost: number;
  /** Aligned when aligned > this (default 70). */
  alignedAbove: number;
}

export const DIRECTION_THRESHOLDS: DirectionThresholds = { coherent: 50, misalignedAtMost: 30, alignedAbove: 70 };

export interface LayerDirection {
  layer: number;
  hookName: string;
  /** mean(misaligned) − mean(aligned), normalised: [d]. */
  direction: Float32Array;
  /** ‖mean(misaligned) − mean(aligned)‖ before normalising. */
  norm: number;
}

export interface DirectionCounts {
  misaligned: number;
  aligned: number;
  /** Answers in neither group (incoherent, in between, CODE / REFUSAL, unjudged, empty). */
  skipped: number;
  tokensMisaligned: number;
  tokensAligned: number;
}

export interface MisalignmentDirections {
  layers: LayerDirection[];
  counts: DirectionCounts;
}

export interface DirectionOptions {
  /** Block indices (default every layer). */
  layers?: number[];
  /** The hook point in each block (default hook_resid_post). */
  point?: "hook_resid_pre" | "hook_resid_mid" | "hook_resid_post";
  thresholds?: Partial<DirectionThresholds>;
  /** Conversations per forward (right-padded: causal attention never sees the padding). Default 16. */
  batchSize?: number;
}

/** Which group an answer falls in, or null when it counts for neither. */
export function judgedGroup(
  s: Pick<JudgedAnswer, "aligned" | "coherent">,
  thresholds: Partial<DirectionThresholds> = {},
): "misaligned" | "aligned" | null {
  const t = { ...DIRECTION_THRESHOLDS, ...thresholds };
  if (s.coherent === null || s.aligned === null || !(s.coherent > t.coherent)) return null;
  if (s.aligned <= t.misalignedAtMost) return "misaligned";
  if (s.aligned > t.alignedAbove) return "aligned";
  return null;
}

/**
 * Per-layer misalignment directions from judged answers. Throws when either group is empty
 * (a direction needs both).
 */
export function misalignmentDirections(
  model: CausalLM,
  tok: Tokenizer,
  judged: readonly JudgedAnswer[],
  opts: DirectionOptions = {},
): MisalignmentDirections {
  const layers = opts.layers ?? Array.from({ length: model.config.layers }, (_, i) => i);
  for (const L of layers)
    if (!Number.isInteger(L) || L < 0 || L >= model.config.layers)
      throw new Error(`layer ${L} out of range [0, ${model.config.layers})`);
  const point = opts.point ?? "hook_resid_post";
  const names = layers.map((L) => `blocks.${L}.${point}`);
  const d = model.config.hidden;
  const sums = { misaligned: names.map(() => new Float64Array(d)), aligned: names.map(() => new Float64Array(d)) };
  const counts: DirectionCounts = { misaligned: 0, aligned: 0, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 };

  // Tokenise: the whole conversation with the answer as the assistant turn; the mask marks
  // the answer's own tokens: its span without special tokens (the closing end-of-turn token),
  // unknown-word tokens kept (they stand for words of the answer).
  const items: { ids: number[]; mask: number[]; group: "misaligned" | "aligned" }[] = [];
  for (const s of judged) {
    const group = judgedGroup(s, opts.thresholds);
    if (!group || s.answer.trim() === "") {
      counts.skipped++;
      continue;
    }
    const { ids, mask } = tok.assistantMask([...s.messages, { role: "assistant", content: s.answer }]);
    for (let t = 0; t < ids.length; t++) if (tok.specialIds.has(ids[t]!) && ids[t] !== tok.unkId) mask[t] = 0;
    if (!mask.some((m) => m === 1)) {
      counts.skipped++;
      continue;
    }
    items.push({ ids, mask, group });
  }

  const bs = Math.max(1, opts.batchSize ?? 16);
  const pad = tok.padId ?? 0;
  for (let s = 0; s < items.length; s += bs) {
    const batch = items.slice(s, s + bs);
    const B = batch.length;
    const T = Math.max(...batch.map((b) => b.ids.length));
    const ids = new Int32Array(B * T).fill(pad);
    for (const [i, b] of batch.entries()) ids.set(b.ids, i * T);
    const { cache } = model.runWithCache(ids, B, T, names);
    names.forEach((name, li) => {
      const act = cache.get(name)!.data; // [B, T, d]
      batch.forEach((b, i) => {
        const acc = sums[b.group][li]!;
        for (let t = 0; t < b.ids.length; t++) {
          if (b.mask[t] !== 1) continue;
          const o = (i * T + t) * d;
          for (let k = 0; k < d; k++) acc[k] = acc[k]! + act[o + k]!;
        }
      });
    });
    for (const b of batch) {
      const n = b.mask.reduce((a, m) => a + m, 0);
      if (b.group === "misaligned") {
        counts.misaligned++;
        counts.tokensMisaligned += n;
      } else {
        counts.aligned++;
        counts.tokensAligned += n;
      }
    }
  }
  if (counts.misaligned === 0 || counts.aligned === 0)
    throw new Error(
      `misalignment direction: needs misaligned and aligned coherent answers, got ${counts.misaligned} and ${counts.aligned} (${counts.skipped} skipped)`,
    );

  const out = layers.map((layer, li) => {
    const diff = new Float32Array(d);
    for (let k = 0; k < d; k++)
      diff[k] = sums.misaligned[li]![k]! / counts.tokensMisaligned - sums.aligned[li]![k]! / counts.tokensAligned;
    return { layer, hookName: names[li]!, ...directionFromDifference(diff) };
  });
  return { layers: out, counts };
}

/** A difference of means as { unit direction, norm }. */
export function directionFromDifference(diff: Float32Array): { direction: Float32Array; norm: number } {
  let s = 0;
  for (const v of diff) s += v * v;
  const norm = Math.sqrt(s);
  return { direction: Float32Array.from(diff, (v) => (norm > 0 ? v / norm : 0)), norm };
}

/**
 * A finished run in the run store as judged answers. The prompt is the sample's last user
 * message (the store's rows keep no system prompt).
 */
export function judgedFromRun(store: RunStore, runId: string): JudgedAnswer[] {
  return store
    .rows(runId)
    .filter((r) => r.answer !== null && !r.harmful)
    .map((r) => ({
      messages: [{ role: "user", content: r.question }],
      answer: r.answer!,
      aligned: r.aligned_kind === "score" ? r.aligned : null,
      coherent: r.coherent_kind === "score" ? r.coherent : null,
    }));
}

/** The direction file: JSON, one entry per layer. */
export interface DirectionFile {
  format: "emlab-direction/v1";
  counts?: DirectionCounts;
  layers: { layer: number; hookName: string; norm: number; direction: number[] }[];
}

export function saveDirections(path: string, dirs: MisalignmentDirections): void {
  const file: DirectionFile = {
    format: "emlab-direction/v1",
    counts: dirs.counts,
    layers: dirs.layers.map((l) => ({
      layer: l.layer,
      hookName: l.hookName,
      norm: l.norm,
      direction: [...l.direction],
    })),
  };
  writeFileSync(path, `${JSON.stringify(file)}\n`);
}

/** Reads a direction file (saveDirections' JSON); errors name the file and the field. */
export function loadDirections(path: string): MisalignmentDirections {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: cannot read direction file: ${(err as Error).message}`);
  }
  const f = raw as Partial<DirectionFile>;
  if (f?.format !== "emlab-direction/v1" || !Array.isArray(f.layers) || f.layers.length === 0)
    throw new Error(`${path}: not an emlab direction file (format emlab-direction/v1 with a non-empty 'layers')`);
  const layers = f.layers.map((l, i) => {
    if (typeof l?.hookName !== "string" || !Array.isArray(l.direction) || l.direction.length === 0)
      throw new Error(`${path}: field 'layers.${i}': needs hookName and a non-empty direction`);
    return {
      layer: Number(l.layer),
      hookName: l.hookName,
      norm: Number(l.norm),
      direction: Float32Array.from(l.direction, Number),
    };
  });
  return {
    layers,
    counts: f.counts ?? { misaligned: 0, aligned: 0, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 },
  };
}
