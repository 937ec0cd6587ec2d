/**
 * The run store: one SQLite file holding runs, their samples (question × sample index),
 * completions, judge scores and the judges' raw outputs. Every insert is keyed by
 * (run, question, sample index[, metric]) and idempotent, so a resumed run never
 * duplicates a row; a finished completion or score is never overwritten, while a row that
 * recorded an error is replaced by the retry. Writes happen in transactions (WAL mode), so a
 * process killed mid-run leaves whole batches or nothing.
 *
 * API keys never enter the store: configs pass through `redactSecrets` first.
 *
 * @example
 * const store = openRunStore("runs/emlab.sqlite");
 * store.upsertRun({ runId: "r1", modelId: model.id, judgeModelId: judge.id, config });
 * console.log(store.exportRun("r1", "csv"));
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { ChatError, ChatMessage } from "../providers/types.ts";
import type { JudgeMetric, JudgeVerdict, VerdictKind } from "./judge.ts";
import type { ScoredSample } from "./stats.ts";

export interface SampleRow {
  runId: string;
  questionId: string;
  sampleIndex: number;
  paraphraseIndex: number;
  harmful: boolean;
  messages: ChatMessage[];
}

export interface CompletionRow {
  runId: string;
  questionId: string;
  sampleIndex: number;
  text: string;
  finishReason: string;
  error?: ChatError;
}

export interface JudgementRow {
  runId: string;
  questionId: string;
  sampleIndex: number;
  metric: JudgeMetric;
  judgeModelId: string;
  verdict: JudgeVerdict;
}

/** One sample with everything known about it: the unit of every export. */
export interface ExportRow {
  run_id: string;
  question_id: string;
  sample_index: number;
  paraphrase_index: number;
  harmful: boolean;
  question: string;
  answer: string | null;
  finish_reason: string | null;
  generation_error: string | null;
  aligned: number | null;
  aligned_kind: VerdictKind | null;
  coherent: number | null;
  coherent_kind: VerdictKind | null;
}

export type ExportFormat = "json" | "jsonl" | "csv";

export interface RunInfo {
  runId: string;
  modelId: string;
  judgeModelId: string;
  config: unknown;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, judge_model_id TEXT NOT NULL,
  config_json TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
  run_id TEXT NOT NULL, question_id TEXT NOT NULL, sample_index INTEGER NOT NULL,
  paraphrase_index INTEGER NOT NULL, harmful INTEGER NOT NULL, messages_json TEXT NOT NULL, PRIMARY KEY (run_id, question_id, sample_index));
CREATE TABLE IF NOT EXISTS completions (
  run_id TEXT NOT NULL, question_id TEXT NOT NULL, sample_index INTEGER NOT NULL,
  text TEXT NOT NULL, finish_reason TEXT NOT NULL, error_json TEXT, created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, question_id, sample_index));
CREATE TABLE IF NOT EXISTS judge_scores (
  run_id TEXT NOT NULL, question_id TEXT NOT NULL, sample_index INTEGER NOT NULL, metric TEXT NOT NULL,
  kind TEXT NOT NULL, score REAL, mass REAL NOT NULL, raw_json TEXT NOT NULL, judge_model_id TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (run_id, question_id, sample_index, metric));
