#!/usr/bin/env node
// emlab's command-line entry: runs the compiled CLI (dist/, built by `npm run build`, which
// `npm install` and `npm pack` run through the prepare script) with plain node.
// In a development checkout (src/ beside dist/; the package ships no src/) it runs the
// TypeScript sources through tsx instead when EMLAB_SOURCE=1 (the test runner sets it) or when
// a source file is newer than the build, saying so on stderr, so an edit is never run stale.
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = new URL("../dist/cli/main.js", import.meta.url);
const source = new URL("../src/cli/main.ts", import.meta.url);

/** Newest modification time of any file under `dir`, in ms. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

let entry = compiled;
if (existsSync(source)) {
  const wanted = process.env.EMLAB_SOURCE === "1";
  const stale =
    !wanted &&
    process.env.EMLAB_SOURCE !== "0" &&
    (!existsSync(compiled) || newest(fileURLToPath(new URL("../src", import.meta.url))) > statSync(compiled).mtimeMs);
  if (wanted || stale) {
    if (stale) console.error("emlab: src/ is newer than dist/; running the sources (npm run build compiles them)");
    const { register } = await import("tsx/esm/api");
    register();
    entry = source;
  }
}
if (entry === compiled && !existsSync(compiled)) {
  console.error("emlab: dist/cli/main.js is missing; run `npm run build` (or `npm install`) first");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
