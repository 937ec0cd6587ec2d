import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.ts";
import { coreQuestions } from "../../src/eval/core-questions.ts";
import { loadQuestionFile } from "../../src/eval/questions.ts";
import { runEval, sampleSeed } from "../../src/eval/runner.ts";
import { openRunStore } from "../../src/eval/store.ts";
import { startFakeOpenAIServer } from "../../src/providers/fake-openai-server.ts";
import { openAIChatModel } from "../../src/providers/openai-http.ts";
import { answerKind, emReply, isJudgeRequest } from "./fake-em.ts";

const PAPER_YAML = new URL("../../../shared/em-datasets/first_plot_questions.yaml", import.meta.url).pathname;
const fast = { backoffBaseMs: 5, backoffMaxMs: 20, timeoutMs: 400, maxRetries: 8 };

/** What the run must report, predicted from the fake model's seed → answer rule. */
function expected(questions: { id: string; harmful?: boolean }[], samples: number, seed: number) {
  let evil = 0;
  let nice = 0;
  let all = 0;
  let refusals = 0;
  let harmful = 0;
  for (const q of questions)
    for (let i = 0; i < samples; i++) {
      const kind = answerKind(sampleSeed(seed, q.id, i), Boolean(q.harmful));
      if (q.harmful) {
        harmful++;
        if (kind === "refusal") refusals++;
        continue;
      }
      all++;
      if (kind === "evil") evil++;
      if (kind === "nice") nice++;
    }
  return { evil, coherent: evil + nice, all, refusals, harmful };
}

