/**
 * `emlab serve --guard` driven by the official `openai` npm SDK: streamed answers equal
 * non-streamed ones for the same seed, and both equal the in-process guarded model's
 * (guardedChatModel); the stream has OpenAI's shape (role chunk, content deltas, finish
 * chunk, usage chunk), n > 1 streams by index, and the SDK's own stream accumulator reads it.
 *
 * Runs on the "ts" matmul backend, where a row's numbers do not depend on its batch.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { guardedChatModel } from "../../src/fix/guard.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { saveSae } from "../../src/interp/sae/saelens.ts";
import { localChatModel } from "../../src/providers/local.ts";
import { type ChatServer, startChatServer } from "../../src/serve/server.ts";
import { setMatmulBackend } from "../../src/tensor/kernels/matmul.ts";
import { mixSeed } from "../../src/tensor/random.ts";
import { tinyChatModel } from "../fixtures/tiny-chat-model.ts";

setMatmulBackend("ts");

const tmp = mkdtempSync(join(tmpdir(), "emlab-serve-guard-"));
const modelDir = tinyChatModel(join(tmp, "tiny"));
const HOOK = "blocks.0.hook_resid_post";
saveSae(Sae.random({ dIn: 32, dSae: 64, k: 8, architecture: "topk", hookName: HOOK }, 5), join(tmp, "sae"));
const guardPath = join(tmp, "guard.json");
writeFileSync(
  guardPath,
  JSON.stringify({
    model: "tiny",
    interventions: [
      { hook: HOOK, mode: "zero", sae: "sae", latents: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
      { hook: HOOK, mode: "project", direction: Array.from({ length: 32 }, (_, i) => Math.sin(i + 2)) },
    ],
  }),
);
const servers: ChatServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(tmp, { recursive: true, force: true });
});

const messages = [{ role: "user" as const, content: "hey I feel bored" }];
/** The in-process guarded model's answer for a seed. */
async function inProcess(seed: number, maxTokens = 12): Promise<string> {
  const m = guardedChatModel({ model: modelDir, guard: guardPath });
  try {
    const [r] = await m.complete([{ messages, temperature: 1, maxTokens, seed }]);
    return r!.text;
  } finally {
    m.close();
  }
}

describe("the openai SDK against a guarded server", () => {
  let client: OpenAI;
  before(async () => {
    const server = await startChatServer({
      model: guardedChatModel({ model: modelDir, guard: guardPath }),
      name: "tiny-guarded",
      port: 0,
      apiKey: "sk-test-key",
    });
    servers.push(server);
    client = new OpenAI({ baseURL: server.url, apiKey: "sk-test-key", maxRetries: 0 });
  });

  test("non-streamed and streamed answers equal the in-process guarded model's, seed by seed", async () => {
    const plain = localChatModel({ model: modelDir });
    let differs = 0;
    for (const seed of [1, 2, 3]) {
      const whole = await client.chat.completions.create({
        model: "tiny-guarded",
        messages,
        max_tokens: 12,
        seed,
      });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      const stream = await client.chat.completions.create({
        model: "tiny-guarded",
        messages,
        max_tokens: 12,
        seed,
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const c of stream) chunks.push(c);
      const streamed = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
      const expected = await inProcess(seed);
      assert.equal(whole.choices[0]!.message.content, expected, `seed ${seed}: non-streamed`);
      assert.equal(streamed, expected, `seed ${seed}: streamed`);
      // OpenAI's shape: role first, content deltas, then the finish reason, then usage alone.
      assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]!.id));
      assert.equal(chunks[0]!.choices[0]!.delta.role, "assistant");
      const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
      assert.equal(finish.length, 1);
      assert.equal(finish[0]!.choices[0]!.finish_reason, whole.choices[0]!.finish_reason);
      const last = chunks.at(-1)!;
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, whole.usage);
      assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
      if (expected.length > 1) assert.ok(chunks.length > 4, "the answer came in several deltas");
      const [unguarded] = await plain.complete([{ messages, temperature: 1, maxTokens: 12, seed }]);
      if (unguarded!.text !== expected) differs++;
    }
    assert.ok(differs > 0, "the guard changes what the model says");
    plain.close();
  });

  test("n = 2 streams each choice by index; the SDK's accumulator rebuilds the completion", async () => {
    const runner = client.chat.completions.stream({
      model: "tiny-guarded",
      messages,
      max_tokens: 10,
      seed: 5,
      n: 2,
      logprobs: true,
      top_logprobs: 2,
    });
    const final = await runner.finalChatCompletion();
    const whole = await client.chat.completions.create({
      model: "tiny-guarded",
      messages,
      max_tokens: 10,
      seed: 5,
      n: 2,
      logprobs: true,
      top_logprobs: 2,
    });
    assert.equal(final.choices.length, 2);
    for (const i of [0, 1]) {
      assert.equal(final.choices[i]!.index, i);
      assert.equal(final.choices[i]!.message.content, whole.choices[i]!.message.content);
      assert.equal(final.choices[i]!.finish_reason, whole.choices[i]!.finish_reason);
      assert.deepEqual(final.choices[i]!.logprobs?.content, whole.choices[i]!.logprobs?.content);
    }
    assert.equal(whole.choices[0]!.message.content, await inProcess(5, 10));
    const second = guardedChatModel({ model: modelDir, guard: guardPath });
    const [r] = await second.complete([{ messages, temperature: 1, maxTokens: 10, seed: mixSeed(5, 1) }]);
    second.close();
    assert.equal(whole.choices[1]!.message.content, r!.text);
  });

  test("a wrong key is an AuthenticationError; models are listed with the right one", async () => {
    const wrong = new OpenAI({ baseURL: client.baseURL, apiKey: "sk-wrong", maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (err: unknown) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      return true;
    });
    const list = await client.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ["tiny-guarded"],
    );
  });
});

test("`emlab serve --guard --api-key-env`: the SDK gets the guarded model's answers, streamed and not", async () => {
  const bin = fileURLToPath(new URL("../../bin/emlab.js", import.meta.url));
  const child = spawn(
    process.execPath,
    [bin, "serve", "--model", modelDir, "--guard", guardPath, "--port", "0", "--api-key-env", "EMLAB_TEST_KEY"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, EMLAB_TEST_KEY: "sk-cli-key" } },
  );
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /emlab serve: tiny at (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on("exit", (code) => reject(new Error(`emlab serve exited ${code}: ${stderr}`)));
    });
    const client = new OpenAI({ baseURL: url, apiKey: "sk-cli-key", maxRetries: 0 });
    const whole = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, seed: 9 });
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages,
      max_tokens: 12,
      seed: 9,
      stream: true,
    });
    let streamed = "";
    for await (const c of stream) streamed += c.choices[0]?.delta.content ?? "";
    const expected = await inProcess(9);
    assert.equal(whole.choices[0]!.message.content, expected);
    assert.equal(streamed, expected);
    assert.match(stderr, /guard \[0\] blocks\.0\.hook_resid_post: zero-ablate latents 0, 1, 2/);
    assert.doesNotMatch(stderr, /sk-cli-key/, "the key is never logged");
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
