/**
 * LoRA adapters in PEFT's file format, so adapters trained with PEFT, Unsloth or TRL load
 * here and emlab's load there: adapter_config.json + adapter_model.safetensors with keys
 * `base_model.model.{module}.lora_A.weight` [r, in] and `.lora_B.weight` [out, r].
 * The update is W + s·B·A with s = alpha/r (or alpha/√r with rsLoRA); A starts
 * Kaiming-uniform (PEFT's default), B at zero, so a fresh adapter changes nothing.
 *
 * @example
 *   attachLora(model, { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] }, 0);
 *   // … train model.trainableParams() …
 *   saveLora(model, "out/adapter");
 *   mergeLora(model); // fold into the base weights
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { markWeightsChanged, Rng, Tensor } from "../tensor/index.ts";
import { asFloat32, readSafetensors, writeSafetensors } from "../tensor/safetensors.ts";
import type { CausalLM } from "./model.ts";

export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout?: number;
  /** Module names (q_proj, …, down_proj). */
  targetModules: readonly string[];
  /** Only these layer indices (default all). */
  layers?: readonly number[];
  useRslora?: boolean;
}

function modulePath(layer: number, target: string): string {
  const sub = ["gate_proj", "up_proj", "down_proj"].includes(target) ? "mlp" : "self_attn";
  return `model.layers.${layer}.${sub}.${target}`;
}

function scaleOf(cfg: LoraConfig): number {
  return cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.r) : cfg.alpha / cfg.r;
}

/** Creates a fresh adapter on the model (base weights frozen) and returns its config. */
export function attachLora(model: CausalLM, cfg: LoraConfig, seed: number): LoraConfig {
  if (model.config.arch === "gpt2") throw new Error("LoRA: GPT-2 (Conv1D layers) is not supported yet");
  if (!(Number.isInteger(cfg.r) && cfg.r > 0)) throw new Error(`LoRA: rank r must be a positive integer, got ${cfg.r}`);
  for (const t of cfg.targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) {
      throw new Error(`LoRA: unknown target module '${t}' (use ${LORA_TARGETS.join(", ")})`);
    }
  }
  const rng = new Rng(seed);
  const modules = new Map<string, { A: Tensor; B: Tensor }>();
  const layers = cfg.layers ?? Array.from({ length: model.config.layers }, (_, i) => i);
  for (const L of layers) {
    if (L < 0 || L >= model.config.layers) throw new Error(`LoRA: layer ${L} out of range`);
    for (const t of cfg.targetModules) {
      const path = modulePath(L, t);
      const [out, inF] = model.param(`${path}.weight`).shape as [number, number];
      const bound = 1 / Math.sqrt(inF); // kaiming_uniform(a=√5)
      const A = Tensor.uniform([cfg.r, inF], -bound, bound, { rng, requiresGrad: true });
      const B = Tensor.zeros([out, cfg.r], { requiresGrad: true });
      A.name = `${path}.lora_A.weight`;
      B.name = `${path}.lora_B.weight`;
      modules.set(path, { A, B });
    }
  }
  setAdapter(model, cfg, modules, rng);
  return cfg;
}

function setAdapter(model: CausalLM, cfg: LoraConfig, modules: Map<string, { A: Tensor; B: Tensor }>, rng: Rng) {
  for (const p of model.params.values()) p.requiresGrad = false;
  model.adapter = { modules, scale: scaleOf(cfg), dropout: cfg.dropout ?? 0, rng };
  loraConfigs.set(model, cfg);
}

const loraConfigs = new WeakMap<CausalLM, LoraConfig>();

export function loraConfigOf(model: CausalLM): LoraConfig | undefined {
  return loraConfigs.get(model);
}

