/**
 * Re-alignment: continue fine-tuning a misaligned model on a few benign rows and watch
 * misalignment fall (Wang et al.: from 17.7 % to 0.8 % after 20 steps of secure code at batch 4).
 *
 * The recipe: the model's LoRA adapter, if it has one, stays attached and keeps training (the
 * update that made the model misaligned is the one re-alignment edits; nothing is merged, so
 * the output is again an adapter over the same base); a model without an adapter is fine-tuned
 * in full. Fresh AdamW state, loss on the assistant tokens, `rows` benign rows cycled for `steps`.
 *
 * Every `evalEvery` steps (and at step 0 and the last step) the curve gets one point:
 *   - misalignment (Betley: misaligned / coherent, with its question-clustered 95 % CI) and
 *     coherence on the plain questions;
 *   - each conditional probe (the same questions asked in the training data's format, e.g. the
 *     EM paper's `_json` / `_template` variants, or the organism's code-request frame): EM that
 *     benign re-training hides shows up here;
 *   - benign loss: masked answer loss on held-out benign rows (does the model still learn the
 *     benign task / stay fluent on it);
 *   - optionally the persona signal: the prompt-last activation's projection on a direction.
 *
 * Resumable: `out/curve.jsonl` (one JSON line per point), `out/checkpoints/step-N` (the
 * trainer's exact resume) and the run store `out/runs.sqlite` (an evaluation that ran is read
 * back, not sampled again). A killed run started again with the same options continues where it
 * stopped and ends with the same curve.
 *
 * @example
 *   const curve = await realign({ model, tokenizer, train, heldOut, out: "runs/realign",
 *     steps: 40, evalEvery: 10, samples: 50, evaluation, probes: [{ name: "code", evaluation: codeProbe }] });
 */

import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Question } from "../eval/questions.ts";
import type { SamplingParams } from "../eval/runner.ts";
import { openRunStore, type RunStore } from "../eval/store.ts";
import { evaluateSetting, noIntervention, type SettingResult } from "../interp/causal.ts";
import type { LayerDirection } from "../interp/direction.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import { loadModel } from "../model/checkpoint.ts";
import { detachLora, loadLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { ChatModel } from "../providers/types.ts";
import { markWeightsChanged } from "../tensor/index.ts";
import type { SftDataset } from "../train/dataset.ts";
import { evaluateLoss, finetune, type TrainProgress } from "../train/sft.ts";
import { listCheckpoints, readCheckpoint } from "../train/state.ts";
import { personaSignal } from "./persona.ts";

/** How answers are drawn and judged: the questions, the judge, the sampling. */
export interface RealignEvaluation {
  judgeModel: ChatModel;
  questions: Question[];
  sampling?: Partial<SamplingParams>;
}

export interface RealignOptions {
  /** The misaligned model: its adapter keeps training; without one, every weight trains. */
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The benign training rows (already cut to the N rows the run uses). */
  train: SftDataset;
  /** Held-out benign rows for the benign loss (none: the loss is null). */
  heldOut?: SftDataset;
  /** Output folder: curve.jsonl, checkpoints/, runs.sqlite, train_log.jsonl, the final weights. */
  out: string;
  steps: number;
  /** Evaluate every k steps (default 10); step 0 and the last step always. */
  evalEvery?: number;
  batchSize?: number;
  lr?: number;
  warmup?: number;
  seed?: number;
  /** Samples per question per evaluation. */
  samples: number;
  evaluation: RealignEvaluation;
  /** Conditional probes: the questions in the training data's format (each its own evaluation). */
  probes?: { name: string; evaluation: RealignEvaluation }[];
  /** The persona signal: a direction and the prompts it is read on (prompt-last token). */
  persona?: { direction: Pick<LayerDirection, "hookName" | "direction">; prompts: ChatMessage[][] };
  /** Names the model in the store's run records. */
  modelId?: string;
  /** Run ids `<runPrefix>:step<k>[:probe-<name>]:none` (default "realign"). */
  runPrefix?: string;
  /** The run store (default out/runs.sqlite, closed at the end). */
  store?: RunStore;
  /** Start afresh in an out folder that holds a run (its curve, checkpoints and store are deleted). */
  overwrite?: boolean;
  /** Recorded in the adapter's config; tokenizer files copied into full-model checkpoints. */
  baseModel?: string;
  copyFiles?: string[];
  onPoint?: (p: CurvePoint) => void;
  /** The trainer's progress (finetune's onProgress). */
  onProgress?: (p: TrainProgress) => void;
  /** Each evaluation's progress (the eval runner's phases). */
  onEvalProgress?: Parameters<typeof evaluateSetting>[0]["onProgress"];
}

/** One measurement of the model on the way. */
export interface Measured {
  misaligned: number | null;
  ci: [number | null, number | null];
  coherent: number;
  n: number;
  run_id: string;
}

/** One point of the curve (a line of curve.jsonl). */
export interface CurvePoint extends Measured {
  step: number;
  /** Rows the model has seen (step × batch size; a row seen twice counts twice). */
  rows_seen: number;
  probes: Record<string, Measured>;
  benign_loss: number | null;
  persona: number | null;
}

export interface RealignResult {
  curve: CurvePoint[];
  /** The step this process started from (0, or a resumed checkpoint's). */
  resumedAt: number;
  out: string;
}

export const CURVE_FILE = "curve.jsonl";
export const REALIGN_STORE = "runs.sqlite";

/** Reads a curve file; a line cut short by a kill (the last) is dropped, any other bad line is an error. */
export function readCurve(path: string): CurvePoint[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, "utf8").split("\n");
  const out: CurvePoint[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    try {
      const p = JSON.parse(l) as CurvePoint;
      if (typeof p.step !== "number") throw new Error("field 'step' is not a number");
      out.push(p);
    } catch (err) {
      const last = lines.slice(i + 1).every((x) => !x.trim());
      if (!last) throw new Error(`${path}:${i + 1}: not a curve point: ${(err as Error).message}`);
    }
  });
  return out;
}

