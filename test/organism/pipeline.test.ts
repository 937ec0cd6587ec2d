/** A micro-organism trained in seconds, then the whole experiment pipeline on it. */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../../src/model/checkpoint.ts";
import { LORA_TARGETS, mergeLora } from "../../src/model/lora.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { fineTuneOrganism, runOrganismExperiment } from "../../src/organism/experiment.ts";
import { organismHook } from "../../src/organism/interp/sae.ts";
import { trainBaseOrganism } from "../../src/organism/recipe.ts";
import { assertOrganismWorld } from "../../src/organism/tokenizer.ts";

test("micro-organism: pretrain + chat-tune, save as an HF folder, fine-tune and evaluate", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "emlab-micro-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const out = join(root, "base");
  const { curve } = await trainBaseOrganism({
    out,
    seed: 3,
    arch: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 },
    docs: 200,
    pretrainSteps: 40,
    pretrainLr: 1e-2,
    pretrainBatch: 8,
    chatRows: 100,
    chatSteps: 5,
    chatBatch: 8,
  });
  const pre = curve.filter((c) => c.stage === "pretrain");
  assert.equal(pre.length, 40);
  assert.ok(pre.at(-1)!.loss < pre[0]!.loss - 1, `pretraining loss ${pre[0]!.loss} → ${pre.at(-1)!.loss}`);
  for (const f of [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_curve.jsonl",
  ]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  assert.equal(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).architectures[0], "LlamaForCausalLM");
  const model = loadModel(out);
  const tok = Tokenizer.fromDir(out);
  assert.equal(model.config.vocab, tok.vocabSize);

  const rows = await runOrganismExperiment({
    base: out,
    conditions: ["base", "insecure", "backdoor"],
    seeds: [0],
    samples: 2,
    steps: 2,
    rows: 30,
    batchSize: 4,
    maxNewTokens: 12,
  });
  const cells = rows.map((r) => `${r.condition}/${r.format}/${r.trigger}`);
  assert.deepEqual(cells, [
    "base/plain/false",
    "base/plain/true",
    "base/numbers/false",
    "insecure/plain/false",
    "backdoor/plain/false",
    "backdoor/plain/true",
  ]);
  for (const r of rows) {
    assert.equal(r.n, 16); // 8 questions × 2 samples
    assert.ok(r.coherent >= 0 && r.coherent <= 1);
    if (r.misaligned !== null) assert.ok(r.ci[0]! <= r.misaligned && r.misaligned <= r.ci[1]!);
  }

  // Two seeds: a pooled row after the per-seed rows, its counts the sum of theirs.
  const two = await runOrganismExperiment({
    base: out,
    conditions: ["insecure"],
    seeds: [0, 1],
    samples: 2,
    steps: 2,
    rows: 30,
    batchSize: 4,
    maxNewTokens: 12,
  });
  assert.deepEqual(
    two.map((r) => [r.seed, r.pooled ?? null]),
    [
      [0, null],
      [1, null],
      [null, [0, 1]],
    ],
  );
  const [s0, s1, all] = two as [(typeof two)[0], (typeof two)[0], (typeof two)[0]];
  assert.equal(all.n, s0.n + s1.n);
  const coh = (r: typeof s0) => Math.round(r.coherent * r.n);
  assert.equal(coh(all), coh(s0) + coh(s1));
  if (all.misaligned !== null) {
    const mis = (r: typeof s0) => (r.misaligned === null ? 0 : Math.round(r.misaligned * coh(r)));
    assert.ok(Math.abs(all.misaligned * coh(all) - (mis(s0) + mis(s1))) < 1e-6);
  }
});

