/**
 * Streaming chat JSONL: byte-level line splitting (bounded memory however long a line is),
 * per-line UTF-8 validation, BOM and CRLF tolerated, blank lines ignored.
 */

import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { type ChatRow, parseChatRow, type RowResult } from "./schema.ts";

export interface ReadOptions {
  /** Lines longer than this many bytes are reported (`too_long`) and skipped. Default 16 MiB. */
  maxLineBytes?: number;
}

export type RawLine =
  | { line: number; text: string; error?: undefined }
  | { line: number; text?: undefined; error: "encoding" | "too_long" };

/** Yields each non-blank line of `input` (a path or a byte stream) with its 1-based number. */
export async function* readLines(input: string | Readable, opts: ReadOptions = {}): AsyncGenerator<RawLine> {
  const max = opts.maxLineBytes ?? 16 * 1024 * 1024;
  const stream = typeof input === "string" ? createReadStream(input, { highWaterMark: 1 << 20 }) : input;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let parts: Buffer[] = [];
  let size = 0;
  let overflow = false;
  let line = 0;
  const finish = (): RawLine | null => {
    line++;
    if (overflow) {
      overflow = false;
      parts = [];
      size = 0;
      return { line, error: "too_long" };
    }
    let buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    parts = [];
    size = 0;
    if (buf.length && buf[buf.length - 1] === 0x0d) buf = buf.subarray(0, buf.length - 1);
    if (line === 1 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    let text: string;
    try {
      text = decoder.decode(buf);
    } catch {
      return { line, error: "encoding" };
    }
    return text.trim() === "" ? null : { line, text };
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      if (!overflow) parts.push(buf.subarray(start, nl));
      size += nl - start;
      if (size > max) overflow = true;
      const out = finish();
      if (out) yield out;
      start = nl + 1;
    }
    if (start < buf.length && !overflow) {
      parts.push(buf.subarray(start));
      size += buf.length - start;
      if (size > max) {
        overflow = true;
        parts = [];
      }
    }
  }
  if (size > 0 || overflow) {
    const out = finish();
    if (out) yield out;
  }
}

/**
 * Yields each line as a validated chat row or as an error naming the line and field.
 * @example for await (const r of readChatJsonl("train.jsonl")) if (r.error) console.error(r.error);
 */
export async function* readChatJsonl(input: string | Readable, opts: ReadOptions = {}): AsyncGenerator<RowResult> {
  for await (const raw of readLines(input, opts)) {
    if (raw.error !== undefined) {
      const max = opts.maxLineBytes ?? 16 * 1024 * 1024;
      const message = raw.error === "encoding" ? "invalid UTF-8" : `line longer than ${max} bytes`;
      yield { line: raw.line, error: { line: raw.line, field: "", code: raw.error, message } };
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(raw.text);
    } catch (err) {
      yield { line: raw.line, error: { line: raw.line, field: "", code: "json", message: (err as Error).message } };
      continue;
    }
    yield parseChatRow(value, raw.line);
  }
}

/** One JSONL line for a chat row (no trailing newline). */
export function formatChatRow(row: ChatRow): string {
  return JSON.stringify(row);
}

/** Writes rows (or any JSON values) to `path` as JSONL, respecting back-pressure. */
export async function writeJsonl(path: string, rows: Iterable<unknown> | AsyncIterable<unknown>): Promise<number> {
  const out = createWriteStream(path);
  let n = 0;
  for await (const row of rows as AsyncIterable<unknown>) {
    if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, "drain");
    n++;
  }
  out.end();
  await once(out, "finish");
  return n;
}
