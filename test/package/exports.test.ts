// The package's entry points: package.json's exports map onto src/ barrels, and the root
// entry re-exports the subpaths' own objects (one implementation each, not copies).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

const root = new URL("../../", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
const SUBPATHS = [
  "tensor",
  "model",
  "train",
  "data",
  "eval",
  "providers",
  "interp",
  "watch",
  "fix",
  "organism",
  "testing",
];

/** ./dist/x/index.js or ./dist/x/index.d.ts → src/x/index.ts */
const sourceOf = (target: string) => target.replace(/^\.\/dist\//, "src/").replace(/\.(d\.ts|js)$/, ".ts");

test("every exports entry has types first and maps onto a src/ barrel", () => {
  assert.deepEqual(Object.keys(pkg.exports).sort(), [".", "./package.json", ...SUBPATHS.map((s) => `./${s}`)].sort());
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (sub === "./package.json") continue;
    const t = target as Record<string, string>;
    assert.deepEqual(Object.keys(t), ["types", "default"], `${sub}: "types" must come first`);
    assert.equal(sourceOf(t.types!), sourceOf(t.default!), sub);
    assert.ok(existsSync(new URL(sourceOf(t.default!), root)), `${sub} → ${sourceOf(t.default!)} is missing`);
  }
  assert.equal(pkg.main, pkg.exports["."].default);
  assert.equal(pkg.types, pkg.exports["."].types);
});

test("the files whitelist ships no sources, tests, experiments or docs", () => {
  for (const f of pkg.files as string[])
    assert.doesNotMatch(f, /^(src|test|experiments|docs|bench)(\/|$)/, `files lists ${f}`);
  assert.ok(!("tsx" in pkg.dependencies), "tsx is a devDependency: the bin runs dist/ with plain node");
});

test("the root entry re-exports the subpaths' own objects", async () => {
  const main = await import("../../src/index.ts");
  const barrels = await Promise.all(SUBPATHS.map((s) => import(`../../src/${s}/index.ts`)));
  const names = Object.keys(main);
  assert.ok(names.length > 30, `only ${names.length} runtime exports`);
  for (const name of names) {
    const value = (main as Record<string, unknown>)[name];
    const owner = barrels.findIndex((b) => (b as Record<string, unknown>)[name] === value);
    assert.ok(owner >= 0, `emlab's ${name} is not the same object in any subpath`);
  }
});
