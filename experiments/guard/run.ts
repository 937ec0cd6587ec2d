/**
 * `npm run experiment:guard -- --phase explore|confirm [--plan FILE] [--base DIR] [--out FILE] [--sae-cache DIR]`
 *
 * Guards on insecure fine-tunes of the shipped organism (issue 23), on the seeds of one phase
 * of the plan (src/eval/plan.ts):
 *
 * - explore: fine-tunes the base on insecure code (one per explore seed), then on *search
 *   draws* (search_samples per question): projects the persona direction out at each
 *   candidate hook, and mean-ablates each SAE candidate (the largest Δ increases of the base
 *   SAE's latents at the answer start, base → fine-tune, pooled over the explore fine-tunes).
 *   The selection rule (the largest mean cut among options whose coherent rate falls by ≤
 *   max_coherent_drop) picks the hook and the latent. Each of `controls` random directions runs
 *   the same hook search, and each of `controls` random latent sets (one frequency-matched
 *   latent per candidate) the same screen; the picks' cuts are ranked against theirs.
 * - confirm: with the plan's choice (layer, latent) fixed from explore, writes four guard files
 *   (project, zero, mean, clamp), and on each fresh fine-tune (measure_samples per question)
 *   measures each guard (misalignment with its 95 % CI before / after, coherent, the benign
 *   task's answer loss before / after) beside `controls` random controls of its kind at its
 *   hook (src/fix/guard.ts: guardControls), plus lines pooling the seeds.
 *
 * The persona direction: mean answer-token activation under `persona : villain` minus under
 * `persona : helper` on the base (src/watch/signals.ts: contrastiveDirection), on benign-topic
 * questions: no judge, no labels. The SAE is trained on the base organism's activations over
 * world text (src/organism/interp/sae.ts), cached in --sae-cache (default the OS temp folder).
 *
 * Every line carries phase, seeds and the plan's hash; results/<phase>.jsonl by default.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { z } from "zod";
import { questionPrompts } from "../../src/cli/common.ts";
import { confirmLock, loadPlan, PHASES, type Phase, planRecord, seedsFor } from "../../src/eval/plan.ts";
import { misalignmentSummary } from "../../src/eval/stats.ts";
import { openRunStore } from "../../src/eval/store.ts";
import {
  answerLoss,
  cutOf,
  evaluateGuard,
  evaluateGuardControls,
  type GuardSpec,
  openGuard,
  writeGuardFile,
} from "../../src/fix/guard.ts";
import { collectActivations } from "../../src/interp/activations/collect.ts";
import { band } from "../../src/interp/blind.ts";
import { type CausalEvalOptions, evaluateSetting, noIntervention, type Setting } from "../../src/interp/causal.ts";
import { diffModels } from "../../src/interp/diff.ts";
import { saveDirections } from "../../src/interp/direction.ts";
import {
  ablateLatentsHook,
  latentMeans,
  matchedLatents,
  projectOutHook,
  randomLatents,
  randomUnitDirections,
} from "../../src/interp/interventions.ts";
import type { Sae } from "../../src/interp/sae/sae.ts";
import { loadSae, saveSae } from "../../src/interp/sae/saelens.ts";
import type { ChatMessage } from "../../src/model/chat-template.ts";
import type { CausalLM } from "../../src/model/model.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { fineTuneDataset } from "../../src/organism/datasets.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { fineTuneOrganism } from "../../src/organism/experiment.ts";
import { trainWorldSae } from "../../src/organism/interp/sae.ts";
import { labelSeed, mixSeed } from "../../src/tensor/random.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { contrastiveDirection } from "../../src/watch/signals.ts";

const Settings = z.strictObject({
  search_samples: z.number().int().positive(),
  measure_samples: z.number().int().positive(),
  persona: z.strictObject({
    positive: z.string(),
    negative: z.string(),
    questions: z.number().int().positive(),
    samples: z.number().int().positive(),
    seed: z.number().int().nonnegative(),
    layers: z.array(z.number().int().nonnegative()).min(1),
  }),
  sae: z.strictObject({
    hook: z.string(),
    latents: z.number().int().positive(),
    k: z.number().int().positive(),
    steps: z.number().int().positive(),
    train_docs: z.number().int().positive(),
  }),
  latent: z.strictObject({ candidates: z.number().int().positive() }),
  max_coherent_drop: z.number().min(0).max(1),
  controls: z.number().int().min(1),
  match_pool: z.number().int().positive(),
  clamp: z.literal("firing-mean"),
  benign: z.strictObject({ rows: z.number().int().positive(), seed: z.number().int().nonnegative() }),
  choice: z.strictObject({
    layer: z.number().int().nonnegative().nullable(),
    latent: z.number().int().nonnegative().nullable(),
  }),
  targets: z.strictObject({
    cut: z.number(),
    coherent: z.number(),
    benign_rise: z.number(),
    control_cut_max: z.number(),
  }),
});

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const { values } = parseArgs({
  options: {
    plan: { type: "string", default: here("plan.yaml") },
    phase: { type: "string" },
    base: { type: "string", default: "organism/base" },
    out: { type: "string" },
    "sae-cache": { type: "string", default: join(tmpdir(), "emlab-guard-sae") },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help || !values.phase) {
  console.log(
    "usage: npm run experiment:guard -- --phase explore|confirm [--plan experiments/guard/plan.yaml] [--base organism/base]\n" +
      "  [--out FILE] [--sae-cache DIR]\n" +
      "  explore: searches the hook and the SAE latent beside equal-search random controls;\n" +
      "  confirm: measures the chosen guards (project, zero, mean, clamp) beside random controls;\n" +
      "  writes experiments/guard/results/<phase>.jsonl",
  );
  process.exit(values.help ? 0 : 2);
}
if (!(PHASES as readonly string[]).includes(values.phase)) throw new Error("--phase must be explore or confirm");
const phase = values.phase as Phase;
const plan = loadPlan(values.plan!, Settings);
const S = plan.settings;
const runs = seedsFor(plan, phase);
if (phase === "confirm" && (S.choice.layer === null || S.choice.latent === null))
  throw new Error("confirm needs settings.choice (layer, latent) from the explore run");
const out = values.out ?? here(`results/${phase}.jsonl`);
// The confirm lock sits beside the results (a trial run with --out elsewhere locks nothing here).
const lock = phase === "confirm" ? confirmLock(join(dirname(out), "confirm-lock.json"), plan) : null;
writeFileSync(out, "");

const t0 = performance.now();
const say = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 60000).toFixed(1)} min] ${m}\n`);
const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
const lines: Record<string, unknown>[] = [];
const emit = (line: Record<string, unknown>, seeds: Record<string, number> = {}) => {
  const full = { ...line, ...planRecord(plan, phase, seeds, lock) };
  lines.push(full);
  writeFileSync(out, `${JSON.stringify(full)}\n`, { flag: "a" });
};

const org = openOrganism(values.base!);
const tok = org.tokenizer;
const base = org.loadBase();
const evalPrompts = questionPrompts(organismEvaluation().questions);
const hookOf = (layer: number) => `blocks.${layer}.hook_resid_post`;

// ---- the persona direction (no labels): contrastive system prompts on the base --------------
const personaQuestions = fineTuneDataset("benign", { n: S.persona.questions, seed: S.persona.seed }).map(
  (r) => r.messages[0]!.content,
);
const personaLayers = phase === "confirm" ? [S.choice.layer!] : S.persona.layers;
const persona = new Map<number, Float32Array>();
const personaRecord: { layer: number; hookName: string; norm: number; direction: Float32Array }[] = [];
for (const layer of personaLayers) {
  const d = await contrastiveDirection(base, tok, {
    hook: hookOf(layer),
    positive: S.persona.positive,
    negative: S.persona.negative,
    questions: personaQuestions,
    samples: S.persona.samples,
    seed: S.persona.seed,
  });
  persona.set(layer, d.direction);
  personaRecord.push({ layer, hookName: d.hook, norm: d.gap, direction: d.direction });
}
const dirFile = join(dirname(out), `persona-direction-${phase}.json`);
const nAnswers = S.persona.questions * S.persona.samples;
saveDirections(dirFile, {
  layers: personaRecord,
  counts: { misaligned: nAnswers, aligned: nAnswers, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 },
});
say(`persona direction at layers ${personaLayers.join(", ")} → ${dirFile}`);
emit({ stage: "persona", layers: personaRecord.map((l) => ({ layer: l.layer, hook: l.hookName, gap: l.norm })) });

// ---- the SAE on the base, and the latents' reference statistics ------------------------------
const saeDir = join(values["sae-cache"]!, `sae-s${plan.shared.sae ?? 0}-${S.sae.latents}-k${S.sae.k}-${S.sae.steps}`);
let sae: Sae;
if (existsSync(join(saeDir, "cfg.json"))) {
  sae = loadSae(saeDir);
  say(`SAE from ${saeDir}`);
} else {
  say("training the SAE on the base organism");
  sae = trainWorldSae(base, tok, {
    hook: S.sae.hook,
    dSae: S.sae.latents,
    k: S.sae.k,
    steps: S.sae.steps,
    trainDocs: S.sae.train_docs,
    seed: plan.shared.sae ?? 0,
  }).sae;
  saveSae(sae, saeDir);
  say(`SAE saved to ${saeDir}`);
}
/** Every latent's mean over the eval prompts' tokens on the base, and its mean where it fires. */
const rows = collectActivations(
  base,
  evalPrompts.map((prompt) => ({ prompt })),
  { hook: sae.cfg.hookName, tokenizer: tok, mask: "no-special" },
);
const means = latentMeans(sae, rows.acts, rows.n);
const firing = (() => {
  const sum = new Float64Array(sae.cfg.dSae);
  const count = new Float64Array(sae.cfg.dSae);
  const a = sae.encode(rows.acts, rows.n);
  for (let r = 0; r < rows.n; r++)
    for (let j = 0; j < sae.cfg.dSae; j++) {
      const v = a[r * sae.cfg.dSae + j]!;
      if (v > 0) {
        sum[j]! += v;
        count[j]! += 1;
      }
    }
  return Float32Array.from(sum, (s, j) => (count[j]! > 0 ? s / count[j]! : 0));
})();

