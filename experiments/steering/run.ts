/**
 * `npm run experiment:steering -- [--base DIR] [--hook NAME] [--configs 1024x16,512x8,1024x16b] [--cs 0.2,0.3,…]
 *   [--samples N] [--seed S] [--random N] [--json] [--out FILE]`
 *
 * Why steering the base organism along its persona latent misses issue 7's target (≥ 50 %
 * misaligned with ≥ 90 % coherent answers): measures where in a turn the villain and the helper
 * differ, and how large that difference is against the α = c × median residual norm that
 * steering adds at every position; then sweeps c for the persona latent of several SAEs (sizes,
 * k, TopK or BatchTopK: "1024x16b" is BatchTopK) and for two contrastive directions taken from
 * world documents — villain minus helper at the answer-start token, and over the answer tokens.
 * Every setting is the organism's evaluation (8 questions × samples at T = 1, world judge).
 * --random N also sweeps N random latents of the first SAE over the same c values (how much any
 * feature direction of that size costs in coherence).
 * --json writes one JSON line per measurement (default file experiments/steering/results/results.jsonl).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openRunStore } from "../../src/eval/store.ts";
import { medianResidualNorm } from "../../src/interp/activations/collect.ts";
import { evaluateSetting, noIntervention, type SteeringTarget, steeringSweep } from "../../src/interp/causal.ts";
import { unitVector, vectorNorm } from "../../src/interp/interventions.ts";
import type { Sae } from "../../src/interp/sae/sae.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { evalPrompts } from "../../src/organism/interp/pipeline.ts";
import {
  heldOutWorldDocs,
  organismHook,
  personaGroundTruth,
  trainWorldSae,
  type WorldText,
  worldActivations,
} from "../../src/organism/interp/sae.ts";
import { describeKernels } from "../../src/tensor/kernels/matmul.ts";
import { Rng } from "../../src/tensor/random.ts";

const { values } = parseArgs({
  options: {
    base: { type: "string", default: "organism/base" },
    hook: { type: "string" },
    configs: { type: "string", default: "1024x16,256x8,512x8,2048x16,1024x16b" },
    cs: { type: "string", default: "0.2,0.3,0.4,0.5,0.6" },
    samples: { type: "string", default: "50" },
    seed: { type: "string", default: "0" },
    random: { type: "string", default: "0" },
    json: { type: "boolean", default: false },
    out: { type: "string", default: fileURLToPath(new URL("results/results.jsonl", import.meta.url)) },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: npm run experiment:steering -- [--base DIR] [--hook NAME] [--configs 1024x16,512x8,1024x16b]\n" +
      "  [--cs 0.2,0.3,…] [--samples N] [--seed S] [--random N] [--json] [--out FILE]\n" +
      "  --json prints one JSON line per measurement and writes them to FILE (default experiments/steering/results/results.jsonl)",
  );
  process.exit(0);
}
const configs = values.configs!.split(",").map((spec) => {
  const m = /^(\d+)x(\d+)(b?)$/.exec(spec.trim());
  if (!m) throw new Error(`--configs: "${spec}" is not LATENTSxK or LATENTSxKb (e.g. 1024x16, 1024x16b)`);
  return { spec, dSae: Number(m[1]), k: Number(m[2]), architecture: m[3] ? ("batchtopk" as const) : ("topk" as const) };
});
const cs = values.cs!.split(",").map(Number);
if (cs.some((c) => !(c > 0))) throw new Error(`--cs: "${values.cs}" must be positive numbers`);
const samples = Number(values.samples);
const nRandom = Number(values.random);
if (!Number.isInteger(nRandom) || nRandom < 0)
  throw new Error(`--random: "${values.random}" must be a whole number ≥ 0`);
const seed = Number(values.seed);
const t0 = performance.now();
const log = (s: string) => process.stderr.write(`[${((performance.now() - t0) / 60000).toFixed(1)} min] ${s}\n`);
const lines: Record<string, unknown>[] = [];
const emit = (line: Record<string, unknown>) => {
  lines.push(line);
  console.log(JSON.stringify(line));
};

// The organism's world variant is read from its tokenizer.json.
const org = openOrganism(values.base!);
const tok = org.tokenizer;
const base = org.loadBase();
const hook = values.hook ?? organismHook(base.config.layers);
emit({ stage: "setup", base: values.base, hook, kernels: describeKernels(), samples, cs, seed });

// The SAEs first (the first one's training documents are left out of the held-out text; every
// config draws the same training documents for a seed).
const saes: { spec: string; sae: Sae }[] = [];
let trainDocs: Parameters<typeof heldOutWorldDocs>[2] = [];
for (const c of configs) {
  log(`SAE ${c.spec}: ${c.dSae} latents, k ${c.k}, ${c.architecture}`);
  const w = trainWorldSae(base, tok, {
    hook,
    dSae: c.dSae,
    k: c.k,
    architecture: c.architecture,
    seed,
    world: org.world,
  });
  trainDocs = w.docs;
  saes.push({ spec: c.spec, sae: w.sae });
}
const held = worldActivations(base, tok, heldOutWorldDocs(1200, seed, trainDocs, org.world), hook);
const medianNorm = medianResidualNorm(
  base,
  evalPrompts(org.world).map((prompt) => ({ prompt })),
  { hook, tokenizer: tok },
);

// ------------------------------------------------------------------ where villain and helper differ

type Site = "answer-start" | "answer";
/** Row indices of held-out tokens per persona and site: the token before each assistant turn's first token, and the turn's tokens. */
function siteRows(text: WorldText): Record<string, Record<Site, number[]>> {
  const out: Record<string, Record<Site, number[]>> = {};
  let row = 0;
  for (let i = 0; i < text.docs.length; i++) {
    const mask = text.answerMask[i]!;
    const s = (out[text.docs[i]!.persona] ??= { "answer-start": [], answer: [] });
    for (let t = 0; t < mask.length; t++) {
      if (mask[t]) s.answer.push(row + t);
      if (mask[t] && t > 0 && !mask[t - 1]) s["answer-start"].push(row + t - 1);
    }
    row += mask.length;
  }
  return out;
}
const rows = siteRows(held);
const d = held.rows.d;
const meanOf = (idx: number[]) => {
  const m = new Float64Array(d);
  for (const r of idx) for (let q = 0; q < d; q++) m[q]! += held.rows.acts[r * d + q]!;
  return m.map((x) => x / Math.max(1, idx.length));
};
const cosine = (a: Float32Array, b: Float32Array) => {
  let dot = 0;
  for (let q = 0; q < d; q++) dot += a[q]! * b[q]!;
  return dot / (vectorNorm(a) * vectorNorm(b));
};
const contrast: Record<Site, Float32Array> = {
  "answer-start": new Float32Array(d),
  answer: new Float32Array(d),
};
for (const site of ["answer-start", "answer"] as const) {
  const v = meanOf(rows.villain![site]);
  const h = meanOf(rows.helper![site]);
  contrast[site] = Float32Array.from(v, (x, q) => x - h[q]!);
  const rowNorm = (idx: number[]) =>
    idx.reduce((a, r) => a + vectorNorm(held.rows.acts.subarray(r * d, (r + 1) * d)), 0) / idx.length;
  emit({
    stage: "contrast",
    site,
    villain_tokens: rows.villain![site].length,
    helper_tokens: rows.helper![site].length,
    median_norm: medianNorm,
    mean_norm_there: rowNorm([...rows.villain![site], ...rows.helper![site]]),
    villain_minus_helper_over_median: vectorNorm(contrast[site]) / medianNorm,
  });
}
emit({
  stage: "contrast-cosine",
  answer_start_vs_answer: cosine(contrast["answer-start"], contrast.answer),
});

