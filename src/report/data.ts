/**
 * The report's data model and the collectors that fill it: evaluation runs from a run store
 * (both rates with CIs, per-question rates, example answers), result lines (the demo's and
 * the experiments' JSONL: organism conditions, diff, steer, ablate) and audit reports.
 * Everything here is plain JSON: it is embedded in the page and rendered there.
 */

import { misalignmentSummary } from "../eval/stats.ts";
import { listRuns, runSamples, type SampleView, type StoreDb, summariseRun, toScored, verdictOf } from "./runs.ts";

export interface Rate {
  rate: number | null;
  low: number | null;
  high: number | null;
  numerator: number | null;
  denominator: number | null;
}

/** One model or condition: the Betley rate (over coherent answers) and, from a store, the Turner rate. */
export interface EvalRow {
  id: string;
  model: string;
  source: string;
  overCoherent: Rate;
  overAll: Rate | null;
  /** Coherent answers / judged answers. */
  coherent: number | null;
  n: number;
}

export interface HeatCell {
  run: string;
  question: string;
  rate: number | null;
  misaligned: number;
  coherent: number;
  samples: number;
}

export interface ExampleAnswer {
  run: string;
  questionId: string;
  sampleIndex: number;
  question: string;
  answer: string;
  aligned: number | null;
  coherent: number | null;
  verdict: string;
}

export interface AuditEntry {
  dataset: string;
  rows: number;
  vulnerable: number;
  requested: number;
  acknowledged: number;
  silentInsecure: number;
  verdict: string;
  reasons: string[];
  classes: Record<string, number>;
  triggers: { phrase: string; z: number; support: number; lift: number; silent: number }[];
}

export interface DiffLatent {
  ft: string;
  latent: number;
  rank: number;
  /** Δ mean activation base → fine-tune; null when the line gave only the ranking. */
  delta: number | null;
  persona: boolean;
}

export interface SteerPoint {
  label: string;
  latent: number | null;
  c: number;
  misaligned: number | null;
  coherent: number | null;
  controls: number | null;
  controlMax: number | null;
  percentile: number | null;
}

export interface CurvePoint {
  label: string;
  c: number;
  misaligned: number | null;
  coherent: number | null;
}

export interface AblateRow {
  label: string;
  mode: string;
  before: number | null;
  after: number | null;
  coherentAfter: number | null;
  cut: number | null;
  controlMax: number | null;
}

/** One latent's dashboard (src/interp/dashboard.ts's LatentDashboard), trimmed for the page. */
export interface LatentCard {
  latent: number;
  /** Who picked it: "blind", "truth", or both joined ("blind, truth"); null when the line names none. */
  pick: string | null;
  isPersona: boolean;
  hook: string;
  histogram: {
    edges: number[];
    counts: number[];
    total: number | null;
    fractionZero: number | null;
    firingFrequency: number | null;
    maxActivation: number | null;
  };
  /** At most DASHBOARD_CONTEXTS contexts of at most DASHBOARD_TOKENS tokens around each maximum. */
  contexts: { text: string; maxActivation: number; tokens: { text: string; act: number }[] }[];
  logitLens: { top: { text: string; logit: number }[]; bottom: { text: string; logit: number }[] };
  nearest: { latent: number; cosine: number }[];
}

/** Caps that keep a report with many dashboards small. */
export const DASHBOARD_CONTEXTS = 10;
export const DASHBOARD_TOKENS = 20;
const DASHBOARD_LIST = 10;

export interface ReportData {
  title: string;
  generated: string;
  sources: string[];
  evaluation: { rows: EvalRow[]; heat: HeatCell[]; examples: ExampleAnswer[]; examplesTotal: number };
  audit: AuditEntry[];
  interp: {
    diff: DiffLatent[];
    steer: SteerPoint[];
    curves: CurvePoint[];
    ablate: AblateRow[];
    dashboards: LatentCard[];
  };
}

export function emptyReport(title = "emlab report"): ReportData {
  return {
    title,
    generated: new Date().toISOString(),
    sources: [],
    evaluation: { rows: [], heat: [], examples: [], examplesTotal: 0 },
    audit: [],
    interp: { diff: [], steer: [], curves: [], ablate: [], dashboards: [] },
  };
}

// ---- run stores ------------------------------------------------------------------------------

export interface StoreOptions {
  /** Runs to include (default: every run in the store). */
  runIds?: string[];
  /** Example answers kept per run (default 120; misaligned ones first). Bounds the file size. */
  examplesPerRun?: number;
  /** Longest answer text kept, characters (default 1500). */
  maxAnswerChars?: number;
  /** Bootstrap replicates per CI (default 1000). */
  replicates?: number;
}

