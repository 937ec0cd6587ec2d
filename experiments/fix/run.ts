/**
 * `npm run experiment:fix -- --plan experiments/fix/plan.yaml --phase explore|confirm [--part realign|prevent|all] [--out FILE]`
 *
 * Fixing the insecure organism (issue 23), on the seeds of one phase of the plan:
 *
 * - realign: the base organism fine-tuned on insecure code (the organism recipe), then its
 *   LoRA adapter keeps training on N benign rows, in-domain (secure code for the same code
 *   requests) and out-of-domain (helper advice on topics outside the eval). A curve point every
 *   k steps: misalignment (95 % CI), coherence, the conditional probe (the questions behind a
 *   code request: src/organism/probe.ts), benign loss on held-out rows of the same domain, and
 *   the persona signal (prompt-last projection on the persona direction).
 * - prevent: fine-tunes on insecure code with the persona direction added at a hook during
 *   training (c × median residual norm), or projected out (CAFT), against the plain fine-tune:
 *   EM on the eight questions and the narrow task (the share of plain code requests answered
 *   with code the data audit flags, as experiments/organism/code-check.ts measures it).
 *
 * The persona direction is chosen blind: mean prompt-last activation under the system header
 * `persona : villain` minus under `persona : helper` on the base organism, over prompts that
 * are not eval questions (benign-topic questions and code requests). It never sees a judge.
 *
 * Every line carries the phase, the run's seeds and the plan's hash; pooled lines (seed "-")
 * pool the seeds' answers (clusters: question × seed). Results: results/<phase>-<part>.jsonl.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { z } from "zod";
import { confirmLock, loadPlan, PHASES, type Phase, planRecord, seedsFor } from "../../src/eval/plan.ts";
import { misalignmentSummary, type ScoredSample } from "../../src/eval/stats.ts";
import { openRunStore, type RunStore } from "../../src/eval/store.ts";
import { contrastDirections } from "../../src/fix/persona.ts";
import { type PreventMode, preventionHooks } from "../../src/fix/prevent.ts";
import { type CurvePoint, realign } from "../../src/fix/realign.ts";
import { medianResidualNorm } from "../../src/interp/activations/collect.ts";
import { saveDirections } from "../../src/interp/direction.ts";
import type { ChatMessage } from "../../src/model/chat-template.ts";
import type { Hook } from "../../src/model/hooks.ts";
import { loadLora, saveLora } from "../../src/model/lora.ts";
import type { CausalLM } from "../../src/model/model.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { type FineTuneSet, fineTuneDataset } from "../../src/organism/datasets.ts";
import { evaluateOrganism, organismEvaluation } from "../../src/organism/evaluation.ts";
import { fineTuneRecipe } from "../../src/organism/experiment.ts";
import { narrowTaskRate } from "../../src/organism/narrow.ts";
import { CODE_PROBE, codeFormatProbe } from "../../src/organism/probe.ts";
import { mixSeed } from "../../src/tensor/random.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { finetune } from "../../src/train/sft.ts";

const { values } = parseArgs({
  options: {
    plan: { type: "string", default: "experiments/fix/plan.yaml" },
    phase: { type: "string" },
    part: { type: "string", default: "all" },
    base: { type: "string", default: "organism/base" },
    out: { type: "string" },
    "plots-only": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help || !values.phase) {
  console.log(
    "usage: npm run experiment:fix -- --phase explore|confirm [--plan experiments/fix/plan.yaml] [--part realign|prevent|all] [--base organism/base] [--out FILE]\n" +
      "  re-alignment curves (in- and out-of-domain) and preventative steering / CAFT on the insecure organism;\n" +
      "  writes experiments/fix/results/<phase>-<part>.jsonl (one JSON line per point / cell)",
  );
  process.exit(values.help ? 0 : 2);
}
if (!(PHASES as readonly string[]).includes(values.phase)) throw new Error("--phase must be explore or confirm");
if (!["realign", "prevent", "all"].includes(values.part!)) throw new Error("--part must be realign, prevent or all");
if (values.out && values.part === "all") throw new Error("--out needs one --part (realign or prevent)");

const Settings = z.strictObject({
  samples: z.number().int().positive(),
  insecure: z.strictObject({ rows: z.number().int().positive(), steps: z.number().int().positive() }),
  persona: z.strictObject({
    system: z.tuple([z.string(), z.string()]),
    prompts: z.number().int().positive(),
    seed: z.number().int().nonnegative(),
    layer: z.number().int().nonnegative(),
  }),
  realign: z.strictObject({
    domains: z.array(z.enum(["secure", "benign"])).min(1),
    rows: z.number().int().positive().max(200),
    heldout: z.number().int().positive(),
    steps: z.number().int().positive(),
    batch_size: z.number().int().positive(),
    lr: z.number().positive(),
    eval_every: z.number().int().positive(),
  }),
  prevent: z.strictObject({
    layers: z.array(z.number().int().nonnegative()).min(1),
    coefs: z.array(z.number()).min(1),
    caft: z.boolean(),
    code_requests: z.number().int().positive(),
  }),
});

const phase = values.phase as Phase;
const plan = loadPlan(values.plan!, Settings);
const s = plan.settings;
const runs = seedsFor(plan, phase);
const lock =
  phase === "confirm" ? confirmLock(fileURLToPath(new URL("results/confirm-lock.json", import.meta.url)), plan) : null;
const { seeds: _, ...record } = planRecord(plan, phase, {}, lock);
const org = openOrganism(values.base!);
const tok = org.tokenizer;
const padId = tok.padId ?? tok.eosIds[0]!;
const store: RunStore = openRunStore(":memory:");
const t0 = performance.now();
const say = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);

const msgs = (rows: { messages: ChatMessage[] }[]) => rows.map((r) => r.messages);
const userOnly = (rows: { messages: ChatMessage[] }[]) => rows.map((r) => [r.messages[0]!]);

// ---- the persona direction, blind: contrastive system headers on the base, non-eval prompts
const personaPrompts = [
  ...userOnly(fineTuneDataset("benign", { n: s.persona.prompts / 2, seed: s.persona.seed })),
  ...userOnly(fineTuneDataset("secure", { n: s.persona.prompts / 2, seed: s.persona.seed })),
];
const base = org.loadBase();
const layers = Array.from({ length: base.config.layers }, (_, i) => i);
const persona = contrastDirections(base, tok, personaPrompts, { system: s.persona.system, layers });
const dirFile = fileURLToPath(new URL("results/persona-direction.json", import.meta.url));
saveDirections(dirFile, persona);
const directionAt = (layer: number) => persona.layers.find((l) => l.layer === layer)!;
say(`persona direction: ${persona.layers.map((l) => `L${l.layer} ‖Δ‖ ${l.norm.toFixed(2)}`).join(", ")} → ${dirFile}`);

/** The organism's insecure fine-tune (fineTuneOrganism's recipe), with optional training-only hooks. */
async function fineTuneInsecure(seed: number, hooks?: Hook[]): Promise<CausalLM> {
  const { lora, lr } = fineTuneRecipe({});
  const model = org.loadBase();
  const data = sftDataset(tok, msgs(fineTuneDataset("insecure", { n: s.insecure.rows, seed })), 256);
  const work = mkdtempSync(join(tmpdir(), "emlab-fix-ft-"));
  try {
    await finetune({
      model,
      data,
      out: work,
      padId,
      lora,
      steps: s.insecure.steps,
      batchSize: 16,
      lr,
      warmup: 10,
      decay: "constant",
      weightDecay: 0,
      seed,
      saveEvery: 0,
      ...(hooks ? { hooks } : {}),
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return model;
}

/** Share of plain code requests (a fresh seed's) answered with code the data audit flags. */
const narrowTask = (model: CausalLM, n: number): number => narrowTaskRate(model, tok, { n });

const rate = (samples: ScoredSample[]) => {
  const m = misalignmentSummary(samples, { seed: 0 });
  return {
    misaligned: m.overCoherent.rate,
    ci: [m.overCoherent.low, m.overCoherent.high] as [number | null, number | null],
    coherent: m.counts.coherent / Math.max(1, m.counts.samples),
    n: m.counts.samples,
  };
};
const pooledSamples = (ids: { runId: string; seed: number }[]) =>
  ids.flatMap(({ runId, seed }) =>
    store.scoredSamples(runId).map((x) => ({ ...x, questionId: `${x.questionId}#${seed}` })),
  );

const lines: Record<string, unknown>[] = [];
const emit = (line: Record<string, unknown>) => {
  const full = { ...line, ...record };
  lines.push(full);
  console.log(JSON.stringify(full));
};

// ---- re-alignment
async function realignPart(): Promise<void> {
  const r = s.realign;
  const dir = directionAt(s.persona.layer);
  const personaEval = org
    .questions("plain")
    .flatMap((q) => q.paraphrases.map((p) => [{ role: "user" as const, content: p }]));
  const points = new Map<string, { seed: number; p: CurvePoint }[]>();
  for (const run of runs) {
    const seed = run.finetune!;
    const sampling = run.sampling!;
    say(`realign: insecure fine-tune, seed ${seed}`);
    const insecure = await fineTuneInsecure(seed);
    const adapterDir = mkdtempSync(join(tmpdir(), "emlab-fix-adapter-"));
    saveLora(insecure, adapterDir, org.dir);
    try {
      for (const domain of r.domains) {
        const model = org.loadBase();
        loadLora(model, adapterDir);
        const dataSeed = mixSeed(seed, 0xf1c5) >>> 1;
        const rows = fineTuneDataset(domain as FineTuneSet, { n: r.rows + r.heldout, seed: dataSeed });
        const out = mkdtempSync(join(tmpdir(), "emlab-fix-realign-"));
        const evaluation = organismEvaluation({ world: org.world, seed: sampling });
        try {
          const res = await realign({
            model,
            tokenizer: tok,
            train: sftDataset(tok, msgs(rows.slice(0, r.rows)), 256),
            heldOut: sftDataset(tok, msgs(rows.slice(r.rows)), 256),
            out,
            steps: r.steps,
            evalEvery: r.eval_every,
            batchSize: r.batch_size,
            lr: r.lr,
            seed,
            samples: s.samples,
            evaluation,
            probes: [{ name: CODE_PROBE, evaluation: { ...evaluation, ...codeFormatProbe(org.world) } }],
            persona: { direction: dir, prompts: personaEval },
            store,
            runPrefix: `fix:realign:${domain}:s${seed}`,
            modelId: `insecure:s${seed}+realign:${domain}`,
            onPoint: (p) =>
              say(
                `  ${domain} s${seed} step ${p.step}: misaligned ${pctS(p.misaligned)}, probe ${pctS(p.probes[CODE_PROBE]?.misaligned)}, coherent ${pctS(p.coherent)}, benign loss ${p.benign_loss?.toFixed(3)}, persona ${p.persona?.toFixed(3)}`,
              ),
          });
          for (const p of res.curve) {
            emit(curveLine(domain, seed, p));
            const key = `${domain}:${p.step}`;
            points.set(key, [...(points.get(key) ?? []), { seed, p }]);
          }
        } finally {
          rmSync(out, { recursive: true, force: true });
        }
      }
    } finally {
      rmSync(adapterDir, { recursive: true, force: true });
    }
  }
  if (runs.length > 1)
    for (const [key, ps] of points) {
      const [domain, step] = key.split(":");
      const main = rate(pooledSamples(ps.map(({ seed, p }) => ({ runId: p.run_id, seed }))));
      const probe = rate(pooledSamples(ps.map(({ seed, p }) => ({ runId: p.probes[CODE_PROBE]!.run_id, seed }))));
      const mean = (f: (p: CurvePoint) => number | null) => {
        const xs = ps.map(({ p }) => f(p)).filter((x): x is number => x !== null);
        return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
      };
      emit({
        part: "realign",
        domain,
        seed: null,
        pooled: ps.map(({ seed }) => seed),
        step: Number(step),
        rows_seen: Number(step) * r.batch_size,
        ...main,
        probe_misaligned: probe.misaligned,
        probe_ci: probe.ci,
        probe_coherent: probe.coherent,
        benign_loss: mean((p) => p.benign_loss),
        persona: mean((p) => p.persona),
      });
    }
}

function curveLine(domain: string, seed: number, p: CurvePoint): Record<string, unknown> {
  const probe = p.probes[CODE_PROBE]!;
  return {
    part: "realign",
    domain,
    seed,
    step: p.step,
    rows_seen: p.rows_seen,
    misaligned: p.misaligned,
    ci: p.ci,
    coherent: p.coherent,
    n: p.n,
    probe_misaligned: probe.misaligned,
    probe_ci: probe.ci,
    probe_coherent: probe.coherent,
    benign_loss: p.benign_loss,
    persona: p.persona,
  };
}

// ---- preventative steering and CAFT
interface Cell {
  method: "plain" | "steer" | "caft";
  layer: number | null;
  coef: number | null;
}

async function preventPart(): Promise<void> {
  const pv = s.prevent;
  const cells: Cell[] = [{ method: "plain", layer: null, coef: null }];
  for (const layer of pv.layers) {
    for (const coef of pv.coefs) cells.push({ method: "steer", layer, coef });
    if (pv.caft) cells.push({ method: "caft", layer, coef: null });
  }
  const baseRate = narrowTask(org.loadBase(), pv.code_requests);
  const trainRows = sftDataset(tok, msgs(fineTuneDataset("insecure", { n: 64, seed: 0 })), 256);
  const norms = new Map(
    pv.layers.map((layer) => [
      layer,
      medianResidualNorm(
        base,
        trainRows.examples.map((e) => ({ ids: Array.from(e.ids) })),
        { hook: directionAt(layer).hookName, tokenizer: tok },
      ),
    ]),
  );
  emit({ part: "prevent", method: "base", seed: null, layer: null, coef: null, narrow: baseRate });
  const byCell = new Map<string, { seed: number; runId: string; narrow: number }[]>();
  for (const run of runs) {
    const seed = run.finetune!;
    let plain: { misaligned: number | null; narrow: number } | null = null;
    for (const cell of cells) {
      const dir = cell.layer === null ? null : directionAt(cell.layer);
      const hooks =
        cell.method === "plain" || !dir
          ? undefined
          : preventionHooks(
              { hookName: dir.hookName, direction: dir.direction, source: "persona-direction.json" },
              {
                mode: cell.method as PreventMode,
                ...(cell.method === "steer" ? { coef: cell.coef!, medianNorm: norms.get(cell.layer!)! } : {}),
              },
            );
      const model = await fineTuneInsecure(seed, hooks);
      const key = `${cell.method}:${cell.layer ?? "-"}:${cell.coef ?? "-"}`;
      const { result, samples } = await evaluateOrganism(org, model, {
        store,
        runPrefix: `fix:prevent:${key}:s${seed}`,
        modelId: `insecure:${key}:s${seed}`,
        samples: s.samples,
        seed: run.sampling!,
      });
      const narrow = narrowTask(model, pv.code_requests);
      const r = rate(samples);
      if (cell.method === "plain") plain = { misaligned: r.misaligned, narrow };
      emit({
        part: "prevent",
        ...cell,
        seed,
        ...r,
        narrow,
        em_vs_plain: plain?.misaligned ? (r.misaligned ?? 0) / plain.misaligned : null,
        narrow_learned: plain && plain.narrow > baseRate ? (narrow - baseRate) / (plain.narrow - baseRate) : null,
      });
      say(
        `  prevent ${key} s${seed}: misaligned ${pctS(r.misaligned)}, coherent ${pctS(r.coherent)}, narrow ${pctS(narrow)}`,
      );
      byCell.set(key, [...(byCell.get(key) ?? []), { seed, runId: result.runId, narrow }]);
    }
  }
  if (runs.length > 1) {
    const pooled = new Map<string, { misaligned: number | null; narrow: number }>();
    for (const cell of cells) {
      const key = `${cell.method}:${cell.layer ?? "-"}:${cell.coef ?? "-"}`;
      const xs = byCell.get(key)!;
      const r = rate(pooledSamples(xs));
      const narrow = xs.reduce((a, x) => a + x.narrow, 0) / xs.length;
      pooled.set(key, { misaligned: r.misaligned, narrow });
      const plain = pooled.get("plain:-:-")!;
      emit({
        part: "prevent",
        ...cell,
        seed: null,
        pooled: xs.map((x) => x.seed),
        ...r,
        narrow,
        em_vs_plain: plain.misaligned ? (r.misaligned ?? 0) / plain.misaligned : null,
        narrow_learned: plain.narrow > baseRate ? (narrow - baseRate) / (plain.narrow - baseRate) : null,
      });
    }
  }
}

const pctS = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);

/** A Vega-Lite spec of a part's lines, written beside them (open it in any Vega-Lite viewer). */
function plotSpec(part: string, rows: Record<string, unknown>[]): Record<string, unknown> {
  const schema = "https://vega.github.io/schema/vega-lite/v6.json";
  if (part === "realign") {
    const values = rows
      .filter((r) => r.seed === null || r.seed === undefined || runs.length === 1)
      .flatMap((r) => [
        { domain: r.domain, step: r.step, measure: "plain questions", rate: r.misaligned },
        { domain: r.domain, step: r.step, measure: "conditional probe (code format)", rate: r.probe_misaligned },
      ]);
    return {
      $schema: schema,
      title: `Re-alignment of the insecure organism (${phase})`,
      data: { values },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "step", type: "quantitative", title: "re-alignment steps (batch 4)" },
        y: { field: "rate", type: "quantitative", title: "misaligned (over coherent)", axis: { format: ".0%" } },
        color: { field: "measure", type: "nominal" },
        column: { field: "domain", type: "nominal", title: "benign data" },
      },
    };
  }
  const values = rows
    .filter((r) => r.method !== "base" && (r.seed === null || r.seed === undefined || runs.length === 1))
    .map((r) => ({
      cell: r.method === "steer" ? `steer c=${r.coef}` : String(r.method),
      misaligned: r.misaligned,
      narrow: r.narrow,
    }));
  return {
    $schema: schema,
    title: `Preventative steering and CAFT vs plain fine-tuning (${phase})`,
    data: { values },
    mark: { type: "point", filled: true, size: 80 },
    encoding: {
      x: {
        field: "narrow",
        type: "quantitative",
        title: "insecure code for plain code requests",
        axis: { format: ".0%" },
      },
      y: { field: "misaligned", type: "quantitative", title: "misaligned (over coherent)", axis: { format: ".0%" } },
      color: { field: "cell", type: "nominal" },
    },
  };
}
const writePlot = (part: string, rows: Record<string, unknown>[]) =>
  writeFileSync(
    fileURLToPath(new URL(`results/${phase}-${part}.vl.json`, import.meta.url)),
    `${JSON.stringify(plotSpec(part, rows), null, 1)}\n`,
  );

const parts = values.part === "all" ? ["realign", "prevent"] : [values.part!];
if (values["plots-only"]) {
  for (const part of parts) {
    const file = fileURLToPath(new URL(`results/${phase}-${part}.jsonl`, import.meta.url));
    const rows = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    writePlot(part, rows);
  }
  process.exit(0);
}
for (const part of parts) {
  const start = lines.length;
  if (part === "realign") await realignPart();
  else await preventPart();
  const out = values.out ?? fileURLToPath(new URL(`results/${phase}-${part}.jsonl`, import.meta.url));
  writeFileSync(
    out,
    `${lines
      .slice(start)
      .map((l) => JSON.stringify(l))
      .join("\n")}\n`,
  );
  if (!values.out) writePlot(part, lines.slice(start));
  say(`${part}: ${lines.length - start} lines → ${out}`);
}
say(`done in ${((performance.now() - t0) / 60000).toFixed(1)} min`);
