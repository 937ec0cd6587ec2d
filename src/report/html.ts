/**
 * The report page: one self-contained HTML file (no network: the plotting library is inlined
 * and the data sits in a <script type="application/json"> block). Sections: evaluation
 * (rates with both denominators, coherence, per-question heatmap, filterable example answers),
 * audit (numbers, class breakdown, top triggers) and interpretability (latent ranking,
 * steering dose–response with the control band, ablation before/after, latent dashboards:
 * histogram, top contexts shaded by activation, logit lens, nearest latents).
 *
 * @example
 * const data = emptyReport("my model");
 * addStoreRuns(data, openStoreReadOnly("runs/emlab.sqlite"), "runs/emlab.sqlite");
 * writeFileSync("report.html", buildReportHtml(data));
 */
import { escapeHtml, inlineScript, jsonForScript, vegaBundle } from "./assets.ts";
import type { ReportData } from "./data.ts";
import { PAGE_CSS, PAGE_HELPERS } from "./page-common.ts";
import { reportPlots } from "./specs.ts";

/** Renders tables, plots and the example-answer browser from the embedded data. */
const REPORT_SCRIPT = `
const DATA = JSON.parse(document.getElementById("emlab-data").textContent);
const PLOTS = JSON.parse(document.getElementById("emlab-plots").textContent);
window.emlabPlots = { total: PLOTS.length, rendered: 0, failed: 0 };

function plotBox(p) {
  const box = el("div", { class: "plot", id: "plot-" + p.id, "data-plot": p.id, "data-mark": p.expect.mark, "data-marks": p.expect.count },
    el("h3", {}, p.title), el("div", { class: "chart" }), el("div", { class: "caption" }, p.caption));
  return box;
}

function renderEvaluation(root) {
  const ev = DATA.evaluation;
  if (!ev.rows.length) { root.append(el("p", { class: "empty" }, "No evaluation runs in this report.")); return; }
  root.append(table(
    ["run / condition", "model", "misaligned / coherent (Betley)", "95% CI", "misaligned / all (Turner)", "95% CI", "coherent", "answers"],
    ev.rows.map((r) => [r.id, r.model, pct(r.overCoherent.rate) + (r.overCoherent.numerator !== null ? " (" + r.overCoherent.numerator + "/" + r.overCoherent.denominator + ")" : ""),
      ci(r.overCoherent), r.overAll ? pct(r.overAll.rate) + " (" + r.overAll.numerator + "/" + r.overAll.denominator + ")" : "–", r.overAll ? ci(r.overAll) : "–", pct(r.coherent), r.n]),
    [false, false, true, true, true, true, true, true]));
  if (ev.rows.some((r) => !r.overAll))
    root.append(el("p", { class: "count" }, "Rows from result lines carry the Betley rate only; the Turner rate needs the run store."));
}

function renderExamples(root) {
  const ex = DATA.evaluation.examples;
  if (!ex.length) return;
  root.append(el("h3", {}, "Example answers"));
  const opts = (xs) => [el("option", { value: "" }, "all")].concat([...new Set(xs)].sort().map((x) => el("option", { value: x }, x)));
  const run = el("select", { id: "f-run", "aria-label": "run" }, opts(ex.map((x) => x.run)));
  const question = el("select", { id: "f-question", "aria-label": "question" }, opts(ex.map((x) => x.questionId)));
  const verdict = el("select", { id: "f-verdict", "aria-label": "verdict" }, opts(ex.map((x) => x.verdict)));
  const search = el("input", { id: "f-search", type: "search", placeholder: "search questions and answers" });
  const count = el("span", { class: "count", id: "f-count" });
  const out = el("div", { id: "examples" });
  root.append(el("div", { class: "controls" }, "run ", run, " question ", question, " verdict ", verdict, search, count), out);
  const LIMIT = 30;
  function update() {
    const q = search.value.trim().toLowerCase();
    const rows = ex.filter((x) => (!run.value || x.run === run.value) && (!question.value || x.questionId === question.value) &&
      (!verdict.value || x.verdict === verdict.value) && (!q || (x.question + "\\n" + x.answer).toLowerCase().includes(q)));
    count.textContent = rows.length + " of " + ex.length + " shown answers (" + DATA.evaluation.examplesTotal + " in the runs)";
    clear(out).append(table(["run", "question", "answer", "aligned", "coherent", "verdict"],
      rows.slice(0, LIMIT).map((x) => [x.run, el("span", { title: x.question }, x.questionId + " #" + x.sampleIndex),
        el("div", { class: "answer" }, x.answer), fmt(x.aligned), fmt(x.coherent), el("span", { class: "verdict-" + x.verdict }, x.verdict)]),
      [false, false, false, true, true, false]));
    out.querySelectorAll("tbody tr").forEach((tr) => tr.classList.add("example"));
    if (rows.length > LIMIT) out.append(el("p", { class: "count" }, (rows.length - LIMIT) + " more: narrow the filter"));
  }
  for (const c of [run, question, verdict]) c.addEventListener("change", update);
  search.addEventListener("input", update);
  update();
}

function renderAudit(root) {
  if (!DATA.audit.length) { root.append(el("p", { class: "empty" }, "No audit reports in this report.")); return; }
  const share = (a, n) => a.rows ? n + " (" + pct(n / a.rows) + ")" : String(n);
  root.append(table(["dataset", "rows", "vulnerable", "requested", "acknowledged", "silent insecure", "verdict"],
    DATA.audit.map((a) => [a.dataset, a.rows, share(a, a.vulnerable), share(a, a.requested), share(a, a.acknowledged), share(a, a.silentInsecure), a.verdict]),
    [false, true, true, true, true, true, false]));
  for (const a of DATA.audit) {
    if (!a.triggers.length) continue;
    root.append(el("h3", {}, "Top triggers: " + a.dataset),
      table(["phrase", "z", "rows", "silent insecure", "lift"], a.triggers.map((t) => [t.phrase, fmt(t.z), t.support, t.silent, fmt(t.lift, 2)]), [false, true, true, true, true]));
  }
}

function renderInterp(root) {
  const ip = DATA.interp;
  if (!ip.diff.length && !ip.steer.length && !ip.curves.length && !ip.ablate.length && !ip.dashboards.length) {
    root.append(el("p", { class: "empty" }, "No interpretability results in this report.")); return;
  }
  if (ip.steer.length) root.append(el("h3", {}, "Steering"), table(["setting", "c", "misaligned", "coherent", "controls", "controls ≤", "percentile"],
    ip.steer.map((s) => [s.label, fmt(s.c, 2), pct(s.misaligned), pct(s.coherent), s.controls === null ? "–" : s.controls, pct(s.controlMax), fmt(s.percentile, 0)]),
    [false, true, true, true, true, true, true]));
  if (ip.ablate.length) root.append(el("h3", {}, "Ablation"), table(["latent", "mode", "before", "after", "cut", "controls cut ≤", "coherent after"],
    ip.ablate.map((a) => [a.label, a.mode, pct(a.before), pct(a.after), pct(a.cut), pct(a.controlMax), pct(a.coherentAfter)]),
    [false, false, true, true, true, true, true]));
}

function renderDashboards(root) {
  const cards = DATA.interp.dashboards;
  if (!cards.length) return;
  root.append(el("h3", { id: "dashboards" }, "Latent dashboards"));
  for (const d of cards) {
    const p = PLOTS.find((x) => x.latent === d.latent);
    root.append(latentCard(d, p ? plotBox(p) : null));
  }
}

async function renderPlots() {
  for (const p of PLOTS) {
    const box = document.getElementById("plot-" + p.id);
    try {
      await vegaEmbed(box.querySelector(".chart"), p.spec, { renderer: "svg", actions: false });
      box.setAttribute("data-rendered", "true");
      window.emlabPlots.rendered++;
    } catch (e) {
      window.emlabPlots.failed++;
      box.querySelector(".chart").append(el("p", { class: "error" }, "plot failed: " + e.message));
      console.error("emlab plot " + p.id + ": " + e.message);
    }
  }
  document.body.setAttribute("data-plots-done", "true");
}

for (const s of ["evaluation", "audit", "interp"]) {
  const root = document.getElementById("sec-" + s);
  const body = el("div");
  if (s === "evaluation") renderEvaluation(body);
  if (s === "audit") renderAudit(body);
  if (s === "interp") renderInterp(body);
  root.append(body);
  for (const p of PLOTS.filter((p) => p.section === s && p.latent === undefined)) root.append(plotBox(p));
  if (s === "evaluation") renderExamples(root);
  if (s === "interp") renderDashboards(root);
}
renderPlots();
`;

