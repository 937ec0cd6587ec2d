/**
 * A small tokenizer for Python, JavaScript and C source, enough for the audit's rules:
 * strings (with f-string / template-literal interpolations), names, numbers, operators,
 * comments (kept separately) and logical statements with their line numbers.
 *
 * It never throws: unterminated strings run to the end of the input, unknown bytes become
 * one-character operators. Loops are linear in the input length (no regex backtracking).
 */

export type Language = "python" | "javascript" | "c";

export interface Token {
  kind: "name" | "str" | "num" | "op";
  /** Source text (for strings: the whole literal, prefix and quotes included). */
  text: string;
  /** 1-based line where the token starts. */
  line: number;
  /** Strings only: lower-cased prefix letters (`f`, `rb`, …; "`" for JS template literals). */
  prefix?: string;
  /** Strings only: the literal's body without quotes (escapes left as written). */
  body?: string;
  /** Interpolated expressions (f-strings `{x}`, template literals `${x}`), as source text. */
  exprs?: string[];
}

export interface Statement {
  tokens: Token[];
  /** 1-based line of the first token. */
  line: number;
  /** Column of the first token (Python indentation). */
  indent: number;
}

export interface Comment {
  text: string;
  line: number;
}

export interface Lexed {
  tokens: Token[];
  statements: Statement[];
  comments: Comment[];
}

const isIdentStart = (c: string) => /[A-Za-z_$]/.test(c) || c > "\u007f";
const isIdentPart = (c: string) => /[A-Za-z0-9_$]/.test(c) || c > "\u007f";
const isDigit = (c: string) => c >= "0" && c <= "9";
const OPEN = new Set(["(", "[", "{"]);
const CLOSE = new Set([")", "]", "}"]);
/** Tokens after which `{` opens a block (JS / C), not an object literal or initialiser. */
const BLOCK_BEFORE = /^(?:\)|=>|else|try|do|finally|;)$/;
const BLOCK_HEAD = /^(?:class|function|struct|enum|union|switch|namespace|interface|async)$/;
const MULTI_OPS = [
  "**=",
  "//=",
  "===",
  "!==",
  "...",
  ">>=",
  "<<=",
  "=>",
  "==",
  "!=",
  "<=",
  ">=",
  "+=",
  "-=",
  "*=",
  "/=",
  "%=",
  "|=",
  "&=",
  "^=",
  "->",
  "::",
  "&&",
  "||",
  "++",
  "--",
  "<<",
  ">>",
  "**",
  "//",
  ":=",
];

/** Splits `{a} and {b!r:>10}` (Python) or `${a}` (JS) into the interpolated expressions. */
function interpolations(body: string, js: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (js) {
      if (c === "\\") {
        i++;
        continue;
      }
      if (c !== "$" || body[i + 1] !== "{") continue;
      i++;
    } else if (c === "{") {
      if (body[i + 1] === "{") {
        i++;
        continue;
      }
    } else continue;
    let depth = 1;
    let j = i + 1;
    for (; j < body.length && depth > 0; j++) {
      if (body[j] === "{") depth++;
      else if (body[j] === "}") depth--;
    }
    let expr = body.slice(i + 1, j - 1);
    if (!js) expr = expr.replace(/(![rsa])?(:[^}]{0,40})?$/, "");
    out.push(expr.trim());
    i = j - 1;
  }
  return out;
}

/**
 * Tokenizes `src` for `lang`.
 * @example lex("x = f'<b>{name}</b>'\n", "python").statements[0].tokens.map((t) => t.text)
 */
