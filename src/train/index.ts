/**
 * emlab train: supervised fine-tuning (full or LoRA) of a CausalLM on chat JSONL, with
 * length-bucketed batches, gradient accumulation, schedules, resumable checkpoints and a
 * callback at each checkpoint.
 *
 * @example
 *   import { finetune, loadSftJsonl } from "./src/train/index.ts";
 *   const data = await loadSftJsonl("train.jsonl", tok, { maxLen: 512 });
 *   await finetune({ model, data, padId: tok.padId ?? 0, out: "runs/ft", lora: { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] } });
 */
export { collate, epochBatches, type SftBatch } from "./batches.ts";
export {
  loadSftJsonl,
  SftDataError,
  type SftDataset,
  type SftExample,
  type SftTokenizer,
  sftDataset,
  supervisedTokens,
  tokenizeConversation,
} from "./dataset.ts";
export {
  type CheckpointInfo,
  evaluateLoss,
  type FinetuneOptions,
  type FinetuneResult,
  finetune,
  type StepLog,
  TRAIN_LOG_FILE,
} from "./sft.ts";
export {
  listCheckpoints,
  OPTIMIZER_FILE,
  ResumeError,
  type RunSettings,
  readCheckpoint,
  resolveCheckpoint,
  TRAINER_STATE_FILE,
  type TrainerState,
} from "./state.ts";
