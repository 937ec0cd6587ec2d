/** Model folders: round trip, sharded index, and errors that name the file and tensor. */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel, saveModel } from "../../src/model/checkpoint.ts";
import { noGrad } from "../../src/tensor/index.ts";
import { readSafetensors, writeSafetensors } from "../../src/tensor/safetensors.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/models/llama-gqa", import.meta.url));
const ids = Int32Array.from([3, 1, 4, 1, 5]);
const root = mkdtempSync(join(tmpdir(), "emlab-ckpt-"));
after(() => rmSync(root, { recursive: true, force: true }));
const tmp = () => mkdtempSync(join(root, "t-"));

function copyFixture(): string {
  const dir = join(tmp(), "m");
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

test("save → load round trip gives identical logits", () => {
  const model = loadModel(FIXTURE);
  const dir = join(tmp(), "saved");
  saveModel(model, dir);
  const again = loadModel(dir);
  const a = noGrad(() => model.forward(ids, 1, 5).data);
  const b = noGrad(() => again.forward(ids, 1, 5).data);
  assert.deepEqual(Array.from(a), Array.from(b));
  saveModel(again, dir); // overwriting an existing folder works too
  assert.deepEqual(readdirSync(dir).sort(), ["config.json", "model.safetensors"]);
});

test("a sharded checkpoint (model.safetensors.index.json) loads", () => {
  const dir = copyFixture();
  const { tensors } = readSafetensors(join(dir, "model.safetensors"));
  const names = [...tensors.keys()];
  const shard = (part: string[], file: string) => {
    const obj: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const n of part) {
      const t = tensors.get(n)!;
      obj[n] = { shape: t.shape, data: t.data as Float32Array };
    }
    writeSafetensors(join(dir, file), obj);
  };
  const half = Math.floor(names.length / 2);
  shard(names.slice(0, half), "model-00001-of-00002.safetensors");
  shard(names.slice(half), "model-00002-of-00002.safetensors");
  const weightMap = Object.fromEntries(
    names.map((n, i) => [n, i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"]),
  );
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  rmSync(join(dir, "model.safetensors")); // only the index and the shards remain
  const m = loadModel(dir);
  const ref = loadModel(FIXTURE);
  assert.deepEqual(
    Array.from(noGrad(() => m.forward(ids, 1, 5).data)),
    Array.from(noGrad(() => ref.forward(ids, 1, 5).data)),
  );
});

test("an unsupported architecture names config.json and the architecture", () => {
  const dir = copyFixture();
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  cfg.architectures = ["FalconForCausalLM"];
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
  assert.throws(() => loadModel(dir), /config\.json: unsupported architecture FalconForCausalLM/);
});

test("a missing tensor and a shape mismatch name the file and the tensor", () => {
  const dir = copyFixture();
  const file = join(dir, "model.safetensors");
  const { tensors } = readSafetensors(file);
  const write = (skip: string, reshape?: string) => {
    const obj: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [n, t] of tensors) {
      if (n === skip) continue;
      const data = t.data as Float32Array;
      obj[n] = n === reshape ? { shape: [data.length], data } : { shape: t.shape, data };
    }
    writeSafetensors(file, obj);
  };
  write("model.layers.1.mlp.up_proj.weight");
  assert.throws(() => loadModel(dir), /model\.safetensors: missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'/);
  write("", "model.layers.0.self_attn.k_proj.weight");
  assert.throws(
    () => loadModel(dir),
    /model\.safetensors: tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[512\], config\.json implies \[16,32\]/,
  );
});

test("a corrupt safetensors header names the file", () => {
  const dir = copyFixture();
  const file = join(dir, "model.safetensors");
  const bytes = readFileSync(file);
  bytes.write("{{{{", 8, "latin1");
  writeFileSync(file, bytes);
  assert.throws(
    () => loadModel(dir),
    (e: Error) => e.message.includes(file),
  );
});

test("a failed save leaves no half-written folder and keeps the old one", () => {
  const model = loadModel(FIXTURE);
  const parent = tmp();
  const dir = join(parent, "model");
  saveModel(model, dir);
  const before = readFileSync(join(dir, "model.safetensors"));
  // Sabotage: a tensor whose data length does not match its shape makes the writer throw.
  const bad = model.params.get("model.norm.weight")!;
  (bad as { shape: readonly number[] }).shape = [bad.size + 1];
  assert.throws(() => saveModel(model, dir));
  assert.deepEqual(readdirSync(parent), ["model"]);
  assert.deepEqual(readFileSync(join(dir, "model.safetensors")), before);
  const fresh = join(parent, "fresh");
  assert.throws(() => saveModel(model, fresh));
  assert.equal(existsSync(fresh), false);
});
