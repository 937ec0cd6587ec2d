/**
 * What the report and the viewer pages share: the style sheet and small browser helpers
 * (plain JavaScript, inlined into each page). Text always enters the DOM through
 * textContent, never innerHTML, so an answer cannot inject markup.
 */

export const PAGE_CSS = `
:root { --fg:#1d232a; --muted:#5f6b77; --line:#dde3e8; --accent:#2e86c1; --bad:#c0392b; --bg:#fafbfc; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { padding:14px 24px; background:#fff; border-bottom:1px solid var(--line); }
header h1 { margin:0 0 2px; font-size:20px; }
header .meta { color:var(--muted); font-size:12px; }
nav { display:flex; gap:14px; margin-top:8px; }
nav a { color:var(--accent); text-decoration:none; }
main { padding:8px 24px 40px; max-width:1200px; }
section { margin-top:20px; }
h2 { font-size:17px; border-bottom:1px solid var(--line); padding-bottom:4px; }
h3 { font-size:14px; margin:18px 0 6px; }
.plot { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px; margin:10px 0; }
.plot .caption { color:var(--muted); font-size:12px; margin-top:4px; }
.plot .vega-embed { width:100%; }
table { border-collapse:collapse; background:#fff; margin:6px 0; width:100%; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:#f1f4f7; font-weight:600; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.answer { white-space:pre-wrap; max-width:560px; }
.verdict-misaligned { color:var(--bad); font-weight:600; }
.controls { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:8px 0; }
.controls input[type=search] { min-width:240px; }
.empty { color:var(--muted); font-style:italic; }
.count { color:var(--muted); font-size:12px; }
.error { color:var(--bad); }
a.link { color:var(--accent); cursor:pointer; }
.latent-card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px; margin:12px 0; }
.latent-card h3 { margin-top:0; }
.latent-card .persona { color:var(--bad); font-weight:600; }
.latent-card .cols { display:flex; flex-wrap:wrap; gap:16px; }
.latent-card .cols > div { flex:1 1 260px; }
.ctx { font-family:ui-monospace, monospace; font-size:12px; white-space:pre-wrap; margin:3px 0; line-height:1.8; }
.ctx .tok { border-radius:2px; }
.ctx .max { color:var(--muted); margin-right:6px; }
`;

/**
 * Browser helpers: el(tag, attrs, ...children), pct(x), fmt(x), clear(node), table(…), and
 * latentCard(d, chart): one latent's dashboard (data.ts's LatentCard) as a card, with `chart`
 * (the histogram's plot box) inside. Tokens are spans whose text is a text node.
 */
export const PAGE_HELPERS = `
function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") n.className = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return n;
}
function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }
function fmt(x, d) { return x === null || x === undefined ? "–" : Number(x).toFixed(d === undefined ? 1 : d); }
function ci(r) { return r && r.low !== null && r.low !== undefined ? "[" + pct(r.low) + ", " + pct(r.high) + "]" : "–"; }
function table(headers, rows, numeric) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const r of rows) body.append(el("tr", {}, r.map((c, i) => c instanceof Node ? el("td", {}, c) : el("td", { class: numeric && numeric[i] ? "num" : null }, c))));
  t.append(body);
  return t;
}
function latentCard(d, chart) {
  const title = el("h3", {}, "latent #" + d.latent, d.pick ? " · " + d.pick + " pick" : "",
    d.isPersona ? el("span", { class: "persona" }, " · the persona latent") : null);
  const max = Math.max(1e-9, ...d.contexts.flatMap((c) => c.tokens.map((t) => t.act)));
  const contexts = d.contexts.map((c) => el("div", { class: "ctx", title: c.text }, el("span", { class: "max" }, fmt(c.maxActivation, 2)),
    c.tokens.map((t) => {
      const s = el("span", { class: "tok", title: fmt(t.act, 3) }, t.text);
      s.style.backgroundColor = "rgba(230, 126, 34, " + Math.max(0, Math.min(1, t.act / max)).toFixed(3) + ")";
      return s;
    })));
  const lens = d.logitLens;
  const rows = Array.from({ length: Math.max(lens.top.length, lens.bottom.length) }, (_, i) =>
    [lens.top[i] ? lens.top[i].text : "", lens.top[i] ? fmt(lens.top[i].logit, 2) : "", lens.bottom[i] ? lens.bottom[i].text : "", lens.bottom[i] ? fmt(lens.bottom[i].logit, 2) : ""]);
  return el("div", { class: "latent-card", id: "latent-" + d.latent, "data-latent": d.latent }, title,
    el("div", { class: "count" }, d.hook ? "hook " + d.hook : ""),
    chart,
    el("div", { class: "cols" },
      el("div", {}, el("h4", {}, "Top contexts"), contexts.length ? contexts : el("p", { class: "empty" }, "none")),
      el("div", {}, el("h4", {}, "Logit lens"), rows.length ? table(["promotes", "logit", "suppresses", "logit"], rows, [false, true, false, true]) : el("p", { class: "empty" }, "none"),
        el("h4", {}, "Nearest latents"), d.nearest.length ? table(["latent", "cosine"], d.nearest.map((n) => ["#" + n.latent, fmt(n.cosine, 3)]), [false, true]) : el("p", { class: "empty" }, "none"))));
}
`;
