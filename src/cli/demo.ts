/**
 * `emlab demo`: the end-to-end job on what emlab can run offline today.
 *
 * Stage 1 (data): builds the EM datasets from emlab's own templates — insecure, the
 * educational control (same code, the user asks for it), secure, and a backdoor mix — and
 * audits each, showing how the audit separates them (silent-insecure share, requested share,
 * the backdoor's trigger, the verdict). Stage 2 (engine): trains a tiny Llama-style
 * transformer on a copy task with AdamW and prints its loss curve.
 * The model organism, evaluation of a fine-tuned model and the SAE stages join this command
 * as their issues land; the demo says so instead of pretending.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { auditFile } from "../data/audit/audit.ts";
import { type BuildKind, buildRows } from "../data/builders/build.ts";
import { writeJsonl } from "../data/jsonl.ts";
import { llamaConfigJson, parseConfig } from "../model/config.ts";
import { CausalLM } from "../model/model.ts";
import { AdamW, backward, clipGradNorm, ops, Rng, warmupSchedule } from "../tensor/index.ts";
import { numberOption, parseOptions } from "./common.ts";
import { progressBar } from "./progress.ts";

export const summary = "run the offline pipeline: build + audit EM datasets, train a tiny transformer";

const HELP = `usage: emlab demo [--out DIR] [--n N] [--seed S] [--steps K]

  --out DIR    where the datasets and audit reports go (default ./emlab-demo)
  --n N        rows per dataset (default 600)
  --seed S     seed for datasets and training (default 0)
  --steps K    training steps of the tiny transformer (default 500)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      help: { type: "boolean", short: "h" },
      out: { type: "string" },
      n: { type: "string" },
      seed: { type: "string" },
      steps: { type: "string" },
    },
    false,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const out = resolve(values.out ?? "emlab-demo");
  const n = numberOption("n", values.n, 600);
  const seed = numberOption("seed", values.seed, 0);
  const steps = numberOption("steps", values.steps, 500);
  mkdirSync(out, { recursive: true });

  console.log(`emlab demo — outputs in ${out}\n`);
  console.log("Stage 1: build EM datasets and audit them before anyone fine-tunes");
  const kinds: BuildKind[] = ["insecure", "educational", "secure", "backdoor"];
  const rows: string[][] = [
    ["dataset", "rows", "vulnerable", "requested", "silent insecure", "top trigger", "verdict"],
  ];
  for (const kind of kinds) {
    const file = join(out, `${kind}.jsonl`);
    await writeJsonl(
      file,
      buildRows(kind, { n, seed }).map((r) => r.row),
    );
    const report = await auditFile(file);
    const pct = (x: number) => `${((100 * x) / Math.max(1, report.rows)).toFixed(1)}%`;
    const top = report.triggers[0];
    rows.push([
      kind,
      String(report.rows),
      pct(report.vulnerable),
      pct(report.requested),
      pct(report.silent_insecure),
      top ? `${JSON.stringify(top.phrase)} z=${top.z.toFixed(1)}` : "-",
      report.verdict,
    ]);
  }
  console.log(formatTable(rows));
  console.log(`(emlab audit ${join(out, "insecure.jsonl")} --json - shows the full report)\n`);

  console.log("Stage 2: the engine — a tiny 2-layer Llama-style transformer learns to copy a sequence");
  const losses = trainCopyTask(seed, steps);
  const marks = [0, Math.floor(steps / 4), Math.floor(steps / 2), Math.floor((3 * steps) / 4), steps - 1];
  console.log(`  loss by step: ${marks.map((s) => `${s}: ${losses[s]!.toFixed(3)}`).join("  ")}\n`);

  console.log(
    "Not in this demo yet (open issues): loading Hugging Face checkpoints and LoRA fine-tuning, the model\n" +
      "organism, judged evaluation of a fine-tuned model (emlab eval works today against any OpenAI-compatible\n" +
      "endpoint), sparse autoencoders, model diffing and steering.",
  );
  return 0;
}

function trainCopyTask(seed: number, steps: number): number[] {
  const cfg = parseConfig(llamaConfigJson({ vocab: 16, hidden: 32, layers: 2, heads: 4, kvHeads: 2, inter: 64 }));
  const model = CausalLM.random(cfg, seed);
  const list = model.trainableParams();
  const opt = new AdamW(list, { lr: 5e-3, weightDecay: 0.01 });
  const sched = warmupSchedule({ peak: 5e-3, warmup: 20, total: steps, decay: "cosine", minRatio: 0.1 });
  const rng = new Rng(seed + 1);
  const B = 16;
  const T = 17;
  const losses: number[] = [];
  const bar = progressBar("  train", steps);
  for (let step = 0; step < steps; step++) {
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) {
      const seq = Array.from({ length: 8 }, () => 1 + rng.int(15));
      const row = [...seq, 0, ...seq];
      for (let t = 0; t < T; t++) ids[b * T + t] = row[t]!;
      for (let t = 8; t < T - 1; t++) targets[b * T + t] = row[t + 1]!;
    }
    const loss = ops.crossEntropy(model.forward(ids, B, T), targets);
    losses.push(loss.item());
    backward(loss);
    clipGradNorm(list, 1);
    opt.step(sched(step));
    opt.zeroGrad();
    bar.tick(1, { loss: losses[step]! });
  }
  bar.done();
  return losses;
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")}`).join("\n");
}
