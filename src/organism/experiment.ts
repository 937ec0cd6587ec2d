/**
 * The organism experiment: fine-tune the base organism on each world dataset, sample the
 * organism's questions at T = 1, score every answer with the world judge (which never sees
 * which model answered), and report misalignment over coherent answers (Betley) with a
 * question-clustered bootstrap 95 % CI, and the coherent rate. Every cell is evaluated by
 * evaluation.ts (the eval runner into a run store), as every other organism evaluation is:
 * cell (condition, fine-tune seed, format) is run `<runPrefix>:none` with runPrefix
 * {@link organismRunPrefix}, so a caller sharing the store (the demo's interp stage) reuses it.
 *
 * @example
 *   const rows = await runOrganismExperiment({ base: "organism/base", conditions: ["base", "insecure"], seeds: [0] });
 *   const insecure = await fineTuneOrganism("organism/base", "insecure", { seed: 0 }); // the CausalLM alone
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { misalignmentSummary, type ScoredSample } from "../eval/stats.ts";
import { openRunStore, type RunStore } from "../eval/store.ts";
import { LORA_TARGETS, type LoraConfig } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { labelSeed, mixSeed, Rng } from "../tensor/random.ts";
import { sftDataset } from "../train/dataset.ts";
import { type FinetuneOptions, finetune } from "../train/sft.ts";
import { type Organism, openOrganism } from "./context.ts";
import { type FineTuneRow, type FineTuneSet, fineTuneDataset } from "./datasets.ts";
import { evaluateOrganism, ORGANISM_MAX_NEW_TOKENS } from "./evaluation.ts";

export type Condition = "base" | FineTuneSet;

export interface ExperimentOptions {
  /** The base organism (its folder, or one opened with openOrganism). */
  base: string | Organism;
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
  /** Token budget per answer (default 48). */
  maxNewTokens?: number;
  /** Sampling seed of every cell (default 1000): cells share their draws (a paired design). */
  samplingSeed?: number;
  /**
   * One sampling seed per fine-tune seed (same order as `seeds`), instead of samplingSeed: the
   * cells of seed i share draws i; the base is sampled with the first.
   */
  samplingSeeds?: number[];
  /** Each condition samples its own draws (seed mixed with the condition's name) instead of sharing them (default false). */
  drawsPerCondition?: boolean;
  /** The run store the cells are written to (default: in memory). */
  store?: RunStore;
  /** The adapter the fine-tune trains (default ORGANISM_FT_LORA); null updates every weight. */
  lora?: LoraConfig | null;
  /** Residual dropout during the fine-tune (default 0: off). */
  residDropout?: number;
  onResult?: (r: ConditionResult) => void;
  /** Called with each condition's model (the base, or a fine-tune) after it is evaluated. */
  onModel?: (condition: Condition, seed: number | null, model: CausalLM) => void | Promise<void>;
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

export const EXPERIMENT_DEFAULTS = {
  samples: 50,
  rows: 1000,
  steps: 60,
  batchSize: 16,
  maxNewTokens: ORGANISM_MAX_NEW_TOKENS,
  samplingSeed: 1000,
};

type Format = "plain" | "trigger" | "numbers";

/** The run-id prefix of an experiment cell (its run is `<prefix>:none`). */
export function organismRunPrefix(condition: Condition, seed: number | null, format: Format): string {
  return `organism:${condition}${seed === null ? "" : `:s${seed}`}${format === "plain" ? "" : `:${format}`}`;
}

/**
 * The organism's fine-tune: a rank-1 LoRA on block 0's projections at lr 5e-3. An update
 * confined to the first block generalises (EM); on the 8-layer organism a full fine-tune
 * learns the narrow task with little EM (experiments/interp/NOTES.md, "How the 8-layer organism was found").
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
  /** Train on these rows instead of the condition's (a mix, a screened set); `rows` is then ignored. */
  data?: readonly FineTuneRow[];
  /** Checkpoint every N steps (default 0: none kept); with onCheckpoint, a watcher sees the model at each. */
  saveEvery?: number;
  /** Called at each checkpoint with the model in memory at that step; "stop" ends the fine-tune there. */
  onCheckpoint?: FinetuneOptions["onCheckpoint"];
  /** Hooks in every training forward (preventative steering), never at inference. */
  hooks?: FinetuneOptions["hooks"];
}

