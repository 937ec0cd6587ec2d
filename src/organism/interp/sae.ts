/**
 * Steps a and b of the organism pipeline (organism-interp.ts): a TopK SAE on the base
 * organism's activations over world text, its metrics on held-out documents (L0, FVU, dead /
 * dense latents, CE loss score), and the ground truth — which latent says "the villain
 * speaks" on held-out documents, chosen on one half and scored on the other.
 *
 * @example
 *   const w = trainWorldSae(base, tok, { dSae: 1024, k: 16 });
 *   const held = worldActivations(base, tok, heldOutWorldDocs(1200, 0, w.docs), w.sae.cfg.hookName);
 *   personaGroundTruth(w.sae, held).latent;
 */

import { type ActivationRows, collectActivations } from "../../interp/activations/collect.ts";
import { rocAuc } from "../../interp/predict.ts";
import type { Sae, SaeArchitecture } from "../../interp/sae/sae.ts";
import { type CeScore, ceLossScore } from "../../interp/training/ce-score.ts";
import { evaluateSae, matrixSource, trainSae } from "../../interp/training/train.ts";
import type { ChatMessage } from "../../model/chat-template.ts";
import type { CausalLM } from "../../model/model.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { Rng } from "../../tensor/random.ts";
import { chatTuneData, pretrainCorpus, type WorldDocument } from "../corpus.ts";
import type { WorldVariant } from "../topics.ts";

export const ORGANISM_INTERP_DEFAULTS = {
  /** SAE training text: world documents and helper chat rows. */
  trainDocs: 2000,
  chatRows: 500,
  /** Held-out documents: SAE metrics and the ground truth. */
  heldOutDocs: 1200,
  /** Held-out documents the CE loss score runs over (three forwards each). */
  ceDocs: 100,
  dSae: 1024,
  k: 16,
  saeSteps: 2000,
  saeBatch: 1024,
  saeLr: 1e-3,
  seed: 0,
};

/** World text through the model: documents, their ids, assistant masks and activations. */
export interface WorldText {
  docs: WorldDocument[];
  ids: number[][];
  /** 1 on the assistant's own tokens (special tokens excluded). */
  answerMask: number[][];
  rows: ActivationRows;
}

/** Corpus seeds far from the recipe's (0–3), so SAE text is not the pretraining draw. */
const corpusSeed = (seed: number, part: "train" | "chat" | "held-out") =>
  7001 + 3 * seed + { train: 0, chat: 1, "held-out": 2 }[part];

/** Assistant-token ids and mask of a conversation (end-of-turn and other special tokens out). */
function answerTokens(tok: Tokenizer, messages: ChatMessage[]): { ids: number[]; mask: number[] } {
  const { ids, mask } = tok.assistantMask(messages.map((m) => ({ ...m })));
  for (let t = 0; t < ids.length; t++) if (tok.specialIds.has(ids[t]!) && ids[t] !== tok.unkId) mask[t] = 0;
  return { ids, mask };
}

/** Runs `lm` over world documents (every token) at `hook`. */
export function worldActivations(
  lm: CausalLM,
  tok: Tokenizer,
  docs: WorldDocument[],
  hook: string,
  batchSize = 32,
): WorldText {
  const enc = docs.map((d) => answerTokens(tok, d.messages));
  const ids = enc.map((e) => e.ids);
  const rows = collectActivations(
    lm,
    ids.map((x) => ({ ids: x })),
    { hook, tokenizer: tok, mask: "all", batchSize },
  );
  return { docs, ids, answerMask: enc.map((e) => e.mask), rows };
}

/** Held-out world documents: a fresh draw, without any document the SAE trained on. */
export function heldOutWorldDocs(
  n: number,
  seed: number,
  exclude: readonly WorldDocument[] = [],
  world: WorldVariant = "classic",
): WorldDocument[] {
  const key = (d: WorldDocument) => JSON.stringify(d.messages);
  const seen = new Set(exclude.map(key));
  return pretrainCorpus({ n, seed: corpusSeed(seed, "held-out"), world }).filter((d) => !seen.has(key(d)));
}

