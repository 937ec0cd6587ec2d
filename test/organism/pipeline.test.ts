/** A micro-organism trained in seconds, then the whole experiment pipeline on it. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../../src/model/checkpoint.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { runOrganismExperiment } from "../../src/organism/experiment.ts";
import { trainBaseOrganism } from "../../src/organism/recipe.ts";

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
    quiet: true,
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
