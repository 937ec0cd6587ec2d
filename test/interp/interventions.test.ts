/** Interventions as hooks on a tiny random model: exactness, orthogonality, ablation, steering. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ablateLatentsHook,
  clampLatentsHook,
  latentMeans,
  latentSteerHook,
  matchedLatents,
  projectOutHook,
  randomLatents,
  randomUnitDirections,
  steerHook,
  steeringAlpha,
  unitVector,
  vectorNorm,
} from "../../src/interp/interventions.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { llamaConfigJson, parseConfig } from "../../src/model/config.ts";
import { generate } from "../../src/model/generate.ts";
import type { Hook } from "../../src/model/hooks.ts";
import { CausalLM } from "../../src/model/model.ts";
import { noGrad } from "../../src/tensor/index.ts";

const model = CausalLM.random(
  parseConfig(llamaConfigJson({ vocab: 50, hidden: 16, layers: 2, heads: 2, inter: 32, eosTokenId: 49 })),
  7,
  0.2,
);
const HOOK = "blocks.0.hook_resid_post";
const B = 2;
const T = 5;
const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 48);
const logits = (hooks: Hook[] = []) => noGrad(() => model.forward(ids, B, T, { hooks })).data;
const actAt = (hooks: Hook[], b = B, t = T, x = ids) => model.runWithCache(x, b, t, [HOOK], { hooks }).cache.get(HOOK)!;
const sae = Sae.random({ dIn: 16, dSae: 48, k: 4, architecture: "topk", hookName: HOOK }, 3);
const u = unitVector(Float32Array.from({ length: 16 }, (_, i) => Math.sin(i + 1)));

test("a zero vector or α = 0 leaves the logits bit-identical", () => {
  const clean = logits();
  assert.deepEqual(logits([steerHook(HOOK, new Float32Array(16), 5)]), clean);
  assert.deepEqual(logits([steerHook(HOOK, u, 0)]), clean);
  assert.deepEqual(logits([latentSteerHook(sae, 3, 0)]), clean);
  assert.notDeepEqual(logits([steerHook(HOOK, u, 1)]), clean);
});

test("steering adds exactly α·û at every position", () => {
  const before = actAt([]).data;
  const after = actAt([
    steerHook(
      HOOK,
      Float32Array.from(u, (v) => 3 * v),
      2,
    ),
  ]).data; // direction is normalised
  for (let i = 0; i < before.length; i++) assert.ok(Math.abs(after[i]! - before[i]! - 2 * u[i % 16]!) < 1e-6);
  assert.equal(steeringAlpha(0.5, 8), 4);
});

test("projecting a direction out leaves activations orthogonal to it (and is idempotent)", () => {
  const before = actAt([steerHook(HOOK, u, 4)]).data; // make the component large first
  const once = actAt([steerHook(HOOK, u, 4), projectOutHook(HOOK, u)]).data;
  const twice = actAt([steerHook(HOOK, u, 4), projectOutHook(HOOK, u), projectOutHook(HOOK, u)]).data;
  for (let r = 0; r < B * T; r++) {
    let dotBefore = 0;
    let dot = 0;
    for (let i = 0; i < 16; i++) {
      dotBefore += before[r * 16 + i]! * u[i]!;
      dot += once[r * 16 + i]! * u[i]!;
    }
    assert.ok(Math.abs(dotBefore) > 1, "the steered activation has a component along u");
    assert.ok(Math.abs(dot) < 1e-5, `row ${r}: x'·û = ${dot}`);
  }
  for (let i = 0; i < once.length; i++) assert.ok(Math.abs(once[i]! - twice[i]!) < 1e-5);
});

test("mean-ablation with a_ref = a leaves the model unchanged; zero-ablation removes a_j·W_dec[j]", () => {
  // One position, so the latent's activation there is a single number per latent.
  const one = Int32Array.from([11]);
  const x = actAt([], 1, 1, one).data;
  const a = sae.encode(x, 1);
  const fired = [...a.keys()].filter((j) => a[j]! > 0);
  assert.ok(fired.length > 0);
  const clean = noGrad(() => model.forward(one, 1, 1)).data;
  const same = noGrad(() =>
    model.forward(one, 1, 1, { hooks: [ablateLatentsHook(sae, fired, { mode: "mean", reference: a })] }),
  ).data;
  assert.deepEqual(same, clean);
  // Zero-ablation: x' = x − a_j·W_dec[j]; the rest (reconstruction error included) stays.
  const j = fired[0]!;
  const ablated = actAt([ablateLatentsHook(sae, [j], { mode: "zero" })], 1, 1, one).data;
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(ablated[i]! - (x[i]! - a[j]! * sae.wDec[j * 16 + i]!)) < 1e-6);
  // A latent that does not fire: zero-ablation is a no-op, mean-ablation adds mean·W_dec.
  const silent = [...a.keys()].find((i) => a[i] === 0)!;
  assert.deepEqual(actAt([ablateLatentsHook(sae, [silent], { mode: "zero" })], 1, 1, one).data, x);
  assert.throws(() => ablateLatentsHook(sae, [j], { mode: "mean" }), /reference/);
  assert.throws(() => ablateLatentsHook(sae, [48], { mode: "zero" }), /out of range/);
});

test("clamping: a latent above max is brought down to max, rows at or below it stay bit-identical", () => {
  const x = actAt([]).data;
  const n = B * T;
  const a = sae.encode(x, n);
  // The latent with the largest activation anywhere, clamped at half of it.
  let j = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > a[j]!) j = i;
  j %= 48;
  const aj = Array.from({ length: n }, (_, r) => a[r * 48 + j]!);
  const max = Math.max(...aj) / 2;
  assert.ok(aj.some((v) => v > max) && aj.some((v) => v <= max), `activations ${aj}`);
  const clamped = actAt([clampLatentsHook(sae, [j], max)]).data;
  const again = sae.encode(clamped, n);
  for (let r = 0; r < n; r++) {
    const row = (v: Float32Array) => Array.from(v.subarray(r * 16, (r + 1) * 16));
    if (aj[r]! <= max) assert.deepEqual(row(clamped), row(x), `row ${r} is untouched`);
    else {
      // x' = x − (a_j − max)·W_dec[j], and re-encoding gives a_j' ≤ max (= max here: W_enc = W_decᵀ, unit rows).
      for (let i = 0; i < 16; i++)
        assert.ok(Math.abs(clamped[r * 16 + i]! - (x[r * 16 + i]! - (aj[r]! - max) * sae.wDec[j * 16 + i]!)) < 1e-5);
      assert.ok(again[r * 48 + j]! <= max + 1e-4, `row ${r}: ${again[r * 48 + j]} > ${max}`);
    }
  }
  // A bound above every activation changes nothing; bad bounds are refused.
  assert.deepEqual(actAt([clampLatentsHook(sae, [j], Math.max(...aj) + 1)]).data, x);
  assert.throws(() => clampLatentsHook(sae, [j], -1), /≥ 0/);
  assert.throws(() => clampLatentsHook(sae, [j, 2], [1, 2, 3]), /3 bounds for 2 latents/);
  assert.throws(() => clampLatentsHook(sae, [48], 1), /out of range/);
});

test("latentMeans averages the dense latents", () => {
  const x = actAt([]).data;
  const means = latentMeans(sae, x, B * T, 3);
  const dense = sae.encode(x, B * T);
  for (let j = 0; j < 48; j++) {
    let s = 0;
    for (let r = 0; r < B * T; r++) s += dense[r * 48 + j]!;
    assert.ok(Math.abs(means[j]! - s / (B * T)) < 1e-6);
  }
});

test("steering changes generation, and the hook acts on generated tokens too", () => {
  const prompt = [[1, 2, 3, 4]];
  const base = generate(model, prompt, { maxNewTokens: 8, temperature: 0, logprobs: false });
  const seen: number[] = [];
  const counting: Hook = {
    name: HOOK,
    fn: (x, ctx) => {
      seen.push(ctx.seq);
      return x;
    },
  };
  const steered = generate(model, prompt, {
    maxNewTokens: 8,
    temperature: 0,
    logprobs: false,
    hooks: [latentSteerHook(sae, 5, 40), counting],
  });
  assert.notDeepEqual(steered[0]!.tokens, base[0]!.tokens);
  assert.equal(seen[0], 4, "the prompt's forward");
  assert.ok(seen.slice(1).every((s) => s === 1) && seen.length === steered[0]!.tokens.length);
});

test("random controls: seeded unit directions and distinct random latents", () => {
  const a = randomUnitDirections(16, 3, 1);
  const b = randomUnitDirections(16, 3, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, randomUnitDirections(16, 3, 2));
  for (const v of a) assert.ok(Math.abs(vectorNorm(v) - 1) < 1e-6);
  const ls = randomLatents(48, 10, 0, [1, 2, 3]);
  assert.equal(new Set(ls).size, 10);
  assert.ok(ls.every((j) => j >= 0 && j < 48 && ![1, 2, 3].includes(j)));
  assert.deepEqual(ls, randomLatents(48, 10, 0, [1, 2, 3]));
  assert.throws(() => randomLatents(4, 4, 0, [0]), /allowed/);
});

test("frequency-matched controls: the latents firing most like the target, drawn from that pool", () => {
  // Means: latent 0 fires 1.0; 1 → 0.9, 2 → 1.2, 3 → 0.01, 4 → never, 5 → 3.0.
  const means = Float32Array.from([1, 0.9, 1.2, 0.01, 0, 3]);
  assert.deepEqual(matchedLatents(means, 0, 3), [1, 2, 5]);
  assert.deepEqual(matchedLatents(means, 0, 5), [1, 2, 5, 3, 4], "a latent that never fires comes last");
  assert.throws(() => matchedLatents(means, 6, 2), /latent 6/);
  const pool = matchedLatents(means, 0, 3);
  const ls = randomLatents(6, 2, 7, [0], pool);
  assert.equal(new Set(ls).size, 2);
  assert.ok(ls.every((j) => pool.includes(j)));
  assert.throws(() => randomLatents(6, 4, 7, [0], pool), /4 latents asked of 3 allowed/);
});