export function lex(src: string, lang: Language): Lexed {
  const py = lang === "python";
  const tokens: Token[] = [];
  const statements: Statement[] = [];
  const comments: Comment[] = [];
  let cur: Token[] = [];
  let curIndent = 0;
  let depth = 0;
  const braces: boolean[] = [];
  let line = 1;
  let lineStart = 0;
  const n = src.length;
  const flush = () => {
    if (cur.length) statements.push({ tokens: cur, line: cur[0]!.line, indent: curIndent });
    cur = [];
  };
  const push = (t: Token) => {
    if (!cur.length) curIndent = indentOf(src, lineStart);
    tokens.push(t);
    cur.push(t);
  };
  let i = 0;
  while (i < n) {
    const c = src[i]!;
    if (c === "\n") {
      line++;
      i++;
      lineStart = i;
      if (py && depth === 0) flush();
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f") {
      i++;
      continue;
    }
    if (c === "\\" && src[i + 1] === "\n") {
      i += 2;
      line++;
      lineStart = i;
      continue;
    }
    // Comments.
    if ((py && c === "#") || (!py && c === "/" && src[i + 1] === "/")) {
      let j = src.indexOf("\n", i);
      if (j < 0) j = n;
      comments.push({ text: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (!py && c === "/" && src[i + 1] === "*") {
      let j = src.indexOf("*/", i + 2);
      j = j < 0 ? n : j + 2;
      const text = src.slice(i, j);
      comments.push({ text, line });
      for (const ch of text) if (ch === "\n") line++;
      i = j;
      lineStart = i;
      continue;
    }
    if (lang === "c" && c === "#" && (cur.length === 0 || src.slice(lineStart, i).trim() === "")) {
      // Preprocessor line: one statement of its own.
      flush();
      let j = src.indexOf("\n", i);
      if (j < 0) j = n;
      const text = src.slice(i, j);
      push({ kind: "op", text: "#", line });
      for (const m of text.slice(1).matchAll(/[A-Za-z_][A-Za-z0-9_]*|"[^"\n]*"|<[^>\n]*>|\S/g)) {
        push({
          kind: m[0][0] === '"' ? "str" : /^[A-Za-z_]/.test(m[0]) ? "name" : "op",
          text: m[0],
          line,
          body: m[0].slice(1, -1),
        });
      }
      flush();
      i = j;
      continue;
    }
    // Strings, with an optional Python prefix.
    let prefixEnd = i;
    if (py && isIdentStart(c)) {
      while (prefixEnd < n && /[rRbBfFuU]/.test(src[prefixEnd]!) && prefixEnd - i < 2) prefixEnd++;
      if (
        !(src[prefixEnd] === '"' || src[prefixEnd] === "'") ||
        (prefixEnd < n && isIdentPart(src[prefixEnd]!) && prefixEnd === i)
      )
        prefixEnd = i;
      if (prefixEnd > i && !(src[prefixEnd] === '"' || src[prefixEnd] === "'")) prefixEnd = i;
    }
    const q = src[prefixEnd];
    if (q === '"' || q === "'" || (!py && q === "`")) {
      const prefix = src.slice(i, prefixEnd).toLowerCase();
      const startLine = line;
      const triple = py && src.startsWith(q.repeat(3), prefixEnd);
      const open = triple ? 3 : 1;
      let j = prefixEnd + open;
      let end = -1;
      while (j < n) {
        const ch = src[j]!;
        if (ch === "\\") {
          if (src[j + 1] === "\n") line++;
          j += 2;
          continue;
        }
        if (ch === "\n") {
          if (!triple && q !== "`") break; // unterminated single-line string
          line++;
        }
        if (ch === q && (!triple || src.startsWith(q.repeat(3), j))) {
          end = j;
          break;
        }
        j++;
      }
      const bodyEnd = end < 0 ? Math.min(j, n) : end;
      const body = src.slice(prefixEnd + open, bodyEnd);
      const stop = end < 0 ? bodyEnd : end + open;
      const tok: Token = {
        kind: "str",
        text: src.slice(i, stop),
        line: startLine,
        prefix: q === "`" ? "`" : prefix,
        body,
      };
      if (q === "`") tok.exprs = interpolations(body, true);
      else if (prefix.includes("f")) tok.exprs = interpolations(body, false);
      push(tok);
      i = stop;
      continue;
    }
    // JavaScript regex literal: a `/` where an operand is expected.
    if (lang === "javascript" && c === "/" && regexAllowed(cur[cur.length - 1])) {
      let j = i + 1;
      let inClass = false;
      while (j < n && src[j] !== "\n") {
        const ch = src[j]!;
        if (ch === "\\") j++;
        else if (ch === "[") inClass = true;
        else if (ch === "]") inClass = false;
        else if (ch === "/" && !inClass) break;
        j++;
      }
      if (src[j] === "/") {
        let k = j + 1;
        while (k < n && /[a-z]/.test(src[k]!)) k++;
        push({ kind: "str", text: src.slice(i, k), line, prefix: "/", body: src.slice(i + 1, j) });
        i = k;
        continue;
      }
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(src[j]!)) j++;
      push({ kind: "name", text: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === "." && isDigit(src[i + 1] ?? ""))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(src[j]!)) j++;
      push({ kind: "num", text: src.slice(i, j), line });
      i = j;
      continue;
    }
    const op = MULTI_OPS.find((m) => src.startsWith(m, i)) ?? c;
    i += op.length;
    if (!py && (op === "{" || op === "}")) {
      // Block braces end a statement; object / initialiser braces nest inside it.
      const prev = cur[cur.length - 1];
      const block =
        op === "{"
          ? !prev || BLOCK_BEFORE.test(prev.text) || BLOCK_HEAD.test(cur[0]?.text ?? "")
          : (braces.pop() ?? true);
      if (op === "{") braces.push(block);
      if (block) {
        push({ kind: "op", text: op, line });
        flush();
        continue;
      }
    }
    if (OPEN.has(op)) depth++;
    else if (CLOSE.has(op)) depth = Math.max(0, depth - 1);
    if (!py && op === ";") {
      flush();
      continue;
    }
    if (py && op === ";" && depth === 0) {
      flush();
      continue;
    }
    push({ kind: "op", text: op, line });
  }
  flush();
  return { tokens, statements, comments };
}

/** Leading blanks of the line that starts at `lineStart` (tabs count 4). */
function indentOf(src: string, lineStart: number): number {
  let k = lineStart;
  let col = 0;
  while (k < src.length && (src[k] === " " || src[k] === "\t")) {
    col += src[k] === "\t" ? 4 : 1;
    k++;
  }
  return col;
}

/** Whether a `/` after `prev` starts a regex literal (no operand before it). */
function regexAllowed(prev: Token | undefined): boolean {
  if (!prev) return true;
  if (prev.kind === "name") return /^(?:return|typeof|case|in|of|new|delete|void|throw|yield|await)$/.test(prev.text);
  if (prev.kind === "op") return !/^[)\]}]$/.test(prev.text);
  return false;
}
