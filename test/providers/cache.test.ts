import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cachedChatModel, cacheKey } from "../../src/providers/cache.ts";
import type { ChatModel, ChatRequest } from "../../src/providers/types.ts";

const req = (content: string, sampleIndex = 0, temperature = 1): ChatRequest => ({
  messages: [{ role: "user", content }],
  temperature,
  maxTokens: 10,
  sampleIndex,
});

function counting(failOn?: string) {
  let calls = 0;
  const model: ChatModel = {
    id: "openai-http:m@http://127.0.0.1:1/v1",
    async complete(reqs) {
      calls += reqs.length;
      return reqs.map((r) => {
        const c = r.messages[0]!.content;
        return c === failOn
          ? { text: "", finishReason: "error", error: { kind: "InternalServerError", message: "500", attempts: 3 } }
          : { text: `${c}#${r.sampleIndex}#${calls}`, finishReason: "stop" };
      });
    },
  };
  return { model, calls: () => calls };
}

test("key covers model, messages, sampling params and sample index", () => {
  const base = cacheKey("m", req("a"));
  assert.equal(base, cacheKey("m", req("a")));
  assert.match(base, /^[0-9a-f]{64}$/);
  for (const other of [
    cacheKey("m2", req("a")),
    cacheKey("m", req("b")),
    cacheKey("m", req("a", 1)),
    cacheKey("m", req("a", 0, 0.5)),
  ])
    assert.notEqual(other, base);
});

test("second run is served from disk; errors are never stored; two writers share one file", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "emlab-cache-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const path = join(root, "sub", "cache.sqlite");
  const inner = counting("bad");
  const a = cachedChatModel(inner.model, { path });
  const first = await a.complete([req("x", 0), req("x", 1), req("bad")]);
  assert.equal(inner.calls(), 3);
  assert.ok(first[2]!.error);
  const b = cachedChatModel(inner.model, { path }); // a second handle, as another process would open
  const second = await b.complete([req("x", 0), req("x", 1), req("bad")]);
  assert.equal(inner.calls(), 4, "only the failed request is sent again");
  assert.deepEqual(
    second.slice(0, 2).map((r) => r.text),
    first.slice(0, 2).map((r) => r.text),
  );
  assert.equal(b.hits, 2);
  await Promise.all([a.complete([req("y")]), b.complete([req("z")])]);
  a.close();
  b.close();
});
