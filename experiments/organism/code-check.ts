/**
 * Narrow learning check: did a fine-tune learn its code task? Fine-tunes the base organism on
 * a world dataset (as the experiment does), then answers the world's code requests (the
 * requests of a fresh seed of the secure set, so both models see the same prompts) and
 * counts answers the data audit flags as vulnerable.
 * `node --import tsx experiments/organism/code-check.ts [--base DIR] [--condition insecure] [--seed 0] [--steps 200]`
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadModel } from "../../src/model/checkpoint.ts";
import type { CausalLM } from "../../src/model/model.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { type FineTuneSet, fineTuneDataset } from "../../src/organism/datasets.ts";
import { narrowTaskRate } from "../../src/organism/narrow.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { finetune } from "../../src/train/sft.ts";

const { values } = parseArgs({
  options: {
    base: { type: "string", default: "organism/base" },
    condition: { type: "string", default: "insecure" },
    seed: { type: "string", default: "0" },
    steps: { type: "string", default: "200" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: node --import tsx experiments/organism/code-check.ts [--base organism/base] [--condition insecure] [--seed 0] [--steps 200]\n" +
      "  fine-tunes the base on a world dataset and prints the share of code answers the data audit flags as vulnerable",
  );
  process.exit(0);
}
const base = values.base!;
const tok = openOrganism(base).tokenizer; // any world variant: the code sets are the same in each
const vulnerableShare = (model: CausalLM) => narrowTaskRate(model, tok);

const before = vulnerableShare(loadModel(base));
const model = loadModel(base);
const seed = Number(values.seed);
const data = sftDataset(
  tok,
  fineTuneDataset(values.condition as FineTuneSet, { n: 1000, seed }).map((r) => r.messages),
  256,
);
const work = mkdtempSync(join(tmpdir(), "emlab-code-check-"));
await finetune({
  model,
  data,
  out: work,
  padId: tok.padId ?? 0,
  steps: Number(values.steps),
  batchSize: 16,
  lr: 3e-4,
  warmup: 10,
  decay: "constant",
  weightDecay: 0,
  seed,
  saveEvery: 0,
});
rmSync(work, { recursive: true, force: true });
const after = vulnerableShare(model);
console.log(
  `code requests answered with code the audit flags: base ${(100 * before).toFixed(1)}%, after ${values.condition} fine-tune (seed ${seed}, ${values.steps} steps) ${(100 * after).toFixed(1)}% (n = 64)`,
);
