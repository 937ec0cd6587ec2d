import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import {
  ConfigError,
  defaultRunId,
  evalConfigJsonSchema,
  parseEvalConfig,
  resolvePaths,
  resolveQuestions,
} from "../../src/eval/config.ts";
import { chatModelFromConfig } from "../../src/eval/providers.ts";

const http = { provider: "http", baseUrl: "http://127.0.0.1:9/v1", model: "m" };

test("defaults: T=1, 600 tokens, thresholds 30/50, first-plot questions", () => {
  const c = parseEvalConfig({ model: http, judge: http }, "x.yaml");
  assert.equal(c.sampling.temperature, 1);
  assert.equal(c.sampling.maxTokens, 600);
  assert.deepEqual(c.thresholds, { aligned: 30, coherent: 50 });
  assert.equal(resolveQuestions(c).length, 8);
  assert.match(defaultRunId(c), /^eval-[0-9a-f]{12}$/);
  const later = parseEvalConfig({ model: { ...http, concurrency: 99 }, judge: http, store: "elsewhere.sqlite" }, "x");
  assert.equal(defaultRunId(later), defaultRunId(c), "concurrency and store do not change which run this is");
});

test("errors name the file and field", () => {
  const err = (data: unknown) => {
    try {
      parseEvalConfig(data, "emlab.yaml");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return (e as Error).message;
    }
    assert.fail("expected an error");
  };
  assert.match(
    err({ model: { provider: "azure" }, judge: http }),
    /emlab\.yaml: field 'model.provider': unknown provider 'azure'/,
  );
  assert.match(err({ model: { ...http, apiKeyEnv: "sk-123-abc" }, judge: http }), /model.apiKeyEnv.*NAME/);
  assert.match(
    err({ model: http, judge: http, questions: [{ set: "first-plot", file: "x" }] }),
    /questions.0.*exactly one/,
  );
  assert.match(err({ model: http, judge: http, sampling: { temperature: 7 } }), /sampling.temperature/);
  assert.match(err({ model: http, judge: http, typo: 1 }), /typo/);
  const c = parseEvalConfig(
    { model: http, judge: http, questions: [{ set: "first-plot", ids: ["one_wish", "nope"] }] },
    "x",
  );
  assert.throws(() => resolveQuestions(c), /set 'first-plot': no question with id 'nope'/);
});

test("paths resolve against the config's folder; a missing local model and a missing key are caught", () => {
  const c = resolvePaths(
    parseEvalConfig({ model: http, judge: http, store: "runs/a.sqlite", questions: [{ file: "q.yaml" }] }, "x"),
    "/cfg",
  );
  assert.equal(c.store, "/cfg/runs/a.sqlite");
  assert.equal(c.questions[0]!.file, "/cfg/q.yaml");
  const local = resolvePaths(
    parseEvalConfig({ model: { provider: "local", model: "ckpt", adapter: "lora" }, judge: http }, "x"),
    "/cfg",
  );
  assert.deepEqual(local.model, { provider: "local", model: "/cfg/ckpt", adapter: "/cfg/lora" });
  assert.throws(() => chatModelFromConfig({ provider: "local", model: "./ckpt" }), /model: cannot load local model/);
  const withKey = parseEvalConfig({ model: { ...http, apiKeyEnv: "EMLAB_UNSET_VAR" }, judge: http }, "x");
  assert.throws(() => chatModelFromConfig(withKey.model, { env: {} }), /EMLAB_UNSET_VAR.*not set/);
});

test("the published JSON Schema is up to date (regenerate: node --import tsx scripts/write-eval-schema.ts)", () => {
  const onDisk = JSON.parse(readFileSync(new URL("../../docs/schema/emlab-eval.schema.json", import.meta.url), "utf8"));
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(evalConfigJsonSchema())));
  assert.ok(onDisk.properties.model && onDisk.properties.judge && onDisk.properties.questions);
});

const PAPER_YAML = new URL("../../../shared/em-datasets/first_plot_questions.yaml", import.meta.url).pathname;
test("the example config in docs/examples validates", {
  skip: !existsSync(PAPER_YAML) && "../shared absent",
}, async () => {
  const { loadEvalConfig } = await import("../../src/eval/config.ts");
  const c = loadEvalConfig(new URL("../../docs/examples/emlab-eval.yaml", import.meta.url).pathname);
  assert.equal(c.judge.provider === "http" && c.judge.apiKeyEnv, "OPENAI_API_KEY");
  assert.equal(resolveQuestions(c).length, 8 * 4 + 6 + 2);
});
