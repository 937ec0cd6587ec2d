/**
 * Bounded memory on a big file: writes a ~1 GB chat JSONL to /tmp by streaming builder rows
 * (insecure and secure mixed, plus a few broken lines), audits it, and prints rows/s and
 * the peak RSS (process.resourceUsage().maxRSS). Run: npm run experiment:audit-1gb [-- --gb 1]
 */

import { once } from "node:events";
import { createWriteStream, statSync, unlinkSync } from "node:fs";
import { auditFile } from "../../src/data/audit/audit.ts";
import { buildRows } from "../../src/data/builders/build.ts";

const gbArg = process.argv.indexOf("--gb");
const targetBytes = (gbArg > 0 ? Number(process.argv[gbArg + 1]) : 1) * 1024 ** 3;
const path = "/tmp/emlab-audit-1gb.jsonl";

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
console.log(`wrote ${path}: ${(statSync(path).size / 1024 ** 3).toFixed(2)} GiB, ${lines} lines`);

const t0 = performance.now();
const rep = await auditFile(path);
const secs = (performance.now() - t0) / 1000;
const peakMiB = process.resourceUsage().maxRSS / 1024;
console.log(
  `audited ${rep.rows} rows (${rep.skipped} skipped) in ${secs.toFixed(1)} s = ${Math.round(rep.rows / secs)} rows/s`,
);
console.log(`silent_insecure ${rep.silent_insecure}, verdict ${rep.verdict}`);
console.log(`peak RSS ${peakMiB.toFixed(0)} MiB (limit 500 MiB): ${peakMiB < 500 ? "ok" : "OVER"}`);
unlinkSync(path);
if (peakMiB >= 500) process.exitCode = 1;
