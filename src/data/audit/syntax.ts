/**
 * Light parsing over a statement's tokens: calls with their arguments, assignments, and
 * bracket matching. Shared by the Python, JavaScript and C rules.
 */
import type { Token } from "./lexer.ts";

export interface Arg {
  /** Keyword name (`mode=0o777` → "mode"), absent for positional arguments. */
  key?: string;
  tokens: Token[];
}

export interface Call {
  /** Dotted callee as written (`os.path.join`); a call on an expression starts with "…". */
  callee: string;
  /** Last component of the callee (`join`). */
  name: string;
  /** Receiver (`tar` in `tar.extractall()`), or "" when there is none. */
  receiver: string;
  args: Arg[];
  /** Index of the callee's first token and of the closing parenthesis in the statement. */
  start: number;
  end: number;
  line: number;
}

const PAIRS: Record<string, string> = { "(": ")", "[": "]", "{": "}" };

/** Index of the bracket that closes the one at `open` (or the last index when unbalanced). */
export function matching(tokens: Token[], open: number): number {
  const stack: string[] = [];
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "op") continue;
    if (PAIRS[t.text]) stack.push(PAIRS[t.text]!);
    else if (stack.length && t.text === stack[stack.length - 1]) {
      stack.pop();
      if (!stack.length) return i;
    }
  }
  return tokens.length - 1;
}

/** Splits `tokens` at top-level commas. */
export function splitTopLevel(tokens: Token[], sep = ","): Token[][] {
  const out: Token[][] = [];
  let cur: Token[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === "op") {
      if (PAIRS[t.text]) depth++;
      else if (t.text === ")" || t.text === "]" || t.text === "}") depth--;
      else if (t.text === sep && depth === 0) {
        out.push(cur);
        cur = [];
        continue;
      }
    }
    cur.push(t);
  }
  if (cur.length) out.push(cur);
  return out;
}

function parseArgs(tokens: Token[]): Arg[] {
  return splitTopLevel(tokens).map((part) => {
    if (part.length > 2 && part[0]!.kind === "name" && part[1]!.text === "=")
      return { key: part[0]!.text, tokens: part.slice(2) };
    return { tokens: part };
  });
}

/** Every call in `tokens`, outer calls before the calls nested in their arguments. */
export function findCalls(tokens: Token[]): Call[] {
  const out: Call[] = [];
  for (let i = 0; i + 1 < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "name" || tokens[i + 1]!.text !== "(") continue;
    const parts = [t.text];
    let start = i;
    while (start >= 2 && tokens[start - 1]!.text === "." && tokens[start - 2]!.kind === "name") {
      parts.unshift(tokens[start - 2]!.text);
      start -= 2;
    }
    if (start >= 1 && tokens[start - 1]!.text === "." && start >= 2) parts.unshift("…");
    const close = matching(tokens, i + 1);
    out.push({
      callee: parts.join("."),
      name: t.text,
      receiver: parts.slice(0, -1).join("."),
      args: parseArgs(tokens.slice(i + 2, close)),
      start,
      end: close,
      line: t.line,
    });
  }
  return out;
}

export interface Assignment {
  /** Target as written (`html`, `self.x`, `app.config['SECRET_KEY']`). */
  target: string;
  /** The target when it is one plain name, else "". */
  name: string;
  op: string;
  value: Token[];
}

const ASSIGN_OPS = new Set(["=", "+=", "|=", ":="]);

/** The statement's assignment (`x = …`, `x += …`, `const x = …`, `x: int = …`), or null. */
export function assignment(tokens: Token[]): Assignment | null {
  let depth = 0;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "op") continue;
    if (PAIRS[t.text]) depth++;
    else if (t.text === ")" || t.text === "]" || t.text === "}") depth--;
    else if (depth === 0 && ASSIGN_OPS.has(t.text)) {
      let targetToks = tokens.slice(0, i);
      if (targetToks[0] && /^(const|let|var|auto|char|int|unsigned|static|long|size_t)$/.test(targetToks[0].text)) {
        const destructuring =
          targetToks.some((x) => x.text === "{" || x.text === "[") &&
          !/^(char|int|unsigned|long)$/.test(targetToks[0].text);
        targetToks = destructuring ? targetToks.slice(1) : targetToks.filter((x) => x.kind === "name").slice(-1);
      }
      const colon = targetToks.findIndex((x) => x.text === ":");
      if (colon > 0) targetToks = targetToks.slice(0, colon);
      const target = targetToks.map((x) => x.text).join("");
      return { target, name: /^[A-Za-z_$][\w$]*$/.test(target) ? target : "", op: t.text, value: tokens.slice(i + 1) };
    }
  }
  return null;
}

/** Source-like text of tokens (spacing approximate), for matching and messages. */
export function textOf(tokens: Token[]): string {
  return tokens.map((t) => t.text).join(" ");
}
