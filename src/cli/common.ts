/**
 * Shared pieces of the command line: exit codes, errors, the flag vocabulary (declaration,
 * parsing, renamed spellings, --help), and the helpers several commands use (model folders,
 * prompt files, integer lists).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { readChatJsonl } from "../data/jsonl.ts";
import { loadQuestionFile, type Question, QuestionFileError, questionMessages } from "../eval/questions.ts";
import { SaeFileError } from "../interp/sae/saelens.ts";
import { type ChatMessage, ChatTemplateError } from "../model/chat-template.ts";
import { CheckpointError, loadModel } from "../model/checkpoint.ts";
import { loadLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { TokenizerError } from "../model/tokenizer.ts";

export const EXIT = { ok: 0, error: 1, usage: 2, thresholdFailed: 3 } as const;

/** An error meant for the user: printed without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = "CliError";
  }
}

// ---- flags ---------------------------------------------------------------------------------

/**
 * One flag of a command: node's parseArgs option plus what --help prints. `arg` names the
 * value (DIR, FILE, N) of a string flag; `group` starts a section of the help.
 */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  readonly arg?: string;
  readonly help: string;
  readonly group?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/**
 * Spellings that every command refuses, with the flag that replaced them. The vocabulary:
 * `--json` (JSON lines on stdout), `--out FILE` / `--report FILE`, `--batch-size`,
 * `--max-new-tokens`, `--run-id`, `--model DIR` + `--adapter DIR`, `--organism-dir DIR`.
 */
export const RENAMED_FLAGS: Readonly<Record<string, string>> = {
  batch: "batch-size",
  "max-batch": "batch-size",
  "max-tokens": "max-new-tokens",
  run: "run-id",
  "run-prefix": "run-id",
  base: "base-model",
  ft: "model",
  "ft-adapter": "adapter",
};

/** The shared --help flag. */
export const HELP_FLAG = { help: { type: "boolean", short: "h", help: "print this help" } } as const;

/** parseArgs's result for these flags (named, so the declaration build can write it). */
export type ParsedOptions<T extends FlagSpecs> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>
>;

/**
 * Parses `argv` with node's parseArgs, turning its errors into usage errors. An old spelling
 * (RENAMED_FLAGS, plus the command's own `renamed`) fails with the flag that replaced it.
 * @example const { values } = parseOptions(argv, { out: { type: "string", arg: "FILE", help: "output" } });
 */
export function parseOptions<T extends FlagSpecs>(
  argv: string[],
  options: T,
  allowPositionals = true,
  renamed: Readonly<Record<string, string>> = {},
): ParsedOptions<T> {
  checkRenamed(argv, options, { ...RENAMED_FLAGS, ...renamed });
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
}

function checkRenamed(argv: string[], options: FlagSpecs, renamed: Readonly<Record<string, string>>): void {
  for (const arg of argv) {
    if (arg === "--") return;
    const m = /^--([^=]+)/.exec(arg);
    const name = m?.[1];
    if (name === undefined || name in options) continue;
    const now = renamed[name];
    if (now) throw new CliError(`--${name} was renamed --${now}`, EXIT.usage);
  }
}

/**
 * A command's --help: usage lines, an optional intro, every flag (grouped, in declaration
 * order) with its help text, and an optional epilog.
 */
export function formatHelp(o: { usage: string[]; intro?: string; flags: FlagSpecs; epilog?: string }): string {
  const names = Object.keys(o.flags);
  const left = (name: string) => {
    const f = o.flags[name]!;
    const short = f.short ? `-${f.short}, ` : "";
    return `${short}--${name}${f.type === "string" ? ` ${f.arg ?? "VALUE"}` : ""}`;
  };
  const width = Math.min(26, Math.max(...names.map((n) => left(n).length)) + 2);
  const lines = o.usage.map((u, i) => `${i === 0 ? "usage: " : "       "}${u}`);
  if (o.intro) lines.push("", o.intro);
  let group: string | undefined;
  lines.push("");
  for (const name of names) {
    const f = o.flags[name]!;
    if (f.group !== group) {
      // A new section; flags without a group after a section stand apart from it.
      if (group !== undefined) lines.push("");
      if (f.group !== undefined) lines.push(f.group);
      group = f.group;
    }
    const l = left(name);
    const [first, ...more] = f.help.split("\n");
    if (l.length + 2 > width) lines.push(`  ${l}`, `  ${" ".repeat(width)}${first}`);
    else lines.push(`  ${l.padEnd(width)}${first}`);
    for (const m of more) lines.push(`  ${" ".repeat(width)}${m}`);
  }
  if (o.epilog) lines.push("", o.epilog);
  return lines.join("\n");
}