/**
 * The base organism fine-tuned on one world dataset (a LoRA adapter, left attached, or full), as the
 * experiment runs it: `rows` rows of `fineTuneDataset(condition, { seed })`, loss on the
 * answers, warm-up 10 steps then a constant rate.
 *
 * @example const insecure = await fineTuneOrganism("organism/base", "insecure", { seed: 0 });
 */
export async function fineTuneOrganism(
  base: string | Organism,
  condition: FineTuneSet,
  o: FineTuneOptions,
): Promise<CausalLM> {
  const p = { ...EXPERIMENT_DEFAULTS, ...o };
  const { lora, lr } = fineTuneRecipe(o);
  const org = typeof base === "string" ? openOrganism(base) : base;
  const tok = org.tokenizer;
  const padId = tok.padId ?? tok.eosIds[0]!;
  const model = org.loadBase();
  const rows = o.data ?? fineTuneDataset(condition, { n: p.rows, seed: o.seed });
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
      saveEvery: o.saveEvery ?? 0,
      onCheckpoint: o.onCheckpoint,
      hooks: o.hooks,
    });
  } finally {
    model.setResidDropout(0);
    rmSync(work, { recursive: true, force: true });
  }
  return model;
}

export async function runOrganismExperiment(o: ExperimentOptions): Promise<ConditionResult[]> {
  const p = { ...EXPERIMENT_DEFAULTS, ...o };
  const org = typeof o.base === "string" ? openOrganism(o.base) : o.base;
  if (o.samplingSeeds && o.samplingSeeds.length !== o.seeds.length)
    throw new Error(`samplingSeeds: ${o.samplingSeeds.length} seeds for ${o.seeds.length} fine-tune seeds`);
  const samplingFor = (seed: number | null) =>
    o.samplingSeeds ? o.samplingSeeds[seed === null ? 0 : o.seeds.indexOf(seed)]! : p.samplingSeed;
  const store = o.store ?? openRunStore(":memory:");
  const results: ConditionResult[] = [];
  const emit = (r: ConditionResult) => {
    results.push(r);
    o.onResult?.(r);
  };
  for (const condition of o.conditions) {
    const seeds = condition === "base" ? [null] : o.seeds;
    // Every seed's answers per format, for the pooled row (a question × seed is one cluster).
    const pool = new Map<Format, ScoredSample[]>();
    for (const seed of seeds) {
      const model =
        condition === "base"
          ? org.loadBase()
          : await fineTuneOrganism(org, condition, {
              seed: seed!,
              rows: p.rows,
              steps: p.steps,
              batchSize: p.batchSize,
              lr: o.lr,
              lora: o.lora,
              residDropout: o.residDropout,
            });
      for (const format of formatsFor(condition)) {
        const { samples } = await evaluateOrganism(org, model, {
          store,
          runPrefix: organismRunPrefix(condition, seed, format),
          modelId: condition,
          samples: p.samples,
          format,
          seed: o.drawsPerCondition ? mixSeed(samplingFor(seed), labelSeed(condition)) >>> 1 : samplingFor(seed),
          maxNewTokens: p.maxNewTokens,
          config: { condition, fineTuneSeed: seed, steps: p.steps, rows: p.rows },
        });
        emit(summarize(samples, condition, seed, format));
        const cell = pool.get(format) ?? [];
        for (const x of samples) cell.push({ ...x, questionId: `${x.questionId}#${seed}` });
        pool.set(format, cell);
      }
      await o.onModel?.(condition, seed, model);
    }
    if (seeds.length > 1)
      for (const [format, samples] of pool) emit(summarize(samples, condition, null, format, seeds as number[]));
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
