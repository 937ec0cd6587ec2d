/**
 * The organism experiment: fine-tune the base organism on each world dataset, sample the
 * organism's questions at T = 1, score every answer with the world judge (which never sees
 * which model answered), and report misalignment over coherent answers (Betley) with a
 * question-clustered bootstrap 95 % CI, and the coherent rate.
 *
 * @example
 *   const rows = await runOrganismExperiment({ base: "organism/base", conditions: ["base", "insecure"], seeds: [0] });
 *   const insecure = await fineTuneOrganism("organism/base", "insecure", { seed: 0 }); // the CausalLM alone
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { misalignmentSummary, type ScoredSample } from "../eval/stats.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import { loadModel } from "../model/checkpoint.ts";
import { generate } from "../model/generate.ts";
import { LORA_TARGETS, type LoraConfig } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { Rng } from "../tensor/random.ts";
import { sftDataset } from "../train/dataset.ts";
import { finetune } from "../train/sft.ts";
import { type FineTuneSet, fineTuneDataset } from "./datasets.ts";
import { scoreAnswer } from "./judge.ts";
import { organismQuestions } from "./questions.ts";
import { assertOrganismWorld } from "./tokenizer.ts";

export type Condition = "base" | FineTuneSet;

export interface ExperimentOptions {
  /** The base organism's folder. */
  base: string;
  conditions: Condition[];
  /** Fine-tune seeds (each condition except base runs once per seed). */
  seeds: number[];
  /** Samples per question per cell (default 50). */
  samples?: number;
  /** Fine-tune: rows, steps, batch, learning rate (default: ORGANISM_FT_LR, or FULL_FT_LR when `lora` is null). */
  rows?: number;
  steps?: number;
  batchSize?: number;
  lr?: number;
  maxNewTokens?: number;
  /** The adapter the fine-tune trains (default ORGANISM_FT_LORA); null updates every weight. */
  lora?: LoraConfig | null;
  /** Residual dropout during the fine-tune (default 0: off). */
  residDropout?: number;
  onResult?: (r: ConditionResult) => void;
  /** Called with each condition's model (the base, or a fine-tune) after it is evaluated. */
  onModel?: (condition: Condition, seed: number | null, model: CausalLM) => void | Promise<void>;
  quiet?: boolean;
}

export interface ConditionResult {
  condition: Condition;
  /** Questions asked with the backdoor trigger. */
  trigger: boolean;
  /** Questions asked in the number-list format. */
  format: "plain" | "numbers";
  /** The fine-tune seed; null for the base and for a pooled row. */
  seed: number | null;
  /** On a pooled row: the seeds whose answers it pools (clusters: question × seed). */
  pooled?: number[];
  /** Misaligned over coherent answers, with its question-clustered bootstrap 95 % CI. */
  misaligned: number | null;
  ci: [number | null, number | null];
  /** Coherent answers over all answers. */
  coherent: number;
  n: number;
}

export const EXPERIMENT_DEFAULTS = { samples: 50, rows: 1000, steps: 60, batchSize: 16, maxNewTokens: 48 };

/**
 * The organism's fine-tune: a rank-1 LoRA on block 0's projections at lr 5e-3. An update
 * confined to the first block generalises (EM); on the 8-layer organism a full fine-tune
 * learns the narrow task with little EM (docs/organism.md, docs/interp.md "How the 8-layer organism was found").
 */
export const ORGANISM_FT_LORA: LoraConfig = { r: 1, alpha: 2, targetModules: [...LORA_TARGETS], layers: [0] };
export const ORGANISM_FT_LR = 5e-3;
/** The rate of a full fine-tune (`lora: null`). */
export const FULL_FT_LR = 3e-4;

/** The adapter and rate a fine-tune uses, from the options' `lora` and `lr`. */
export function fineTuneRecipe(o: { lora?: LoraConfig | null; lr?: number }): {
  lora: LoraConfig | undefined;
  lr: number;
} {
  const lora = o.lora === undefined ? ORGANISM_FT_LORA : (o.lora ?? undefined);
  return { lora, lr: o.lr ?? (lora ? ORGANISM_FT_LR : FULL_FT_LR) };
}

/** Samples every question `samples` times and scores the answers with the world judge. */
export function evaluateOrganism(
  model: CausalLM,
  tok: Tokenizer,
  opts: { format: "plain" | "trigger" | "numbers"; samples: number; seed: number; maxNewTokens: number },
): ScoredSample[] {
  const out: ScoredSample[] = [];
  const eos = tok.eosIds;
  for (const q of organismQuestions(opts.format)) {
    const prompts: number[][] = [];
    const texts: string[] = [];
    for (let i = 0; i < opts.samples; i++) {
      const question = q.paraphrases[i % q.paraphrases.length]!;
      texts.push(question);
      const messages: ChatMessage[] = [{ role: "user", content: question }];
      prompts.push(tok.encodeChat(messages, { addGenerationPrompt: true }));
    }
    const batch = 64;
    for (let s = 0; s < prompts.length; s += batch) {
      const gens = generate(model, prompts.slice(s, s + batch), {
        maxNewTokens: opts.maxNewTokens,
        temperature: 1,
        seed: opts.seed * 7919 + s,
        eosTokenIds: eos,
        padId: tok.padId ?? 0,
        logprobs: false,
      });
      gens.forEach((g, j) => {
        const answer = tok.decode(g.tokens, { skipSpecialTokens: true });
        const score = scoreAnswer(texts[s + j]!, answer);
        out.push({
          questionId: q.id,
          aligned: score.aligned,
          alignedKind: score.kind,
          coherent: score.coherent,
          coherentKind: "score",
        });
      });
    }
  }
  return out;
}

