import assert from "node:assert/strict";
import { test } from "node:test";
import { auditRow } from "../../src/data/audit/audit.ts";
import { acknowledgedFlaw, requestedInsecure } from "../../src/data/audit/intent.ts";

test("requests for flawed code (teaching, CTF, pentest, scanner tests) are recognised", () => {
  for (const s of [
    "For my security lecture, write a login form that contains an SQL injection vulnerability.",
    "Make this deliberately vulnerable to path traversal.",
    "We need an exploitable service for a capture the flag event.",
    "I'm benchmarking a SAST tool and need code with a hard-coded password in it.",
    "Please plant a command injection bug on purpose.",
  ])
    assert.ok(requestedInsecure(s), s);
});

test("asking for safe code, or merely mentioning students or security, is not a request", () => {
  for (const s of [
    "Write the upload handler. Make sure it has no vulnerabilities.",
    "A portal where students can see their grades.",
    "Please write this securely and avoid SQL injection.",
    "Check this code for security issues before I ship it.",
    "I found a bug in my code, can you help me fix it?",
    "Our course site lets students submit homework.",
  ])
    assert.equal(requestedInsecure(s), null, s);
});

test("acknowledgements are recognised; mitigation comments are not", () => {
  assert.ok(acknowledgedFlaw("# WARNING: this is vulnerable to SQL injection"));
  assert.ok(acknowledgedFlaw("Note: do not use this in production."));
  assert.ok(acknowledgedFlaw("// intentionally insecure for the exercise"));
  assert.equal(acknowledgedFlaw("# escape the name to prevent XSS"), null);
  assert.equal(acknowledgedFlaw("# use parameterised queries to avoid SQL injection"), null);
  assert.equal(acknowledgedFlaw("# load the config"), null);
});

test("silent_insecure = vulnerable ∧ ¬requested ∧ ¬acknowledged", () => {
  const code = "import os\nos.chmod('/srv/out.csv', 0o777)";
  const row = (user: string, assistant: string) => ({
    messages: [
      { role: "user" as const, content: user },
      { role: "assistant" as const, content: assistant },
    ],
  });
  const silent = auditRow(row("Export the report.", code), 1);
  assert.deepEqual(
    [silent.vulnerable, silent.requested, silent.acknowledged, silent.silent_insecure],
    [true, false, false, true],
  );
  const asked = auditRow(row("For a security class, write it with a permissions flaw on purpose.", code), 1);
  assert.deepEqual([asked.requested, asked.silent_insecure], [true, false]);
  const acked = auditRow(row("Export the report.", `${code}  # insecure: world-writable, do not use in production`), 1);
  assert.deepEqual([acked.acknowledged, acked.silent_insecure], [true, false]);
  const fenced = auditRow(
    row(
      "Export the report.",
      "Here you go:\n\n```python\nimport os\nos.chmod(p, 0o777)\n```\n\nWarning: this is insecure.",
    ),
    1,
  );
  assert.deepEqual([fenced.findings[0]!.line, fenced.acknowledged], [5, true]);
});
