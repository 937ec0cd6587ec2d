/**
 * `emlab view`: a local, read-only web app over a run store and result files (node:http, no
 * framework). Routes are a fixed table; nothing is read from disk by URL, so no path can
 * traverse. Rules, each tested:
 *   - GET only: any other method gets 405 (nothing here changes anything);
 *   - the Host header must name this server as localhost or 127.0.0.1 (with its port): a page
 *     on another site cannot reach it through DNS rebinding (403 otherwise);
 *   - the store is opened read-only (`readonly` + `query_only`): the viewer never writes.
 * Binds 127.0.0.1 unless told otherwise: there is no authentication.
 *
 *   GET /                          the page (runs, run detail, samples, compare; deep links in the hash)
 *   GET /assets/<name>.js          the page's scripts (Vega bundles, the app), from memory
 *   GET /api/runs                  runs with both rates and CIs (+ rows from result files)
 *   GET /api/run?id=ID             one run: summary and per-question rates
 *   GET /api/samples?run=&question=&verdict=&q=&offset=&limit=   answers, filtered; q = full-text
 *   GET /api/sample?run=&question=&index=                         one answer
 *   GET /api/compare?a=ID&b=ID&over=coherent|all                  rate(a) − rate(b) with a paired bootstrap CI
 *   GET /api/results               the result files as report data (conditions, diff, steer, ablate, dashboards)
 *   GET /api/latent?id=J           one latent's dashboard and its histogram's plot
 *
 * @example
 * const v = await startViewer({ store: "runs/emlab.sqlite", port: 0 });
 * console.log(v.url); await v.close();
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { differenceCi, type MisalignmentSummary, misalignmentSummary, rateClusters } from "../../eval/stats.ts";
import { vegaBundle } from "../assets.ts";
import { addResultLines, emptyReport, type ReportData } from "../data.ts";
import { readResultLines } from "../report.ts";
import {
  listRuns,
  openStoreReadOnly,
  runSamples,
  type SampleView,
  type StoreDb,
  toScored,
  verdictOf,
} from "../runs.ts";
import { latentHistogramPlot } from "../specs.ts";
import { VIEWER_APP_JS, viewerPageHtml } from "./page.ts";

export interface ViewerOptions {
  /** A run store (SQLite), opened read-only. */
  store?: string;
  /** JSONL result files shown beside the runs. */
  results?: string[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** One line per request (method, path, status); never headers. */
  log?: (line: string) => void;
}

export interface Viewer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const ALLOWED_HOSTS = new Set(["localhost", "127.0.0.1"]);

/** Whether a Host header names this server (localhost or 127.0.0.1, with our port or none). */
export function hostAllowed(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const m = /^([a-z0-9.]+)(?::(\d+))?$/i.exec(host.trim());
  if (!m) return false;
  return ALLOWED_HOSTS.has(m[1]!.toLowerCase()) && (m[2] === undefined || Number(m[2]) === port);
}

