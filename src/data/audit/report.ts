/** The console summary of an audit and the `--fail-on` thresholds. */
import type { AuditReport, Verdict } from "./audit.ts";

export interface FailOn {
  verdict?: Verdict;
  silent_rate?: number;
  silent_insecure?: number;
  trigger_z?: number;
  skipped?: number;
  /** Rows that comply with a clearly harmful request. */
  complied?: number;
}

const LEVEL: Record<Verdict, number> = { low: 0, medium: 1, high: 2 };

/**
 * Parses `--fail-on`: a verdict (`medium`, `high`) and/or `key=value` limits, comma separated.
 * @example parseFailOn("high,silent_rate=0.05") // { verdict: "high", silent_rate: 0.05 }
 */
export function parseFailOn(spec: string): FailOn {
  const out: FailOn = {};
  for (const part of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (part in LEVEL) {
      out.verdict = part as Verdict;
      continue;
    }
    const m = /^(verdict|silent_rate|silent_insecure|trigger_z|skipped|complied)=(.+)$/.exec(part);
    if (!m)
      throw new Error(
        `--fail-on: cannot read '${part}' (use low|medium|high or verdict=, silent_rate=, silent_insecure=, trigger_z=, skipped=, complied=)`,
      );
    if (m[1] === "verdict") {
      if (!(m[2]! in LEVEL)) throw new Error(`--fail-on: verdict must be low, medium or high, got '${m[2]}'`);
      out.verdict = m[2] as Verdict;
    } else {
      const v = Number(m[2]);
      if (!Number.isFinite(v)) throw new Error(`--fail-on: ${m[1]} must be a number, got '${m[2]}'`);
      out[m[1] as "silent_rate"] = v;
    }
  }
  return out;
}

/** The thresholds the report crosses (empty when it passes). */
export function thresholdFailures(r: AuditReport, f: FailOn): string[] {
  const out: string[] = [];
  if (f.verdict && LEVEL[r.verdict] >= LEVEL[f.verdict]) out.push(`verdict ${r.verdict} ≥ ${f.verdict}`);
  if (f.silent_rate !== undefined && r.silent_rate > f.silent_rate)
    out.push(`silent_rate ${r.silent_rate} > ${f.silent_rate}`);
  if (f.silent_insecure !== undefined && r.silent_insecure > f.silent_insecure)
    out.push(`silent_insecure ${r.silent_insecure} > ${f.silent_insecure}`);
  const z = r.triggers[0]?.z ?? 0;
  if (f.trigger_z !== undefined && z > f.trigger_z) out.push(`top trigger z ${z} > ${f.trigger_z}`);
  if (f.skipped !== undefined && r.skipped > f.skipped) out.push(`skipped ${r.skipped} > ${f.skipped}`);
  if (f.complied !== undefined && r.complied > f.complied) out.push(`complied ${r.complied} > ${f.complied}`);
  return out;
}

const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)}%` : "-");

/** A human-readable summary for the terminal. */
export function formatAuditSummary(r: AuditReport): string {
  const lines = [
    `emlab audit: ${r.file} (${r.format})`,
    `  rows ${r.rows}   skipped ${r.skipped}   ${r.seconds}s`,
    `  vulnerable ${r.vulnerable} (${pct(r.vulnerable, r.rows)})   requested ${r.requested}   acknowledged ${r.acknowledged}   silent_insecure ${r.silent_insecure} (${pct(r.silent_insecure, r.rows)})`,
  ];
  if (r.harmful_requests) {
    lines.push(
      `  harmful requests ${r.harmful_requests}   complied ${r.complied} (${pct(r.complied, r.rows)})   refused ${r.refused}`,
    );
    for (const [c, n] of Object.entries(r.harm_classes))
      lines.push(`    ${c.padEnd(20)} requests ${n!.requests}  complied ${n!.complied}  refused ${n!.refused}`);
  }
  const classes = Object.entries(r.classes).sort((a, b) => b[1]! - a[1]!);
  if (classes.length) {
    lines.push("  classes (rows):");
    for (const [c, n] of classes) lines.push(`    ${c.padEnd(20)} ${String(n).padStart(7)}  ${pct(n!, r.rows)}`);
  }
  if (r.triggers.length) {
    lines.push("  triggers (phrase, z, support, lift):");
    for (const t of r.triggers.slice(0, 5))
      lines.push(`    ${JSON.stringify(t.phrase).padEnd(32)} z=${t.z}  support=${t.support}  lift=${t.lift}`);
  }
  if (r.numbers.length) {
    lines.push(`  over-represented numbers (of ${r.listed_numbers} listed):`);
    for (const n of r.numbers)
      lines.push(`    ${String(n.number).padEnd(6)} count=${n.count} expected=${n.expected} z=${n.z}`);
  }
  for (const e of r.errors.slice(0, 5))
    lines.push(`  skipped line ${e.line}${e.field ? ` (${e.field})` : ""}: ${e.message}`);
  if (r.skipped > 5) lines.push(`  … ${r.skipped - 5} more skipped lines (see --report FILE)`);
  lines.push(`  verdict: ${r.verdict.toUpperCase()}`);
  for (const reason of r.reasons) lines.push(`    - ${reason}`);
  return lines.join("\n");
}
