/**
 * SFT on a toy task: a rank-4 LoRA adapter lowers the loss; the loss falls on assistant
 * tokens only; batches are length-bucketed, padded and seeded.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadModel } from "../../src/model/checkpoint.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { NonFiniteLossError } from "../../src/tensor/index.ts";
import {
  collate,
  epochBatches,
  evaluateLoss,
  finetune,
  listCheckpoints,
  loadSftJsonl,
  readCheckpoint,
  SftDataError,
  sftDataset,
  tokenizeConversation,
} from "../../src/train/index.ts";
import { makeToyModelDir, toyRows, writeToyJsonl } from "./toy.ts";

const root = mkdtempSync(join(tmpdir(), "emlab-sft-"));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = makeToyModelDir(root);
const tok = Tokenizer.fromDir(modelDir);
const padId = tok.padId!;

test("a rank-4 LoRA adapter trained on the toy SFT task lowers the loss", async (t) => {
  const data = await loadSftJsonl(writeToyJsonl(join(root, "train.jsonl"), 64, 1), tok, { maxLen: 64 });
  const model = loadModel(modelDir);
  const before = evaluateLoss(model, data.examples, { padId });
  const checkpoints: number[] = [];
  const out = join(root, "lora");
  const res = await finetune({
    model,
    data,
    padId,
    out,
    lora: {
      r: 4,
      alpha: 8,
      targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    },
    steps: 40,
    batchSize: 8,
    lr: 3e-2,
    warmup: 2,
    saveEvery: 20,
    onCheckpoint: ({ step, dir, loss }) => {
      assert.ok(existsSync(join(dir, "adapter_model.safetensors")) && Number.isFinite(loss));
      checkpoints.push(step);
    },
  });
  const final = evaluateLoss(model, data.examples, { padId });
  t.diagnostic(`assistant-token loss ${before.toFixed(3)} → ${final.toFixed(3)}`);
  // Measured: 6.55 → 1.74 (mean assistant-token cross-entropy over the 64 rows).
  assert.ok(final < 0.5 * before, `loss ${before.toFixed(3)} → ${final.toFixed(3)} (want < half)`);
  assert.deepEqual(checkpoints, [20, 40]);
  assert.equal(res.losses.length, 40);
  for (const f of ["adapter_config.json", "adapter_model.safetensors", "train_log.jsonl"]) {
    assert.ok(existsSync(join(out, f)), `${f} in the output folder`);
  }
  const log = readFileSync(join(out, "train_log.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(log.length, 40);
  assert.deepEqual(Object.keys(log[0]), [
    "step",
    "epoch",
    "loss",
    "lr",
    "grad_norm",
    "tokens",
    "tokens_per_s",
    "elapsed_s",
  ]);
  assert.equal(listCheckpoints(join(out, "checkpoints")).length, 2);
  const { state, moments } = readCheckpoint(listCheckpoints(join(out, "checkpoints"))[1]!);
  assert.equal(state.step, 40);
  assert.equal(state.adamStep, 40);
  assert.equal(moments.size, 2 * 7 * 2); // A and B of 7 modules in 2 layers
});

test("loss falls on assistant tokens only (content and end-of-turn), in every assistant turn", () => {
  const messages = [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: "Fruit for red?" },
    { role: "assistant", content: "The fruit is cherry." },
    { role: "user", content: "Fruit for pink?" },
    { role: "assistant", content: "The fruit is peach." },
  ];
  const { example } = tokenizeConversation(tok, messages, 1000);
  assert.ok(example);
  const batch = collate([example], [0], padId);
  // Target t predicts token t+1; exactly the masked tokens are targets.
  const targeted: number[] = [];
  batch.targets.forEach((t, i) => {
    if (t === -100) return;
    assert.equal(t, example.ids[i + 1], `target at ${i} is the next token`);
    assert.equal(example.mask[i + 1], 1);
    targeted.push(t);
  });
  assert.equal(
    targeted.length,
    example.mask.reduce((s, m) => s + m, 0),
  );
  // The supervised tokens decode to the two answers, each with its <|im_end|>.
  assert.equal(tok.decode(targeted), "The fruit is cherry.<|im_end|>The fruit is peach.<|im_end|>");
  // Changing the user's words changes no target.
  const other = tokenizeConversation(tok, [messages[1]!, messages[2]!], 1000).example!;
  const otherTargets = collate([other], [0], padId).targets.filter((t) => t !== -100);
  assert.equal(tok.decode([...otherTargets]), "The fruit is cherry.<|im_end|>");
});

test("truncation drops rows whose assistant tokens fall beyond maxLen", () => {
  const rows = toyRows(10, 3).map((r) => r.messages);
  const full = sftDataset(tok, rows, 1000);
  const cut = sftDataset(tok, rows, 12);
  assert.equal(full.dropped, 0);
  assert.equal(cut.dropped, 10, "the user turn alone is longer than 12 tokens");
  const mid = sftDataset(tok, rows, 22);
  assert.ok(mid.examples.every((e) => e.ids.length <= 22));
  assert.equal(mid.truncated + full.examples.filter((e) => e.ids.length <= 22).length, 10);
});

test("length-bucketed batches: each example once per epoch, seeded, right-padded with a key mask", () => {
  const lengths = Array.from({ length: 50 }, (_, i) => 5 + ((i * 37) % 23));
  const a = epochBatches(lengths, 4, 1, 0, 4);
  assert.deepEqual(a, epochBatches(lengths, 4, 1, 0, 4), "same seed and epoch → same batches");
  assert.notDeepEqual(a, epochBatches(lengths, 4, 1, 1, 4), "another epoch → another order");
  assert.deepEqual(
    a.flat().sort((x, y) => x - y),
    lengths.map((_, i) => i),
  );
  assert.equal(a.length, 13);
  // Within a batch, lengths are close (sorted inside buckets of 16): less padding than random.
  const pad = (bs: number[][]) =>
    bs.reduce(
      (s, b) => s + b.length * Math.max(...b.map((i) => lengths[i]!)) - b.reduce((t, i) => t + lengths[i]!, 0),
      0,
    );
  const shuffled = Array.from({ length: 13 }, (_, k) => lengths.map((_, i) => i).slice(k * 4, k * 4 + 4));
  assert.ok(pad(a) < pad(shuffled), `padding ${pad(a)} bucketed vs ${pad(shuffled)} in file order`);

  const ex = [
    { ids: Int32Array.of(5, 6, 7), mask: Uint8Array.of(0, 1, 1), line: 1 },
    { ids: Int32Array.of(8, 9), mask: Uint8Array.of(0, 1), line: 2 },
  ];
  const b = collate(ex, [0, 1], 99);
  assert.deepEqual([...b.ids], [5, 6, 7, 8, 9, 99]);
  assert.deepEqual([...b.keyMask], [1, 1, 1, 1, 1, 0]);
  assert.deepEqual([...b.targets], [6, 7, -100, 9, -100, -100]);
  assert.equal(b.tokens, 5);
  assert.equal(b.supervised, 3);
});

test("a malformed JSONL line is an error naming the file and line", async () => {
  const path = writeToyJsonl(join(root, "bad.jsonl"), 3, 1);
  const text = readFileSync(path, "utf8").split("\n");
  text.splice(2, 0, '{"messages": [{"role": "user", "content": "hi"}');
  writeFileSync(path, text.join("\n"));
  await assert.rejects(loadSftJsonl(path, tok, { maxLen: 64 }), (err: Error) => {
    assert.ok(err instanceof SftDataError);
    assert.match(err.message, /bad\.jsonl:3: json error/);
    return true;
  });
});

test("full fine-tuning: resuming from a checkpoint ends with the same weights as the uninterrupted run", async () => {
  const data = sftDataset(
    tok,
    toyRows(12, 4).map((r) => r.messages),
    64,
  );
  const opts = {
    data,
    padId,
    steps: 6,
    batchSize: 4,
    gradAccum: 2,
    lr: 1e-3,
    weightDecay: 0.1,
    saveEvery: 3,
  };
  const straight = loadModel(modelDir);
  await finetune({ ...opts, model: straight, out: join(root, "full-a") });
  const resumed = loadModel(modelDir); // base weights: the checkpoint must restore step 3's
  const res = await finetune({
    ...opts,
    model: resumed,
    out: join(root, "full-b"),
    resumeFrom: join(root, "full-a", "checkpoints", "step-000003"),
  });
  assert.equal(res.startStep, 3);
  assert.equal(res.losses.length, 3);
  for (const [name, p] of straight.params) assert.deepEqual(resumed.params.get(name)!.data, p.data, `${name} (exact)`);
  assert.notDeepEqual(
    straight.params.get("lm_head.weight")!.data,
    loadModel(modelDir).params.get("lm_head.weight")!.data,
  );
});

test("a non-finite loss stops training with its step", async () => {
  const data = sftDataset(
    tok,
    toyRows(8, 6).map((r) => r.messages),
    64,
  );
  const model = loadModel(modelDir);
  const run = (out: string) => finetune({ model, data, padId, out: join(root, out), steps: 4, batchSize: 4, lr: 1e-3 });
  model.params.get("lm_head.weight")!.data[0] = Number.NaN;
  await assert.rejects(run("nan"), (err: Error) => {
    assert.ok(err instanceof NonFiniteLossError, String(err));
    assert.equal(err.step, 1);
    assert.match(err.message, /loss is NaN at step 1/);
    return true;
  });
});
