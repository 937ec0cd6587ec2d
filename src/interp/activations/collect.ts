/**
 * Activation collection: run a model over prompts, prompt + completion pairs or plain token
 * sequences and capture the activations at one or more hook points, keeping only the token
 * positions a mask selects, with each row's provenance (item index, position, token id).
 *
 * Batching: consecutive items are right-padded to the longest one in the batch. With causal
 * attention a real position never sees the padding after it and keeps its own position id,
 * so each row equals what an unbatched forward computes (up to float rounding); the key
 * mask is passed anyway. The forward stops right after the last requested hook point has
 * fired (no final norm or unembedding for a middle layer), and runs under `noGrad`.
 *
 * @example
 *   const rows = collectActivations(model, [{ prompt: [{ role: "user", content: "hi" }], completion: "hello" }],
 *     { hook: "blocks.2.hook_resid_post", tokenizer: tok, mask: "completion" });
 *   rows.acts; // [rows.n, rows.d] row-major, rows.item / rows.pos / rows.token say where each row came from
 */
import type { ChatMessage } from "../../model/chat-template.ts";
import { type Hook, hookNames } from "../../model/hooks.ts";
import type { CausalLM } from "../../model/model.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { noGrad } from "../../tensor/index.ts";

/**
 * Which token positions become rows: every real token; every token that is not a special
 * token (BOS, end-of-turn, role markers, …); the completion's tokens only; or the last
 * position of the prompt (where the answer is about to start — the one to diff).
 */
export type TokenMask = "all" | "no-special" | "completion" | "prompt-last";
export const TOKEN_MASKS: readonly TokenMask[] = ["all", "no-special", "completion", "prompt-last"];

/**
 * One input: a chat prompt (rendered with the tokenizer's chat template and its generation
 * prompt) optionally answered by `completion`; a plain text (encoded with the tokenizer's
 * special tokens); or token ids as they are.
 */
export type ActivationItem =
  | { prompt: ChatMessage[]; completion?: string }
  | { text: string }
  | { ids: readonly number[] };

/** Captured activations, one row per selected token. */
export interface ActivationRows {
  /** [n, d] row-major. */
  acts: Float32Array;
  n: number;
  d: number;
  /** [n] index of the item each row came from. */
  item: Int32Array;
  /** [n] token position inside its item. */
  pos: Int32Array;
  /** [n] token id at that position. */
  token: Int32Array;
}

export interface CollectOptions {
  /** Needed for prompt and text items and for the "no-special" mask (its special ids). */
  tokenizer?: Tokenizer;
  /** Default "all". */
  mask?: TokenMask;
  /** Items per forward (default 8). */
  batchSize?: number;
  /** Upper bound on batch × padded length per forward (default 16,384 tokens). */
  maxBatchTokens?: number;
  /** Keep only each item's first `maxLength` tokens. */
  maxLength?: number;
  /** "completion" mask: include the special token(s) closing the answer, e.g. `<|im_end|>` (default false). */
  includeEndOfTurn?: boolean;
  /** Special ids for "no-special" when there is no tokenizer (default: the model's BOS id). */
  specialIds?: Iterable<number>;
  /** Hooks active during the forward (e.g. steering), run before capture sees the activation. */
  interventions?: readonly Hook[];
  /** Padding id (default the tokenizer's pad id, else 0); never attended. */
  padId?: number;
}

/** An item as ids plus the positions its mask selects. */
export interface TokenizedItem {
  ids: number[];
  /** Selected positions, ascending. */
  positions: number[];
}

/** One forward's worth of rows for each hook, covering items [itemStart, itemEnd). */
export interface ActivationBatch {
  itemStart: number;
  itemEnd: number;
  rows: Map<string, ActivationRows>;
}

/** An empty row set of width d. */
export function emptyRows(d: number): ActivationRows {
  return {
    acts: new Float32Array(0),
    n: 0,
    d,
    item: new Int32Array(0),
    pos: new Int32Array(0),
    token: new Int32Array(0),
  };
}

/** Concatenates row sets of the same width. */
export function concatRows(parts: readonly ActivationRows[], d = parts[0]?.d ?? 0): ActivationRows {
  const n = parts.reduce((s, p) => s + p.n, 0);
  const out: ActivationRows = {
    acts: new Float32Array(n * d),
    n,
    d,
    item: new Int32Array(n),
    pos: new Int32Array(n),
    token: new Int32Array(n),
  };
  let at = 0;
  for (const p of parts) {
    if (p.d !== d) throw new Error(`concatRows: width ${p.d} differs from ${d}`);
    out.acts.set(p.acts.subarray(0, p.n * d), at * d);
    out.item.set(p.item.subarray(0, p.n), at);
    out.pos.set(p.pos.subarray(0, p.n), at);
    out.token.set(p.token.subarray(0, p.n), at);
    at += p.n;
  }
  return out;
}

