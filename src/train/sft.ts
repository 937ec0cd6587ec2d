/**
 * Supervised fine-tuning, full or LoRA: the loop fits on one screen.
 *
 *   for step in [start, total):
 *     for each of gradAccum micro-batches:             // length-bucketed, right-padded
 *       loss = CE(model(ids), next-token targets)      // assistant tokens only
 *       backward(loss · supervised_k / supervised_all) // token-weighted across micro-batches
 *     clip grads; AdamW.step(schedule(step)); log; every saveEvery steps: checkpoint + callback
 *
 * A checkpoint holds the weights and the trainer state (state.ts), so `resumeFrom` continues
 * the same trajectory: a run killed after a checkpoint and resumed ends with the same weights
 * as one that was never interrupted (bit-identical on the same machine and thread count).
 *
 * @example
 *   const data = await loadSftJsonl("train.jsonl", tok, { maxLen: 512 });
 *   await finetune({ model, data, padId: tok.padId ?? tok.eosIds[0]!, out: "runs/ft",
 *     lora: { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] }, steps: 100, saveEvery: 20,
 *     onCheckpoint: ({ step, dir, loss }) => console.log(step, dir, loss) });
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { loadModel, saveModel } from "../model/checkpoint.ts";
import type { Hook } from "../model/hooks.ts";
import { attachLora, detachLora, type LoraConfig, loadLora, loraConfigOf, saveLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import {
  AdamW,
  assertFiniteLoss,
  backward,
  clearTape,
  clipGradNorm,
  markWeightsChanged,
  mixSeed,
  noGrad,
  ops,
  Rng,
  type Tensor,
  warmupSchedule,
} from "../tensor/index.ts";
import { collate, epochBatches, type SftBatch } from "./batches.ts";
import type { SftDataset, SftExample } from "./dataset.ts";
import {
  listCheckpoints,
  ResumeError,
  type RunSettings,
  readCheckpoint,
  resolveCheckpoint,
  restoreOptimizer,
  settingsDiff,
  type TrainerState,
  trainableNames,
  writeCheckpoint,
} from "./state.ts";

export interface CheckpointInfo {
  step: number;
  dir: string;
  /** Loss of the step that was just taken. */
  loss: number;
}

/** One line of train_log.jsonl. */
export interface StepLog {
  step: number;
  /** Epochs done, fractional. */
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  /** Real (non-pad) tokens in the step. */
  tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
}

export interface FinetuneOptions {
  /** The base model (weights are updated in place). */
  model: CausalLM;
  data: SftDataset;
  /** Output folder: final weights, checkpoints/, train_log.jsonl. */
  out: string;
  /** Token used for right padding (never attended, never a target). */
  padId: number;
  /** Attach a fresh LoRA adapter. Without it: train the adapter the model has, else all weights. */
  lora?: LoraConfig;
  /** Optimizer steps; default ceil(epochs × batches per epoch / gradAccum). */
  steps?: number;
  epochs?: number;
  batchSize?: number;
  gradAccum?: number;
  /** Peak learning rate (default 1e-4 with LoRA, 1e-5 full). */
  lr?: number;
  warmup?: number;
  decay?: "linear" | "cosine" | "constant";
  /** Final lr as a fraction of the peak (default 0). */
  minLrRatio?: number;
  weightDecay?: number;
  /** Global gradient-norm clip; 0 turns it off. Default 1. */
  maxGradNorm?: number;
  /** Checkpoint every N steps (and at the last step); 0 = only at the last step. */
  saveEvery?: number;
  /** Keep only the newest N checkpoints (default all). */
  keepCheckpoints?: number;
  /** A checkpoint folder, or a previous output folder (its latest checkpoint). */
  resumeFrom?: string;
  /** Start afresh even if `out` already holds a run's checkpoints (they are deleted). */
  overwrite?: boolean;
  seed?: number;
  /** Recorded as base_model_name_or_path in adapter_config.json. */
  baseModel?: string;
  /** Files copied into every full-model folder (the tokenizer's). */
  copyFiles?: string[];
  /**
   * Called after each checkpoint is written, with the model in memory at that step (a watcher
   * reads it there). Returning "stop" ends the run at this step: the final weights are this
   * checkpoint's and the result's `stoppedAt` says so (early stopping).
   */
  onCheckpoint?: (info: CheckpointInfo) => void | "stop" | Promise<void | "stop">;
  /**
   * Hooks active in every training forward (not in evaluation): preventative steering adds the
   * persona direction here so the gradient need not move the weights along it.
   */
  hooks?: readonly Hook[];
  onStep?: (log: StepLog) => void;
  /** Called once at the start (done = the resumed step) and after every step; the caller renders it. */
  onProgress?: (p: TrainProgress) => void;
  /**
   * Compute dtype of the matrix products during training: "bf16" rounds their inputs to
   * bfloat16 and sums in fp32, while weights, gradients and AdamW state stay fp32 (master
   * weights) and the NaN-loss check stays on. Default: the model's own dtype (fp32 unless
   * set). The model's dtype is restored afterwards.
   */
  dtype?: "fp32" | "bf16";
}