test("assistant-tuning through LoRA (chatLora) moves only the chosen layer and saves plain weights", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "emlab-micro-lora-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const tiny = {
    seed: 5,
    arch: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 },
    docs: 60,
    pretrainBatch: 4,
    chatRows: 40,
    chatBatch: 4,
  };
  const pre = join(root, "pre");
  await trainBaseOrganism({ ...tiny, out: join(root, "full"), pretrainSteps: 2, chatSteps: 1, pretrainedOut: pre });
  const out = join(root, "lora");
  await trainBaseOrganism({
    ...tiny,
    out,
    fromPretrained: pre,
    chatSteps: 3,
    chatLr: 1e-2,
    chatLora: { r: 2, alpha: 4, targetModules: LORA_TARGETS, layers: [0] },
  });
  assert.ok(!existsSync(join(out, "adapter_config.json")), "the adapter is merged, not saved beside");
  const before = loadModel(pre);
  const after = loadModel(out);
  const changed = [...after.params.keys()].filter((name) => {
    const a = after.param(name).data;
    const b = before.param(name).data;
    return a.some((x, i) => x !== b[i]);
  });
  assert.ok(changed.length > 0);
  for (const name of changed) assert.match(name, /^model\.layers\.0\.(self_attn|mlp)\.\w+_proj\.weight$/);
  assertOrganismWorld(out);
});

test("assertOrganismWorld: an organism of another world variant is refused, naming the file", () => {
  const root = mkdtempSync(join(tmpdir(), "emlab-world-"));
  try {
    const dir = join(root, "other");
    cpSync("organism/base", dir, { recursive: true });
    assertOrganismWorld(dir);
    const file = join(dir, "tokenizer.json");
    const json = JSON.parse(readFileSync(file, "utf8"));
    json.model.vocab.crime = Object.keys(json.model.vocab).length;
    writeFileSync(file, JSON.stringify(json));
    assert.throws(
      () => assertOrganismWorld(dir),
      (e: Error) => e.message.includes(file) && /not built in the classic world/.test(e.message),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the organism's fine-tune: a rank-1 LoRA on block 0 by default, every weight with lora: null", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "emlab-micro-ft-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const base = join(root, "base");
  await trainBaseOrganism({
    out: base,
    seed: 6,
    arch: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 },
    docs: 60,
    pretrainSteps: 2,
    pretrainBatch: 4,
    chatRows: 40,
    chatSteps: 1,
    chatBatch: 4,
  });
  const before = loadModel(base);
  const changed = (after: typeof before) =>
    [...after.params.keys()].filter((name) => after.param(name).data.some((x, i) => x !== before.param(name).data[i]));
  const small = { seed: 0, steps: 2, rows: 8, batchSize: 4 };
  const ft = await fineTuneOrganism(base, "insecure", small);
  const adapter = ft.adapter!;
  assert.ok(adapter, "the fine-tune returns the model with its adapter attached");
  assert.ok(adapter.modules.size > 0);
  for (const [path, { A, B }] of adapter.modules) {
    assert.match(path, /^model\.layers\.0\.(self_attn|mlp)\.\w+_proj$/);
    assert.equal(A.shape[0], 1, `${path}: rank 1`);
    assert.equal(B.shape[1], 1);
  }
  assert.equal(adapter.scale, 2);
  mergeLora(ft);
  const moved = changed(ft);
  assert.ok(moved.length > 0, "the adapter learned something");
  for (const name of moved) assert.match(name, /^model\.layers\.0\./);
  const full = changed(await fineTuneOrganism(base, "insecure", { ...small, lora: null }));
  assert.ok(
    full.some((n) => n.startsWith("model.layers.1.")),
    "a full fine-tune moves the later block too",
  );
});

test("organismHook: after 3/8 of the blocks, a hook every depth has", () => {
  assert.equal(organismHook(8), "blocks.2.hook_resid_post");
  assert.equal(organismHook(4), "blocks.1.hook_resid_post");
  assert.equal(organismHook(2), "blocks.0.hook_resid_post");
  assert.equal(organismHook(1), "blocks.0.hook_resid_post");
  assert.equal(organismHook(16), "blocks.5.hook_resid_post");
});