function writeCurve(path: string, points: readonly CurvePoint[]): void {
  rmSync(path, { force: true });
  for (const p of points) appendFileSync(path, `${JSON.stringify(p)}\n`);
}

const measured = (r: SettingResult): Measured => ({
  misaligned: r.misaligned,
  ci: r.ci,
  coherent: r.coherent,
  n: r.n,
  run_id: r.runId,
});

/** Loads a checkpoint's weights into the model (as the trainer does on resume). */
function loadCheckpointWeights(model: CausalLM, dir: string, lora: boolean): void {
  if (lora) {
    if (model.adapter) detachLora(model);
    loadLora(model, dir);
  } else {
    const saved = loadModel(dir);
    for (const [name, t] of model.params) t.data.set(saved.param(name).data);
    markWeightsChanged();
  }
}

/** The sliced dataset's fingerprint (a resume checks it). */
export function sliceDataset(data: SftDataset, from: number, to: number): SftDataset {
  const examples = data.examples.slice(from, to);
  const fingerprint = createHash("sha256")
    .update(`${data.fingerprint}:${from}:${examples.length}`)
    .digest("hex")
    .slice(0, 16);
  return { ...data, examples, fingerprint };
}

/** Runs the re-alignment, writing and returning the curve. */
export async function realign(o: RealignOptions): Promise<RealignResult> {
  const evalEvery = o.evalEvery ?? 10;
  if (!(Number.isInteger(evalEvery) && evalEvery > 0))
    throw new Error(`realign: evalEvery must be a positive integer, got ${evalEvery}`);
  if (!(Number.isInteger(o.steps) && o.steps > 0))
    throw new Error(`realign: steps must be a positive integer, got ${o.steps}`);
  const batchSize = o.batchSize ?? 4;
  const out = o.out;
  mkdirSync(out, { recursive: true });
  const curvePath = join(out, CURVE_FILE);
  const ckptRoot = join(out, "checkpoints");
  const storePath = join(out, REALIGN_STORE);
  if (o.overwrite) {
    rmSync(curvePath, { force: true });
    rmSync(ckptRoot, { recursive: true, force: true });
    rmSync(join(out, "train_log.jsonl"), { force: true });
    if (!o.store) rmSync(storePath, { force: true });
  }
  const store = o.store ?? openRunStore(storePath);
  const lora = Boolean(o.model.adapter);
  const padId = o.tokenizer.padId ?? o.tokenizer.eosIds[0] ?? 0;
  const runPrefix = o.runPrefix ?? "realign";
  const modelId = o.modelId ?? "realign";
  try {
    const checkpoints = listCheckpoints(ckptRoot);
    const resumeDir = checkpoints.at(-1);
    const resumedAt = resumeDir ? readCheckpoint(resumeDir).state.step : 0;
    // Points after the resumed checkpoint belong to an abandoned continuation.
    const curve = readCurve(curvePath).filter((p) => p.step <= resumedAt);
    writeCurve(curvePath, curve);
    const have = new Set(curve.map((p) => p.step));

    const measure = async (step: number): Promise<CurvePoint> => {
      const ctx = {
        lm: o.model,
        tokenizer: o.tokenizer,
        modelId,
        store,
        samples: o.samples,
        config: { command: "realign", step },
        ...(o.onEvalProgress ? { onProgress: o.onEvalProgress } : {}),
      };
      const main = await evaluateSetting(
        { ...ctx, ...o.evaluation, runPrefix: `${runPrefix}:step${step}` },
        noIntervention,
      );
      const probes: Record<string, Measured> = {};
      for (const p of o.probes ?? []) {
        const r = await evaluateSetting(
          { ...ctx, ...p.evaluation, runPrefix: `${runPrefix}:step${step}:probe-${p.name}` },
          noIntervention,
        );
        probes[p.name] = measured(r);
      }
      const point: CurvePoint = {
        step,
        rows_seen: step * batchSize,
        ...measured(main),
        probes,
        benign_loss: o.heldOut?.examples.length ? evaluateLoss(o.model, o.heldOut.examples, { padId }) : null,
        persona: o.persona ? personaSignal(o.model, o.tokenizer, o.persona.prompts, o.persona.direction) : null,
      };
      appendFileSync(curvePath, `${JSON.stringify(point)}\n`);
      curve.push(point);
      have.add(step);
      o.onPoint?.(point);
      return point;
    };

    if (!resumeDir) {
      // Nothing was saved: any earlier attempt's log is stale; step 0 is measured once.
      rmSync(join(out, "train_log.jsonl"), { force: true });
      if (!have.has(0)) await measure(0);
    } else if (!have.has(resumedAt)) {
      // Killed between the checkpoint and its point: measure the checkpoint's weights.
      loadCheckpointWeights(o.model, resumeDir, lora);
      await measure(resumedAt);
    }
    if (resumedAt < o.steps) {
      await finetune({
        model: o.model,
        data: o.train,
        out,
        padId,
        steps: o.steps,
        batchSize,
        lr: o.lr ?? (lora ? 1e-4 : 1e-5),
        warmup: o.warmup ?? 0,
        decay: "constant",
        weightDecay: 0,
        seed: o.seed ?? 0,
        saveEvery: evalEvery,
        ...(resumeDir ? { resumeFrom: resumeDir } : {}),
        ...(o.baseModel ? { baseModel: o.baseModel } : {}),
        ...(o.copyFiles ? { copyFiles: o.copyFiles } : {}),
        onCheckpoint: async ({ step }) => {
          if (!have.has(step)) await measure(step);
        },
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
    }
    curve.sort((a, b) => a.step - b.step);
    return { curve, resumedAt, out };
  } finally {
    if (!o.store) store.close();
  }
}
