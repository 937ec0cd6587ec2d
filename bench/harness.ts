/**
 * The benchmark harness behind `npm run bench`: runs emlab's figure and PyTorch's (the peer,
 * ../shared/bench/torch_peer.py) back to back, `repeats` times, and reports medians.
 *
 * A benchmark module exports `benches: Bench[]`. `run()` returns one measurement (a
 * throughput in `unit`) and does its own set-up and warm-up untimed, e.g. lazily on the
 * first call. Every unit is a throughput, so ratio = emlab / peer (> 1: emlab is faster).
 * The peer is a separate process per repeat, alternating with emlab's run and swapping
 * which goes first each repeat (A B, B A, …), so slow drifts of a noisy machine hit both.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export type Bench = {
  name: string;
  unit: string;
  /** The torch_peer.py contract name; default `name`; null = no peer. */
  peerName?: string | null;
  run(): Promise<number> | number;
  /** Called once after the bench's repeats (delete temp files, free buffers). */
  teardown?(): Promise<void> | void;
};

/** One line of `--json` output; exactly these keys (the benchmark contract). */
export type BenchResult = { bench: string; emlab: number; peer: number | null; unit: string; ratio: number | null };

/** Measures the peer's figure for a contract name once; null when it cannot. */
export type PeerRunner = (peerName: string) => Promise<number | null>;

export type BenchOptions = { only?: string[]; json: boolean; repeats: number; peer: boolean };

export function median(xs: readonly number[]): number {
  if (!xs.length) throw new Error("median of no values");
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** emlab / peer for throughputs; null without a usable peer figure. */
export function ratio(emlab: number, peer: number | null): number | null {
  if (peer === null || !Number.isFinite(peer) || peer <= 0 || !Number.isFinite(emlab)) return null;
  return emlab / peer;
}

/** `name → value` from torch_peer.py's stdout (JSON lines; anything else is ignored). */
export function parsePeerOutput(stdout: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line) as { name?: unknown; value?: unknown };
      if (typeof rec.name === "string" && typeof rec.value === "number") out.set(rec.name, rec.value);
    } catch {}
  }
  return out;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  const opts: BenchOptions = { json: false, repeats: 3, peer: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--json") opts.json = true;
    else if (flag === "--no-peer") opts.peer = false;
    else if (flag === "--only")
      opts.only = value()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    else if (flag === "--repeats") {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`--repeats must be a positive integer`);
      opts.repeats = n;
    } else
      throw new Error(
        `unknown option ${a} (usage: npm run bench -- [--only NAME[,NAME]] [--json] [--repeats N] [--no-peer])`,
      );
  }
  return opts;
}

/** The benches named by --only (in the order given), or all; an unknown name is an error. */
export function selectBenches(all: readonly Bench[], only?: readonly string[]): Bench[] {
  if (!only) return [...all];
  const byName = new Map(all.map((b) => [b.name, b]));
  const unknown = only.filter((n) => !byName.has(n));
  if (unknown.length)
    throw new Error(`unknown benchmark(s) ${unknown.join(", ")}; available: ${[...byName.keys()].join(", ")}`);
  return only.map((n) => byName.get(n)!);
}

/** Runs one bench with its peer, alternating, and returns the medians. */
export async function runBench(
  bench: Bench,
  repeats: number,
  peer: PeerRunner | null,
  log: (msg: string) => void = () => {},
): Promise<BenchResult> {
  const peerName = bench.peerName === undefined ? bench.name : bench.peerName;
  const ours: number[] = [];
  const theirs: number[] = [];
  let peerGone = peer === null || peerName === null;
  const runPeer = async () => {
    if (peerGone) return;
    const v = await peer!(peerName!);
    if (v === null) {
      if (!theirs.length) peerGone = true; // absent or failing from the start: stop asking
      log(`${bench.name}: no peer figure this repeat`);
    } else theirs.push(v);
  };
  try {
    for (let r = 0; r < repeats; r++) {
      if (r % 2) await runPeer();
      const v = await bench.run();
      if (typeof v !== "number" || !Number.isFinite(v))
        throw new Error(`bench ${bench.name} returned ${v}, not a number`);
      ours.push(v);
      log(`${bench.name}: repeat ${r + 1}/${repeats} emlab ${fmt(v)} ${bench.unit}`);
      if (!(r % 2)) await runPeer();
    }
  } finally {
    await bench.teardown?.();
  }
  const emlab = median(ours);
  const peerValue = theirs.length ? median(theirs) : null;
  return { bench: bench.name, emlab, peer: peerValue, unit: bench.unit, ratio: ratio(emlab, peerValue) };
}

/** The --json line: the contract's keys in the contract's order, numbers rounded for reading. */
export function jsonLine(r: BenchResult): string {
  const round = (x: number | null) => (x === null ? null : Number(x.toPrecision(6)));
  return JSON.stringify({
    bench: r.bench,
    emlab: round(r.emlab),
    peer: round(r.peer),
    unit: r.unit,
    ratio: round(r.ratio),
  });
}

export function table(results: readonly BenchResult[]): string {
  const rows = [["bench", "emlab", "peer (torch)", "unit", "ratio"]];
  for (const r of results)
    rows.push([
      r.bench,
      fmt(r.emlab),
      r.peer === null ? "—" : fmt(r.peer),
      r.unit,
      r.ratio === null ? "—" : r.ratio.toFixed(2),
    ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows
    .map((row) =>
      row.map((cell, c) => (c === 0 || c === 3 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "),
    )
    .join("\n");
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/**
 * A PeerRunner that calls `python script --only NAME --quick` and reads its JSON line, or
 * null (with the reason) when python or the script is missing. A failing run (torch absent,
 * unknown name, crash) gives a null figure and a note with the tail of its stderr.
 */
export function torchPeer(
  python: string,
  script: string,
  log: (msg: string) => void,
  timeoutMs = 30 * 60_000,
): { runner: PeerRunner | null; reason?: string } {
  if (!existsSync(python)) return { runner: null, reason: `${python} not found` };
  if (!existsSync(script)) return { runner: null, reason: `${script} not found` };
  const runner: PeerRunner = (name) =>
    new Promise((resolve) => {
      const child = spawn(python, [script, "--only", name, "--quick"], {
        stdio: ["ignore", "pipe", "pipe"],
        timeout: timeoutMs,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", (err) => {
        log(`peer ${name}: ${err.message}`);
        resolve(null);
      });
      child.on("close", (code, signal) => {
        const value = parsePeerOutput(stdout).get(name);
        if (value !== undefined) return resolve(value);
        const tail = stderr.trim().split("\n").slice(-3).join(" | ");
        log(`peer ${name}: no figure (exit ${code ?? signal})${tail ? `: ${tail}` : ""}`);
        resolve(null);
      });
    });
  return { runner };
}
