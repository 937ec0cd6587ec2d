/**
 * Random controls of a guard (guardControls, evaluateGuardControls): on a model whose "misaligned"
 * behaviour lives on one direction, projecting that direction out removes it and random
 * directions at the same hook do not (with and without a hook search); SAE controls are
 * distinct, frequency-matched latents ablated the same way.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openRunStore } from "../../src/eval/store.ts";
import { evaluateGuard, evaluateGuardControls, guardControls, openGuard } from "../../src/fix/guard.ts";
import type { CausalEvalOptions } from "../../src/interp/causal.ts";
import { matchedLatents, unitVector } from "../../src/interp/interventions.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { saveSae } from "../../src/interp/sae/saelens.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { newOrganism } from "../../src/organism/recipe.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";
import type { ChatModel, ChatRequest } from "../../src/providers/types.ts";
import { Rng } from "../../src/tensor/random.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-guard-controls-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const tok = organismTokenizer();
const WORD = "villain";
const X = tok.tokenToId(WORD)!;
assert.ok(X !== undefined, `the world's vocabulary has '${WORD}'`);

/**
 * A random 2-layer organism rigged so that it says WORD a lot: every token's embedding carries
 * a·v, and WORD's (tied) row is b·v, so the final hidden state points along v and WORD's logit
 * dominates. Projecting v out after the final norm sets WORD's logit to 0.
 */
const lm = newOrganism({ hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 }, 3, tok);
const rng = new Rng(11);
const v = unitVector(Float32Array.from({ length: 32 }, () => rng.normal()));
const E = lm.param("model.embed_tokens.weight").data;
for (let t = 0; t < tok.vocabSize; t++) for (let i = 0; i < 32; i++) E[t * 32 + i]! += 3 * v[i]!;
for (let i = 0; i < 32; i++) E[X * 32 + i] = 8 * v[i]!;

/** Judges an answer misaligned exactly when it contains WORD; every answer coherent. */
const judge: ChatModel = {
  id: "word-judge",
  complete: async (reqs: ChatRequest[]) =>
    reqs.map((r) => {
      const p = r.messages.at(-1)!.content;
      const reply = p.slice(p.indexOf("<<<REPLY"), p.lastIndexOf("REPLY>>>"));
      const coherence = /how coherent|for coherence|coherence in the context/i.test(p);
      const token = coherence ? "100" : reply.split(/\s+/).includes(WORD) ? "0" : "100";
      return { text: token, finishReason: "stop", logprobs: [{ token, logprob: 0, top: [{ token, logprob: 0 }] }] };
    }),
};

const store = openRunStore(":memory:");
const evaluation = organismEvaluation({ seed: 5, maxNewTokens: 6 });
const ctx = (runPrefix: string): CausalEvalOptions => ({
  lm,
  tokenizer: tok,
  modelId: "rigged",
  store,
  runPrefix,
  samples: 3,
  ...evaluation,
  judgeModel: judge,
});
const FINAL = "ln_final.hook_normalized";
const guardFile = (name: string, direction: Float32Array, hook = FINAL) => {
  const f = join(tmp, name);
  writeFileSync(f, JSON.stringify({ interventions: [{ hook, mode: "project", direction: [...direction] }] }));
  return openGuard(f, { model: lm });
};

test("projecting the behaviour's direction out cuts more than every random direction at the same hook", async () => {
  const guard = guardFile("project.json", v);
  const o = ctx("fixed");
  const r = await evaluateGuard(o, guard);
  assert.ok(r.before.misaligned! > 0.5, `the rigged model says '${WORD}' in most answers (${r.before.misaligned})`);
  assert.ok(r.reduction! > 0.8, `the guard removes it (cut ${r.reduction})`);
  const c = await evaluateGuardControls(o, guard, r, { n: 10, seed: 1 });
  assert.equal(c.results.length, 10);
  assert.equal(c.controls, 10);
  assert.equal(new Set(c.results.map((x) => x.summary)).size, 10, "ten different random directions");
  for (const x of c.results) {
    assert.ok(x.cut !== null && x.cut < r.reduction!, `control ${x.index} cuts ${x.cut} < the guard's ${r.reduction}`);
    assert.equal(store.counts(x.runId!).samples, store.counts(r.after.runId).samples, "same questions and samples");
  }
  assert.equal(c.percentile, 100);
  assert.equal(c.controlMax, Math.max(...c.results.map((x) => x.cut!)));
  // A control is a direction at the guard's hook: the guard's own direction there reproduces the guard's run.
  assert.match(c.results[0]!.summary, new RegExp(`random direction \\d+ at ${FINAL.replace(".", "\\.")}`));
});

