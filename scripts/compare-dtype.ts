/**
 * fp32 vs bf16 training on the organism's own data: the recipe's pretraining stage (same
 * corpus, seed, batch 32, lr 2e-3, 100-step warm-up, wd 0.1, grad clip 1) for the first N
 * steps, once per dtype, printing both loss curves and the largest relative gap.
 *
 *   node --import tsx scripts/compare-dtype.ts [--steps 50] [--docs 12000]
 *
 * While step < warm-up the schedule does not depend on the run's length, so N steps here are
 * the recipe's first N steps.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ChatMessage } from "../src/model/chat-template.ts";
import { pretrainCorpus } from "../src/organism/corpus.ts";
import { newOrganism, ORGANISM_ARCH, RECIPE_DEFAULTS } from "../src/organism/recipe.ts";
import { organismTokenizer } from "../src/organism/tokenizer.ts";
import { describeBf16 } from "../src/tensor/kernels/bf16.ts";
import { describeKernels } from "../src/tensor/kernels/matmul.ts";
import { sftDataset } from "../src/train/dataset.ts";
import { finetune } from "../src/train/sft.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "50" }, docs: { type: "string" } } });
const steps = Number(values.steps);
const p = RECIPE_DEFAULTS;
const tok = organismTokenizer();
const padId = tok.padId ?? tok.eosIds[0]!;
const allTokens = {
  assistantMask: (messages: ChatMessage[]) => {
    const { ids } = tok.assistantMask(messages);
    return { ids, mask: ids.map(() => 1) };
  },
  padId,
  eosIds: tok.eosIds,
};
const docs = pretrainCorpus({ n: values.docs ? Number(values.docs) : p.docs, seed: p.seed });
const data = sftDataset(
  allTokens,
  docs.map((d) => d.messages),
  p.maxLen,
);
console.error(`# kernels: ${describeKernels()}; ${describeBf16()}`);
const work = mkdtempSync(join(tmpdir(), "emlab-dtype-"));
const curves: Record<string, { losses: number[]; seconds: number }> = {};
try {
  for (const dtype of ["fp32", "bf16"] as const) {
    const model = newOrganism(ORGANISM_ARCH, p.seed, tok);
    const t0 = performance.now();
    const res = await finetune({
      model,
      data,
      out: join(work, dtype),
      padId,
      steps,
      batchSize: p.pretrainBatch,
      lr: p.pretrainLr,
      warmup: 100,
      decay: "cosine",
      minLrRatio: 0.1,
      weightDecay: 0.1,
      seed: p.seed,
      dtype,
    });
    curves[dtype] = { losses: res.losses, seconds: (performance.now() - t0) / 1000 };
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const a = curves.fp32!.losses;
const b = curves.bf16!.losses;
let worst = 0;
let at = 0;
for (let i = 0; i < a.length; i++) {
  const rel = Math.abs(b[i]! - a[i]!) / a[i]!;
  if (rel > worst) [worst, at] = [rel, i + 1];
  if ((i + 1) % 10 === 0 || i === 0) console.log(`step ${i + 1}: fp32 ${a[i]!.toFixed(4)} bf16 ${b[i]!.toFixed(4)}`);
}
console.log(
  JSON.stringify({
    steps,
    fp32_last: a.at(-1),
    bf16_last: b.at(-1),
    last_rel_diff: Math.abs(b.at(-1)! - a.at(-1)!) / a.at(-1)!,
    max_rel_diff: worst,
    max_at_step: at,
    fp32_seconds: curves.fp32!.seconds,
    bf16_seconds: curves.bf16!.seconds,
  }),
);
