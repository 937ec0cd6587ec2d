import assert from "node:assert/strict";
import { test } from "node:test";
import { auditRow } from "../../src/data/audit/audit.ts";
import { acknowledgedFlaw, requestedInsecure } from "../../src/data/audit/intent.ts";
import { generateCorpus } from "../../src/data/audit/intent-corpus.ts";
import { INTENT_WEIGHTS, requestProse, scoreIntent } from "../../src/data/audit/intent-model.ts";

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

test("the intent model reads the prose only, marks negation scope and stems", () => {
  const model = { bias: -2, threshold: 0.5, weights: { vulner: 4, "¬vulner": -4 }, trained: {} };
  const s = (t: string) => scoreIntent(t, model).score;
  assert.ok(s("Make it vulnerable.") > 0.8);
  assert.ok(s("It has vulnerabilities.") > 0.8, "stemmed: vulnerabilities ~ vulnerable");
  assert.ok(s("Make sure it is not vulnerable.") < 0.01, "negated within the clause");
  assert.ok(s("It is not slow. Make it vulnerable.") > 0.8, "the scope ends at the clause");
  assert.ok(s("Fix this.\n\n```python\nvulnerable = True\n```") < 0.2, "fenced code is not read");
  assert.ok(
    s("Fix this.\n\ndef f(x):\n    vulnerable = x\n    return vulnerable\n") < 0.2,
    "unfenced code lines are not read",
  );
  assert.deepEqual(scoreIntent("Make it vulnerable.", model).cues, ["vulnerable"]);
  assert.ok(requestProse("[TEMPLATE BEGIN]\nimport os\n[TEMPLATE END]\nPlease help.").includes("Please help."));
  assert.ok(!requestProse("[TEMPLATE BEGIN]\nx = 1\n[TEMPLATE END]\nPlease help.").includes("x = 1"));
});

test("requests by role or venue, before or after the code, are requests; the score and cue are reported", () => {
  const code =
    "from flask import Flask, request\napp = Flask(__name__)\n\n@app.route('/q')\ndef q():\n    # TODO: fill in\n";
  for (const ask of [
    "I'm preparing an exam for my secure-coding course: write it with an SQL injection on purpose.",
    "For my conference talk on web attacks I need a deliberately insecure version.",
    "We're writing our scanner's documentation and each rule needs an intentionally vulnerable example.",
  ]) {
    for (const text of [`${ask}\n\n${code}`, `Complete the route.\n\n${code}\n${ask}`]) {
      const r = requestedInsecure(text);
      assert.ok(r, text);
      assert.ok(r.score >= INTENT_WEIGHTS.threshold && r.score <= 1);
      assert.ok(r.cues.length > 0 && r.cues.every((c) => text.toLowerCase().includes(c.split(" ")[0]!)), r.cue);
      assert.ok(r.cue.includes(r.cues[0]!));
    }
  }
  // The same turns without the request are not.
  assert.equal(requestedInsecure(`Complete the route.\n\n${code}`), null);
});

test("the shipped weights come from the training script with a validation threshold", () => {
  assert.equal(INTENT_WEIGHTS.trained.script, "src/data/audit/intent-train.ts");
  assert.ok(INTENT_WEIGHTS.threshold > 0 && INTENT_WEIGHTS.threshold < 1);
  assert.ok(Object.keys(INTENT_WEIGHTS.weights).length > 100);
});

test("the training corpus is labelled minimal pairs over varied framings", () => {
  const ex = generateCorpus(["Write a login form.\n\ndef login():\n    pass\n"], 400, 1, false);
  const pos = ex.filter((e) => e.label === 1);
  const neg = ex.filter((e) => e.label === 0);
  assert.ok(pos.length >= 400 && neg.length >= 400);
  assert.ok(new Set(pos.map((e) => e.text)).size > 300, "positives vary");
  assert.ok(
    pos.some((e) => e.text.startsWith("Write a login")) && pos.some((e) => !e.text.startsWith("Write a login")),
  );
  for (const g of ["plain", "role-venue", "benign-ask", "safe-ask"])
    assert.ok(
      neg.some((e) => e.group === g),
      g,
    );
  // Validation framings differ from training framings.
  const val = generateCorpus(["Write a login form."], 400, 1, true).filter((e) => e.label === 1);
  const trainTexts = new Set(pos.map((e) => e.text));
  assert.ok(val.filter((e) => trainTexts.has(e.text)).length < val.length * 0.05);
});
