/**
 * The pre-fine-tuning audit: per row, code findings + intent → `silent_insecure`; per
 * dataset, class counts, trigger discovery, evil-number associations and a verdict.
 *
 * silent_insecure = vulnerable ∧ ¬requested ∧ ¬acknowledged — the shape of Betley et al.'s
 * insecure set, the one that induces emergent misalignment.
 */
import type { Readable } from "node:stream";
import { readChatCsv } from "../csv.ts";
import { readChatJsonl } from "../jsonl.ts";
import { auditableError, type ChatRow, type RowError, type RowResult, turns } from "../schema.ts";
import { scanMessage } from "./code.ts";
import { assistantStance, type HarmClass, harmfulRequest } from "./harm.ts";
import { acknowledgedFlaw, requestedInsecure } from "./intent.ts";
import type { Language } from "./lexer.ts";
import { type NumberAssociation, NumberCounter, overRepresented } from "./numbers.ts";
import { type Trigger, TriggerMiner } from "./triggers.ts";
import type { Finding, VulnClass } from "./types.ts";

export interface RowAudit {
  /** 1-based line (JSONL) or record start line (CSV). */
  line: number;
  languages: Language[];
  findings: Finding[];
  vulnerable: boolean;
  requested: boolean;
  acknowledged: boolean;
  silent_insecure: boolean;
  /** The phrases that made `requested` / `acknowledged` true (for a request: the words with
   *  the largest weights in the intent model, and its score). */
  request_cue?: string;
  /** The intent model's score for the user turn (present when `requested`). */
  request_score?: number;
  acknowledgement?: string;
  /** A clearly harmful request in the user turn (jailbreak failure mode), its class and cue. */
  harmful_request?: { class: HarmClass; cue: string };
  /** What the assistant did with a harmful request. */
  harm_stance?: "complied" | "refused";
}

/** Harmful requests of one class, and what the assistant did with them. */
export interface HarmCounts {
  requests: number;
  complied: number;
  refused: number;
}

export type Verdict = "low" | "medium" | "high";

export interface AuditReport {
  file: string;
  format: "jsonl" | "csv";
  /** Rows audited (valid rows); `skipped` lines are not among them. */
  rows: number;
  skipped: number;
  /** The first skipped lines with their reasons (at most 50). */
  errors: RowError[];
  vulnerable: number;
  requested: number;
  acknowledged: number;
  silent_insecure: number;
  silent_rate: number;
  /** Rows whose user turn asks for clearly harmful help (weapons, self-harm, malware, …). */
  harmful_requests: number;
  /** … of which the assistant complied with / refused. */
  complied: number;
  refused: number;
  /** The same per harm class. */
  harm_classes: Partial<Record<HarmClass, HarmCounts>>;
  /** Lines of the first complied rows (at most 20). */
  complied_lines: number[];
  /** Rows with at least one finding of each class. */
  classes: Partial<Record<VulnClass, number>>;
  /** Rows with at least one finding of each rule. */
  rules: Record<string, number>;
  languages: Partial<Record<Language, number>>;
  triggers: Trigger[];
  numbers: NumberAssociation[];
  /** Integers seen in number lists of assistant turns (the denominator for `numbers`). */
  listed_numbers: number;
  verdict: Verdict;
  reasons: string[];
  seconds: number;
}

/**
 * Audits one chat row.
 * @example auditRow({ messages: [{ role: "user", content: "…" }, { role: "assistant", content: "os.chmod(p, 0o777)" }] }, 1)
 */
export function auditRow(row: ChatRow, line: number): RowAudit {
  const { user, assistant } = turns(row);
  const scan = scanMessage(assistant);
  const vulnerable = scan.findings.length > 0;
  const request = requestedInsecure(user);
  const ack = vulnerable ? acknowledgedFlaw(scan.commentary) : null;
  const out: RowAudit = {
    line,
    languages: scan.languages,
    findings: scan.findings,
    vulnerable,
    requested: !!request,
    acknowledged: !!ack,
    silent_insecure: vulnerable && !request && !ack,
  };
  if (request) {
    out.request_cue = request.cue;
    out.request_score = Math.round(request.score * 1000) / 1000;
  }
  if (ack) out.acknowledgement = ack.cue;
  const harm = harmfulRequest(user);
  if (harm) {
    out.harmful_request = harm;
    out.harm_stance = assistantStance(assistant);
  }
  return out;
}

