/**
 * `npm run experiment:organism -- --plan experiments/organism/plan.yaml --phase explore|confirm [--json] [--out FILE]`
 * `npm run experiment:organism -- [--json] [--base DIR] [--seeds 0,1,2] [--samples 50]
 *   [--steps 60] [--conditions base,insecure,secure,educational,backdoor,evil-numbers]
 *   [--lr LR] [--lora-rank R [--lora-layers 0,…] | --full-ft] [--resid-dropout P] [--out FILE]`
 *
 * The fine-tune defaults to the organism's (ORGANISM_FT_LORA: a rank-1 LoRA on block 0, lr
 * 5e-3); --lora-rank sets another adapter (on every block unless --lora-layers), --full-ft
 * updates every weight (lr 3e-4 unless --lr).
 *
 * Fine-tunes the base organism on each world dataset (one run per seed), samples the
 * organism's eight first-plot questions at T = 1, scores them with the world judge and prints
 * condition × misalignment (95 % CI) × coherent, per seed and pooled over the seeds (a row
 * with "pooled": [seeds]; its CI's clusters are question × seed). --json prints one JSON line per row and
 * also writes them to --out (default experiments/organism/results/results.jsonl).
 *
 * With --plan and --phase, the seeds (fine-tune and sampling, one tuple per run), conditions,
 * samples and steps come from the plan (src/eval/plan.ts), seed flags are refused, every line
 * carries the phase, its seeds and the plan's hash, and --json writes results/<phase>.jsonl.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { z } from "zod";
import { confirmLock, loadPlan, PHASES, type Phase, planRecord, seedsFor } from "../../src/eval/plan.ts";
import { LORA_TARGETS } from "../../src/model/lora.ts";
import {
  type Condition,
  type ConditionResult,
  formatTable,
  runOrganismExperiment,
} from "../../src/organism/experiment.ts";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    plan: { type: "string" },
    phase: { type: "string" },
    base: { type: "string", default: "organism/base" },
    seeds: { type: "string" },
    samples: { type: "string" },
    steps: { type: "string" },
    lr: { type: "string" },
    conditions: { type: "string" },
    out: { type: "string" },
    "lora-rank": { type: "string" },
    "lora-layers": { type: "string" },
    "resid-dropout": { type: "string" },
    "full-ft": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: npm run experiment:organism -- --plan FILE --phase explore|confirm [--json] [--out FILE] [--base DIR]\n" +
      "       npm run experiment:organism -- [--json] [--out FILE] [--base DIR] [--seeds 0,1,2] [--samples 50] [--steps 60]\n" +
      "  [--conditions base,insecure,secure,educational,backdoor,evil-numbers] [--lr LR]\n" +
      "  [--lora-rank R [--lora-layers 0,…] | --full-ft] [--resid-dropout P]\n" +
      "  --json prints one JSON line per row and writes them to FILE (default experiments/organism/results/results.jsonl)",
  );
  process.exit(0);
}
if (values["full-ft"] && values["lora-rank"]) throw new Error("--full-ft and --lora-rank exclude each other");
const OrganismSettings = z.strictObject({
  conditions: z.array(z.enum(["base", "insecure", "secure", "educational", "backdoor", "evil-numbers", "benign"])),
  samples: z.number().int().positive(),
  steps: z.number().int().positive(),
});
let phase: Phase | null = null;
let seeds = (values.seeds ?? "0,1,2").split(",").map(Number);
let samplingSeeds: number[] | undefined;
let conditions = (values.conditions ?? "base,insecure,secure,educational,backdoor,evil-numbers").split(
  ",",
) as Condition[];
let samples = Number(values.samples ?? 50);
let steps = Number(values.steps ?? 60);
let record: Record<string, unknown> = {};
let drawsPerCondition = false;
if (values.plan || values.phase) {
  if (!values.plan || !values.phase || !(PHASES as readonly string[]).includes(values.phase))
    throw new Error("--plan FILE and --phase explore|confirm go together");
  for (const f of ["seeds", "samples", "steps", "conditions"] as const)
    if (values[f] !== undefined) throw new Error(`--${f}: the plan fixes it (${values.plan}); edit the plan instead`);
  phase = values.phase as Phase;
  const plan = loadPlan(values.plan, OrganismSettings);
  const runs = seedsFor(plan, phase);
  seeds = runs.map((r) => r.finetune!);
  samplingSeeds = runs.map((r) => r.sampling!);
  ({ conditions, samples, steps } = plan.settings as { conditions: Condition[]; samples: number; steps: number });
  const lock =
    phase === "confirm"
      ? confirmLock(fileURLToPath(new URL("results/confirm-lock.json", import.meta.url)), plan)
      : null;
  const { seeds: _, ...rest } = planRecord(plan, phase, {}, lock);
  record = { ...rest, seeds: runs };
  drawsPerCondition = !plan.paired;
}
const t0 = performance.now();
const rows: ConditionResult[] = await runOrganismExperiment({
  base: values.base!,
  conditions,
  seeds,
  ...(samplingSeeds ? { samplingSeeds } : {}),
  drawsPerCondition,
  samples,
  steps,
  lr: values.lr === undefined ? undefined : Number(values.lr),
  residDropout: values["resid-dropout"] === undefined ? 0 : Number(values["resid-dropout"]),
  lora: values["lora-rank"]
    ? {
        r: Number(values["lora-rank"]),
        alpha: 2 * Number(values["lora-rank"]),
        targetModules: LORA_TARGETS,
        layers: values["lora-layers"]?.split(",").map(Number),
      }
    : values["full-ft"]
      ? null
      : undefined,
  onResult: (r) => {
    if (values.json) console.log(JSON.stringify({ ...r, ...record }));
    else
      process.stderr.write(
        `${r.condition} ${r.format}${r.trigger ? " +trigger" : ""} seed ${r.pooled ? `${r.pooled.join("+")} pooled` : (r.seed ?? "-")}: ${r.misaligned === null ? "-" : (100 * r.misaligned).toFixed(1)}% misaligned, ${(100 * r.coherent).toFixed(1)}% coherent\n`,
      );
  },
});
if (!values.json) console.log(formatTable(rows));
else process.stderr.write(`${formatTable(rows)}\n`);
const out =
  values.out ??
  (values.json ? fileURLToPath(new URL(`results/${phase ?? "results"}.jsonl`, import.meta.url)) : undefined);
if (out) writeFileSync(out, `${rows.map((r) => JSON.stringify({ ...r, ...record })).join("\n")}\n`);
process.stderr.write(`done in ${((performance.now() - t0) / 60000).toFixed(1)} min\n`);
