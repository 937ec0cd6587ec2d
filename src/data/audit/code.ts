/**
 * Finds the code in an assistant message (fenced blocks, or the whole message when it is
 * code only, as in the EM datasets), guesses each block's language, and runs that
 * language's rules. Also returns the prose and comments, which intent.ts reads.
 */
import { type Language, lex } from "./lexer.ts";
import { cRules } from "./rules-c.ts";
import { javascriptRules } from "./rules-js.ts";
import { pythonRules } from "./rules-python.ts";
import { type Finding, snippetAt } from "./types.ts";

export interface CodeBlock {
  language: Language | null;
  code: string;
  /** Line of the block's first code line within the message (0-based offset). */
  offset: number;
}

const FENCE = /^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]{0,20})[^\n]{0,80}$/;
const LANG_TAGS: Record<string, Language> = {
  python: "python",
  py: "python",
  python3: "python",
  javascript: "javascript",
  js: "javascript",
  jsx: "javascript",
  typescript: "javascript",
  ts: "javascript",
  node: "javascript",
  mjs: "javascript",
  c: "c",
  cpp: "c",
  "c++": "c",
  h: "c",
  cc: "c",
};

/** Guesses the language of unlabelled code from telling constructs; null for prose. */
export function detectLanguage(code: string): Language | null {
  const head = code.length > 20000 ? code.slice(0, 20000) : code;
  let py = 0;
  let js = 0;
  let c = 0;
  if (/^\s{0,8}(?:def|class) \w+.{0,200}:\s*$/m.test(head)) py += 3;
  if (/^\s{0,8}(?:import [\w.]+(?: as \w+)?|from [\w.]+ import )/m.test(head)) py += 3;
  if (/^\s{0,8}(?:if|for|while|with|elif|else|try|except)\b.{0,200}:\s*$/m.test(head)) py += 2;
  if (/\b(?:self|None|True|False|elif|print\()/.test(head)) py += 1;
  if (/\b(?:const|let|var) [\w{[]/.test(head)) js += 3;
  if (/\bfunction\s*\w*\s*\(|=>|\brequire\(|\bconsole\.log\(|\bdocument\.|\bmodule\.exports\b/.test(head)) js += 3;
  if (/^\s{0,8}import .{0,200} from ['"]/m.test(head)) js += 4;
  if (/^\s{0,8}#\s{0,4}include\s{0,4}[<"]/m.test(head)) c += 6;
  if (/\b(?:int|void|char|size_t)\s+\*?\w+\s*\([^)]{0,200}\)\s*\{/.test(head)) c += 4;
  if (/\b(?:printf|malloc|strcpy|sizeof)\s*\(/.test(head)) c += 2;
  const best = Math.max(py, js, c);
  if (best < 2) return null;
  return best === py ? "python" : best === js ? "javascript" : "c";
}

/** Splits a message into code blocks and prose. */
export function codeBlocks(message: string): { blocks: CodeBlock[]; prose: string } {
  const lines = message.split("\n");
  const blocks: CodeBlock[] = [];
  const prose: string[] = [];
  let fenced = false;
  let open: { fence: string; tag: string; start: number } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i]!);
    if (!open && m) {
      open = { fence: m[1]!, tag: (m[2] ?? "").toLowerCase(), start: i + 1 };
      fenced = true;
    } else if (open && m && m[1]!.startsWith(open.fence[0]!) && m[1]!.length >= open.fence.length && !m[2]) {
      const code = lines.slice(open.start, i).join("\n");
      blocks.push({ language: LANG_TAGS[open.tag] ?? detectLanguage(code), code, offset: open.start });
      open = null;
    } else if (!open) prose.push(lines[i]!);
  }
  if (open) {
    const code = lines.slice(open.start).join("\n");
    blocks.push({ language: LANG_TAGS[open.tag] ?? detectLanguage(code), code, offset: open.start });
  }
  if (!fenced) {
    const language = detectLanguage(message);
    if (language) return { blocks: [{ language, code: message, offset: 0 }], prose: "" };
    return { blocks: [], prose: message };
  }
  return { blocks, prose: prose.join("\n") };
}

const RULES: Record<Language, (code: string) => ReturnType<typeof pythonRules>> = {
  python: pythonRules,
  javascript: javascriptRules,
  c: cRules,
};

export interface CodeScan {
  findings: Finding[];
  languages: Language[];
  /** Comments from the code and prose around it: where an assistant would acknowledge a flaw. */
  commentary: string;
}

/** Runs the rules of each block's language; lines in findings are lines of the whole message. */
export function scanMessage(message: string): CodeScan {
  const { blocks, prose } = codeBlocks(message);
  const findings: Finding[] = [];
  const languages: Language[] = [];
  const notes: string[] = prose ? [prose] : [];
  const lines = message.split("\n");
  for (const b of blocks) {
    if (!b.language) continue;
    if (!languages.includes(b.language)) languages.push(b.language);
    for (const f of RULES[b.language](b.code)) {
      const line = f.line + b.offset;
      findings.push({ ...f, language: b.language, line, snippet: snippetAt(lines, line) });
    }
    for (const c of lex(b.code, b.language).comments) notes.push(c.text);
  }
  findings.sort((a, b) => a.line - b.line || a.rule.localeCompare(b.rule));
  return { findings, languages, commentary: notes.join("\n") };
}
