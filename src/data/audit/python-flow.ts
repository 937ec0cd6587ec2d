/**
 * Variable facts for the Python rules: which names hold user input (tainted), constants,
 * sanitised values, or dynamically built HTML / SQL / command strings. The analysis is one
 * forward pass over the statements, flow-insensitive across branches (the last assignment
 * wins), which is what short training snippets need.
 */
import { type Language, lex, type Token } from "./lexer.ts";
import { findCalls, matching, splitTopLevel } from "./syntax.ts";

/** What a string may be used as; each has its own sanitisers. */
export type Context = "html" | "sql" | "cmd" | "path";

export interface VarFacts {
  tainted: boolean;
  constant: boolean;
  /** Safe to interpolate into each context (sanitised or constant). */
  safe: Set<Context>;
  /** Holds an HTML / SQL string built from unsanitised parts. */
  html: boolean;
  sql: boolean;
  /** Holds any string built from non-constant parts (format, f-string, concatenation). */
  dynamic: boolean;
  /** Object kind when known (`tarfile`, `zipfile`, …). */
  kind?: string;
  /** Text of the string literals that built the value (bounded), for `+=` chains. */
  literal: string;
  /** Holds text as such (request data, a built string), not an object made from it. */
  text: boolean;
  /** Value when the variable holds an integer constant (`mode = 0o777`). */
  num?: number;
}