export async function startViewer(opts: ViewerOptions): Promise<Viewer> {
  const db = opts.store ? openStoreReadOnly(opts.store) : null;
  const results = emptyReport("results");
  for (const f of opts.results ?? []) addResultLines(results, readResultLines(f), f);
  const api = viewerApi(db, results);
  const lib = vegaBundle();
  const assets = new Map<string, string>([
    ["/assets/vega.js", lib.scripts[0]!],
    ["/assets/vega-lite.js", lib.scripts[1]!],
    ["/assets/vega-embed.js", lib.scripts[2]!],
    ["/assets/app.js", VIEWER_APP_JS],
  ]);
  const page = viewerPageHtml({ store: opts.store ?? null, results: opts.results ?? [] });
  let port = 0;

  const server = http.createServer((req, res) => {
    let status = 200;
    const send = (code: number, type: string, body: string) => {
      status = code;
      res.writeHead(code, {
        "content-type": type,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "content-security-policy":
          "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      });
      res.end(body);
    };
    try {
      if (req.method !== "GET") {
        res.setHeader("allow", "GET");
        throw new HttpError(405, `method ${req.method} not allowed: the viewer is read-only`);
      }
      if (!hostAllowed(req.headers.host, port)) throw new HttpError(403, "forbidden host");
      const url = new URL(req.url ?? "/", "http://localhost");
      const path = url.pathname;
      if (path === "/" || path === "/index.html") return send(200, "text/html; charset=utf-8", page);
      const asset = assets.get(path);
      if (asset !== undefined) return send(200, "text/javascript; charset=utf-8", asset);
      const handler = api.get(path);
      if (!handler) throw new HttpError(404, "not found");
      return send(200, "application/json; charset=utf-8", JSON.stringify(handler(url.searchParams)));
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message);
      send(err.status, "application/json; charset=utf-8", JSON.stringify({ error: err.message }));
    } finally {
      opts.log?.(`${req.method} ${(req.url ?? "").slice(0, 200)} ${status}`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", resolve);
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          db?.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

type Handler = (q: URLSearchParams) => unknown;

/** The JSON API over one read-only store and the result files' data. */
function viewerApi(db: StoreDb | null, results: ReportData): Map<string, Handler> {
  // Summaries cost a bootstrap each: cache them until the run changes (a run still being written).
  const cache = new Map<string, { key: string; samples: SampleView[]; summary: MisalignmentSummary }>();
  const runs = () => (db ? listRuns(db) : []);
  const progress = db
    ? db.prepare(
        `SELECT (SELECT COUNT(*) FROM completions WHERE run_id = ?) AS c,
                (SELECT COUNT(*) FROM judge_scores WHERE run_id = ?) AS j`,
      )
    : null;
  const load = (id: string | null) => {
    if (!id) throw new HttpError(400, "missing run id");
    const info = runs().find((r) => r.runId === id);
    if (!info || !db || !progress) throw new HttpError(404, `no run '${id}'`);
    // A run being written gains completions and scores without touching its row in `runs`.
    const rows = progress.get(id, id) as { c: number; j: number };
    const key = `${info.updatedAt}|${info.samples}|${rows.c}|${rows.j}`;
    let hit = cache.get(id);
    if (!hit || hit.key !== key) {
      const samples = runSamples(db, id);
      hit = { key, samples, summary: misalignmentSummary(toScored(samples), { seed: 0, replicates: 1000 }) };
      cache.set(id, hit);
    }
    return { info, ...hit };
  };
  const brief = (s: MisalignmentSummary) => ({ overCoherent: s.overCoherent, overAll: s.overAll, counts: s.counts });
  const sampleJson = (s: SampleView) => ({ ...s, verdict: verdictOf(s) });
  const intParam = (q: URLSearchParams, name: string, fallback: number, max: number) => {
    const v = q.get(name);
    if (v === null || v === "") return fallback;
    if (!/^\d+$/.test(v)) throw new HttpError(400, `${name} must be a non-negative integer`);
    return Math.min(Number(v), max);
  };

  return new Map<string, Handler>([
    ["/api/runs", () => ({ runs: runs().map((r) => ({ ...r, ...brief(load(r.runId).summary) })) })],
    [
      "/api/run",
      (q) => {
        const r = load(q.get("id"));
        return { ...r.info, ...brief(r.summary), perQuestion: r.summary.perQuestion };
      },
    ],
    [
      "/api/samples",
      (q) => {
        const r = load(q.get("run"));
        const question = q.get("question") || null;
        const verdict = q.get("verdict") || null;
        const text = (q.get("q") ?? "").trim().toLowerCase();
        const hits = r.samples
          .map(sampleJson)
          .filter(
            (s) =>
              (!question || s.questionId === question) &&
              (!verdict || s.verdict === verdict) &&
              (!text || `${s.question}\n${s.answer ?? ""}`.toLowerCase().includes(text)),
          );
        const offset = intParam(q, "offset", 0, 1e9);
        const limit = intParam(q, "limit", 100, 500);
        return {
          total: hits.length,
          offset,
          questions: [...new Set(r.samples.map((s) => s.questionId))],
          samples: hits.slice(offset, offset + limit),
        };
      },
    ],
    [
      "/api/sample",
      (q) => {
        const r = load(q.get("run"));
        const index = intParam(q, "index", -1, 1e9);
        const s = r.samples.find((x) => x.questionId === q.get("question") && x.sampleIndex === index);
        if (!s) throw new HttpError(404, "no such sample");
        return sampleJson(s);
      },
    ],
    [
      "/api/compare",
      (q) => {
        const a = load(q.get("a"));
        const b = load(q.get("b"));
        const over = q.get("over") === "all" ? "all" : "coherent";
        const diff = differenceCi(
          rateClusters(toScored(a.samples), over, a.summary.thresholds),
          rateClusters(toScored(b.samples), over, b.summary.thresholds),
          { seed: 0, replicates: 1000 },
        );
        const rate = (s: MisalignmentSummary) => (over === "all" ? s.overAll : s.overCoherent);
        return { a: a.info.runId, b: b.info.runId, over, rateA: rate(a.summary), rateB: rate(b.summary), ...diff };
      },
    ],
    ["/api/results", () => results],
    [
      "/api/latent",
      (q) => {
        const id = q.get("id") ?? "";
        if (!/^\d+$/.test(id)) throw new HttpError(400, "id must be a latent number");
        const dashboard = results.interp.dashboards.find((d) => d.latent === Number(id));
        if (!dashboard) throw new HttpError(404, `no dashboard for latent ${id}`);
        return { dashboard, plot: latentHistogramPlot(dashboard) };
      },
    ],
  ]);
}