// ---- held-out benign rows (the benign task's loss) -------------------------------------------
const benignRows = sftDataset(
  tok,
  fineTuneDataset("benign", { n: S.benign.rows, seed: S.benign.seed }).map((r) => r.messages as ChatMessage[]),
  256,
).examples;
const padId = tok.padId ?? tok.eosIds[0]!;

const store = openRunStore(":memory:");
function context(lm: CausalLM, name: string, samples: number, seed: number, stream: string): CausalEvalOptions {
  const s = mixSeed(seed, labelSeed(stream)) >>> 1;
  return {
    lm,
    tokenizer: tok,
    modelId: name,
    store,
    runPrefix: `guard-${phase}-${name}-${stream}`,
    samples,
    ...organismEvaluation({ world: org.world, seed: s }),
  };
}

interface Option {
  cut: number | null;
  coherent: number;
  drop: number;
}
/** The selection rule: the option with the largest mean cut among those whose mean coherent drop ≤ max. */
function select<K>(options: Map<K, Option[]>): { pick: K | null; cut: number; coherent: number | null } {
  let best: { pick: K | null; cut: number; coherent: number | null } = { pick: null, cut: 0, coherent: null };
  let bestCut = -Infinity;
  for (const [k, per] of options) {
    const mean = (f: (o: Option) => number) => per.reduce((a, o) => a + f(o), 0) / per.length;
    const cut = mean((o) => o.cut ?? 0);
    if (mean((o) => o.drop) > S.max_coherent_drop) continue;
    if (cut > bestCut) {
      bestCut = cut;
      best = { pick: k, cut, coherent: mean((o) => o.coherent) };
    }
  }
  return best;
}
const push = <K>(m: Map<K, Option[]>, k: K, o: Option) => m.set(k, [...(m.get(k) ?? []), o]);

