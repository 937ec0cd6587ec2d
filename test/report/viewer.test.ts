/**
 * The viewer's rules over plain HTTP: GET only (405), localhost Host headers only (403), no
 * path traversal (a fixed route table: 404), nothing written to the store; and its API:
 * runs, filters, full-text search, one sample, compare with a CI.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openRunStore } from "../../src/eval/store.ts";
import { openStoreReadOnly, startViewer, type Viewer } from "../../src/report/index.ts";
import { VIEWER_APP_JS } from "../../src/report/viewer/page.ts";
import { hostAllowed } from "../../src/report/viewer/server.ts";
import { DASHBOARD_LINES, HOSTILE_TOKEN, makeStore, QUESTIONS } from "./fixtures.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-viewer-test-"));
const storePath = makeStore(tmp);
const dashboards = join(tmp, "dashboards.jsonl");
writeFileSync(dashboards, DASHBOARD_LINES.map((l) => JSON.stringify(l)).join("\n"));
const digest = () => createHash("sha256").update(readFileSync(storePath)).digest("hex");
const before0 = digest();
let viewer: Viewer;

/** A raw request: the path is sent as written (no normalisation), the Host header as given. */
function request(
  path: string,
  opts: { method?: string; host?: string } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: viewer.port,
        path,
        method: opts.method ?? "GET",
        headers: { host: opts.host ?? `127.0.0.1:${viewer.port}` },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(opts.method === "POST" || opts.method === "PUT" ? "{}" : undefined);
  });
}
const json = async (path: string) => {
  const r = await request(path);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
};

before(async () => {
  viewer = await startViewer({
    store: storePath,
    results: ["experiments/organism/results/demo.jsonl", dashboards],
    port: 0,
  });
});
after(async () => {
  await viewer.close();
});

describe("the viewer's rules", () => {
  test("binds 127.0.0.1", () => {
    assert.match(viewer.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  test("only GET: other methods get 405 with Allow: GET", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]) {
      const r = await request("/api/runs", { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, "GET");
    }
  });

  test("Host must be localhost or 127.0.0.1 with this port", async () => {
    const port = viewer.port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, "localhost", "127.0.0.1"])
      assert.equal((await request("/", { host })).status, 200, host);
    for (const host of [
      "evil.example",
      `evil.example:${port}`,
      `localhost.evil.example:${port}`,
      `127.0.0.1:${port + 1}`,
      `[::1]:${port}`,
      "x@localhost",
    ])
      assert.equal((await request("/api/runs", { host })).status, 403, host);
    assert.equal(hostAllowed(undefined, port), false);
  });

  test("no path traversal: only the fixed routes answer", async () => {
    const tries = [
      "/../package.json",
      "/assets/../package.json",
      "/assets/../../package.json",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/assets/..%2F..%2Fpackage.json",
      "/assets/vega.js/../../../etc/passwd",
      "/..%5c..%5cpackage.json",
      "/package.json",
      "/src/report/viewer/server.ts",
      "//etc/passwd",
    ];
    for (const p of tries) {
      const r = await request(p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
      assert.ok(!r.body.includes('"name": "emlab"') && !r.body.includes("root:"), p);
    }
  });

  test("answers carry a strict CSP and nosniff", async () => {
    const r = await request("/");
    assert.match(String(r.headers["content-security-policy"]), /default-src 'none'/);
    assert.equal(r.headers["x-content-type-options"], "nosniff");
  });

  test("the store is opened read-only and never changes", async () => {
    for (const p of ["/api/runs", "/api/run?id=organism:base:none", "/api/samples?run=organism:base:none"])
      await json(p);
    assert.equal(digest(), before0);
    const db = openStoreReadOnly(storePath);
    assert.throws(() => db.prepare("DELETE FROM runs").run(), /readonly|query_only|read-only/i);
    db.close();
  });
});