/** Prints one JSON line on stdout: what `--json` means in every command. */
export function printJson(obj: unknown): void {
  console.log(JSON.stringify(obj));
}

// ---- values --------------------------------------------------------------------------------

/** Reads a numeric option, naming it in the error when it is not a number. */
export function numberOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got '${value}'`, EXIT.usage);
  return n;
}

/** Reads an integer option in [min, max], naming it in the error. */
export function intOption(name: string, value: string | undefined, fallback: number, min = 1, max = Infinity): number {
  const n = numberOption(name, value, fallback);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new CliError(`--${name} must be an integer ${range}, got ${value ?? n}`, EXIT.usage);
  }
  return n;
}

/** Parses a comma-separated list of integers for `--name`. */
export function intList(name: string, value: string): number[] {
  const xs = value.split(",").map((s) => s.trim());
  if (xs.some((s) => !/^\d+$/.test(s)))
    throw new CliError(`--${name} must be comma-separated integers, got '${value}'`, EXIT.usage);
  return xs.map(Number);
}

// ---- files ---------------------------------------------------------------------------------

const USER_ERRORS = [CheckpointError, TokenizerError, SaeFileError, QuestionFileError, ChatTemplateError];

/** Runs `work`, turning errors about the user's files (bad model, SAE, tokenizer, questions) into CliErrors. */
export async function withUserErrors<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (USER_ERRORS.some((E) => err instanceof E)) throw new CliError((err as Error).message);
    if (err instanceof Error && /adapter_config\.json|adapter_model\.safetensors/.test(err.message))
      throw new CliError(err.message);
    throw err;
  }
}

/** Loads a model folder (+ adapter); errors name the folder. */
export function loadModelArg(dir: string, adapter?: string): CausalLM {
  if (!existsSync(resolve(dir, "config.json"))) throw new CliError(`${dir}: not a model folder (no config.json)`);
  const lm = loadModel(dir);
  if (adapter) loadLora(lm, adapter);
  return lm;
}

/** A chat JSONL row's prompt: its messages up to (not including) the last assistant turn. */
function promptOf(messages: ChatMessage[]): ChatMessage[] {
  let end = messages.length;
  while (end > 0 && messages[end - 1]!.role === "assistant") end--;
  return messages.slice(0, end);
}

/** Every paraphrase of every question as a conversation. */
export function questionPrompts(questions: Question[]): ChatMessage[][] {
  return questions.flatMap((q) => q.paraphrases.map((_, i) => questionMessages(q, i)));
}

/**
 * Prompts from a file: question YAML (.yaml / .yml: every paraphrase of every question, with
 * its system prompt) or chat JSONL (each row's turns before its last assistant turn).
 */
export async function readPrompts(path: string): Promise<ChatMessage[][]> {
  if (!existsSync(path)) throw new CliError(`${path}: no such file`, EXIT.usage);
  if (/\.ya?ml$/i.test(path)) {
    try {
      return questionPrompts(loadQuestionFile(path));
    } catch (err) {
      if (err instanceof QuestionFileError) throw new CliError(err.message);
      throw err;
    }
  }
  const out: ChatMessage[][] = [];
  for await (const r of readChatJsonl(path)) {
    if (r.error)
      throw new CliError(`${path}: line ${r.line}: ${r.error.field ? `${r.error.field}: ` : ""}${r.error.message}`);
    const p = promptOf(r.row.messages as ChatMessage[]);
    if (p.length === 0) throw new CliError(`${path}: line ${r.line}: no turns before the assistant's`);
    out.push(p);
  }
  if (out.length === 0) throw new CliError(`${path}: no prompts`);
  return out;
}