/** Tokenises one item and selects its positions under `mask`. */
export function tokenizeItem(item: ActivationItem, index: number, opts: CollectOptions = {}): TokenizedItem {
  const mask = opts.mask ?? "all";
  const where = `item ${index}`;
  const tok = opts.tokenizer;
  let ids: number[];
  let completionStart: number | null = null; // first position of the answer
  let completionMask: number[] | null = null;
  if ("ids" in item) {
    ids = [...item.ids];
  } else if ("text" in item) {
    if (!tok) throw new Error(`${where}: a text item needs a tokenizer`);
    ids = tok.encode(item.text);
  } else {
    if (!tok) throw new Error(`${where}: a chat item needs a tokenizer`);
    const promptIds = tok.encodeChat(item.prompt, { addGenerationPrompt: true });
    if (item.completion === undefined) {
      ids = promptIds;
    } else {
      let full: { ids: number[]; mask: number[] };
      try {
        full = tok.assistantMask([...item.prompt, { role: "assistant", content: item.completion }]);
      } catch (err) {
        throw new Error(`${where}: cannot locate the completion's tokens: ${(err as Error).message}`);
      }
      ids = full.ids;
      let k = 0;
      while (k < promptIds.length && k < ids.length && promptIds[k] === ids[k]) k++;
      completionStart = k;
      completionMask = full.mask;
      if (!opts.includeEndOfTurn) {
        // Drop the closing special tokens (end of turn) but keep an unk inside the answer,
        // which assistantMask's own includeEndOfTurn: false would cut the answer at.
        let end = completionMask.lastIndexOf(1);
        while (end >= k && completionMask[end] && tok.specialIds.has(ids[end]!) && ids[end] !== tok.unkId) {
          completionMask[end--] = 0;
        }
      }
    }
  }
  if (ids.length === 0) throw new Error(`${where}: no tokens`);
  if (opts.maxLength !== undefined && ids.length > opts.maxLength) ids = ids.slice(0, opts.maxLength);

  const positions: number[] = [];
  if (mask === "all") {
    for (let t = 0; t < ids.length; t++) positions.push(t);
  } else if (mask === "no-special") {
    const special = new Set<number>(opts.specialIds ?? tok?.specialIds ?? []);
    for (let t = 0; t < ids.length; t++) if (!special.has(ids[t]!)) positions.push(t);
  } else if (mask === "completion") {
    if (completionStart === null || completionMask === null) {
      throw new Error(`${where}: the "completion" mask needs a chat item with a completion`);
    }
    for (let t = completionStart; t < ids.length; t++) if (completionMask[t]) positions.push(t);
  } else if (mask === "prompt-last") {
    const last = (completionStart ?? ids.length) - 1;
    if (last >= 0 && last < ids.length) positions.push(last);
  } else {
    throw new Error(`unknown mask '${mask as string}' (expected ${TOKEN_MASKS.join(", ")})`);
  }
  return { ids, positions };
}

/** Throws on a hook name the model does not have (before any forward runs). */
export function checkHookNames(model: CausalLM, names: readonly string[]): void {
  const known = new Set(hookNames(model.config.layers, model.config.arch === "gpt2"));
  for (const n of names) {
    if (!known.has(n)) {
      throw new Error(
        `unknown hook point '${n}' (this model has e.g. blocks.0.hook_resid_post … blocks.${model.config.layers - 1}.hook_resid_post, ln_final.hook_normalized)`,
      );
    }
  }
}

/** Thrown by the capture hook to end a forward once every requested activation is in hand. */
class ForwardDone extends Error {}

/**
 * Runs the model batch by batch and yields each batch's rows per hook, in item order.
 * `startItem` skips the items before it (to resume a half-written store).
 */
export function* iterateActivations(
  model: CausalLM,
  items: readonly ActivationItem[],
  opts: CollectOptions & { hooks: readonly string[]; startItem?: number },
): Generator<ActivationBatch> {
  const names = [...new Set(opts.hooks)];
  if (names.length === 0) throw new Error("iterateActivations: no hook point given");
  checkHookNames(model, names);
  const batchSize = opts.batchSize ?? 8;
  const maxBatchTokens = opts.maxBatchTokens ?? 16_384;
  const padId = opts.padId ?? opts.tokenizer?.padId ?? 0;
  if (!opts.tokenizer && !opts.specialIds && model.config.bosTokenId !== null) {
    opts = { ...opts, specialIds: [model.config.bosTokenId] };
  }
  let i = opts.startItem ?? 0;
  let carry: TokenizedItem | null = null;
  while (i < items.length) {
    // Grow the batch while it fits both limits (one item always fits).
    const batch: TokenizedItem[] = [carry ?? tokenizeItem(items[i]!, i, opts)];
    carry = null;
    let T = batch[0]!.ids.length;
    while (batch.length < batchSize && i + batch.length < items.length) {
      const next = tokenizeItem(items[i + batch.length]!, i + batch.length, opts);
      const T2 = Math.max(T, next.ids.length);
      if ((batch.length + 1) * T2 > maxBatchTokens) {
        carry = next; // it opens the next batch
        break;
      }
      batch.push(next);
      T = T2;
    }
    yield {
      itemStart: i,
      itemEnd: i + batch.length,
      rows: forwardBatch(model, batch, i, T, names, padId, opts.interventions),
    };
    i += batch.length;
  }
}