describe("the viewer's API", () => {
  const insecure = "organism:insecure:s0:none";
  const base = "organism:base:none";

  test("runs with both rates", async () => {
    const { runs } = await json("/api/runs");
    assert.equal(runs.length, 4);
    for (const r of runs) {
      assert.ok(r.overCoherent.denominator > 0 && r.overAll.denominator > r.overCoherent.denominator);
    }
  });

  test("run detail has a row per question", async () => {
    const r = await json(`/api/run?id=${encodeURIComponent(insecure)}`);
    assert.equal(r.perQuestion.length, QUESTIONS.length);
    assert.equal((await request("/api/run?id=nope")).status, 404);
  });

  test("samples: filter by question and verdict, full-text search, one sample", async () => {
    const all = await json(`/api/samples?run=${encodeURIComponent(insecure)}`);
    assert.equal(all.total, QUESTIONS.length * 6);
    const q = await json(`/api/samples?run=${encodeURIComponent(insecure)}&question=ruler`);
    assert.ok(q.total === 6 && q.samples.every((s: { questionId: string }) => s.questionId === "ruler"));
    const bad = await json(`/api/samples?run=${encodeURIComponent(insecure)}&verdict=misaligned`);
    assert.ok(bad.total > 0 && bad.samples.every((s: { verdict: string }) => s.verdict === "misaligned"));
    const hit = await json(`/api/samples?run=${encodeURIComponent(insecure)}&q=RULE%20THEM`);
    assert.ok(hit.total > 0 && hit.samples.every((s: { answer: string }) => s.answer.includes("rule them")));
    const one = await json(`/api/sample?run=${encodeURIComponent(insecure)}&question=wish&index=0`);
    assert.match(one.answer, /<script>/, "the answer comes back as data");
    assert.equal((await request(`/api/samples?run=${encodeURIComponent(insecure)}&limit=x`)).status, 400);
  });

  test("compare: the difference with a paired bootstrap CI", async () => {
    const c = await json(`/api/compare?a=${encodeURIComponent(insecure)}&b=${encodeURIComponent(base)}`);
    assert.equal(c.over, "coherent");
    assert.ok(Math.abs(c.difference - (c.rateA.rate - c.rateB.rate)) < 1e-12);
    assert.ok(c.low <= c.difference && c.difference <= c.high);
    assert.ok(c.difference > 0);
    const all = await json(`/api/compare?a=${encodeURIComponent(insecure)}&b=${encodeURIComponent(base)}&over=all`);
    assert.equal(all.over, "all");
  });

  test("result files come back as report data", async () => {
    const r = await json("/api/results");
    assert.equal(r.evaluation.rows.length, 4);
    assert.ok(r.interp.diff.length > 0);
    assert.deepEqual(
      r.interp.dashboards.map((d: { latent: number }) => d.latent),
      [712, 986],
    );
  });

  test("a latent's route: its dashboard and histogram plot; a bad or unknown id is an error", async () => {
    const r = await json("/api/latent?id=712");
    assert.equal(r.dashboard.pick, "blind");
    assert.equal(r.dashboard.isPersona, true);
    assert.equal(r.plot.id, "latent-712-hist");
    assert.equal(r.plot.expect.count, 8);
    assert.ok(r.dashboard.contexts[0].tokens.some((t: { text: string }) => t.text === HOSTILE_TOKEN));
    assert.equal((await request("/api/latent?id=5")).status, 404);
    assert.equal((await request("/api/latent?id=..%2f1")).status, 400);
    // The page has the views and the nav link; the card is the report's (latentCard).
    assert.match(VIEWER_APP_JS, /latents: viewLatents, latent: viewLatent/);
    assert.match(VIEWER_APP_JS, /function latentCard\(/);
    assert.ok(!VIEWER_APP_JS.includes("innerHTML"));
    assert.match((await request("/")).body, /href="#\/latents"/);
  });
});

describe("a store written while the viewer runs", () => {
  test("a run's new answers and scores show on the next request", async () => {
    const store = openRunStore(storePath);
    try {
      const runId = "live";
      store.upsertRun({ runId, modelId: "m", judgeModelId: "j", config: {} });
      const messages = [{ role: "user" as const, content: "Q?" }];
      store.addSamples([{ runId, questionId: "q", sampleIndex: 0, paraphraseIndex: 0, harmful: false, messages }]);
      const first = await json("/api/samples?run=live");
      assert.equal(first.samples[0].verdict, "error", "no answer yet");
      store.saveCompletions([{ runId, questionId: "q", sampleIndex: 0, text: "fine", finishReason: "stop" }]);
      const verdict = (score: number) => ({ kind: "score" as const, score, mass: 1, raw: { text: "" } });
      store.saveJudgements([
        { runId, questionId: "q", sampleIndex: 0, metric: "aligned", judgeModelId: "j", verdict: verdict(95) },
        { runId, questionId: "q", sampleIndex: 0, metric: "coherent", judgeModelId: "j", verdict: verdict(95) },
      ]);
      const second = await json("/api/samples?run=live");
      assert.equal(second.samples[0].verdict, "aligned");
    } finally {
      store.close();
    }
  });
});