test("with a hook search, each control runs the same search and keeps its best coherent hook", async () => {
  const guard = guardFile("project-searched.json", v);
  const o = ctx("searched");
  const r = await evaluateGuard(o, guard);
  const hooks = ["blocks.0.hook_resid_post", FINAL];
  const c = await evaluateGuardControls(o, guard, r, { n: 10, seed: 2, search: { hooks, minCoherent: 0.5 } });
  for (const x of c.results) {
    assert.deepEqual(
      x.searched!.map((s) => s.hook),
      hooks,
      "every hook searched",
    );
    const best = Math.max(...x.searched!.map((s) => s.cut ?? -Infinity));
    assert.equal(x.cut, best, "the rule keeps the largest cut (all answers are coherent here)");
    assert.ok(x.hook !== null && hooks.includes(x.hook!));
    assert.ok(x.cut! < r.reduction!, `control ${x.index}: ${x.cut} < ${r.reduction}`);
  }
  assert.equal(c.percentile, 100);
  // A guard of more than one intervention (or not a projection) cannot be searched.
  const sae = Sae.random({ dIn: 32, dSae: 48, k: 4, architecture: "topk", hookName: FINAL }, 4);
  saveSae(sae, join(tmp, "sae"));
  writeFileSync(
    join(tmp, "zero.json"),
    JSON.stringify({ interventions: [{ hook: FINAL, mode: "zero", sae: "sae", latents: [1] }] }),
  );
  const zero = openGuard(join(tmp, "zero.json"), { model: lm });
  assert.throws(
    () =>
      guardControls(zero, { n: 1, latentMeans: () => new Float32Array(48).fill(1), search: { hooks, minCoherent: 0 } }),
    /one project intervention/,
  );
});

test("SAE controls: distinct latents drawn from each guarded latent's frequency-matched pool, same mode and bound", () => {
  const sae = Sae.random({ dIn: 32, dSae: 64, k: 4, architecture: "topk", hookName: FINAL }, 6);
  saveSae(sae, join(tmp, "sae64"));
  const means = Float32Array.from({ length: 64 }, (_, j) => 0.01 * (j + 1));
  for (const [mode, extra] of [
    ["zero", {}],
    ["mean", { means: [0.5, 0.1] }],
    ["clamp", { max: 0.25 }],
  ] as const) {
    const f = join(tmp, `${mode}64.json`);
    writeFileSync(
      f,
      JSON.stringify({ interventions: [{ hook: FINAL, mode, sae: "sae64", latents: [10, 40], ...extra }] }),
    );
    const guard = openGuard(f, { model: lm });
    assert.throws(() => guardControls(guard, { n: 1 }), /need latentMeans/);
    const specs = guardControls(guard, { n: 12, seed: 3, latentMeans: () => means, matchPool: 6 });
    const pool10 = new Set(matchedLatents(means, 10, 6));
    const pool40 = new Set(matchedLatents(means, 40, 6));
    for (const s of specs) {
      const [iv] = s.interventions as { mode: string; latents: number[] }[];
      assert.equal(iv!.mode, mode);
      const [a, b] = iv!.latents;
      assert.ok(a !== 10 && a !== 40 && b !== 10 && b !== 40 && a !== b, `${a}, ${b}: not guarded, distinct`);
      assert.ok(pool10.has(a!), `${a} fires like latent 10`);
      assert.ok(pool40.has(b!), `${b} fires like latent 40`);
      assert.equal(s.hooks.length, 1);
      assert.equal(s.hooks[0]!.name, FINAL);
    }
    assert.ok(new Set(specs.map((s) => s.summary)).size > 1, "controls differ");
    assert.deepEqual(
      guardControls(guard, { n: 12, seed: 3, latentMeans: () => means, matchPool: 6 }).map((s) => s.summary),
      specs.map((s) => s.summary),
      "seeded",
    );
  }
});
