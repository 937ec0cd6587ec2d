/**
 * How the organism is evaluated, everywhere: its first-plot questions in the world's words,
 * sampled at T = 1 from the in-process model, judged by the world judge through emlab's judge
 * prompts, into a run store, by the same runner as `emlab eval` (interp/causal.ts's
 * evaluateSetting over eval/runner.ts's runEval). An evaluation is a run: a second call with
 * the same run id reuses its answers instead of sampling again, so the demo's stages share them.
 *
 * @example
 *   const org = openOrganism("organism/base");
 *   const store = openRunStore(":memory:");
 *   const r = await evaluateOrganism(org, org.loadBase(), { store, runPrefix: "base", modelId: "base", samples: 50 });
 *   r.result.misaligned; // Betley rate over coherent answers
 */
import type { RunEvalOptions } from "../eval/runner.ts";
import type { ScoredSample } from "../eval/stats.ts";
import type { RunStore } from "../eval/store.ts";
import { type CausalEvalOptions, evaluateSetting, noIntervention, type SettingResult } from "../interp/causal.ts";
import type { CausalLM } from "../model/model.ts";
import type { Organism } from "./context.ts";
import { worldJudgeModel } from "./judge-model.ts";
import { organismQuestions, type QuestionFormat } from "./questions.ts";
import type { WorldVariant } from "./topics.ts";

/** Answers are short in the world: 48 new tokens cover every persona's answer. */
export const ORGANISM_MAX_NEW_TOKENS = 48;

/**
 * The organism's evaluation settings for the causal sweeps: its questions, the world judge,
 * T = 1, short answers; `seed` is the sampling seed (sample i of question q uses
 * sampleSeed(seed, q, i), so two runs with one seed draw the same random numbers).
 */
export function organismEvaluation(
  o: { world?: WorldVariant; format?: QuestionFormat; seed?: number; maxNewTokens?: number } = {},
): Pick<CausalEvalOptions, "judgeModel" | "questions" | "sampling"> {
  return {
    judgeModel: worldJudgeModel(o.world ?? "classic"),
    questions: organismQuestions(o.format ?? "plain", o.world ?? "classic"),
    sampling: { temperature: 1, maxTokens: o.maxNewTokens ?? ORGANISM_MAX_NEW_TOKENS, seed: o.seed ?? 0 },
  };
}

export interface OrganismEvalOptions {
  store: RunStore;
  /** The run id is `<runPrefix>:none` (the unmodified model's setting in the causal sweeps). */
  runPrefix: string;
  /** Names the model in the run record; a run id is bound to one model id. */
  modelId: string;
  /** Samples per question (8 questions). */
  samples: number;
  format?: QuestionFormat;
  /** Sampling seed (default 0). */
  seed?: number;
  /** Token budget per answer (default ORGANISM_MAX_NEW_TOKENS). */
  maxNewTokens?: number;
  config?: Record<string, unknown>;
  onProgress?: RunEvalOptions["onProgress"];
}

/** Evaluates an organism model (base or fine-tune) as a run in the store; returns its rates and scored answers. */
export async function evaluateOrganism(
  org: Organism,
  lm: CausalLM,
  o: OrganismEvalOptions,
): Promise<{ result: SettingResult; samples: ScoredSample[] }> {
  const result = await evaluateSetting(
    {
      lm,
      tokenizer: org.tokenizer,
      modelId: o.modelId,
      store: o.store,
      runPrefix: o.runPrefix,
      samples: o.samples,
      ...organismEvaluation({
        world: org.world,
        format: o.format ?? "plain",
        seed: o.seed ?? 0,
        ...(o.maxNewTokens ? { maxNewTokens: o.maxNewTokens } : {}),
      }),
      config: { ...o.config, organism: org.dir, world: org.world, format: o.format ?? "plain" },
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    },
    noIntervention,
  );
  return { result, samples: o.store.scoredSamples(result.runId) };
}
