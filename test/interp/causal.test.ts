/** Causal sweeps end to end on a micro-organism, every setting a run in a temporary run store. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openRunStore } from "../../src/eval/store.ts";
import { collectActivations, medianRowNorm } from "../../src/interp/activations/collect.ts";
import {
  ablationTest,
  type CausalEvalOptions,
  projectOutTest,
  settingKey,
  steeringSweep,
} from "../../src/interp/causal.ts";
import { latentMeans } from "../../src/interp/interventions.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { organismQuestions } from "../../src/organism/questions.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";
import { microOrganism } from "../helpers/micro-organism.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-causal-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("steering sweep, ablation and projection on a micro-organism, recorded in the run store", async () => {
  // A micro-organism: the world's tokenizer and a tiny Llama, trained for seconds on helper chat rows.
  const tokenizer = organismTokenizer();
  const lm = await microOrganism(tmp, 30);
  const HOOK = "blocks.0.hook_resid_post";
  const sae = Sae.random({ dIn: 32, dSae: 64, k: 4, architecture: "topk", hookName: HOOK }, 1);
  const items = organismQuestions("plain").flatMap((q) =>
    q.paraphrases.map((p) => ({ prompt: [{ role: "user", content: p }] })),
  );
  const rows = collectActivations(lm, items, { hook: HOOK, tokenizer, mask: "no-special" });
  const medianNorm = medianRowNorm(rows);
  const storePath = join(tmp, "runs.sqlite");
  const store = openRunStore(storePath);
  const seen: string[] = [];
  const ctx: CausalEvalOptions = {
    lm,
    tokenizer,
    modelId: "micro",
    store,
    runPrefix: "t1",
    samples: 2,
    ...organismEvaluation(),
    sampling: { temperature: 1, maxTokens: 10, seed: 0 },
    config: { sae: "random" },
    onResult: (r) => seen.push(r.runId),
  };
  try {
    const sweep = await steeringSweep({
      ...ctx,
      target: { kind: "latent", sae, latent: 7 },
      cs: [0.5, 8],
      medianNorm,
      random: 2,
    });
    assert.ok(sweep.baseline && sweep.baseline.n === 16, "8 questions × 2 samples");
    assert.equal(sweep.points.length, 2);
    for (const p of sweep.points) {
      assert.equal(p.random.length, 2);
      assert.ok(Math.abs(p.alpha - p.c * medianNorm) < 1e-9);
      for (const r of [p.target, ...p.random]) {
        assert.equal(r.n, 16);
        assert.ok(r.coherent >= 0 && r.coherent <= 1);
        if (r.misaligned !== null) assert.ok(r.ci[0]! <= r.misaligned && r.misaligned <= r.ci[1]!);
      }
      const lats = p.random.map((r) => (r.spec.kind === "steer" ? r.spec.latent : -1));
      assert.ok(!lats.includes(7) && new Set(lats).size === 2);
    }
    // The same random latents at every c.
    assert.deepEqual(
      sweep.points[0]!.random.map((r) => settingKey(r.spec).split(":c=")[0]),
      sweep.points[1]!.random.map((r) => settingKey(r.spec).split(":c=")[0]),
    );
    assert.equal(seen.length, 1 + 2 * 3);
    // Every setting is a run whose config records its intervention; a strong push changes the answers.
    const strong = sweep.points[1]!.target;
    const info = store.run(strong.runId) as { config: { intervention: { kind: string; latent: number; c: number } } };
    assert.deepEqual(
      [info.config.intervention.kind, info.config.intervention.latent, info.config.intervention.c],
      ["steer", 7, 8],
    );
    const answers = (runId: string) => store.rows(runId).map((r) => r.answer);
    assert.notDeepEqual(answers(strong.runId), answers(sweep.baseline!.runId));
    assert.equal(store.counts(strong.runId).samples, 16);

    // Rerunning the same prefix resumes: nothing is generated again.
    const again = await steeringSweep({
      ...ctx,
      target: { kind: "latent", sae, latent: 7 },
      cs: [8],
      medianNorm,
      random: 0,
    });
    assert.ok(again.points[0]!.target.resumed && again.baseline!.resumed);
    assert.equal(again.points[0]!.target.misaligned, strong.misaligned);

    const ablation = await ablationTest({
      ...ctx,
      sae,
      latents: [7, 9],
      mode: "mean",
      reference: latentMeans(sae, rows.acts, rows.n),
      random: 1,
    });
    assert.equal(ablation.before.runId, sweep.baseline!.runId, "before = the unmodified model's run");
    assert.equal(ablation.random.length, 1);
    assert.match(ablation.after.runId, /ablate-mean:7,9$/);

    const u = sae.decoderDirection(7);
    const proj = await projectOutTest({ ...ctx, name: "latent7", hookName: HOOK, vector: u, random: 1 });
    assert.match(proj.after.runId, /project-out:latent7$/);
    assert.equal(proj.random.length, 1);

    const direction = await steeringSweep({
      ...ctx,
      runPrefix: "t2",
      target: { kind: "direction", name: "d7", hookName: HOOK, vector: u },
      cs: [1],
      medianNorm,
      random: 1,
      baseline: false,
    });
    assert.equal(direction.baseline, null);
    assert.match(direction.points[0]!.random[0]!.runId, /^t2:steer:random-direction-0\.0:c=1$/);
  } finally {
    store.close();
  }
});
