/**
 * The viewer's one page and its script. Views live in the URL hash, so every view is a deep
 * link: #/ (runs), #/run?id=ID, #/samples?run=ID&question=&verdict=&q=, #/sample?run=&question=&index=,
 * #/compare?a=ID&b=ID&over=coherent|all, #/latents (dashboards in the result files), #/latent?id=J. Scripts are served from /assets/ (the CSP allows
 * only this origin); text enters the DOM as text.
 */
import { escapeHtml } from "../assets.ts";
import { PAGE_CSS, PAGE_HELPERS } from "../page-common.ts";

export function viewerPageHtml(o: { store: string | null; results: string[] }): string {
  const sources = [o.store ? `store ${o.store}` : "no store", ...o.results.map((r) => `results ${r}`)].join(" · ");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>emlab view</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
<h1>emlab view</h1>
<div class="meta">read-only · ${escapeHtml(sources)}</div>
<nav><a href="#/">Runs</a><a href="#/samples">Samples</a><a href="#/compare">Compare</a><a href="#/latents">Latents</a></nav>
</header>
<main id="app"><p class="empty">loading…</p></main>
<script src="/assets/vega.js"></script>
<script src="/assets/vega-lite.js"></script>
<script src="/assets/vega-embed.js"></script>
<script src="/assets/app.js"></script>
</body>
</html>
`;
}

const APP = `
const app = document.getElementById("app");
window.emlabView = { view: null, ready: false, hash: null, plots: 0 };

async function api(path, params) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  const res = await fetch(path + (qs.toString() ? "?" + qs : ""));
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}
function link(view, params, text) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  return el("a", { href: "#/" + view + (qs.toString() ? "?" + qs : ""), class: "link" }, text);
}
function rateCell(r) { return r && r.rate !== null ? pct(r.rate) + " " + ci(r) + " (" + r.numerator + "/" + r.denominator + ")" : "–"; }
async function plot(box, id, spec, mark, count) {
  const div = el("div", { class: "plot", "data-plot": id, "data-mark": mark, "data-marks": count }, el("div", { class: "chart" }));
  box.append(div);
  await vegaEmbed(div.firstChild, spec, { renderer: "svg", actions: false });
  div.setAttribute("data-rendered", "true");
  window.emlabView.plots++;
}
const PCT = { format: ".0%" };

async function viewRuns() {
  const [{ runs }, results] = await Promise.all([api("/api/runs"), api("/api/results")]);
  app.append(el("h2", {}, "Runs"));
  if (!runs.length) app.append(el("p", { class: "empty" }, "No runs in the store."));
  else {
    app.append(table(["run", "model", "status", "answers", "misaligned / coherent (Betley)", "misaligned / all (Turner)", ""],
      runs.map((r) => [link("run", { id: r.runId }, r.runId), r.modelId, r.status, r.samples, rateCell(r.overCoherent), rateCell(r.overAll),
        link("samples", { run: r.runId }, "samples")]), [false, false, false, true, true, true, false]));
    const values = runs.filter((r) => r.overCoherent.rate !== null).map((r) => ({ run: r.runId, rate: r.overCoherent.rate, low: r.overCoherent.low, high: r.overCoherent.high }));
    if (values.length) await plot(app, "runs-rates", { $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: "container", height: 220, data: { values },
      encoding: { x: { field: "run", type: "nominal", sort: null, title: null, axis: { labelAngle: -20, labelLimit: 220 } } },
      layer: [{ mark: { type: "bar", tooltip: true }, encoding: { y: { field: "rate", type: "quantitative", axis: PCT, title: "misaligned / coherent" } } },
        { mark: { type: "rule" }, encoding: { y: { field: "low", type: "quantitative" }, y2: { field: "high" } } }] }, "rect", values.length);
  }
  const rows = results.evaluation.rows;
  if (rows.length) {
    app.append(el("h2", {}, "Result files"), table(["condition", "source", "misaligned / coherent", "95% CI", "coherent", "answers"],
      rows.map((r) => [r.id, r.source, pct(r.overCoherent.rate), ci(r.overCoherent), pct(r.coherent), r.n]), [false, false, true, true, true, true]));
  }
}

