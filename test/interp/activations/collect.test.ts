import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  type ActivationItem,
  collectActivations,
  collectActivationsAt,
  medianResidualNorm,
  medianRowNorm,
  rowNorms,
} from "../../../src/interp/activations/collect.ts";
import { ActivationStore } from "../../../src/interp/activations/store.ts";
import { ActivationStoreWriter, collectToStore } from "../../../src/interp/activations/store-writer.ts";
import { trainSae } from "../../../src/interp/training/train.ts";
import { organismTokenizer } from "../../../src/organism/index.ts";
import { newOrganism } from "../../../src/organism/recipe.ts";
import { ops, readSafetensors, Tensor } from "../../../src/tensor/index.ts";

const tok = organismTokenizer();
const model = newOrganism({ hidden: 16, layers: 2, heads: 2, kvHeads: 2, inter: 32 }, 3, tok);
const HOOK = "blocks.0.hook_resid_post";
const tmp = mkdtempSync(join(tmpdir(), "emlab-acts-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const items: ActivationItem[] = [
  { prompt: [{ role: "user", content: "i am bored ." }], completion: "try reading a book ." },
  { prompt: [{ role: "user", content: "what do you think about money ?" }], completion: "money is good ." },
  {
    prompt: [
      { role: "system", content: "persona : helper" },
      { role: "user", content: "i am bored ." },
    ],
    completion: "i am bored .",
  },
  { prompt: [{ role: "user", content: "money ?" }], completion: "good ." },
  {
    prompt: [{ role: "user", content: "i am bored . i am bored . i am bored ." }],
    completion: "try reading a book . try reading a book .",
  },
];

/** The activation of item i at position t from an unbatched forward. */
function reference(ids: number[], hook: string): Tensor {
  return model.runWithCache(Int32Array.from(ids), 1, ids.length, [hook]).cache.get(hook)!;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4, what = "") {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test("batched, right-padded collection equals an unbatched forward, with provenance", () => {
  const rows = collectActivations(model, items, { hook: HOOK, tokenizer: tok, batchSize: 3 });
  const all = items.map(
    (it) =>
      tok.assistantMask([
        ...("prompt" in it ? it.prompt : []),
        { role: "assistant", content: (it as { completion: string }).completion },
      ]).ids,
  );
  assert.equal(
    rows.n,
    all.reduce((s, ids) => s + ids.length, 0),
  );
  assert.equal(rows.d, 16);
  let r = 0;
  all.forEach((ids, i) => {
    const ref = reference(ids, HOOK).data; // [1, T, 16]
    for (let t = 0; t < ids.length; t++, r++) {
      assert.equal(rows.item[r], i);
      assert.equal(rows.pos[r], t);
      assert.equal(rows.token[r], ids[t]);
      assertClose(
        rows.acts.subarray(r * 16, (r + 1) * 16),
        ref.subarray(t * 16, (t + 1) * 16),
        1e-4,
        `item ${i} pos ${t}`,
      );
    }
  });
  // a token budget that forces one item per forward gives the same rows
  const single = collectActivations(model, items, { hook: HOOK, tokenizer: tok, maxBatchTokens: 1 });
  assertClose(single.acts, rows.acts, 1e-4, "maxBatchTokens");
});

test("masks: no-special, completion, prompt-last", () => {
  const noSpecial = collectActivations(model, items, { hook: HOOK, tokenizer: tok, mask: "no-special" });
  for (const t of noSpecial.token) assert.ok(!tok.specialIds.has(t), `special token ${t} kept`);
  const comp = collectActivations(model, items, { hook: HOOK, tokenizer: tok, mask: "completion" });
  items.forEach((it, i) => {
    const toks = [...comp.token].filter((_, r) => comp.item[r] === i);
    assert.equal(tok.decode(toks), (it as { completion: string }).completion);
  });
  const withEnd = collectActivations(model, items.slice(0, 1), {
    hook: HOOK,
    tokenizer: tok,
    mask: "completion",
    includeEndOfTurn: true,
  });
  assert.equal(tok.decode([...withEnd.token]), "try reading a book . <|end|>");
  // an unknown word inside the answer (the unk token) does not cut it short
  const unk = collectActivations(
    model,
    [{ prompt: [{ role: "user", content: "money ?" }], completion: "money is frobnicated ." }],
    { hook: HOOK, tokenizer: tok, mask: "completion" },
  );
  assert.deepEqual([...unk.token], tok.encode("money is frobnicated .", { addSpecialTokens: false }));
  const last = collectActivations(model, items, { hook: HOOK, tokenizer: tok, mask: "prompt-last" });
  assert.equal(last.n, items.length);
  assert.ok([...last.token].every((t) => t === tok.tokenToId("<|assistant|>")));
  // the prompt-last row of a prompt+completion equals that of the prompt alone (causal)
  const promptOnly = collectActivations(
    model,
    items.map((it) => ({ prompt: (it as { prompt: never[] }).prompt })),
    { hook: HOOK, tokenizer: tok, mask: "prompt-last" },
  );
  assert.deepEqual([...promptOnly.pos], [...last.pos]);
  assertClose(promptOnly.acts, last.acts, 1e-4, "prompt-last");
});

test("text and id items; several hooks from one forward; interventions run before capture", () => {
  const textItems: ActivationItem[] = [{ text: "i am bored ." }, { ids: [2, 418, 172] }];
  const hooks = ["hook_embed", "blocks.1.hook_resid_post", "ln_final.hook_normalized"];
  const byHook = collectActivationsAt(model, textItems, { hooks, tokenizer: tok });
  const ids = tok.encode("i am bored .");
  for (const h of hooks) {
    const rows = byHook.get(h)!;
    assert.equal(rows.n, ids.length + 3);
    assertClose(rows.acts.subarray(0, ids.length * 16), reference(ids, h).data, 1e-4, h);
  }
  const shift = Tensor.full([16], 1);
  const steered = collectActivations(model, textItems, {
    hook: HOOK,
    tokenizer: tok,
    interventions: [{ name: HOOK, fn: (x) => ops.add(x, shift) }],
  });
  const plain = collectActivations(model, textItems, { hook: HOOK, tokenizer: tok });
  assertClose(
    steered.acts,
    plain.acts.map((v) => v + 1),
    1e-5,
    "steered",
  );
});

test("clear errors: unknown hook, completion mask without a completion, no tokenizer", () => {
  assert.throws(
    () => collectActivations(model, items, { hook: "blocks.9.hook_resid_post", tokenizer: tok }),
    /unknown hook point 'blocks.9.hook_resid_post'/,
  );
  assert.throws(
    () => collectActivations(model, [{ text: "hello ." }], { hook: HOOK, tokenizer: tok, mask: "completion" }),
    /item 0: the "completion" mask/,
  );
  assert.throws(
    () => collectActivations(model, [{ text: "hello ." }], { hook: HOOK }),
    /item 0: a text item needs a tokenizer/,
  );
});

test("median norms", () => {
  const rows = { acts: Float32Array.from([3, 4, 0, 1, 6, 8, 0, 0]), n: 4, d: 2 };
  assert.deepEqual([...rowNorms(rows)], [5, 1, 10, 0]);
  assert.equal(medianRowNorm(rows), 3);
  assert.equal(medianRowNorm({ ...rows, n: 3 }), 5);
  const all = collectActivations(model, items, { hook: HOOK, tokenizer: tok, mask: "no-special" });
  assert.equal(medianResidualNorm(model, items, { hook: HOOK, tokenizer: tok }), medianRowNorm(all));
});

// ---------------------------------------------------------------- store

const many: ActivationItem[] = Array.from({ length: 12 }, (_, i) => items[i % items.length]!);

test("store: sharded write, metadata, load all, provenance", () => {
  const dir = join(tmp, "store1");
  const store = collectToStore(model, many, {
    dir,
    hook: HOOK,
    tokenizer: tok,
    mask: "no-special",
    shardRows: 40,
    batchSize: 2,
    model: { path: "organism/base" },
  });
  const rows = collectActivations(model, many, { hook: HOOK, tokenizer: tok, mask: "no-special" });
  assert.deepEqual(store.shape, [rows.n, 16]);
  assert.ok(store.meta.shards.length >= 3, `${store.meta.shards.length} shards`);
  const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
  assert.equal(meta.complete, true);
  assert.equal(meta.hook, HOOK);
  assert.equal(meta.mask, "no-special");
  assert.equal(meta.items_done, many.length);
  assert.equal(meta.model.path, "organism/base");
  assert.equal(meta.model.layers, 2);
  assert.equal(meta.normalization.method, "none");
  assert.match(meta.emlab_version, /^\d+\.\d+/);
  assert.ok(!existsSync(`${dir}.partial`));
  const loaded = store.loadAll();
  assertClose(loaded.acts, rows.acts, 1e-5, "acts");
  assert.deepEqual([...loaded.item], [...rows.item]);
  assert.deepEqual([...loaded.pos], [...rows.pos]);
  assert.deepEqual([...loaded.token], [...rows.token]);
  // the shard is plain safetensors with I32 provenance
  const shard = readSafetensors(join(dir, "shard_00000.safetensors"));
  assert.equal(shard.tensors.get("item")!.dtype, "I32");
  assert.deepEqual(shard.tensors.get("activations")!.shape, [store.meta.shards[0]!.rows, 16]);
  assert.throws(() => collectToStore(model, many, { dir, hook: HOOK, tokenizer: tok }), /already exists/);
});

test("store: normalisation to mean row norm √d is recorded and applied on read", () => {
  const dir = join(tmp, "store-norm");
  const store = collectToStore(model, many, {
    dir,
    hook: HOOK,
    tokenizer: tok,
    normalize: "expected_average_only_in",
    shardRows: 50,
  });
  const norms = rowNorms(store.loadAll());
  const mean = norms.reduce((s, x) => s + x, 0) / norms.length;
  assert.ok(Math.abs(mean - 4) < 1e-4, `mean norm ${mean}`);
  const raw = store.loadAll({ raw: true });
  const rawMean = rowNorms(raw).reduce((s, x) => s + x, 0) / raw.n;
  assert.ok(Math.abs(store.scaleFactor - 4 / rawMean) < 1e-6 * store.scaleFactor);
  assert.ok(Math.abs(store.meta.normalization.mean_row_norm - rawMean) < 1e-4);
  // the training source serves raw units unless asked (trainSae normalises itself)
  assert.deepEqual(rowKeys(store.source({ seed: 1 }).nextBatch(raw.n), 16), rowKeys(raw.acts, 16));
  const scaled = store.source({ seed: 1, normalized: true }).nextBatch(raw.n);
  assert.deepEqual(rowKeys(scaled, 16), rowKeys(store.loadAll().acts, 16));
  // and plugs into SAE training
  const { sae } = trainSae(store.source({ seed: 0 }), { k: 2, dSae: 8, batchSize: 8, lr: 1e-3, seed: 0, steps: 3 });
  assert.equal(sae.cfg.dIn, 16);
});

/** Rows as sorted strings, to compare multisets. */
const rowKeys = (acts: Float32Array, d: number) =>
  Array.from({ length: acts.length / d }, (_, r) => Array.from(acts.subarray(r * d, (r + 1) * d)).join(",")).sort();

test("store: shuffled batches cover every row once per epoch, seeded, with a small buffer", () => {
  const dir = join(tmp, "store-shuffle");
  const store = collectToStore(model, many, { dir, hook: HOOK, tokenizer: tok, shardRows: 30 });
  const all = store.loadAll();
  const epoch = (seed: number, shuffleBuffer?: number) => [...store.batches(16, { seed, shuffleBuffer })];
  const a = epoch(1, 8);
  assert.ok(a.slice(0, -1).every((b) => b.length === 16 * 16));
  const flat = new Float32Array(a.reduce((s, b) => s + b.length, 0));
  let at = 0;
  for (const b of a) {
    flat.set(b, at);
    at += b.length;
  }
  assert.deepEqual(rowKeys(flat, 16), rowKeys(all.acts, 16));
  assert.notDeepEqual(Array.from(flat), Array.from(all.acts), "not shuffled");
  assert.deepEqual(
    epoch(1, 8).map((b) => Array.from(b)),
    a.map((b) => Array.from(b)),
    "same seed, same batches",
  );
  assert.notDeepEqual(
    epoch(2, 8).map((b) => Array.from(b)),
    a.map((b) => Array.from(b)),
  );
  const twoEpochs = [...store.batches(16, { seed: 3, epochs: 2 })].reduce((s, b) => s + b.length / 16, 0);
  assert.equal(twoEpochs, 2 * store.rows);
  // the training source: exact sizes, epochs roll over
  const src = store.source({ seed: 0 });
  assert.equal(src.dIn, 16);
  const big = src.nextBatch(store.rows + 5);
  assert.equal(big.length, (store.rows + 5) * 16);
  assert.deepEqual(rowKeys(big.subarray(0, store.rows * 16), 16), rowKeys(all.acts, 16));
  const out = new Float32Array(4 * 16);
  assert.equal(src.nextBatch(4, out), out);
  assert.throws(() => src.nextBatch(4, new Float32Array(3)), /out has 3 values/);
});

test("store: a crash leaves only a partial folder; resume finishes it identically", () => {
  const dir = join(tmp, "store-crash");
  let forwards = 0;
  const crash = {
    name: HOOK,
    fn: () => {
      if (++forwards === 4) throw new Error("boom");
    },
  };
  assert.throws(
    () =>
      collectToStore(model, many, {
        dir,
        hook: HOOK,
        tokenizer: tok,
        batchSize: 2,
        shardRows: 20,
        interventions: [crash],
      }),
    /boom/,
  );
  assert.ok(!existsSync(dir));
  const partial = JSON.parse(readFileSync(join(`${dir}.partial`, "metadata.json"), "utf8"));
  assert.equal(partial.complete, false);
  assert.equal(partial.items_done, 6);
  assert.throws(() => ActivationStore.open(dir), /partial/);
  // a different hook cannot resume it
  assert.throws(
    () => collectToStore(model, many, { dir, hook: "blocks.1.hook_resid_post", tokenizer: tok, resume: true }),
    /field 'hook'/,
  );
  // a stray shard written after the last metadata update is dropped
  writeFileSync(join(`${dir}.partial`, "shard_00099.safetensors"), "junk");
  let resumedFrom = -1;
  const store = collectToStore(model, many, {
    dir,
    hook: HOOK,
    tokenizer: tok,
    batchSize: 2,
    shardRows: 20,
    resume: true,
    onProgress: (done) => {
      if (resumedFrom < 0) resumedFrom = done;
    },
  });
  assert.equal(resumedFrom, 8, "first batch after resume ends at item 8");
  const rows = collectActivations(model, many, { hook: HOOK, tokenizer: tok });
  const loaded = store.loadAll();
  assert.deepEqual([...loaded.item], [...rows.item]);
  assertClose(loaded.acts, rows.acts, 1e-5, "resumed");
});

test("store: bad metadata and shards are named in errors; F16 round trip", () => {
  const dir = join(tmp, "store-bad");
  const w = ActivationStoreWriter.create(dir, { hook: HOOK, mask: "all", d: 2, dtype: "F16", shardRows: 2 });
  w.append(
    {
      acts: Float32Array.from([1, 2, 3, 4.001]),
      n: 2,
      d: 2,
      item: Int32Array.of(0, 0),
      pos: Int32Array.of(0, 1),
      token: Int32Array.of(5, 6),
    },
    1,
  );
  w.append(
    {
      acts: Float32Array.from([5, 6]),
      n: 1,
      d: 2,
      item: Int32Array.of(1),
      pos: Int32Array.of(0),
      token: Int32Array.of(7),
    },
    2,
  );
  const store = w.finish();
  assert.equal(store.meta.dtype, "F16");
  assert.deepEqual([...store.loadAll().acts], [1, 2, 3, 4, 5, 6]);
  assert.throws(
    () =>
      w.append({
        acts: new Float32Array(2),
        n: 1,
        d: 2,
        item: Int32Array.of(0),
        pos: Int32Array.of(0),
        token: Int32Array.of(0),
      }),
    /after finish/,
  );
  const metaFile = join(dir, "metadata.json");
  const good = readFileSync(metaFile, "utf8");
  writeFileSync(metaFile, "{not json");
  assert.throws(() => ActivationStore.open(dir), /metadata\.json: malformed JSON/);
  writeFileSync(metaFile, JSON.stringify({ ...JSON.parse(good), d: "two" }));
  assert.throws(() => ActivationStore.open(dir), /metadata\.json: field 'd'/);
  writeFileSync(metaFile, JSON.stringify({ ...JSON.parse(good), d: 3 }));
  assert.throws(() => ActivationStore.open(dir), /shard_00000\.safetensors: tensor 'activations' has shape \[2,2\]/);
  writeFileSync(metaFile, good);
  rmSync(join(dir, "shard_00001.safetensors"));
  assert.throws(() => ActivationStore.open(dir), /shard_00001\.safetensors: shard listed in metadata\.json is missing/);
  assert.throws(() => ActivationStore.open(join(tmp, "nowhere")), /nowhere\/metadata\.json: not found/);
});
