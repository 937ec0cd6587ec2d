import assert from "node:assert/strict";
import { test } from "node:test";
import { aimdLimiter } from "../../src/providers/concurrency.ts";
import { makeApiError, parseRetryAfter, RateLimitError } from "../../src/providers/errors.ts";
import { startFakeOpenAIServer } from "../../src/providers/fake-openai-server.ts";
import { openAIChatModel, ProviderConfigError } from "../../src/providers/openai-http.ts";
import type { ChatRequest } from "../../src/providers/types.ts";

const req = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  messages: [{ role: "user", content }],
  temperature: 1,
  maxTokens: 20,
  ...extra,
});
const fast = { backoffBaseMs: 5, backoffMaxMs: 20, timeoutMs: 300 };

test("errors come from one factory, status → subclass", () => {
  const e = makeApiError(429, '{"error":{"message":"slow down"}}', { "retry-after": "2" });
  assert.ok(e instanceof RateLimitError && e.retryable);
  assert.equal((e as RateLimitError).retryAfterMs, 2000);
  assert.equal(e.message, "429 slow down");
  assert.equal(makeApiError(400, "bad").retryable, false);
  assert.equal(makeApiError(503, "").name, "InternalServerError");
  assert.equal(parseRetryAfter("bogus"), undefined);
});

test("AIMD: halves once per congestion window, grows back slowly, honours Retry-After", async () => {
  const lim = aimdLimiter({ max: 16 });
  const slots = await Promise.all(Array.from({ length: 16 }, () => lim.acquire()));
  lim.onRateLimit(slots[0]!, 0);
  lim.onRateLimit(slots[1]!, 0); // same window: no second cut
  assert.equal(lim.limit, 8);
  for (const s of slots) s.release();
  for (let i = 0; i < 8; i++) lim.onSuccess();
  assert.ok(lim.limit > 8.9 && lim.limit < 9.1, `limit ${lim.limit}`);
  const s = await lim.acquire();
  lim.onRateLimit(s, 80); // a new window: cuts again and pauses everyone
  s.release();
  const t0 = Date.now();
  (await lim.acquire()).release();
  assert.ok(Date.now() - t0 >= 70, "Retry-After pause honoured");
});

test("body, logprobs and auth header; the key is read from the named variable and never exposed", async (t) => {
  const server = await startFakeOpenAIServer({
    reply: (b) => ({
      content: `echo ${b.messages.at(-1)!.content} t=${b.temperature} top=${b.top_logprobs}`,
      logprobs: [{ token: "echo", logprob: -0.1, top_logprobs: [{ token: "echo", logprob: -0.1 }] }],
    }),
  });
  const model = openAIChatModel({
    baseUrl: server.url,
    model: "m",
    apiKeyEnv: "FAKE_KEY",
    env: { FAKE_KEY: "sk-test-xyz" },
  });
  t.after(async () => {
    model.close();
    await server.close();
  });
  const [r] = await model.complete([req("hi", { topLogprobs: 5 })]);
  assert.equal(r!.text, "echo hi t=1 top=5");
  assert.equal(r!.logprobs![0]!.top[0]!.token, "echo");
  assert.ok(!JSON.stringify(model).includes("sk-test-xyz") && !model.id.includes("sk-test"));
  assert.throws(
    () => openAIChatModel({ baseUrl: server.url, model: "m", apiKeyEnv: "NOPE_NOT_SET", env: {} }),
    ProviderConfigError,
  );
  assert.equal(server.lastHeaders?.authorization, "Bearer sk-test-xyz");
});

test("fault injection: 429 + Retry-After, 500, hang, truncated JSON, reset — every request answered once", async (t) => {
  const faults = ["rate-limit", "server-error", "hang", "truncated", "reset"] as const;
  const server = await startFakeOpenAIServer({
    reply: (b) => ({ content: `answer to ${b.messages.at(-1)!.content}` }),
    // the first 40 requests fail in every way in turn, then the server recovers
    fault: (n) => (n < 40 ? faults[n % faults.length] : undefined),
    retryAfterSeconds: 0.02,
  });
  const model = openAIChatModel({ baseUrl: server.url, model: "m", concurrency: 8, maxRetries: 10, ...fast });
  t.after(async () => {
    model.close();
    await server.close();
  });
  const requests = Array.from({ length: 30 }, (_, i) => req(`q${i}`));
  const results = await model.complete(requests);
  assert.deepEqual(
    results.map((r) => r.text),
    requests.map((_, i) => `answer to q${i}`),
  );
  assert.ok(results.every((r) => !r.error));
  // each prompt was answered exactly once by the server: nothing lost, nothing duplicated
  const answered = server.answered.map((b) => b.messages.at(-1)!.content).sort();
  assert.deepEqual(answered, requests.map((r) => r.messages[0]!.content).sort());
  assert.ok(model.stats.rateLimited >= 8 && model.stats.retries >= 40);
  assert.ok(model.concurrencyLimit < 8 || model.stats.rateLimited > 0);
});

test("after maxRetries the result carries the error; 4xx fails at once without retrying", async (t) => {
  const server = await startFakeOpenAIServer({
    reply: () => ({ content: "never" }),
    fault: () => "server-error",
  });
  let serverOpen = true;
  t.after(() => (serverOpen ? server.close() : undefined));
  const model = openAIChatModel({ baseUrl: server.url, model: "m", maxRetries: 2, ...fast });
  const [r] = await model.complete([req("x")]);
  assert.equal(r!.error?.kind, "InternalServerError");
  assert.equal(r!.error?.attempts, 3);
  assert.equal(server.requests, 3);
  await server.close();
  serverOpen = false;

  const again = await startFakeOpenAIServer({ reply: () => ({ content: "x" }) });
  t.after(() => again.close());
  const wrongPath = openAIChatModel({ baseUrl: `${again.url}/wrong`, model: "m", ...fast });
  const [e] = await wrongPath.complete([req("x")]);
  assert.equal(e!.error?.kind, "NotFoundError");
  assert.equal(e!.error?.attempts, 1);
  wrongPath.close();
});
