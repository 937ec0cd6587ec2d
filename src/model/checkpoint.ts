/**
 * Hugging Face model folders: config.json + model.safetensors (or a sharded
 * model.safetensors.index.json) [+ tokenizer files]. Loading validates every tensor's name
 * and shape against the config and names the file and tensor on error; saving writes the
 * same layout into a temporary sibling folder and renames it into place, so a failed save
 * leaves no half-written folder.
 *
 * @example
 *   const model = loadModel("checkpoints/qwen2.5-0.5b-instruct");
 *   saveModel(model, "out/model");
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Tensor } from "../tensor/index.ts";
import { asFloat32, readSafetensors, SafetensorsError, writeSafetensors } from "../tensor/safetensors.ts";
import { type ModelConfig, parseConfig } from "./config.ts";
import { CausalLM } from "./model.ts";
import { expectedParams } from "./params.ts";

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new CheckpointError(`${path}: file not found`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CheckpointError(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

/** Maps a checkpoint's tensor name to emlab's (HF's canonical) name, or null to skip it. */
function canonicalName(cfg: ModelConfig, name: string): string | null {
  if (cfg.arch === "gpt2") {
    if (/\.attn\.(masked_)?bias$/.test(name)) return null; // causal-mask buffers, not weights
    if (name === "lm_head.weight") return name;
    return name.startsWith("transformer.") ? name : `transformer.${name}`;
  }
  if (name.endsWith(".rotary_emb.inv_freq")) return null;
  return name;
}

/** Loads config.json and the weights of a Hugging Face model folder. */
export function loadModel(dir: string): CausalLM {
  const cfgPath = join(dir, "config.json");
  const cfg = (() => {
    try {
      return parseConfig(readJson(cfgPath), cfgPath);
    } catch (err) {
      throw new CheckpointError((err as Error).message);
    }
  })();
  const single = join(dir, "model.safetensors");
  const index = join(dir, "model.safetensors.index.json");
  let files: string[];
  if (existsSync(single)) files = [single];
  else if (existsSync(index)) {
    const map = readJson(index).weight_map as Record<string, string> | undefined;
    if (!map || typeof map !== "object") throw new CheckpointError(`${index}: missing 'weight_map'`);
    files = [...new Set(Object.values(map))].map((f) => join(dir, f));
  } else {
    throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }
  const expected = expectedParams(cfg);
  const params = new Map<string, Tensor>();
  for (const file of files) {
    let loaded: ReturnType<typeof readSafetensors>;
    try {
      loaded = readSafetensors(file);
    } catch (err) {
      if (err instanceof SafetensorsError) throw new CheckpointError(err.message);
      throw err;
    }
    for (const [raw, st] of loaded.tensors) {
      const name = canonicalName(cfg, raw);
      if (name === null) continue;
      const shape = expected.get(name);
      if (!shape) {
        if (name === "lm_head.weight" && cfg.tieEmbeddings) continue; // some tied checkpoints store it anyway
        throw new CheckpointError(`${file}: unexpected tensor '${raw}' for ${cfg.arch} (is config.json right?)`);
      }
      if (st.shape.length !== shape.length || st.shape.some((d, i) => d !== shape[i])) {
        throw new CheckpointError(`${file}: tensor '${raw}' has shape [${st.shape}], config.json implies [${shape}]`);
      }
      const t = new Tensor(asFloat32(st, file), shape, true);
      t.name = name;
      params.set(name, t);
    }
  }
  for (const name of expected.keys()) {
    if (!params.has(name)) throw new CheckpointError(`${files.join(", ")}: missing tensor '${name}'`);
  }
  return new CausalLM(cfg, params);
}

/**
 * Writes a model folder (config.json, model.safetensors, and any extra files given, e.g. the
 * tokenizer's) atomically: into `dir.tmp-<pid>` first, then renamed onto `dir`.
 */
export function saveModel(
  model: CausalLM,
  dir: string,
  opts: { extraFiles?: Record<string, string>; copyFrom?: string[]; dtype?: "F32" | "F16" | "BF16" } = {},
): void {
  writeDirAtomically(dir, (tmp) => {
    writeFileSync(join(tmp, "config.json"), `${JSON.stringify(model.config.raw, null, 2)}\n`);
    const tensors: Record<string, { dtype?: "F32" | "F16" | "BF16"; shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of model.params)
      tensors[name] = { dtype: opts.dtype ?? "F32", shape: [...t.shape], data: t.data };
    writeSafetensors(join(tmp, "model.safetensors"), tensors, { format: "pt" });
    for (const [name, text] of Object.entries(opts.extraFiles ?? {})) writeFileSync(join(tmp, name), text);
    for (const src of opts.copyFrom ?? []) cpSync(src, join(tmp, basename(src)));
  });
}

/**
 * Fills a folder through `write(tmp)` into a temporary sibling (`.NAME.tmp-<pid>`), then renames
 * it onto `dir` (an existing `dir` is moved aside first and removed after): readers see the old
 * folder or the new one, never half of one; on error the temporary folder is removed.
 */
export function writeDirAtomically(dir: string, write: (tmp: string) => void): void {
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    write(tmp);
    if (existsSync(dir)) {
      const old = `${tmp}.old`;
      rmSync(old, { recursive: true, force: true });
      renameSync(dir, old);
      renameSync(tmp, dir);
      rmSync(old, { recursive: true, force: true });
    } else {
      mkdirSync(dirname(dir), { recursive: true });
      renameSync(tmp, dir);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