async function viewRun(p) {
  const r = await api("/api/run", { id: p.get("id") });
  app.append(el("h2", {}, "Run " + r.runId),
    table(["model", "judge", "status", "misaligned / coherent (Betley)", "misaligned / all (Turner)", "answers"],
      [[r.modelId, r.judgeModelId, r.status, rateCell(r.overCoherent), rateCell(r.overAll), r.counts.samples]]),
    el("p", {}, link("samples", { run: r.runId }, "browse its answers"), " · ", link("compare", { a: r.runId }, "compare with another run")),
    el("h3", {}, "Per question"),
    table(["question", "answers", "coherent", "misaligned", "rate", "95% CI (Wilson)", "mean aligned"],
      r.perQuestion.map((q) => [link("samples", { run: r.runId, question: q.questionId }, q.questionId), q.samples, q.coherent, q.misaligned, pct(q.rate), ci(q), fmt(q.meanAligned)]),
      [false, true, true, true, true, true, true]));
  const values = r.perQuestion.map((q) => ({ question: q.questionId, rate: q.rate === null ? 0 : q.rate }));
  if (values.length) await plot(app, "run-questions", { $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: "container", height: { step: 20 }, data: { values },
    mark: { type: "bar", tooltip: true }, encoding: { y: { field: "question", type: "nominal", sort: null, title: null }, x: { field: "rate", type: "quantitative", axis: PCT, title: "misaligned / coherent" } } }, "rect", values.length);
}

async function viewSamples(p) {
  const { runs } = await api("/api/runs");
  app.append(el("h2", {}, "Samples"));
  if (!runs.length) { app.append(el("p", { class: "empty" }, "No runs in the store.")); return; }
  const run = p.get("run") || runs[0].runId;
  const res = await api("/api/samples", { run, question: p.get("question"), verdict: p.get("verdict"), q: p.get("q"), offset: p.get("offset"), limit: 100 });
  const sel = (id, label, values, current) => el("select", { id, "aria-label": label }, values.map(([v, t]) => el("option", { value: v, selected: v === (current || "") ? "selected" : null }, t)));
  const fRun = sel("s-run", "run", runs.map((r) => [r.runId, r.runId]), run);
  const fQ = sel("s-question", "question", [["", "all questions"]].concat(res.questions.map((q) => [q, q])), p.get("question"));
  const fV = sel("s-verdict", "verdict", [["", "all verdicts"], ...["misaligned", "aligned", "incoherent", "code", "refusal", "unscored", "error"].map((v) => [v, v])], p.get("verdict"));
  const fText = el("input", { id: "s-search", type: "search", placeholder: "full-text search", value: p.get("q") || "" });
  const go = () => { location.hash = "#/samples?" + new URLSearchParams(Object.entries({ run: fRun.value, question: fQ.value, verdict: fV.value, q: fText.value.trim() }).filter(([, v]) => v)); };
  for (const c of [fRun, fQ, fV]) c.addEventListener("change", go);
  fText.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  const searchButton = el("button", { id: "s-go", type: "button" }, "search");
  searchButton.addEventListener("click", go);
  app.append(el("div", { class: "controls" }, fRun, fQ, fV, fText, searchButton, el("span", { class: "count", id: "s-count" }, res.total + " answers")));
  app.append(table(["question", "answer", "aligned", "coherent", "verdict"], res.samples.map((s) => [
    link("sample", { run: s.runId, question: s.questionId, index: s.sampleIndex }, s.questionId + " #" + s.sampleIndex),
    el("div", { class: "answer" }, s.answer === null ? "(no answer: " + s.error + ")" : s.answer), fmt(s.aligned), fmt(s.coherent),
    el("span", { class: "verdict-" + s.verdict }, s.verdict)]), [false, false, true, true, false]));
  app.querySelectorAll("tbody tr").forEach((tr) => tr.classList.add("sample-row"));
  const offset = Number(p.get("offset") || 0);
  if (offset + res.samples.length < res.total) {
    const next = new URLSearchParams(p); next.set("offset", String(offset + 100));
    app.append(el("p", {}, el("a", { href: "#/samples?" + next, class: "link" }, "next 100")));
  }
}

async function viewSample(p) {
  const s = await api("/api/sample", { run: p.get("run"), question: p.get("question"), index: p.get("index") });
  app.append(el("h2", {}, "Sample " + s.questionId + " #" + s.sampleIndex),
    el("p", {}, "run ", link("run", { id: s.runId }, s.runId)),
    table(["", ""], [["question", el("div", { class: "answer" }, s.question)], ["answer", el("div", { class: "answer", id: "sample-answer" }, s.answer === null ? "(none)" : s.answer)],
      ["aligned", fmt(s.aligned) + (s.alignedKind ? " (" + s.alignedKind + ")" : "")], ["coherent", fmt(s.coherent) + (s.coherentKind ? " (" + s.coherentKind + ")" : "")],
      ["verdict", el("span", { class: "verdict-" + s.verdict, id: "sample-verdict" }, s.verdict)]]));
}

