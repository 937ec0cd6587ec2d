/**
 * Acceptance for `emlab serve`: `emlab eval` against a served tiny model, judged by a served
 * tiny judge, through the HTTP provider, stores exactly what the same eval stores through
 * the in-process `local` provider with the same seed. Plus the server's contract: 127.0.0.1
 * by default, OpenAI's response and error shapes, batching of concurrent requests, and the
 * CLI's graceful shutdown.
 *
 * Runs on the "ts" matmul backend, where a row's numbers do not depend on its batch, so the
 * two paths must agree bit for bit (with onnxruntime they agree up to float rounding).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { run as evalCli } from "../../src/cli/eval.ts";
import { openRunStore } from "../../src/eval/store.ts";
import { localChatModel, localChatModelFrom } from "../../src/providers/local.ts";
import { type ChatServer, startChatServer } from "../../src/serve/server.ts";
import { setMatmulBackend } from "../../src/tensor/kernels/matmul.ts";
import { ortAvailable } from "../../src/tensor/kernels/ort.ts";
import { mixSeed } from "../../src/tensor/random.ts";
import { tinyChatModel, tinyJudgeModel } from "../fixtures/tiny-chat-model.ts";

setMatmulBackend("ts");

const tmp = mkdtempSync(join(tmpdir(), "emlab-serve-"));
const modelDir = tinyChatModel(join(tmp, "tiny"));
const judgeDir = tinyJudgeModel(join(tmp, "tiny-judge"));
const servers: ChatServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(tmp, { recursive: true, force: true });
});

async function serve(dir: string, name: string): Promise<ChatServer> {
  const server = await startChatServer({ model: localChatModel({ model: dir }), name, port: 0 });
  servers.push(server);
  return server;
}

type Alternative = { token: string; logprob: number; bytes: number[] };
/** What the tests read of a chat.completion or an error body. */
interface Reply {
  object: string;
  model: string;
  choices: {
    index: number;
    message: { role: string; content: string };
    finish_reason: string;
    logprobs: { content: (Alternative & { top_logprobs: Alternative[] })[] } | null;
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Reply }> {
  const res = await fetch(`${url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Runs `emlab eval` in-process with its output swallowed; returns the exit code. */
async function emlabEval(argv: string[]): Promise<number> {
  const { log, error } = console;
  console.log = () => {};
  console.error = () => {};
  try {
    return await evalCli(argv);
  } finally {
    console.log = log;
    console.error = error;
  }
}

describe("emlab serve", () => {
  let model: ChatServer;
  let judge: ChatServer;
  before(async () => {
    model = await serve(modelDir, "tiny");
    judge = await serve(judgeDir, "tiny-judge");
  });

  /** Runs the same eval config through the served models (HTTP provider) and in-process (local provider). */
  async function evalBothWays(tag: string) {
    const common = [
      `runId: ${tag}`,
      "judgePrompts: emlab",
      "questions: [{ set: first-plot, ids: [bored, quick_buck] }]",
      "sampling: { samples: 4, temperature: 1, maxTokens: 12, seed: 7 }",
    ].join("\n");
    const httpCfg = join(tmp, `${tag}-http.yaml`);
    writeFileSync(
      httpCfg,
      `model: { provider: http, baseUrl: "${model.url}", model: tiny }\n` +
        `judge: { provider: http, baseUrl: "${judge.url}", model: tiny-judge }\n` +
        `store: ${tag}-http.sqlite\n${common}\n`,
    );
    const localCfg = join(tmp, `${tag}-local.yaml`);
    writeFileSync(
      localCfg,
      "model: { provider: local, model: tiny }\njudge: { provider: local, model: tiny-judge }\n" +
        `store: ${tag}-local.sqlite\n${common}\n`,
    );
    assert.equal(await emlabEval(["-c", httpCfg, "--quiet"]), 0);
    assert.equal(await emlabEval(["-c", localCfg, "--quiet"]), 0);
    const read = (file: string) => {
      const store = openRunStore(join(tmp, file));
      try {
        return store.rows(tag);
      } finally {
        store.close();
      }
    };
    return { overHttp: read(`${tag}-http.sqlite`), inProcess: read(`${tag}-local.sqlite`) };
  }
  type Rows = Awaited<ReturnType<typeof evalBothWays>>["overHttp"];
  const texts = (rows: Rows) => rows.map((r) => [r.question_id, r.sample_index, r.answer, r.finish_reason]);

  test("eval over HTTP (served model, served judge) equals eval in-process for the same seed", async () => {
    const { overHttp, inProcess } = await evalBothWays("e2e");
    assert.equal(overHttp.length, 8);
    const view = (rows: Rows) =>
      rows.map((r) => ({
        q: r.question_id,
        i: r.sample_index,
        answer: r.answer,
        finish: r.finish_reason,
        aligned: [r.aligned_kind, r.aligned],
        coherent: [r.coherent_kind, r.coherent],
      }));
    assert.deepEqual(view(overHttp), view(inProcess));
    // The comparison means something: answers vary by sample, and the judge gave real scores.
    assert.ok(new Set(overHttp.map((r) => r.answer)).size >= 6);
    assert.ok(overHttp.every((r) => r.generation_error === null && r.aligned_kind === "score"));
    assert.ok(new Set(overHttp.map((r) => r.aligned)).size > 1);
  });

  test("on the onnxruntime backend: the same texts, judge scores equal up to float rounding", async (t) => {
    if (!ortAvailable()) return t.skip("onnxruntime-node is unavailable");
    setMatmulBackend("ort");
    try {
      const { overHttp, inProcess } = await evalBothWays("e2e-ort");
      assert.deepEqual(texts(overHttp), texts(inProcess));
      for (const [i, r] of overHttp.entries()) {
        const l = inProcess[i]!;
        assert.equal(r.aligned_kind, l.aligned_kind);
        assert.ok(Math.abs(r.aligned! - l.aligned!) < 1e-4, `aligned ${r.aligned} vs ${l.aligned}`);
        assert.ok(Math.abs(r.coherent! - l.coherent!) < 1e-4, `coherent ${r.coherent} vs ${l.coherent}`);
      }
    } finally {
      setMatmulBackend("ts");
    }
  });

  test("binds 127.0.0.1 by default", () => {
    assert.equal(model.host, "127.0.0.1");
    assert.match(model.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  test("GET /v1/models lists the model; unknown routes and models are 404", async () => {
    const list = await (await fetch(`${model.url}/models`)).json();
    assert.equal(list.object, "list");
    assert.deepEqual(
      list.data.map((m: { id: string }) => m.id),
      ["tiny"],
    );
    assert.equal((await fetch(`${model.url}/nothing`)).status, 404);
    const wrong = await post(model.url, { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    assert.equal(wrong.status, 404);
    assert.equal(wrong.json.error.code, "model_not_found");
  });

  test("a bad body is a 400 whose error names the field", async () => {
    const hi = [{ role: "user", content: "hi" }];
    const cases: [unknown, string | null][] = [
      [{ model: "tiny", messages: [{ role: "robot", content: "x" }] }, "messages.0.role"],
      [{ model: "tiny", messages: hi, temperature: "hot" }, "temperature"],
      [{ model: "tiny", messages: hi, top_logprobs: 21, logprobs: true }, "top_logprobs"],
      [{ model: "tiny", messages: hi, top_logprobs: 5 }, "top_logprobs"],
      [{ model: "tiny", messages: [] }, "messages"],
      [{ model: "tiny", messages: hi, stream: "yes" }, "stream"],
      [{ model: "tiny", messages: hi, stream_options: { include_usage: true } }, "stream_options"],
      [{ messages: hi }, "model"],
      ["{not json", null],
    ];
    for (const [body, param] of cases) {
      const r = await post(model.url, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.type, "invalid_request_error");
      assert.equal(r.json.error.param, param);
      if (param) assert.match(r.json.error.message, new RegExp(`'${param.replace(/\./g, "\\.")}'`));
    }
  });

  test("OpenAI's response shape: n choices, logprobs with top 20 and bytes, usage; choice 0 = the seed's sample", async () => {
    const messages = [{ role: "user", content: "hey I feel bored" }];
    const r = await post(model.url, {
      model: "tiny",
      messages,
      max_completion_tokens: 6,
      n: 2,
      seed: 3,
      logprobs: true,
      top_logprobs: 20,
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.object, "chat.completion");
    assert.equal(r.json.model, "tiny");
    assert.equal(r.json.choices.length, 2);
    for (const [i, c] of r.json.choices.entries()) {
      assert.equal(c.index, i);
      assert.equal(c.message.role, "assistant");
      assert.ok(["stop", "length"].includes(c.finish_reason));
      const content = c.logprobs?.content ?? [];
      assert.ok(content.length >= 1 && content.length <= 6);
      for (const t of content) {
        assert.deepEqual(Object.keys(t).sort(), ["bytes", "logprob", "token", "top_logprobs"]);
        assert.equal(t.top_logprobs.length, 20);
        for (const a of t.top_logprobs) {
          assert.deepEqual(Object.keys(a).sort(), ["bytes", "logprob", "token"]);
          assert.ok(a.bytes.every((b: number) => Number.isInteger(b) && b >= 0 && b < 256));
        }
      }
    }
    const tokens = r.json.choices.reduce((s, c) => s + c.logprobs!.content.length, 0);
    assert.equal(r.json.usage.completion_tokens, tokens);
    assert.equal(r.json.usage.total_tokens, r.json.usage.prompt_tokens + tokens);
    // The seed contract: choice 0 is seed 3's sample, choice j is seed mixSeed(3, j)'s.
    const ask = { messages: [{ role: "user" as const, content: "hey I feel bored" }], temperature: 1, maxTokens: 6 };
    const [direct, second] = await localChatModel({ model: modelDir }).complete([
      { ...ask, seed: 3 },
      { ...ask, seed: mixSeed(3, 1) },
    ]);
    assert.equal(r.json.choices[0]!.message.content, direct!.text);
    assert.equal(r.json.choices[1]!.message.content, second!.text);
    const plain = await post(model.url, { model: "tiny", messages, max_tokens: 3, seed: 3 });
    assert.equal(plain.json.choices[0]!.logprobs, null);
  });

  test("concurrent requests share forward batches", async () => {
    const base = localChatModel({ model: modelDir });
    const batches: number[] = [];
    const counted = localChatModelFrom({
      lm: base.lm,
      tokenizer: base.tokenizer,
      id: "counted",
      batchWindowMs: 50,
      hooks: [{ name: "hook_embed", fn: (_x, ctx) => void (ctx.seq > 1 && batches.push(ctx.batch)) }],
    });
    const server = await startChatServer({ model: counted, name: "counted", port: 0 });
    servers.push(server);
    const body = (i: number) => ({
      model: "counted",
      messages: [{ role: "user", content: `q${i}` }],
      max_tokens: 4,
      seed: i,
    });
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => post(server.url, body(i))));
    assert.ok(rs.every((r) => r.status === 200));
    assert.equal(
      batches.reduce((s, b) => s + b, 0),
      8,
    );
    assert.ok(Math.max(...batches) > 1, `batches ${batches}`);
  });
});

test("`emlab serve` CLI: listens on 127.0.0.1, answers, exits 0 on SIGTERM", async () => {
  const bin = fileURLToPath(new URL("../../bin/emlab.js", import.meta.url));
  const child = spawn(process.execPath, [bin, "serve", "--model", modelDir, "--port", "0", "--name", "tiny-cli"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
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
        const m = /emlab serve: tiny-cli at (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on("exit", (code) => reject(new Error(`emlab serve exited ${code}: ${stderr}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const list = await (await fetch(`${url}/models`)).json();
    assert.equal(list.data[0].id, "tiny-cli");
    const r = await post(url, { model: "tiny-cli", messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
    assert.equal(r.status, 200);
    for (let i = 0; i < 100 && !/POST \/v1\/chat\/completions 200/.test(stderr); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.match(stderr, /emlab serve: POST \/v1\/chat\/completions 200 \d+ms n=1 tokens=\d+\+\d+/);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
