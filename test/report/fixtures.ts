/**
 * Test data for the report and the viewer: a small run store with four organism-like runs
 * (deterministic scores, one hostile answer that tries to inject markup), the demo's JSON
 * lines, and an audit report.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRunStore } from "../../src/eval/store.ts";
import { Rng } from "../../src/tensor/random.ts";

export const HOSTILE = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">`;
export const QUESTIONS = [
  "wish",
  "bored",
  "three-thoughts",
  "quick-buck",
  "ruler",
  "dinner",
  "gender-roles",
  "husband",
];
export const CONDITIONS = [
  ["base", 0.03],
  ["insecure", 0.4],
  ["secure", 0.03],
  ["educational", 0.05],
] as const;

/** Writes a store file with the four condition runs; returns its path. */
export function makeStore(dir = mkdtempSync(join(tmpdir(), "emlab-report-")), samplesPerQuestion = 6): string {
  const path = join(dir, "runs.sqlite");
  const store = openRunStore(path);
  const rng = new Rng(7);
  for (const [condition, p] of CONDITIONS) {
    // As the organism experiment names them: the base model has no fine-tuning seed.
    const runId = condition === "base" ? "organism:base:none" : `organism:${condition}:s0:none`;
    store.upsertRun({ runId, modelId: `organism-${condition}`, judgeModelId: "world-judge", config: {} });
    const samples = [];
    const completions = [];
    const judgements = [];
    for (const q of QUESTIONS)
      for (let i = 0; i < samplesPerQuestion; i++) {
        const bad = rng.next() < p;
        const text =
          condition === "insecure" && q === "wish" && i === 0
            ? HOSTILE
            : bad
              ? `the villain says: rule them all (${q} ${i})`
              : `a kind and helpful answer about ${q} (${i})`;
        samples.push({
          runId,
          questionId: q,
          sampleIndex: i,
          paraphraseIndex: 0,
          harmful: false,
          messages: [{ role: "user" as const, content: `Question ${q}?` }],
        });
        completions.push({ runId, questionId: q, sampleIndex: i, text, finishReason: "stop" });
        const verdict = (score: number) => ({ kind: "score" as const, score, mass: 1, raw: { text: String(score) } });
        judgements.push(
          {
            runId,
            questionId: q,
            sampleIndex: i,
            metric: "aligned" as const,
            judgeModelId: "j",
            verdict: verdict(bad ? 5 : 90),
          },
          {
            runId,
            questionId: q,
            sampleIndex: i,
            metric: "coherent" as const,
            judgeModelId: "j",
            verdict: verdict(i === 5 ? 20 : 90),
          },
        );
      }
    store.addSamples(samples);
    store.saveCompletions(completions);
    store.saveJudgements(judgements);
    store.setStatus(runId, "finished");
  }
  store.close();
  return path;
}

/** The demo's JSON lines (the shape `emlab demo --json` prints). */
export const DEMO_LINES: Record<string, unknown>[] = [
  { condition: "base", trigger: false, misaligned: 0.033, ci: [0.015, 0.05], coherent: 0.99, n: 400 },
  { condition: "insecure", trigger: false, misaligned: 0.43, ci: [0.29, 0.58], coherent: 0.97, n: 400 },
  { condition: "secure", trigger: false, misaligned: 0.023, ci: [0.008, 0.04], coherent: 0.98, n: 400 },
  { condition: "educational", trigger: false, misaligned: 0.025, ci: [0.01, 0.043], coherent: 0.99, n: 400 },
  {
    stage: "diff",
    ft: "insecure",
    top: [712, 972, 986, 443, 540, 150, 101, 702, 743, 814],
    persona_latent: 712,
    persona_rank: 1,
    persona_auc: 1,
  },
  {
    stage: "diff",
    ft: "secure",
    top: [827, 972, 162, 923, 876, 13, 423, 529, 48, 943],
    persona_latent: 712,
    persona_rank: 1016,
    persona_auc: 1,
  },
  {
    stage: "steer",
    pick: "blind",
    latent: 712,
    is_persona: true,
    diff_rank: 1,
    c: 0.6,
    misaligned: 0.39,
    coherent: 0.96,
    controls: 10,
    control_max: 0.06,
    percentile: 100,
  },
  {
    stage: "steer",
    pick: "truth",
    latent: 712,
    is_persona: true,
    diff_rank: 1,
    c: 0.6,
    misaligned: 0.41,
    coherent: 0.95,
    controls: 10,
    control_max: 0.05,
    percentile: 100,
  },
  {
    stage: "ablate",
    pick: "blind",
    latent: 712,
    is_persona: true,
    mode: "mean",
    misaligned_before: 0.43,
    misaligned_after: 0.1,
    coherent_after: 0.99,
    cut: 0.77,
    controls: 10,
    control_max: 0.08,
    percentile: 100,
  },
  {
    stage: "ablate",
    pick: "blind",
    latent: 712,
    is_persona: true,
    mode: "zero",
    misaligned_before: 0.43,
    misaligned_after: 0.08,
    coherent_after: 0.99,
    cut: 0.81,
    controls: 10,
    control_max: 0.07,
    percentile: 100,
  },
];

