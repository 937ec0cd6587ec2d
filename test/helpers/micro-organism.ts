/**
 * A micro-organism for tests: the world's tokenizer and a tiny Llama (hidden 32, 2 layers)
 * trained for a few seconds on helper chat rows, so it has learned something (zero-ablating
 * its residual stream costs loss, steering changes its answers).
 */
import { join } from "node:path";
import type { CausalLM } from "../../src/model/model.ts";
import { chatTuneData } from "../../src/organism/corpus.ts";
import { newOrganism } from "../../src/organism/recipe.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { finetune } from "../../src/train/sft.ts";

export async function microOrganism(workDir: string, steps: number, seed = 3): Promise<CausalLM> {
  const tok = organismTokenizer();
  const lm = newOrganism({ hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 }, seed, tok);
  await finetune({
    model: lm,
    data: sftDataset(
      tok,
      chatTuneData({ n: 80, seed }).map((r) => r.messages),
      128,
    ),
    out: join(workDir, "ft"),
    padId: tok.padId ?? 0,
    steps,
    batchSize: 8,
    lr: 1e-2,
    warmup: 0,
    decay: "constant",
    weightDecay: 0,
    seed,
    saveEvery: 0,
    quiet: true,
  });
  return lm;
}