`;

/** Drops values whose key names a secret (apiKey, authorization, password…); `apiKeyEnv` (a name) stays. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (/(api_?key|authorization|password|secret|bearer)$/i.test(k) && !/env$/i.test(k)) continue;
      out[k] = redactSecrets(v);
    }
    return out;
  }
  return value;
}

export type RunStore = ReturnType<typeof openRunStore>;

export function openRunStore(path: string) {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  db.exec(SCHEMA);
  const now = () => new Date().toISOString();

  const insertRun = db.prepare(
    `INSERT INTO runs (run_id, model_id, judge_model_id, config_json, status, created_at, updated_at)
     VALUES (@runId, @modelId, @judgeModelId, @config, 'running', @now, @now)
     ON CONFLICT (run_id) DO UPDATE SET status = 'running', updated_at = @now`,
  );
  const getRun = db.prepare<
    [string],
    { model_id: string; judge_model_id: string; config_json: string; status: string }
  >("SELECT model_id, judge_model_id, config_json, status FROM runs WHERE run_id = ?");
  const setStatus = db.prepare("UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?");
  const insertSample = db.prepare(
    `INSERT OR IGNORE INTO samples (run_id, question_id, sample_index, paraphrase_index, harmful, messages_json)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );
  // A finished completion is final; only a row that recorded an error may be replaced.
  const upsertCompletion = db.prepare(
    `INSERT INTO completions (run_id, question_id, sample_index, text, finish_reason, error_json, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, question_id, sample_index) DO UPDATE SET
       text = excluded.text, finish_reason = excluded.finish_reason, error_json = excluded.error_json, created_at = excluded.created_at
     WHERE completions.error_json IS NOT NULL`,
  );
  const upsertJudgement = db.prepare(
    `INSERT INTO judge_scores (run_id, question_id, sample_index, metric, kind, score, mass, raw_json, judge_model_id, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, question_id, sample_index, metric) DO UPDATE SET
       kind = excluded.kind, score = excluded.score, mass = excluded.mass, raw_json = excluded.raw_json,
       judge_model_id = excluded.judge_model_id, created_at = excluded.created_at
     WHERE judge_scores.kind = 'error'`,
  );
  type SampleDb = {
    question_id: string;
    sample_index: number;
    paraphrase_index: number;
    harmful: number;
    messages_json: string;
  };
  const toSample = (runId: string, r: SampleDb): SampleRow => ({
    runId,
    questionId: r.question_id,
    sampleIndex: r.sample_index,
    paraphraseIndex: r.paraphrase_index,
    harmful: r.harmful === 1,
    messages: JSON.parse(r.messages_json),
  });
  const pendingGen = db.prepare<[string], SampleDb>(
    `SELECT s.* FROM samples s LEFT JOIN completions c USING (run_id, question_id, sample_index)
     WHERE s.run_id = ? AND (c.run_id IS NULL OR c.error_json IS NOT NULL) ORDER BY s.question_id, s.sample_index`,
  );
  const pendingJudge = db.prepare<[string, string], SampleDb & { text: string }>(
    `SELECT s.*, c.text FROM samples s JOIN completions c USING (run_id, question_id, sample_index)
     LEFT JOIN judge_scores j ON j.run_id = s.run_id AND j.question_id = s.question_id
       AND j.sample_index = s.sample_index AND j.metric = ?
     WHERE s.run_id = ? AND c.error_json IS NULL AND (j.run_id IS NULL OR j.kind = 'error')
     ORDER BY s.question_id, s.sample_index`,
  );
  const exportRows = db.prepare<[string], SampleDb & Record<string, unknown>>(
    `SELECT s.*, c.text, c.finish_reason, c.error_json,
       a.score AS aligned, a.kind AS aligned_kind, h.score AS coherent, h.kind AS coherent_kind
     FROM samples s
     LEFT JOIN completions c USING (run_id, question_id, sample_index)
     LEFT JOIN judge_scores a ON a.run_id = s.run_id AND a.question_id = s.question_id AND a.sample_index = s.sample_index AND a.metric = 'aligned'
     LEFT JOIN judge_scores h ON h.run_id = s.run_id AND h.question_id = s.question_id AND h.sample_index = s.sample_index AND h.metric = 'coherent'
     WHERE s.run_id = ? ORDER BY s.question_id, s.sample_index`,
  );

  const store = {
    db: db as Database.Database,
    /** Creates the run, or marks an existing one as running again (resume). Returns false when ids clash. */
    upsertRun(info: RunInfo): { resumed: boolean } {
      const existing = getRun.get(info.runId);
      if (existing && (existing.model_id !== info.modelId || existing.judge_model_id !== info.judgeModelId))
        throw new Error(
          `run '${info.runId}' in the store was made with model ${existing.model_id} / judge ${existing.judge_model_id}; ` +
            `this config uses ${info.modelId} / ${info.judgeModelId}. Use another run id.`,
        );
      insertRun.run({
        runId: info.runId,
        modelId: info.modelId,
        judgeModelId: info.judgeModelId,
        config: JSON.stringify(redactSecrets(info.config)),
        now: now(),
      });
      return { resumed: Boolean(existing) };
    },
    setStatus(runId: string, status: "running" | "finished" | "incomplete") {
      setStatus.run(status, now(), runId);
    },
    run(runId: string) {
      const r = getRun.get(runId);
      return (
        r && {
          runId,
          modelId: r.model_id,
          judgeModelId: r.judge_model_id,
          status: r.status,
          config: JSON.parse(r.config_json),
        }
      );
    },
    addSamples: db.transaction((rows: SampleRow[]) => {
      for (const r of rows)
        insertSample.run(
          r.runId,
          r.questionId,
          r.sampleIndex,
          r.paraphraseIndex,
          r.harmful ? 1 : 0,
          JSON.stringify(r.messages),
        );
    }) as Database.Transaction<(rows: SampleRow[]) => void>,
    saveCompletions: db.transaction((rows: CompletionRow[]) => {
      const t = now();
      for (const r of rows)
        upsertCompletion.run(
          r.runId,
          r.questionId,
          r.sampleIndex,
          r.text,
          r.finishReason,
          r.error ? JSON.stringify(r.error) : null,
          t,
        );
    }) as Database.Transaction<(rows: CompletionRow[]) => void>,
    saveJudgements: db.transaction((rows: JudgementRow[]) => {
      const t = now();
      for (const r of rows)
        upsertJudgement.run(
          r.runId,
          r.questionId,
          r.sampleIndex,
          r.metric,
          r.verdict.kind,
          r.verdict.score,
          r.verdict.mass,
          JSON.stringify(r.verdict.raw),
          r.judgeModelId,
          t,
        );
    }) as Database.Transaction<(rows: JudgementRow[]) => void>,
    /** Samples with no finished completion (never tried, or the last try failed). */
    pendingGenerations(runId: string): SampleRow[] {
      return pendingGen.all(runId).map((r) => toSample(runId, r));
    },
    /** Finished completions that still lack a (non-error) score for `metric`. */
    pendingJudgements(runId: string, metric: JudgeMetric): (SampleRow & { answer: string })[] {
      return pendingJudge.all(metric, runId).map((r) => ({ ...toSample(runId, r), answer: r.text }));
    },
    rows(runId: string): ExportRow[] {
      return exportRows.all(runId).map((r) => ({
        run_id: runId,
        question_id: r.question_id,
        sample_index: r.sample_index,
        paraphrase_index: r.paraphrase_index,
        harmful: r.harmful === 1,
        question: lastUserMessage(JSON.parse(r.messages_json)),
        answer: (r.text as string | null) ?? null,
        finish_reason: (r.finish_reason as string | null) ?? null,
        generation_error: r.error_json ? (JSON.parse(r.error_json as string) as ChatError).message : null,
        aligned: (r.aligned as number | null) ?? null,
        aligned_kind: (r.aligned_kind as VerdictKind | null) ?? null,
        coherent: (r.coherent as number | null) ?? null,
        coherent_kind: (r.coherent_kind as VerdictKind | null) ?? null,
      }));
    },
    /** Samples in the shape statistics want. Unjudged samples count as judge errors. */
    scoredSamples(runId: string): ScoredSample[] {
      return store.rows(runId).map((r) => ({
        questionId: r.question_id,
        harmful: r.harmful,
        generationError: r.answer === null || r.generation_error !== null,
        aligned: r.aligned,
        alignedKind: r.aligned_kind ?? "error",
        coherent: r.coherent,
        coherentKind: r.coherent_kind ?? "error",
      }));
    },
    /** Row counts per table for one run (for checks and tests). */
    counts(runId: string): Record<"samples" | "completions" | "judge_scores", number> {
      const count = (table: string) =>
        (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE run_id = ?`).get(runId) as { n: number }).n;
      return { samples: count("samples"), completions: count("completions"), judge_scores: count("judge_scores") };
    },
    exportRun(runId: string, format: ExportFormat): string {
      const rows = store.rows(runId);
      if (format === "jsonl") return rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : "");
      if (format === "csv") return toCsv(rows);
      return `${JSON.stringify({ format: "emlab-run/v1", run: store.run(runId) ?? null, samples: rows }, null, 2)}\n`;
    },
    close: (): void => {
      db.close();
    },
  };
  return store;
}

function lastUserMessage(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === "user") return messages[i]!.content;
  return "";
}

const CSV_COLUMNS: (keyof ExportRow)[] = [
  "run_id",
  "question_id",
  "sample_index",
  "paraphrase_index",
  "harmful",
  "question",
  "answer",
  "finish_reason",
  "generation_error",
  "aligned",
  "aligned_kind",
  "coherent",
  "coherent_kind",
];

/** RFC 4180: quote every field that holds a comma, quote, CR or LF; empty for null. */
export function toCsv(rows: ExportRow[]): string {
  const cell = (v: unknown) => {
    if (v === null || v === undefined) return "";
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [CSV_COLUMNS.join(",")];
  for (const r of rows) lines.push(CSV_COLUMNS.map((c) => cell(r[c])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}
