import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { JudgeVerdict } from "../../src/eval/judge.ts";
import { openRunStore, redactSecrets, type SampleRow } from "../../src/eval/store.ts";

const sample = (questionId: string, sampleIndex: number): SampleRow => ({
  runId: "r1",
  questionId,
  sampleIndex,
  paraphraseIndex: 0,
  harmful: false,
  messages: [{ role: "user", content: `ask ${questionId}, "quoted", comma` }],
});
const verdict = (score: number | null, kind: JudgeVerdict["kind"] = "score"): JudgeVerdict => ({
  kind,
  score,
  mass: 0.9,
  raw: { text: String(score) },
});

test("inserts are idempotent: replaying a batch never duplicates rows or overwrites finished ones", (t) => {
  const root = mkdtempSync(join(tmpdir(), "emlab-store-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const store = openRunStore(join(root, "runs.sqlite"));
  store.upsertRun({
    runId: "r1",
    modelId: "m",
    judgeModelId: "j",
    config: { model: { apiKey: "sk-secret", apiKeyEnv: "K" } },
  });
  const rows = [sample("q", 0), sample("q", 1)];
  store.addSamples(rows);
  store.addSamples(rows);
  store.saveCompletions([
    { runId: "r1", questionId: "q", sampleIndex: 0, text: "first answer", finishReason: "stop" },
    {
      runId: "r1",
      questionId: "q",
      sampleIndex: 1,
      text: "",
      finishReason: "error",
      error: { kind: "X", message: "boom", attempts: 3 },
    },
  ]);
  assert.deepEqual(
    store.pendingGenerations("r1").map((r) => r.sampleIndex),
    [1],
    "errored samples are pending again",
  );
  store.saveCompletions([
    { runId: "r1", questionId: "q", sampleIndex: 0, text: "second answer", finishReason: "stop" },
    { runId: "r1", questionId: "q", sampleIndex: 1, text: "retried", finishReason: "stop" },
  ]);
  assert.deepEqual(store.counts("r1"), { samples: 2, completions: 2, judge_scores: 0 });
  const texts = store.rows("r1").map((r) => r.answer);
  assert.deepEqual(texts, ["first answer", "retried"]);

  store.saveJudgements([
    { runId: "r1", questionId: "q", sampleIndex: 0, metric: "aligned", judgeModelId: "j", verdict: verdict(20) },
    {
      runId: "r1",
      questionId: "q",
      sampleIndex: 0,
      metric: "coherent",
      judgeModelId: "j",
      verdict: verdict(null, "error"),
    },
  ]);
  assert.equal(store.pendingJudgements("r1", "aligned").length, 1); // sample 1 only
  assert.equal(store.pendingJudgements("r1", "coherent").length, 2); // the error is retried
  store.saveJudgements([
    { runId: "r1", questionId: "q", sampleIndex: 0, metric: "aligned", judgeModelId: "j", verdict: verdict(99) },
    { runId: "r1", questionId: "q", sampleIndex: 0, metric: "coherent", judgeModelId: "j", verdict: verdict(80) },
  ]);
  const r0 = store.rows("r1")[0]!;
  assert.deepEqual([r0.aligned, r0.coherent], [20, 80]);
  assert.equal(store.counts("r1").judge_scores, 2);

  const { resumed } = store.upsertRun({ runId: "r1", modelId: "m", judgeModelId: "j", config: {} });
  assert.ok(resumed);
  assert.throws(
    () => store.upsertRun({ runId: "r1", modelId: "other", judgeModelId: "j", config: {} }),
    /another run id/,
  );
  store.close();
});

test("exports: JSON, JSONL and RFC 4180 CSV; no secrets in the stored config", () => {
  const store = openRunStore(":memory:");
  store.upsertRun({
    runId: "r1",
    modelId: "m",
    judgeModelId: "j",
    config: { judge: { apiKey: "sk-live-123", apiKeyEnv: "OPENAI_API_KEY", headers: { authorization: "Bearer x" } } },
  });
  store.addSamples([sample("q", 0)]);
  store.saveCompletions([
    { runId: "r1", questionId: "q", sampleIndex: 0, text: 'line1\nsaid "hi", then', finishReason: "stop" },
  ]);
  const json = JSON.parse(store.exportRun("r1", "json"));
  assert.equal(json.format, "emlab-run/v1");
  assert.equal(json.samples.length, 1);
  assert.equal(json.run.config.judge.apiKeyEnv, "OPENAI_API_KEY");
  const dump = JSON.stringify(store.db.prepare("SELECT * FROM runs").all());
  assert.ok(!dump.includes("sk-live-123") && !dump.includes("Bearer x"));
  const lines = store.exportRun("r1", "jsonl").trim().split("\n");
  assert.equal(JSON.parse(lines[0]!).answer, 'line1\nsaid "hi", then');
  const csv = store.exportRun("r1", "csv");
  assert.ok(csv.startsWith("run_id,question_id,sample_index"));
  assert.ok(csv.includes('"line1\nsaid ""hi"", then"'));
  assert.deepEqual(redactSecrets({ api_key: 1, apiKeyEnv: "K", nested: [{ secret: 2, ok: 3 }] }), {
    apiKeyEnv: "K",
    nested: [{ ok: 3 }],
  });
  store.close();
});