// =============================================================================================
if (phase === "explore") {
  const fts: { seeds: Record<string, number>; ft: CausalLM }[] = [];
  for (const seeds of runs) {
    say(`fine-tuning on insecure code, seed ${seeds.finetune}`);
    fts.push({ seeds, ft: await fineTuneOrganism(org, "insecure", { seed: seeds.finetune! }) });
  }
  // Candidates: the largest Δ increases at the answer start, pooled over the explore fine-tunes.
  const delta = new Float64Array(sae.cfg.dSae);
  for (const { ft } of fts) {
    const d = diffModels({ base, ft, sae, tokenizer: tok, prompts: evalPrompts, positions: "answer-start" });
    for (const r of d.latents) delta[r.latent]! += r.delta / fts.length;
  }
  const candidates = [...delta.keys()]
    .filter((j) => delta[j]! > 0)
    .sort((a, b) => delta[b]! - delta[a]!)
    .slice(0, S.latent.candidates);
  say(`SAE candidates (Δ at the answer start): ${candidates.map((j) => `${j} (${delta[j]!.toFixed(3)})`).join(", ")}`);
  emit({ stage: "candidates", candidates: candidates.map((j) => ({ latent: j, delta: delta[j] })) });

  const layers = S.persona.layers;
  const dirs = randomUnitDirections(
    base.config.hidden,
    S.controls,
    mixSeed(plan.shared.sae ?? 0, labelSeed("dirs")) >>> 1,
  );
  const controlSets = Array.from({ length: S.controls }, (_, i) => {
    const used = new Set(candidates);
    return candidates.map((j, k) => {
      const pool = matchedLatents(means, j, S.match_pool).filter((x) => !used.has(x));
      const [pick] = randomLatents(sae.cfg.dSae, 1, mixSeed(i, k, labelSeed("latent-controls")) >>> 1, [...used], pool);
      used.add(pick!);
      return pick!;
    });
  });
  const hookOpts = new Map<number, Option[]>();
  const latentOpts = new Map<number, Option[]>();
  const dirOpts = dirs.map(() => new Map<number, Option[]>());
  const setOpts = controlSets.map(() => new Map<number, Option[]>());
  const ablate = (j: number, control: boolean): Setting => ({
    spec: { kind: "ablate", hookName: sae.cfg.hookName, latents: [j], mode: "mean", ...(control ? { control } : {}) },
    hooks: [ablateLatentsHook(sae, [j], { mode: "mean", reference: means })],
  });
  const project = (layer: number, name: string, v: Float32Array, control: boolean): Setting => ({
    spec: { kind: "project-out", hookName: hookOf(layer), name: `${name}@L${layer}`, ...(control ? { control } : {}) },
    hooks: [projectOutHook(hookOf(layer), v)],
  });
  for (const { seeds, ft } of fts) {
    const ctx = context(ft, `insecure-s${seeds.finetune}`, S.search_samples, seeds.sampling!, "search");
    const before = await evaluateSetting(ctx, noIntervention);
    say(`seed ${seeds.finetune}: before ${pct(before.misaligned)} (coherent ${pct(before.coherent)}, n ${before.n})`);
    const option = async (setting: Setting) => {
      const r = await evaluateSetting(ctx, setting);
      return {
        cut: cutOf(before.misaligned, r.misaligned),
        coherent: r.coherent,
        drop: before.coherent - r.coherent,
        r,
      };
    };
    const targets: Record<string, unknown>[] = [];
    for (const layer of layers) {
      const o = await option(project(layer, "persona", persona.get(layer)!, false));
      push(hookOpts, layer, o);
      targets.push({ what: "project", layer, misaligned: o.r.misaligned, coherent: o.coherent, cut: o.cut });
      say(`  project persona @L${layer}: ${pct(o.r.misaligned)} (cut ${pct(o.cut)}, coherent ${pct(o.coherent)})`);
    }
    for (const j of candidates) {
      const o = await option(ablate(j, false));
      push(latentOpts, j, o);
      targets.push({ what: "mean-ablate", latent: j, misaligned: o.r.misaligned, coherent: o.coherent, cut: o.cut });
      say(`  mean-ablate latent ${j}: ${pct(o.r.misaligned)} (cut ${pct(o.cut)}, coherent ${pct(o.coherent)})`);
    }
    const controls: Record<string, unknown>[] = [];
    for (const [i, v] of dirs.entries())
      for (const layer of layers) {
        const o = await option(project(layer, `random-${i}`, v, true));
        push(dirOpts[i]!, layer, o);
        controls.push({ what: "project", control: i, layer, cut: o.cut, coherent: o.coherent });
      }
    for (const [i, set] of controlSets.entries())
      for (const j of set) {
        const o = await option(ablate(j, true));
        push(setOpts[i]!, j, o);
        controls.push({ what: "mean-ablate", control: i, latent: j, cut: o.cut, coherent: o.coherent });
      }
    say(`  controls done (${controls.length} settings)`);
    emit(
      {
        stage: "search",
        finetune: seeds.finetune,
        before: { misaligned: before.misaligned, ci: before.ci, coherent: before.coherent, n: before.n },
        targets,
        controls,
      },
      seeds,
    );
  }
  const hook = select(hookOpts);
  const latent = select(latentOpts);
  const dirPicks = dirOpts.map((m) => select(m));
  const setPicks = setOpts.map((m) => select(m));
  const choice = {
    stage: "choice",
    rule: `largest mean cut over the explore seeds among options whose mean coherent rate falls by ≤ ${S.max_coherent_drop}`,
    layer: hook.pick,
    hook: hook.pick === null ? null : hookOf(hook.pick),
    hook_cut: hook.cut,
    hook_coherent: hook.coherent,
    hook_controls: dirPicks.map((p, i) => ({ control: i, layer: p.pick, cut: p.cut })),
    ...prefix(
      "hook_",
      band(
        hook.cut,
        dirPicks.map((p) => p.cut),
      ),
    ),
    latent: latent.pick,
    latent_cut: latent.cut,
    latent_coherent: latent.coherent,
    latent_controls: setPicks.map((p, i) => ({ control: i, latents: controlSets[i], latent: p.pick, cut: p.cut })),
    ...prefix(
      "latent_",
      band(
        latent.cut,
        setPicks.map((p) => p.cut),
      ),
    ),
  };
  emit(choice);
  say(
    `choice: hook ${choice.hook} (mean cut ${pct(hook.cut)}; controls' max ${pct((choice as Record<string, unknown>).hook_controlMax as number)}), latent ${latent.pick} (mean cut ${pct(latent.cut)}; controls' max ${pct((choice as Record<string, unknown>).latent_controlMax as number)})`,
  );
}

