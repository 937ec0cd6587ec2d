/**
 * `npm run bench -- [--only NAME[,NAME]] [--json] [--repeats N] [--no-peer]`
 *
 * Runs the benchmarks of every module in MODULES against the PyTorch peer
 * (../shared/bench/torch_peer.py beside the repository, run by /usr/bin/python3), and prints
 * a table, or with --json one line per benchmark:
 *   {"bench": NAME, "emlab": number, "peer": number|null, "unit": string, "ratio": number|null}
 * stdout carries only those lines; progress and notes go to stderr. Exit 1 on an error, 2 on
 * a usage error. The peer is null when python3, torch or the script is absent.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describeBf16 } from "../src/tensor/kernels/bf16.ts";
import { describeKernels } from "../src/tensor/kernels/matmul.ts";
import { type Bench, jsonLine, parseBenchArgs, runBench, selectBenches, table, torchPeer } from "./harness.ts";

/** Every benchmark module, in the order they run; a missing one is skipped with a note. */
const MODULES = [
  "./matmul.ts",
  "./train.ts",
  "./organism.ts",
  "./model.ts",
  "./audit.ts",
  "./eval-http.ts",
  "./safetensors.ts",
  "./sae.ts",
];

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3";
const PEER_SCRIPT = fileURLToPath(new URL("../../shared/bench/torch_peer.py", import.meta.url)); // <repo>/../shared

const note = (msg: string) => process.stderr.write(`# ${msg}\n`);

async function loadBenches(): Promise<Bench[]> {
  const all: Bench[] = [];
  for (const mod of MODULES) {
    const url = new URL(mod, import.meta.url);
    if (!existsSync(fileURLToPath(url))) {
      note(`bench module ${mod} not found (skipped)`);
      continue;
    }
    const { benches } = (await import(url.href)) as { benches?: Bench[] };
    if (!Array.isArray(benches)) throw new Error(`bench module ${mod} exports no 'benches' array`);
    all.push(...benches);
  }
  return all;
}

async function main(argv: string[]): Promise<number> {
  let opts: ReturnType<typeof parseBenchArgs>;
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    note((err as Error).message);
    return 2;
  }
  process.chdir(ROOT);
  note(`kernels: ${describeKernels()}; ${describeBf16()}`);
  const all = await loadBenches();
  let chosen: Bench[];
  try {
    chosen = selectBenches(all, opts.only);
  } catch (err) {
    note((err as Error).message);
    return 2;
  }
  const { runner, reason } = opts.peer ? torchPeer(PYTHON, PEER_SCRIPT, note) : { runner: null, reason: "--no-peer" };
  if (!runner) note(`peer: none (${reason}); peer and ratio are null`);
  const results = [];
  for (const bench of chosen) {
    note(
      `${bench.name}: ${opts.repeats} repeats${runner && bench.peerName !== null ? ", alternating with torch" : ""}`,
    );
    const r = await runBench(bench, opts.repeats, runner, note);
    results.push(r);
    if (opts.json) process.stdout.write(`${jsonLine(r)}\n`);
  }
  if (!opts.json) process.stdout.write(`${table(results)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