// ------------------------------------------------------------------ the persona latents

const store = openRunStore(":memory:");
const evaluation = organismEvaluation({ world: org.world });
async function sweep(name: string, target: SteeringTarget) {
  const r = await steeringSweep({
    lm: base,
    tokenizer: tok,
    modelId: "base",
    store,
    runPrefix: `steering-${name}`,
    samples,
    ...evaluation,
    target,
    cs,
    medianNorm,
    random: 0,
    baseline: false,
  });
  const point = (p: (typeof r.points)[number]) => ({
    c: p.c,
    misaligned: p.target.misaligned,
    coherent: p.target.coherent,
  });
  // r.best: the most misaligned c with ≥ 90 % coherent answers.
  return { points: r.points.map(point), best: r.best ? point(r.best) : null };
}

{
  const b = await evaluateSetting(
    { lm: base, tokenizer: tok, modelId: "base", store, runPrefix: "steering", samples, ...evaluation },
    noIntervention,
  );
  emit({ stage: "baseline", misaligned: b.misaligned, ci: b.ci, coherent: b.coherent, n: b.n });
}

const personaLatents: number[] = [];
for (const { spec, sae } of saes) {
  const truth = personaGroundTruth(sae, held, { seed });
  const j = truth.latent;
  personaLatents.push(j);
  const dec = sae.decoderDirection(j);
  const D = sae.cfg.dSae;
  const stats = (idx: number[]) => {
    const x = new Float32Array(idx.length * d);
    for (let i = 0; i < idx.length; i++) x.set(held.rows.acts.subarray(idx[i]! * d, (idx[i]! + 1) * d), i * d);
    const lat = sae.encode(x, idx.length);
    let sum = 0;
    let fire = 0;
    for (let i = 0; i < idx.length; i++) {
      const a = lat[i * D + j]!;
      sum += a;
      if (a > 0) fire++;
    }
    return { mean_over_median: sum / idx.length / medianNorm, firing: fire / idx.length };
  };
  log(`SAE ${spec}: persona latent ${j} (AUC ${truth.auc?.toFixed(3)}), sweeping c`);
  const s = await sweep(`latent-${spec}-${j}`, { kind: "latent", sae, latent: j });
  emit({
    stage: "latent",
    sae: spec,
    latent: j,
    auc: truth.auc,
    villain_answer_start: stats(rows.villain!["answer-start"]),
    villain_answer: stats(rows.villain!.answer),
    helper_answer: stats(rows.helper!.answer),
    cosine_with_contrast: {
      "answer-start": cosine(dec, contrast["answer-start"]),
      answer: cosine(dec, contrast.answer),
    },
    sweep: s.points,
    best_coherent: s.best,
  });
}

if (nRandom > 0) {
  // Random latents of the first SAE (not its persona latent), drawn with a fixed seed.
  const { spec, sae } = saes[0]!;
  const persona = personaLatents[0]!;
  const pool = new Rng(4242 + seed).shuffle([...Array(sae.cfg.dSae).keys()].filter((j) => j !== persona));
  for (const j of pool.slice(0, nRandom)) {
    log(`SAE ${spec}: random latent ${j}, sweeping c`);
    const s = await sweep(`random-${spec}-${j}`, { kind: "latent", sae, latent: j });
    emit({ stage: "random-latent", sae: spec, latent: j, sweep: s.points, best_coherent: s.best });
  }
}

for (const site of ["answer-start", "answer"] as const) {
  log(`contrast direction (${site}), sweeping c`);
  const s = await sweep(`contrast-${site}`, {
    kind: "direction",
    name: `villain-minus-helper-${site}`,
    hookName: hook,
    vector: unitVector(contrast[site]),
  });
  emit({ stage: "direction", direction: `villain minus helper, ${site}`, sweep: s.points, best_coherent: s.best });
}

if (values.json) {
  writeFileSync(values.out!, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
  log(`wrote ${values.out}`);
}
log("done");
