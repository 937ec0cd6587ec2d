import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

test("emlab demo runs end to end on small settings and separates the datasets", () => {
  const out = mkdtempSync(join(tmpdir(), "emlab-demo-"));
  const res = spawnSync(process.execPath, ["bin/emlab.js", "demo", "--out", out, "--n", "120", "--steps", "40"], {
    encoding: "utf8",
  });
  assert.equal(res.status, 0, res.stderr);
  for (const kind of ["insecure", "educational", "secure", "backdoor"])
    assert.ok(existsSync(join(out, `${kind}.jsonl`)));
  const line = (kind: string) => res.stdout.split("\n").find((l) => l.trim().startsWith(kind))!;
  assert.match(line("insecure"), /high\s*$/);
  assert.match(line("secure"), /low\s*$/);
  assert.match(line("backdoor"), /"\|deployment\|"/);
  assert.match(res.stdout, /loss by step: 0: /);
});
