/**
 * SAEs on disk in SAELens's layout: a folder with `cfg.json` and `sae_weights.safetensors`
 * (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], and for JumpReLU
 * `threshold` [d_sae]).
 *
 * emlab writes the flat, pre-6.0 style config (model_name / hook_name at the top level,
 * `activation_fn_kwargs.k` beside `k`) that every SAELens version reads; a BatchTopK SAE is
 * written as SAELens saves one, a JumpReLU SAE whose thresholds all equal the learned
 * batch threshold. An activation scale is folded into the weights (as SAELens's
 * `fold_activation_norm_scaling_factor` does), so files always hold raw-activation SAEs.
 *
 * The loader reads SAELens files of any version: topk (also old "standard" configs with
 * activation_fn "topk"), batchtopk, and jumprelu with one shared threshold; F16/BF16 weights
 * become float32. Anything else fails with a {@link SaeFileError} naming the file and field.
 *
 * @example
 * saveSae(sae, "runs/sae-l2");           // runs/sae-l2/cfg.json + sae_weights.safetensors
 * const again = loadSae("runs/sae-l2");  // encodes identically
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeDirAtomically } from "../../model/checkpoint.ts";
import { asFloat32, readSafetensors, type SafeTensor, writeSafetensors } from "../../tensor/safetensors.ts";
import { Sae, type SaeConfig } from "./sae.ts";

export const SAE_CFG_FILENAME = "cfg.json";
export const SAE_WEIGHTS_FILENAME = "sae_weights.safetensors";

/** A problem with an SAE folder; `file` and `field` say where. */
export class SaeFileError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field}: ${detail}`);
    this.name = "SaeFileError";
  }
}

/** Writes `sae` into `dir` (created or replaced) atomically: a temp sibling folder, then rename. */
export function saveSae(sae: Sae, dir: string): void {
  const { cfg } = sae;
  const scale = cfg.activationScale ?? 1;
  let { wEnc, wDec, bDec } = sae;
  if (scale !== 1) {
    // x̂_raw = (W_dec z + b_dec)/s and pre = W_encᵀ(s·x − b_dec) + b_enc = (s·W_enc)ᵀ(x − b_dec/s) + b_enc
    wEnc = wEnc.map((v) => v * scale);
    wDec = wDec.map((v) => v / scale);
    bDec = bDec.map((v) => v / scale);
  }
  const batch = cfg.architecture === "batchtopk" && cfg.threshold !== undefined;
  const threshold = batch ? cfg.threshold! : 0;
  const json: Record<string, unknown> = {
    architecture: batch ? "jumprelu" : "topk",
    d_in: cfg.dIn,
    d_sae: cfg.dSae,
    k: cfg.k,
    activation_fn: batch ? "relu" : "topk",
    activation_fn_kwargs: batch ? {} : { k: cfg.k },
    dtype: "float32",
    device: "cpu",
    model_name: cfg.modelName ?? null,
    hook_name: cfg.hookName,
    hook_head_index: null,
    apply_b_dec_to_input: cfg.applyBDecToInput !== false,
    normalize_activations: "none",
    reshape_activations: "none",
    finetuning_scaling_factor: false,
    prepend_bos: true,
    // emlab's own record of what it trained, ignored by SAELens
    emlab_architecture: cfg.architecture,
    ...(cfg.threshold !== undefined ? { emlab_threshold: cfg.threshold } : {}),
  };
  const tensors: Parameters<typeof writeSafetensors>[1] = {
    W_enc: { shape: [cfg.dIn, cfg.dSae], data: wEnc },
    W_dec: { shape: [cfg.dSae, cfg.dIn], data: wDec },
    b_enc: { shape: [cfg.dSae], data: sae.bEnc },
    b_dec: { shape: [cfg.dIn], data: bDec },
  };
  if (batch) tensors.threshold = { shape: [cfg.dSae], data: new Float32Array(cfg.dSae).fill(threshold) };

  writeDirAtomically(dir, (tmp) => {
    writeFileSync(join(tmp, SAE_CFG_FILENAME), `${JSON.stringify(json, null, 2)}\n`);
    writeSafetensors(join(tmp, SAE_WEIGHTS_FILENAME), tensors, { format: "pt" });
  });
}

export interface LoadSaeOptions {
  /**
   * For files with normalize_activations "expected_average_only_in": the factor raw
   * activations were multiplied by in training (SAELens keeps it outside the folder).
   */
  activationScale?: number;
}

/** Loads an SAE folder written by emlab or SAELens. */
export function loadSae(dir: string, opts: LoadSaeOptions = {}): Sae {
  const cfgPath = join(dir, SAE_CFG_FILENAME);
  const wPath = join(dir, SAE_WEIGHTS_FILENAME);
  const cfgErr = (field: string, detail: string) => new SaeFileError(cfgPath, field, detail);
  const wErr = (field: string, detail: string) => new SaeFileError(wPath, field, detail);
  if (!existsSync(cfgPath)) throw cfgErr("(file)", "not found");
  if (!existsSync(wPath)) throw wErr("(file)", "not found");
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (err) {
    throw cfgErr("(file)", `not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw cfgErr("(file)", "not a JSON object");
  const c = raw as Record<string, unknown>;
  const meta = (isObject(c.metadata) ? c.metadata : isObject(c.meta) ? c.meta : {}) as Record<string, unknown>;

  const posInt = (field: string): number => {
    const v = c[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      throw cfgErr(field, `${JSON.stringify(v)} is not a positive integer`);
    return v;
  };
  const dIn = posInt("d_in");
  const dSae = posInt("d_sae");

  const activationFn = String(c.activation_fn ?? c.activation_fn_str ?? "relu");
  const archRaw = c.architecture ?? "standard";
  if (typeof archRaw !== "string") throw cfgErr("architecture", `${JSON.stringify(archRaw)} is not a string`);
  const arch =
    c.emlab_architecture === "batchtopk"
      ? "batchtopk"
      : archRaw === "standard" && activationFn === "topk"
        ? "topk"
        : archRaw;
  const readK = (): number | undefined => {
    const kw = c.activation_fn_kwargs;
    const v = c.k ?? (isObject(kw) ? (kw as Record<string, unknown>).k : undefined);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !(v > 0)) throw cfgErr("k", `${JSON.stringify(v)} is not a positive number`);
    return Math.max(1, Math.round(v));
  };

  const norm = c.normalize_activations ?? "none";
  let activationScale = 1;
  if (norm === "expected_average_only_in" || norm === true) {
    if (opts.activationScale === undefined)
      throw cfgErr(
        "normalize_activations",
        `"expected_average_only_in" needs the dataset's norm scaling factor, which SAELens keeps outside the folder: pass loadSae(dir, { activationScale })`,
      );
    activationScale = opts.activationScale;
  } else if (norm !== "none" && norm !== null && norm !== false)
    throw cfgErr(
      "normalize_activations",
      `${JSON.stringify(norm)} is not supported (emlab loads "none" and "expected_average_only_in")`,
    );
  if (c.reshape_activations !== undefined && c.reshape_activations !== "none" && c.reshape_activations !== null)
    throw cfgErr("reshape_activations", `${JSON.stringify(c.reshape_activations)} is not supported (only "none")`);

  const hookName = c.hook_name ?? c.hook_point ?? meta.hook_name;
  if (typeof hookName !== "string")
    throw cfgErr("hook_name", `missing (looked at hook_name, hook_point, metadata.hook_name)`);
  const modelName = c.model_name ?? meta.model_name;

  // Weights: every tensor is checked for presence and shape before use.
  let tensors: Map<string, SafeTensor>;
  try {
    tensors = readSafetensors(wPath).tensors;
  } catch (err) {
    throw wErr("(file)", (err as Error).message);
  }
  const take = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw wErr(name, `tensor missing (has: ${[...tensors.keys()].join(", ") || "none"})`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw wErr(name, `shape [${t.shape.join(", ")}], expected [${shape.join(", ")}] (d_in ${dIn}, d_sae ${dSae})`);
    try {
      return asFloat32(t, wPath);
    } catch (err) {
      throw wErr(name, (err as Error).message);
    }
  };
  const wEnc = take("W_enc", [dIn, dSae]);
  const wDec = take("W_dec", [dSae, dIn]);
  const bEnc = take("b_enc", [dSae]);
  const bDec = take("b_dec", [dIn]);

  let cfg: SaeConfig;
  const base = {
    dIn,
    dSae,
    hookName,
    ...(typeof modelName === "string" ? { modelName } : {}),
    applyBDecToInput: c.apply_b_dec_to_input !== false,
    ...(activationScale !== 1 ? { activationScale } : {}),
  };
  if (arch === "topk") {
    const k = readK();
    if (k === undefined) throw cfgErr("k", "missing (looked at k and activation_fn_kwargs.k)");
    if (k > dSae) throw cfgErr("k", `${k} exceeds d_sae ${dSae}`);
    cfg = { ...base, k, architecture: "topk" };
  } else if (arch === "batchtopk" || arch === "jumprelu") {
    // SAELens saves trained BatchTopK SAEs as JumpReLU with every threshold equal.
    let threshold: number;
    if (tensors.has("threshold")) threshold = uniformThreshold(take("threshold", [dSae]), wErr);
    else if (tensors.has("topk_threshold"))
      threshold = uniformThreshold(asFloat32(tensors.get("topk_threshold")!), wErr);
    else if (typeof c.emlab_threshold === "number") threshold = c.emlab_threshold;
    else if (arch === "jumprelu") throw wErr("threshold", "tensor missing (a JumpReLU SAE needs its thresholds)");
    else threshold = Number.NaN;
    // emlab's own cfg keeps the threshold in double precision; the tensor holds it rounded.
    if (typeof c.emlab_threshold === "number" && Math.fround(c.emlab_threshold) === Math.fround(threshold))
      threshold = c.emlab_threshold;
    const k = Math.min(readK() ?? dSae, dSae);
    cfg = { ...base, k, architecture: "batchtopk", ...(Number.isNaN(threshold) ? {} : { threshold }) };
  } else {
    throw cfgErr(
      "architecture",
      `'${arch}'${archRaw === "standard" ? ` (activation_fn '${activationFn}')` : ""} is not supported: emlab loads topk, batchtopk, and jumprelu with one shared threshold`,
    );
  }
  return new Sae(cfg, { wEnc, bEnc, wDec, bDec });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function uniformThreshold(t: Float32Array, wErr: (field: string, detail: string) => SaeFileError): number {
  if (t.length === 0) throw wErr("threshold", "empty");
  const v = t[0]!;
  for (let j = 1; j < t.length; j++)
    if (t[j] !== v)
      throw wErr(
        "threshold",
        `per-latent JumpReLU thresholds differ (latent 0: ${v}, latent ${j}: ${t[j]}); emlab supports one shared threshold (BatchTopK)`,
      );
  return v;
}
