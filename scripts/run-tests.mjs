#!/usr/bin/env node
// Runs every test file (test/**/*.test.ts) with node's test runner through tsx.
// Extra arguments are passed to node --test (e.g. --test-name-pattern=matmul); a path
// ending in .test.ts restricts the run to the files given.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith(".test.ts"));
const flags = args.filter((a) => !a.endsWith(".test.ts"));
const targets = files.length ? files : find("test").sort();
// EMLAB_SOURCE=1: tests that spawn bin/emlab.js run the sources through tsx, not dist/.
const env = { ...process.env, EMLAB_SOURCE: process.env.EMLAB_SOURCE ?? "1" };
const res = spawnSync(process.execPath, ["--import", "tsx", "--test", ...flags, ...targets], { stdio: "inherit", env });
process.exit(res.status ?? 1);
