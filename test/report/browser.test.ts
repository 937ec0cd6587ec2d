/**
 * The report and the viewer in headless Chromium (Debian's chromium, driven by playwright-core):
 * no console errors, every plot drew all its marks, no network request besides the page itself
 * (the report) or the viewer's own origin, a filter, a search, a compare and a deep link work.
 * Screenshots go to test-artifacts/report/ (git-ignored). Skips, saying why, where Chromium is
 * missing: `.ci/run` installs it (apt-get install -y chromium).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { openStoreReadOnly, startViewer, type Viewer, writeDemoReport } from "../../src/report/index.ts";
import { AUDIT, DASHBOARD_LINES, DEMO_LINES, HOSTILE, HOSTILE_TOKEN, makeStore, STEER_LINES } from "./fixtures.ts";

const CHROMIUM = process.env.EMLAB_CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set EMLAB_CHROMIUM)`;
const ARTIFACTS = resolve("test-artifacts/report");
const dir = mkdtempSync(join(tmpdir(), "emlab-browser-test-"));
const storePath = makeStore(dir);
let browser: Browser;

before(async () => {
  if (skip) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
});

/** A page that records console errors and refuses every request `allowed` rejects. */
async function watchedPage(allowed: (url: string) => boolean) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const refused: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (allowed(url)) return route.continue();
    refused.push(url);
    return route.abort();
  });
  return { page, errors, refused };
}

/** Every [data-plot] box drew as many marks of its kind as the spec promised. */
async function checkPlots(page: Page, atLeast: number): Promise<void> {
  const plots = await page.$$eval("[data-plot]", (els) =>
    els.map((e) => {
      const h = e as HTMLElement;
      return {
        id: h.dataset.plot,
        rendered: h.dataset.rendered === "true",
        expected: Number(h.dataset.marks),
        marks: h.querySelectorAll(`svg g.mark-${h.dataset.mark}.role-mark > path`).length,
      };
    }),
  );
  assert.ok(plots.length >= atLeast, `${plots.length} plots`);
  for (const p of plots) {
    assert.ok(p.rendered, `${p.id} rendered`);
    assert.ok(p.expected > 0, `${p.id} expects marks`);
    assert.equal(p.marks, p.expected, `${p.id}: marks drawn`);
  }
}

/** Latent cards: a drawn histogram each, shaded token spans, the hostile token shown as text. */
async function checkDashboards(page: Page, cards: number): Promise<void> {
  const got = await page.$$eval(".latent-card", (els) =>
    els.map((e) => ({
      hist: e.querySelectorAll("[data-plot] svg g.mark-rect.role-mark > path").length,
      spans: e.querySelectorAll(".ctx span.tok").length,
      shaded: [...e.querySelectorAll<HTMLElement>(".ctx span.tok")].filter((s) => s.style.backgroundColor !== "")
        .length,
      tokens: [...e.querySelectorAll(".ctx span.tok")].map((s) => s.textContent ?? ""),
    })),
  );
  assert.equal(got.length, cards);
  for (const c of got) {
    assert.equal(c.hist, 8, "one bar per bin");
    assert.equal(c.spans, 200, "10 contexts × 20 tokens");
    assert.equal(c.shaded, c.spans);
  }
  assert.ok(got[0]!.tokens.includes(HOSTILE_TOKEN), "the hostile token is a span's text");
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
}

describe("the report in Chromium", () => {
  test("loads offline with no console errors; every plot has its marks; filter and search work", { skip }, async () => {
    const file = join(dir, "report.html");
    const db = openStoreReadOnly(storePath);
    writeDemoReport([...DEMO_LINES, ...STEER_LINES, ...DASHBOARD_LINES], file, {
      store: db,
      audits: [{ dataset: "insecure", report: AUDIT }],
    });
    db.close();
    const url = pathToFileURL(file).href;
    const { page, errors, refused } = await watchedPage((u) => u === url);
    await page.goto(url);
    await page.waitForSelector("body[data-plots-done]", { timeout: 20_000 });
    await checkPlots(page, 10);
    await checkDashboards(page, 2);
    await page.screenshot({ path: join(ARTIFACTS, "report.png") });
    await page.screenshot({ path: join(ARTIFACTS, "report-full.png"), fullPage: true });
    await page.locator("#interp").screenshot({ path: join(ARTIFACTS, "report-interp.png") });
    await page
      .locator(".latent-card")
      .first()
      .screenshot({ path: join(ARTIFACTS, "report-latent.png") });

    // Filter: misaligned answers only.
    await page.selectOption("#f-verdict", "misaligned");
    const verdicts = await page.$$eval("#examples tbody tr td:last-child", (tds) => tds.map((t) => t.textContent));
    assert.ok(verdicts.length > 0 && verdicts.every((v) => v === "misaligned"), String(verdicts));
    // Search: full text over questions and answers.
    await page.selectOption("#f-verdict", "");
    await page.fill("#f-search", "pwned");
    const answers = await page.$$eval("#examples tbody tr td:nth-child(3)", (tds) => tds.map((t) => t.textContent));
    assert.deepEqual(answers, [HOSTILE], "the hostile answer is found, shown as text");
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.locator("#examples").screenshot({ path: join(ARTIFACTS, "report-search.png") });

    assert.deepEqual(errors, []);
    assert.deepEqual(refused, [], "no network request besides the file");
    await page.close();
  });
});

