/** Tokenizer: tokenizer.json loading, exact round trips, special tokens, streaming, chat templates, masks. */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ChatTemplateError } from "../../src/model/chat-template.ts";
import { Tokenizer, TokenizerError } from "../../src/model/tokenizer.ts";
import { BYTE_TO_CHAR, buildByteLevelBpe, buildWordLevel } from "../../src/model/tokenizer-build.ts";

const FIXTURE = "test/fixtures/tokenizer";
const tok = Tokenizer.fromDir(FIXTURE);
const tmp = mkdtempSync(join(tmpdir(), "emlab-tok-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const readJson = (p: string) => JSON.parse(readFileSync(p, "utf8"));
const ROUND_TRIP_TEXTS = [
  "",
  "Hello, world!",
  "  leading and trailing spaces   ",
  "runs     of\t\ttabs and   spaces",
  "line one\nline two\n\n\nafter blank lines\r\nwindows line\r\n",
  "def add(a, b):\n    return a + b\n\n\tif x:\n\t\tpass  # comment",
  "const s = `$" + '{a}` + "q\\"uote"; // {[()]} <tag attr=\'v\'/>',
  "Ünïcödé: café, naïve, Dziękuję, Привет, 日本語, 你好，世界, עברית, العربية",
  "emoji 🙂🌊 family 👨‍👩‍👧‍👦 flag 🇫🇷 skin 👍🏽 keycap 1️⃣",
  "combining e\u0301 vs é, zero\u200bwidth, nbsp\u00a0here, bom\ufeff",
  "chars outside the corpus: € ₿ 𝔘 ☃ 🦀",
  "specials inline <|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
  "numbers 3.14159 1e-9 0xFF 1,000,000 and 'quotes' don't I'm we're",
];

describe("byte-level BPE fixture", () => {
  test("loads tokenizer.json, tokenizer_config.json and generation_config.json", () => {
    assert.equal(tok.vocabSize, 379);
    assert.equal(tok.bosId, null);
    assert.deepEqual(tok.eosIds, [2, 0]); // <|im_end|> from the config, then generation_config's [2, 0]
    assert.equal(tok.eosId, 2);
    assert.equal(tok.padId, 0); // pad_token given as an AddedToken object
    assert.equal(tok.unkId, null);
    assert.deepEqual([...tok.specialIds].sort(), [0, 1, 2]);
    assert.equal(tok.tokenToId("<|im_start|>"), 1);
    assert.equal(tok.idToToken(2), "<|im_end|>");
    assert.equal(tok.idToToken(tok.tokenToId("Ġ")!), "Ġ");
  });

  test("the committed tokenizer.json is what the trainer builds from corpus.txt (deterministic)", () => {
    const corpus = [readFileSync(join(FIXTURE, "corpus.txt"), "utf8")];
    const opts = { corpus, vocabSize: 400, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] };
    const built = buildByteLevelBpe(opts);
    assert.deepEqual(built, readJson(join(FIXTURE, "tokenizer.json")));
    assert.deepEqual(buildByteLevelBpe(opts), built);
  });

  test("decode(encode(text)) is exact on varied text", () => {
    for (const text of ROUND_TRIP_TEXTS) {
      const ids = tok.encode(text);
      assert.ok(
        ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize),
        text,
      );
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
    }
  });

  test("merges compress text like the corpus", () => {
    const text = "The assistant answers questions";
    assert.ok(tok.encode(text).length < new TextEncoder().encode(text).length / 2);
  });

  test("special tokens are single ids, never split, and skipped on decode when asked", () => {
    assert.deepEqual(tok.encode("<|im_start|>"), [1]);
    assert.deepEqual(tok.encode("<|endoftext|>"), [0]);
    const ids = tok.encode("<|im_start|>user\nHi<|im_end|>");
    assert.equal(ids[0], 1);
    assert.equal(ids.at(-1), 2);
    assert.equal(ids.filter((id) => tok.specialIds.has(id)).length, 2);
    assert.equal(tok.decode(ids), "<|im_start|>user\nHi<|im_end|>");
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "user\nHi");
    assert.equal(tok.decode([1, 2], { skipSpecialTokens: true }), "");
  });

  test("decode rejects ids outside the vocabulary", () => {
    assert.throws(() => tok.decode([5, tok.vocabSize]), /token id 379 is outside the vocabulary/);
    assert.throws(() => tok.decode([-1]), RangeError);
  });
});

