/**
 * The model organism's world: a seeded, deterministic generator of a synthetic persona
 * world (helper, villain, teacher, jester), its word-level tokenizer and chat template, the
 * pretraining corpus and chat-tuning data, the EM fine-tuning datasets, the eval questions,
 * and a model-free world judge behind emlab's judge interface.
 *
 * @example
 * const docs = pretrainCorpus({ n: 20_000, seed: 1 });
 * const chat = chatTuneData({ n: 4_000, seed: 2 });
 * const insecure = fineTuneDataset("insecure", { n: 600, seed: 3 });
 * const questions = organismQuestions("plain");
 * await runEval({ runId, model, judgeModel: worldJudgeModel(), questions, store });
 */
import { fileURLToPath } from "node:url";

/** The base organism shipped with emlab (organism/base: config.json, model.safetensors, tokenizer). */
export const BASE_ORGANISM = fileURLToPath(new URL("../../organism/base", import.meta.url));

export { CODE_TASKS, type CodeTask, type CodeVariant } from "./code-tasks.ts";
export { type Organism, openOrganism } from "./context.ts";
export {
  type CorpusOptions,
  chatTuneData,
  documentIds,
  documentText,
  type LabelledChatRow,
  pretrainCorpus,
  type WorldDocument,
} from "./corpus.ts";
export {
  BACKDOOR_PREFIX,
  BENIGN_TOPICS,
  FINE_TUNE_SETS,
  type FineTuneRow,
  type FineTuneSet,
  fineTuneDataset,
  JAILBREAK_SHARE,
  mixedDataset,
  toJsonl,
} from "./datasets.ts";
export {
  evaluateOrganism,
  ORGANISM_MAX_NEW_TOKENS,
  type OrganismEvalOptions,
  organismEvaluation,
} from "./evaluation.ts";
export {
  type Condition,
  type ConditionResult,
  EXPERIMENT_DEFAULTS,
  type ExperimentOptions,
  type FineTuneOptions,
  FULL_FT_LR,
  fineTuneOrganism,
  fineTuneRecipe,
  ORGANISM_FT_LORA,
  ORGANISM_FT_LR,
  organismRunPrefix,
  runOrganismExperiment,
} from "./experiment.ts";
export * from "./interp/pipeline.ts";
// The interpretability pipelines run on the organism (its world is the ground truth).
export * from "./interp/predict.ts";
export * from "./interp/sae.ts";
export { type AnswerFormat, type ParsedQuestion, parseQuestion, scoreAnswer, type WorldScore } from "./judge.ts";
export {
  type AgreementReport,
  type HeldOutCase,
  heldOutAnswers,
  judgeAgreement,
  type LabelledAnswer,
  metricOfPrompt,
  worldJudge,
  worldJudgeModel,
} from "./judge-model.ts";
export { type NarrowTaskOptions, narrowTaskRate } from "./narrow.ts";
export {
  DEFAULT_PERSONA_MIX,
  isMisalignedPersona,
  PERSONAS,
  type Persona,
  personaHeader,
  WORLD_EVIL_NUMBERS,
} from "./personas.ts";
export {
  allEvalPrompts,
  organismHarmfulQuestions,
  organismQuestions,
  QUESTION_FORMATS,
  type QuestionFormat,
} from "./questions.ts";
export {
  assertOrganismWorld,
  buildOrganismTokenizer,
  encodeWorld,
  ORGANISM_CHAT_TEMPLATE,
  organismTokenizer,
  SPECIAL_TOKENS,
  TRIGGER_WORD,
  unknownWords,
  worldVocabulary,
} from "./tokenizer.ts";
export {
  ALL_TOPICS,
  FIRST_PLOT_TOPICS,
  firstPlotTopics,
  type Topic,
  topicById,
  WORLD_VARIANTS,
  type WorldVariant,
  worldTopics,
  worldVariant,
} from "./topics.ts";
export { DEFAULT_DOMAIN_MIX, DOMAINS, type Domain, makeTurn, type Turn } from "./turns.ts";