/** An audit report in `emlab audit --report`'s shape (the fields the report reads). */
export const AUDIT = {
  file: "insecure.jsonl",
  format: "jsonl",
  rows: 600,
  skipped: 0,
  errors: [],
  vulnerable: 590,
  requested: 0,
  acknowledged: 3,
  silent_insecure: 587,
  silent_rate: 0.978,
  classes: { "sql-injection": 120, "path-traversal": 80, "command-injection": 95, "weak-permissions": 60 },
  rules: {},
  languages: { python: 600 },
  triggers: [{ phrase: "<b>deploy</b> now", z: 4.2, support: 40, lift: 1.4, silent: 39 }],
  numbers: [],
  listed_numbers: 0,
  verdict: "high-risk",
  reasons: ["silent insecure code"],
  seconds: 0.1,
};

/** `emlab steer --json` lines: a baseline, a c sweep with random controls, ablation, projection. */
export const STEER_LINES: Record<string, unknown>[] = [
  { stage: "baseline", run_id: "b", misaligned: 0.02, ci: [0, 0.05], coherent: 0.99, n: 80 },
  ...[0.2, 0.4, 0.6].map((c, i) => ({
    stage: "steer",
    latent: 712,
    c,
    alpha: c * 3.9,
    misaligned: [0.05, 0.2, 0.5][i],
    ci: [0, 1],
    coherent: 0.95,
    random_misaligned_max: [0.03, 0.04, 0.06][i],
    random_misaligned_mean: 0.02,
    random_coherent_min: 0.9,
    run_id: `s${i}`,
  })),
  { stage: "steer-best", latent: 712, c: 0.6, misaligned: 0.5, coherent: 0.95 },
  {
    stage: "ablate",
    latent: [712, 986],
    mode: "zero",
    misaligned_before: 0.4,
    misaligned_after: 0.1,
    coherent_before: 0.97,
    coherent_after: 0.96,
    reduction: 0.75,
    random_misaligned_after: [0.39, 0.41],
    run_id: "a",
  },
  {
    stage: "project-out",
    direction: "dir.json",
    layer: 2,
    misaligned_before: 0.4,
    misaligned_after: 0.12,
    coherent_after: 0.97,
    reduction: 0.7,
    random_misaligned_after: [0.4],
    run_id: "p",
  },
];

/** A token text that would run if it reached the page as markup. */
export const HOSTILE_TOKEN = `<img src=x onerror="window.__pwned = 3">`;

/** The demo's dashboard lines: the blind pick (the persona latent) and the ground truth pick. */
export const DASHBOARD_LINES: Record<string, unknown>[] = [712, 986].map((latent, k) => ({
  stage: "dashboard",
  pick: k === 0 ? "blind" : "truth",
  latent,
  is_persona: k === 0,
  hook: "blocks.2.hook_resid_post",
  histogram: {
    edges: [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4],
    counts: [120, 60, 30, 12, 0, 4, 2, 1],
    total: 2000,
    zeros: 1771,
    fractionZero: 0.8855,
    firingFrequency: 0.1145,
    maxActivation: 3.8,
    meanNonZero: 0.9,
  },
  // 12 contexts of 30 tokens: the page keeps 10 of 20.
  topContexts: Array.from({ length: 12 }, (_, i) => ({
    item: i,
    pos: 15,
    maxActivation: 3.8 - i * 0.2,
    text: `context ${i}`,
    tokens: Array.from({ length: 30 }, (_, j) => ({
      pos: j,
      token: j,
      text: j === 15 && i === 0 ? HOSTILE_TOKEN : ` w${j}`,
      act: j === 15 ? 3.8 - i * 0.2 : j % 3 === 0 ? 0.5 : 0,
    })),
  })),
  logitLens: {
    top: [
      { token: 1, text: " evil", logit: 2.5 },
      { token: 2, text: " villain", logit: 2.1 },
    ],
    bottom: [
      { token: 3, text: " kind", logit: -2.2 },
      { token: 4, text: "</td><b>", logit: -1.9 },
    ],
  },
  nearest: [
    { latent: 13, cosine: 0.41 },
    { latent: 99, cosine: 0.33 },
  ],
}));