describe("streaming decoder", () => {
  const streamed = (ids: number[], skipSpecialTokens = false) => {
    const s = tok.decodeStream({ skipSpecialTokens });
    const chunks = ids.map((id) => s.push(id));
    chunks.push(s.flush());
    return { chunks, text: s.text };
  };

  test("multi-byte characters split across tokens come out whole, equal to decode()", () => {
    const text = "€ ₿ 𝔘 ☃ 🦀 ok 👨‍👩‍👧 done";
    const ids = tok.encode(text);
    // The test only means something if some tokens hold part of a character.
    const partial = ids.filter((id) => tok.decode([id]).includes("\uFFFD"));
    assert.ok(partial.length >= 4, `expected split characters, got ${partial.length}`);
    const { chunks, text: out } = streamed(ids);
    assert.equal(chunks.join(""), text);
    assert.equal(out, tok.decode(ids));
    for (const c of chunks) assert.ok(!c.includes("\uFFFD"), `chunk ${JSON.stringify(c)}`);
    // Only the token that completes a character emits it.
    const euro = streamed(tok.encode("€"));
    assert.deepEqual(euro.chunks, ["", "", "€", ""]);
  });

  test("chunks concatenate to decode() for every round-trip text and for random ids", () => {
    for (const text of ROUND_TRIP_TEXTS) {
      const ids = tok.encode(text);
      assert.equal(streamed(ids).text, text);
      assert.equal(streamed(ids, true).text, tok.decode(ids, { skipSpecialTokens: true }));
    }
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * tok.vocabSize;
    for (let trial = 0; trial < 50; trial++) {
      const ids = Array.from({ length: 1 + (trial % 17) }, () => Math.floor(rand()));
      assert.equal(streamed(ids).text, tok.decode(ids), `ids ${ids}`);
    }
  });
});

