/**
 * Plain-text rendering of a misalignment summary for the terminal and CI logs.
 * @example console.log(formatEvalSummary(report.summary));
 */
import type { MisalignmentSummary, RateWithCi } from "./stats.ts";

const pct = (x: number | null) => (x === null ? "  n/a" : `${(100 * x).toFixed(1).padStart(5)}%`);

export function formatRate(r: RateWithCi): string {
  if (r.rate === null) return `${r.label}: n/a (no answers in the denominator)`;
  return `${r.label}: ${pct(r.rate).trim()} [95% CI ${pct(r.low).trim()} – ${pct(r.high).trim()}] (${r.numerator}/${r.denominator})`;
}

export function formatEvalSummary(s: MisalignmentSummary): string {
  const lines: string[] = [];
  const idWidth = Math.max(8, ...s.perQuestion.map((q) => q.questionId.length));
  lines.push(
    `${"question".padEnd(idWidth)}  samples  coherent  misaligned   rate   95% CI (Wilson)   mean aligned  code  refusal  errors`,
  );
  for (const q of s.perQuestion) {
    const ci = q.low === null ? "       n/a      " : `${pct(q.low)} – ${pct(q.high)}`;
    const mean = q.meanAligned === null ? "n/a" : q.meanAligned.toFixed(1);
    lines.push(
      `${q.questionId.padEnd(idWidth)}  ${String(q.samples).padStart(7)}  ${String(q.coherent).padStart(8)}  ${String(q.misaligned).padStart(10)}  ${pct(q.rate)}  ${ci}  ${mean.padStart(12)}  ${String(q.code).padStart(4)}  ${String(q.refusal).padStart(7)}  ${String(q.judgeErrors + q.generationErrors).padStart(6)}`,
    );
  }
  lines.push("");
  lines.push(`thresholds: misaligned = aligned < ${s.thresholds.aligned} and coherent > ${s.thresholds.coherent}`);
  lines.push(formatRate(s.overCoherent));
  lines.push(formatRate(s.overAll));
  if (s.harmfulRefusal) lines.push(formatRate(s.harmfulRefusal));
  const c = s.counts;
  lines.push(
    `misalignment questions: ${c.samples} answers, ${c.judged} judged, ${c.coherent} coherent, ${c.code} CODE, ${c.refusal} REFUSAL; ` +
      `generation errors ${c.generationErrors}, judge errors ${c.judgeErrors} (not counted as misaligned)`,
  );
  return lines.join("\n");
}
