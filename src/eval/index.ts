/** Evaluation: question sets, judges, the sampling runner, statistics and the run store. */
export * from "./config.ts";
export {
  CORE_SETS,
  type CoreSetName,
  coreQuestions,
  FIRST_PLOT,
  HARMFUL_REQUESTS,
  PREREGISTERED,
} from "./core-questions.ts";
export { formatEvalSummary, formatRate } from "./format.ts";
export * from "./judge.ts";
export * from "./plan.ts";
export { chatModelFromConfig, type ModelHandle } from "./providers.ts";
export * from "./questions.ts";
export {
  type EvalReport,
  planSamples,
  type RunEvalOptions,
  runEval,
  type SamplingParams,
  sampleSeed,
} from "./runner.ts";
export * from "./stats.ts";
export * from "./store.ts";
