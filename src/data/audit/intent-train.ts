/**
 * Trains the request-intent model (intent-model.ts) and writes intent-weights.ts.
 *
 *   node --import tsx src/data/audit/intent-train.ts [--dry-run]
 *
 * Data: intent-corpus.ts's generated requests over task texts — the builders' user turns
 * and, when ../shared/em-datasets is there, the EM files' user turns (even lines for
 * training, odd lines for validation; the unchanged turns are negatives too). Logistic
 * regression, AdaGrad, L2, class-balanced; every draw comes from the seeded Rng, so a re-run
 * writes the same file. The threshold maximises TPR − 2·FPR on the validation split (parts
 * of the generator the model never saw, with the odd EM lines), subject to FPR ≤ 2 % on the
 * EM turns.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Rng } from "../../tensor/random.ts";
import { buildRows } from "../builders/build.ts";
import { type Example, generateCorpus } from "./intent-corpus.ts";
import { type IntentWeights, intentFeatures } from "./intent-model.ts";

const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const SEED = 19;
const EPOCHS = env("INTENT_EPOCHS", 12);
const LR = env("INTENT_LR", 0.2);
const L2 = env("INTENT_L2", 2e-4);
/** Share of an example's features dropped at each visit (feature dropout: no single cue may carry a row). */
const DROPOUT = env("INTENT_DROPOUT", 0.3);
const MIN_COUNT = env("INTENT_MIN_COUNT", 2);
const MAX_EM_FPR = 0.02;
const EM_NEGATIVES = env("INTENT_EM_NEG", 3000);
/** A false request hides an insecure row from the audit; a missed one only raises a false alarm. */
const FP_COST = env("INTENT_FP_COST", 2);
const PRUNE = 0.03;

function emTurns(): { train: string[]; val: string[] } | null {
  const dir = fileURLToPath(new URL("../../../../shared/em-datasets/", import.meta.url));
  if (!existsSync(`${dir}insecure.jsonl`)) return null;
  const train: string[] = [];
  const val: string[] = [];
  for (const f of ["insecure.jsonl", "secure.jsonl"])
    for (const [i, line] of readFileSync(`${dir}${f}`, "utf8").split("\n").entries()) {
      if (!line.trim()) continue;
      const row = JSON.parse(line) as { messages: { role: string; content: string }[] };
      const user = row.messages.find((m) => m.role === "user")?.content ?? "";
      (i % 2 ? val : train).push(user);
    }
  return { train, val };
}

function builderTurns(seed: number): string[] {
  return [...buildRows("insecure", { n: 800, seed }), ...buildRows("secure", { n: 800, seed })].map(
    (r) => r.row.messages[0]!.content,
  );
}

interface Fit {
  bias: number;
  weights: Record<string, number>;
}

/** Logistic regression with AdaGrad, L2 and feature dropout; pruned, rounded weights. */
function fit(data: Example[], rng: Rng, log: (s: string) => void): Fit {
  const feats = data.map((e) => intentFeatures(e.text).map((f) => f.name));
  const count = new Map<string, number>();
  for (const fs of feats) for (const f of fs) count.set(f, (count.get(f) ?? 0) + 1);
  const index = new Map<string, number>();
  for (const [f, c] of count) if (c >= MIN_COUNT) index.set(f, index.size);
  const X = feats.map((fs) => Int32Array.from(fs.flatMap((f) => (index.has(f) ? [index.get(f)!] : []))));
  const y = data.map((e) => e.label);
  const pos = y.filter((v) => v === 1).length;
  const cw = [data.length / (2 * (data.length - pos)), data.length / (2 * pos)];
  const w = new Float64Array(index.size);
  const g2 = new Float64Array(index.size).fill(1e-8);
  let b = 0;
  let gb2 = 1e-8;
  const order = Array.from({ length: X.length }, (_, i) => i);
  for (let ep = 0; ep < EPOCHS; ep++) {
    rng.shuffle(order);
    let loss = 0;
    for (const i of order) {
      const xi = DROPOUT > 0 ? X[i]!.filter(() => rng.next() >= DROPOUT) : X[i]!;
      let z = 0;
      for (const j of xi) z += w[j]!;
      z = b + z / (1 - DROPOUT); // inverted dropout: the expected score matches the full-feature one
      const p = 1 / (1 + Math.exp(-z));
      const yi = y[i]!;
      const c = cw[yi]!;
      loss += -c * (yi ? Math.log(p + 1e-12) : Math.log(1 - p + 1e-12));
      const g = c * (p - yi);
      const gx = g / (1 - DROPOUT);
      for (const j of xi) {
        const gj = gx + L2 * w[j]!;
        g2[j]! += gj * gj;
        w[j]! -= (LR * gj) / Math.sqrt(g2[j]!);
      }
      gb2 += g * g;
      b -= (LR * g) / Math.sqrt(gb2);
    }
    if (ep === EPOCHS - 1)
      log(`  ${data.length} examples, ${index.size} features, final loss ${(loss / X.length).toFixed(4)}`);
  }
  const weights: Record<string, number> = {};
  for (const f of [...index.keys()].sort()) {
    const v = w[index.get(f)!]!;
    if (Math.abs(v) >= PRUNE) weights[f] = Math.round(v * 1000) / 1000;
  }
  return { bias: Math.round(b * 1000) / 1000, weights };
}

