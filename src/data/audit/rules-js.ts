/**
 * JavaScript / TypeScript rules (Node and browser). A forward pass tracks which names hold
 * request or page input (`req.query`, `location.hash`, …) and which hold sanitised text.
 *
 *   JS-XSS-DOM            CWE-79   xss                 innerHTML / outerHTML / document.write / insertAdjacentHTML
 *   JS-XSS-RESPONSE       CWE-79   xss                 res.send / res.write of HTML built from unescaped values
 *   JS-SQL-STRING         CWE-89   sql-injection       query text built with `${}` or `+`
 *   JS-COMMAND-INJECTION  CWE-78   command-injection   exec / execSync / spawn({shell:true}) on built text
 *   JS-EVAL               CWE-95   code-injection      eval / new Function / string timers
 *   JS-CHMOD-WORLD        CWE-732  file-permissions    world-writable modes
 *   JS-PATH-TRAVERSAL     CWE-22   path-traversal      fs / sendFile on a request path
 *   JS-ARCHIVE-EXTRACT    CWE-22   archive-extraction  extractAllTo / tar.x without a filter
 *   JS-DESERIALIZE        CWE-502  deserialization     node-serialize unserialize, js-yaml load with unsafe schema
 *   JS-HARDCODED-SECRET   CWE-798  hardcoded-secret    credential literals
 *   JS-OPEN-REDIRECT      CWE-601  open-redirect       res.redirect(req…)
 *   JS-TLS-NOVERIFY       CWE-295  tls-verification    rejectUnauthorized: false
 *   JS-URL-REGEX          CWE-20   url-validation      host regex with an unescaped dot
 *   JS-WEAK-HASH          CWE-328  weak-crypto         md5 / sha1 over passwords
 */
import { lex, type Token } from "./lexer.ts";
import { exprTokens, looksHtml, looksSql, newFacts, Scope, stringBuild } from "./python-flow.ts";
import { assignment, findCalls } from "./syntax.ts";
import type { RawFinding, VulnClass } from "./types.ts";

const SOURCE =
  /\b(?:req|request|ctx\.request)\.(?:query|body|params|cookies|headers|url|originalUrl)|\blocation\.(?:hash|search|href)|\bdocument\.(?:cookie|URL|referrer)|\bprocess\.argv|\bwindow\.name|\bprompt\(/;
const SANITISER =
  /^(?:escape|escapeHtml|escapeHTML|encodeURIComponent|encodeURI|sanitize|sanitizeHtml|purify|basename|parseInt|parseFloat|Number|Boolean|quote|escapeShellArg)$/;
const SECRET_NAME = /(?:password|passwd|secret|apiKey|api_key|token|accessKey|privateKey|clientSecret)$/i;
const PLACEHOLDER =
  /^(?:.{0,5}|your\b.*|.*\b(?:here|placeholder|todo)\b.*|<[^>]*>|x+|\*+|(?:[a-z]{0,8}[ _-]?){0,3}(?:pass(?:word)?|secret|key|admin|root|test|example|changeme|dummy|default)(?:[ _-]?[a-z]{0,8}){0,3}\d{0,4})$/i;
const compact = (toks: Token[]) => toks.map((t) => t.text).join("");

type Emit = (rule: string, cwe: string, cls: VulnClass, line: number, message: string) => void;

/** Names the expression reads that are neither constant nor sanitised. */
function unsafe(toks: Token[], scope: Scope): boolean {
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === "str") {
      if (t.exprs?.some((e) => unsafe(exprTokens(e, "javascript"), scope))) return true;
      continue;
    }
    if (t.kind !== "name" || toks[i - 1]?.text === "." || /^(?:true|false|null|undefined|new|typeof)$/.test(t.text))
      continue;
    let j = i;
    while (toks[j + 1]?.text === "." && toks[j + 2]?.kind === "name") j += 2;
    if (toks[j + 1]?.text === "(" && SANITISER.test(toks[j]!.text)) {
      let depth = 0;
      for (let k = j + 1; k < toks.length; k++) {
        if (toks[k]!.text === "(") depth++;
        else if (toks[k]!.text === ")" && --depth === 0) {
          i = k;
          break;
        }
      }
      continue;
    }
    if (toks[i + 1]?.text === "(") continue;
    const f = scope.get(t.text);
    if (f && (f.constant || f.safe.has("html"))) continue;
    return true;
  }
  return false;
}

