/**
 * `npm run experiment:performance -- [--out FILE] [bench options: --only NAME[,NAME] --repeats N --no-peer]`
 *
 * Runs the benchmark suite (bench/run.ts, the same as `npm run bench -- --json`), prints its
 * JSON lines and writes them, after a first line naming the command and the kernels, to FILE
 * (default experiments/performance/results/DATE-BACKEND.jsonl). The figures are the machine's:
 * a re-run gives other numbers, so each run is a new file.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { describeKernels } from "../../src/tensor/kernels/matmul.ts";

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(
    "usage: npm run experiment:performance -- [--out FILE] [--only NAME[,NAME]] [--repeats N] [--no-peer]\n" +
      "  runs bench/run.ts --json; prints its lines and writes them to FILE\n" +
      "  (default experiments/performance/results/DATE-BACKEND.jsonl, DATE in UTC)",
  );
  process.exit(0);
}
const outAt = args.indexOf("--out");
const benchArgs = outAt >= 0 ? args.filter((_, i) => i !== outAt && i !== outAt + 1) : args;
const kernels = describeKernels();
const backend = kernels.split(" ")[0] ?? "unknown";
const out =
  outAt >= 0 && args[outAt + 1]
    ? args[outAt + 1]!
    : fileURLToPath(new URL(`results/${new Date().toISOString().slice(0, 10)}-${backend}.jsonl`, import.meta.url));

const bench = fileURLToPath(new URL("../../bench/run.ts", import.meta.url));
const run = spawnSync(process.execPath, ["--import", "tsx", bench, "--json", ...benchArgs], {
  stdio: ["ignore", "pipe", "inherit"],
  encoding: "utf8",
});
if (run.status !== 0) process.exit(run.status ?? 1);
const lines = run.stdout.split("\n").filter((l) => l.trim());
for (const l of lines) console.log(l);
const header = JSON.stringify({ command: `bench/run.ts --json ${benchArgs.join(" ")}`.trim(), kernels });
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${[header, ...lines].join("\n")}\n`);
process.stderr.write(`wrote ${out}\n`);
