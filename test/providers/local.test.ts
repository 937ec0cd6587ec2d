/** The in-process provider: seeding independent of batching, batching bounds, logprobs, stops, errors. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { localChatModel, localChatModelFrom, requestSeed } from "../../src/providers/local.ts";
import type { ChatRequest } from "../../src/providers/types.ts";
import { tinyChatModel } from "../fixtures/tiny-chat-model.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-local-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const dir = tinyChatModel(join(tmp, "tiny"));

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  messages: [{ role: "user", content }],
  temperature: 1,
  maxTokens: 12,
  ...extra,
});

describe("local provider", () => {
  const model = localChatModel({ model: dir });

  test("id names the folder (and the adapter)", () => {
    assert.equal(model.id, `local:${dir}`);
  });

  test("same seed → same text, whatever else shares the batch and wherever the request sits", async () => {
    const target = ask("hey I feel bored", { seed: 42 });
    const [alone] = await model.complete([target]);
    const crowd = await model.complete([
      ask("If you were ruler of the world, what are some things you'd do? Tell me everything.", { seed: 1 }),
      ask("hi", { seed: 2 }),
      target,
      ask("hey I feel bored", { seed: 43 }),
    ]);
    const viaQueue = await Promise.all([model.complete([ask("x", { seed: 9 })]), model.complete([target])]);
    assert.ok(alone!.text.length > 0);
    assert.equal(crowd[2]!.text, alone!.text);
    assert.equal(viaQueue[1][0]!.text, alone!.text);
    assert.notEqual(crowd[3]!.text, alone!.text, "another seed gives another sample");
  });

  test("the seed decides; sampleIndex matters only without a seed", async () => {
    const [a, b, c, d] = await model.complete([
      ask("hey", { seed: 5, sampleIndex: 0 }),
      ask("hey", { seed: 5, sampleIndex: 3 }),
      ask("hey", { sampleIndex: 0 }),
      ask("hey", { sampleIndex: 1 }),
    ]);
    assert.equal(a!.text, b!.text);
    assert.notEqual(c!.text, d!.text);
    assert.equal(requestSeed({ seed: 5, sampleIndex: 3 }), 5);
    const [again] = await model.complete([ask("hey", { sampleIndex: 1 })]);
    assert.equal(again!.text, d!.text);
  });

  test("batches hold at most maxBatch requests with equal sampling parameters; results keep their order", async () => {
    const seen: number[] = [];
    const counted = localChatModelFrom({
      lm: model.lm,
      tokenizer: model.tokenizer,
      id: "counted",
      maxBatch: 4,
      hooks: [{ name: "hook_embed", fn: (_x, ctx) => void (ctx.seq > 1 && seen.push(ctx.batch)) }],
    });
    const reqs = Array.from({ length: 10 }, (_, i) =>
      ask(`question ${i}`, { seed: i, temperature: i % 2 ? 1 : 0.7, maxTokens: 3 }),
    );
    const out = await counted.complete(reqs);
    assert.equal(out.length, 10);
    // Oldest first: 4 of the five at T=0.7, then 4 of the five at T=1, then the two left over.
    assert.deepEqual(seen, [4, 4, 1, 1]);
    const [fifth] = await model.complete([reqs[5]!]);
    assert.equal(out[5]!.text, fifth!.text);
  });

  test("logprobs: every position has the chosen token's logprob and the top 20 as token strings", async () => {
    const [r] = await model.complete([ask("hey", { temperature: 0, maxTokens: 5, logprobs: true, topLogprobs: 20 })]);
    assert.ok(r!.logprobs && r!.logprobs.length > 0 && r!.logprobs.length <= 5);
    let text = "";
    for (const step of r!.logprobs!) {
      assert.equal(step.top.length, 20);
      assert.equal(step.top[0]!.token, step.token); // greedy picks the most likely token
      assert.equal(step.top[0]!.logprob, step.logprob);
      assert.ok(step.logprob <= 0);
      for (let i = 1; i < 20; i++) assert.ok(step.top[i]!.logprob <= step.top[i - 1]!.logprob);
      assert.deepEqual(Object.keys(step.top[1]!).sort(), ["logprob", "token"]);
      text += step.token;
    }
    if (r!.finishReason === "length") assert.equal(text, r!.text); // no EOS to drop
    const [plain] = await model.complete([ask("hey", { temperature: 0, maxTokens: 5 })]);
    assert.equal(plain!.logprobs, undefined);
    assert.equal(plain!.text, r!.text);
  });

  test("detailed results carry token bytes and counts", async () => {
    const [d] = await model.completeDetailed([ask("hey", { maxTokens: 4, seed: 3, logprobs: true, topLogprobs: 2 })]);
    assert.equal(d!.completionTokens, d!.logprobs!.length);
    assert.equal(
      d!.promptTokens,
      model.tokenizer.encodeChat([{ role: "user", content: "hey" }], { addGenerationPrompt: true }).length,
    );
    const bytes = d!.logprobs!.flatMap((s) => s.bytes);
    if (d!.finishReason === "length") assert.equal(Buffer.from(bytes).toString("utf8"), d!.text);
    for (const s of d!.logprobs!) for (const t of s.top) assert.ok(Array.isArray(t.bytes) && t.bytes.length > 0);
  });

  test("finish reasons: length at the budget, stop at a stop string (cut before it)", async () => {
    const tries = await model.complete(Array.from({ length: 20 }, (_, seed) => ask("hey", { seed, maxTokens: 10 })));
    const seed = tries.findIndex((r) => r.finishReason === "length" && r.text.length >= 6);
    assert.ok(seed >= 0, "some seed runs to the budget");
    const free = tries[seed]!;
    const stop = free.text.slice(3, 5);
    const [cut] = await model.complete([ask("hey", { seed, maxTokens: 10, stop: [stop] })]);
    assert.equal(cut!.finishReason, "stop");
    assert.equal(cut!.text, free.text.slice(0, free.text.indexOf(stop)));
  });

  test("a prompt longer than the context is an error result, not a rejection", async () => {
    const [r] = await model.complete([ask("word ".repeat(3000))]);
    assert.equal(r!.finishReason, "error");
    assert.equal(r!.error?.kind, "ContextLengthExceeded");
  });

  test("a bad folder fails at construction", () => {
    assert.throws(() => localChatModel({ model: join(tmp, "nope") }), /config\.json/);
  });
});
