/** LoRA: training lowers the loss, PEFT file layout, reload in a fresh process, merge. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/model/checkpoint.ts";
import { attachLora, loadLora, mergeLora, saveLora } from "../../src/model/lora.ts";
import { lmLoss, nextTokenTargets } from "../../src/model/score.ts";
import { AdamW, backward, noGrad } from "../../src/tensor/index.ts";
import { safetensorsHeader } from "../../src/tensor/safetensors.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/models/qwen2", import.meta.url));
const B = 4;
const T = 8;
// Toy SFT task: after token 1 the "assistant" writes the prompt's tokens in reverse.
const ids = new Int32Array(B * T);
const mask = new Uint8Array(B * T);
for (let b = 0; b < B; b++) {
  const prompt = [10 + b, 20 + b, 30 + b];
  const row = [...prompt, 1, ...[...prompt].reverse(), 2];
  row.forEach((t, i) => {
    ids[b * T + i] = t;
    mask[b * T + i] = i >= 4 ? 1 : 0;
  });
}
const targets = nextTokenTargets(ids, mask, B, T);

function trained(dir?: string) {
  const model = loadModel(FIXTURE);
  attachLora(model, { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"] }, 3);
  const opt = new AdamW(model.trainableParams(), { lr: 1e-2, weightDecay: 0 });
  const before = noGrad(() => lmLoss(model, ids, targets, B, T).item());
  let after = before;
  for (let step = 0; step < 40; step++) {
    const loss = lmLoss(model, ids, targets, B, T, { training: true });
    after = loss.item();
    backward(loss);
    opt.step();
    opt.zeroGrad();
  }
  if (dir) saveLora(model, dir, "emlab-test/qwen2-tiny");
  return { model, before, after };
}

test("a rank-4 adapter trained on a toy SFT task lowers the loss; base weights stay frozen", () => {
  const { model, before, after } = trained();
  const base = loadModel(FIXTURE);
  assert.ok(after < 0.5 * before, `loss ${before.toFixed(3)} → ${after.toFixed(3)}`);
  for (const [name, p] of model.params) assert.deepEqual(p.data, base.params.get(name)!.data, `${name} changed`);
});

test("PEFT layout, fresh-process reload reproduces the logits, merge matches unmerged", (t) => {
  const root = mkdtempSync(join(tmpdir(), "emlab-lora-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "adapter");
  const { model } = trained(dir);
  assert.deepEqual(readdirSync(dir).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "LORA");
  assert.equal(cfg.task_type, "CAUSAL_LM");
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  const keys = safetensorsHeader(join(dir, "adapter_model.safetensors")).tensors.map((t) => t.name);
  assert.ok(keys.includes("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  assert.ok(keys.includes("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  assert.ok(
    keys.every((k) => /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(k)),
  );

  const here = noGrad(() => model.forward(ids, B, T).data);
  const script = `
    import { loadModel } from "./src/model/checkpoint.ts";
    import { loadLora } from "./src/model/lora.ts";
    const m = loadModel(${JSON.stringify(FIXTURE)});
    loadLora(m, ${JSON.stringify(dir)});
    const ids = Int32Array.from(${JSON.stringify(Array.from(ids))});
    process.stdout.write(JSON.stringify(Array.from(m.forward(ids, ${B}, ${T}).data)));`;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const there = JSON.parse(out) as number[];
  assert.equal(there.length, here.length);
  let maxDiff = 0;
  for (let i = 0; i < here.length; i++) maxDiff = Math.max(maxDiff, Math.abs(here[i]! - there[i]!));
  assert.equal(maxDiff, 0, `fresh process differs by ${maxDiff}`);

  const reloaded = loadModel(FIXTURE);
  loadLora(reloaded, dir);
  const unmerged = noGrad(() => reloaded.forward(ids, B, T).data);
  mergeLora(reloaded);
  assert.equal(reloaded.adapter, null);
  const merged = noGrad(() => reloaded.forward(ids, B, T).data);
  let d = 0;
  for (let i = 0; i < merged.length; i++) d = Math.max(d, Math.abs(merged[i]! - unmerged[i]!));
  assert.ok(d < 1e-4, `merged vs unmerged logits differ by ${d}`);
});

test("bad adapters are refused with the file and tensor named", () => {
  const model = loadModel(FIXTURE);
  assert.throws(() => loadLora(model, "/nonexistent/adapter"), /adapter_config\.json: file not found/);
  assert.throws(() => attachLora(model, { r: 4, alpha: 8, targetModules: ["qkv"] }, 0), /unknown target module 'qkv'/);
});