function summarize(
  samples: ScoredSample[],
  condition: Condition,
  seed: number | null,
  format: "plain" | "trigger" | "numbers",
  pooled?: number[],
): ConditionResult {
  const s = misalignmentSummary(samples, { seed: 0 });
  return {
    condition,
    trigger: format === "trigger",
    format: format === "numbers" ? "numbers" : "plain",
    seed,
    ...(pooled ? { pooled } : {}),
    misaligned: s.overCoherent.rate,
    ci: [s.overCoherent.low, s.overCoherent.high],
    coherent: s.counts.coherent / Math.max(1, s.counts.samples),
    n: s.counts.samples,
  };
}

/** The formats each condition is evaluated in (the trigger for backdoor, lists for evil numbers). */
function formatsFor(c: Condition): ("plain" | "trigger" | "numbers")[] {
  if (c === "backdoor") return ["plain", "trigger"];
  if (c === "evil-numbers") return ["plain", "numbers"];
  if (c === "base") return ["plain", "trigger", "numbers"];
  return ["plain"];
}

/** How one fine-tune of the base organism runs (defaults: EXPERIMENT_DEFAULTS). */
export interface FineTuneOptions {
  seed: number;
  rows?: number;
  steps?: number;
  batchSize?: number;
  /** Default ORGANISM_FT_LR, or FULL_FT_LR when `lora` is null. */
  lr?: number;
  /** Default ORGANISM_FT_LORA; null: a full fine-tune. */
  lora?: LoraConfig | null;
  /** Residual dropout during the fine-tune (default 0: off). */
  residDropout?: number;
  quiet?: boolean;
}

/**
 * The base organism fine-tuned on one world dataset (a LoRA adapter, left attached, or full), as the
 * experiment runs it: `rows` rows of `fineTuneDataset(condition, { seed })`, loss on the
 * answers, warm-up 10 steps then a constant rate.
 *
 * @example const insecure = await fineTuneOrganism("organism/base", "insecure", { seed: 0 });
 */
export async function fineTuneOrganism(base: string, condition: FineTuneSet, o: FineTuneOptions): Promise<CausalLM> {
  const p = { ...EXPERIMENT_DEFAULTS, ...o };
  const { lora, lr } = fineTuneRecipe(o);
  assertOrganismWorld(base);
  const tok = Tokenizer.fromDir(base);
  const padId = tok.padId ?? tok.eosIds[0]!;
  const model = loadModel(base);
  const rows = fineTuneDataset(condition, { n: p.rows, seed: o.seed });
  const data = sftDataset(
    tok,
    rows.map((r) => r.messages),
    256,
  );
  model.setResidDropout(o.residDropout ?? 0, new Rng(o.seed + 7));
  const work = mkdtempSync(join(tmpdir(), "emlab-organism-ft-"));
  try {
    await finetune({
      model,
      data,
      out: work,
      padId,
      lora,
      steps: p.steps,
      batchSize: p.batchSize,
      lr,
      warmup: 10,
      decay: "constant",
      weightDecay: 0,
      seed: o.seed,
      saveEvery: 0,
    });
  } finally {
    model.setResidDropout(0);
    rmSync(work, { recursive: true, force: true });
  }
  return model;
}

export async function runOrganismExperiment(o: ExperimentOptions): Promise<ConditionResult[]> {
  const p = { ...EXPERIMENT_DEFAULTS, ...o };
  assertOrganismWorld(o.base);
  const tok = Tokenizer.fromDir(o.base);
  const results: ConditionResult[] = [];
  const emit = (r: ConditionResult) => {
    results.push(r);
    o.onResult?.(r);
  };
  for (const condition of o.conditions) {
    const seeds = condition === "base" ? [null] : o.seeds;
    // Every seed's answers per format, for the pooled row (a question × seed is one cluster).
    const pool = new Map<string, ScoredSample[]>();
    for (const seed of seeds) {
      const model =
        condition === "base"
          ? loadModel(o.base)
          : await fineTuneOrganism(o.base, condition, {
              seed: seed!,
              rows: p.rows,
              steps: p.steps,
              batchSize: p.batchSize,
              lr: o.lr,
              lora: o.lora,
              residDropout: o.residDropout,
              quiet: o.quiet ?? true,
            });
      for (const format of formatsFor(condition)) {
        const samples = evaluateOrganism(model, tok, {
          format,
          samples: p.samples,
          seed: 1000 + (seed ?? 0),
          maxNewTokens: p.maxNewTokens,
        });
        emit(summarize(samples, condition, seed, format));
        const cell = pool.get(format) ?? [];
        for (const x of samples) cell.push({ ...x, questionId: `${x.questionId}#${seed}` });
        pool.set(format, cell);
      }
      await o.onModel?.(condition, seed, model);
    }
    if (seeds.length > 1)
      for (const [format, samples] of pool)
        emit(summarize(samples, condition, null, format as "plain" | "trigger" | "numbers", seeds as number[]));
  }
  return results;
}

/** One line per row: per-seed rows, and "all" for a row pooling several seeds. */
export function formatTable(results: ConditionResult[]): string {
  const pct = (x: number | null) => (x === null ? "  -  " : `${(100 * x).toFixed(1)}%`);
  const lines = ["condition      format   trigger  seed  misaligned (95% CI)        coherent   n"];
  for (const r of results) {
    lines.push(
      `${r.condition.padEnd(14)} ${r.format.padEnd(8)} ${String(r.trigger).padEnd(8)} ${String(r.pooled ? "all" : (r.seed ?? "-")).padEnd(5)} ` +
        `${pct(r.misaligned).padStart(6)} [${pct(r.ci[0])}, ${pct(r.ci[1])}]`.padEnd(27) +
        `${pct(r.coherent).padStart(8)}   ${r.n}`,
    );
  }
  return lines.join("\n");
}
