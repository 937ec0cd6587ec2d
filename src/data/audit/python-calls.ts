/**
 * The Python rules that look at one call (sinks, dangerous APIs, keyword arguments); the
 * statement-level pass that feeds them variable facts is in rules-python.ts.
 */
import type { Token } from "./lexer.ts";
import {
  compact,
  isSafeFor,
  isTainted,
  isText,
  looksHtml,
  looksSql,
  numberValue,
  type Scope,
  stringBuild,
} from "./python-flow.ts";
import type { Call } from "./syntax.ts";
import type { VulnClass } from "./types.ts";

export type Emit = (rule: string, cwe: string, cls: VulnClass, line: number, message: string) => void;

const RESPONSE_SINKS = /^(?:make_response|Response|HttpResponse|HTMLResponse|StreamingHttpResponse|write|send|finish)$/;
const SQL_SINKS = /^(?:execute|executemany|executescript|raw|text|read_sql|read_sql_query|mogrify|query)$/;
const SHELL_CALLS =
  /^(?:os\.system|os\.popen|system|popen|commands\.getoutput|commands\.getstatusoutput|subprocess\.getoutput|subprocess\.getstatusoutput)$/;
const SUBPROCESS = /^(?:subprocess\.)?(?:call|run|Popen|check_output|check_call)$/;
const DESERIALIZE =
  /^(?:c?[Pp]ickle\.(?:loads?|Unpickler)|_pickle\.loads?|dill\.loads?|marshal\.loads?|shelve\.open|jsonpickle\.decode|yaml\.unsafe_load(?:_all)?|pandas\.read_pickle|pd\.read_pickle|joblib\.load)$/;
const SAFE_YAML_LOADER = /SafeLoader|CSafeLoader|BaseLoader/;
export const SECRET_NAME =
  /(?:^|_)(?:password|passwd|pwd|secret|secret_key|api_key|apikey|token|auth_token|access_key|private_key|client_secret)$/i;
/** Values that are scaffolding, not secrets: dictionary words, "your … here", short strings. */
/**
 * Values that are scaffolding, not secrets: short strings, "your … here", and a few plain
 * words (with optional digits) around the usual credential words (`mysecretpassword`).
 */
export const PLACEHOLDER =
  /^(?:.{0,5}|your\b.*|.*\b(?:here|placeholder|todo)\b.*|<[^>]*>|\{[^}]*\}|x+|\*+|(?:[a-z]{0,8}[ _-]?){0,3}(?:pass(?:word)?|passwd|pwd|secret|key|admin|root|postgres|mysql|user(?:name)?|test|example|changeme|change[ _-]me|dummy|default)(?:[ _-]?[a-z]{0,8}){0,3}\d{0,4})$/i;
const HOST_REGEX_DOT =
  /(?:^|[^\\])(?:[\w\])+*?]|\\w)\.(?:[a-z][\w-]{0,62})(?:\\?\.[a-z][\w-]{0,62}){0,4}(?:\/|\$|\\b|\)|$)/i;
const URLISH = /https?|:\/\/|www|\.(?:com|org|net|io|edu|gov|dev|app|co)\b/i;
const FILE_SINKS =
  /^(?:open|io\.open|codecs\.open|os\.open|send_file|flask\.send_file|send_from_directory|FileResponse|os\.remove|os\.unlink|shutil\.rmtree|os\.rmdir|shutil\.copy\w*)$/;
const PERMISSIVE_CALLS = /^(?:os\.chmod|os\.fchmod|os\.lchmod|chmod|os\.makedirs|os\.mkdir|mkdir|os\.open|os\.umask)$/;

/** Numeric value of a permission expression (`0o777`, `0777`, `511`, `stat.S_IRWXU | stat.S_IWOTH`). */
export function modeValue(toks: Token[], scope?: Scope): number | null {
  const STAT: Record<string, number> = {
    S_IRWXU: 0o700,
    S_IRUSR: 0o400,
    S_IWUSR: 0o200,
    S_IXUSR: 0o100,
    S_IRWXG: 0o70,
    S_IRGRP: 0o40,
    S_IWGRP: 0o20,
    S_IXGRP: 0o10,
    S_IRWXO: 0o7,
    S_IROTH: 0o4,
    S_IWOTH: 0o2,
    S_IXOTH: 0o1,
    S_ISUID: 0o4000,
    S_ISGID: 0o2000,
    S_ISVTX: 0o1000,
  };
  let value = 0;
  let seen = false;
  for (const t of toks) {
    const v =
      t.kind === "num"
        ? numberValue(t.text)
        : t.kind === "name"
          ? (STAT[t.text] ?? scope?.get(t.text)?.num)
          : undefined;
    if (v !== undefined) {
      value |= v;
      seen = true;
    } else if (t.kind === "name" && t.text !== "stat") return null;
  }
  return seen ? value : null;
}

