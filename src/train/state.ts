/**
 * Trainer checkpoints: the weights (a PEFT adapter or a full HF model folder) plus what a
 * resumed run needs to continue exactly where this one stood:
 *
 *   checkpoints/step-000040/
 *     adapter_config.json + adapter_model.safetensors   (LoRA)  | config.json + model.safetensors + tokenizer files (full)
 *     optimizer.safetensors   AdamW moments per trainable param: exp_avg.{name}, exp_avg_sq.{name} (F32)
 *     trainer_state.json      step, AdamW step, data position, schedule, the run's settings
 *
 * The folder is written under a dot-prefixed temporary name and renamed into place, so a
 * checkpoint folder that exists is complete; a run killed mid-save leaves only the dot folder.
 * Randomness needs no saved state: the data order is a function of (seed, epoch) and the
 * dropout stream of (seed, micro-batch index).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { saveModel } from "../model/checkpoint.ts";
import { type LoraConfig, saveLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { type AdamW, asFloat32, readSafetensors, writeSafetensors } from "../tensor/index.ts";

export const TRAINER_STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
const FORMAT = "emlab-sft/1";

/** Settings that must be equal for a resumed run to continue the same trajectory. */
export interface RunSettings {
  mode: "lora" | "full";
  seed: number;
  batchSize: number;
  gradAccum: number;
  maxLen: number;
  totalSteps: number;
  lr: number;
  warmup: number;
  decay: "linear" | "cosine" | "constant";
  minLrRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  /** Number of examples and the dataset fingerprint (ids + masks). */
  examples: number;
  data: string;
  lora: LoraConfig | null;
  /** Present (and "bf16") only for bf16 training. */
  dtype?: "bf16";
}

export interface TrainerState {
  format: typeof FORMAT;
  /** Optimizer steps done. */
  step: number;
  /** Micro-batches consumed (step × gradAccum); epoch and batchInEpoch derive from it. */
  microBatch: number;
  epoch: number;
  batchInEpoch: number;
  /** Learning rate and loss of the last step. */
  lr: number;
  loss: number;
  adamStep: number;
  settings: RunSettings;
}

export class ResumeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResumeError";
  }
}

/** Names of the trainable params, in model.trainableParams() order (they key the optimizer file). */
export function trainableNames(model: CausalLM): string[] {
  if (model.adapter)
    return [...model.adapter.modules.keys()].flatMap((p) => [`${p}.lora_A.weight`, `${p}.lora_B.weight`]);
  return [...model.params.keys()];
}

/** Writes one complete checkpoint folder at `dir` (atomically, see the file comment). */
export function writeCheckpoint(
  dir: string,
  model: CausalLM,
  opt: AdamW,
  state: TrainerState,
  opts: { baseModel?: string; copyFrom?: string[] } = {},
): void {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    if (state.settings.mode === "lora") saveLora(model, tmp, opts.baseModel ?? "");
    else saveModel(model, tmp, { copyFrom: opts.copyFrom });
    const names = trainableNames(model);
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    opt.state().buffers.forEach(([m, v], i) => {
      tensors[`exp_avg.${names[i]}`] = { shape: [m!.length], data: m! };
      tensors[`exp_avg_sq.${names[i]}`] = { shape: [v!.length], data: v! };
    });
    writeSafetensors(join(tmp, OPTIMIZER_FILE), tensors, { step: String(opt.stepCount) });
    writeFileSync(join(tmp, TRAINER_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A checkpoint folder from what the user gave: the folder itself (has trainer_state.json)
 * or a fine-tune output folder (its latest checkpoints/step-* is taken).
 */
export function resolveCheckpoint(path: string): string {
  if (!existsSync(path)) throw new ResumeError(`${path}: resume folder not found`);
  if (existsSync(join(path, TRAINER_STATE_FILE))) return path;
  const latest = listCheckpoints(join(path, "checkpoints")).at(-1);
  if (!latest) throw new ResumeError(`${path}: no ${TRAINER_STATE_FILE} here and no checkpoints/step-* inside`);
  return latest;
}

/** Complete checkpoint folders under `dir`, oldest step first. */
export function listCheckpoints(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^step-\d+$/.test(n) && existsSync(join(dir, n, TRAINER_STATE_FILE)))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
    .map((n) => join(dir, n));
}

/** Reads trainer_state.json and the optimizer moments (by param name) of a checkpoint. */
export function readCheckpoint(dir: string): {
  state: TrainerState;
  moments: Map<string, [Float32Array, Float32Array]>;
} {
  const statePath = join(dir, TRAINER_STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, "utf8"));
  } catch (err) {
    throw new ResumeError(`${statePath}: ${(err as Error).message}`);
  }
  if (state.format !== FORMAT) throw new ResumeError(`${statePath}: format '${state.format}' is not ${FORMAT}`);
  const optPath = join(dir, OPTIMIZER_FILE);
  if (!existsSync(optPath)) throw new ResumeError(`${optPath}: file not found`);
  const { tensors } = readSafetensors(optPath);
  const moments = new Map<string, [Float32Array, Float32Array]>();
  for (const [key, t] of tensors) {
    const m = /^exp_avg\.(.+)$/.exec(key);
    if (!m) continue;
    const sq = tensors.get(`exp_avg_sq.${m[1]}`);
    if (!sq) throw new ResumeError(`${optPath}: tensor 'exp_avg_sq.${m[1]}' missing`);
    moments.set(m[1]!, [asFloat32(t, optPath), asFloat32(sq, optPath)]);
  }
  return { state, moments };
}

/** Puts saved moments into `opt` in the order of `names`; every name must be there with its size. */
export function restoreOptimizer(
  opt: AdamW,
  names: string[],
  moments: Map<string, [Float32Array, Float32Array]>,
  step: number,
  file: string,
) {
  const buffers = names.map((name, i) => {
    const mv = moments.get(name);
    if (!mv) throw new ResumeError(`${file}: no optimizer moments for '${name}'`);
    if (mv[0].length !== opt.params[i]!.size) {
      throw new ResumeError(
        `${file}: moments of '${name}' have ${mv[0].length} values, the param has ${opt.params[i]!.size}`,
      );
    }
    return [mv[0], mv[1]];
  });
  if (moments.size !== names.length) {
    throw new ResumeError(`${file}: ${moments.size} params in the optimizer state, ${names.length} trainable now`);
  }
  opt.loadState({ step, buffers });
}

/** The settings that differ between a checkpoint and this run, as "name: saved → now" lines. */
export function settingsDiff(saved: RunSettings, now: RunSettings): string[] {
  const out: string[] = [];
  // the keys of both: an optional setting present on one side only (dtype) is a difference
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]) as Set<keyof RunSettings>;
  for (const key of keys) {
    const a = JSON.stringify(saved[key] ?? null);
    const b = JSON.stringify(now[key] ?? null);
    if (a !== b) out.push(`${key}: ${a} → ${b}`);
  }
  return out;
}