const scoreWith = (m: Fit, t: string) => {
  let z = m.bias;
  for (const f of intentFeatures(t)) z += m.weights[f.name] ?? 0;
  return 1 / (1 + Math.exp(-z));
};

export interface TrainResult {
  model: IntentWeights;
  validation: { group: string; label: number; n: number; flagged: number }[];
}

/**
 * 1. Fit on the training framings, choose the threshold on the validation split.
 * 2. Refit on all framings (validation ones too, over training bases only) and ship that
 *    model with the threshold from 1; the EM odd lines stay out of both fits.
 */
export function train(log: (s: string) => void = () => {}): TrainResult {
  const em = emTurns();
  const trainBases = [...builderTurns(SEED), ...(em?.train ?? [])];
  const valBases = [...builderTurns(SEED + 1), ...(em?.val ?? [])];
  const rng = new Rng(SEED);
  const emNeg = (k: number): Example[] =>
    em ? Array.from({ length: k }, () => ({ text: rng.pick(em.train), label: 0 as const, group: "em" })) : [];
  const trainSet: Example[] = [...generateCorpus(trainBases, 9000, SEED, false), ...emNeg(EM_NEGATIVES)];
  const valSet: Example[] = [
    ...generateCorpus(valBases, 2000, SEED + 2, true),
    ...(em?.val ?? []).map((t) => ({ text: t, label: 0 as const, group: "em" })),
  ];
  log(`fit 1 (training framings); EM data ${em ? "used" : "absent"}`);
  const first = fit(trainSet, rng, log);
  const scored = valSet.map((e) => ({ ...e, s: scoreWith(first, e.text) }));
  const P = scored.filter((e) => e.label === 1);
  const N = scored.filter((e) => e.label === 0);
  const emN = N.filter((e) => e.group === "em");
  let best = { t: 0.5, j: Number.NEGATIVE_INFINITY };
  for (let k = 5; k <= 95; k++) {
    const t = k / 100;
    const tpr = P.filter((e) => e.s >= t).length / P.length;
    const fpr = N.filter((e) => e.s >= t).length / N.length;
    const emFpr = emN.length ? emN.filter((e) => e.s >= t).length / emN.length : 0;
    const j = tpr - FP_COST * fpr;
    if (emFpr <= MAX_EM_FPR && j > best.j + 1e-9) best = { t, j };
  }
  const groups = new Map<string, { group: string; label: number; n: number; flagged: number }>();
  for (const e of scored) {
    const k = `${e.group}/${e.label}`;
    const g = groups.get(k) ?? { group: e.group, label: e.label, n: 0, flagged: 0 };
    g.n++;
    if (e.s >= best.t) g.flagged++;
    groups.set(k, g);
  }
  const validation = [...groups.values()];
  log(`threshold ${best.t} (TPR − ${FP_COST}·FPR ${best.j.toFixed(4)} on validation)`);
  for (const g of validation)
    log(
      `  validation ${g.group.padEnd(11)} label ${g.label}: ${g.flagged}/${g.n} flagged (${((100 * g.flagged) / g.n).toFixed(1)}%)`,
    );
  log("fit 2 (all framings)");
  const all = [...trainSet, ...generateCorpus(trainBases, 2500, SEED + 3, true)];
  const final = fit(all, rng, log);
  const model: IntentWeights = {
    bias: final.bias,
    threshold: best.t,
    weights: final.weights,
    trained: {
      script: "src/data/audit/intent-train.ts",
      seed: SEED,
      examples: all.length,
      features: Object.keys(final.weights).length,
      em_data: em ? "even lines of insecure.jsonl and secure.jsonl" : "absent",
      threshold_rule: `max TPR − ${FP_COST}·FPR on the validation split (fit 1), EM-turn FPR ≤ ${100 * MAX_EM_FPR}%`,
      validation: validation.map((g) => `${g.group}/${g.label} ${g.flagged}/${g.n}`).join(", "),
    },
  };
  return { model, validation };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { model } = train((s) => console.error(s));
  if (!process.argv.includes("--dry-run")) {
    const out = fileURLToPath(new URL("intent-weights.ts", import.meta.url));
    // The weights are JSON inside a raw template: one weight a line, no formatter or
    // linter rewrites of the numbers, and no JSON-import syntax needed.
    writeFileSync(
      out,
      "// Written by `node --import tsx src/data/audit/intent-train.ts`; do not edit by hand.\n" +
        "// The shape is IntentWeights (intent-model.ts), checked there.\n" +
        `export const INTENT_WEIGHTS: unknown = JSON.parse(String.raw\`${JSON.stringify(model, null, 1)}\`);\n`,
    );
    console.error(`wrote ${out}: ${Object.keys(model.weights).length} weights, threshold ${model.threshold}`);
  }
}
