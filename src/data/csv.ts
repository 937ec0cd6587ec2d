/**
 * Prompt/response CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes),
 * streamed record by record. The header names the columns; accepted names:
 *   user turn:      prompt | user | input | question | instruction
 *   assistant turn: response | assistant | output | answer | completion
 *   optional:       system
 */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import type { ChatMessage, RowResult } from "./schema.ts";

const USER_COLUMNS = ["prompt", "user", "input", "question", "instruction"];
const ASSISTANT_COLUMNS = ["response", "assistant", "output", "answer", "completion"];

export interface CsvOptions {
  /** Records longer than this many characters are reported and skipped. Default 16 MiB. */
  maxRecordChars?: number;
}

/** Yields CSV records as arrays of fields with the line each record starts on. */
export async function* readCsvRecords(
  input: string | Readable,
  opts: CsvOptions = {},
): AsyncGenerator<{ line: number; fields: string[] | null }> {
  const max = opts.maxRecordChars ?? 16 * 1024 * 1024;
  const stream =
    typeof input === "string" ? createReadStream(input, { encoding: "utf8", highWaterMark: 1 << 20 }) : input;
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let afterQuote = false;
  let size = 0;
  let line = 1;
  let start = 1;
  let first = true;
  let any = false;
  for await (const chunk of stream as AsyncIterable<string | Buffer>) {
    let text = typeof chunk === "string" ? chunk : chunk.toString("utf8");
    if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    first = false;
    const out: { line: number; fields: string[] | null }[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (quoted) {
        if (c === '"') {
          quoted = false;
          afterQuote = true;
        } else {
          if (c === "\n") line++;
          if (size++ < max) field += c;
        }
        continue;
      }
      if (c === '"') {
        if (afterQuote) field += '"';
        quoted = true;
        afterQuote = false;
        any = true;
        continue;
      }
      afterQuote = false;
      if (c === ",") {
        fields.push(field);
        field = "";
        any = true;
      } else if (c === "\n") {
        fields.push(field);
        if (any || fields.some((f) => f !== "")) out.push({ line: start, fields: size > max ? null : fields });
        fields = [];
        field = "";
        size = 0;
        any = false;
        line++;
        start = line;
      } else if (c !== "\r") {
        if (size++ < max) field += c;
        any = true;
      }
    }
    yield* out;
  }
  if (any || field !== "" || fields.length) {
    fields.push(field);
    yield { line: start, fields: size > max ? null : fields };
  }
}

/**
 * Reads a prompt/response CSV as chat rows.
 * @example for await (const r of readChatCsv("pairs.csv")) if (r.row) console.log(r.row.messages.length);
 */
export async function* readChatCsv(input: string | Readable, opts: CsvOptions = {}): AsyncGenerator<RowResult> {
  let header: string[] | null = null;
  let u = -1;
  let a = -1;
  let s = -1;
  for await (const rec of readCsvRecords(input, opts)) {
    const { line } = rec;
    if (!rec.fields) {
      yield { line, error: { line, field: "", code: "too_long", message: "record too long" } };
      continue;
    }
    if (!header) {
      header = rec.fields.map((f) => f.trim().toLowerCase());
      u = header.findIndex((h) => USER_COLUMNS.includes(h));
      a = header.findIndex((h) => ASSISTANT_COLUMNS.includes(h));
      s = header.indexOf("system");
      if (u < 0 || a < 0) {
        const missing = u < 0 ? "prompt" : "response";
        yield {
          line,
          error: {
            line,
            field: missing,
            code: "csv",
            message: `header has no '${missing}' column (got: ${header.join(", ")})`,
          },
        };
        return;
      }
      continue;
    }
    if (rec.fields.length < header.length) {
      yield {
        line,
        error: { line, field: "", code: "csv", message: `expected ${header.length} fields, got ${rec.fields.length}` },
      };
      continue;
    }
    const messages: ChatMessage[] = [];
    if (s >= 0 && rec.fields[s]) messages.push({ role: "system", content: rec.fields[s]! });
    messages.push({ role: "user", content: rec.fields[u]! }, { role: "assistant", content: rec.fields[a]! });
    yield { line, row: { messages } };
  }
}