async function viewCompare(p) {
  const { runs } = await api("/api/runs");
  app.append(el("h2", {}, "Compare two runs"));
  if (runs.length < 2) { app.append(el("p", { class: "empty" }, "Comparing needs two runs in the store.")); return; }
  const opts = (cur) => runs.map((r) => el("option", { value: r.runId, selected: r.runId === cur ? "selected" : null }, r.runId));
  const a = el("select", { id: "c-a", "aria-label": "run A" }, opts(p.get("a") || runs[0].runId));
  const b = el("select", { id: "c-b", "aria-label": "run B" }, opts(p.get("b") || runs[1].runId));
  const over = el("select", { id: "c-over", "aria-label": "denominator" },
    [["coherent", "over coherent answers (Betley)"], ["all", "over all answers (Turner)"]].map(([v, t]) => el("option", { value: v, selected: v === p.get("over") ? "selected" : null }, t)));
  const button = el("button", { id: "c-go", type: "button" }, "compare");
  button.addEventListener("click", () => { location.hash = "#/compare?" + new URLSearchParams({ a: a.value, b: b.value, over: over.value }); });
  app.append(el("div", { class: "controls" }, "A ", a, " B ", b, over, button));
  if (!p.get("a") || !p.get("b")) return;
  const c = await api("/api/compare", { a: p.get("a"), b: p.get("b"), over: p.get("over") });
  app.append(el("div", { id: "compare-result" }, table(["", "rate", "95% CI"], [
    ["A: " + c.a, pct(c.rateA.rate), ci(c.rateA)], ["B: " + c.b, pct(c.rateB.rate), ci(c.rateB)],
    [el("b", {}, "A − B"), el("b", { id: "compare-diff" }, c.difference === null ? "–" : (c.difference >= 0 ? "+" : "") + (100 * c.difference).toFixed(1) + " pts"),
      c.low === null ? "–" : "[" + (100 * c.low).toFixed(1) + ", " + (100 * c.high).toFixed(1) + "] pts"]]),
    el("p", { class: "count" }, "paired bootstrap over questions (1000 replicates); " + (c.over === "all" ? "over all judged answers (Turner)" : "over coherent answers (Betley)"))));
}

async function viewLatents() {
  const { interp } = await api("/api/results");
  app.append(el("h2", {}, "Latents"));
  if (!interp.dashboards.length) { app.append(el("p", { class: "empty" }, "No latent dashboards in the result files.")); return; }
  app.append(table(["latent", "pick", "persona", "hook", "fires on", "promotes"], interp.dashboards.map((d) => [
    link("latent", { id: d.latent }, "#" + d.latent), d.pick || "–", d.isPersona ? "the persona latent" : "", d.hook,
    pct(d.histogram.firingFrequency), d.logitLens.top.slice(0, 5).map((t) => t.text).join(" · ")]), [false, false, false, false, true, false]));
  app.querySelectorAll("tbody tr").forEach((tr) => tr.classList.add("latent-row"));
}

async function viewLatent(p) {
  const r = await api("/api/latent", { id: p.get("id") });
  app.append(el("h2", {}, "Latent #" + r.dashboard.latent), el("p", {}, link("latents", {}, "all latents")));
  const box = el("div");
  app.append(latentCard(r.dashboard, box));
  if (r.plot) await plot(box, r.plot.id, r.plot.spec, r.plot.expect.mark, r.plot.expect.count);
}

const VIEWS = { "": viewRuns, run: viewRun, samples: viewSamples, sample: viewSample, compare: viewCompare, latents: viewLatents, latent: viewLatent };
async function route() {
  const h = location.hash.replace(/^#\\/?/, "");
  const [name, query] = [h.split("?")[0], h.split("?").slice(1).join("?")];
  const view = VIEWS[name] || viewRuns;
  window.emlabView.ready = false;
  window.emlabView.view = name;
  clear(app);
  try { await view(new URLSearchParams(query)); }
  catch (e) { app.append(el("p", { class: "error", id: "view-error" }, e.message)); }
  window.emlabView.hash = location.hash;
  window.emlabView.ready = true;
}
window.addEventListener("hashchange", route);
route();
`;

/** The app script served as /assets/app.js. */
export const VIEWER_APP_JS = PAGE_HELPERS + APP;
