/**
 * `emlab finetune`: supervised fine-tuning (LoRA or full) of a Hugging Face model folder on a
 * chat JSONL file. The output folder holds the adapter (PEFT layout) or the full model,
 * checkpoints/step-N/ (resumable) and train_log.jsonl.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  loadPreventDirection,
  PREVENT_FILE,
  type PreventDirection,
  type PreventMode,
  preventionHooks,
  preventionRecord,
} from "../fix/prevent.ts";
import { medianResidualNorm } from "../interp/activations/collect.ts";
import { ChatTemplateError } from "../model/chat-template.ts";
import { CheckpointError, loadModel } from "../model/checkpoint.ts";
import type { Hook } from "../model/hooks.ts";
import { LORA_TARGETS, type LoraConfig } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer, TokenizerError } from "../model/tokenizer.ts";
import { NonFiniteLossError } from "../tensor/index.ts";
import {
  type CheckpointInfo,
  finetune,
  loadSftJsonl,
  ResumeError,
  SftDataError,
  type SftExample,
  TRAIN_LOG_FILE,
} from "../train/index.ts";
import { type Calibration, loadCalibration, modelHash, Watcher } from "../watch/index.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, intOption, numberOption, parseOptions } from "./common.ts";
import { progressRenderer } from "./progress.ts";

export const summary = "fine-tune a model on chat JSONL (LoRA or full; checkpoints, resume)";

const LORA = "LoRA (without --lora-rank: full fine-tuning of every weight)";
const TRAIN = "training";
const CKPT = "checkpoints";
const WATCH = "early warning (emlab watch)";
const PREVENT = "preventative steering (hooks during training only; never saved)";

export const flags = {
  model: {
    type: "string",
    arg: "DIR",
    help: "Hugging Face model folder (config.json, model.safetensors, tokenizer.json)",
  },
  data: {
    type: "string",
    arg: "FILE",
    help: 'chat JSONL ({"messages":[{"role","content"}]} a line); loss on assistant tokens only',
  },
  out: { type: "string", arg: "DIR", help: `output: adapter or model files, checkpoints/, ${TRAIN_LOG_FILE}` },
  "lora-rank": { type: "string", arg: "R", help: "adapter rank", group: LORA },
  "lora-alpha": {
    type: "string",
    arg: "A",
    help: "scale numerator (default 2R); the update is (A/R)·B·A, or A/√R with --rslora",
    group: LORA,
  },
  "lora-targets": {
    type: "string",
    arg: "LIST",
    help: `modules, comma-separated (default all: ${LORA_TARGETS.join(",")})`,
    group: LORA,
  },
  "lora-layers": {
    type: "string",
    arg: "LIST",
    help: "layer indices or ranges, e.g. 0-3,8 (default all)",
    group: LORA,
  },
  "lora-dropout": { type: "string", arg: "P", help: "dropout on the adapter's input (default 0)", group: LORA },
  rslora: { type: "boolean", help: "rank-stabilised scaling alpha/√r", group: LORA },
  epochs: { type: "string", arg: "E", help: "passes over the data (default 1); --steps overrides", group: TRAIN },
  steps: { type: "string", arg: "N", help: "optimizer steps", group: TRAIN },
  "batch-size": { type: "string", arg: "B", help: "examples per micro-batch (default 4)", group: TRAIN },
  "grad-accum": { type: "string", arg: "K", help: "micro-batches per optimizer step (default 1)", group: TRAIN },
  lr: { type: "string", arg: "LR", help: "peak learning rate (default 1e-4 LoRA, 1e-5 full)", group: TRAIN },
  warmup: { type: "string", arg: "W", help: "linear warm-up steps (default 0)", group: TRAIN },
  schedule: {
    type: "string",
    arg: "S",
    help: "linear | cosine | constant decay after warm-up (default linear)",
    group: TRAIN,
  },
  "weight-decay": { type: "string", arg: "WD", help: "AdamW decoupled weight decay (default 0)", group: TRAIN },
  "max-grad-norm": {
    type: "string",
    arg: "N",
    help: "clip the global gradient norm (default 1; 0 = off)",
    group: TRAIN,
  },
  "max-len": { type: "string", arg: "L", help: "truncate conversations to L tokens (default 1024)", group: TRAIN },
  seed: { type: "string", arg: "S", help: "data order, LoRA init and dropout (default 0)", group: TRAIN },
  dtype: {
    type: "string",
    arg: "D",
    help: "fp32 | bf16: compute dtype of the products (bf16 keeps fp32 master weights)",
    group: TRAIN,
  },
  "save-every": {
    type: "string",
    arg: "N",
    help: "checkpoint every N steps (default 0: only at the end)",
    group: CKPT,
  },
  "keep-checkpoints": { type: "string", arg: "N", help: "keep only the newest N", group: CKPT },
  resume: {
    type: "string",
    arg: "DIR",
    help: "continue from a checkpoint folder, or from --out's latest one",
    group: CKPT,
  },
  overwrite: { type: "boolean", help: "start afresh in an --out that already holds a run", group: CKPT },
  watch: {
    type: "string",
    arg: "CAL",
    help: "watch the persona signal at every checkpoint (a calibration from emlab watch calibrate);\nlines in --out's watch-timeline.jsonl, exit 3 on alert (--save-every defaults to 5)",
    group: WATCH,
  },
  "stop-on-alert": { type: "boolean", help: "with --watch: stop at the first checkpoint that alerts", group: WATCH },
  prevent: {
    type: "string",
    arg: "SPEC",
    help: "a direction file, or SAE_DIR:LATENT (the latent's decoder row at the\nSAE's hook): add --coef × median residual norm × û there in every\ntraining forward",
    group: PREVENT,
  },
  "prevent-layer": {
    type: "string",
    arg: "L",
    help: "which layer of a direction file (default its middle one)",
    group: PREVENT,
  },
  coef: { type: "string", arg: "C", help: "steering strength c of --prevent", group: PREVENT },
  caft: {
    type: "boolean",
    help: "instead of adding it, project --prevent's direction out during training\n(concept-ablation fine-tuning)",
    group: PREVENT,
  },
  quiet: { type: "boolean", help: "no progress bar" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({ usage: ["emlab finetune --model DIR --data FILE.jsonl --out DIR [options]"], flags });

/** Files of a model folder that describe its tokenizer; full-model checkpoints carry them. */
const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
  "chat_template.jinja",
  "vocab.json",
  "merges.txt",
];

