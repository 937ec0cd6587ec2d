/**
 * Length-bucketed batches and their collation into padded tensors.
 *
 * Each epoch's order is a pure function of (seed, epoch): shuffle all examples, cut the
 * shuffled list into buckets of `bucketBatches` batches, sort each bucket by length (so a
 * batch holds similar lengths and little padding), cut it into batches, then shuffle the
 * batches. Because there is no hidden generator state, a resumed run finds its place from
 * the micro-batch index alone.
 *
 * @example
 *   const order = epochBatches(data.examples.map((e) => e.ids.length), 8, 0, 0);
 *   const batch = collate(data.examples, order[0]!, padId); // ids/targets/keyMask [B·T]
 */
import { nextTokenTargets } from "../model/score.ts";
import { mixSeed, Rng } from "../tensor/index.ts";
import type { SftExample } from "./dataset.ts";

/** The batches (lists of example indices) of one epoch; every example appears exactly once. */
export function epochBatches(
  lengths: readonly number[],
  batchSize: number,
  seed: number,
  epoch: number,
  bucketBatches = 16,
) {
  const rng = new Rng(mixSeed(seed, 0xda7a, epoch));
  const order = rng.shuffle(Array.from(lengths, (_, i) => i));
  const bucket = batchSize * bucketBatches;
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += bucket) {
    const chunk = order.slice(start, start + bucket).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
    for (let i = 0; i < chunk.length; i += batchSize) batches.push(chunk.slice(i, i + batchSize));
  }
  return rng.shuffle(batches);
}

/** A padded micro-batch, every array row-major [B, T]. */
export interface SftBatch {
  B: number;
  T: number;
  ids: Int32Array;
  /** Next-token targets: ids[t+1] where the assistant mask is 1 there, else −100 (ignored). */
  targets: Int32Array;
  /** 1 on real tokens, 0 on padding. */
  keyMask: Uint8Array;
  /** Real (non-pad) tokens: what tokens/s counts. */
  tokens: number;
  /** Targets that are not ignored: what the loss averages over. */
  supervised: number;
}

/** Right-pads the chosen examples to the longest one with `padId`. */
export function collate(examples: readonly SftExample[], indices: readonly number[], padId: number): SftBatch {
  const rows = indices.map((i) => examples[i]!);
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const keyMask = new Uint8Array(B * T);
  const lossMask = new Uint8Array(B * T);
  let tokens = 0;
  rows.forEach((r, b) => {
    ids.set(r.ids, b * T);
    keyMask.fill(1, b * T, b * T + r.ids.length);
    lossMask.set(r.mask, b * T);
    tokens += r.ids.length;
  });
  const targets = nextTokenTargets(ids, lossMask, B, T);
  let supervised = 0;
  for (const t of targets) if (t !== -100) supervised++;
  return { B, T, ids, targets, keyMask, tokens, supervised };
}
