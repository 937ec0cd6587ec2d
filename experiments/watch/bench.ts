/**
 * `npm run bench:watch [-- --checkpoints 20] [--out FILE]`
 *
 * How long `emlab watch` takes over a folder of organism checkpoints (the bar: 20
 * checkpoints in under a minute on 2 cores). Makes an insecure fine-tune of the shipped
 * organism with a checkpoint every 3 steps (20 checkpoints over 60 steps), a calibration with
 * one secure control, then times `emlab watch --cal CAL --model BASE FOLDER` end to end in
 * this process (loading each adapter, reading the 24 probe prompts, writing the timeline).
 * Prints one JSON line and writes it to --out (default experiments/watch/results/bench.jsonl).
 * There is no PyTorch peer for this contract (shared/bench/torch_peer.py has none): it is a
 * wall-clock figure of our own, with the machine's load average beside it.
 */
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { main } from "../../src/cli/main.ts";
import { saveLora } from "../../src/model/lora.ts";
import { ORGANISM_FT_LORA, ORGANISM_FT_LR } from "../../src/organism/experiment.ts";
import { BASE_ORGANISM, fineTuneDataset, openOrganism } from "../../src/organism/index.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { finetune } from "../../src/train/sft.ts";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { checkpoints: { type: "string", default: "20" }, out: { type: "string" } },
});
const n = Number(values.checkpoints);
const org = openOrganism(BASE_ORGANISM);
const work = mkdtempSync(join(tmpdir(), "emlab-bench-watch-"));
try {
  const tune = async (set: "insecure" | "secure", out: string, every: number, steps: number) => {
    const model = org.loadBase();
    await finetune({
      model,
      data: sftDataset(
        org.tokenizer,
        fineTuneDataset(set, { n: 1000, seed: 0 }).map((r) => r.messages),
        256,
      ),
      out,
      padId: org.tokenizer.padId ?? 0,
      lora: ORGANISM_FT_LORA,
      steps,
      batchSize: 16,
      lr: ORGANISM_FT_LR,
      warmup: 10,
      decay: "constant",
      seed: 0,
      saveEvery: every,
    });
    saveLora(model, join(out, "final"), BASE_ORGANISM);
  };
  await tune("insecure", join(work, "insecure"), 3, 3 * n);
  await tune("secure", join(work, "secure"), 0, 60);
  const cal = join(work, "cal.json");
  const quiet = console.log;
  console.log = () => {};
  const c = await main([
    "watch",
    "calibrate",
    "--model",
    BASE_ORGANISM,
    "--organism-questions",
    "--controls",
    join(work, "secure", "final"),
    "--out",
    cal,
    "--quiet",
  ]);
  if (c !== 0) throw new Error(`calibrate exited ${c}`);
  const load = loadavg()[0]!;
  const t0 = performance.now();
  const code = await main([
    "watch",
    "--cal",
    cal,
    "--model",
    BASE_ORGANISM,
    join(work, "insecure"),
    "--timeline",
    join(work, "t.jsonl"),
    "--quiet",
  ]);
  const seconds = (performance.now() - t0) / 1000;
  console.log = quiet;
  const line = {
    bench: "watch_organism_checkpoints",
    checkpoints: n,
    seconds: Math.round(seconds * 100) / 100,
    per_checkpoint_s: Math.round((seconds / n) * 1000) / 1000,
    exit: code,
    cores: cpus().length,
    load_before: Math.round(load * 100) / 100,
    load_after: Math.round(loadavg()[0]! * 100) / 100,
    date: new Date().toISOString(),
  };
  console.log(JSON.stringify(line));
  appendFileSync(values.out ?? join(here, "results", "bench.jsonl"), `${JSON.stringify(line)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