function tainted(toks: Token[], scope: Scope): boolean {
  if (SOURCE.test(compact(toks))) return true;
  return toks.some(
    (t) =>
      (t.kind === "name" && scope.get(t.text)?.tainted) ||
      t.exprs?.some((e) => tainted(exprTokens(e, "javascript"), scope)),
  );
}

/** True when `toks` builds a string from non-constant parts (template literal, `+`). */
function built(toks: Token[], scope: Scope): { literal: string; unsafe: boolean } | null {
  const b = stringBuild(toks, scope, "javascript");
  if (!b) return null;
  return { literal: b.literal, unsafe: b.parts.some((p) => unsafe(p, scope)) };
}

const HOST_REGEX_DOT =
  /(?:^|[^\\])(?:[\w\])+*?]|\\w)\.(?:[a-z][\w-]{0,62})(?:\\?\.[a-z][\w-]{0,62}){0,4}(?:\\?\/|\$|\\b|\)|$)/i;
const URLISH = /https?|:\\?\/\\?\/|www|\.(?:com|org|net|io|edu|gov|dev|app|co)\b/i;

/** Runs the JavaScript rules over one code block. */
export function javascriptRules(code: string): RawFinding[] {
  const findings: RawFinding[] = [];
  const seen = new Set<string>();
  const emit: Emit = (rule, cwe, cls, line, message) => {
    if (seen.has(`${rule}:${line}`)) return;
    seen.add(`${rule}:${line}`);
    findings.push({ rule, cwe, class: cls, line, message });
  };
  const scope = new Scope();
  const lexed = lex(code, "javascript");
  for (const st of lexed.statements) {
    const toks = st.tokens;
    const asg = assignment(toks);
    for (const call of findCalls(toks)) {
      const first = call.args[0]?.tokens ?? [];
      const b = first.length ? built(first, scope) : null;
      const firstVar = first.length === 1 ? scope.get(first[0]!.text) : undefined;
      const dynamic =
        (b?.unsafe ?? false) || (first.length > 0 && !b && unsafe(first, scope) && first[0]!.kind !== "str");
      if (/^(?:write|writeln)$/.test(call.name) && call.receiver === "document" && dynamic)
        emit("JS-XSS-DOM", "CWE-79", "xss", call.line, "document.write of unescaped values");
      if (call.name === "insertAdjacentHTML" && call.args[1] && unsafe(call.args[1].tokens, scope))
        emit("JS-XSS-DOM", "CWE-79", "xss", call.line, "insertAdjacentHTML of unescaped values");
      if (
        /^(?:send|write|end)$/.test(call.name) &&
        /^(?:res|response|reply|ctx)$/.test(call.receiver.split(".")[0] ?? "")
      ) {
        const html =
          (b && looksHtml(b.literal) && b.unsafe) ||
          firstVar?.html ||
          (tainted(first, scope) && unsafe(first, scope) && !/^JSON\./.test(compact(first)));
        if (html)
          emit("JS-XSS-RESPONSE", "CWE-79", "xss", call.line, "response body built from unescaped request data");
      }
      if (
        /^(?:query|execute|run|all|get|each|exec|prepare|raw)$/.test(call.name) &&
        call.receiver &&
        ((b && looksSql(b.literal) && b.unsafe) || firstVar?.sql)
      )
        emit(
          "JS-SQL-STRING",
          "CWE-89",
          "sql-injection",
          call.line,
          `SQL text built from values is passed to ${call.name}()`,
        );
      const shellOpt = call.args.some((a) => /shell:true/.test(compact(a.tokens)));
      if (
        ((/^(?:exec|execSync)$/.test(call.name) &&
          !/^(?:db|conn|connection|stmt|pool|client|re|regex|\w+Regex|\w+Re)$/.test(call.receiver)) ||
          (/^(?:spawn|spawnSync)$/.test(call.name) && shellOpt)) &&
        (dynamic || firstVar?.tainted || firstVar?.dynamic)
      )
        emit(
          "JS-COMMAND-INJECTION",
          "CWE-78",
          "command-injection",
          call.line,
          `shell command built from values runs through ${call.name}()`,
        );
      if (
        (call.callee === "eval" ||
          call.callee === "Function" ||
          (/^(?:setTimeout|setInterval)$/.test(call.callee) && first[0]?.kind === "str" && first[0].prefix !== "`"
            ? false
            : /^(?:setTimeout|setInterval)$/.test(call.callee) && b !== null)) &&
        first.length &&
        !(first.length === 1 && first[0]!.kind === "str" && !first[0]!.exprs?.length)
      )
        emit("JS-EVAL", "CWE-95", "code-injection", call.line, `${call.callee}() runs text that is not a constant`);
      if (
        /^(?:chmod|chmodSync|fchmod|fchmodSync|mkdir|mkdirSync|writeFile|writeFileSync|open|openSync)$/.test(call.name)
      ) {
        const text = call.args
          .slice(1)
          .map((a) => compact(a.tokens))
          .join(",");
        const m = /(?:^|[,:{(])(?:mode:)?(0o[0-7]{3,4}|0[0-7]{3}|['"][0-7]{3,4}['"]|\d{3})/.exec(text);
        if (m) {
          const raw = m[1]!.replace(/['"]/g, "");
          const v = raw.startsWith("0o")
            ? Number.parseInt(raw.slice(2), 8)
            : /^['"]|^0/.test(m[1]!)
              ? Number.parseInt(raw, 8)
              : Number(raw);
          if ((v & 0o002) !== 0)
            emit(
              "JS-CHMOD-WORLD",
              "CWE-732",
              "file-permissions",
              call.line,
              `world-writable permissions (0o${v.toString(8)})`,
            );
        }
      }
      if (
        /^(?:readFile|readFileSync|createReadStream|createWriteStream|writeFile|writeFileSync|unlink|unlinkSync|sendFile|download|rm|rmSync)$/.test(
          call.name,
        ) &&
        first.length &&
        tainted(first, scope) &&
        !/basename/.test(compact(first)) &&
        !call.args.some((a) => /root:/.test(compact(a.tokens)))
      )
        emit(
          "JS-PATH-TRAVERSAL",
          "CWE-22",
          "path-traversal",
          call.line,
          `${call.name}() on a path taken from the request`,
        );
      if (
        call.name === "extractAllTo" ||
        (call.callee === "tar.x" && !call.args.some((a) => /filter:/.test(compact(a.tokens))))
      )
        emit(
          "JS-ARCHIVE-EXTRACT",
          "CWE-22",
          "archive-extraction",
          call.line,
          "archive extracted without checking member paths",
        );
      if (
        call.name === "unserialize" ||
        (call.callee === "yaml.load" &&
          call.args.some((a) => /DEFAULT_FULL_SCHEMA|FULL_SCHEMA/.test(compact(a.tokens))))
      )
        emit("JS-DESERIALIZE", "CWE-502", "deserialization", call.line, `${call.callee}() can run code from the data`);
      if (call.name === "redirect" && first.length && tainted(first, scope))
        emit("JS-OPEN-REDIRECT", "CWE-601", "open-redirect", call.line, "redirect target comes from the request");
      if (call.name === "createHash" && /md5|sha1/i.test(compact(first)) && /passw/i.test(compact(toks)))
        emit("JS-WEAK-HASH", "CWE-328", "weak-crypto", call.line, "md5/sha1 used to hash a password");
      if (
        call.callee === "RegExp" &&
        first[0]?.kind === "str" &&
        URLISH.test(first[0].body ?? "") &&
        HOST_REGEX_DOT.test((first[0].body ?? "").replace(/\\\\/g, "\\"))
      )
        emit(
          "JS-URL-REGEX",
          "CWE-20",
          "url-validation",
          call.line,
          "host pattern with an unescaped '.' matches any character",
        );
    }
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i]!;
      if (t.kind === "str" && t.prefix === "/" && URLISH.test(t.body ?? "") && HOST_REGEX_DOT.test(t.body ?? ""))
        emit(
          "JS-URL-REGEX",
          "CWE-20",
          "url-validation",
          t.line,
          "host pattern with an unescaped '.' matches any character",
        );
      if (t.text === "rejectUnauthorized" && toks[i + 1]?.text === ":" && toks[i + 2]?.text === "false")
        emit("JS-TLS-NOVERIFY", "CWE-295", "tls-verification", t.line, "TLS certificate verification is off");
      if (t.text === "NODE_TLS_REJECT_UNAUTHORIZED" && /['"]0['"]|^0$/.test(toks[i + 2]?.text ?? ""))
        emit("JS-TLS-NOVERIFY", "CWE-295", "tls-verification", t.line, "TLS certificate verification is off");
      if (
        t.kind === "name" &&
        SECRET_NAME.test(t.text) &&
        (toks[i + 1]?.text === ":" || toks[i + 1]?.text === "=") &&
        toks[i + 2]?.kind === "str" &&
        toks[i + 3]?.text !== "+" &&
        !toks[i + 2]!.exprs?.length &&
        !PLACEHOLDER.test(toks[i + 2]!.body ?? "")
      )
        emit("JS-HARDCODED-SECRET", "CWE-798", "hardcoded-secret", t.line, `hard-coded ${t.text}`);
      if (
        t.kind === "name" &&
        SECRET_NAME.test(t.text) &&
        /^={2,3}$/.test(toks[i + 1]?.text ?? "") &&
        toks[i + 2]?.kind === "str" &&
        (toks[i + 2]!.body ?? "") !== ""
      )
        emit("JS-HARDCODED-SECRET", "CWE-798", "hardcoded-secret", t.line, `${t.text} compared with a literal`);
      if (/^(?:innerHTML|outerHTML)$/.test(t.text) && /^\+?=$/.test(toks[i + 1]?.text ?? "")) {
        const value = toks.slice(i + 2);
        if (
          value.length &&
          !(value.length === 1 && value[0]!.kind === "str" && !value[0]!.exprs?.length) &&
          unsafe(value, scope)
        )
          emit("JS-XSS-DOM", "CWE-79", "xss", t.line, `${t.text} set from unescaped values`);
      }
    }
    if (asg) {
      const f = newFacts();
      f.tainted = tainted(asg.value, scope);
      f.constant = asg.value.every((t) => t.kind !== "name" && !t.exprs?.length);
      if (!unsafe(asg.value, scope)) f.safe.add("html");
      const b = built(asg.value, scope);
      if (b) {
        f.html = looksHtml(b.literal) && b.unsafe;
        f.sql = looksSql(b.literal) && b.unsafe;
        f.dynamic = b.unsafe;
      }
      const prev = asg.name ? scope.get(asg.name) : undefined;
      if (asg.op === "+=" && prev) {
        f.html ||= prev.html;
        f.sql ||= prev.sql;
        f.tainted ||= prev.tainted;
      }
      // `const { a, b } = req.body` taints every destructured name.
      const names = asg.name ? [asg.name] : [...asg.target.matchAll(/[A-Za-z_$][\w$]*/g)].map((m) => m[0]);
      for (const name of names) scope.set(name, { ...f, safe: new Set(f.safe) });
    }
  }
  return findings;
}