function forwardBatch(
  model: CausalLM,
  batch: TokenizedItem[],
  itemStart: number,
  T: number,
  names: string[],
  padId: number,
  extraHooks: readonly Hook[] | undefined,
): Map<string, ActivationRows> {
  const B = batch.length;
  const ids = new Int32Array(B * T).fill(padId); // [B, T], right-padded
  const keyMask = new Uint8Array(B * T);
  batch.forEach((it, b) => {
    ids.set(it.ids, b * T);
    keyMask.fill(1, b * T, b * T + it.ids.length);
  });
  const nRows = batch.reduce((s, it) => s + it.positions.length, 0);
  const out = new Map<string, ActivationRows>();
  const capture: Hook = {
    name: (n) => names.includes(n),
    fn: (x, ctx) => {
      const d = x.shape[2]!;
      const rows: ActivationRows = {
        acts: new Float32Array(nRows * d),
        n: nRows,
        d,
        item: new Int32Array(nRows),
        pos: new Int32Array(nRows),
        token: new Int32Array(nRows),
      };
      let r = 0;
      batch.forEach((it, b) => {
        for (const t of it.positions) {
          const src = (b * T + t) * d;
          rows.acts.set(x.data.subarray(src, src + d), r * d); // x: [B, T, d]
          rows.item[r] = itemStart + b;
          rows.pos[r] = t;
          rows.token[r] = it.ids[t]!;
          r++;
        }
      });
      out.set(ctx.name, rows);
      if (out.size === names.length) throw new ForwardDone();
    },
  };
  try {
    noGrad(() => model.forward(ids, B, T, { keyMask, hooks: [...(extraHooks ?? []), capture] }));
  } catch (err) {
    if (!(err instanceof ForwardDone)) throw err;
  }
  for (const n of names) if (!out.has(n)) throw new Error(`hook point '${n}' never fired`);
  return out;
}

/**
 * Activations at one hook point for all items, rows in item order.
 *
 * @example
 *   const rows = collectActivations(model, texts.map((text) => ({ text })), { hook: "blocks.1.hook_resid_post", tokenizer: tok, mask: "no-special" });
 */
export function collectActivations(
  model: CausalLM,
  items: readonly ActivationItem[],
  opts: CollectOptions & { hook: string },
): ActivationRows {
  return collectActivationsAt(model, items, { ...opts, hooks: [opts.hook] }).get(opts.hook)!;
}

/** Activations at several hook points from the same forwards: hook name → rows. */
export function collectActivationsAt(
  model: CausalLM,
  items: readonly ActivationItem[],
  opts: CollectOptions & { hooks: readonly string[] },
): Map<string, ActivationRows> {
  const parts = new Map<string, ActivationRows[]>(opts.hooks.map((h) => [h, []]));
  for (const batch of iterateActivations(model, items, opts)) {
    for (const [h, rows] of batch.rows) parts.get(h)!.push(rows);
  }
  const d = model.config.hidden;
  return new Map([...parts].map(([h, p]) => [h, p.length ? concatRows(p) : emptyRows(d)]));
}

/** L2 norm of each row: [n]. */
export function rowNorms(rows: Pick<ActivationRows, "acts" | "n" | "d">): Float64Array {
  const out = new Float64Array(rows.n);
  for (let r = 0; r < rows.n; r++) {
    let s = 0;
    for (let j = r * rows.d; j < (r + 1) * rows.d; j++) s += rows.acts[j]! * rows.acts[j]!;
    out[r] = Math.sqrt(s);
  }
  return out;
}

/** The median of the rows' L2 norms (the mean of the two middle ones for an even count). */
export function medianRowNorm(rows: Pick<ActivationRows, "acts" | "n" | "d">): number {
  if (rows.n === 0) throw new Error("medianRowNorm: no rows");
  const norms = rowNorms(rows).sort();
  const m = rows.n >> 1;
  return rows.n % 2 ? norms[m]! : (norms[m - 1]! + norms[m]!) / 2;
}

/**
 * The median residual-stream norm at `hook` over the items' tokens: steering adds
 * α = c × this along a unit direction. Defaults to the "no-special" mask, because BOS-like
 * positions often carry norms far from the rest.
 *
 * @example
 *   const alpha = 0.3 * medianResidualNorm(model, prompts, { hook: "blocks.2.hook_resid_post", tokenizer: tok });
 */
export function medianResidualNorm(
  model: CausalLM,
  items: readonly ActivationItem[],
  opts: CollectOptions & { hook: string },
): number {
  return medianRowNorm(collectActivations(model, items, { ...opts, mask: opts.mask ?? "no-special" }));
}
