/** The CE loss score: an SAE that reconstructs exactly scores 1, one that outputs zeros scores 0. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Sae } from "../../../src/interp/sae/sae.ts";
import { ceLossScore } from "../../../src/interp/training/ce-score.ts";
import type { CausalLM } from "../../../src/model/model.ts";
import { documentIds, pretrainCorpus } from "../../../src/organism/corpus.ts";
import { organismTokenizer } from "../../../src/organism/tokenizer.ts";
import { microOrganism } from "../../helpers/micro-organism.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-ce-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const D = 32;
const HOOK = "blocks.0.hook_resid_post";
const tok = organismTokenizer();
let lm: CausalLM;
const docs = pretrainCorpus({ n: 12, seed: 5 }).map((d) => documentIds(d).ids);

before(async () => {
  // A model that has learned something, so zero-ablating its residual stream costs loss.
  lm = await microOrganism(tmp, 25);
});

/** d_sae = 2d, k = d: latents [x, −x] through ReLU keep exactly one of each pair, so x̂ = x. */
function identitySae(): Sae {
  const wEnc = new Float32Array(D * 2 * D); // [d_in, d_sae]
  const wDec = new Float32Array(2 * D * D); // [d_sae, d_in]
  for (let i = 0; i < D; i++) {
    wEnc[i * 2 * D + i] = 1;
    wEnc[i * 2 * D + D + i] = -1;
    wDec[i * D + i] = 1;
    wDec[(D + i) * D + i] = -1;
  }
  return new Sae(
    { dIn: D, dSae: 2 * D, k: D, architecture: "topk", hookName: HOOK },
    { wEnc, bEnc: new Float32Array(2 * D), wDec, bDec: new Float32Array(D) },
  );
}

test("an exact reconstruction scores 1 and costs no loss", () => {
  const ce = ceLossScore(lm, identitySae(), { sequences: docs, padId: tok.padId ?? 0, batchSize: 5 });
  assert.equal(ce.hookName, HOOK);
  assert.equal(ce.sequences, docs.length);
  assert.equal(
    ce.tokens,
    docs.reduce((s, d) => s + d.length - 1, 0),
  );
  assert.ok(ce.ceZero > ce.ceClean + 0.5, `zero-ablation should hurt: ${ce.ceZero} vs ${ce.ceClean}`);
  assert.ok(Math.abs(ce.ceSae - ce.ceClean) < 1e-4, `${ce.ceSae} vs ${ce.ceClean}`);
  assert.ok(Math.abs(ce.score! - 1) < 1e-3, `score ${ce.score}`);
  assert.ok(Math.abs(ce.ceIncrease) < 1e-4);
});

test("a reconstruction of zeros scores 0; batching does not change the means", () => {
  const zero = new Sae(
    { dIn: D, dSae: 8, k: 2, architecture: "topk", hookName: HOOK },
    {
      wEnc: new Float32Array(D * 8).fill(0.1),
      bEnc: new Float32Array(8),
      wDec: new Float32Array(8 * D),
      bDec: new Float32Array(D),
    },
  );
  const a = ceLossScore(lm, zero, { sequences: docs, padId: tok.padId ?? 0, batchSize: 16 });
  const b = ceLossScore(lm, zero, { sequences: docs, padId: tok.padId ?? 0, batchSize: 1 });
  assert.ok(Math.abs(a.score!) < 1e-3, `score ${a.score}`);
  assert.ok(Math.abs(a.ceSae - a.ceZero) < 1e-4);
  assert.ok(Math.abs(a.ceClean - b.ceClean) < 1e-4 && Math.abs(a.ceZero - b.ceZero) < 1e-4);
});

test("kept tokens stay clean; bad inputs are refused", () => {
  const zero = new Sae(
    { dIn: D, dSae: 4, k: 1, architecture: "topk", hookName: HOOK },
    {
      wEnc: new Float32Array(D * 4),
      bEnc: new Float32Array(4),
      wDec: new Float32Array(4 * D),
      bDec: new Float32Array(D),
    },
  );
  const all = ceLossScore(lm, zero, { sequences: docs, padId: tok.padId ?? 0 });
  // Keeping every token id that occurs leaves the whole forward clean: CE_sae = CE_zero = CE_clean.
  const kept = ceLossScore(lm, zero, { sequences: docs, padId: tok.padId ?? 0, keepTokenIds: new Set(docs.flat()) });
  assert.ok(Math.abs(kept.ceSae - all.ceClean) < 1e-5 && kept.score === null);
  assert.throws(() => ceLossScore(lm, zero, { sequences: [] }), /no sequences/);
  assert.throws(() => ceLossScore(lm, zero, { sequences: [[1]] }), /no sequence has a token/);
  const wide = Sae.random({ dIn: 16, dSae: 8, k: 2, architecture: "topk", hookName: HOOK }, 0);
  assert.throws(() => ceLossScore(lm, wide, { sequences: docs }), /width 16/);
});
