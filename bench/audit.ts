/**
 * audit_rows: rows audited per second on the EM paper's insecure.jsonl (6,000 rows),
 * streaming from disk; one pass per run (the harness repeats and takes the median).
 * No torch counterpart (peerName: null).
 */
import { existsSync } from "node:fs";
import { auditFile } from "../src/data/audit/audit.ts";
import type { Bench } from "./harness.ts";

const FILE = new URL("../../shared/em-datasets/insecure.jsonl", import.meta.url).pathname;

export const benches: Bench[] = [
  {
    name: "audit_rows",
    unit: "rows/s",
    peerName: null,
    run: async (): Promise<number> => {
      if (!existsSync(FILE)) throw new Error(`audit_rows needs ${FILE}`);
      const t0 = performance.now();
      const rep = await auditFile(FILE);
      return Math.round(rep.rows / ((performance.now() - t0) / 1000));
    },
  },
];

// `node --import tsx bench/audit.ts` prints the median of 5 passes on its own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const rates: number[] = [];
  for (let i = 0; i < 5; i++) rates.push(await benches[0]!.run());
  console.log(`audit_rows: ${rates.sort((a, b) => a - b)[2]} rows/s (median of 5)`);
}
