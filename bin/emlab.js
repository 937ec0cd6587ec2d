#!/usr/bin/env node
// emlab's command-line entry: runs the compiled CLI (dist/, built by `npm run build`, which
// `npm install` and `npm pack` run through the prepare script) with plain node.
// EMLAB_SOURCE=1 runs the TypeScript sources through tsx instead (a development checkout
// only; the test runner sets it so tests exercise src/ without a build).
import { existsSync } from "node:fs";

const compiled = new URL("../dist/cli/main.js", import.meta.url);
const source = new URL("../src/cli/main.ts", import.meta.url);
let entry = compiled;
if (process.env.EMLAB_SOURCE === "1" && existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  entry = source;
} else if (!existsSync(compiled)) {
  console.error("emlab: dist/cli/main.js is missing; run `npm run build` (or `npm install`) first");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
