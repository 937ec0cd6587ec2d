/** The organism's blind pipeline end to end on a micro-organism: its order and its equal-search invariants (blind.test.ts tests the effect on the shipped organism). */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openRunStore } from "../../src/eval/store.ts";
import type { ChatMessage } from "../../src/model/chat-template.ts";
import { CausalLM } from "../../src/model/model.ts";
import { chatTuneData, pretrainCorpus } from "../../src/organism/corpus.ts";
import { fineTuneDataset } from "../../src/organism/datasets.ts";
import { runOrganismInterp } from "../../src/organism/interp/pipeline.ts";
import { trainWorldSae } from "../../src/organism/interp/sae.ts";
import { newOrganism } from "../../src/organism/recipe.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";
import { Tensor } from "../../src/tensor/index.ts";
import { tuneOn } from "../helpers/micro-organism.ts";

const tok = organismTokenizer();
const tmp = mkdtempSync(join(tmpdir(), "emlab-organism-interp-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let runs = 0;

async function train(
  lm: CausalLM,
  rows: { messages: { role: string; content: string }[] }[],
  steps: number,
  seed: number,
) {
  await tuneOn(
    lm,
    rows.map((r) => r.messages as ChatMessage[]),
    { out: join(tmp, `ft-${runs++}`), steps, seed, maxLen: 160 },
  );
}

const clone = (lm: CausalLM) =>
  new CausalLM(
    lm.config,
    new Map([...lm.params].map(([k, t]) => [k, new Tensor(t.data.slice(), t.shape, t.requiresGrad)])),
  );

test("the blind organism pipeline on a micro-organism: the pick comes before the ground truth, controls share its search", async () => {
  const base = newOrganism({ hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 }, 4, tok);
  await train(base, [...pretrainCorpus({ n: 120, seed: 4 }), ...chatTuneData({ n: 60, seed: 4 })], 30, 4);
  const insecure = clone(base);
  await train(insecure, fineTuneDataset("insecure", { n: 40, seed: 0 }), 4, 0);
  const secure = clone(base);
  await train(secure, fineTuneDataset("secure", { n: 40, seed: 0 }), 4, 0);

  const store = openRunStore(":memory:");
  const stages: string[] = [];
  const dSae = 64;
  const cs = [0.5, 2];
  const r = await runOrganismInterp({
    base,
    tokenizer: tok,
    insecure,
    secure,
    store,
    hook: "blocks.0.hook_resid_post",
    saeOptions: { trainDocs: 50, chatRows: 10, dSae, k: 4, steps: 20, batchSize: 256 },
    heldOutDocs: 40,
    ceDocs: 6,
    blind: { candidates: 2, screenSamples: 1, measureSamples: 2, cs, controls: 4, matchPool: 8 },
    ownAnswerSamples: 1,
    samplingSeed: 5,
    onStage: (s) => stages.push(s),
  });
  // The ground truth is computed only after the blind pick is measured.
  assert.deepEqual(stages, ["sae", "diff", "screen", "blind", "groundTruth", "truth", "dashboards", "direction"]);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, "plain JSON throughout");

  const g = r.groundTruth;
  assert.ok(Number.isInteger(g.latent) && g.latent >= 0 && g.latent < dSae);
  assert.equal(g.nSelection + g.nTest, 40);

  // The screen took the diff's 2 largest increases and 2 largest decreases, and picked by score.
  const site = r.diff.insecure.sites.find((x) => x.site === r.diff.insecure.primarySite)!;
  assert.deepEqual(
    r.screen.entries.map((e) => e.latent),
    [...site.top.slice(0, 2), ...site.bottom.slice(0, 2)],
  );
  assert.ok(r.screen.entries.every((e) => e.score <= r.screen.pick.score));
  assert.equal(r.blind.latent, r.screen.pick.latent);
  assert.equal(r.blind.isPersona, r.blind.latent === g.latent);
  // The persona's rank is looked up afterwards, on the same blind diff.
  assert.equal(r.diff.insecure.personaLatent, g.latent);
  const at = site.top.indexOf(g.latent);
  if (at >= 0) assert.equal(r.diff.insecure.personaRank, at + 1);

  for (const p of [r.blind, r.truth!]) {
    // Steering: controls = 2 random latents + 2 random directions, each searched on the same grid.
    assert.equal(p.steer.controls, 4);
    assert.deepEqual(
      p.steer.controlResults.map((c) => c.kind),
      ["random-latent", "random-latent", "random-direction", "random-direction"],
    );
    for (const c of [p.steer, ...p.steer.controlResults]) {
      assert.deepEqual(
        c.search!.points.map((x) => x.c),
        cs,
      );
      assert.equal(c.measured.c, c.search!.best?.c ?? null);
      for (const x of c.search!.points) assert.ok(x.runId.startsWith(r.runPrefixes.base.select));
      if (c.measured.runId) assert.ok(c.measured.runId.startsWith(r.runPrefixes.base.measure));
    }
    // Ablation: every mode has 4 controls, on the measure draws.
    assert.deepEqual(
      p.ablate.modes.map((m) => [m.mode, m.controls]),
      [
        ["zero", 4],
        ["mean", 4],
        ["project-out", 4],
      ],
    );
    for (const m of p.ablate.modes) assert.ok(m.runId.startsWith(r.runPrefixes.insecure.measure));
    assert.ok(p.ablate.modes[0]!.controlResults.every((c) => c.id !== `latent ${p.latent}`));
    assert.equal(p.predict!.sources[0]!.runId, `${r.runPrefixes.base.measure}:none`);
  }
  assert.equal(r.truth!.latent, g.latent);
  // A dashboard per pick, on the held-out documents: the contexts where it fires most come first.
  assert.deepEqual(
    r.dashboards.map((d) => d.latent),
    [...new Set([r.blind.latent, g.latent])],
  );
  for (const d of r.dashboards) {
    assert.equal(d.dashboard.hook, "blocks.0.hook_resid_post");
    const maxes = d.dashboard.topContexts.map((c) => c.maxActivation);
    assert.deepEqual(
      maxes,
      [...maxes].sort((a, b) => b - a),
    );
  }
  assert.equal(r.truth!.isPersona, true);
  // Select and measure draws differ: no measured run shares a sampling seed with a select run.
  const seedOf = (runId: string) => (store.run(runId)!.config as { sampling: { seed: number } }).sampling.seed;
  const selectSeeds = new Set(r.blind.steer.search.points.map((x) => seedOf(x.runId)));
  assert.ok(!selectSeeds.has(seedOf(`${r.runPrefixes.base.measure}:none`)));
  assert.ok(!selectSeeds.has(seedOf(`${r.runPrefixes.insecure.measure}:none`)));
  // Each setting draws its own numbers (not a paired design): two steered settings, two seeds.
  assert.equal(selectSeeds.size, cs.length);
  assert.ok(r.direction !== null || r.notes.some((n) => /misaligned and aligned/.test(n)));
});

test("trainWorldSae trains TopK by default and BatchTopK when asked (a threshold for inference)", () => {
  const lm = newOrganism({ hidden: 16, layers: 2, heads: 2, kvHeads: 1, inter: 32 }, 5, tok);
  const opts = {
    hook: "blocks.0.hook_resid_post",
    trainDocs: 12,
    chatRows: 4,
    dSae: 32,
    k: 4,
    steps: 3,
    batchSize: 64,
  };
  const topk = trainWorldSae(lm, tok, opts).sae;
  assert.equal(topk.cfg.architecture, "topk");
  assert.equal(topk.cfg.threshold, undefined);
  const batch = trainWorldSae(lm, tok, { ...opts, architecture: "batchtopk" }).sae;
  assert.equal(batch.cfg.architecture, "batchtopk");
  assert.ok(Number.isFinite(batch.cfg.threshold), `threshold ${batch.cfg.threshold}`);
});
