/**
 * `emlab serve` behaves like a service: a 10 MB body gets a 413 naming the limit (read by the
 * client, not a reset connection), only localhost Host headers are answered unless widened
 * (DNS rebinding), and with a key every route needs `Authorization: Bearer KEY`. Each refusal
 * is followed by a request showing the server still answers.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { localChatModel } from "../../src/providers/local.ts";
import { allowedHostNames, type ChatServer, hostName, startChatServer } from "../../src/serve/server.ts";
import { tinyChatModel } from "../fixtures/tiny-chat-model.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-serve-hard-"));
const modelDir = tinyChatModel(join(tmp, "tiny"));
const model = localChatModel({ model: modelDir });
const servers: ChatServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  model.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function serve(o: Partial<Parameters<typeof startChatServer>[0]> = {}): Promise<ChatServer> {
  const s = await startChatServer({ model, name: "tiny", port: 0, ...o });
  servers.push(s);
  return s;
}

const chatBody = { model: "tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 2, seed: 1 };

/** A raw HTTP request (fetch may not set Host); resolves with the status and parsed JSON body. */
function raw(
  server: ChatServer,
  o: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; json: { error?: { message: string; code: string | null } } & Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: server.port,
        method: o.method ?? "GET",
        path: o.path ?? "/v1/models",
        headers: o.headers ?? {},
        agent: false,
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

/** A normal chat request through fetch: the server still answers. */
async function stillAnswers(server: ChatServer, headers: Record<string, string> = {}): Promise<void> {
  const r = await fetch(`${server.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(chatBody),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).object, "chat.completion");
}

describe("413 for a body over the limit", () => {
  let server: ChatServer;
  before(async () => {
    server = await serve();
  });

  test("a 10 MB body gets the 413 JSON naming the limit, then the server still answers", async () => {
    const big = JSON.stringify({ ...chatBody, messages: [{ role: "user", content: "x".repeat(10 * 1024 * 1024) }] });
    const r = await fetch(`${server.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: big,
    });
    assert.equal(r.status, 413);
    const json = await r.json();
    assert.equal(json.error.code, "request_too_large");
    assert.match(json.error.message, /limit of 8388608 bytes/);
    await stillAnswers(server);
  });

  test("a chunked body (no Content-Length) over the limit: 413 too", async () => {
    const small = await serve({ maxBodyBytes: 1000 });
    const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: small.port, method: "POST", path: "/v1/chat/completions", agent: false },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => {
            text += c.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on("error", reject);
      for (let i = 0; i < 100; i++) req.write("y".repeat(1000)); // 100 kB, chunked
      req.end();
    });
    assert.equal(r.status, 413);
    assert.match(JSON.parse(r.text).error.message, /limit of 1000 bytes/);
    await stillAnswers(small);
  });
});

describe("the Host check (DNS rebinding)", () => {
  let server: ChatServer;
  before(async () => {
    server = await serve();
  });

  test("localhost names with any port are answered", async () => {
    for (const host of ["localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "LOCALHOST"])
      assert.equal((await raw(server, { headers: { host } })).status, 200, host);
  });

  test("another Host is a 403 naming it, for GET and POST with a body; then the server still answers", async () => {
    const r = await raw(server, { headers: { host: "evil.example:8000" } });
    assert.equal(r.status, 403);
    assert.equal(r.json.error!.code, "host_not_allowed");
    assert.match(r.json.error!.message, /Host 'evil\.example:8000' is not allowed/);
    const post = await raw(server, {
      method: "POST",
      path: "/v1/chat/completions",
      headers: { host: "rebind.example", "content-type": "application/json" },
      body: JSON.stringify(chatBody),
    });
    assert.equal(post.status, 403);
    await stillAnswers(server);
  });

  test("--allow-host adds a name, '*' turns the check off", async () => {
    const widened = await serve({ allowedHosts: ["my-box.lan"] });
    assert.equal((await raw(widened, { headers: { host: "my-box.lan:9" } })).status, 200);
    assert.equal((await raw(widened, { headers: { host: "other.lan" } })).status, 403);
    const open = await serve({ allowedHosts: ["*"] });
    assert.equal((await raw(open, { headers: { host: "anything.example" } })).status, 200);
  });

  test("the names: a bound address is accepted, IPv6 in brackets, wildcards take the local addresses", () => {
    assert.equal(hostName("[::1]:8000"), "[::1]");
    assert.equal(hostName("Example.COM.:80"), "example.com");
    assert.ok(allowedHostNames("192.168.1.7").has("192.168.1.7"));
    assert.ok(allowedHostNames("fd00::7").has("[fd00::7]"));
    assert.ok(!allowedHostNames("127.0.0.1").has("192.168.1.7"));
    assert.ok(allowedHostNames("0.0.0.0").has("127.0.0.1"));
    assert.ok(allowedHostNames("127.0.0.1", ["Box.Lan"]).has("box.lan"));
  });
});

describe("--api-key", () => {
  let server: ChatServer;
  const logs: string[] = [];
  before(async () => {
    server = await serve({ apiKey: "sk-secret-123", log: (l) => logs.push(l) });
  });

  test("401 without the key or with a wrong one, on every route; 200 with it", async () => {
    const refused: Record<string, string>[] = [
      {},
      { authorization: "Bearer sk-wrong" },
      { authorization: "sk-secret-123" },
    ];
    for (const headers of refused) {
      const models = await raw(server, { headers });
      assert.equal(models.status, 401, JSON.stringify(headers));
      assert.equal(models.json.error!.code, "invalid_api_key");
      const chat = await raw(server, {
        method: "POST",
        path: "/v1/chat/completions",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(chatBody),
      });
      assert.equal(chat.status, 401);
    }
    const nowhere = await raw(server, { path: "/v1/nothing" });
    assert.equal(nowhere.status, 401, "unknown routes need the key too");
    assert.equal((await raw(server, { headers: { authorization: "Bearer sk-secret-123" } })).status, 200);
    await stillAnswers(server, { authorization: "Bearer sk-secret-123" });
    assert.ok(logs.length > 0 && logs.every((l) => !l.includes("sk-secret-123")), "the key is never logged");
  });

  test("a refused request's error never echoes the key", async () => {
    const r = await raw(server, { headers: { authorization: "Bearer sk-secret-12" } });
    assert.equal(r.status, 401);
    assert.doesNotMatch(JSON.stringify(r.json), /sk-secret/);
  });
});

test("`emlab serve`: --api-key with --api-key-env, or an unset variable, is a usage error", async () => {
  const { main } = await import("../../src/cli/main.ts");
  const err: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    delete process.env.EMLAB_UNSET_KEY_FOR_TEST;
    assert.equal(await main(["serve", "--model", modelDir, "--api-key", "k", "--api-key-env", "X"]), 2);
    assert.match(err.join("\n"), /give --api-key or --api-key-env, not both/);
    assert.equal(await main(["serve", "--model", modelDir, "--api-key-env", "EMLAB_UNSET_KEY_FOR_TEST"]), 2);
    assert.match(err.join("\n"), /EMLAB_UNSET_KEY_FOR_TEST: the environment variable is unset or empty/);
  } finally {
    console.error = error;
  }
});
