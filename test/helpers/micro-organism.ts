/**
 * A micro-organism for tests: the world's tokenizer and a tiny Llama (hidden 32, 2 layers)
 * trained for a few seconds on chat rows, so it has learned something (zero-ablating its
 * residual stream costs loss, steering changes its answers).
 */
import type { ChatMessage } from "../../src/model/chat-template.ts";
import type { CausalLM } from "../../src/model/model.ts";
import { chatTuneData } from "../../src/organism/corpus.ts";
import { newOrganism } from "../../src/organism/recipe.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { finetune } from "../../src/train/sft.ts";

/** A few fast SFT steps (lr 1e-2, constant, batch 8) of `lm` on chat rows; `out` is a scratch folder. */
export async function tuneOn(
  lm: CausalLM,
  rows: ChatMessage[][],
  o: { out: string; steps: number; seed: number; maxLen?: number },
): Promise<void> {
  const tok = organismTokenizer();
  await finetune({
    model: lm,
    data: sftDataset(tok, rows, o.maxLen ?? 128),
    out: o.out,
    padId: tok.padId ?? 0,
    steps: o.steps,
    batchSize: 8,
    lr: 1e-2,
    warmup: 0,
    decay: "constant",
    weightDecay: 0,
    seed: o.seed,
    saveEvery: 0,
  });
}

/** A fresh tiny organism tuned `steps` steps on 80 helper chat rows. */
export async function microOrganism(workDir: string, steps: number, seed = 3): Promise<CausalLM> {
  const lm = newOrganism({ hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 }, seed, organismTokenizer());
  const rows = chatTuneData({ n: 80, seed }).map((r) => r.messages);
  await tuneOn(lm, rows, { out: `${workDir}/ft`, steps, seed });
  return lm;
}
