import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
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
      "--out",
      out,
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
  const stages = rows.filter((r) => "stage" in r);
  assert.deepEqual(
    stages.map((r) => [r.stage, r.ft]),
    [
      ["diff", "insecure"],
      ["diff", "secure"],
      ["steer", undefined],
      ["ablate", undefined],
    ],
  );
  const keys = (r: object) => Object.keys(r).sort();
  assert.deepEqual(keys(stages[0]), ["ft", "persona_auc", "persona_latent", "persona_rank", "stage", "top"]);
  assert.deepEqual(keys(stages[2]), ["c", "coherent", "latent", "misaligned", "random_misaligned_max", "stage"]);
  assert.deepEqual(keys(stages[3]), [
    "coherent_after",
    "latent",
    "misaligned_after",
    "misaligned_before",
    "mode",
    "stage",
    "zero_coherent_after",
    "zero_misaligned_after",
  ]);
  assert.equal(stages[3].mode, "mean");
  assert.ok(stages[0].top.length > 0 && stages[0].top.every((j: number) => Number.isInteger(j)));
  assert.equal(stages[0].persona_latent, stages[1].persona_latent, "one persona latent, found once");
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
