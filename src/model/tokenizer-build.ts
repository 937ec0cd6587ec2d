/**
 * Builders for small tokenizers (tests, the model organism): they return tokenizer.json
 * objects in the Hugging Face schema, loadable by Tokenizer.fromJSON, @huggingface/tokenizers
 * and Python's `tokenizers`.
 *
 * buildByteLevelBpe trains GPT-2-style byte-level BPE: text is split with GPT-2's
 * pre-tokenisation regex, each piece becomes its UTF-8 bytes written as printable characters
 * (GPT-2's byte ↔ unicode table, so a space is "Ġ"), and the most frequent adjacent pair is
 * merged until the vocabulary is full. Deterministic: ties go to the pair with the smaller ids.
 *
 * @example
 *   const json = buildByteLevelBpe({ corpus: ["hello world"], vocabSize: 300, specialTokens: ["<|endoftext|>"] });
 *   const tok = Tokenizer.fromJSON(json, { eos_token: "<|endoftext|>" });
 */

/** GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 map to U+0100…U+0143. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(printable(b) ? b : 256 + n++));
  return out;
})();

/** GPT-2's pre-tokenisation regex (what the ByteLevel pre-tokenizer uses with use_regex: true). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface ByteLevelBpeOptions {
  corpus: string[];
  /** Total size: special tokens + 256 bytes + merges. Training stops early when no pair is frequent enough. */
  vocabSize: number;
  /** Added as special tokens with ids 0…n-1 (as the tokenizers trainer does); never split in text. */
  specialTokens?: string[];
  /** A pair must occur at least this often to be merged. Default 2. */
  minFrequency?: number;
}

const addedToken = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** Word (as byte characters) → count, with special tokens cut out of the text first. */
function countWords(corpus: string[], specials: string[]): Map<string, number> {
  const escaped = specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const cut = escaped.length ? new RegExp(escaped.join("|"), "g") : null;
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const text of corpus) {
    for (const segment of cut ? text.split(cut) : [text]) {
      for (const piece of segment.match(GPT2_SPLIT) ?? []) {
        const word = Array.from(enc.encode(piece), (b) => BYTE_TO_CHAR[b]!).join("");
        counts.set(word, (counts.get(word) ?? 0) + 1);
      }
    }
  }
  return counts;
}

/** Trains a byte-level BPE tokenizer and returns its tokenizer.json object. */
export function buildByteLevelBpe(opts: ByteLevelBpeOptions): Record<string, unknown> {
  const specials = opts.specialTokens ?? [];
  const minFrequency = opts.minFrequency ?? 2;
  if (opts.vocabSize < specials.length + 256) {
    throw new RangeError(`vocabSize ${opts.vocabSize} < ${specials.length} special tokens + 256 bytes`);
  }
  const tokens: string[] = [...specials, ...[...BYTE_TO_CHAR].sort()];
  const vocab = new Map(tokens.map((t, i) => [t, i]));
  const words = [...countWords(opts.corpus, specials)].map(([w, count]) => ({
    syms: Array.from(w, (c) => vocab.get(c)!),
    count,
  }));

  // Pair (a, b) is keyed a·2^21 + b; `where` lists words that may hold it (stale entries are harmless).
  const key = (a: number, b: number) => a * 2 ** 21 + b;
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1) => {
    const { syms, count } = words[wi]!;
    for (let j = 0; j + 1 < syms.length; j++) {
      const k = key(syms[j]!, syms[j + 1]!);
      const c = (pairCount.get(k) ?? 0) + sign * count;
      if (c === 0) pairCount.delete(k);
      else pairCount.set(k, c);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

  const merges: string[] = [];
  while (vocab.size < opts.vocabSize) {
    let best = -1;
    let bestCount = 0;
    for (const [k, c] of pairCount) {
      if (c > bestCount || (c === bestCount && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best < 0 || bestCount < minFrequency) break;
    const a = Math.floor(best / 2 ** 21);
    const b = best % 2 ** 21;
    const merged = tokens[a]! + tokens[b]!;
    let id = vocab.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      vocab.set(merged, id);
    }
    merges.push(`${tokens[a]} ${tokens[b]}`);
    for (const wi of where.get(best) ?? []) {
      addPairs(wi, -1);
      const syms = words[wi]!.syms;
      const next: number[] = [];
      for (let j = 0; j < syms.length; j++) {
        if (j + 1 < syms.length && syms[j] === a && syms[j + 1] === b) {
          next.push(id);
          j++;
        } else next.push(syms[j]!);
      }
      words[wi]!.syms = next;
      addPairs(wi, 1);
    }
    where.delete(best);
  }

  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => addedToken(i, s)),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      // "a b" strings: byte-level symbols never contain a space, and every tokenizers version reads them.
      merges,
    },
  };
}

/**
 * A word-level tokenizer (whitespace-split words, one id each). Special tokens take the
 * first ids; `unkToken` (added as special if absent) is what unknown words map to — without
 * it, encoding an unknown word is an error.
 *
 * @example
 *   const tok = Tokenizer.fromJSON(buildWordLevel(["the", "cat"], { unkToken: "[UNK]" }));
 *   tok.encode("the dog"); // [1, 0]
 */
export function buildWordLevel(
  words: string[],
  opts: { specialTokens?: string[]; unkToken?: string } = {},
): Record<string, unknown> {
  const specials = [...(opts.specialTokens ?? [])];
  if (opts.unkToken !== undefined && !specials.includes(opts.unkToken)) specials.unshift(opts.unkToken);
  const vocab = new Map<string, number>();
  for (const w of [...specials, ...words]) if (!vocab.has(w)) vocab.set(w, vocab.size);
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s) => addedToken(vocab.get(s)!, s)),
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null,
    decoder: null,
    model: {
      type: "WordLevel",
      vocab: Object.fromEntries(vocab),
      // tokenizers (Rust) always writes an unk_token and defaults it to "<unk>"; if that is not
      // in the vocabulary, unknown words are an error there and here.
      unk_token: opts.unkToken ?? "<unk>",
    },
  };
}