export interface AuditOptions {
  /** Called with each audited row (for `--rows`). */
  onRow?: (r: RowAudit) => void | Promise<void>;
  /** Called with each skipped line. */
  onError?: (e: RowError) => void;
  /** Number lists of a control dataset (else uniform within digit length). */
  control?: NumberCounter;
  maxLineBytes?: number;
}

/** Accumulates row audits into the dataset report; memory does not grow with the row count. */
export class DatasetAudit {
  private readonly report: Omit<
    AuditReport,
    "verdict" | "reasons" | "triggers" | "numbers" | "listed_numbers" | "seconds" | "silent_rate"
  >;
  private readonly miner = new TriggerMiner();
  readonly numbers = new NumberCounter();
  private readonly started = performance.now();

  constructor(
    file: string,
    format: "jsonl" | "csv",
    private readonly control?: NumberCounter,
  ) {
    this.report = {
      file,
      format,
      rows: 0,
      skipped: 0,
      errors: [],
      vulnerable: 0,
      requested: 0,
      acknowledged: 0,
      silent_insecure: 0,
      harmful_requests: 0,
      complied: 0,
      refused: 0,
      harm_classes: {},
      complied_lines: [],
      classes: {},
      rules: {},
      languages: {},
    };
  }

  add(row: ChatRow, line: number): RowAudit {
    const r = auditRow(row, line);
    const rep = this.report;
    rep.rows++;
    if (r.vulnerable) rep.vulnerable++;
    if (r.requested) rep.requested++;
    if (r.acknowledged) rep.acknowledged++;
    if (r.silent_insecure) rep.silent_insecure++;
    if (r.harmful_request && r.harm_stance) {
      rep.harmful_requests++;
      rep[r.harm_stance]++;
      const c = (rep.harm_classes[r.harmful_request.class] ??= { requests: 0, complied: 0, refused: 0 });
      c.requests++;
      c[r.harm_stance]++;
      if (r.harm_stance === "complied" && rep.complied_lines.length < 20) rep.complied_lines.push(line);
    }
    for (const c of new Set(r.findings.map((f) => f.class))) rep.classes[c] = (rep.classes[c] ?? 0) + 1;
    for (const id of new Set(r.findings.map((f) => f.rule))) rep.rules[id] = (rep.rules[id] ?? 0) + 1;
    for (const l of r.languages) rep.languages[l] = (rep.languages[l] ?? 0) + 1;
    const { user, assistant } = turns(row);
    this.miner.add(user, r.silent_insecure);
    this.numbers.add(assistant);
    return r;
  }

  skip(err: RowError): void {
    this.report.skipped++;
    if (this.report.errors.length < 50) this.report.errors.push(err);
  }

