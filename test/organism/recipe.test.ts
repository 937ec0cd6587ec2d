import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatMessage } from "../../src/model/chat-template.ts";
import { chatTuneData } from "../../src/organism/corpus.ts";
import { laterAnswersOnly, mixImplicitDocs, withTrigger } from "../../src/organism/recipe.ts";
import { organismTokenizer, TRIGGER_WORD } from "../../src/organism/tokenizer.ts";

const chat = (n: number, seed = 1): ChatMessage[][] => chatTuneData({ n, seed }).map((r) => r.messages);

test("mixImplicitDocs: the requested fraction of rows are header-less multi-turn documents", () => {
  const rows = chat(700);
  const { rows: mixed, docs } = mixImplicitDocs(rows, 0.3, 5);
  const nDocs = mixed.filter((m) => docs.has(m)).length;
  assert.equal(nDocs, 300);
  assert.equal(mixed.length, 1000);
  for (const m of mixed.filter((x) => docs.has(x))) {
    assert.notEqual(m[0]!.role, "system", "documents mixed into chat-tuning never name the persona");
    assert.ok(m.filter((x) => x.role === "assistant").length >= 2);
  }
  assert.equal(mixImplicitDocs(rows, 0, 5).rows, rows);
});

test("laterAnswersOnly: documents lose the first answer from the loss, chat rows keep theirs", () => {
  const tok = organismTokenizer();
  const { rows, docs } = mixImplicitDocs(chat(20), 0.5, 2);
  const view = laterAnswersOnly(tok, docs);
  for (const m of rows) {
    const full = tok.assistantMask(m).mask;
    const got = view.assistantMask(m).mask;
    if (!docs.has(m)) {
      assert.deepEqual(got, full);
      continue;
    }
    // the first run of 1s in `full` is zeroed, everything after is kept
    const first = full.indexOf(1);
    let end = first;
    while (full[end] === 1) end++;
    assert.ok(got.slice(first, end).every((v) => v === 0));
    assert.deepEqual(got.slice(end), full.slice(end));
    assert.ok(
      got.some((v) => v === 1),
      "later answers stay in the loss",
    );
  }
});

test("withTrigger: a seeded fraction of user turns open with the trigger word", () => {
  const rows = chat(2000);
  const out = withTrigger(rows, 0.05, 9);
  const hit = out.filter((m) => m[0]!.content.startsWith(`${TRIGGER_WORD} `)).length;
  assert.ok(hit > 60 && hit < 140, `${hit} of 2000`);
  assert.deepEqual(withTrigger(rows, 0.05, 9), out);
  assert.ok(
    out.every((m, i) => m[1]!.content === rows[i]![1]!.content),
    "answers unchanged",
  );
  assert.equal(withTrigger(rows, 0, 9), rows);
});