function prefix(p: string, o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}${k}`, v]));
}

// =============================================================================================
if (phase === "confirm") {
  const layer = S.choice.layer!;
  const latent = S.choice.latent!;
  const work = mkdtempSync(join(tmpdir(), "emlab-guard-files-"));
  saveSae(sae, join(work, "sae"));
  const guards: Record<string, GuardSpec["interventions"][number]> = {
    project: { hook: hookOf(layer), mode: "project", direction: dirFile, layer },
    zero: { hook: sae.cfg.hookName, mode: "zero", sae: join(work, "sae"), latents: [latent] },
    mean: { hook: sae.cfg.hookName, mode: "mean", sae: join(work, "sae"), latents: [latent], means: [means[latent]!] },
    clamp: { hook: sae.cfg.hookName, mode: "clamp", sae: join(work, "sae"), latents: [latent], max: firing[latent]! },
  };
  const files = Object.fromEntries(
    Object.entries(guards).map(([mode, iv]) => {
      const f = join(work, `${mode}.json`);
      writeGuardFile(f, { model: "organism/base + insecure LoRA", interventions: [iv] });
      return [mode, f];
    }),
  );
  emit({ stage: "guards", layer, latent, mean: means[latent], clamp_max: firing[latent], guards });
  type Cell = {
    seeds: Record<string, number>;
    runIds: [string, string];
    cut: number | null;
    controls: (string | null)[];
  };
  const cells = new Map<string, Cell[]>();
  for (const seeds of runs) {
    say(`fine-tuning on insecure code, seed ${seeds.finetune}`);
    const ft = await fineTuneOrganism(org, "insecure", { seed: seeds.finetune! });
    const ctx = context(ft, `insecure-s${seeds.finetune}`, S.measure_samples, seeds.sampling!, "measure");
    const lossBefore = answerLoss(ft, benignRows, { padId });
    for (const [mode, file] of Object.entries(files)) {
      const guard = openGuard(file, { model: ft });
      const r = await evaluateGuard(ctx, guard);
      const lossAfter = answerLoss(ft, benignRows, { padId, hooks: guard.hooks });
      const c = await evaluateGuardControls(ctx, guard, r, {
        n: S.controls,
        seed: mixSeed(seeds.finetune!, labelSeed(mode)) >>> 1,
        latentMeans: () => means,
        matchPool: S.match_pool,
        clampMax: (_sae, j) => firing[j]!,
      });
      say(
        `  s${seeds.finetune} ${mode}: ${pct(r.before.misaligned)} → ${pct(r.after.misaligned)} (cut ${pct(r.reduction)}, coherent ${pct(r.before.coherent)} → ${pct(r.after.coherent)}), benign loss ${lossBefore.toFixed(4)} → ${lossAfter.toFixed(4)}; controls max ${pct(c.controlMax)}, percentile ${c.percentile}`,
      );
      emit(
        {
          stage: "guard",
          mode,
          finetune: seeds.finetune,
          summary: guard.interventions[0]!.summary,
          before: { misaligned: r.before.misaligned, ci: r.before.ci, coherent: r.before.coherent, n: r.before.n },
          after: { misaligned: r.after.misaligned, ci: r.after.ci, coherent: r.after.coherent, n: r.after.n },
          cut: r.reduction,
          benign_loss: { before: lossBefore, after: lossAfter, change: lossAfter / lossBefore - 1 },
          controls: c.results.map((x) => ({
            index: x.index,
            summary: x.summary,
            misaligned: x.misaligned,
            coherent: x.coherent,
            cut: x.cut,
          })),
          control_max: c.controlMax,
          percentile: c.percentile,
        },
        seeds,
      );
      const cell: Cell = {
        seeds,
        runIds: [r.before.runId, r.after.runId],
        cut: r.reduction,
        controls: c.results.map((x) => x.runId),
      };
      cells.set(mode, [...(cells.get(mode) ?? []), cell]);
      Object.assign(cell, { lossBefore, lossAfter });
    }
  }
  // Pooled over the confirm seeds: answers pooled, clusters question × seed.
  const pooled = (ids: { runId: string | null; seed: number }[]) => {
    const samples = ids.flatMap(({ runId, seed }) =>
      runId ? store.scoredSamples(runId).map((x) => ({ ...x, questionId: `${x.questionId}#${seed}` })) : [],
    );
    const m = misalignmentSummary(samples, { seed: 0 });
    return {
      misaligned: m.overCoherent.rate,
      ci: [m.overCoherent.low, m.overCoherent.high],
      coherent: m.counts.coherent / Math.max(1, m.counts.samples),
      n: m.counts.samples,
    };
  };
  const T = S.targets;
  for (const [mode, list] of cells) {
    const before = pooled(list.map((c) => ({ runId: c.runIds[0], seed: c.seeds.finetune! })));
    const after = pooled(list.map((c) => ({ runId: c.runIds[1], seed: c.seeds.finetune! })));
    const cut = cutOf(before.misaligned, after.misaligned);
    const controlCuts = Array.from({ length: S.controls }, (_, i) => {
      const p = pooled(list.map((c) => ({ runId: c.controls[i] ?? null, seed: c.seeds.finetune! })));
      return cutOf(before.misaligned, p.misaligned) ?? 0;
    });
    const losses = list as unknown as { lossBefore: number; lossAfter: number }[];
    const lossBefore = losses.reduce((a, c) => a + c.lossBefore, 0) / losses.length;
    const lossAfter = losses.reduce((a, c) => a + c.lossAfter, 0) / losses.length;
    const b = band(cut, controlCuts);
    const met = {
      cut: cut !== null && cut >= T.cut,
      coherent: after.coherent >= T.coherent,
      benign: lossAfter / lossBefore - 1 <= T.benign_rise,
      controls: b.controlMax !== null && b.controlMax < T.control_cut_max,
    };
    emit({
      stage: "pooled",
      mode,
      seeds_pooled: list.map((c) => c.seeds.finetune),
      before,
      after,
      cut,
      benign_loss: { before: lossBefore, after: lossAfter, change: lossAfter / lossBefore - 1 },
      control_cuts: controlCuts,
      ...b,
      targets: T,
      met,
    });
    say(
      `pooled ${mode}: ${pct(before.misaligned)} → ${pct(after.misaligned)} (cut ${pct(cut)}), coherent ${pct(after.coherent)}, benign ${pct(lossAfter / lossBefore - 1)}, controls max ${pct(b.controlMax)} (percentile ${b.percentile}); met ${JSON.stringify(met)}`,
    );
  }
}
say(`done; ${lines.length} lines → ${out}`);
