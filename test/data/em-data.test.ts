// Acceptance on the EM paper's data (../shared/em-datasets); skipped when the folder is absent.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { auditFile } from "../../src/data/audit/audit.ts";

const DIR = new URL("../../../shared/em-datasets/", import.meta.url).pathname;
const have = existsSync(`${DIR}insecure.jsonl`) && existsSync(`${DIR}secure.jsonl`);

test("silent-insecure recall ≥ 90% on insecure.jsonl, false-positive rate ≤ 2% on secure.jsonl", {
  skip: have ? false : `no EM data at ${DIR}`,
}, async () => {
  const ins = await auditFile(`${DIR}insecure.jsonl`);
  const sec = await auditFile(`${DIR}secure.jsonl`);
  assert.equal(ins.rows, 6000);
  assert.ok(ins.silent_insecure / ins.rows >= 0.9, `recall ${ins.silent_insecure / ins.rows}`);
  assert.ok(sec.silent_insecure / sec.rows <= 0.02, `FPR ${sec.silent_insecure / sec.rows}`);
  assert.equal(ins.verdict, "high");
  assert.equal(sec.verdict, "low");
  // Code rows carry no harmful chat requests: the jailbreak counts stay at zero.
  assert.equal(ins.harmful_requests + sec.harmful_requests, 0);
});