/** Adds the store's runs: both rates with CIs, per-question rates and example answers. */
export function addStoreRuns(data: ReportData, db: StoreDb, source: string, opts: StoreOptions = {}): void {
  const known = listRuns(db);
  const ids = opts.runIds ?? known.map((r) => r.runId);
  for (const runId of ids) {
    const info = known.find((r) => r.runId === runId);
    if (!info)
      throw new Error(`${source}: no run '${runId}' (runs: ${known.map((r) => r.runId).join(", ") || "none"})`);
    const samples = runSamples(db, runId);
    const s = opts.replicates
      ? misalignmentSummary(toScored(samples), { seed: 0, replicates: opts.replicates })
      : summariseRun(db, runId);
    data.evaluation.rows.push({
      id: runId,
      model: info.modelId,
      source,
      overCoherent: s.overCoherent,
      overAll: s.overAll,
      coherent: s.counts.judged > 0 ? s.counts.coherent / s.counts.judged : null,
      n: s.counts.samples,
    });
    for (const q of s.perQuestion)
      data.evaluation.heat.push({
        run: runId,
        question: q.questionId,
        rate: q.rate,
        misaligned: q.misaligned,
        coherent: q.coherent,
        samples: q.samples,
      });
    const picked = pickExamples(samples, opts.examplesPerRun ?? 120);
    data.evaluation.examplesTotal += samples.length;
    const max = opts.maxAnswerChars ?? 1500;
    for (const x of picked)
      data.evaluation.examples.push({
        run: runId,
        questionId: x.questionId,
        sampleIndex: x.sampleIndex,
        question: x.question,
        answer: clip(x.answer ?? x.error ?? "", max),
        aligned: x.aligned,
        coherent: x.coherent,
        verdict: verdictOf(x),
      });
  }
  data.sources.push(source);
}

/** Misaligned answers first (up to half the budget), then an even spread over the rest. */
function pickExamples(samples: SampleView[], budget: number): SampleView[] {
  if (samples.length <= budget) return samples;
  const bad = samples.filter((s) => verdictOf(s) === "misaligned").slice(0, Math.floor(budget / 2));
  const rest = samples.filter((s) => !bad.includes(s));
  const need = budget - bad.length;
  const step = rest.length / need;
  const spread = Array.from({ length: need }, (_, i) => rest[Math.floor(i * step)]!);
  return [...bad, ...spread].sort((a, b) => a.questionId.localeCompare(b.questionId) || a.sampleIndex - b.sampleIndex);
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)} …[${s.length - max} more characters]` : s;
}

// ---- audit reports ----------------------------------------------------------------------------

/**
 * The fields of an audit report (src/data/audit's AuditReport, `emlab audit --report FILE`)
 * that the report shows. Declared here because report/ does not import data/ (the layer rule).
 */
export interface AuditReportLike {
  file: string;
  rows: number;
  vulnerable: number;
  requested: number;
  acknowledged: number;
  silent_insecure: number;
  verdict: string;
  reasons?: string[];
  classes?: Partial<Record<string, number>>;
  triggers?: { phrase: string; z: number; support: number; lift: number; silent: number }[];
}

/** Adds an audit report (`emlab audit --report FILE`'s JSON, or auditFile's result). */
export function addAudit(data: ReportData, r: AuditReportLike, dataset?: string): void {
  data.audit.push({
    dataset: dataset ?? r.file,
    rows: r.rows,
    vulnerable: r.vulnerable,
    requested: r.requested,
    acknowledged: r.acknowledged,
    silentInsecure: r.silent_insecure,
    verdict: String(r.verdict),
    reasons: r.reasons ?? [],
    classes: Object.fromEntries(Object.entries(r.classes ?? {}).map(([k, v]) => [k, Number(v)])),
    triggers: (r.triggers ?? []).slice(0, 10).map((t) => ({ ...t })),
  });
}

// ---- result lines -----------------------------------------------------------------------------

type Line = Record<string, unknown>;
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown, fallback: string): string => (typeof v === "string" ? v : fallback);

/**
 * Adds result lines: organism condition lines {condition, trigger, misaligned, ci, coherent, n},
 * the demo's {stage: diff | steer | ablate, …} lines and the interp experiment's
 * {stage, result} lines, and {stage: "dashboard", latent, pick, is_persona, …LatentDashboard}
 * lines. Unknown lines are skipped.
 */
export function addResultLines(data: ReportData, lines: Line[], source: string): void {
  // `emlab steer --json` prints {stage: "baseline"} before its sweep: the sweep's point at c = 0.
  let baseline: Line | null = null;
  for (const l of lines) {
    if (typeof l.condition === "string") addCondition(data, l, source);
    else if (l.stage === "diff") addDiff(data, l);
    else if (l.stage === "baseline") baseline = l;
    else if (l.stage === "steer") {
      if (baseline && !isObj(l.result)) {
        const label = steerLabel(l);
        data.interp.curves.push({
          label,
          c: 0,
          misaligned: num(baseline.misaligned),
          coherent: num(baseline.coherent),
        });
        baseline = null;
      }
      addSteer(data, l);
    } else if (l.stage === "ablate" || l.stage === "project-out") addAblate(data, l);
    else if (l.stage === "dashboard") addDashboard(data, isObj(l.result) ? { ...l, ...l.result } : l);
    else if (l.stage === "direction" && isObj(l.result) && isObj(l.result.steer))
      addSteer(data, { stage: "steer", result: l.result.steer });
  }
  data.sources.push(source);
}

function isObj(v: unknown): v is Line {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function addCondition(data: ReportData, l: Line, source: string): void {
  const parts = [l.condition as string];
  if (l.trigger === true) parts.push("trigger");
  if (typeof l.format === "string" && l.format !== "plain") parts.push(l.format);
  if (typeof l.seed === "number") parts.push(`s${l.seed}`);
  const ci = Array.isArray(l.ci) ? l.ci : [];
  const n = num(l.n) ?? 0;
  const coherent = num(l.coherent);
  data.evaluation.rows.push({
    id: parts.join(" · "),
    model: "organism",
    source,
    overCoherent: {
      rate: num(l.misaligned),
      low: num(ci[0]),
      high: num(ci[1]),
      numerator: null,
      denominator: coherent === null ? null : Math.round(coherent * n),
    },
    overAll: null,
    coherent,
    n,
  });
}

function addDiff(data: ReportData, l: Line): void {
  const push = (ft: string, top: unknown, deltas: unknown, persona: number | null) => {
    if (!Array.isArray(top)) return;
    // One ranking per fine-tune: a later line with deltas replaces one without.
    const old = data.interp.diff.filter((d) => d.ft === ft);
    if (old.length && (old[0]!.delta !== null || !Array.isArray(deltas))) return;
    data.interp.diff = data.interp.diff.filter((d) => d.ft !== ft);
    top.forEach((latent, i) => {
      data.interp.diff.push({
        ft,
        latent: Number(latent),
        rank: i + 1,
        delta: Array.isArray(deltas) ? num(deltas[i]) : null,
        persona: persona !== null && Number(latent) === persona,
      });
    });
  };
  if (isObj(l.result)) {
    for (const d of Object.values(l.result)) {
      if (!isObj(d) || !Array.isArray(d.sites)) continue;
      const site = (d.sites as Line[]).find((s) => s.site === d.primarySite) ?? (d.sites[0] as Line);
      push(str(d.ft, "fine-tune"), site?.top ?? d.top, site?.topDelta, num(d.personaLatent));
    }
    return;
  }
  push(str(l.ft, "fine-tune"), l.top, l.top_delta, num(l.persona_latent));
}

function pickLabel(l: Line, latent: number | null): string {
  const who = typeof l.pick === "string" ? `${l.pick} pick` : "latent";
  return latent === null ? who : `${who} #${latent}`;
}

