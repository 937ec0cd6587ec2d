import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  type Bench,
  jsonLine,
  median,
  parseBenchArgs,
  parsePeerOutput,
  ratio,
  runBench,
  selectBenches,
  table,
  torchPeer,
} from "../../bench/harness.ts";

/** A bench whose run() returns the given figures in turn and records the call order. */
function fake(name: string, figures: number[], calls: string[], extra: Partial<Bench> = {}): Bench {
  let i = 0;
  return {
    name,
    unit: "GFLOP/s",
    run: () => {
      calls.push(`emlab:${name}`);
      return figures[i++]!;
    },
    ...extra,
  };
}

test("median of odd and even counts, unsorted input", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.throws(() => median([]));
});

test("ratio is emlab / peer, null without a usable peer", () => {
  assert.equal(ratio(90, 100), 0.9);
  assert.equal(ratio(90, null), null);
  assert.equal(ratio(90, 0), null);
  assert.equal(ratio(90, Number.NaN), null);
});

test("peer output: JSON lines with name and value; everything else ignored", () => {
  const stdout = [
    '{"name": "matmul_a", "value": 101.5, "unit": "GFLOP/s", "median_s": 0.4, "torch": "1.13.0a0"}',
    "# env {...}",
    "not json {",
    '{"name": "broken"',
    '{"name": "matmul_b", "value": "fast"}',
    '{"name": "train_small", "value": 2048}',
    "",
  ].join("\n");
  assert.deepEqual(
    [...parsePeerOutput(stdout)],
    [
      ["matmul_a", 101.5],
      ["train_small", 2048],
    ],
  );
  assert.equal(parsePeerOutput("").size, 0);
});

test("arguments: --only, --json, --repeats, --no-peer, usage errors", () => {
  assert.deepEqual(parseBenchArgs([]), { json: false, repeats: 3, peer: true });
  assert.deepEqual(parseBenchArgs(["--only", "a, b", "--json", "--repeats=5", "--no-peer"]), {
    only: ["a", "b"],
    json: true,
    repeats: 5,
    peer: false,
  });
  assert.throws(() => parseBenchArgs(["--repeats", "0"]), /positive integer/);
  assert.throws(() => parseBenchArgs(["--only"]), /needs a value/);
  assert.throws(() => parseBenchArgs(["--fast"]), /unknown option --fast/);
});

test("--only keeps the order given and rejects unknown names", () => {
  const calls: string[] = [];
  const all = [fake("a", [], calls), fake("b", [], calls), fake("c", [], calls)];
  assert.deepEqual(
    selectBenches(all, ["c", "a"]).map((b) => b.name),
    ["c", "a"],
  );
  assert.equal(selectBenches(all).length, 3);
  assert.throws(() => selectBenches(all, ["a", "zz"]), /unknown benchmark\(s\) zz; available: a, b, c/);
});

test("alternates emlab and peer, swapping who goes first, and takes medians", async () => {
  const calls: string[] = [];
  const peerFigures = [100, 300, 200];
  const peer = async (name: string) => {
    calls.push(`peer:${name}`);
    return peerFigures.shift()!;
  };
  let tornDown = false;
  const bench = fake("matmul_a", [50, 10, 90], calls, { teardown: () => void (tornDown = true) });
  const r = await runBench(bench, 3, peer);
  assert.deepEqual(calls, [
    "emlab:matmul_a",
    "peer:matmul_a",
    "peer:matmul_a",
    "emlab:matmul_a",
    "emlab:matmul_a",
    "peer:matmul_a",
  ]);
  assert.deepEqual(r, { bench: "matmul_a", emlab: 50, peer: 200, unit: "GFLOP/s", ratio: 0.25 });
  assert.ok(tornDown);
});

test("peerName maps to the contract name; null means no peer call", async () => {
  const calls: string[] = [];
  const peer = async (name: string) => {
    calls.push(`peer:${name}`);
    return 10;
  };
  await runBench(fake("train", [1], calls, { peerName: "train_small" }), 1, peer);
  assert.deepEqual(calls, ["emlab:train", "peer:train_small"]);
  const r = await runBench(fake("io", [5, 5], [], { peerName: null, unit: "MB/s" }), 2, peer);
  assert.deepEqual(r, { bench: "io", emlab: 5, peer: null, unit: "MB/s", ratio: null });
  assert.equal(calls.length, 2);
});

test("absent peer: peer and ratio null, and a peer that fails at once is not asked again", async () => {
  assert.deepEqual(await runBench(fake("a", [1, 2, 3], []), 3, null), {
    bench: "a",
    emlab: 2,
    peer: null,
    unit: "GFLOP/s",
    ratio: null,
  });
  let asked = 0;
  const notes: string[] = [];
  const r = await runBench(
    fake("b", [1, 2, 3], []),
    3,
    async () => {
      asked++;
      return null;
    },
    (m) => notes.push(m),
  );
  assert.equal(r.peer, null);
  assert.equal(asked, 1);
  assert.ok(notes.some((n) => /no peer figure/.test(n)));
});

test("a bench that returns a non-number is an error, and still tears down", async () => {
  let tornDown = false;
  const bad = fake("bad", [Number.NaN], [], { teardown: () => void (tornDown = true) });
  await assert.rejects(runBench(bad, 1, null), /bench bad returned NaN/);
  assert.ok(tornDown);
});

test("the --json line has exactly the contract's keys, in order", () => {
  const line = jsonLine({ bench: "matmul_a", emlab: 123.456789123, peer: 100, unit: "GFLOP/s", ratio: 1.23456789123 });
  assert.equal(line, '{"bench":"matmul_a","emlab":123.457,"peer":100,"unit":"GFLOP/s","ratio":1.23457}');
  const parsed = JSON.parse(jsonLine({ bench: "x", emlab: 1, peer: null, unit: "MB/s", ratio: null }));
  assert.deepEqual(Object.keys(parsed), ["bench", "emlab", "peer", "unit", "ratio"]);
  assert.equal(parsed.peer, null);
  const t = table([{ bench: "x", emlab: 1, peer: null, unit: "MB/s", ratio: null }]).split("\n");
  assert.equal(t.length, 2);
  assert.match(t[1]!, /^x\s+1\.00\s+—\s+MB\/s\s+—$/);
});

const dir = mkdtempSync(join(tmpdir(), "emlab-bench-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("torchPeer: runs the script with --only NAME --quick and reads its line; absent pieces give null", async () => {
  // a stand-in for torch_peer.py, run by node instead of python: echoes its arguments back
  const script = join(dir, "fake_peer.mjs");
  writeFileSync(
    script,
    `const [, , ...a] = process.argv;
     console.error("# env {}");
     if (a[1] === "fails") { console.error("RuntimeError: boom"); process.exit(1); }
     console.log(JSON.stringify({ name: a[1], value: a[2] === "--quick" ? 42 : -1, unit: "GFLOP/s" }));`,
  );
  const notes: string[] = [];
  const { runner } = torchPeer(process.execPath, script, (m) => notes.push(m));
  assert.ok(runner);
  assert.equal(await runner("matmul_a"), 42);
  assert.equal(await runner("fails"), null);
  assert.match(notes.join("\n"), /peer fails: no figure \(exit 1\): # env \{\} \| RuntimeError: boom/);

  assert.deepEqual(
    torchPeer(join(dir, "no-python"), script, () => {}),
    { runner: null, reason: `${join(dir, "no-python")} not found` },
  );
  assert.equal(torchPeer(process.execPath, join(dir, "none.py"), () => {}).runner, null);
});