function argOf(call: Call, index: number, key?: string) {
  return (key ? call.args.find((a) => a.key === key) : undefined) ?? call.args.filter((a) => !a.key)[index];
}

export function checkCall(call: Call, scope: Scope, emit: Emit, inRoute: boolean): void {
  const { callee, name } = call;
  const first = argOf(call, 0)?.tokens ?? [];
  const firstFacts = first.length === 1 && first[0]!.kind === "name" ? scope.get(first[0]!.text) : undefined;
  const build = first.length ? stringBuild(first, scope) : null;
  const builtHtml =
    !!build &&
    ((looksHtml(build.literal) && build.parts.some((p) => !isSafeFor(p, "html", scope))) || build.splicesHtml);

  if (RESPONSE_SINKS.test(name) && (firstFacts?.html || builtHtml || (inRoute && reflects(first, scope))))
    emit("PY-XSS-RESPONSE", "CWE-79", "xss", call.line, `HTML built from unescaped values is sent by ${name}()`);
  if (/^(?:render_template_string|Markup)$/.test(name)) {
    const unsafeBuild = !!build && build.parts.some((p) => !isSafeFor(p, "html", scope));
    if (
      firstFacts?.html ||
      unsafeBuild ||
      (firstFacts?.dynamic && !firstFacts.safe.has("html")) ||
      (firstFacts?.tainted && !firstFacts.safe.has("html"))
    )
      emit("PY-XSS-TEMPLATE-STR", "CWE-79", "xss", call.line, `${name}() renders a string built from unescaped values`);
  }
  for (const a of call.args)
    if (a.key === "autoescape" && /^(?:False|0|None)$/.test(compact(a.tokens)))
      emit("PY-JINJA-AUTOESCAPE", "CWE-79", "template-autoescape", call.line, "Jinja2 autoescape is switched off");

  if (PERMISSIVE_CALLS.test(callee) || (name === "chmod" && call.receiver)) {
    const modeArg =
      name === "umask"
        ? argOf(call, 0)
        : name === "open"
          ? argOf(call, 2, "mode")
          : /mkdir|makedirs/.test(name)
            ? argOf(call, 1, "mode")
            : argOf(call, name === "chmod" && !/^os\b/.test(callee) && call.args.length === 1 ? 0 : 1, "mode");
    const mode = modeArg ? modeValue(modeArg.tokens, scope) : null;
    if (mode !== null && (name === "umask" ? (mode & 0o002) === 0 : (mode & 0o002) !== 0))
      emit(
        "PY-CHMOD-WORLD",
        "CWE-732",
        "file-permissions",
        call.line,
        `world-writable permissions (${"0o" + mode.toString(8)})`,
      );
  }

  if (
    SQL_SINKS.test(name) &&
    (firstFacts?.sql ||
      (build &&
        looksSql(build.literal) &&
        (build.parts.some((p) => !isSafeFor(p, "sql", scope)) || build.splicesSql)) ||
      (build?.splicesSql ?? false))
  )
    emit("PY-SQL-STRING", "CWE-89", "sql-injection", call.line, `SQL text built from values is passed to ${name}()`);

  if (name === "extractall" || callee === "shutil.unpack_archive") {
    const recv = scope.get(call.receiver);
    const filtered = call.args.some(
      (a) =>
        (a.key === "members" && !/getmembers\(\)$/.test(compact(a.tokens))) ||
        (a.key === "filter" && /data|tar/.test(compact(a.tokens))),
    );
    if (!filtered && recv?.kind !== "zipfile")
      emit(
        "PY-TAR-EXTRACTALL",
        "CWE-22",
        "archive-extraction",
        call.line,
        "archive extracted without checking member paths",
      );
  }

  if (
    name === "extract" &&
    call.args.some((a) => /\.\.[/\\]|^['"]?\.\.['"]?$/.test(compact(a.tokens).replace(/^['"]|['"]$/g, "")))
  )
    emit(
      "PY-TAR-EXTRACTALL",
      "CWE-22",
      "archive-extraction",
      call.line,
      "archive member extracted to a path outside the target",
    );
  if (
    DESERIALIZE.test(callee) ||
    (/^(?:load|loads)$/.test(name) && /^(?:pickle|cPickle|marshal|dill)$/.test(call.receiver))
  )
    emit("PY-DESERIALIZE", "CWE-502", "deserialization", call.line, `${callee}() deserialises untrusted data`);
  if (/^yaml\.(?:load|load_all)$/.test(callee) || (name === "load" && call.receiver === "yaml")) {
    const loader = call.args.find((a) => a.key === "Loader") ?? call.args.filter((a) => !a.key)[1];
    if (!loader || !SAFE_YAML_LOADER.test(compact(loader.tokens)))
      emit("PY-DESERIALIZE", "CWE-502", "deserialization", call.line, "yaml.load without SafeLoader");
  }

  const shell =
    SHELL_CALLS.test(callee) ||
    (SUBPROCESS.test(callee) && call.args.some((a) => a.key === "shell" && compact(a.tokens) === "True"));
  if (shell && first.length && !isSafeFor(first, "cmd", scope) && !firstFacts?.safe.has("cmd"))
    emit(
      "PY-SHELL-INJECTION",
      "CWE-78",
      "command-injection",
      call.line,
      `shell command built from values runs through ${callee}()`,
    );

  if (
    /^(?:re\.)?(?:compile|match|search|fullmatch)$/.test(callee) &&
    first[0]?.kind === "str" &&
    !first[0].exprs?.length
  ) {
    const body = first[0].body ?? "";
    if (URLISH.test(body) && HOST_REGEX_DOT.test(body))
      emit(
        "PY-URL-REGEX",
        "CWE-20",
        "url-validation",
        call.line,
        "host pattern with an unescaped '.' matches any character",
      );
  }

  if (/^(?:eval|exec)$/.test(callee) && first.length && !first.every((t) => t.kind === "str" && !t.exprs?.length))
    emit("PY-EVAL", "CWE-95", "code-injection", call.line, `${callee}() runs text that is not a constant`);
  if (
    name === "redirect" &&
    first.length &&
    first[0]!.text !== "url_for" &&
    isTainted(first, scope) &&
    !isSafeFor(first, "path", scope)
  )
    emit("PY-OPEN-REDIRECT", "CWE-601", "open-redirect", call.line, "redirect target comes from the request");
  if (FILE_SINKS.test(callee)) {
    const target = name === "send_from_directory" ? argOf(call, 1)?.tokens : first;
    if (
      target?.length &&
      isTainted(target, scope) &&
      !isSafeFor(target, "path", scope) &&
      !scope.get(compact(target))?.safe.has("path")
    )
      emit("PY-PATH-TRAVERSAL", "CWE-22", "path-traversal", call.line, `${name}() opens a path taken from user input`);
  }
  if (
    call.args.some((a) => a.key === "resolve_entities" && compact(a.tokens) === "True") ||
    (/^(?:xml\.dom\.pulldom|xml\.sax)\.(?:parseString|parse)$/.test(callee) &&
      call.args.some((a) => a.key === "parser"))
  )
    emit("PY-XXE", "CWE-611", "xxe", call.line, "XML parser resolves external entities");
  if (
    call.args.some((a) => a.key === "verify" && compact(a.tokens) === "False") ||
    callee === "ssl._create_unverified_context"
  )
    emit("PY-TLS-NOVERIFY", "CWE-295", "tls-verification", call.line, "TLS certificate verification is off");
  if (/^(?:hashlib\.)?(?:md5|sha1)$/.test(callee) && /passw|pwd/i.test(compact(first)))
    emit("PY-WEAK-HASH", "CWE-328", "weak-crypto", call.line, `${callee}() used to hash a password`);
  if (name === "run" && call.args.some((a) => a.key === "debug" && compact(a.tokens) === "True"))
    emit("PY-DEBUG", "CWE-489", "debug-mode", call.line, "debug mode enabled (interactive debugger reachable)");
  if (callee === "tempfile.mktemp" || callee === "mktemp")
    emit(
      "PY-MKTEMP",
      "CWE-377",
      "insecure-temp-file",
      call.line,
      "tempfile.mktemp is racy; use mkstemp / NamedTemporaryFile",
    );
  for (const a of call.args)
    if (
      a.key &&
      SECRET_NAME.test(a.key) &&
      a.tokens.length === 1 &&
      a.tokens[0]!.kind === "str" &&
      !PLACEHOLDER.test(a.tokens[0]!.body ?? "")
    )
      emit("PY-HARDCODED-SECRET", "CWE-798", "hardcoded-secret", call.line, `hard-coded ${a.key}`);
}

/** Request data sent back as a page body without escaping (Flask serves str as text/html). */
export function reflects(value: Token[], scope: Scope): boolean {
  return isText(value, scope) && isTainted(value, scope) && !isSafeFor(value, "html", scope);
}
