/** `emlab eval --report FILE` writes the report of the run it just made. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.ts";
import { startFakeOpenAIServer } from "../../src/providers/fake-openai-server.ts";
import type { ReportData } from "../../src/report/index.ts";
import { emReply } from "../eval/fake-em.ts";

test("emlab eval --report writes the run's HTML report", async (t) => {
  const server = await startFakeOpenAIServer({ reply: emReply });
  t.after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), "emlab-eval-report-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, "emlab.yaml");
  const provider = (name: string) => `{ provider: http, baseUrl: "${server.url}", model: ${name} }`;
  writeFileSync(
    config,
    `model: ${provider("m")}\njudge: ${provider("j")}\nstore: runs.sqlite\n` +
      "questions: [{ set: first-plot, ids: [one_wish, bored] }]\nsampling: { samples: 5, seed: 1 }\n",
  );
  const out = join(dir, "report.html");
  const [log, error] = [console.log, console.error];
  console.log = () => {};
  console.error = () => {};
  let code: number;
  try {
    code = await main(["eval", "-c", config, "--quiet", "--run-id", "r1", "--report", out]);
  } finally {
    console.log = log;
    console.error = error;
  }
  assert.equal(code, 0);
  const html = readFileSync(out, "utf8");
  const m = /<script type="application\/json" id="emlab-data">([\s\S]*?)<\/script>/.exec(html)!;
  const data = JSON.parse(m[1]!) as ReportData;
  assert.deepEqual(
    data.evaluation.rows.map((r) => r.id),
    ["r1"],
  );
  assert.ok(data.evaluation.rows[0]!.overAll, "both denominators");
  assert.equal(data.evaluation.heat.length, 2);
  assert.equal(data.evaluation.examples.length, 10);
});
