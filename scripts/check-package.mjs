#!/usr/bin/env node
/**
 * Checks the package a user would install: `npm pack` (which builds dist/ through the prepare
 * script), the tarball's file list (dist, bin, native sources, the install script, the base
 * organism; no sources, tests, experiments or docs), publint and arethetypeswrong on it, then
 * a scratch project that installs the tarball (from npm's cache where it can) and runs, with plain
 * node, test/package/consumer.mjs and the README's library example, and type-checks both
 * (checkJs) against the shipped declarations.
 *
 *   node scripts/check-package.mjs [--keep]     # --keep leaves the scratch folder in place
 *
 * Exits 1 on the first failed step, naming it.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const keep = process.argv.includes("--keep");
const work = mkdtempSync(join(tmpdir(), "emlab-package-"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** What the tarball may hold: everything else (src/, test/, experiments/, docs/, bench/) is a leak. */
const ALLOWED = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICEN[CS]E(\.md)?$/,
  /^CHANGELOG\.md$/,
  /^dist\/.+\.(js|d\.ts)$/,
  /^bin\/emlab\.js$/,
  /^native\/[^/]+\.(c|h)$/,
  /^scripts\/build-native\.mjs$/,
  /^organism\/base\/(config\.json|model\.safetensors|tokenizer\.json|tokenizer_config\.json)$/,
];
const REQUIRED = [
  "package.json",
  "README.md",
  "bin/emlab.js",
  "dist/index.js",
  "dist/index.d.ts",
  "dist/cli/main.js",
  "dist/testing/index.js",
  "native/emlab_native.c",
  "scripts/build-native.mjs",
  "organism/base/config.json",
  "organism/base/model.safetensors",
  "organism/base/tokenizer.json",
];

function step(name) {
  console.log(`== package: ${name}`);
}

function fail(message) {
  console.error(`check-package: ${message}`);
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.error(`check-package: scratch folder kept at ${work}`);
  process.exit(1);
}

/** Runs a command, failing the check (with its output) when it exits non-zero. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-40).join("\n");
    fail(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ""}\n${out}`);
  }
  return r;
}

/** The version package-lock.json pins for a dev tool, so the scratch install finds it in npm's cache. */
function lockedVersion(name) {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const v = lock.packages?.[`node_modules/${name}`]?.version;
  if (!v) fail(`package-lock.json has no ${name}`);
  return v;
}

/** The fenced ```js block after the README heading "Use it as a library". */
function readmeExample() {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const at = readme.indexOf("## Use it as a library");
  if (at < 0) fail("README.md has no '## Use it as a library' section");
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m?.[1]) fail("README.md's 'Use it as a library' section has no ```js block");
  return m[1];
}

// 1. Pack (prepare builds dist/ first).
step("npm pack");
const packed = run(npm, ["pack", "--json", "--pack-destination", work], { cwd: root });
const jsonStart = packed.stdout.search(/^\[/m);
if (jsonStart < 0) fail(`npm pack printed no JSON:\n${packed.stdout}`);
const [info] = JSON.parse(packed.stdout.slice(jsonStart));
const tarball = join(work, info.filename);
const paths = info.files.map((f) => f.path);
const kb = (n) => `${(n / 1024).toFixed(0)} kB`;
console.log(`${info.filename}: ${kb(info.size)} packed, ${kb(info.unpackedSize)} unpacked, ${info.entryCount} files`);

// 2. The file list.
step("tarball contents");
const leaks = paths.filter((p) => !ALLOWED.some((re) => re.test(p)));
if (leaks.length) fail(`the tarball holds files outside the whitelist:\n  ${leaks.slice(0, 30).join("\n  ")}`);
const missing = REQUIRED.filter((p) => !paths.includes(p));
if (missing.length) fail(`the tarball lacks ${missing.join(", ")}`);
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
for (const [sub, target] of Object.entries(pkg.exports)) {
  for (const file of typeof target === "string" ? [target] : Object.values(target)) {
    if (!paths.includes(file.replace(/^\.\//, ""))) fail(`exports["${sub}"] points at ${file}, not in the tarball`);
  }
}
console.log(`${paths.length} files, all whitelisted; every exports target present`);

// 3. Linters for packages, on the tarball itself.
step("publint");
const publint = run(process.execPath, [join(root, "node_modules/publint/src/cli.js"), "run", "--strict", tarball]);
console.log(publint.stdout.trim());
step("arethetypeswrong (esm-only: emlab ships no CommonJS)");
run(
  process.execPath,
  [join(root, "node_modules/@arethetypeswrong/cli/dist/index.js"), tarball, "--profile", "esm-only"],
  { env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" } },
);
console.log(`no problems in ${Object.keys(pkg.exports).length} entry points (node16 from ESM, bundler)`);

// 4. A scratch project installs the tarball, preferring npm's cache (filled by `npm ci`): the
// dependencies and dev tools are pinned to package-lock.json's versions so their tarballs
// come from the cache; only registry metadata may be fetched. Its allowScripts lets emlab
// build its addon and better-sqlite3 its binding, and keeps onnxruntime-node from
// downloading CUDA libraries; .npmrc's nodedir (Node's headers for node-gyp) comes along.
step("install into a scratch project (npm --prefer-offline)");
const app = join(work, "app");
mkdirSync(app);
writeFileSync(
  join(app, "package.json"),
  `${JSON.stringify(
    {
      name: "emlab-consumer",
      private: true,
      type: "module",
      allowScripts: { [`file:${tarball}`]: true, "better-sqlite3": true, "onnxruntime-node": false },
    },
    null,
    2,
  )}\n`,
);
if (existsSync(join(root, ".npmrc"))) copyFileSync(join(root, ".npmrc"), join(app, ".npmrc"));
const pinned = [...Object.keys(pkg.dependencies), "typescript", "@types/node"].map((n) => `${n}@${lockedVersion(n)}`);
run(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball, ...pinned], { cwd: app });
const addon = join(app, "node_modules/emlab/build/emlab_native.node");
console.log(
  existsSync(addon) ? "emlab's install step built the native addon" : "no native addon (onnxruntime fallback)",
);

// 5. Plain node runs the consumer script, the README's example and the bin.
step("run test/package/consumer.mjs and the README example with plain node");
copyFileSync(join(root, "test/package/consumer.mjs"), join(app, "consumer.mjs"));
writeFileSync(join(app, "readme-example.mjs"), readmeExample());
const env = { ...process.env, EMLAB_SOURCE: "" };
console.log(run(process.execPath, ["consumer.mjs"], { cwd: app, env }).stdout.trim());
console.log(run(process.execPath, ["readme-example.mjs"], { cwd: app, env }).stdout.trim());
const version = run(process.execPath, ["node_modules/emlab/bin/emlab.js", "--version"], { cwd: app, env });
if (version.stdout.trim() !== pkg.version)
  fail(`emlab --version printed '${version.stdout.trim()}', not ${pkg.version}`);
console.log(`bin: emlab --version → ${version.stdout.trim()}`);

// 6. tsc type-checks both scripts against the shipped declarations.
step("tsc --checkJs against the shipped declarations");
writeFileSync(
  join(app, "tsconfig.json"),
  `${JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        allowJs: true,
        checkJs: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
      },
      files: ["consumer.mjs", "readme-example.mjs"],
    },
    null,
    2,
  )}\n`,
);
run(process.execPath, [join(app, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: app });
console.log("types check");

if (!keep) rmSync(work, { recursive: true, force: true });
else console.log(`scratch folder kept at ${work}`);
console.log(`package check passed: ${info.filename}, ${kb(info.size)}, ${info.entryCount} files`);