/** Hooks for embedding the command (tests stop a run at a checkpoint through it). */
export interface FinetuneHooks {
  onCheckpoint?: (info: CheckpointInfo) => void | Promise<void>;
}

export async function run(argv: string[], cliHooks: FinetuneHooks = {}): Promise<number> {
  const { values: v } = parseOptions(argv, flags, false);
  if (v.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  for (const key of ["model", "data", "out"] as const) {
    if (!v[key]) throw new CliError(`--${key} is required\n\n${HELP}`, EXIT.usage);
  }
  const int = (name: keyof typeof flags, fallback: number, min = 1): number =>
    intOption(name, v[name] as string | undefined, fallback, min);
  const lora = loraOptions(v);
  const schedule = v.schedule ?? "linear";
  if (!["linear", "cosine", "constant"].includes(schedule)) {
    throw new CliError(`--schedule must be linear, cosine or constant, got '${schedule}'`, EXIT.usage);
  }
  if (v.dtype !== undefined && v.dtype !== "fp32" && v.dtype !== "bf16")
    throw new CliError(`--dtype must be fp32 or bf16, got '${v.dtype}'`, EXIT.usage);
  const prevent = preventOptions(v);
  const modelDir = v.model!;
  if (!existsSync(join(modelDir, "config.json"))) {
    throw new CliError(
      `${join(modelDir, "config.json")}: file not found (--model must be a Hugging Face model folder)`,
    );
  }
  try {
    const tok = Tokenizer.fromDir(modelDir);
    const model: CausalLM = loadModel(modelDir);
    if (lora) checkLora(lora, model);
    const data = await loadSftJsonl(v.data!, tok, { maxLen: int("max-len", 1024, 2) });
    if (data.dropped || data.truncated) {
      console.error(
        `emlab finetune: ${data.truncated} conversations truncated to --max-len, ${data.dropped} dropped (no assistant tokens left)`,
      );
    }
    const padId = tok.padId ?? tok.eosIds[0] ?? 0;
    const hooks = prevent ? preventionSetup(prevent, model, tok, data.examples, v.out!) : undefined;
    if (v["stop-on-alert"] && !v.watch) throw new CliError("--stop-on-alert needs --watch CAL", EXIT.usage);
    const watch = v.watch ? liveWatcher(v.watch, model, tok, v.out!, Boolean(v["stop-on-alert"])) : null;
    const res = await finetune({
      model,
      data,
      out: v.out!,
      padId,
      lora,
      steps: v.steps === undefined ? undefined : int("steps", 1),
      epochs: numberOption("epochs", v.epochs, 1),
      batchSize: int("batch-size", 4),
      gradAccum: int("grad-accum", 1),
      lr: v.lr === undefined ? undefined : numberOption("lr", v.lr, 0),
      warmup: int("warmup", 0, 0),
      decay: schedule as "linear" | "cosine" | "constant",
      weightDecay: numberOption("weight-decay", v["weight-decay"], 0),
      maxGradNorm: numberOption("max-grad-norm", v["max-grad-norm"], 1),
      saveEvery: int("save-every", watch ? 5 : 0, 0),
      keepCheckpoints: v["keep-checkpoints"] === undefined ? undefined : int("keep-checkpoints", 1),
      resumeFrom: v.resume,
      overwrite: v.overwrite,
      seed: int("seed", 0, 0),
      dtype: v.dtype as "fp32" | "bf16" | undefined,
      baseModel: resolve(modelDir),
      copyFiles: TOKENIZER_FILES.map((f) => join(modelDir, f)).filter((p) => existsSync(p)),
      onCheckpoint: async (info) => {
        await cliHooks.onCheckpoint?.(info);
        return watch?.onCheckpoint(info);
      },
      ...(hooks ? { hooks } : {}),
      onProgress: progressRenderer({ quiet: v.quiet }),
    });
    const what = res.mode === "lora" ? "adapter" : "model";
    const from = res.startStep > 0 ? ` (resumed at step ${res.startStep})` : "";
    const stopped = res.stoppedAt === undefined ? "" : ` (stopped on alert at step ${res.stoppedAt})`;
    console.error(
      `emlab finetune: ${res.stoppedAt ?? res.steps} steps${from}${stopped}, final loss ${res.finalLoss.toFixed(4)}, ${res.tokensPerSecond.toFixed(0)} tok/s; ${what} in ${v.out}`,
    );
    if (watch) {
      const first = watch.watcher.firstAlert();
      console.error(
        `emlab finetune: watch: ${first ? `first alert at step ${first.step}` : "no alert"}; timeline ${watch.timeline}`,
      );
      if (first) return EXIT.thresholdFailed;
    }
    return EXIT.ok;
  } catch (err) {
    const known = [SftDataError, ResumeError, CheckpointError, TokenizerError, ChatTemplateError, NonFiniteLossError];
    if (known.some((E) => err instanceof E)) throw new CliError((err as Error).message);
    throw err;
  }
}

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

/**
 * --watch CAL: the calibration checked against this base (same weights, probe set and hook),
 * and a watcher that reads the model in memory at each checkpoint (prevention hooks off: the
 * model as it would answer), appending to --out's watch-timeline.jsonl (a resumed run skips
 * checkpoints already in it).
 */
function liveWatcher(calPath: string, base: CausalLM, tok: Tokenizer, out: string, stopOnAlert: boolean) {
  let cal: Calibration;
  try {
    cal = loadCalibration(calPath, { baseHash: modelHash(base) });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  mkdirSync(out, { recursive: true });
  const timeline = join(out, WATCH_TIMELINE);
  const watcher = new Watcher(cal, tok, { timeline }, calPath);
  return {
    watcher,
    timeline,
    onCheckpoint: async (info: CheckpointInfo): Promise<"stop" | undefined> => {
      const line = await watcher.observe(base, { checkpoint: info.dir, step: info.step });
      if (line.alert)
        console.error(
          `emlab finetune: watch: ALERT at step ${info.step} (${line.alerts.join(", ")}: shift ${line.projection?.value.toFixed(4)} > ${cal.thresholds.projection.toFixed(4)})`,
        );
      return line.alert && stopOnAlert ? "stop" : undefined;
    },
  };
}

/** The live watcher's timeline, in the fine-tune's output folder. */
export const WATCH_TIMELINE = "watch-timeline.jsonl";

interface PreventFlags {
  spec: string;
  layer: number | undefined;
  mode: PreventMode;
  coef: number | undefined;
}

/** --prevent / --coef / --caft, checked before anything is loaded. */
function preventOptions(v: Values): PreventFlags | undefined {
  if (!v.prevent) {
    for (const k of ["coef", "caft", "prevent-layer"] as const)
      if (v[k] !== undefined) throw new CliError(`--${k} needs --prevent SPEC`, EXIT.usage);
    return undefined;
  }
  const mode: PreventMode = v.caft ? "caft" : "steer";
  if (mode === "caft" && v.coef !== undefined)
    throw new CliError("--caft projects the direction out: it takes no --coef", EXIT.usage);
  if (mode === "steer" && v.coef === undefined)
    throw new CliError("--prevent needs --coef C (or --caft to project the direction out)", EXIT.usage);
  return {
    spec: v.prevent,
    layer: v["prevent-layer"] === undefined ? undefined : intOption("prevent-layer", v["prevent-layer"], 0, 0),
    mode,
    coef: v.coef === undefined ? undefined : numberOption("coef", v.coef, 0),
  };
}

/**
 * The training hooks of --prevent: the direction (checked against the model), α's unit (the
 * median residual norm at the hook over the first 64 training rows' tokens, before training),
 * and prevent.json in --out saying what was applied.
 */
function preventionSetup(
  p: PreventFlags,
  model: CausalLM,
  tok: Tokenizer,
  examples: readonly SftExample[],
  out: string,
): Hook[] {
  let dir: PreventDirection;
  try {
    dir = loadPreventDirection(p.spec, { layer: p.layer });
  } catch (err) {
    throw new CliError(`--prevent: ${(err as Error).message}`);
  }
  if (dir.direction.length !== model.config.hidden)
    throw new CliError(
      `--prevent ${p.spec}: the direction has ${dir.direction.length} dimensions, the model ${model.config.hidden}`,
    );
  const medianNorm =
    p.mode === "steer"
      ? medianResidualNorm(
          model,
          examples.slice(0, 64).map((e) => ({ ids: Array.from(e.ids) })),
          { hook: dir.hookName, tokenizer: tok },
        )
      : undefined;
  const o = { mode: p.mode, coef: p.coef, medianNorm };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, PREVENT_FILE), `${JSON.stringify(preventionRecord(dir, o), null, 2)}\n`);
  return preventionHooks(dir, o);
}