/** Progress of a fine-tune in optimizer steps, with the step's loss and throughput. */
export interface TrainProgress {
  label: "finetune";
  done: number;
  total: number;
  fields?: Record<string, number | string>;
}

export interface FinetuneResult {
  /** Total optimizer steps of the run (including those before a resume). */
  steps: number;
  /** The step this process started from (0, or the resumed checkpoint's). */
  startStep: number;
  finalLoss: number;
  /** Loss of each step this process ran. */
  losses: number[];
  checkpoints: string[];
  tokensPerSecond: number;
  mode: "lora" | "full";
  /** The step at which onCheckpoint asked to stop; absent when the run went to its end. */
  stoppedAt?: number;
}

export const TRAIN_LOG_FILE = "train_log.jsonl";

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const before = o.model.dtype;
  if (o.dtype) o.model.setDtype(o.dtype);
  try {
    return await finetuneRun(o);
  } finally {
    o.model.dtype = before;
  }
}

/** The run's settings from the options: what a checkpoint records and a resume must match. */
function runSettings(o: FinetuneOptions): { settings: RunSettings; perEpoch: number } {
  const { model, data } = o;
  const batchSize = positiveInt("batchSize", o.batchSize ?? 4);
  const gradAccum = positiveInt("gradAccum", o.gradAccum ?? 1);
  const n = data.examples.length;
  if (n === 0) throw new Error("finetune: the dataset has no examples");
  const perEpoch = Math.ceil(n / batchSize); // batches per epoch
  const totalSteps = positiveInt("steps", o.steps ?? Math.ceil(((o.epochs ?? 1) * perEpoch) / gradAccum));
  const mode = o.lora || model.adapter ? "lora" : "full";
  const lora = o.lora ?? (model.adapter ? (loraConfigOf(model) ?? null) : null);
  const settings: RunSettings = {
    mode,
    seed: o.seed ?? 0,
    batchSize,
    gradAccum,
    maxLen: data.maxLen,
    totalSteps,
    lr: o.lr ?? (mode === "lora" ? 1e-4 : 1e-5),
    warmup: o.warmup ?? 0,
    decay: o.decay ?? "linear",
    minLrRatio: o.minLrRatio ?? 0,
    weightDecay: o.weightDecay ?? 0,
    maxGradNorm: o.maxGradNorm ?? 1,
    examples: n,
    data: data.fingerprint,
    lora: lora ? { ...lora } : null,
    // recorded only for bf16, so fp32 checkpoints written before the option still resume
    ...(model.dtype === "bf16" ? { dtype: "bf16" as const } : {}),
  };
  return { settings, perEpoch };
}

/**
 * Starts fresh (a new LoRA adapter when asked; refuses an --out that holds a run unless
 * `overwrite`), or restores weights and position from a checkpoint whose settings match,
 * dropping later checkpoints and log lines (they belong to the abandoned continuation).
 */
function startOrResume(o: FinetuneOptions, settings: RunSettings, ckptRoot: string, logPath: string) {
  const { model } = o;
  if (!o.resumeFrom) {
    if (!o.overwrite && (listCheckpoints(ckptRoot).length || existsSync(logPath))) {
      throw new ResumeError(
        `${o.out}: already holds a fine-tune (checkpoints/ or ${TRAIN_LOG_FILE}); resume it or choose another output folder`,
      );
    }
    rmSync(ckptRoot, { recursive: true, force: true });
    rmSync(logPath, { force: true });
    if (o.lora) {
      if (model.adapter) detachLora(model);
      attachLora(model, o.lora, mixSeed(settings.seed, 0x10a));
    }
    return { startStep: 0, resumed: null, resumeDir: "" };
  }
  const resumeDir = resolveCheckpoint(o.resumeFrom);
  const resumed = readCheckpoint(resumeDir);
  const diff = settingsDiff(resumed.state.settings, settings);
  if (diff.length) {
    throw new ResumeError(
      `${resumeDir}: the run's settings differ from the checkpoint's, so it cannot continue exactly (pass the original run's options):\n  ${diff.join("\n  ")}`,
    );
  }
  const startStep = resumed.state.step;
  if (settings.mode === "lora") {
    if (model.adapter) detachLora(model);
    loadLora(model, resumeDir);
  } else {
    const saved = loadModel(resumeDir);
    for (const [name, t] of model.params) t.data.set(saved.param(name).data);
    markWeightsChanged(); // (packed bf16 copies of the old weights)
  }
  for (const dir of listCheckpoints(ckptRoot))
    if (stepOf(dir) > startStep) rmSync(dir, { recursive: true, force: true });
  truncateLog(logPath, startStep);
  return { startStep, resumed, resumeDir };
}

