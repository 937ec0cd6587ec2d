/**
 * Python rules. One forward pass over the statements keeps variable facts (python-flow.ts)
 * and asks each rule about every call, assignment and `return`.
 *
 * Rule ids, CWE and class:
 *   PY-XSS-RESPONSE       CWE-79   xss                 HTML built from unescaped values sent as a response
 *   PY-XSS-TEMPLATE-STR   CWE-79   xss                 render_template_string / Markup over a built string
 *   PY-JINJA-AUTOESCAPE   CWE-79   template-autoescape autoescape switched off
 *   PY-CHMOD-WORLD        CWE-732  file-permissions    world-writable mode (chmod, mkdir, open, umask)
 *   PY-SQL-STRING         CWE-89   sql-injection       SQL text built from values, then executed
 *   PY-TAR-EXTRACTALL     CWE-22   archive-extraction  extractall / unpack_archive without a member filter
 *   PY-DESERIALIZE        CWE-502  deserialization     pickle, marshal, dill, shelve, jsonpickle, yaml.load
 *   PY-SHELL-INJECTION    CWE-78   command-injection   shell command built from values
 *   PY-URL-REGEX          CWE-20   url-validation      host regex with an unescaped dot
 *   PY-URL-SUBSTRING      CWE-20   url-validation      `"host.com" in url` as an allow check
 *   PY-HARDCODED-SECRET   CWE-798  hardcoded-secret    password / key / token literals
 *   PY-PATH-TRAVERSAL     CWE-22   path-traversal      file path from user input without basename/secure_filename
 *   PY-EVAL               CWE-95   code-injection      eval / exec of non-constant text
 *   PY-OPEN-REDIRECT      CWE-601  open-redirect       redirect to a user-supplied URL
 *   PY-XXE                CWE-611  xxe                 XML parser resolving external entities
 *   PY-TLS-NOVERIFY       CWE-295  tls-verification    verify=False / unverified SSL context
 *   PY-WEAK-HASH          CWE-328  weak-crypto         md5 / sha1 over passwords
 *   PY-DEBUG              CWE-489  debug-mode          app.run(debug=True)
 *   PY-MKTEMP             CWE-377  insecure-temp-file  tempfile.mktemp
 */
import { lex } from "./lexer.ts";
import { checkCall, type Emit, PLACEHOLDER, reflects, SECRET_NAME } from "./python-calls.ts";
import { compact, factsOf, mutate, newFacts, Scope } from "./python-flow.ts";
import { findCalls, assignment as parseAssignment, textOf } from "./syntax.ts";
import type { RawFinding } from "./types.ts";