function loraOptions(v: Values): LoraConfig | undefined {
  if (v["lora-rank"] === undefined) {
    for (const k of ["lora-alpha", "lora-targets", "lora-layers", "lora-dropout", "rslora"] as const) {
      if (v[k] !== undefined) throw new CliError(`--${k} needs --lora-rank`, EXIT.usage);
    }
    return undefined;
  }
  const r = numberOption("lora-rank", v["lora-rank"], 0);
  if (!Number.isInteger(r) || r < 1) throw new CliError(`--lora-rank must be a positive integer, got ${r}`, EXIT.usage);
  const targets =
    v["lora-targets"] === undefined || v["lora-targets"] === "all" ? [...LORA_TARGETS] : splitList(v["lora-targets"]);
  for (const t of targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) {
      throw new CliError(`--lora-targets: unknown module '${t}' (use ${LORA_TARGETS.join(", ")})`, EXIT.usage);
    }
  }
  const dropout = numberOption("lora-dropout", v["lora-dropout"], 0);
  if (!(dropout >= 0 && dropout < 1))
    throw new CliError(`--lora-dropout must be in [0, 1), got ${dropout}`, EXIT.usage);
  return {
    r,
    alpha: numberOption("lora-alpha", v["lora-alpha"], 2 * r),
    dropout,
    targetModules: targets,
    layers: v["lora-layers"] === undefined ? undefined : parseLayers(v["lora-layers"]),
    useRslora: v.rslora ?? false,
  };
}

/** Checks the LoRA options against the model, so a mistake is a usage error and not a stack trace. */
function checkLora(lora: LoraConfig, model: CausalLM): void {
  if (model.config.arch === "gpt2")
    throw new CliError(
      "LoRA on GPT-2 (Conv1D layers) is not supported yet; drop --lora-rank for full fine-tuning",
      EXIT.usage,
    );
  const bad = lora.layers?.find((l) => l >= model.config.layers);
  if (bad !== undefined)
    throw new CliError(`--lora-layers: layer ${bad} out of range (the model has ${model.config.layers})`, EXIT.usage);
}

function splitList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

/** "0-3,8" → [0, 1, 2, 3, 8]. */
export function parseLayers(s: string): number[] {
  const out: number[] = [];
  for (const part of splitList(s)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new CliError(`--lora-layers: '${part}' is not a layer index or range like 0-3`, EXIT.usage);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new CliError(`--lora-layers: range '${part}' runs backwards`, EXIT.usage);
    for (let i = lo; i <= hi; i++) if (!out.includes(i)) out.push(i);
  }
  return out;
}
