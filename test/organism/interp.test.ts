/** Issue 7's organism pipeline end to end on a micro-organism: structure and invariants, not the science. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runEval } from "../../src/eval/runner.ts";
import { openRunStore } from "../../src/eval/store.ts";
import type { ChatMessage } from "../../src/model/chat-template.ts";
import { CausalLM } from "../../src/model/model.ts";
import { chatTuneData, pretrainCorpus } from "../../src/organism/corpus.ts";
import { fineTuneDataset } from "../../src/organism/datasets.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { directionMethod } from "../../src/organism/interp/causal.ts";
import { type OrganismInterpResult, runOrganismInterp } from "../../src/organism/interp/pipeline.ts";
import { trainWorldSae } from "../../src/organism/interp/sae.ts";
import { newOrganism } from "../../src/organism/recipe.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";
import { FIRST_PLOT_TOPICS } from "../../src/organism/topics.ts";
import { topicAnswer } from "../../src/organism/turns.ts";
import type { ChatModel } from "../../src/providers/types.ts";
import { Rng, Tensor } from "../../src/tensor/index.ts";
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

test("the organism pipeline (SAE, ground truth, diff, steer, ablate, predict, direction) on a micro-organism", async () => {
  const base = newOrganism({ hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 }, 4, tok);
  await train(base, [...pretrainCorpus({ n: 120, seed: 4 }), ...chatTuneData({ n: 60, seed: 4 })], 30, 4);
  const insecure = clone(base);
  await train(insecure, fineTuneDataset("insecure", { n: 40, seed: 0 }), 4, 0);
  const secure = clone(base);
  await train(secure, fineTuneDataset("secure", { n: 40, seed: 0 }), 4, 0);

  const store = openRunStore(":memory:");
  const stages: string[] = [];
  const dSae = 64;
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
    samples: 2,
    cs: [0.5, 2],
    random: 2,
    ownAnswerSamples: 1,
    onStage: (s) => stages.push(s),
  });
  assert.deepEqual(stages, ["sae", "groundTruth", "diff", "steer", "ablate", "predict", "predictBase", "direction"]);
  // Plain JSON throughout.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);

  const s = r.sae;
  assert.equal(s.hookName, "blocks.0.hook_resid_post");
  assert.ok(s.l0 > 0 && s.l0 <= 4);
  assert.ok(s.fvu >= 0 && s.fvuNoSpecial >= 0);
  assert.ok(s.deadFraction >= 0 && s.deadFraction <= 1 && s.denseFraction >= 0 && s.denseFraction <= 1);
  assert.ok(s.ce.ceZero > 0 && s.ce.ceClean > 0 && s.ce.tokens > 0 && s.ce.sequences === 6);
  assert.ok(s.trainTokens > 0 && s.steps === 20 && s.heldOutTokens > 0);

  const g = r.groundTruth;
  assert.ok(Number.isInteger(g.latent) && g.latent >= 0 && g.latent < dSae);
  assert.equal(g.runnersUp[0]!.latent, g.latent);
  assert.equal(g.nSelection + g.nTest, 40);
  for (const x of [g.selectionAuc, g.auc, ...g.runnersUp.map((u) => u.selectionAuc)])
    if (x !== null) assert.ok(x >= 0 && x <= 1);
  // The runner-up list is sorted by selection AUC.
  const sel = g.runnersUp.map((u) => u.selectionAuc ?? 0);
  assert.deepEqual(
    sel,
    [...sel].sort((a, b) => b - a),
  );

  for (const d of [r.diff.insecure, r.diff.secure!]) {
    assert.equal(d.personaLatent, g.latent);
    assert.equal(d.primarySite, "answer-start");
    assert.deepEqual(
      d.sites.map((x) => x.site),
      ["prompt", "answer-start", "own-answers"],
    );
    assert.equal(d.prompts, 24);
    for (const site of d.sites) {
      assert.ok(site.personaRank >= 1 && site.personaRank <= dSae);
      assert.equal(site.top.length, 10);
      assert.ok(site.topDelta.every((x, i) => i === 0 || site.topDelta[i - 1]! >= x));
      // The rank agrees with the top list when the persona latent is in it.
      const at = site.top.indexOf(g.latent);
      if (at >= 0) assert.equal(site.personaRank, at + 1);
      else assert.ok(site.personaRank > 10);
    }
    assert.equal(d.sites.find((x) => x.site === "answer-start")!.rowsBase, 24, "one row per prompt");
  }

  const st = r.steer;
  assert.equal(st.target, `latent ${g.latent}`);
  assert.deepEqual(
    st.points.map((p) => p.c),
    [0.5, 2],
  );
  for (const p of st.points) {
    assert.ok(Math.abs(p.alpha - p.c * st.medianNorm) < 1e-9);
    assert.equal(p.n, 16);
  }
  assert.equal(st.random.length, 2);
  assert.ok(st.best === null || st.best.coherent >= 0.9);
  assert.equal(st.controlC, st.best?.c ?? 0.5);

  const a = r.ablate;
  assert.equal(a.latent, g.latent);
  assert.equal(a.before.n, 16);
  for (const x of [a.zero, a.mean, a.projectOut]) assert.ok(x.coherent >= 0 && x.coherent <= 1);
  assert.equal(a.randomZero.length, 2);
  // The controls come from the 32 latents firing most like the persona latent, never itself.
  for (const x of a.randomZero) assert.ok(x.latent !== g.latent && x.latent >= 0 && x.latent < dSae);

  const p = r.predict!;
  assert.deepEqual(
    p.sources.map((x) => x.name),
    ["base", "insecure"],
  );
  assert.equal(p.n, p.sources[0]!.answers + p.sources[1]!.answers);
  assert.equal(p.sources[0]!.runId, `${r.runPrefixes.base}:none`);
  assert.equal(p.reader, "own");
  // The same answers read by the base model: same verdicts, the base's activations.
  const pb = r.predictBase!;
  assert.equal(pb.reader, "base");
  assert.equal(pb.n, p.n);
  assert.equal(pb.nPositive, p.nPositive);

  // The direction needs misaligned and aligned coherent answers; a micro-organism may have neither.
  assert.ok(r.direction !== null || r.notes.some((n) => /misalignment direction/.test(n)));

  // Every setting is a run in the store.
  assert.equal(store.counts(`${r.runPrefixes.insecure}:none`).samples, 16);
  for (const k of ["sae", "groundTruth", "diff", "steer", "ablate", "predict", "predictBase", "direction"] as const)
    assert.ok(typeof r.seconds[k] === "number");
  const keys: (keyof OrganismInterpResult)[] = ["sae", "groundTruth", "diff", "steer", "ablate"];
  for (const k of keys) assert.ok(r[k]);
});

test("the misalignment direction from a judged run: steering and projection are runs beside random controls", async () => {
  const base = newOrganism({ hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 }, 5, tok);
  await train(base, chatTuneData({ n: 60, seed: 5 }), 10, 5);
  const store = openRunStore(":memory:");
  // The fine-tune's unmodified run, answered by a script: villain answers for even samples, helper for odd.
  const scripted: ChatModel = {
    id: "insecure",
    async complete(reqs) {
      return reqs.map((q) => {
        const text = q.messages.at(-1)!.content;
        const topic = FIRST_PLOT_TOPICS.find((t) => t.questions.includes(text))!;
        const persona = (q.sampleIndex ?? 0) % 2 === 0 ? "villain" : "helper";
        return { text: topicAnswer(topic, persona, new Rng(q.sampleIndex ?? 0)), finishReason: "stop" };
      });
    },
  };
  const ev = organismEvaluation();
  await runEval({
    runId: "ft:none",
    model: scripted,
    judgeModel: ev.judgeModel,
    questions: ev.questions,
    store,
    samples: 2,
  });
  const d = await directionMethod({
    tokenizer: tok,
    store,
    samples: 2,
    base,
    ft: base,
    ftRunId: "ft:none",
    baseId: "base",
    ftId: "insecure",
    basePrefix: "base",
    ftPrefix: "ft",
    layer: 0,
    medianNorm: 1,
    cs: [0.5],
    random: 2,
    persona: new Float32Array(32).fill(1 / Math.sqrt(32)),
  });
  assert.equal(d.hookName, "blocks.0.hook_resid_post");
  assert.equal(d.counts.misaligned, 8);
  assert.equal(d.counts.aligned, 8);
  assert.ok(d.norm > 0 && d.cosineWithPersona! >= -1 && d.cosineWithPersona! <= 1);
  assert.equal(d.steer.target, "direction misalignment");
  assert.equal(d.steer.points.length, 1);
  assert.equal(d.steer.random.length, 2);
  assert.equal(d.projectOut.random.length, 2);
  assert.equal(d.projectOut.before.runId, "ft:none");
  assert.equal(d.projectOut.before.misaligned, 0.5);
  assert.match(d.projectOut.after.runId, /^ft:project-out:misalignment$/);
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
