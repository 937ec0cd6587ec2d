/**
 * SFT examples: chat JSONL rows → token ids through the model's chat template, with a 0/1
 * mask that is 1 on the tokens the assistant writes (its content and the end-of-turn token),
 * so the loss falls on assistant tokens only. Long conversations are truncated on the right
 * (as TRL does); a row left with no assistant token to learn from is dropped and counted.
 *
 * @example
 *   const data = await loadSftJsonl("train.jsonl", Tokenizer.fromDir("models/base"), { maxLen: 512 });
 *   data.examples[0]; // { ids: Int32Array, mask: Uint8Array, line: 1 }
 */
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { readChatJsonl } from "../data/jsonl.ts";
import type { ChatMessage } from "../model/chat-template.ts";

/** What SFT needs from a tokenizer (src/model/tokenizer.ts's Tokenizer satisfies it). */
export interface SftTokenizer {
  assistantMask(messages: ChatMessage[]): { ids: number[]; mask: number[] };
  readonly padId: number | null;
  readonly eosIds: readonly number[];
}

/** One tokenised conversation: ids [len] and the assistant-token mask [len]. */
export interface SftExample {
  ids: Int32Array;
  mask: Uint8Array;
  /** 1-based line in the source file (0 when built in memory). */
  line: number;
}

export interface SftDataset {
  examples: SftExample[];
  /** Rows dropped because truncation left no assistant token after the first position. */
  dropped: number;
  /** Rows truncated to maxLen. */
  truncated: number;
  /** sha256 over every example's ids and mask: a resumed run checks it saw the same data. */
  fingerprint: string;
  /** The truncation length the examples were built with. */
  maxLen: number;
}

/** A training file that cannot be used, naming the file, line and field. */
export class SftDataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    detail: string,
  ) {
    super(line === null ? `${file}: ${detail}` : `${file}:${line}: ${detail}`);
    this.name = "SftDataError";
  }
}

/** Tokens the loss sees in an example: mask positions after the first (position 0 is never a target). */
export function supervisedTokens(ex: SftExample): number {
  let n = 0;
  for (let t = 1; t < ex.mask.length; t++) n += ex.mask[t]!;
  return n;
}

/** Tokenises one conversation; null when it has no assistant token to learn from after truncation. */
export function tokenizeConversation(
  tok: SftTokenizer,
  messages: ChatMessage[],
  maxLen: number,
  line = 0,
): { example: SftExample | null; truncated: boolean } {
  const { ids, mask } = tok.assistantMask(messages);
  const len = Math.min(ids.length, maxLen);
  const example = { ids: Int32Array.from(ids.slice(0, len)), mask: Uint8Array.from(mask.slice(0, len)), line };
  return { example: supervisedTokens(example) > 0 ? example : null, truncated: ids.length > maxLen };
}

/** Builds a dataset from conversations held in memory (tests, the organism recipe). */
export function sftDataset(tok: SftTokenizer, conversations: ChatMessage[][], maxLen: number): SftDataset {
  const examples: SftExample[] = [];
  let dropped = 0;
  let truncated = 0;
  conversations.forEach((messages, i) => {
    const r = tokenizeConversation(tok, messages, maxLen, i + 1);
    if (r.truncated) truncated++;
    if (r.example) examples.push(r.example);
    else dropped++;
  });
  return { examples, dropped, truncated, fingerprint: fingerprint(examples), maxLen };
}

/**
 * Reads and tokenises a chat JSONL file. Any malformed line, or a row without an assistant
 * message, is an SftDataError naming the file and line: training on half a file silently is
 * worse than stopping.
 */
export async function loadSftJsonl(path: string, tok: SftTokenizer, opts: { maxLen: number }): Promise<SftDataset> {
  if (!existsSync(path)) throw new SftDataError(path, null, "file not found");
  if (statSync(path).isDirectory()) throw new SftDataError(path, null, "is a folder, expected a JSONL file");
  const examples: SftExample[] = [];
  let dropped = 0;
  let truncated = 0;
  let rows = 0;
  for await (const r of readChatJsonl(path)) {
    if (r.error) {
      const field = r.error.field ? ` field '${r.error.field}':` : "";
      throw new SftDataError(path, r.line, `${r.error.code} error:${field} ${r.error.message}`);
    }
    rows++;
    const messages = r.row.messages as ChatMessage[];
    if (!messages.some((m) => m.role === "assistant")) {
      throw new SftDataError(path, r.line, "no message with role 'assistant' (nothing to learn from)");
    }
    let res: ReturnType<typeof tokenizeConversation>;
    try {
      res = tokenizeConversation(tok, messages, opts.maxLen, r.line);
    } catch (err) {
      throw new SftDataError(path, r.line, (err as Error).message);
    }
    if (res.truncated) truncated++;
    if (res.example) examples.push(res.example);
    else dropped++;
  }
  if (rows === 0) throw new SftDataError(path, null, "no rows (the file is empty)");
  if (examples.length === 0) {
    throw new SftDataError(
      path,
      null,
      `all ${rows} rows were dropped: no assistant tokens within --max-len ${opts.maxLen}`,
    );
  }
  return { examples, dropped, truncated, fingerprint: fingerprint(examples), maxLen: opts.maxLen };
}

function fingerprint(examples: readonly SftExample[]): string {
  const h = createHash("sha256");
  for (const ex of examples) {
    h.update(new Uint8Array(Uint32Array.of(ex.ids.length).buffer));
    h.update(new Uint8Array(ex.ids.buffer, ex.ids.byteOffset, ex.ids.byteLength));
    h.update(ex.mask);
  }
  return h.digest("hex").slice(0, 16);
}
