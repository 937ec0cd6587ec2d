/** Explore / confirm plans (src/eval/plan.ts): the seed partition, the hash, the confirm lock, errors that name the field. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { z } from "zod";
import { confirmLock, hashPlan, loadPlan, parsePlan, planRecord, seedsFor } from "../../src/eval/plan.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-plan-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const plan = (confirm: Record<string, number[]> = { finetune: [7, 8], sampling: [70, 80] }) => ({
  experiment: "t",
  shared: { pretrain: 0 },
  phases: { explore: { seeds: { finetune: [0, 1], sampling: [0, 10] } }, confirm: { seeds: confirm } },
  settings: { cs: [0.5] },
});

test("a plan whose confirm seeds meet its explore seeds is refused, naming the field", () => {
  assert.throws(
    () => parsePlan(plan({ finetune: [1, 8], sampling: [70, 80] })),
    /phases\.confirm\.seeds\.finetune: 1 is also an explore seed/,
  );
  assert.throws(() => parsePlan(plan({ finetune: [7, 8] })), /phases\.confirm\.seeds\.sampling: missing/);
  assert.throws(() => parsePlan(plan({ finetune: [7], sampling: [70, 80] })), /every kind needs as many seeds/);
  assert.throws(() => parsePlan({ ...plan(), extra: 1 }), /field \(top\): Unrecognized key/i);
  const Settings = z.strictObject({ cs: z.array(z.number().positive()) });
  assert.throws(
    () => parsePlan({ ...plan(), settings: { cs: [-1] } }, Settings, "p.yaml"),
    /p\.yaml: field settings\.cs\.0/,
  );
});

test("confirm refuses explore seeds, explore refuses confirm seeds; runs zip the lists", () => {
  const p = parsePlan(plan());
  assert.deepEqual(seedsFor(p, "confirm"), [
    { pretrain: 0, finetune: 7, sampling: 70 },
    { pretrain: 0, finetune: 8, sampling: 80 },
  ]);
  assert.deepEqual(seedsFor(p, "confirm", { finetune: 8 }), [{ pretrain: 0, finetune: 8, sampling: 80 }]);
  assert.throws(
    () => seedsFor(p, "confirm", { finetune: 0 }),
    /finetune seed 0 is an explore seed; a confirm run may not use it/,
  );
  assert.throws(
    () => seedsFor(p, "explore", { sampling: 70 }),
    /sampling seed 70 is a confirm seed; an explore run may not use it/,
  );
  assert.throws(() => seedsFor(p, "confirm", { finetune: 9 }), /not one of the plan's confirm seeds/);
  assert.throws(() => seedsFor(p, "confirm", { pretrain: 1 }), /the plan shares 0/);
});

test("the hash ignores key order and comments; a changed plan after the first confirm run is labelled", () => {
  const a = join(tmp, "a.yaml");
  const b = join(tmp, "b.yaml");
  writeFileSync(
    a,
    "experiment: t\nshared: {pretrain: 0}\nphases:\n  explore: {seeds: {finetune: [0, 1], sampling: [0, 10]}}\n  confirm: {seeds: {finetune: [7, 8], sampling: [70, 80]}}\nsettings: {cs: [0.5]}\n",
  );
  writeFileSync(
    b,
    "# same plan, other order\nsettings: {cs: [0.5]}\nphases:\n  confirm: {seeds: {sampling: [70, 80], finetune: [7, 8]}}\n  explore: {seeds: {sampling: [0, 10], finetune: [0, 1]}}\nshared: {pretrain: 0}\nexperiment: t\n",
  );
  const pa = loadPlan(a);
  assert.equal(pa.hash, loadPlan(b).hash);
  assert.equal(pa.hash, hashPlan({ ...plan(), paired: false }));
  const lockFile = join(tmp, "lock.json");
  const lock = confirmLock(lockFile, pa, new Date("2026-01-01T00:00:00Z"));
  assert.equal(planRecord(pa, "confirm", { finetune: 7 }, lock).plan_changed_after_confirm, undefined);
  // The plan changes after the first confirm run: the lock keeps the first hash, the record says so.
  const changed = parsePlan({ ...plan(), settings: { cs: [0.6] } });
  const again = confirmLock(lockFile, changed);
  assert.equal(again.hash, pa.hash);
  const rec = planRecord(changed, "confirm", { finetune: 7 }, again);
  assert.deepEqual(rec.plan_changed_after_confirm, { first_hash: pa.hash, first_at: "2026-01-01T00:00:00.000Z" });
  assert.equal(planRecord(changed, "explore", { finetune: 0 }, again).plan_changed_after_confirm, undefined);
  assert.throws(() => loadPlan(join(tmp, "missing.yaml")), /missing\.yaml/);
});

test("the shipped experiment plans parse and keep their phases apart", () => {
  for (const f of ["experiments/interp/plan.yaml", "experiments/organism/plan.yaml"]) {
    const p = loadPlan(f);
    for (const [kind, list] of Object.entries(p.phases.confirm.seeds))
      for (const s of list) assert.ok(!p.phases.explore.seeds[kind]!.includes(s), `${f}: ${kind} ${s}`);
  }
});
