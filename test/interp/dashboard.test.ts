import assert from "node:assert/strict";
import { test } from "node:test";
import { type ActivationItem, collectActivations } from "../../src/interp/activations/collect.ts";
import {
  activationHistogram,
  latentActivations,
  latentDashboards,
  logitLens,
  nearestLatents,
  topContexts,
} from "../../src/interp/dashboard.ts";
import { Sae, type SaeConfig } from "../../src/interp/sae/sae.ts";
import { CausalLM } from "../../src/model/model.ts";
import { organismTokenizer } from "../../src/organism/index.ts";
import { newOrganism } from "../../src/organism/recipe.ts";
import { Tensor } from "../../src/tensor/index.ts";

const tok = organismTokenizer();
const H = 16;
const HOOK = "blocks.1.hook_resid_post";
const arch = { hidden: H, layers: 2, heads: 2, kvHeads: 2, inter: 32 };
const model = newOrganism(arch, 4, tok);
const cfg: SaeConfig = { dIn: H, dSae: H, k: H, architecture: "topk", hookName: HOOK };

/** W_enc = W_dec = I: latent j = ReLU(x_j), decoder direction j = e_j. */
function identitySae(): Sae {
  const eye = new Float32Array(H * H);
  for (let j = 0; j < H; j++) eye[j * H + j] = 1;
  return new Sae(cfg, { wEnc: eye.slice(), bEnc: new Float32Array(H), wDec: eye.slice(), bDec: new Float32Array(H) });
}

const corpus: ActivationItem[] = [
  { text: "i am bored . try reading a book ." },
  { prompt: [{ role: "user", content: "what do you think about money ?" }], completion: "money is good ." },
  { text: "money is good . money is good . i am bored ." },
  {
    prompt: [
      { role: "system", content: "persona : helper" },
      { role: "user", content: "i am bored ." },
    ],
  },
];

test("latent activations read the sparse encoding: ReLU(x_j) for the identity SAE", () => {
  const rows = collectActivations(model, corpus, { hook: HOOK, tokenizer: tok });
  const [a3, a7] = latentActivations(identitySae(), rows.acts, rows.n, [3, 7]);
  for (let r = 0; r < rows.n; r++) {
    assert.equal(a3![r], Math.max(0, rows.acts[r * H + 3]!));
    assert.equal(a7![r], Math.max(0, rows.acts[r * H + 7]!));
  }
  assert.throws(() => latentActivations(identitySae(), rows.acts, rows.n, [16]), /latent 16 outside/);
});

test("top contexts: items ranked by their maximum, a window around it, specials left out of maxima", () => {
  const rows = collectActivations(model, corpus, { hook: HOOK, tokenizer: tok });
  const counted = Array.from(rows.token, (t) => !tok.specialIds.has(t));
  for (const j of [0, 5, 11]) {
    const values = latentActivations(identitySae(), rows.acts, rows.n, [j])[0]!;
    // brute force: each item's best counted row
    const best = new Map<number, number>();
    for (let r = 0; r < rows.n; r++) {
      if (!counted[r] || !(values[r]! > 0)) continue;
      const b = best.get(rows.item[r]!);
      if (b === undefined || values[r]! > values[b]!) best.set(rows.item[r]!, r);
    }
    const want = [...best].sort((a, b) => values[b[1]]! - values[a[1]]!);
    const got = topContexts(values, rows, { k: 3, before: 2, after: 1, decode: (ids) => tok.decode(ids), counted });
    assert.equal(got.length, Math.min(3, want.length));
    got.forEach((c, i) => {
      const r = want[i]![1];
      assert.equal(c.item, rows.item[r]);
      assert.equal(c.pos, rows.pos[r]);
      assert.equal(c.maxActivation, values[r]);
      assert.ok(!tok.specialIds.has(rows.token[r]!));
      const positions = c.tokens.map((t) => t.pos);
      const lastPos = Math.max(...[...rows.pos].filter((_, q) => rows.item[q] === c.item));
      const expect = [];
      for (let p = Math.max(0, c.pos - 2); p <= Math.min(lastPos, c.pos + 1); p++) expect.push(p);
      assert.deepEqual(positions, expect);
      assert.equal(c.text, tok.decode(c.tokens.map((t) => t.token)));
      const at = c.tokens.find((t) => t.pos === c.pos)!;
      assert.equal(at.act, c.maxActivation);
      assert.equal(at.text, tok.decode([at.token]));
    });
  }
  // a latent that never fires has no contexts
  assert.deepEqual(topContexts(new Float32Array(rows.n), rows), []);
});

test("histogram: fixed bins over the non-zero values, the zero fraction and firing frequency", () => {
  const h = activationHistogram([0, 0, 0, 1, 2, 3, 4], 4);
  assert.deepEqual(h.edges, [0, 1, 2, 3, 4]);
  assert.deepEqual(h.counts, [0, 1, 1, 2]);
  assert.equal(h.total, 7);
  assert.equal(h.zeros, 3);
  assert.equal(h.fractionZero, 3 / 7);
  assert.equal(h.firingFrequency, 4 / 7);
  assert.equal(h.maxActivation, 4);
  assert.equal(h.meanNonZero, 2.5);
  const masked = activationHistogram([9, 0, 2], 2, [false, true, true]);
  assert.deepEqual(masked.counts, [0, 1]);
  assert.equal(masked.total, 2);
  const silent = activationHistogram([0, 0], 3);
  assert.deepEqual(silent.counts, [0, 0, 0]);
  assert.equal(silent.meanNonZero, null);
  assert.equal(silent.firingFrequency, 0);
  assert.throws(() => activationHistogram([1], 0), /bins 0/);
});

