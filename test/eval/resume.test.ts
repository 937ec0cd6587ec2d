import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { type FakeServerOptions, startFakeOpenAIServer } from "../../src/providers/fake-openai-server.ts";
import { emReply, isJudgeRequest } from "./fake-em.ts";

const BIN = new URL("../../bin/emlab.js", import.meta.url).pathname;

function startEval(config: string) {
  const child = spawn(process.execPath, [BIN, "eval", "-c", config, "--quiet"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, err })),
  );
  return { child, exited };
}

test("a run killed with SIGKILL resumes: no duplicate rows, finished samples reused", async (t) => {
  const opts: FakeServerOptions = { reply: emReply, delayMs: 40 };
  const server = await startFakeOpenAIServer(opts);
  t.after(() => server.close()); // even when an assertion fails, so the test process can end
  const dir = mkdtempSync(join(tmpdir(), "emlab-kill-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storePath = join(dir, "runs.sqlite");
  const config = join(dir, "emlab.yaml");
  const provider = (name: string) => `{ provider: http, baseUrl: "${server.url}", model: ${name}, concurrency: 4 }`;
  writeFileSync(
    config,
    `model: ${provider("m")}\njudge: ${provider("j")}\nstore: runs.sqlite\nbatchSize: 4\n` +
      "questions: [{ set: first-plot, ids: [one_wish, bored, quick_buck] }]\nsampling: { samples: 30, seed: 9 }\n",
  );
  const total = 3 * 30;
  const generations = () => server.answered.filter((b) => !isJudgeRequest(b)).length;

  const first = startEval(config);
  // wait until some (not all) completions are committed, then kill without warning
  let done = 0;
  for (let i = 0; i < 500 && done < 20; i++) {
    await new Promise((r) => setTimeout(r, 20));
    try {
      const db = new Database(storePath, { readonly: true, fileMustExist: true });
      done = (db.prepare("SELECT COUNT(*) AS n FROM completions WHERE error_json IS NULL").get() as { n: number }).n;
      db.close();
    } catch {
      // the child has not created the store yet
    }
  }
  first.child.kill("SIGKILL");
  const killed = await first.exited;
  assert.equal(killed.signal, "SIGKILL");
  const db = new Database(storePath, { readonly: true });
  const committed = (
    db.prepare("SELECT COUNT(*) AS n FROM completions WHERE error_json IS NULL").get() as { n: number }
  ).n;
  db.close();
  assert.ok(committed >= 20 && committed < total, `killed mid-way (${committed}/${total} committed)`);

  opts.delayMs = 0;
  const gensBefore = generations();
  const second = await startEval(config).exited;
  assert.equal(second.code, 0, second.err);
  assert.equal(generations() - gensBefore, total - committed, "only unfinished samples are generated again");

  const after = new Database(storePath, { readonly: true });
  const count = (sql: string) => (after.prepare(sql).get() as { n: number }).n;
  assert.equal(count("SELECT COUNT(*) AS n FROM samples"), total);
  assert.equal(count("SELECT COUNT(*) AS n FROM completions WHERE error_json IS NULL"), total);
  assert.equal(count("SELECT COUNT(*) AS n FROM judge_scores WHERE kind <> 'error'"), 2 * total);
  assert.equal(count("SELECT COUNT(*) AS n FROM runs"), 1);
  assert.equal((after.prepare("SELECT status FROM runs").get() as { status: string }).status, "finished");
  after.close();
});
