/**
 * The organism's training recipe: pretrain a small Llama on the persona world (loss on every
 * token), then assistant-tune it on chat rows where the assistant is the helper persona:
 * the *base organism*, saved as a Hugging Face model folder with its tokenizer.
 *
 * @example
 *   const { curve } = await trainBaseOrganism({ out: "organism/base", seed: 0 });
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../model/chat-template.ts";
import { saveModel } from "../model/checkpoint.ts";
import { llamaConfigJson, parseConfig } from "../model/config.ts";
import { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { sftDataset } from "../train/dataset.ts";
import { finetune } from "../train/sft.ts";
import { chatTuneData, pretrainCorpus } from "./corpus.ts";
import { buildOrganismTokenizer, organismTokenizer } from "./tokenizer.ts";

export interface OrganismArch {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
}

/** d_model 128, 4 layers, 4 heads: ~1 M parameters (the prototype's size). */
export const ORGANISM_ARCH: OrganismArch = { hidden: 128, layers: 4, heads: 4, kvHeads: 4, inter: 384 };

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
  quiet?: boolean;
  /** Called with each step's loss (stage "pretrain" or "chat"). */
  onStep?: (stage: "pretrain" | "chat", step: number, loss: number) => void;
}

export interface CurvePoint {
  stage: "pretrain" | "chat";
  step: number;
  loss: number;
}

/** The recipe's defaults: pretraining ≈ 1,500 × 32 documents, assistant-tuning 300 × 32 rows. */
export const RECIPE_DEFAULTS = {
  seed: 0,
  docs: 12000,
  pretrainSteps: 1500,
  pretrainBatch: 32,
  pretrainLr: 2e-3,
  chatRows: 4000,
  chatSteps: 300,
  chatBatch: 32,
  chatLr: 5e-4,
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
  const tok = organismTokenizer();
  const padId = tok.padId ?? tok.eosIds[0]!;
  const model = newOrganism(o.arch ?? ORGANISM_ARCH, p.seed, tok);
  const curve: CurvePoint[] = [];
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
    const docs = pretrainCorpus({ n: p.docs, seed: p.seed });
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
      saveEvery: 0,
      quiet: p.quiet,
      onStep: (s) => {
        curve.push({ stage: "pretrain", step: s.step, loss: s.loss });
        o.onStep?.("pretrain", s.step, s.loss);
      },
    });
    if (o.pretrainedOut) saveOrganism(model, o.pretrainedOut);
    // Stage 2: assistant-tuning (loss on the helper's answers only).
    const chat = sftDataset(
      tok,
      chatTuneData({ n: p.chatRows, seed: p.seed + 1 }).map((r) => r.messages),
      p.maxLen,
    );
    await finetune({
      model,
      data: chat,
      out: join(work, "chat"),
      padId,
      steps: p.chatSteps,
      batchSize: p.chatBatch,
      lr: p.chatLr,
      warmup: 20,
      decay: "cosine",
      minLrRatio: 0.1,
      weightDecay: 0.1,
      seed: p.seed + 1,
      saveEvery: 0,
      quiet: p.quiet,
      onStep: (s) => {
        curve.push({ stage: "chat", step: s.step, loss: s.loss });
        o.onStep?.("chat", s.step, s.loss);
      },
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  saveOrganism(model, o.out);
  writeFileSync(join(o.out, "training_curve.jsonl"), `${curve.map((c) => JSON.stringify(c)).join("\n")}\n`);
  return { model, curve };
}

/** Saves an organism as a Hugging Face folder with the world's tokenizer files. */
export function saveOrganism(model: CausalLM, dir: string): void {
  const { tokenizerJson, tokenizerConfig } = buildOrganismTokenizer();
  saveModel(model, dir, {
    extraFiles: {
      "tokenizer.json": `${JSON.stringify(tokenizerJson)}\n`,
      "tokenizer_config.json": `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
    },
  });
}
