/**
 * The report builder: escaping (no markup from answers or titles), the embedded data, the
 * plots each section gets, result-line shapes (demo and experiments), the CLI, and the size.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { main } from "../../src/cli/main.ts";
import {
  addAudit,
  addResultLines,
  addStoreRuns,
  buildReportHtml,
  DASHBOARD_CONTEXTS,
  DASHBOARD_TOKENS,
  emptyReport,
  escapeHtml,
  jsonForScript,
  latentHistogramPlot,
  openStoreReadOnly,
  type ReportData,
  readResultLines,
  reportPlots,
  writeDemoReport,
} from "../../src/report/index.ts";
import {
  AUDIT,
  DASHBOARD_LINES,
  DEMO_LINES,
  HOSTILE,
  HOSTILE_TOKEN,
  makeStore,
  QUESTIONS,
  STEER_LINES,
} from "./fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "emlab-report-test-"));
const storePath = makeStore(dir);

function embedded(html: string, id: string): unknown {
  const m = new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`).exec(html);
  assert.ok(m, `no ${id} block`);
  return JSON.parse(m[1]!);
}

describe("escaping", () => {
  test("escapeHtml and jsonForScript leave no markup", () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;");
    const s = jsonForScript({ a: "</script><!-- \u2028" });
    assert.ok(!s.includes("<"));
    assert.deepEqual(JSON.parse(s), { a: "</script><!-- \u2028" });
  });

  test("a hostile answer and title stay text: the only <script> tags are the page's own", () => {
    const data = emptyReport(`<img src=x onerror=alert(1)> title`);
    const db = openStoreReadOnly(storePath);
    addStoreRuns(data, db, "store", { examplesPerRun: 1000 });
    db.close();
    assert.ok(
      data.evaluation.examples.some((x) => x.answer === HOSTILE),
      "the hostile answer is among the examples",
    );
    const html = buildReportHtml(data, { withoutLibrary: true });
    assert.ok(!html.includes(HOSTILE));
    assert.ok(!html.includes("<img src=x"));
    assert.equal(html.match(/<script/g)!.length, 3, "data, plots and the page script");
    const back = embedded(html, "emlab-data") as ReportData;
    assert.ok(
      back.evaluation.examples.some((x) => x.answer === HOSTILE),
      "the answer survives as data",
    );
  });
});

describe("sections and plots", () => {
  test("a store gives both rates with CIs, per-question cells and examples", () => {
    const data = emptyReport();
    const db = openStoreReadOnly(storePath);
    addStoreRuns(data, db, "store", { examplesPerRun: 10 });
    db.close();
    assert.equal(data.evaluation.rows.length, 4);
    for (const r of data.evaluation.rows) {
      assert.ok(r.overAll, "the Turner rate");
      assert.ok(r.overCoherent.denominator! < r.overAll.denominator!, "coherent answers are fewer than all");
      assert.ok(r.overCoherent.low !== null && r.overCoherent.high !== null);
    }
    assert.equal(data.evaluation.heat.length, 4 * QUESTIONS.length);
    assert.equal(data.evaluation.examples.length, 40);
    const ids = reportPlots(data).map((p) => p.id);
    assert.deepEqual(ids, ["rates", "coherence", "heatmap"]);
    const rates = reportPlots(data)[0]!;
    assert.equal(rates.expect.count, 8, "two bars per run");
  });

  test("the demo's lines give condition rates, latent rankings, dose-response and ablation", () => {
    const data = emptyReport();
    addResultLines(data, DEMO_LINES, "demo");
    addAudit(data, AUDIT, "insecure");
    assert.equal(data.evaluation.rows.length, 4);
    assert.equal(data.evaluation.rows[1]!.overCoherent.rate, 0.43);
    assert.equal(data.interp.diff.length, 20);
    assert.ok(data.interp.diff.find((d) => d.ft === "insecure" && d.latent === 712)!.persona);
    assert.equal(data.interp.steer.length, 2);
    assert.equal(data.interp.steer[0]!.controlMax, 0.06);
    assert.deepEqual(
      data.interp.ablate.map((a) => [a.label, a.mode, a.after]),
      [
        ["blind pick #712", "mean", 0.1],
        ["blind pick #712", "zero", 0.08],
      ],
    );
    const plots = reportPlots(data);
    assert.deepEqual(
      plots.map((p) => [p.id, p.expect.count]),
      [
        ["rates", 4],
        ["coherence", 4],
        ["audit-classes", 4],
        ["latents-insecure", 10],
        ["latents-secure", 10],
        ["dose", 2],
        ["ablate", 4],
      ],
    );
  });

  test("emlab steer's lines give a sweep with its baseline, a control band along c, ablation and projection", () => {
    const data = emptyReport();
    addResultLines(data, STEER_LINES, "steer");
    assert.deepEqual(
      data.interp.curves.map((p) => [p.label, p.c, p.misaligned]),
      [["latent #712", 0, 0.02]],
    );
    assert.deepEqual(
      data.interp.steer.map((p) => [p.label, p.c, p.controlMax]),
      [
        ["latent #712", 0.2, 0.03],
        ["latent #712", 0.4, 0.04],
        ["latent #712", 0.6, 0.06],
      ],
    );
    assert.deepEqual(
      data.interp.ablate.map((a) => [a.label, a.mode, a.cut]),
      [
        ["latents #712,#986", "zero", 0.75],
        ["direction dir.json", "project out", 0.7],
      ],
    );
    const dose = reportPlots(data).find((p) => p.id === "dose")!;
    assert.equal(dose.expect.count, 4, "the baseline and three settings");
    const layers = (dose.spec.layer as { mark: { type: string } }[]).map((l) => l.mark.type);
    assert.deepEqual(layers, ["area", "line", "point"]);
  });

  test("the interp experiment's result lines give Δ rankings and sweep curves", () => {
    const data = emptyReport();
    addResultLines(data, readResultLines("experiments/interp/results/results.jsonl"), "interp");
    assert.ok(
      data.interp.diff.every((d) => d.delta !== null),
      "the ranking carries Δ",
    );
    assert.ok(data.interp.curves.length >= 10, "the c sweep");
    assert.ok(data.interp.ablate.some((a) => a.mode === "projectOut"));
  });

  test("a bad result line names its file and line", () => {
    const f = join(dir, "bad.jsonl");
    writeFileSync(f, '{"condition":"base"}\nnot json\n');
    assert.throws(() => readResultLines(f), /bad\.jsonl: line 2/);
  });
});

describe("writeDemoReport and emlab report", () => {
  test("the demo report with its store (4 runs × 400 answers) is one file under 5 MB with the library inside", () => {
    const file = join(dir, "demo", "report.html");
    const db = openStoreReadOnly(makeStore(mkdtempSync(join(tmpdir(), "emlab-demo-size-")), 50));
    const bytes = writeDemoReport(DEMO_LINES, file, { store: db, audits: [{ dataset: "insecure", report: AUDIT }] });
    db.close();
    assert.equal(bytes, statSync(file).size);
    assert.ok(bytes < 5 * 1024 * 1024);
    const html = readFileSync(file, "utf8");
    assert.ok(html.includes("vegaEmbed") && html.includes("vegaLite"), "vega-embed and vega-lite inlined");
    assert.equal(html.match(/Interactive Data Lab/g)?.length, 3, "each bundle keeps its BSD-3 notice");
    assert.ok(!/<script[^>]+src=/.test(html), "no external script");
    assert.ok(!/<link[^>]+href=/.test(html), "no external style sheet");
    const data = embedded(html, "emlab-data") as ReportData;
    // The store's rows replace the condition lines: both rates for each of the four runs.
    assert.equal(data.evaluation.rows.length, 4);
    assert.ok(data.evaluation.rows.every((r) => r.overAll !== null));
    assert.equal(data.interp.steer.length, 2);
  });

  test("emlab report writes the file; an unknown run is an error", async () => {
    const out = join(dir, "cli.html");
    const log = console.log;
    const err = console.error;
    let printed = "";
    console.log = (s: string) => void (printed += s);
    console.error = (s: string) => void (printed += s);
    try {
      const ok = await main([
        "report",
        "--store",
        storePath,
        "organism:insecure:s0:none",
        "--results",
        "experiments/organism/results/demo.jsonl",
        "-o",
        out,
        "--json",
      ]);
      assert.equal(ok, 0, printed);
      const line = JSON.parse(printed) as { runs: string[] };
      assert.equal(line.runs[0], "organism:insecure:s0:none");
      assert.ok(statSync(out).size > 500_000);
      assert.equal(await main(["report", "--store", storePath, "--run-id", "nope", "-o", out]), 1);
      assert.equal(await main(["report", "-o", out]), 2);
    } finally {
      console.log = log;
      console.error = err;
    }
  });
});

describe("latent dashboards", () => {
  test("a dashboard line gives a card: histogram bars from its bins, capped contexts, lens, nearest", () => {
    const data = emptyReport();
    addResultLines(data, [...DEMO_LINES, ...DASHBOARD_LINES], "demo");
    const cards = data.interp.dashboards;
    assert.deepEqual(
      cards.map((c) => [c.latent, c.pick, c.isPersona]),
      [
        [712, "blind", true],
        [986, "truth", false],
      ],
    );
    const c = cards[0]!;
    assert.equal(c.contexts.length, DASHBOARD_CONTEXTS);
    assert.ok(c.contexts.every((x) => x.tokens.length === DASHBOARD_TOKENS));
    // The window keeps the strongest token.
    assert.ok(c.contexts[0]!.tokens.some((t) => t.text === HOSTILE_TOKEN && t.act === 3.8));
    assert.deepEqual(
      c.logitLens.top.map((t) => t.text),
      [" evil", " villain"],
    );
    assert.deepEqual(c.nearest[0], { latent: 13, cosine: 0.41 });

    const plot = latentHistogramPlot(c)!;
    assert.equal(plot.expect.count, 8, "one bar per bin");
    assert.equal((plot.spec.data as { values: unknown[] }).values.length, 8);
    assert.match(plot.caption, /fires on 11\.\d % of 2000 tokens/);
    const plots = reportPlots(data).filter((p) => p.latent !== undefined);
    assert.deepEqual(
      plots.map((p) => p.id),
      ["latent-712-hist", "latent-986-hist"],
    );

    // The same latent picked twice: one card naming both picks.
    addResultLines(data, [{ ...DASHBOARD_LINES[0]!, pick: "truth" }], "again");
    assert.equal(data.interp.dashboards.length, 2);
    assert.equal(data.interp.dashboards[0]!.pick, "blind, truth");
  });

  test("token texts stay data: no markup from a hostile token reaches the page", () => {
    const data = emptyReport();
    addResultLines(data, DASHBOARD_LINES, "demo");
    const html = buildReportHtml(data, { withoutLibrary: true });
    assert.ok(!html.includes(HOSTILE_TOKEN));
    assert.ok(!html.includes("</td><b>"));
    assert.ok(!html.includes("<img"));
    assert.equal(html.match(/<script/g)!.length, 3);
    const back = embedded(html, "emlab-data") as ReportData;
    assert.equal(back.interp.dashboards[0]!.contexts[0]!.tokens.filter((t) => t.text === HOSTILE_TOKEN).length, 1);
    // The page builds token spans as text nodes (el() → createTextNode), never innerHTML.
    assert.ok(html.includes("function latentCard("));
    assert.ok(!/innerHTML/.test(html));
  });

  test("a report with many dashboards stays small", () => {
    const data = emptyReport();
    const many = Array.from({ length: 40 }, (_, i) => ({ ...DASHBOARD_LINES[0]!, latent: i }));
    addResultLines(data, many, "many");
    const bytes = buildReportHtml(data, { withoutLibrary: true }).length;
    assert.ok(bytes < 1_000_000, `${bytes} bytes for 40 dashboards`);
  });
});