/**
 * One optimizer step's forward and backward over its micro-batches: each micro-batch's loss
 * is weighted by its share of the step's supervised tokens. Returns the step's mean loss.
 */
function accumulateGradients(o: FinetuneOptions, micro: SftBatch[], step: number, opt: AdamW): number {
  const { model } = o;
  const seed = o.seed ?? 0;
  const gradAccum = micro.length;
  const supervised = micro.reduce((s, b) => s + b.supervised, 0);
  let lossSum = 0;
  micro.forEach((b, k) => {
    // Dropout draws from a stream fixed by (seed, micro-batch index): nothing to save for resume.
    if (model.adapter) model.adapter.rng = new Rng(mixSeed(seed, 0xd20f, step * gradAccum + k));
    const logits = model.forward(b.ids, b.B, b.T, { keyMask: b.keyMask, training: true, hooks: o.hooks });
    const loss = ops.crossEntropy(logits, b.targets);
    const value = loss.item();
    if (!Number.isFinite(value)) {
      clearTape();
      opt.zeroGrad();
      assertFiniteLoss(value, step + 1);
    }
    backward(loss, Float32Array.of(b.supervised / supervised));
    lossSum += value * b.supervised;
  });
  return lossSum / supervised;
}

/** Writes the checkpoint after `step` (weights, optimizer moments, position) and prunes old ones. */
async function saveStep(
  o: FinetuneOptions,
  c: { settings: RunSettings; perEpoch: number; ckptRoot: string; opt: AdamW },
  log: StepLog,
): Promise<{ dir: string; stop: boolean }> {
  const microDone = log.step * c.settings.gradAccum;
  const state: TrainerState = {
    format: "emlab-sft/1",
    step: log.step,
    microBatch: microDone,
    epoch: Math.floor(microDone / c.perEpoch),
    batchInEpoch: microDone % c.perEpoch,
    lr: log.lr,
    loss: log.loss,
    adamStep: c.opt.stepCount,
    settings: c.settings,
  };
  const dir = join(c.ckptRoot, `step-${String(log.step).padStart(6, "0")}`);
  writeCheckpoint(dir, o.model, c.opt, state, { baseModel: o.baseModel, copyFrom: o.copyFiles });
  if (o.keepCheckpoints && o.keepCheckpoints > 0) {
    for (const old of listCheckpoints(c.ckptRoot).slice(0, -o.keepCheckpoints))
      rmSync(old, { recursive: true, force: true });
  }
  const verdict = await o.onCheckpoint?.({ step: log.step, dir, loss: log.loss });
  return { dir, stop: verdict === "stop" };
}