const ROUTE_DECORATOR = /^@\w+(?:\.\w+)*\.(?:route|get|post|put|patch|delete|api_route)\(/;

/** Runs the Python rules over one code block. Lines are 1-based within `code`. */
export function pythonRules(code: string): RawFinding[] {
  const findings: RawFinding[] = [];
  const seen = new Set<string>();
  const emit: Emit = (rule, cwe, cls, line, message) => {
    const key = `${rule}:${line}`;
    if (seen.has(key)) return;
    seen.add(key);
    findings.push({ rule, cwe, class: cls, line, message });
  };
  const scope = new Scope();
  const constant = () => Object.assign(newFacts(), { constant: true });
  let routeNext = false;
  let inRoute = false;
  let routeIndent = 0;
  for (const st of lex(code, "python").statements) {
    const toks = st.tokens;
    const head = toks[0]!.text;
    if (inRoute && st.indent <= routeIndent) inRoute = false;
    if (head === "@") {
      routeNext ||= ROUTE_DECORATOR.test(compact(toks));
      continue;
    }
    if (head === "import" || head === "from") {
      for (const t of toks) if (t.kind === "name") scope.set(t.text, constant());
      continue;
    }
    if (head === "def" || head === "class" || (head === "async" && toks[1]?.text === "def")) {
      const nameIdx = head === "async" ? 2 : 1;
      if (toks[nameIdx]) scope.set(toks[nameIdx].text, constant());
      const open = toks.findIndex((t) => t.text === "(");
      if (head !== "class" && open > 0) {
        let depth = 0;
        for (let i = open; i < toks.length; i++) {
          const t = toks[i]!;
          if (t.text === "(" || t.text === "[") depth++;
          else if (t.text === ")" || t.text === "]") depth--;
          if (
            depth === 1 &&
            t.kind === "name" &&
            (toks[i - 1]!.text === "(" || toks[i - 1]!.text === ",") &&
            t.text !== "self"
          ) {
            const f = newFacts();
            f.tainted = routeNext;
            scope.set(t.text, f);
          }
        }
      }
      if (head !== "class") {
        inRoute = routeNext;
        routeIndent = st.indent;
      }
      routeNext = false;
      continue;
    }
    routeNext = false;
    if (head === "for") {
      const inIdx = toks.findIndex((t) => t.text === "in");
      const iter = toks.slice(inIdx + 1);
      const f = factsOf(iter, scope, undefined, false);
      for (const t of toks.slice(1, inIdx)) if (t.kind === "name") scope.set(t.text, { ...f, safe: new Set(f.safe) });
    }
    if (head === "with") {
      for (let i = 0; i < toks.length - 1; i++)
        if (toks[i]!.text === "as" && toks[i + 1]!.kind === "name") {
          let s = i - 1;
          let depth = 0;
          for (; s > 0; s--) {
            const t = toks[s]!.text;
            if (t === ")" || t === "]") depth++;
            else if (t === "(" || t === "[") depth--;
            if (depth === 0 && (t === "," || t === "with")) break;
          }
          scope.set(toks[i + 1]!.text, factsOf(toks.slice(s + 1, i), scope, undefined, false));
        }
    }
    for (const call of findCalls(toks)) {
      checkCall(call, scope, emit, inRoute);
      if (/^(?:append|extend|add|insert|update|appendleft)$/.test(call.name) && /^[A-Za-z_]\w*$/.test(call.receiver))
        mutate(
          call.receiver,
          call.args.flatMap((a) => a.tokens),
          scope,
        );
    }

    const asg = parseAssignment(toks);
    if (asg) {
      const valueText = compact(asg.value);
      if (/\.autoescape$/.test(asg.target) && /^(?:False|0|None)$/.test(valueText))
        emit("PY-JINJA-AUTOESCAPE", "CWE-79", "template-autoescape", st.line, "Jinja2 autoescape is switched off");
      const lastName =
        asg.target
          .replace(/['"\]]+$/, "")
          .split(/[.[\]'"]+/)
          .pop() ?? "";
      if (
        SECRET_NAME.test(lastName) &&
        asg.value.length === 1 &&
        asg.value[0]!.kind === "str" &&
        !asg.value[0]!.exprs?.length &&
        !PLACEHOLDER.test(asg.value[0]!.body ?? "")
      )
        emit("PY-HARDCODED-SECRET", "CWE-798", "hardcoded-secret", st.line, `hard-coded ${lastName}`);
      const augmented = asg.op === "+=";
      const targets = asg.name ? [asg.name] : asg.target.split(",").filter((x) => /^[A-Za-z_]\w*$/.test(x));
      for (const name of targets) scope.set(name, factsOf(asg.value, scope, scope.get(name), augmented));
    }
    if (head === "return" && toks.length > 1) {
      const value = toks.slice(1);
      const f =
        value.length === 1 && value[0]!.kind === "name"
          ? scope.get(value[0]!.text)
          : factsOf(value, scope, undefined, false);
      if (f?.html || (inRoute && reflects(value, scope)))
        emit(
          "PY-XSS-RESPONSE",
          "CWE-79",
          "xss",
          st.line,
          "HTML built from unescaped values is returned as the response",
        );
    }
    // `if "example.com" in url:` — a substring check used as an allow-list.
    if (head === "if" || head === "elif" || head === "assert") {
      const t = toks[1];
      if (
        t?.kind === "str" &&
        toks[2]?.text === "in" &&
        /^\.?[\w-]{1,63}(?:\.[\w-]{1,63}){1,4}$/.test(t.body ?? "") &&
        /\.(?:com|org|net|io|edu|gov|dev|app|co|uk)$/.test(t.body ?? "") &&
        /url|host|netloc|domain|link|origin|referr?er|redirect|next|site/i.test(textOf(toks.slice(3)))
      )
        emit(
          "PY-URL-SUBSTRING",
          "CWE-20",
          "url-validation",
          st.line,
          `'${t.body}' in … accepts any URL that merely contains the host`,
        );
      for (let i = 1; i + 2 < toks.length; i++)
        if (
          toks[i]!.kind === "name" &&
          SECRET_NAME.test(toks[i]!.text) &&
          toks[i + 1]!.text === "==" &&
          toks[i + 2]!.kind === "str" &&
          (toks[i + 2]!.body ?? "").trim() !== ""
        )
          emit(
            "PY-HARDCODED-SECRET",
            "CWE-798",
            "hardcoded-secret",
            st.line,
            `${toks[i]!.text} compared with a literal`,
          );
    }
  }
  return findings;
}
