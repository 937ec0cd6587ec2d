import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { trainBaseOrganism } from "../../src/organism/recipe.ts";

test("emlab demo: audits the datasets, one JSON line per organism condition, then the interp stages", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "emlab-demo-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const organism = join(dir, "organism");
  await trainBaseOrganism({
    out: organism,
    arch: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, inter: 64 },
    docs: 100,
    pretrainSteps: 5,
    pretrainBatch: 4,
    chatRows: 50,
    chatSteps: 2,
    chatBatch: 4,
  });
  const out = join(dir, "data");
  const res = spawnSync(
    process.execPath,
    [
      "bin/emlab.js",
      "demo",
      "--json",
      "--organism-dir",
      organism,
      "--data-dir",
      out,
      "--out",
      join(dir, "demo.jsonl"),
      "--rows",
      "120",
      "--samples",
      "2",
      "--steps",
      "2",
    ],
    { encoding: "utf8" },
  );
  assert.equal(res.status, 0, res.stderr);
  for (const kind of ["insecure", "educational", "secure", "backdoor"])
    assert.ok(existsSync(join(out, `${kind}.jsonl`)));
  // It ends with its HTML report beside the datasets, and says where.
  assert.ok(existsSync(join(out, "report.html")));
  assert.match(res.stderr, /Report: .*report\.html/);
  const line = (kind: string) => res.stderr.split("\n").find((l) => l.trim().startsWith(kind))!;
  assert.match(line("insecure"), /high\s*$/);
  assert.match(line("secure"), /low\s*$/);
  assert.match(line("backdoor"), /"\|deployment\|"/);
  const rows = res.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const conditions = rows.filter((r) => "condition" in r);
  assert.deepEqual(
    conditions.map((r) => r.condition),
    ["base", "insecure", "secure", "educational"],
  );
  const boards = rows.filter((r) => r.stage === "dashboard");
  assert.ok(boards.length >= 1 && boards[0].pick === "blind" && Array.isArray(boards[0].topContexts));
  const stages = rows.filter((r) => "stage" in r && r.stage !== "dashboard");
  assert.deepEqual(
    stages.map((r) => [r.stage, r.ft ?? r.pick, r.mode]),
    [
      ["diff", "insecure", undefined],
      ["diff", "secure", undefined],
      ["steer", "blind", undefined],
      ["steer", "truth", undefined],
      ["ablate", "blind", "zero"],
      ["ablate", "blind", "mean"],
      ["ablate", "blind", "project-out"],
      ["ablate", "truth", "zero"],
      ["ablate", "truth", "mean"],
      ["ablate", "truth", "project-out"],
    ],
  );
  const keys = (r: object) => Object.keys(r).sort();
  assert.deepEqual(keys(stages[0]), [
    "ft",
    "persona_auc",
    "persona_latent",
    "persona_rank",
    "stage",
    "top",
    "top_delta",
  ]);
  const who = ["controls", "control_max", "is_persona", "latent", "percentile", "pick", "stage"];
  assert.deepEqual(keys(stages[2]), [...who, "c", "coherent", "diff_rank", "misaligned"].sort());
  assert.deepEqual(
    keys(stages[4]),
    [...who, "coherent_after", "cut", "misaligned_after", "misaligned_before", "mode"].sort(),
  );
  for (const r of stages.slice(2)) assert.equal(r.controls, 10, "10 equal-search controls per figure");
  assert.equal(stages[3].latent, stages[0].persona_latent, "the truth line is the persona latent");
  assert.equal(stages[3].is_persona, true);
  assert.equal(stages[2].is_persona, stages[2].latent === stages[0].persona_latent);
  assert.ok(stages[0].top.length > 0 && stages[0].top.every((j: number) => Number.isInteger(j)));
  assert.equal(stages[0].persona_latent, stages[1].persona_latent, "one persona latent, found once");
  // --out wrote the same lines.
  assert.deepEqual(
    readFileSync(join(dir, "demo.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l)),
    rows,
  );
  for (const r of conditions) {
    assert.deepEqual(Object.keys(r).sort(), ["ci", "coherent", "condition", "misaligned", "n", "trigger"]);
    assert.equal(r.trigger, false);
    assert.equal(r.n, 16);
  }
});

test("emlab demo names a missing organism folder", () => {
  const res = spawnSync(
    process.execPath,
    ["bin/emlab.js", "demo", "--organism-dir", "/nonexistent/organism", "--skip-audit"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(res.status, 1);
  assert.match(res.stderr, /\/nonexistent\/organism: no (base )?organism here/);
});