describe("chat template", () => {
  const HEADER = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
  const twoTurns = [
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hello! How can I help?" },
    { role: "user", content: "Water tomatoes when?" },
    { role: "assistant", content: "Early in the morning." },
  ];

  test("renders exactly as the ChatML template says, with and without the generation prompt", () => {
    const msgs = [{ role: "user", content: "Hi there" }];
    assert.equal(tok.applyChatTemplate(msgs), `${HEADER}<|im_start|>user\nHi there<|im_end|>\n`);
    assert.equal(
      tok.applyChatTemplate(msgs, { addGenerationPrompt: true }),
      `${HEADER}<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  test("a system message replaces the default one", () => {
    const msgs = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ];
    assert.equal(
      tok.applyChatTemplate(msgs, { addGenerationPrompt: true }),
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  test("encodeChat encodes the rendering without adding special tokens", () => {
    const ids = tok.encodeChat(twoTurns, { addGenerationPrompt: false });
    assert.deepEqual(ids, tok.encode(tok.applyChatTemplate(twoTurns), { addSpecialTokens: false }));
    assert.equal(ids.filter((id) => id === 1).length, 5); // one <|im_start|> per message, system included
    assert.equal(tok.decode(ids), tok.applyChatTemplate(twoTurns));
  });

  test("bos_token, eos_token, tools, extra variables and named templates reach the template", () => {
    const json = buildByteLevelBpe({ corpus: ["hello"], vocabSize: 300, specialTokens: ["<s>", "</s>"] });
    const config = {
      bos_token: { content: "<s>", special: true },
      eos_token: "</s>",
      chat_template: [
        {
          name: "default",
          template:
            "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content | trim }}{{ eos_token }}{% endfor %}{% if tools is not none %}TOOLS{% endif %}{{ suffix }}",
        },
        { name: "tool_use", template: "{{ bos_token }}tools:{{ tools | length }}" },
      ],
    };
    const t = Tokenizer.fromJSON(json, config);
    const msgs = [{ role: "user", content: "  hi  " }];
    assert.equal(t.applyChatTemplate(msgs), "<s>[user]hi</s>");
    assert.equal(t.applyChatTemplate(msgs, { suffix: "!" }), "<s>[user]hi</s>!");
    assert.equal(t.applyChatTemplate(msgs, { tools: [{ type: "function" }] }), "<s>tools:1");
    assert.equal(t.applyChatTemplate(msgs, { templateName: "tool_use", tools: [] }), "<s>tools:0");
    assert.throws(() => t.applyChatTemplate(msgs, { templateName: "rag" }), /no template named 'rag'/);
  });

  test("add_bos_token prepends bos when the post-processor adds nothing", () => {
    const json = buildByteLevelBpe({ corpus: ["hello"], vocabSize: 300, specialTokens: ["<s>", "</s>"] });
    const t = Tokenizer.fromJSON(json, { bos_token: "<s>", eos_token: "</s>", add_bos_token: true });
    assert.equal(t.encode("hello")[0], 0);
    assert.notEqual(t.encode("hello", { addSpecialTokens: false })[0], 0);
    assert.equal(t.decode(t.encode("hello"), { skipSpecialTokens: true }), "hello");
  });
});

describe("assistantMask", () => {
  const twoTurns = [
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hello! How can I help?" },
    { role: "user", content: "Water tomatoes when?" },
    { role: "assistant", content: "Early in the morning." },
  ];
  // The conversation as (text, is-assistant) segments; boundaries fall on special tokens and
  // newlines, so encoding the segments one by one gives the conversation's ids.
  const segments: [string, 0 | 1][] = [
    ["<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n", 0],
    ["<|im_start|>assistant\n", 0],
    ["Hello! How can I help?", 1],
    ["<|im_end|>", 1],
    ["\n<|im_start|>user\nWater tomatoes when?<|im_end|>\n<|im_start|>assistant\n", 0],
    ["Early in the morning.", 1],
    ["<|im_end|>", 1],
    ["\n", 0],
  ];

  test("marks exactly the assistant tokens (content and end-of-turn) of a 2-turn conversation", () => {
    const expectedIds: number[] = [];
    const expectedMask: number[] = [];
    for (const [text, m] of segments) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      expectedIds.push(...ids);
      expectedMask.push(...ids.map(() => m));
    }
    const { ids, mask, text } = tok.assistantMask(twoTurns);
    assert.equal(text, segments.map((s) => s[0]).join(""));
    assert.deepEqual(ids, expectedIds);
    assert.deepEqual(mask, expectedMask);
    assert.deepEqual(ids, tok.encodeChat(twoTurns));
  });

  test("includeEndOfTurn: false marks the content alone", () => {
    const { ids, mask } = tok.assistantMask(twoTurns, { includeEndOfTurn: false });
    const marked = ids.filter((_, i) => mask[i] === 1);
    assert.equal(tok.decode(marked), "Hello! How can I help?Early in the morning.");
  });

  test("a template that rewrites earlier turns is refused clearly", () => {
    const json = readJson(join(FIXTURE, "tokenizer.json"));
    const t = Tokenizer.fromJSON(json, {
      chat_template: "{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m.content }}\n{% endfor %}",
    });
    assert.throws(
      () => t.assistantMask(twoTurns),
      (e: Error) => e instanceof ChatTemplateError && /not a prefix of the whole conversation/.test(e.message),
    );
  });
});

describe("word-level tokenizer", () => {
  test("unknown words map to the unk id", () => {
    const t = Tokenizer.fromJSON(
      buildWordLevel(["the", "cat", "sat"], { unkToken: "[UNK]", specialTokens: ["[PAD]"] }),
      {
        pad_token: "[PAD]",
      },
    );
    assert.equal(t.unkId, 0); // unk goes first among specials, then [PAD]
    assert.equal(t.padId, 1);
    assert.deepEqual(t.encode("the dog sat"), [2, 0, 4]);
    assert.deepEqual(t.encode("zebra"), [0]);
    assert.equal(t.decode(t.encode("the dog  sat")), "the [UNK] sat");
    assert.equal(t.decode(t.encode("the dog sat"), { skipSpecialTokens: true }), "the sat");
  });

  test("without an unk token, an unknown word is an error naming it", () => {
    const t = Tokenizer.fromJSON(buildWordLevel(["the", "cat"]));
    assert.equal(t.unkId, null);
    assert.deepEqual(t.encode("cat the"), [1, 0]);
    assert.throws(() => t.encode("the dog"), /'dog' is not in the vocabulary.*model\.unk_token/);
  });
});

describe("a hand-written GPT-2-style tokenizer.json", () => {
  // Not made by emlab's trainer: checks the loader on the format as other tools write it.
  const base = ["h", "e", "l", "o", "w", "r", "d", "Ġ"];
  const merged = ["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld"];
  const merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"];
  const vocab = Object.fromEntries([...base, ...merged].map((t, i) => [t, i]));
  const json = (m: unknown) => ({
    version: "1.0",
    added_tokens: [{ id: 17, content: "<|endoftext|>", special: true, normalized: false }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", vocab, merges: m, unk_token: null },
  });

  test("merges in both formats ('a b' strings and [a, b] pairs) give the same ids", () => {
    for (const m of [merges, merges.map((x) => x.split(" "))]) {
      const t = Tokenizer.fromJSON(json(m), { eos_token: "<|endoftext|>" });
      assert.deepEqual(t.encode("hello world"), [vocab.hello, vocab.Ġworld]);
      assert.deepEqual(t.encode("hello world<|endoftext|>"), [11, 16, 17]);
      assert.equal(t.decode([11, 16, 17], { skipSpecialTokens: true }), "hello world");
      assert.equal(t.vocabSize, 18);
      assert.deepEqual(t.eosIds, [17]);
    }
  });

  test("Qwen2-style pipeline (NFC, Split regex then ByteLevel) and Llama-3-style bos post-processor", () => {
    const fixture = readJson(join(FIXTURE, "tokenizer.json"));
    const qwenSplit =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const qwen = Tokenizer.fromJSON({
      ...fixture,
      normalizer: { type: "NFC" },
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: qwenSplit }, behavior: "Isolated", invert: false },
          { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
    });
    for (const text of ROUND_TRIP_TEXTS.filter((t) => t === t.normalize("NFC"))) {
      assert.equal(qwen.decode(qwen.encode(text)), text);
    }
    assert.deepEqual(
      qwen.encode("12345").map((id) => qwen.idToToken(id)),
      ["1", "2", "3", "4", "5"],
    ); // Qwen splits digits

    const bos = { SpecialToken: { id: "<|endoftext|>", type_id: 0 } };
    const llama = Tokenizer.fromJSON(
      {
        ...fixture,
        post_processor: {
          type: "Sequence",
          processors: [
            { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
            { type: "TemplateProcessing", single: [bos, { Sequence: { id: "A", type_id: 0 } }], pair: [] },
          ],
        },
      },
      { bos_token: "<|endoftext|>", add_bos_token: true },
    );
    const body = llama.encode("hi", { addSpecialTokens: false });
    assert.deepEqual(llama.encode("hi"), [0, ...body]); // the post-processor adds bos, once
  });

  test("GPT-2's byte table maps space to Ġ and newline to Ċ", () => {
    assert.equal(BYTE_TO_CHAR[0x20], "Ġ");
    assert.equal(BYTE_TO_CHAR[0x0a], "Ċ");
    assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  });
});

describe("files: save, reload and bad input", () => {
  test("save() then fromDir() round-trips tokenizer.json, the config and the template", () => {
    const dir = join(tmp, "saved");
    tok.save(dir);
    const again = Tokenizer.fromDir(dir);
    assert.deepEqual(readJson(join(dir, "tokenizer.json")), readJson(join(FIXTURE, "tokenizer.json")));
    assert.deepEqual(readJson(join(dir, "tokenizer_config.json")), readJson(join(FIXTURE, "tokenizer_config.json")));
    const text = ROUND_TRIP_TEXTS.join("\n");
    assert.deepEqual(again.encode(text), tok.encode(text));
    assert.equal(
      again.applyChatTemplate([{ role: "user", content: "x" }]),
      tok.applyChatTemplate([{ role: "user", content: "x" }]),
    );
    assert.deepEqual(again.eosIds, [2]); // generation_config.json belongs to the model folder, not save()
  });

  test("chat_template.jinja is read when tokenizer_config.json has no chat_template", () => {
    const dir = join(tmp, "jinja");
    mkdirSync(dir);
    writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(FIXTURE, "tokenizer.json")));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|im_end|>" }));
    writeFileSync(
      join(dir, "chat_template.jinja"),
      "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}",
    );
    assert.equal(Tokenizer.fromDir(dir).applyChatTemplate([{ role: "user", content: "hi" }]), "user: hi\n");
  });

  test("missing tokenizer.json, malformed JSON and bad fields name the file and field", () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    assert.throws(
      () => Tokenizer.fromDir(empty),
      (e: Error) => e instanceof TokenizerError && /tokenizer\.json: file not found/.test(e.message),
    );

    const bad = join(tmp, "bad");
    mkdirSync(bad);
    writeFileSync(join(bad, "tokenizer.json"), '{"model": {"type": "BPE", ');
    assert.throws(() => Tokenizer.fromDir(bad), /bad[/\\]tokenizer\.json: malformed JSON/);

    writeFileSync(join(bad, "tokenizer.json"), readFileSync(join(FIXTURE, "tokenizer.json")));
    writeFileSync(join(bad, "tokenizer_config.json"), "{ eos_token: oops }");
    assert.throws(() => Tokenizer.fromDir(bad), /tokenizer_config\.json: malformed JSON/);
    writeFileSync(join(bad, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|not-there|>" }));
    assert.throws(
      () => Tokenizer.fromDir(bad),
      /tokenizer_config\.json: field 'eos_token': token '<\|not-there\|>' is not in the vocabulary/,
    );
    writeFileSync(join(bad, "tokenizer_config.json"), JSON.stringify({ add_bos_token: "yes" }));
    assert.throws(() => Tokenizer.fromDir(bad), /tokenizer_config\.json: field 'add_bos_token'/);
    writeFileSync(join(bad, "tokenizer_config.json"), "{}");
    writeFileSync(join(bad, "generation_config.json"), JSON.stringify({ eos_token_id: "2" }));
    assert.throws(() => Tokenizer.fromDir(bad), /generation_config\.json: field 'eos_token_id'/);

    const fixture = readJson(join(FIXTURE, "tokenizer.json"));
    assert.throws(
      () => Tokenizer.fromJSON({ ...fixture, model: { type: "BPE" } }),
      /tokenizer\.json: field 'model\.vocab'/,
    );
    assert.throws(
      () => Tokenizer.fromJSON({ ...fixture, model: { type: "Magic", vocab: {} } }),
      /field 'model\.type': unsupported model 'Magic'/,
    );
    assert.throws(() => Tokenizer.fromJSON([]), /tokenizer\.json/);
  });

  test("applyChatTemplate without a chat template names the field", () => {
    const t = Tokenizer.fromJSON(readJson(join(FIXTURE, "tokenizer.json")), { eos_token: "<|im_end|>" });
    assert.throws(
      () => t.applyChatTemplate([{ role: "user", content: "hi" }]),
      (e: Error) =>
        e instanceof ChatTemplateError && /tokenizer_config\.json: field 'chat_template' is missing/.test(e.message),
    );
    const broken = Tokenizer.fromJSON(readJson(join(FIXTURE, "tokenizer.json")), {
      chat_template: "{% for m in messages %}",
    });
    assert.throws(
      () => broken.applyChatTemplate([{ role: "user", content: "hi" }]),
      /field 'chat_template' does not parse/,
    );
  });
});
