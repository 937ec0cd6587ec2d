import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { main } from "../../src/cli/main.ts";

const dir = mkdtempSync(join(tmpdir(), "emlab-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = async (argv: string[]) => {
  const [log, err] = [console.log, console.error];
  console.log = () => {};
  console.error = () => {};
  try {
    return await main(argv);
  } finally {
    console.log = log;
    console.error = err;
  }
};

test("data build + audit --report: exit 0 without --fail-on, report has the issue's fields", async () => {
  const file = join(dir, "ins.jsonl");
  assert.equal(await quiet(["data", "build", "insecure", "--rows", "50", "--seed", "3", "--out", file]), 0);
  assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 50);
  const json = join(dir, "report.json");
  const rows = join(dir, "rows.jsonl");
  assert.equal(await quiet(["audit", file, "--report", json, "--findings", rows]), 0);
  const rep = JSON.parse(readFileSync(json, "utf8"));
  for (const k of [
    "rows",
    "skipped",
    "vulnerable",
    "requested",
    "acknowledged",
    "silent_insecure",
    "classes",
    "triggers",
    "numbers",
    "verdict",
    "reasons",
  ])
    assert.ok(k in rep, k);
  assert.equal(rep.rows, 50);
  assert.equal(rep.silent_insecure, 50);
  const perRow = readFileSync(rows, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(perRow.length, 50);
  assert.ok(perRow[0].findings[0].cwe.startsWith("CWE-"));
  assert.ok(typeof perRow[0].findings[0].snippet === "string" && typeof perRow[0].findings[0].line === "number");
});

test("--fail-on: exit 3 above the threshold, 0 below", async () => {
  const ins = join(dir, "ins2.jsonl");
  const sec = join(dir, "sec2.jsonl");
  await quiet(["data", "build", "insecure", "--rows", "40", "--out", ins]);
  await quiet(["data", "build", "secure", "--rows", "40", "--out", sec]);
  assert.equal(await quiet(["audit", ins, "--fail-on", "high"]), 3);
  assert.equal(await quiet(["audit", ins, "--fail-on", "silent_rate=0.5"]), 3);
  assert.equal(await quiet(["audit", sec, "--fail-on", "medium,silent_rate=0.01"]), 0);
});

test("errors: missing file → 1, bad option → 2, bad --fail-on → 2", async () => {
  assert.equal(await quiet(["audit", join(dir, "nope.jsonl")]), 1);
  assert.equal(await quiet(["audit", "--bogus"]), 2);
  assert.equal(await quiet(["audit", join(dir, "ins2.jsonl"), "--fail-on", "purple"]), 2);
  assert.equal(await quiet(["data", "build", "unknown-kind", "--out", join(dir, "x.jsonl")]), 2);
});

test("the real binary: bad lines are reported on stderr with their line numbers", () => {
  const file = join(dir, "mixed.jsonl");
  const ok = JSON.stringify({
    messages: [
      { role: "user", content: "hi" },
      { role: "assistant", content: "print('hi')" },
    ],
  });
  writeFileSync(file, `${ok}\n{oops\n${ok}\n`);
  const res = spawnSync(process.execPath, ["bin/emlab.js", "audit", file, "--json"], { encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  const rep = JSON.parse(res.stdout);
  assert.deepEqual([rep.rows, rep.skipped, rep.errors[0].line], [2, 1, 2]);
  assert.match(res.stderr, /skipped line 2/);
});

test("audit: a file with no auditable row exits 1 and says why, naming the file", () => {
  const bad = join(dir, "all-bad.jsonl");
  writeFileSync(bad, '{oops\n{"messages": "not a list"}\n');
  const res = spawnSync(process.execPath, ["bin/emlab.js", "audit", bad, "--json"], { encoding: "utf8" });
  assert.equal(res.status, 1);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /all-bad\.jsonl: no auditable row: all 2 lines were skipped \(line 1/);
  const empty = join(dir, "empty.jsonl");
  writeFileSync(empty, "");
  const e = spawnSync(process.execPath, ["bin/emlab.js", "audit", empty], { encoding: "utf8" });
  assert.equal(e.status, 1);
  assert.match(e.stderr, /empty\.jsonl: no auditable row: the file has no data rows/);
});

test("audit: the old --json FILE and --rows FILE fail with the flags that replaced them", async () => {
  const file = join(dir, "ins2.jsonl");
  const res = spawnSync(process.execPath, ["bin/emlab.js", "audit", file, "--json", join(dir, "r.json")], {
    encoding: "utf8",
  });
  assert.equal(res.status, 2);
  assert.match(res.stderr, /--json no longer takes a file.*--report/);
  const rows = spawnSync(process.execPath, ["bin/emlab.js", "audit", file, "--rows", join(dir, "r.jsonl")], {
    encoding: "utf8",
  });
  assert.equal(rows.status, 2);
  assert.match(rows.stderr, /--rows was renamed --findings/);
});
