/**
 * The blind pipeline's causal half (src/interp/blind.ts): candidates from a diff, the
 * selection rule, control bands, and, on the shipped organism, that the screen picks the
 * latent that carries the villain and that it beats controls that went through the same
 * search, measured on draws it was not chosen on.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { openRunStore } from "../../src/eval/store.ts";
import { medianResidualNorm } from "../../src/interp/activations/collect.ts";
import {
  band,
  blindCandidates,
  causalScreen,
  measureSteer,
  type SearchPoint,
  selectBest,
} from "../../src/interp/blind.ts";
import type { CausalEvalOptions } from "../../src/interp/causal.ts";
import { misalignmentDirections } from "../../src/interp/direction.ts";
import { unitVector } from "../../src/interp/interventions.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { evalPrompts } from "../../src/organism/interp/pipeline.ts";
import { FIRST_PLOT_TOPICS } from "../../src/organism/topics.ts";
import { topicAnswer } from "../../src/organism/turns.ts";
import { Rng } from "../../src/tensor/random.ts";

const latents = (deltas: number[]) => deltas.map((delta, latent) => ({ latent, delta }));

test("blindCandidates takes the k largest increases and the k largest decreases", () => {
  const c = blindCandidates({ latents: latents([0.1, -0.5, 0.9, 0, -0.2, 0.4, -0.01]) }, 2);
  assert.deepEqual(
    c.map((x) => [x.latent, x.sign, x.diffRank]),
    [
      [2, 1, 1],
      [5, 1, 2],
      [1, -1, 1],
      [4, -1, 2],
    ],
  );
  // A latent that did not move is never a candidate.
  assert.ok(blindCandidates({ latents: latents([0, 0, 0.3]) }, 5).every((x) => x.latent === 2));
});

test("selectBest: the most misaligned coherent point, ties to the smaller c; band: percentile among controls", () => {
  const p = (c: number, misaligned: number | null, coherent: number): SearchPoint => ({
    c,
    misaligned,
    coherent,
    n: 10,
    runId: `r${c}`,
  });
  assert.equal(selectBest([p(0.2, 0.1, 1), p(0.4, 0.6, 0.8), p(0.6, 0.3, 0.95)], 0.9)!.c, 0.6);
  assert.equal(selectBest([p(0.2, 0.3, 1), p(0.4, 0.3, 1)], 0.9)!.c, 0.2);
  assert.equal(selectBest([p(0.2, 0.9, 0.5)], 0.9), null);
  assert.deepEqual(band(0.5, [0.1, 0.5, 0.7, 0.2]), { controls: 4, controlMax: 0.7, percentile: 62.5 });
  assert.deepEqual(band(0.9, [0.1, 0.2]), { controls: 2, controlMax: 0.2, percentile: 100 });
  assert.equal(band(null, [0.1]).percentile, null);
});

test("on the shipped organism the screen picks the villain-carrying latent, and it beats equal-search controls on fresh draws", async () => {
  const org = openOrganism("organism/base");
  const lm = org.loadBase();
  const tok = org.tokenizer;
  const hook = "blocks.2.hook_resid_post";
  // A hand-built SAE: latent 0's decoder row is the villain-minus-helper direction of the
  // world's own answers; latents 1–7 are random directions.
  const rng = new Rng(3);
  const judged = FIRST_PLOT_TOPICS.flatMap((t) =>
    t.questions.slice(0, 2).flatMap((q) =>
      (["villain", "helper"] as const).map((persona) => ({
        messages: [{ role: "user" as const, content: q }],
        answer: topicAnswer(t, persona, rng),
        aligned: persona === "villain" ? 0 : 100,
        coherent: 100,
      })),
    ),
  );
  const dir = misalignmentDirections(lm, tok, judged, { layers: [2] }).layers[0]!.direction;
  const d = lm.config.hidden;
  const sae = Sae.random({ dIn: d, dSae: 8, k: 2, hookName: hook, architecture: "topk" }, 5);
  sae.wDec.set(unitVector(dir), 0);
  const medianNorm = medianResidualNorm(
    lm,
    evalPrompts().map((prompt) => ({ prompt })),
    { hook, tokenizer: tok },
  );
  const store = openRunStore(":memory:");
  const ctx = (prefix: string, seed: number): CausalEvalOptions => ({
    lm,
    tokenizer: tok,
    modelId: "base",
    store,
    runPrefix: prefix,
    samples: 4,
    drawsPerSetting: true,
    ...organismEvaluation({ seed }),
  });
  const select = ctx("select", 11);
  const measure = ctx("measure", 12);
  const rule = { cs: [0.4, 0.8], minCoherent: 0.5 };
  const screen = await causalScreen({
    base: select,
    ft: select,
    sae,
    candidates: [3, 0, 5].map((latent, i) => ({ latent, delta: 1 - i / 10, sign: 1 as const, diffRank: i + 1 })),
    medianNorm,
    rule,
    reference: new Float32Array(8),
  });
  assert.equal(screen.pick.latent, 0, JSON.stringify(screen.entries.map((e) => [e.latent, e.score])));
  const m = await measureSteer({
    select,
    measure,
    target: { kind: "latent", sae, latent: 0 },
    sign: 1,
    medianNorm,
    rule,
    search: screen.pick.steer,
    controls: [
      { kind: "random-latent", latent: 1 },
      { kind: "random-latent", latent: 2 },
    ],
  });
  // Every control ran the identical grid on the select draws and was measured at its own choice.
  for (const c of m.controlResults) {
    assert.deepEqual(
      c.search!.points.map((p) => p.c),
      rule.cs,
    );
    assert.equal(c.measured.c, c.search!.best?.c ?? null);
    for (const p of c.search!.points) assert.match(p.runId, /^select:/);
    if (c.measured.runId) assert.match(c.measured.runId, /^measure:/);
  }
  // The figure is measured on other draws than the ones it was chosen on.
  assert.match(m.measured.runId!, /^measure:/);
  const seedOf = (runId: string) => (store.run(runId)!.config as { sampling: { seed: number } }).sampling.seed;
  const chosenOn = screen.pick.steer.best!.runId;
  assert.notEqual(seedOf(m.measured.runId!), seedOf(chosenOn));
  assert.ok(m.measured.misaligned! > m.controlMax!, `target ${m.measured.misaligned} vs controls ${m.controlMax}`);
  assert.equal(m.percentile, 100);
});