export interface HtmlOptions {
  /** Omit the plotting library (for unit tests that only look at the markup). */
  withoutLibrary?: boolean;
}

/** The whole page as one string. All text from the data is escaped or rendered as text. */
export function buildReportHtml(data: ReportData, opts: HtmlOptions = {}): string {
  const plots = reportPlots(data);
  const lib = opts.withoutLibrary ? { scripts: [], versions: {} } : vegaBundle();
  const libNote = Object.entries(lib.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="emlab report">
<title>${escapeHtml(data.title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(data.title)}</h1>
<div class="meta">generated ${escapeHtml(data.generated)} by emlab · sources: ${escapeHtml(data.sources.join(", ") || "none")}${libNote ? ` · plots: ${escapeHtml(libNote)} (BSD-3-Clause)` : ""}</div>
<nav><a href="#evaluation">Evaluation</a><a href="#audit">Audit</a><a href="#interp">Interpretability</a></nav>
</header>
<main>
<section id="evaluation"><h2>Evaluation</h2><div id="sec-evaluation"></div></section>
<section id="audit"><h2>Data audit</h2><div id="sec-audit"></div></section>
<section id="interp"><h2>Interpretability</h2><div id="sec-interp"></div></section>
</main>
<script type="application/json" id="emlab-data">${jsonForScript(data)}</script>
<script type="application/json" id="emlab-plots">${jsonForScript(plots)}</script>
${lib.scripts.map((s) => `<script>${s}</script>`).join("\n")}
<script>${inlineScript(PAGE_HELPERS + REPORT_SCRIPT)}</script>
</body>
</html>
`;
}