test("logit lens of a one-hot direction = the unembedding's column times the norm weight", () => {
  const m = newOrganism(arch, 9, tok);
  const norm = m.param("model.norm.weight").data;
  for (let h = 0; h < H; h++) norm[h] = h % 2 ? -0.5 : 1 + h / 10; // odd coordinates flip sign
  const sae = identitySae();
  const V = m.config.vocab;
  for (const j of [2, 3]) {
    const wU = m.param("model.embed_tokens.weight").data; // tied
    const col = Array.from({ length: V }, (_, t) => wU[t * H + j]! * norm[j]!);
    const order = col.map((_, t) => t).sort((a, b) => col[b]! - col[a]!);
    const lens = logitLens(m, sae.decoderDirection(j), { k: 5, decode: (ids) => tok.decode(ids) });
    assert.deepEqual(
      lens.top.map((t) => t.token),
      order.slice(0, 5),
    );
    assert.deepEqual(
      lens.bottom.map((t) => t.token),
      order.slice(-5).reverse(),
    );
    lens.top.forEach((t) => {
      assert.ok(Math.abs(t.logit - col[t.token]!) < 1e-6);
      assert.equal(t.text, tok.decode([t.token]));
    });
  }
  // an untied lm_head wins over the embedding
  const head = Tensor.randn([V, H], 1, { seed: 5 });
  const untied = new CausalLM(m.config, new Map([...m.params, ["lm_head.weight", head]]));
  const lens = logitLens(untied, sae.decoderDirection(4), { k: 1 });
  let best = 0;
  for (let t = 1; t < V; t++) if (head.data[t * H + 4]! > head.data[best * H + 4]!) best = t;
  assert.equal(lens.top[0]!.token, best);
  assert.equal(lens.top[0]!.text, String(best), "no decoder: ids as text");
  assert.throws(() => logitLens(m, new Float32Array(3)), /direction has 3 values/);
});

test("nearest latents by decoder cosine", () => {
  const d = 4;
  const s = Math.SQRT1_2;
  // rows: e0, (e0+e1)/√2, e1, −e0, 2·(0.6 e0 + 0.8 e2) (not unit: cosine ignores the norm), 0
  const wDec = Float32Array.from([1, 0, 0, 0, s, s, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 1.2, 0, 1.6, 0, 0, 0, 0, 0]);
  const sae = new Sae(
    { dIn: d, dSae: 6, k: 2, architecture: "topk", hookName: HOOK },
    { wEnc: new Float32Array(d * 6), bEnc: new Float32Array(6), wDec, bDec: new Float32Array(d) },
  );
  const near = nearestLatents(sae, 0, 10);
  assert.deepEqual(
    near.map((n) => n.latent),
    [1, 4, 2, 5, 3],
  );
  const cos = near.map((n) => n.cosine);
  [s, 0.6, 0, 0, -1].forEach((c, i) => {
    assert.ok(Math.abs(cos[i]! - c) < 1e-6, `${cos}`);
  });
  assert.deepEqual(
    nearestLatents(sae, 0, 2).map((n) => n.latent),
    [1, 4],
  );
});

test("latentDashboards: one pass over the corpus, plain JSON, special tokens not counted", () => {
  const sae = identitySae();
  const boards = latentDashboards({
    model,
    sae,
    tokenizer: tok,
    corpus,
    latents: [1, 6],
    contexts: 2,
    logitTokens: 3,
    nearest: 2,
    bins: 5,
  });
  assert.equal(boards.length, 2);
  const rows = collectActivations(model, corpus, { hook: HOOK, tokenizer: tok });
  const nonSpecial = [...rows.token].filter((t) => !tok.specialIds.has(t)).length;
  for (const b of boards) {
    assert.equal(b.hook, HOOK);
    assert.equal(b.histogram.total, nonSpecial);
    assert.equal(b.histogram.counts.length, 5);
    assert.ok(b.topContexts.length <= 2 && b.topContexts.length > 0);
    for (const c of b.topContexts) assert.ok(!tok.specialIds.has(c.tokens.find((t) => t.pos === c.pos)!.token));
    assert.equal(b.logitLens.top.length, 3);
    assert.equal(b.nearest.length, 2);
    assert.equal(b.nearest[0]!.cosine, 0, "orthogonal directions");
  }
  assert.deepEqual(JSON.parse(JSON.stringify(boards)), boards);
  // precomputed rows give the same dashboards
  assert.deepEqual(
    latentDashboards({
      model,
      sae,
      tokenizer: tok,
      rows,
      latents: [1, 6],
      contexts: 2,
      logitTokens: 3,
      nearest: 2,
      bins: 5,
    }),
    boards,
  );
  const wide = new Sae(
    { ...cfg, dIn: 8 },
    {
      wEnc: new Float32Array(8 * H),
      bEnc: new Float32Array(H),
      wDec: new Float32Array(8 * H),
      bDec: new Float32Array(8),
    },
  );
  assert.throws(() => latentDashboards({ model, sae: wide, tokenizer: tok, corpus, latents: [0] }), /reads 8 values/);
});