async function finetuneRun(o: FinetuneOptions): Promise<FinetuneResult> {
  const { model, data, out } = o;
  const { settings, perEpoch } = runSettings(o);
  const { mode, totalSteps, gradAccum, batchSize, seed } = settings;
  const saveEvery = o.saveEvery ?? 0;
  const ckptRoot = join(out, "checkpoints");
  const logPath = join(out, TRAIN_LOG_FILE);
  mkdirSync(out, { recursive: true });
  const { startStep, resumed, resumeDir } = startOrResume(o, settings, ckptRoot, logPath);

  const params = model.trainableParams();
  const noDecay = new Set(mode === "full" ? params.filter((p) => p.rank === 1) : []);
  const opt = new AdamW(params, { lr: settings.lr, weightDecay: settings.weightDecay, noDecay });
  if (resumed) restoreOptimizer(opt, trainableNames(model), resumed.moments, resumed.state.adamStep, resumeDir);
  const schedule = warmupSchedule({
    peak: settings.lr,
    warmup: settings.warmup,
    total: totalSteps,
    decay: settings.decay,
    minRatio: settings.minLrRatio,
  });

  // ---- the data stream: micro-batch g is batch (g mod perEpoch) of epoch ⌊g / perEpoch⌋
  const lengths = data.examples.map((e) => e.ids.length);
  let epochCache = { epoch: -1, batches: [] as number[][] };
  const microBatch = (g: number): SftBatch => {
    const epoch = Math.floor(g / perEpoch);
    if (epoch !== epochCache.epoch) epochCache = { epoch, batches: epochBatches(lengths, batchSize, seed, epoch) };
    return collate(data.examples, epochCache.batches[g % perEpoch]!, o.padId);
  };

  if (startStep > 0)
    o.onProgress?.({ label: "finetune", done: startStep, total: totalSteps, fields: { resumed: `step ${startStep}` } });
  const losses: number[] = [];
  const checkpoints: string[] = [];
  const t0 = performance.now();
  let tokensSeen = 0;
  let finalLoss = resumed?.state.loss ?? Number.NaN;
  let stoppedAt: number | undefined;
  for (let step = startStep; step < totalSteps; step++) {
    const micro = Array.from({ length: gradAccum }, (_, k) => microBatch(step * gradAccum + k));
    const loss = accumulateGradients(o, micro, step, opt);
    const gradNorm = settings.maxGradNorm > 0 ? clipGradNorm(params, settings.maxGradNorm) : Number.NaN;
    const lr = schedule(step);
    opt.step(lr);
    opt.zeroGrad();

    const tokens = micro.reduce((s, b) => s + b.tokens, 0);
    tokensSeen += tokens;
    const elapsed = (performance.now() - t0) / 1000;
    const log: StepLog = {
      step: step + 1,
      epoch: ((step + 1) * gradAccum) / perEpoch,
      loss,
      lr,
      grad_norm: gradNorm,
      tokens,
      tokens_per_s: tokensSeen / Math.max(elapsed, 1e-9),
      elapsed_s: elapsed,
    };
    appendFileSync(logPath, `${JSON.stringify(log)}\n`);
    o.onStep?.(log);
    losses.push(loss);
    finalLoss = loss;
    o.onProgress?.({
      label: "finetune",
      done: step + 1,
      total: totalSteps,
      fields: { loss, "tok/s": log.tokens_per_s },
    });
    if ((saveEvery > 0 && (step + 1) % saveEvery === 0) || step + 1 === totalSteps) {
      const saved = await saveStep(o, { settings, perEpoch, ckptRoot, opt }, log);
      checkpoints.push(saved.dir);
      if (saved.stop && step + 1 < totalSteps) {
        stoppedAt = step + 1;
        break;
      }
    }
  }
  writeFinal(model, out, mode, o);
  const elapsed = (performance.now() - t0) / 1000;
  return {
    steps: totalSteps,
    startStep,
    finalLoss,
    losses,
    checkpoints,
    tokensPerSecond: tokensSeen / Math.max(elapsed, 1e-9),
    mode,
    ...(stoppedAt === undefined ? {} : { stoppedAt }),
  };
}

/**
 * Mean next-token loss over the assistant tokens of `examples` (no gradient, no dropout),
 * in fixed batches: the number to compare before and after fine-tuning.
 */
export function evaluateLoss(
  model: CausalLM,
  examples: readonly SftExample[],
  opts: { padId: number; batchSize?: number },
): number {
  const bs = opts.batchSize ?? 8;
  let sum = 0;
  let count = 0;
  noGrad(() => {
    for (let i = 0; i < examples.length; i += bs) {
      const idx = Array.from({ length: Math.min(bs, examples.length - i) }, (_, k) => i + k);
      const b = collate(examples, idx, opts.padId);
      const loss: Tensor = ops.crossEntropy(model.forward(b.ids, b.B, b.T, { keyMask: b.keyMask }), b.targets);
      sum += loss.item() * b.supervised;
      count += b.supervised;
    }
  });
  return sum / count;
}

/** Writes the final weights into `out` (beside checkpoints/ and the log), file by file. */
function writeFinal(model: CausalLM, out: string, mode: "lora" | "full", o: FinetuneOptions): void {
  const tmp = join(out, `.final.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    if (mode === "lora") saveLora(model, tmp, o.baseModel ?? "");
    else saveModel(model, tmp, { copyFrom: o.copyFiles });
    for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(out, f));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function truncateLog(path: string, upTo: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as StepLog).step <= upTo;
      } catch {
        return false; // a line cut short by the kill
      }
    });
  writeFileSync(path, keep.map((l) => `${l}\n`).join(""));
}

function stepOf(dir: string): number {
  return Number(/step-(\d+)$/.exec(dir)?.[1] ?? 0);
}

function positiveInt(name: string, v: number): number {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`finetune: ${name} must be a positive integer, got ${v}`);
  return v;
}
