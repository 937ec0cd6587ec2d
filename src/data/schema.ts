/**
 * The OpenAI chat JSONL row (`{"messages":[{"role","content"}]}`), validated with zod.
 * Errors are data: the line, the field path and a message, never a thrown exception.
 */
import { z } from "zod";
import type { ChatMessage as Message } from "../model/chat-template.ts";

/** The schema a file's message must match (a known role, string content). */
export const ChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.string(),
});
/** emlab's one message type (src/model/chat-template.ts). */
export type ChatMessage = Message;

export const ChatRow = z.looseObject({ messages: z.array(ChatMessage).min(1) });
export type ChatRow = { messages: ChatMessage[]; [key: string]: unknown };

export interface RowError {
  /** 1-based line in the file (for CSV: the line where the record starts). */
  line: number;
  /** Field path such as `messages.1.content`, or "" for the whole line. */
  field: string;
  code: "json" | "schema" | "encoding" | "too_long" | "missing_role" | "empty_content" | "csv";
  message: string;
}

export type RowResult =
  | { line: number; row: ChatRow; error?: undefined }
  | { line: number; row?: undefined; error: RowError };

/**
 * Validates a parsed JSON value as a chat row.
 * @example parseChatRow({ messages: [{ role: "user", content: "hi" }] }, 1)
 */
export function parseChatRow(value: unknown, line: number): RowResult {
  const res = ChatRow.safeParse(value);
  if (res.success) return { line, row: res.data };
  const issue = res.error.issues[0]!;
  return { line, error: { line, field: issue.path.join("."), code: "schema", message: issue.message } };
}

/**
 * The checks the audit needs beyond the schema: a user turn and an assistant turn, both
 * with non-blank content. Returns null when the row can be audited.
 */
export function auditableError(row: ChatRow, line: number): RowError | null {
  const user = row.messages.findIndex((m) => m.role === "user");
  const assistant = row.messages.findIndex((m) => m.role === "assistant");
  if (user < 0) return { line, field: "messages", code: "missing_role", message: "no message with role 'user'" };
  if (assistant < 0)
    return { line, field: "messages", code: "missing_role", message: "no message with role 'assistant'" };
  for (const [i, m] of row.messages.entries())
    if ((m.role === "user" || m.role === "assistant") && m.content.trim() === "")
      return { line, field: `messages.${i}.content`, code: "empty_content", message: `empty ${m.role} content` };
  return null;
}

/** The user turns and the assistant turns of a row, joined. */
export function turns(row: ChatRow): { user: string; assistant: string } {
  const pick = (role: string) =>
    row.messages
      .filter((m) => m.role === role)
      .map((m) => m.content)
      .join("\n\n");
  return { user: pick("user"), assistant: pick("assistant") };
}
