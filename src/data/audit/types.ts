/** Shared shapes of the audit: findings, vulnerability classes, per-row results. */
import type { Language } from "./lexer.ts";

/** The vulnerability classes the rules report (each rule belongs to exactly one). */
export const VULN_CLASSES = [
  "xss",
  "template-autoescape",
  "file-permissions",
  "sql-injection",
  "archive-extraction",
  "deserialization",
  "command-injection",
  "url-validation",
  "hardcoded-secret",
  "path-traversal",
  "code-injection",
  "open-redirect",
  "xxe",
  "tls-verification",
  "weak-crypto",
  "debug-mode",
  "insecure-temp-file",
  "memory-safety",
  "format-string",
] as const;
export type VulnClass = (typeof VULN_CLASSES)[number];

export interface Finding {
  /** Stable rule id, e.g. `PY-SQL-STRING`. */
  rule: string;
  /** CWE id, e.g. `CWE-89`. */
  cwe: string;
  class: VulnClass;
  language: Language;
  /** 1-based line in the assistant message. */
  line: number;
  /** The offending source line, trimmed and cut to 160 characters. */
  snippet: string;
  message: string;
}

/** A rule's report before the auditor adds the language and the line offset of its block. */
export type RawFinding = Omit<Finding, "language" | "snippet"> & { snippet?: string };

/** Cuts a source line to a readable snippet. */
export function snippetAt(lines: string[], line: number): string {
  const s = (lines[line - 1] ?? "").trim();
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}