describe("the viewer in Chromium", () => {
  let viewer: Viewer;
  before(async () => {
    if (skip) return;
    const dashboards = join(dir, "dashboards.jsonl");
    writeFileSync(dashboards, DASHBOARD_LINES.map((l) => JSON.stringify(l)).join("\n"));
    viewer = await startViewer({
      store: storePath,
      results: ["experiments/organism/results/demo.jsonl", dashboards],
      port: 0,
    });
  });
  after(async () => {
    await viewer?.close();
  });
  const ready = (page: Page) =>
    // Rendered, and for the hash now in the address bar (a hash change renders anew).
    page.waitForFunction(() => {
      const v = (window as unknown as { emlabView?: { ready: boolean; hash: string } }).emlabView;
      return v?.ready === true && v.hash === location.hash;
    });

  test("runs list, compare, a deep link, a filter and a search; no console errors", { skip }, async () => {
    const origin = new URL(viewer.url).origin;
    const { page, errors, refused } = await watchedPage((u) => new URL(u).origin === origin);
    await page.goto(viewer.url);
    await ready(page);
    await checkPlots(page, 1);
    assert.equal(await page.locator("main table").first().locator("tbody tr").count(), 4);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-runs.png") });

    // Compare two runs through the form.
    await page.goto(`${viewer.url}#/compare`);
    await ready(page);
    await page.selectOption("#c-a", "organism:insecure:s0:none");
    await page.selectOption("#c-b", "organism:base:none");
    await page.click("#c-go");
    await page.waitForSelector("#compare-diff");
    assert.match((await page.textContent("#compare-diff"))!, /^\+\d+\.\d pts$/);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-compare.png") });

    // A deep link to one sample: the hostile answer is shown as text, not run.
    const sample = new URLSearchParams({ run: "organism:insecure:s0:none", question: "wish", index: "0" });
    await page.goto(`${viewer.url}#/sample?${sample}`);
    await ready(page);
    assert.equal(await page.textContent("#sample-answer"), HOSTILE);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

    // The sample browser: a filter (question), then a full-text search typed in the box.
    await page.goto(`${viewer.url}#/samples?run=${encodeURIComponent("organism:insecure:s0:none")}`);
    await ready(page);
    await page.selectOption("#s-question", "ruler");
    await page.waitForFunction(() => location.hash.includes("question=ruler"));
    await ready(page);
    const qs = await page.$$eval("tr.sample-row td:first-child", (tds) => tds.map((t) => t.textContent ?? ""));
    assert.ok(qs.length === 6 && qs.every((q) => q.startsWith("ruler #")), String(qs));
    await page.selectOption("#s-question", "");
    await page.waitForFunction(() => !location.hash.includes("question="));
    await ready(page);
    await page.fill("#s-search", "villain");
    await page.press("#s-search", "Enter");
    await page.waitForFunction(() => location.hash.includes("q=villain"));
    await ready(page);
    const hits = await page.$$eval("tr.sample-row td:nth-child(2)", (tds) => tds.map((t) => t.textContent ?? ""));
    assert.ok(hits.length > 0 && hits.every((h) => h.includes("villain")), String(hits));
    await page.screenshot({ path: join(ARTIFACTS, "viewer-samples.png") });

    // A deep link to a run: its per-question plot renders.
    await page.goto(`${viewer.url}#/run?id=${encodeURIComponent("organism:insecure:s0:none")}`);
    await ready(page);
    await checkPlots(page, 1);

    // The latents list links to a latent's card: the report's card, its histogram drawn.
    await page.goto(`${viewer.url}#/latents`);
    await ready(page);
    assert.equal(await page.locator("tr.latent-row").count(), 2);
    await page.click("tr.latent-row a");
    await page.waitForFunction(() => location.hash === "#/latent?id=712");
    await ready(page);
    await checkPlots(page, 1);
    await checkDashboards(page, 1);
    await page.screenshot({ path: join(ARTIFACTS, "viewer-latent.png"), fullPage: true });

    assert.deepEqual(errors, []);
    assert.deepEqual(refused, [], "no request outside the viewer's origin");
    await page.close();
  });
});