const SOURCE =
  /\b(?:request\.(?:args|form|values|json|get_json|data|get_data|cookies|headers|files|GET|POST|query_params|path_params|params|query|body|stream|view_args)|input\(|raw_input\(|sys\.argv|self\.get_argument|self\.get_query_argument|self\.get_body_argument|environ\.get\(['"]QUERY_STRING)/;
const SOURCE_AT = new RegExp(`^${SOURCE.source.slice(2)}`);
const SANITISERS: Record<Context, RegExp> = {
  html: /^(?:escape|escape_html|html_escape|clean|sanitize\w*|sanitise\w*|strip_tags|quote|quote_plus|urlencode|int|float|len|bool|abs|round)$/,
  sql: /^(?:int|float|len|bool|abs|round|quote_identifier)$/,
  cmd: /^(?:quote|int|float|len|abs|round)$/,
  path: /^(?:secure_filename|basename|int|float|uuid4|hexdigest)$/,
};
const KEYWORDS = new Set([
  "for",
  "in",
  "if",
  "else",
  "and",
  "or",
  "not",
  "is",
  "None",
  "True",
  "False",
  "lambda",
  "await",
  "await",
  "async",
  "str",
  "repr",
  "dict",
  "list",
  "tuple",
  "set",
  "sorted",
  "enumerate",
  "zip",
  "range",
  "map",
]);
/** An HTML element (known tag names, so `<Event %r>` in a __repr__ is not HTML). */
const HTML_LITERAL =
  /<\/?(?:html|head|body|title|meta|link|style|script|h[1-6]|p|div|span|a|b|i|u|s|em|strong|small|mark|br|hr|img|ul|ol|li|dl|dt|dd|table|thead|tbody|tr|td|th|caption|form|input|textarea|button|select|option|label|pre|code|blockquote|iframe|section|article|header|footer|nav|main|aside|figure|figcaption|video|audio|source|svg|center|font|sub|sup|details|summary|time|fieldset|legend)(?:\s[^<>]{0,300})?\/?>/i;
/** Markup written with entities (`&lt;h1&gt;{}&lt;/h1&gt;`) is still an HTML fragment. */
const HTML_ENTITY_LITERAL = /&lt;\/?(?:h[1-6]|p|div|span|a|b|i|li|ul|td|tr|table|img|script)(?:\s[^&]{0,200})?&gt;/i;
const SQL_LITERAL =
  /\b(?:select\b[\s\S]{0,400}?\bfrom|insert\s+(?:or\s+\w+\s+)?into|update\s+\S{1,64}\s+set|delete\s+from|replace\s+into|create\s+table|drop\s+table|alter\s+table|where\s+\w{1,64}\s*(?:=|like|in\b|<|>))/i;

export function newFacts(): VarFacts {
  return {
    tainted: false,
    constant: false,
    safe: new Set(),
    html: false,
    sql: false,
    dynamic: false,
    literal: "",
    text: false,
  };
}

export class Scope {
  readonly vars = new Map<string, VarFacts>();
  get(name: string): VarFacts | undefined {
    return this.vars.get(name);
  }
  set(name: string, facts: VarFacts): void {
    this.vars.set(name, facts);
  }
}

/** Tokens of an f-string / template-literal expression, cached per text. */
const exprCache = new Map<string, Token[]>();
export function exprTokens(expr: string, lang: Language = "python"): Token[] {
  let toks = exprCache.get(expr);
  if (!toks) {
    toks = lex(expr, lang).tokens;
    if (exprCache.size > 5000) exprCache.clear();
    exprCache.set(expr, toks);
  }
  return toks;
}

export const compact = (toks: Token[]) => toks.map((t) => t.text).join("");

/** True when the tokens read user input, directly or through a tainted variable. */
export function isTainted(toks: Token[], scope: Scope): boolean {
  if (SOURCE.test(compact(toks))) return true;
  for (const t of toks) {
    if (t.kind === "name" && scope.get(t.text)?.tainted) return true;
    if (t.exprs) for (const e of t.exprs) if (isTainted(exprTokens(e), scope)) return true;
  }
  return false;
}

/** Root variable names an expression reads (not attributes, not called functions, not sanitised args). */
function unsafeRoots(toks: Token[], ctx: Context, scope: Scope, out: string[]): void {
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === "str") {
      if (t.exprs) for (const e of t.exprs) unsafeRoots(exprTokens(e), ctx, scope, out);
      continue;
    }
    if (t.kind !== "name") continue;
    const prev = toks[i - 1]?.text;
    // A dotted call chain ending in a sanitiser (`html.escape(x)`) is safe as a whole.
    let j = i;
    while (toks[j + 1]?.text === "." && toks[j + 2]?.kind === "name") j += 2;
    if (toks[j + 1]?.text === "(" && prev !== "." && SANITISERS[ctx].test(toks[j]!.text)) {
      i = matching(toks, j + 1);
      continue;
    }
    const next = toks[i + 1]?.text;
    if (next === "(") continue;
    if (prev === "." || KEYWORDS.has(t.text)) continue;
    if (SOURCE_AT.test(compact(toks.slice(i, i + 8)))) {
      out.push(t.text);
      continue;
    }
    if (next === "." && toks[i + 2]?.text === "join") continue;
    if (next === "=" && toks[i - 1]?.text !== "=") continue; // keyword argument name
    const facts = scope.get(t.text);
    if (facts && (facts.constant || facts.safe.has(ctx))) continue;
    // Comprehension variables (`for x in`) are checked through their iterable.
    if (toks.slice(0, i).some((x, k) => x.text === "for" && toks[k + 1]?.text === t.text)) continue;
    if (toks.slice(i + 1).some((x, k, rest) => x.text === "for" && rest[k + 1]?.text === t.text)) continue;
    out.push(t.text);
  }
}

/** True when every value the expression reads is constant or sanitised for `ctx`. */
export function isSafeFor(toks: Token[], ctx: Context, scope: Scope): boolean {
  const out: string[] = [];
  unsafeRoots(toks, ctx, scope, out);
  return out.length === 0;
}

export interface StringBuild {
  /** Text of the string literals involved (to tell HTML / SQL). */
  literal: string;
  /** Non-literal parts spliced into the string. */
  parts: Token[][];
  /** Variables already holding built HTML / SQL that the expression splices. */
  splicesHtml: boolean;
  splicesSql: boolean;
}

/**
 * How an expression builds a string: f-strings, `.format(…)`, `%`, `+`, `.join(…)`.
 * Returns null when it does not build one from parts.
 */
export function stringBuild(toks: Token[], scope: Scope, lang: Language = "python"): StringBuild | null {
  let literal = "";
  const parts: Token[][] = [];
  let built = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind !== "str") continue;
    literal += t.body ?? "";
    if (t.exprs?.length) {
      built = true;
      for (const e of t.exprs) parts.push(exprTokens(e, lang));
    }
    const next = toks[i + 1]?.text;
    if (next === "." && (toks[i + 2]?.text === "format" || toks[i + 2]?.text === "join") && toks[i + 3]?.text === "(") {
      const close = matching(toks, i + 3);
      parts.push(toks.slice(i + 4, close));
      built = true;
    } else if (next === "%" && lang === "python") {
      parts.push(toks.slice(i + 2));
      built = true;
    }
  }
  const plus = splitTopLevel(toks, "+");
  let splicesHtml = false;
  let splicesSql = false;
  if (plus.length > 1) {
    for (const seg of plus) {
      const names = seg.filter((t) => t.kind === "name").map((t) => scope.get(t.text));
      if (names.some((f) => f?.html)) splicesHtml = true;
      if (names.some((f) => f?.sql)) splicesSql = true;
      if (seg.length === 1 && seg[0]!.kind === "str") continue;
      if (seg.every((t) => t.kind === "str")) continue;
      parts.push(seg);
    }
    if (plus.some((seg) => seg.some((t) => t.kind === "str")) || splicesHtml || splicesSql) built = true;
  }
  // f-strings / template literals that embed variables already holding built HTML / SQL.
  for (const p of parts)
    for (const t of p)
      if (t.kind === "name") {
        const f = scope.get(t.text);
        if (f?.html) splicesHtml = true;
        if (f?.sql) splicesSql = true;
      }
  if (!built) {
    for (const c of findCalls(toks)) if (c.name === "join" && c.receiver === "…") built = true;
    if (!built) return null;
  }
  return { literal, parts, splicesHtml, splicesSql };
}

export const looksHtml = (s: string) => HTML_LITERAL.test(s) || HTML_ENTITY_LITERAL.test(s);
export const looksSql = (s: string) => SQL_LITERAL.test(s);

/** Facts for the value of an assignment. */
export function factsOf(value: Token[], scope: Scope, prev: VarFacts | undefined, augmented: boolean): VarFacts {
  const f = newFacts();
  f.tainted = isTainted(value, scope) || (augmented && !!prev?.tainted);
  f.constant = !augmented && value.length > 0 && value.every((t) => t.kind !== "name" && !t.exprs?.length);
  for (const ctx of ["html", "sql", "cmd", "path"] as Context[])
    if (isSafeFor(value, ctx, scope) && !(augmented && prev && !prev.safe.has(ctx))) f.safe.add(ctx);
  const build = stringBuild(value, scope);
  const prevLiteral = augmented && prev ? prev.literal : "";
  f.literal = (prevLiteral + value.map((t) => (t.kind === "str" ? (t.body ?? "") : "")).join("")).slice(-2000);
  if (value.length === 1 && value[0]!.kind === "num") f.num = numberValue(value[0]!.text);
  const valueVar = value.length === 1 && value[0]!.kind === "name" ? scope.get(value[0]!.text) : undefined;
  if (valueVar?.num !== undefined) f.num = valueVar.num;
  f.text = isText(value, scope) || (augmented && !!prev?.text);
  if (build) {
    const unsafeHtml = build.parts.some((p) => !isSafeFor(p, "html", scope));
    const unsafeSql = build.parts.some((p) => !isSafeFor(p, "sql", scope));
    f.html = (looksHtml(prevLiteral + build.literal) && unsafeHtml) || build.splicesHtml;
    f.sql = (looksSql(prevLiteral + build.literal) && unsafeSql) || build.splicesSql;
    f.dynamic = build.parts.some((p) => !isSafeFor(p, "cmd", scope));
  } else if (value.length === 1 && value[0]!.kind === "name") {
    const src = scope.get(value[0]!.text);
    if (src) Object.assign(f, { html: src.html, sql: src.sql, dynamic: src.dynamic, kind: src.kind });
  }
  if (augmented && prev) {
    f.html ||= prev.html;
    f.sql ||= prev.sql;
    f.dynamic ||= prev.dynamic;
  }
  const call = findCalls(value)[0];
  if (call && call.start === 0) {
    const root = call.callee.split(".")[0]!;
    if (/^(tarfile|zipfile|shutil)$/.test(root)) f.kind = root;
    else if (call.name === "ZipFile") f.kind = "zipfile";
    else if (call.name === "TarFile") f.kind = "tarfile";
  }
  return f;
}

const TEXT_METHODS =
  /^(?:get|getlist|strip|lstrip|rstrip|lower|upper|title|capitalize|replace|decode|format|join|getvalue|read)$/;

/** True for expressions that are text: a string build, request data, `x.get('k')` on text. */
export function isText(value: Token[], scope: Scope): boolean {
  if (!value.length) return false;
  const last = value[value.length - 1]!;
  if (value.length === 1) return last.kind === "str" || (last.kind === "name" && !!scope.get(last.text)?.text);
  const head = value[0]!;
  const outerCall = head.kind === "name" && value[1]?.text === "(" && matching(value, 1) === value.length - 1;
  if (outerCall && !TEXT_METHODS.test(head.text)) return false;
  if (stringBuild(value, scope)) return true;
  const rooted = SOURCE_AT.test(compact(value.slice(0, 8))) || (head.kind === "name" && !!scope.get(head.text)?.text);
  if (!rooted) return false;
  // `x.method(…)` at the end: only text-preserving methods keep it text.
  if (last.text === ")") {
    const calls = findCalls(value);
    const outer = calls.find((c) => c.end === value.length - 1);
    return !!outer && TEXT_METHODS.test(outer.name);
  }
  return true;
}

/** Integer value of a Python number literal (`0o777`, legacy `0777`, `511`, `0x1ff`). */
export function numberValue(text: string): number | undefined {
  const s = text.toLowerCase().replace(/_/g, "");
  const v = s.startsWith("0o")
    ? Number.parseInt(s.slice(2), 8)
    : /^0[0-7]+$/.test(s)
      ? Number.parseInt(s, 8)
      : Number(s);
  return Number.isFinite(v) ? v : undefined;
}

/** `items.append(x)` and friends make `items` carry what `x` carries. */
export function mutate(target: string, args: Token[], scope: Scope): void {
  const prev = scope.get(target);
  if (!prev) return;
  const added = factsOf(args, scope, undefined, false);
  prev.constant = false;
  prev.tainted ||= added.tainted;
  for (const ctx of [...prev.safe]) if (!added.safe.has(ctx)) prev.safe.delete(ctx);
  prev.html ||= added.html;
  prev.sql ||= added.sql;
}