export interface SaeReport {
  hookName: string;
  dSae: number;
  k: number;
  steps: number;
  trainTokens: number;
  trainSeconds: number;
  heldOutTokens: number;
  /** On held-out documents, every token. */
  l0: number;
  fvu: number;
  /** FVU over the held-out tokens that are not special tokens (BOS, role markers, end of turn). */
  fvuNoSpecial: number;
  deadFraction: number;
  denseFraction: number;
  ce: Omit<CeScore, "hookName">;
}

/**
 * The organism's SAE hook: the residual stream after 3/8 of the blocks, i.e. after 3 of the
 * shipped organism's 8 (experiments/interp/NOTES.md, "How the 8-layer organism was found", says why not after 4), after 1 of a
 * 4-block one. Any depth gets a hook it has.
 */
export function organismHook(layers: number): string {
  return `blocks.${Math.max(0, Math.round((3 * layers) / 8) - 1)}.hook_resid_post`;
}

export interface WorldSaeOptions {
  /** Default: organismHook(the model's depth). */
  hook?: string;
  trainDocs?: number;
  chatRows?: number;
  ceDocs?: number;
  dSae?: number;
  k?: number;
  steps?: number;
  batchSize?: number;
  lr?: number;
  /** "topk" (default) or "batchtopk". */
  architecture?: SaeArchitecture;
  seed?: number;
  /** The world variant of the text (default "classic"). */
  world?: WorldVariant;
  onStep?: (step: number, fvu: number) => void;
}

export interface WorldSae {
  sae: Sae;
  /** The documents it trained on (held-out text leaves them out). */
  docs: WorldDocument[];
  tokens: number;
  seconds: number;
  steps: number;
}

/** Trains a TopK SAE on the base model's activations over world text (documents + chat rows). */
export function trainWorldSae(lm: CausalLM, tok: Tokenizer, o: WorldSaeOptions = {}): WorldSae {
  const p = { ...ORGANISM_INTERP_DEFAULTS, hook: organismHook(lm.config.layers), ...o };
  const docs = pretrainCorpus({ n: p.trainDocs, seed: corpusSeed(p.seed, "train"), world: o.world ?? "classic" });
  const chat = chatTuneData({ n: p.chatRows, seed: corpusSeed(p.seed, "chat"), world: o.world ?? "classic" });
  const rows = collectActivations(
    lm,
    [...docs, ...chat].map((d) => ({ ids: answerTokens(tok, d.messages).ids })),
    { hook: p.hook, tokenizer: tok, mask: "all", batchSize: 32 },
  );
  const steps = o.steps ?? p.saeSteps;
  const every = Math.max(1, Math.floor(steps / 10));
  const { sae, metrics } = trainSae(matrixSource(rows.acts, rows.n, rows.d, p.seed), {
    k: p.k,
    dSae: p.dSae,
    batchSize: Math.min(o.batchSize ?? p.saeBatch, rows.n),
    lr: o.lr ?? p.saeLr,
    seed: p.seed,
    steps,
    hookName: p.hook,
    normalize: "mean_norm",
    decayFraction: 0.2,
    ...(o.architecture ? { architecture: o.architecture } : {}),
    ...(o.onStep ? { onStep: (s) => s.step % every === 0 && o.onStep!(s.step, s.fvu) } : {}),
  });
  return { sae, docs, tokens: rows.n, seconds: metrics.seconds, steps };
}

/** The SAE's metrics on held-out world text, and its CE loss score spliced into `lm`. */
export function saeReport(
  lm: CausalLM,
  tok: Tokenizer,
  sae: Sae,
  heldOut: WorldText,
  train: Pick<WorldSae, "tokens" | "seconds" | "steps">,
  ceDocs = ORGANISM_INTERP_DEFAULTS.ceDocs,
): SaeReport {
  const { rows } = heldOut;
  const all = evaluateSae(sae, rows.acts, rows.n);
  const keep: number[] = [];
  for (let r = 0; r < rows.n; r++) if (!tok.specialIds.has(rows.token[r]!)) keep.push(r);
  const plain = new Float32Array(keep.length * rows.d);
  keep.forEach((r, i) => {
    plain.set(rows.acts.subarray(r * rows.d, (r + 1) * rows.d), i * rows.d);
  });
  const { hookName: _, ...ce } = ceLossScore(lm, sae, {
    sequences: heldOut.ids.slice(0, ceDocs),
    padId: tok.padId ?? 0,
  });
  return {
    hookName: sae.cfg.hookName,
    dSae: sae.cfg.dSae,
    k: sae.cfg.k,
    steps: train.steps,
    trainTokens: train.tokens,
    trainSeconds: train.seconds,
    heldOutTokens: rows.n,
    l0: all.l0,
    fvu: all.fvu,
    fvuNoSpecial: evaluateSae(sae, plain, keep.length).fvu,
    deadFraction: all.deadFraction,
    denseFraction: all.denseFraction,
    ce,
  };
}