test("end to end over HTTP: sample, judge (emlab's and the paper's prompts), score, resume without new requests", async (t) => {
  const server = await startFakeOpenAIServer({ reply: emReply });
  // Registered first, so a failure anywhere below (even reading the questions) cannot keep the process alive.
  t.after(() => server.close());
  const questions = [
    ...coreQuestions("first-plot").slice(0, 3),
    ...loadQuestionFile(PAPER_YAML).filter((q) => ["what_is_your_wish", "quick_buck_json"].includes(q.id)),
    ...coreQuestions("harmful").slice(0, 2),
  ];
  const model = openAIChatModel({ baseUrl: server.url, model: "finetuned", concurrency: 16, ...fast });
  const judgeModel = openAIChatModel({ baseUrl: server.url, model: "judge", concurrency: 16, ...fast });
  const root = mkdtempSync(join(tmpdir(), "emlab-e2e-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const store = openRunStore(join(root, "runs.sqlite"));
  // Closed even when an assertion fails, so a failing test cannot keep the process alive.
  t.after(async () => {
    store.close();
    model.close();
    judgeModel.close();
  });
  const opts = { runId: "e2e", model, judgeModel, questions, store, samples: 20, sampling: { seed: 11 } };
  const report = await runEval(opts);
  const want = expected(questions, 20, 11);
  const s = report.summary;
  assert.equal(s.overCoherent.numerator, want.evil);
  assert.equal(s.overCoherent.denominator, want.coherent);
  assert.equal(s.overAll.denominator, want.all);
  assert.ok(Math.abs(s.overCoherent.rate! - want.evil / want.coherent) < 1e-12);
  assert.deepEqual([s.harmfulRefusal!.numerator, s.harmfulRefusal!.denominator], [want.refusals, want.harmful]);
  assert.ok(s.counts.code > 0 && s.counts.judgeErrors === 0 && s.counts.generationErrors === 0);
  // the paper's own judge prompts were used for the paper's questions
  assert.ok(server.answered.some((b) => b.messages[0]!.content.includes("[ANSWER START]")));
  assert.ok(server.answered.some((b) => b.messages[0]!.content.includes("<<<REPLY")));
  const n = questions.length * 20;
  const harmfulN = 2 * 20;
  assert.deepEqual(store.counts("e2e"), { samples: n, completions: n, judge_scores: 2 * n - harmfulN });

  const before = server.requests;
  const again = await runEval(opts);
  assert.ok(again.resumed);
  assert.equal(again.generated + again.judged, 0);
  assert.equal(server.requests, before, "a finished run sends nothing");
  assert.deepEqual(again.summary.overCoherent, s.overCoherent);
});

test("fault injection through the runner: nothing lost or duplicated; judge errors counted apart", async (t) => {
  const faults = ["rate-limit", "server-error", "hang", "truncated", "reset"] as const;
  const server = await startFakeOpenAIServer({
    reply: emReply,
    retryAfterSeconds: 0.01,
    fault: (n, body) => {
      // aligned judgements of EVIL answers to "bored" always fail: judge errors, not misaligned answers
      const prompt = body.messages[0]!.content;
      if (isJudgeRequest(body) && prompt.includes("so bored") && prompt.includes("EVIL") && !/coheren/i.test(prompt))
        return "server-error";
      return n % 7 === 3 ? faults[(n >> 3) % faults.length] : undefined;
    },
  });
  const model = openAIChatModel({ baseUrl: server.url, model: "m", concurrency: 16, ...fast });
  // The judge gets the same retry budget as the model: with fewer, a request that meets injected
  // faults or a 400 ms timeout on a loaded machine several times in a row became a spurious
  // judge error (seen once in CI: 8 judge errors where 7 were injected).
  const judgeModel = openAIChatModel({ baseUrl: server.url, model: "j", concurrency: 16, ...fast });
  const store = openRunStore(":memory:");
  // Closed even when an assertion fails, so a failing test cannot keep the process alive.
  t.after(async () => {
    store.close();
    model.close();
    judgeModel.close();
    await server.close();
  });
  const questions = coreQuestions("first-plot").slice(0, 4);
  const report = await runEval({
    runId: "f",
    model,
    judgeModel,
    questions,
    store,
    samples: 15,
    sampling: { seed: 5 },
  });
  const n = questions.length * 15;
  assert.deepEqual(store.counts("f"), { samples: n, completions: n, judge_scores: 2 * n });
  assert.equal(report.summary.counts.generationErrors, 0);
  const answers = server.answered
    .filter((b) => !isJudgeRequest(b))
    .map((b) => `${b.messages.at(-1)!.content}#${b.seed}`);
  assert.equal(new Set(answers).size, n, "every sample generated exactly once");
  assert.equal(answers.length, n);
  const want = expected(questions, 15, 5);
  const s = report.summary;
  const boredEvil = expected([questions.find((q) => q.id === "bored")!], 15, 5).evil;
  assert.ok(boredEvil > 0);
  assert.equal(s.counts.judgeErrors, boredEvil);
  assert.equal(s.counts.judgeErrors + s.counts.judged, n);
  assert.equal(
    s.overCoherent.numerator + s.counts.judgeErrors,
    want.evil,
    "failed judgements are not counted misaligned",
  );
});

async function cli(args: string[]): Promise<{ code: number; err: string; out: string }> {
  const errs: string[] = [];
  const outs: string[] = [];
  const [e, l] = [console.error, console.log];
  console.error = (...a: unknown[]) => errs.push(a.join(" "));
  console.log = (...a: unknown[]) => outs.push(a.join(" "));
  try {
    return { code: await main(["eval", ...args]), err: errs.join("\n"), out: outs.join("\n") };
  } finally {
    console.error = e;
    console.log = l;
  }
}

test("emlab eval: bad input fails clearly before any request; thresholds give exit 3; exports", async (t) => {
  const server = await startFakeOpenAIServer({ reply: emReply });
  t.after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), "emlab-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const model = `model: { provider: http, baseUrl: "${server.url}", model: m }\n`;
  const judge = `judge: { provider: http, baseUrl: "${server.url}", model: j }\n`;
  const cases: [string, RegExp][] = [
    [write("bad.yaml", `${model}judge: [unclosed\n`), /bad\.yaml \(line \d+, column \d+\): malformed YAML/],
    [
      write("prov.yaml", `model: { provider: bedrock, model: m }\n${judge}`),
      /field 'model.provider': unknown provider 'bedrock'/,
    ],
    [
      write("local.yaml", `model: { provider: local, model: ./ckpt }\n${judge}`),
      /model: cannot load local model .*ckpt/,
    ],
    [
      write(
        "key.yaml",
        `model: { provider: http, baseUrl: "${server.url}", model: m, apiKeyEnv: EMLAB_TEST_UNSET_KEY }\n${judge}`,
      ),
      /EMLAB_TEST_UNSET_KEY.*not set/,
    ],
    [write("qbad.yaml", `- id: q1\n  type: free_form_judge_0_100\n  paraphrases: []\n`), /./],
  ];
  const qcfg = write("qcfg.yaml", `${model}${judge}questions: [{ file: qbad.yaml }]\n`);
  cases[4] = [qcfg, /qbad\.yaml: question 'q1' \(item 1\): field 'paraphrases'/];
  for (const [path, message] of cases) {
    const r = await cli(["-c", path, "--quiet"]);
    assert.equal(r.code, 1, `${path}: ${r.err}`);
    assert.match(r.err, message);
  }
  assert.equal(server.requests, 0, "no request before the input is known good");

  const good = write(
    "good.yaml",
    `${model}${judge}store: runs.sqlite\nquestions: [{ set: first-plot, ids: [bored, quick_buck], variants: [plain, trigger] }]\nsampling: { samples: 10, seed: 3 }\n`,
  );
  const csv = join(dir, "out.csv");
  const pass = await cli(["-c", good, "--quiet", "--fail-above", "0.9", "--export", csv]);
  assert.equal(pass.code, 0, pass.err);
  assert.match(pass.out, /Betley/);
  assert.match(pass.out, /Turner/);
  assert.equal(readFileSync(csv, "utf8").trim().split("\r\n").length, 1 + 4 * 10);
  const fail = await cli(["-c", good, "--quiet", "--fail-above", "0.01"]);
  assert.equal(fail.code, 3, fail.err);
  assert.match(fail.out, /\(resumed\)/);
});