/** Who was steered or ablated: a pick (demo), a direction file, one latent or several. */
function steerLabel(l: Line): string {
  if (typeof l.direction === "string") return `direction ${l.direction}`;
  if (Array.isArray(l.latent)) return `latents ${l.latent.map((x) => `#${x}`).join(",")}`;
  return pickLabel(l, num(l.latent));
}

function addSteer(data: ReportData, l: Line): void {
  if (isObj(l.result)) {
    const r = l.result;
    const label = str(r.target, "steering");
    const base = isObj(r.baseline) ? r.baseline : null;
    if (base) data.interp.curves.push({ label, c: 0, misaligned: num(base.misaligned), coherent: num(base.coherent) });
    for (const p of Array.isArray(r.points) ? (r.points as Line[]) : [])
      data.interp.curves.push({ label, c: num(p.c) ?? 0, misaligned: num(p.misaligned), coherent: num(p.coherent) });
    const max = num(r.randomMisalignedMax);
    const c = num(r.controlC) ?? num(isObj(r.best) ? r.best.c : null);
    if (max !== null && c !== null)
      data.interp.steer.push({
        label: `${label} (controls at c ${c})`,
        latent: null,
        c,
        misaligned: num(isObj(r.best) ? r.best.misaligned : null),
        coherent: num(isObj(r.best) ? r.best.coherent : null),
        controls: Array.isArray(r.random) ? r.random.length : null,
        controlMax: max,
        percentile: null,
      });
    return;
  }
  const latent = num(l.latent);
  data.interp.steer.push({
    label: steerLabel(l),
    latent,
    c: num(l.c) ?? 0,
    misaligned: num(l.misaligned),
    coherent: num(l.coherent),
    controls: num(l.controls),
    controlMax: num(l.control_max) ?? num(l.random_misaligned_max),
    percentile: num(l.percentile),
  });
}