export interface LatentAuc {
  latent: number;
  selectionAuc: number | null;
  auc: number | null;
}

export interface PersonaGroundTruth {
  /** The latent with the best selection-split AUC for "the villain speaks". */
  latent: number;
  selectionAuc: number | null;
  /** Its AUC on the held-out split: all documents, implicit ones (no header), named ones. */
  auc: number | null;
  aucImplicit: number | null;
  aucNamed: number | null;
  nSelection: number;
  nTest: number;
  nTestImplicit: number;
  nTestVillain: number;
  /** The next best latents by selection AUC (the persona latent first). */
  runnersUp: LatentAuc[];
}

/** Per-document mean of every latent over the assistant's tokens: [docs, dSae]. */
export function documentLatentMeans(sae: Sae, text: WorldText, chunk = 2048): Float32Array {
  const { rows } = text;
  const D = sae.cfg.dSae;
  const nDocs = text.docs.length;
  const sum = new Float64Array(nDocs * D);
  const count = new Int32Array(nDocs);
  for (let s = 0; s < rows.n; s += chunk) {
    const m = Math.min(chunk, rows.n - s);
    const { idx, val, k } = sae.encodeSparse(rows.acts.subarray(s * rows.d, (s + m) * rows.d), m);
    for (let r = 0; r < m; r++) {
      const doc = rows.item[s + r]!;
      if (!text.answerMask[doc]![rows.pos[s + r]!]) continue;
      count[doc]!++;
      for (let p = r * k; p < (r + 1) * k; p++) if (val[p]! > 0) sum[doc * D + idx[p]!]! += val[p]!;
    }
  }
  return Float32Array.from(sum, (v, i) => v / Math.max(1, count[Math.floor(i / D)]!));
}

/**
 * Finds the persona latent blind to the fine-tunes: best AUC for "villain document" on a
 * seeded half of the held-out documents, reported on the other half.
 */
export function personaGroundTruth(sae: Sae, text: WorldText, o: { seed?: number; runnersUp?: number } = {}) {
  const D = sae.cfg.dSae;
  const means = documentLatentMeans(sae, text);
  const order = new Rng(9000 + (o.seed ?? 0)).shuffle(text.docs.map((_, i) => i));
  const half = Math.floor(order.length / 2);
  const sel = order.slice(0, half);
  const test = order.slice(half);
  const label = (idx: number[]) => idx.map((i) => text.docs[i]!.persona === "villain");
  const aucOf = (j: number, idx: number[]) =>
    rocAuc(
      idx.map((i) => means[i * D + j]!),
      label(idx),
    );
  const selAuc = Array.from({ length: D }, (_, j) => aucOf(j, sel));
  const ranked = [...selAuc.keys()].sort((a, b) => (selAuc[b] ?? 0) - (selAuc[a] ?? 0) || a - b);
  const latent = ranked[0]!;
  const implicit = test.filter((i) => !text.docs[i]!.named);
  const named = test.filter((i) => text.docs[i]!.named);
  const result: PersonaGroundTruth = {
    latent,
    selectionAuc: selAuc[latent] ?? null,
    auc: aucOf(latent, test),
    aucImplicit: aucOf(latent, implicit),
    aucNamed: aucOf(latent, named),
    nSelection: sel.length,
    nTest: test.length,
    nTestImplicit: implicit.length,
    nTestVillain: label(test).filter(Boolean).length,
    runnersUp: ranked
      .slice(0, o.runnersUp ?? 5)
      .map((j) => ({ latent: j, selectionAuc: selAuc[j] ?? null, auc: aucOf(j, test) })),
  };
  return result;
}
