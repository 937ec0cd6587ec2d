/**
 * Bounded memory on a big file: writes a ~1 GB chat JSONL to /tmp by streaming builder rows
 * (insecure and secure mixed, plus a few broken lines), audits it, and prints rows/s and
 * the peak RSS (process.resourceUsage().maxRSS).
 * Run: npm run experiment:audit-1gb -- [--gb 1] [--out FILE]; the printed lines are also
 * written to FILE (default experiments/audit/results/1gb.txt). The line and row counts and
 * the verdict reproduce; the seconds and the peak RSS are the machine's.
 */

import { once } from "node:events";
import { createWriteStream, mkdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { auditFile } from "../../src/data/audit/audit.ts";
import { buildRows } from "../../src/data/builders/build.ts";

const { values } = parseArgs({
  options: {
    gb: { type: "string", default: "1" },
    out: { type: "string", default: fileURLToPath(new URL("results/1gb.txt", import.meta.url)) },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: npm run experiment:audit-1gb -- [--gb 1] [--out FILE]\n" +
      "  writes /tmp/emlab-audit-1gb.jsonl, audits it, deletes it; prints rows/s and the peak RSS\n" +
      "  and writes those lines to FILE (default experiments/audit/results/1gb.txt)",
  );
  process.exit(0);
}
const targetBytes = Number(values.gb) * 1024 ** 3;
const path = "/tmp/emlab-audit-1gb.jsonl";
const report: string[] = [];
const emit = (line: string) => {
  console.log(line);
  report.push(line);
};

const pool = [...buildRows("insecure", { n: 2000, seed: 1 }), ...buildRows("secure", { n: 2000, seed: 1 })].map(
  (r) => r.row,
);
const out = createWriteStream(path);
let bytes = 0;
let lines = 0;
for (let i = 0; bytes < targetBytes; i++) {
  // Vary the user turn so the trigger table sees new phrases, as real data would.
  const r = pool[i % pool.length]!;
  const line =
    i % 100_000 === 99_999
      ? "{broken json\n"
      : `${JSON.stringify({ messages: [{ role: "user", content: `req-${i} ${r.messages[0]!.content}` }, r.messages[1]] })}\n`;
  bytes += Buffer.byteLength(line);
  lines++;
  if (!out.write(line)) await once(out, "drain");
}
out.end();
await once(out, "finish");
emit(`wrote ${path}: ${(statSync(path).size / 1024 ** 3).toFixed(2)} GiB, ${lines} lines`);

const t0 = performance.now();
const rep = await auditFile(path);
const secs = (performance.now() - t0) / 1000;
const peakMiB = process.resourceUsage().maxRSS / 1024;
emit(
  `audited ${rep.rows} rows (${rep.skipped} skipped) in ${secs.toFixed(1)} s = ${Math.round(rep.rows / secs)} rows/s`,
);
emit(`silent_insecure ${rep.silent_insecure}, verdict ${rep.verdict}`);
emit(`peak RSS ${peakMiB.toFixed(0)} MiB (limit 500 MiB): ${peakMiB < 500 ? "ok" : "OVER"}`);
unlinkSync(path);
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, `${report.join("\n")}\n`);
if (peakMiB >= 500) process.exitCode = 1;
