// docs/ holds user guides only and experiments/ one folder per experiment; every relative
// link in a guide or an experiment's notes points at a file that exists.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DOCS = join(ROOT, "docs");
const EXPERIMENTS = join(ROOT, "experiments");

/** Files under a folder, recursively (paths relative to the repository). */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [relative(ROOT, p)];
  });
}

test("docs/ holds guides, the eval config example and its schema; no result files", () => {
  const stray = files(DOCS).filter(
    (f) => !/^docs\/[a-z-]+\.md$/.test(f) && !f.startsWith("docs/examples/") && !f.startsWith("docs/schema/"),
  );
  assert.deepEqual(stray, [], `not a user guide: ${stray.join(", ")} (results belong in experiments/NAME/results/)`);
});

test("every experiment has run.ts, NOTES.md and a results/ folder", () => {
  const names = readdirSync(EXPERIMENTS).filter((n) => statSync(join(EXPERIMENTS, n)).isDirectory());
  assert.ok(names.length > 0, "experiments/ is empty");
  for (const name of names)
    for (const part of ["run.ts", "NOTES.md", "results"])
      assert.ok(existsSync(join(EXPERIMENTS, name, part)), `experiments/${name}/${part} is missing`);
});

test("relative links in docs/ and in the experiments' notes resolve", () => {
  const pages = [
    ...files(DOCS).filter((f) => f.endsWith(".md")),
    ...files(EXPERIMENTS).filter((f) => f.endsWith("NOTES.md")),
  ];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), "utf8");
    for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
      if (!existsSync(join(ROOT, dirname(page), target))) broken.push(`${page} → ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});
