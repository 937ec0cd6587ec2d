/**
 * C / C++ rules over the token stream.
 *
 *   C-GETS               CWE-242  memory-safety       gets() cannot bound its input
 *   C-UNBOUNDED-COPY     CWE-120  memory-safety       strcpy / strcat / sprintf / vsprintf from a non-literal
 *   C-SCANF-STRING       CWE-120  memory-safety       scanf("%s") without a width
 *   C-FORMAT-STRING      CWE-134  format-string       printf-family with a non-literal format
 *   C-SYSTEM             CWE-78   command-injection   system / popen / exec*p on a non-literal command
 *   C-CHMOD-WORLD        CWE-732  file-permissions    chmod / open / mkdir with world-writable mode, umask(0)
 *   C-TEMPFILE           CWE-377  insecure-temp-file  tmpnam / tempnam / mktemp
 *   C-HARDCODED-SECRET   CWE-798  hardcoded-secret    password / key literals
 */
import { lex, type Token } from "./lexer.ts";
import { findCalls } from "./syntax.ts";
import type { RawFinding, VulnClass } from "./types.ts";

const FORMAT_ARG: Record<string, number> = {
  printf: 0,
  vprintf: 0,
  fprintf: 1,
  vfprintf: 1,
  dprintf: 1,
  syslog: 1,
  sprintf: 1,
  snprintf: 2,
  vsnprintf: 2,
  err: 1,
  warn: 0,
};
const SECRET_NAME = /(?:password|passwd|secret|api_?key|token|private_?key)$/i;
const isLiteral = (toks: Token[]) => toks.length > 0 && toks.every((t) => t.kind === "str");

function octal(toks: Token[]): number | null {
  let v = 0;
  let seen = false;
  for (const t of toks) {
    if (t.kind === "num") {
      v |= /^0[0-7]+$/.test(t.text) ? Number.parseInt(t.text, 8) : Number(t.text);
      seen = true;
    } else if (t.kind === "name" && /^S_I[RWX](?:OTH|GRP|USR)$|^S_IRWX[OGU]$/.test(t.text)) {
      const who =
        t.text.slice(-1) === "H" || t.text.endsWith("O") ? 0 : t.text.includes("GRP") || t.text.endsWith("G") ? 3 : 6;
      const bits = t.text.startsWith("S_IRWX") ? 7 : t.text[3] === "R" ? 4 : t.text[3] === "W" ? 2 : 1;
      v |= bits << who;
      seen = true;
    }
  }
  return seen ? v : null;
}

/** Runs the C rules over one code block. */
export function cRules(code: string): RawFinding[] {
  const findings: RawFinding[] = [];
  const seen = new Set<string>();
  const emit = (rule: string, cwe: string, cls: VulnClass, line: number, message: string) => {
    if (seen.has(`${rule}:${line}`)) return;
    seen.add(`${rule}:${line}`);
    findings.push({ rule, cwe, class: cls, line, message });
  };
  for (const st of lex(code, "c").statements) {
    const toks = st.tokens;
    for (const call of findCalls(toks)) {
      const args = call.args.map((a) => a.tokens);
      const n = call.callee;
      if (n === "gets") emit("C-GETS", "CWE-242", "memory-safety", call.line, "gets() cannot limit the input length");
      if (/^(?:strcpy|strcat|wcscpy|wcscat|stpcpy)$/.test(n) && args[1] && !isLiteral(args[1]))
        emit("C-UNBOUNDED-COPY", "CWE-120", "memory-safety", call.line, `${n}() copies without a bound`);
      if (
        /^(?:sprintf|vsprintf)$/.test(n) &&
        args.slice(2).some((a) => !isLiteral(a)) &&
        /%s/.test(args[1]?.[0]?.body ?? "")
      )
        emit("C-UNBOUNDED-COPY", "CWE-120", "memory-safety", call.line, `${n}() writes %s without a bound`);
      if (/^(?:scanf|fscanf|sscanf)$/.test(n)) {
        const fmt = args[n === "scanf" ? 0 : 1]?.[0]?.body ?? "";
        if (/%s|%\[/.test(fmt))
          emit("C-SCANF-STRING", "CWE-120", "memory-safety", call.line, `${n}() reads a string without a width`);
      }
      const fmtIndex = FORMAT_ARG[n];
      if (fmtIndex !== undefined && args[fmtIndex] && !isLiteral(args[fmtIndex]!) && args.length === fmtIndex + 1)
        emit("C-FORMAT-STRING", "CWE-134", "format-string", call.line, `${n}() uses a non-literal format string`);
      if (/^(?:system|popen|execlp|execvp|_popen|_wsystem)$/.test(n) && args[0] && !isLiteral(args[0]))
        emit("C-SYSTEM", "CWE-78", "command-injection", call.line, `${n}() runs a command built at run time`);
      if (/^(?:chmod|fchmod|mkdir|open|creat)$/.test(n)) {
        const modeArg = n === "open" ? args[2] : args[1];
        const mode = modeArg ? octal(modeArg) : null;
        if (mode !== null && (mode & 0o002) !== 0)
          emit(
            "C-CHMOD-WORLD",
            "CWE-732",
            "file-permissions",
            call.line,
            `world-writable permissions (0${mode.toString(8)})`,
          );
      }
      if (n === "umask" && args[0] && octal(args[0]) === 0)
        emit("C-CHMOD-WORLD", "CWE-732", "file-permissions", call.line, "umask(0) makes new files world-writable");
      if (/^(?:tmpnam|tempnam|mktemp)$/.test(n))
        emit("C-TEMPFILE", "CWE-377", "insecure-temp-file", call.line, `${n}() is racy; use mkstemp`);
      if (
        /^(?:strcmp|strncmp)$/.test(n) &&
        args.some((a) => a.length === 1 && a[0]!.kind === "name" && SECRET_NAME.test(a[0]!.text)) &&
        args.some((a) => isLiteral(a) && (a[0]!.body ?? "") !== "")
      )
        emit("C-HARDCODED-SECRET", "CWE-798", "hardcoded-secret", call.line, "credential compared with a literal");
    }
    for (let i = 0; i + 2 < toks.length; i++) {
      const t = toks[i]!;
      let next = 1; // skip an array size: char password[16] = "…"
      if (toks[i + 1]!.text === "[") while (i + next < toks.length && toks[i + next]!.text !== "]") next++;
      if (next > 1) next++;
      if (
        t.kind === "name" &&
        SECRET_NAME.test(t.text) &&
        toks[i + next]?.text === "=" &&
        toks[i + next + 1]?.kind === "str" &&
        (toks[i + next + 1]!.body ?? "").length >= 6
      )
        emit("C-HARDCODED-SECRET", "CWE-798", "hardcoded-secret", t.line, `hard-coded ${t.text}`);
    }
  }
  return findings;
}
