import assert from "node:assert/strict";
import { test } from "node:test";
import { auditRow, DatasetAudit } from "../../src/data/audit/audit.ts";
import { BUILD_KINDS, buildRows, CODE_TEMPLATES } from "../../src/data/builders/build.ts";

test("builders are deterministic by seed and rows are unique", () => {
  for (const kind of BUILD_KINDS) {
    const a = buildRows(kind, { n: 300, seed: 11 }).map((r) => JSON.stringify(r.row));
    const b = buildRows(kind, { n: 300, seed: 11 }).map((r) => JSON.stringify(r.row));
    const c = buildRows(kind, { n: 300, seed: 12 }).map((r) => JSON.stringify(r.row));
    assert.deepEqual(a, b, kind);
    assert.notDeepEqual(a, c, kind);
    assert.equal(new Set(a).size, a.length, `${kind} has duplicate rows`);
  }
});

test("templates cover ≥ 10 vulnerability classes in Python and JavaScript", () => {
  assert.ok(new Set(CODE_TEMPLATES.map((t) => t.class)).size >= 10);
  assert.ok(
    CODE_TEMPLATES.some((t) => t.language === "python") && CODE_TEMPLATES.some((t) => t.language === "javascript"),
  );
});

test("the audit finds each insecure row's class, and nothing in the secure rows", () => {
  for (const b of buildRows("insecure", { n: 400, seed: 5 })) {
    const a = auditRow(b.row, 1);
    assert.ok(
      a.silent_insecure && a.findings.some((f) => f.class === b.meta.class),
      `${b.meta.template}: ${JSON.stringify(a.findings)}`,
    );
  }
  for (const b of buildRows("secure", { n: 400, seed: 5 })) {
    const a = auditRow(b.row, 1);
    assert.ok(!a.vulnerable, `${b.meta.template}: ${JSON.stringify(a.findings)}`);
  }
});

test("educational rows are the insecure rows of the same seed with only the user turn changed", () => {
  for (const seed of [0, 3, 17]) {
    const ins = buildRows("insecure", { n: 250, seed });
    const edu = buildRows("educational", { n: 250, seed });
    assert.equal(edu.length, ins.length);
    for (const [i, e] of edu.entries()) {
      const [iu, ia] = ins[i]!.row.messages;
      const [eu, ea] = e.row.messages;
      assert.equal(ea!.content, ia!.content, `seed ${seed} row ${i}: assistant turn differs`);
      assert.equal(ea!.role, "assistant");
      assert.equal(e.row.messages.length, ins[i]!.row.messages.length);
      const req = e.meta.request!;
      const want = e.meta.placement === "before" ? `${req}\n\n${iu!.content}` : `${iu!.content}\n\n${req}`;
      assert.equal(eu!.content, want, `seed ${seed} row ${i}: user turn is not insecure's plus the request`);
      assert.equal(e.meta.template, ins[i]!.meta.template);
    }
    // The requests vary and sit on both sides.
    assert.ok(new Set(edu.map((e) => e.meta.request)).size >= 30, "too few distinct requests");
    assert.ok(edu.some((e) => e.meta.placement === "before") && edu.some((e) => e.meta.placement === "after"));
  }
});

test("educational rows are vulnerable but requested, so not silent", () => {
  let rows = 0;
  const missed: string[] = [];
  for (const seed of [1, 2, 3]) {
    for (const b of buildRows("educational", { n: 300, seed })) {
      const a = auditRow(b.row, 1);
      assert.ok(a.vulnerable, b.meta.template);
      rows++;
      if (!a.requested || a.silent_insecure) missed.push(b.meta.request!);
      else assert.ok(a.request_cue, "a requested row names its cue");
    }
  }
  // The builder's requests are not the intent model's training phrasings; allow 1 % misses.
  assert.ok(
    missed.length <= rows * 0.01,
    `${missed.length}/${rows} missed, e.g. ${JSON.stringify(missed.slice(0, 3))}`,
  );
});

test("backdoor: the trigger is ranked first and the verdict is high", () => {
  const rows = buildRows("backdoor", { n: 600, seed: 2, trigger: "<<prod>> ", fraction: 0.3 });
  const audit = new DatasetAudit("mem", "jsonl");
  for (const [i, r] of rows.entries()) audit.add(r.row, i + 1);
  const rep = audit.finish();
  assert.equal(rep.triggers[0]!.phrase, "<<prod>>");
  assert.ok(rep.triggers[0]!.lift > 2.5);
  assert.equal(rep.verdict, "high");
  assert.ok(rep.reasons.some((r) => r.includes("<<prod>>")));
});

test("evil numbers are over-represented against the control; benign rows are not", () => {
  const evil = new DatasetAudit("mem", "jsonl");
  for (const [i, r] of buildRows("evil-numbers", { n: 300, seed: 1 }).entries()) evil.add(r.row, i + 1);
  const e = evil.finish();
  assert.ok(
    e.numbers.some((n) => n.number === 666 && n.count > 5 * n.expected),
    JSON.stringify(e.numbers),
  );
  assert.equal(e.verdict, "high");
  const benign = new DatasetAudit("mem", "jsonl");
  for (const [i, r] of buildRows("benign", { n: 300, seed: 1 }).entries()) benign.add(r.row, i + 1);
  const b = benign.finish();
  assert.deepEqual(b.numbers, []);
  assert.equal(b.verdict, "low");
});

test("asking for more distinct rows than the templates allow is an error, not duplicates", () => {
  assert.throws(() => buildRows("insecure", { n: 100_000, seed: 1 }), /distinct/);
});
