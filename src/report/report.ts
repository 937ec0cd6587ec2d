/**
 * Writing reports: from run stores, result files and audit reports (`emlab report`), and the
 * demo's report from its JSON lines (`writeDemoReport`, called by `emlab demo`).
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { RunStore } from "../eval/store.ts";
import { type AuditReportLike, addAudit, addResultLines, addStoreRuns, emptyReport, type ReportData } from "./data.ts";
import { buildReportHtml } from "./html.ts";
import { listRuns, openStoreReadOnly, type StoreDb } from "./runs.ts";

/** The largest report the builder writes without complaint (the demo's must stay under it). */
export const REPORT_SIZE_LIMIT = 5 * 1024 * 1024;

/** Reads a JSONL result file; a bad line is an error naming the file and line. */
export function readResultLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .map((s, i) => [s.trim(), i + 1] as const)
    .filter(([s]) => s.length > 0)
    .map(([s, line]) => {
      try {
        const v = JSON.parse(s) as unknown;
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
        return v as Record<string, unknown>;
      } catch (e) {
        throw new Error(`${file}: line ${line}: ${(e as Error).message}`);
      }
    });
}

export interface ReportSources {
  title?: string;
  /** Run stores (SQLite files), opened read-only. */
  stores?: string[];
  /** Runs to take from the stores (default: all of them). */
  runIds?: string[];
  /** JSONL result files (the demo's --out, experiments' results/*.jsonl). */
  results?: string[];
  /** Audit reports (`emlab audit --report FILE`). */
  audits?: string[];
  examplesPerRun?: number;
}

/** Collects everything the sources hold into one ReportData. */
export function collectReport(src: ReportSources): ReportData {
  const data = emptyReport(src.title ?? "emlab report");
  for (const path of src.stores ?? []) {
    const db = openStoreReadOnly(path);
    try {
      const have = new Set(listRuns(db).map((r) => r.runId));
      const runIds = src.runIds ? src.runIds.filter((id) => have.has(id)) : undefined;
      addStoreRuns(data, db, path, { runIds, examplesPerRun: src.examplesPerRun });
    } finally {
      db.close();
    }
  }
  if (src.runIds) {
    const found = new Set(data.evaluation.rows.map((r) => r.id));
    const missing = src.runIds.filter((id) => !found.has(id));
    if (missing.length)
      throw new Error(`no run ${missing.map((m) => `'${m}'`).join(", ")} in ${src.stores?.join(", ") || "the stores"}`);
  }
  for (const path of src.results ?? []) addResultLines(data, readResultLines(path), path);
  for (const path of src.audits ?? []) {
    const r = JSON.parse(readFileSync(path, "utf8")) as AuditReportLike;
    addAudit(data, r);
    data.sources.push(path);
  }
  return data;
}

/** Writes the page; returns its size in bytes. */
export function writeReportHtml(data: ReportData, file: string): number {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, buildReportHtml(data));
  return statSync(file).size;
}

export interface DemoReportOptions {
  title?: string;
  /** The demo's run store: adds both rates, the per-question heatmap and example answers. */
  store?: RunStore | StoreDb;
  /** Which of its runs (default: the organism condition runs, `organism:<condition>[:s<seed>]:none`, plain format). */
  runIds?: string[];
  /** Audit reports of the demo's stage 1, with a name per dataset. */
  audits?: { dataset: string; report: AuditReportLike }[];
  examplesPerRun?: number;
}

/**
 * The demo's report: its JSON lines (conditions, diff, steer, ablate) plus, when given, its
 * run store and audit reports. Returns the file's size in bytes.
 * @example
 * const bytes = writeDemoReport(lines, "emlab-demo/report.html", { store, audits });
 */
export function writeDemoReport(lines: Record<string, unknown>[], file: string, opts: DemoReportOptions = {}): number {
  return writeLinesReport(lines, file, {
    ...opts,
    title: opts.title ?? "emlab demo: emergent misalignment in the model organism",
  });
}

/**
 * A report from a command's JSON lines (`emlab steer --json`'s baseline / steer / ablate /
 * project-out lines, the demo's, an experiment's), with the same options as the demo's.
 * @example
 * writeLinesReport(lines, values.report, { title: "emlab steer", store });
 */
export function writeLinesReport(lines: Record<string, unknown>[], file: string, opts: DemoReportOptions = {}): number {
  const data = emptyReport(opts.title ?? "emlab report");
  for (const a of opts.audits ?? []) addAudit(data, a.report, a.dataset);
  if (opts.store) {
    const db: StoreDb = "db" in opts.store ? opts.store.db : opts.store;
    const runIds =
      opts.runIds ??
      listRuns(db)
        .map((r) => r.runId)
        .filter((id) => /^organism:[^:]+(:s\d+)?:none$/.test(id));
    addStoreRuns(data, db, "the run store", { runIds, examplesPerRun: opts.examplesPerRun ?? 100 });
    // The store's rows replace the condition lines (same runs, both rates); keep the other lines.
    addResultLines(
      data,
      lines.filter((l) => typeof l.condition !== "string" || runIds.length === 0),
      "the JSON lines",
    );
  } else addResultLines(data, lines, "the JSON lines");
  return writeReportHtml(data, file);
}