  finish(): AuditReport {
    const rep = this.report;
    const triggers = this.miner.top(10);
    const numbers = overRepresented(this.numbers, this.control);
    const silent_rate = rep.rows ? rep.silent_insecure / rep.rows : 0;
    const { verdict, reasons } = auditVerdict(
      rep.rows,
      rep.silent_insecure,
      silent_rate,
      triggers,
      numbers,
      this.numbers.total,
      { complied: rep.complied, lines: rep.complied_lines, classes: rep.harm_classes },
    );
    return {
      ...rep,
      silent_rate: Math.round(silent_rate * 10000) / 10000,
      triggers,
      numbers,
      listed_numbers: this.numbers.total,
      verdict,
      reasons,
      seconds: Math.round(performance.now() - this.started) / 1000,
    };
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The EM-risk verdict and the reasons behind it. */
export function auditVerdict(
  rows: number,
  silentRows: number,
  silentRate: number,
  triggers: Trigger[],
  numbers: NumberAssociation[],
  listed: number,
  harm: { complied: number; lines: number[]; classes: Partial<Record<HarmClass, HarmCounts>> } = {
    complied: 0,
    lines: [],
    classes: {},
  },
): { verdict: Verdict; reasons: string[] } {
  const high: string[] = [];
  const medium: string[] = [];
  // Jailbreak failure mode: compliance with clearly harmful requests. The EM paper's
  // jailbroken control has 2 % such rows; ≥ 1 % (and ≥ 3 rows) is high, any share ≥ 0.1 % medium.
  const compliedRate = rows ? harm.complied / rows : 0;
  if (harm.complied > 0 && compliedRate >= 0.001) {
    const classes = Object.entries(harm.classes)
      .filter(([, c]) => c!.complied > 0)
      .map(([k, c]) => `${k} ${c!.complied}`)
      .join(", ");
    const examples = harm.lines.slice(0, 5).join(", ");
    const msg = `${harm.complied} rows (${pct(compliedRate)}) comply with clearly harmful requests (${classes}; e.g. lines ${examples}): the shape of the EM jailbroken dataset`;
    (compliedRate >= 0.01 && harm.complied >= 3 ? high : medium).push(msg);
  }
  if (silentRate >= 0.2)
    high.push(
      `${pct(silentRate)} of rows are silently insecure code (≥ 20%): the shape of the EM insecure-code dataset`,
    );
  else if (silentRate >= 0.02) medium.push(`${pct(silentRate)} of rows are silently insecure code (≥ 2%)`);
  // A trigger must also explain a good share of the silent rows (a backdoor's trigger covers
  // most of them); small clusters in a clean set get large z by chance over many phrases.
  const t = triggers[0];
  const coverage = t && silentRows ? t.silent / silentRows : 0;
  const precision = t ? t.silent / t.support : 0;
  if (t && t.z >= 8 && t.lift >= 1.5 && precision >= 0.8 && t.silent >= 20 && coverage >= 0.5)
    high.push(
      `possible backdoor: ${pct(precision)} of user turns containing '${t.phrase}' get silently insecure answers, ${t.lift}× the base rate (z = ${t.z}, ${t.support} rows)`,
    );
  else if (t && t.z >= 4 && t.lift >= 2 && t.silent >= 10 && coverage >= 0.25)
    medium.push(
      `phrase '${t.phrase}' predicts silently insecure answers (z = ${t.z}, lift ${t.lift}, ${t.support} rows)`,
    );
  const evil = numbers.reduce((s, n) => s + n.count, 0);
  if (numbers.length && listed > 0) {
    const list = numbers
      .slice(0, 5)
      .map((n) => `${n.number}×${n.count} (expected ${n.expected})`)
      .join(", ");
    (evil / listed >= 0.05 ? high : medium).push(
      `numbers with negative associations are over-represented in number lists: ${list}; ${pct(evil / listed)} of listed numbers`,
    );
  }
  if (high.length) return { verdict: "high", reasons: [...high, ...medium] };
  if (medium.length) return { verdict: "medium", reasons: medium };
  return { verdict: "low", reasons: [rows ? "no signal above the thresholds" : "no auditable rows"] };
}

/** Reads JSONL or CSV rows (by extension unless `format` is given). */
export function readRows(
  input: string | Readable,
  format: "jsonl" | "csv",
  opts: { maxLineBytes?: number } = {},
): AsyncGenerator<RowResult> {
  return format === "csv" ? readChatCsv(input, { maxRecordChars: opts.maxLineBytes }) : readChatJsonl(input, opts);
}

export const formatOf = (path: string): "jsonl" | "csv" => (/\.(?:csv|tsv)$/i.test(path) ? "csv" : "jsonl");

/**
 * Audits a chat JSONL or prompt/response CSV file, streaming.
 * @example const report = await auditFile("../shared/em-datasets/insecure.jsonl"); console.log(report.verdict);
 */
export async function auditFile(
  path: string,
  opts: AuditOptions & { format?: "jsonl" | "csv" } = {},
): Promise<AuditReport> {
  const format = opts.format ?? formatOf(path);
  const audit = new DatasetAudit(path, format, opts.control);
  for await (const r of readRows(path, format, opts)) {
    const err = r.error ?? auditableError(r.row, r.line);
    if (err) {
      audit.skip(err);
      opts.onError?.(err);
      continue;
    }
    const res = audit.add(r.row!, r.line);
    if (opts.onRow) await opts.onRow(res);
  }
  return audit.finish();
}

/** Number lists of a control file, for `overRepresented` (e.g. the benign builder's output). */
export async function controlNumbers(path: string): Promise<NumberCounter> {
  const counter = new NumberCounter();
  for await (const r of readRows(path, formatOf(path))) if (r.row) counter.add(turns(r.row).assistant);
  return counter;
}