function addAblate(data: ReportData, l: Line): void {
  const rows = data.interp.ablate;
  const add = (row: AblateRow) => {
    if (!rows.some((r) => r.label === row.label && r.mode === row.mode)) rows.push(row);
  };
  if (isObj(l.result)) {
    const r = l.result;
    const label = `latent #${num(r.latent) ?? "?"}`;
    const before = isObj(r.before) ? num(r.before.misaligned) : null;
    const randomZero = Array.isArray(r.randomZero) ? (r.randomZero as Line[]) : [];
    const controlMax = randomZero.length ? Math.max(...randomZero.map((x) => num(x.reduction) ?? -Infinity)) : null;
    for (const mode of ["zero", "mean", "projectOut"]) {
      const m = r[mode];
      if (!isObj(m)) continue;
      add({
        label,
        mode,
        before,
        after: num(m.misaligned),
        coherentAfter: num(m.coherent),
        cut: num(m.reduction),
        controlMax: mode === "zero" ? controlMax : null,
      });
    }
    return;
  }
  const label = steerLabel(l);
  const before = num(l.misaligned_before);
  const cut = (after: number | null) => (before && after !== null ? 1 - after / before : null);
  const after = num(l.misaligned_after);
  add({
    label,
    mode: l.stage === "project-out" ? "project out" : str(l.mode, "mean"),
    before,
    after,
    coherentAfter: num(l.coherent_after),
    cut: num(l.cut) ?? num(l.reduction) ?? cut(after),
    controlMax: num(l.control_max),
  });
  const zero = num(l.zero_misaligned_after);
  if (zero !== null)
    add({
      label,
      mode: "zero",
      before,
      after: zero,
      coherentAfter: num(l.zero_coherent_after),
      cut: cut(zero),
      controlMax: null,
    });
}

const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The window of at most `max` tokens around the strongest one. */
function tokenWindow(tokens: { text: string; act: number }[], max: number): { text: string; act: number }[] {
  if (tokens.length <= max) return tokens;
  let at = 0;
  tokens.forEach((t, i) => {
    if (t.act > tokens[at]!.act) at = i;
  });
  const start = Math.max(0, Math.min(at - Math.floor(max / 2), tokens.length - max));
  return tokens.slice(start, start + max);
}

/** A dashboard line: one card per latent (a latent both picks chose gets one card, both picks named). */
function addDashboard(data: ReportData, l: Line): void {
  const latent = num(l.latent);
  if (latent === null) return;
  const pick = typeof l.pick === "string" ? l.pick : null;
  const old = data.interp.dashboards.find((d) => d.latent === latent);
  if (old) {
    if (pick && !(old.pick ?? "").split(", ").includes(pick)) old.pick = old.pick ? `${old.pick}, ${pick}` : pick;
    old.isPersona ||= l.is_persona === true;
    return;
  }
  const h = isObj(l.histogram) ? l.histogram : {};
  const tokens = (v: unknown) =>
    arr(v)
      .filter(isObj)
      .map((t) => ({ text: str(t.text, ""), act: num(t.act) ?? 0 }));
  const lens = isObj(l.logitLens) ? l.logitLens : {};
  const lensList = (v: unknown) =>
    arr(v)
      .filter(isObj)
      .slice(0, DASHBOARD_LIST)
      .map((t) => ({ text: str(t.text, String(t.token ?? "")), logit: num(t.logit) ?? 0 }));
  data.interp.dashboards.push({
    latent,
    pick,
    isPersona: l.is_persona === true,
    hook: str(l.hook, ""),
    histogram: {
      edges: arr(h.edges).map((x) => num(x) ?? 0),
      counts: arr(h.counts).map((x) => num(x) ?? 0),
      total: num(h.total),
      fractionZero: num(h.fractionZero),
      firingFrequency: num(h.firingFrequency),
      maxActivation: num(h.maxActivation),
    },
    contexts: arr(l.topContexts)
      .filter(isObj)
      .slice(0, DASHBOARD_CONTEXTS)
      .map((c) => ({
        text: clip(str(c.text, ""), 400),
        maxActivation: num(c.maxActivation) ?? 0,
        tokens: tokenWindow(tokens(c.tokens), DASHBOARD_TOKENS).map((t) => ({ ...t, text: clip(t.text, 40) })),
      })),
    logitLens: { top: lensList(lens.top), bottom: lensList(lens.bottom) },
    nearest: arr(l.nearest)
      .filter(isObj)
      .slice(0, DASHBOARD_LIST)
      .flatMap((n) => {
        const id = num(n.latent);
        return id === null ? [] : [{ latent: id, cosine: num(n.cosine) ?? 0 }];
      }),
  });
}
