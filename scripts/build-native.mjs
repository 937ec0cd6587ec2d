#!/usr/bin/env node
/**
 * Builds emlab's optional native kernels (native/emlab_native.c → build/emlab_native.node):
 * run by `npm install` (the package's install script) and by hand with
 * `node scripts/build-native.mjs [--force] [--quiet]`.
 *
 * It needs only a C compiler (cc, gcc or clang; $CC wins) and Node's headers (node_api.h:
 * next to the node binary in official builds, /usr/include/node on Debian, or
 * $npm_config_nodedir). The BLAS library is opened at run time, not linked, so nothing else
 * is needed to build. When anything is missing it says so in one line and exits 0: emlab
 * then runs on onnxruntime and TypeScript kernels. EMLAB_NATIVE=0 skips the build.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "native", "emlab_native.c");
const out = join(root, "build", "emlab_native.node");
const force = process.argv.includes("--force");
const quiet = process.argv.includes("--quiet");
const say = (msg) => {
  if (!quiet) console.log(`emlab native kernels: ${msg}`);
};

function main() {
  if (process.env.EMLAB_NATIVE === "0") return say("skipped (EMLAB_NATIVE=0)");
  if (!existsSync(src)) return say(`${src} is missing; skipped`);
  // emlab_native.c #includes bf16_gemm.c: either one being newer rebuilds.
  const newest = Math.max(
    ...[src, join(root, "native", "bf16_gemm.c")].filter((f) => existsSync(f)).map((f) => statSync(f).mtimeMs),
  );
  if (!force && existsSync(out) && statSync(out).mtimeMs >= newest) return say(`up to date (${out})`);
  const headerDirs = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include", "node"),
    join(dirname(process.execPath), "..", "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ].filter((d) => d && existsSync(join(d, "node_api.h")));
  if (headerDirs.length === 0)
    return say("Node's headers (node_api.h) not found; skipped — matmul runs on onnxruntime");
  const compilers = [process.env.CC, "cc", "gcc", "clang"].filter(Boolean);
  const compiler = compilers.find((c) => spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0);
  if (!compiler) return say("no C compiler (cc, gcc, clang) found; skipped — matmul runs on onnxruntime");
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  // -march=native: the addon is built on the machine that runs it. -ffast-math lets the
  // compiler vectorise expf through glibc's vector math library (libmvec).
  const common = ["-O3", "-fPIC", "-shared", "-pthread", `-I${headerDirs[0]}`, src, "-o", tmp];
  const platformLink = process.platform === "darwin" ? ["-undefined", "dynamic_lookup"] : ["-ldl"];
  const attempts = [
    ["-march=native", "-ffast-math", ...common, ...platformLink, "-lmvec", "-lm"],
    ["-march=native", ...common, ...platformLink, "-lm"],
    [...common, ...platformLink, "-lm"],
  ];
  let last = "";
  for (const flags of attempts) {
    const r = spawnSync(compiler, flags, { encoding: "utf8" });
    if (r.status === 0) {
      renameSync(tmp, out);
      return say(
        `built ${out} (${compiler} ${flags.filter((f) => f.startsWith("-m") || f.startsWith("-f")).join(" ")})`,
      );
    }
    last = (r.stderr || r.error?.message || "").trim().split("\n").slice(-3).join(" | ");
  }
  rmSync(tmp, { force: true });
  say(`the build failed (${compiler}: ${last}); skipped — matmul runs on onnxruntime`);
}

try {
  main();
} catch (err) {
  say(`the build failed (${err.message}); skipped`);
}
