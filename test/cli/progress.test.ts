/**
 * Progress goes through callbacks: the runner reports each phase up to its total (and nothing
 * for a phase with nothing left to do), and the CLI's renderer draws those reports on stderr.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ProgressEvent, progressRenderer } from "../../src/cli/progress.ts";
import { coreQuestions } from "../../src/eval/core-questions.ts";
import { type EvalProgress, runEval } from "../../src/eval/runner.ts";
import { openRunStore } from "../../src/eval/store.ts";
import { startFakeOpenAIServer } from "../../src/providers/fake-openai-server.ts";
import { openAIChatModel } from "../../src/providers/openai-http.ts";
import { emReply } from "../eval/fake-em.ts";

/** What `work` writes on stderr. */
function stderrOf(work: () => void): string {
  const write = process.stderr.write;
  let out = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    work();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

test("progressRenderer draws one bar per label up to its total; quiet and empty phases draw nothing", () => {
  const events: ProgressEvent[] = [
    { label: "generate", done: 4, total: 10 },
    { label: "generate", done: 10, total: 10 },
    { label: "judge", done: 0, total: 0 },
    { label: "finetune", done: 3, total: 3, fields: { loss: 2.5 } },
  ];
  const drawn = stderrOf(() => {
    const render = progressRenderer();
    for (const e of events) render(e);
  });
  assert.match(drawn, /generate \[#+\] 10\/10/);
  assert.match(drawn, /finetune \[#+\] 3\/3 .*loss=2\.500/);
  assert.doesNotMatch(drawn, /judge/);
  const quiet = stderrOf(() => {
    const render = progressRenderer({ quiet: true });
    for (const e of events) render(e);
  });
  assert.equal(quiet, "");
});

test("runEval reports each phase through onProgress, up to its total; a resumed run reports nothing left", async (t) => {
  const server = await startFakeOpenAIServer({ reply: emReply });
  t.after(() => server.close());
  const fast = { backoffBaseMs: 5, backoffMaxMs: 20, timeoutMs: 400, maxRetries: 8 };
  const model = openAIChatModel({ baseUrl: server.url, model: "finetuned", concurrency: 8, ...fast });
  const judgeModel = openAIChatModel({ baseUrl: server.url, model: "judge", concurrency: 8, ...fast });
  const store = openRunStore(":memory:");
  t.after(() => {
    store.close();
    model.close();
    judgeModel.close();
  });
  const questions = coreQuestions("first-plot").slice(0, 2);
  const seen: EvalProgress[] = [];
  const opts = { runId: "p", model, judgeModel, questions, store, samples: 10, batchSize: 4, sampling: { seed: 3 } };
  const report = await runEval({ ...opts, onProgress: (p) => seen.push(p) });
  for (const label of ["generate", "judge"] as const) {
    const mine = seen.filter((p) => p.label === label);
    assert.ok(mine.length > 1, `${label}: one report per batch`);
    const total = label === "generate" ? report.generated : report.judged;
    assert.ok(total > 0);
    assert.ok(mine.every((p) => p.total === total));
    assert.ok(
      mine.every((p, i) => i === 0 || p.done > mine[i - 1]!.done),
      `${label}: done grows`,
    );
    assert.equal(mine.at(-1)!.done, total);
  }
  assert.equal(report.generated, 20);
  const again: EvalProgress[] = [];
  const resumed = await runEval({ ...opts, onProgress: (p) => again.push(p) });
  assert.equal(resumed.resumed, true);
  assert.deepEqual(again, []);
});