/** Writes adapter_config.json + adapter_model.safetensors (PEFT layout), atomically. */
export function saveLora(model: CausalLM, dir: string, baseModel = ""): void {
  const cfg = loraConfigs.get(model);
  if (!model.adapter || !cfg) throw new Error("saveLora: the model has no LoRA adapter");
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    r: cfg.r,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout ?? 0,
    target_modules: [...cfg.targetModules],
    layers_to_transform: cfg.layers ? [...cfg.layers] : null,
    use_rslora: cfg.useRslora ?? false,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
  };
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [path, { A, B }] of model.adapter.modules) {
    tensors[`base_model.model.${path}.lora_A.weight`] = { shape: [...A.shape], data: A.data };
    tensors[`base_model.model.${path}.lora_B.weight`] = { shape: [...B.shape], data: B.data };
  }
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, "adapter_config.json"), `${JSON.stringify(config, null, 2)}\n`);
    writeSafetensors(join(tmp, "adapter_model.safetensors"), tensors, { format: "pt" });
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Loads a PEFT LoRA adapter folder onto the model (base weights frozen). */
export function loadLora(model: CausalLM, dir: string, seed = 0): LoraConfig {
  const cfgPath = join(dir, "adapter_config.json");
  if (!existsSync(cfgPath)) throw new Error(`${cfgPath}: file not found`);
  const raw = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
  if (raw.peft_type !== "LORA") throw new Error(`${cfgPath}: peft_type '${raw.peft_type}' is not LORA`);
  if (raw.use_dora === true) throw new Error(`${cfgPath}: DoRA adapters are not supported`);
  if (raw.fan_in_fan_out === true)
    throw new Error(`${cfgPath}: fan_in_fan_out adapters (GPT-2 Conv1D) are not supported`);
  const targets = raw.target_modules;
  const layersRaw = raw.layers_to_transform;
  const cfg: LoraConfig = {
    r: Number(raw.r),
    alpha: Number(raw.lora_alpha ?? raw.r),
    dropout: Number(raw.lora_dropout ?? 0),
    targetModules: Array.isArray(targets) ? targets.map(String) : [],
    layers: typeof layersRaw === "number" ? [layersRaw] : Array.isArray(layersRaw) ? layersRaw.map(Number) : undefined,
    useRslora: raw.use_rslora === true,
  };
  const file = join(dir, "adapter_model.safetensors");
  const { tensors } = readSafetensors(file);
  const modules = new Map<string, { A: Tensor; B: Tensor }>();
  const pending = new Map<string, { A?: Tensor; B?: Tensor }>();
  for (const [key, st] of tensors) {
    const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(key);
    if (!m) throw new Error(`${file}: unexpected tensor '${key}' (not a LoRA A/B weight)`);
    const [, path, which] = m as unknown as [string, string, "A" | "B"];
    const base = model.params.get(`${path}.weight`);
    if (!base) throw new Error(`${file}: tensor '${key}' targets '${path}', which the model does not have`);
    const t = new Tensor(asFloat32(st, file), [...st.shape], true);
    const [out, inF] = base.shape as [number, number];
    const want = which === "A" ? [cfg.r, inF] : [out, cfg.r];
    if (t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      throw new Error(`${file}: tensor '${key}' has shape [${t.shape}], expected [${want}]`);
    }
    t.name = `${path}.lora_${which}.weight`;
    const entry = pending.get(path) ?? {};
    entry[which] = t;
    pending.set(path, entry);
  }
  for (const [path, { A, B }] of pending) {
    if (!A || !B) throw new Error(`${file}: module '${path}' has lora_${A ? "B" : "A"} missing`);
    modules.set(path, { A, B });
  }
  setAdapter(model, cfg, modules, new Rng(seed));
  return cfg;
}

/** Folds the adapter into the base weights (W += s·B·A) and removes it. */
export function mergeLora(model: CausalLM): void {
  const a = model.adapter;
  if (!a) throw new Error("mergeLora: the model has no LoRA adapter");
  for (const [path, { A, B }] of a.modules) {
    const W = model.param(`${path}.weight`);
    const [out, inF] = W.shape as [number, number];
    const r = A.shape[0]!;
    const w = W.data;
    markWeightsChanged([w]);
    for (let o = 0; o < out; o++)
      for (let q = 0; q < r; q++) {
        const bs = a.scale * B.data[o * r + q]!;
        if (bs === 0) continue;
        for (let i = 0; i < inF; i++) w[o * inF + i]! += bs * A.data[q * inF + i]!;
      }
  }
  detachLora(model);
}

/** Removes the adapter (base weights trainable again). */
export function detachLora(model: CausalLM): void {
  model.adapter = null;
  loraConfigs.delete(model);
  for (const p of model.params.values()) p.requiresGrad = true;
}
