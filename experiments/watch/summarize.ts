/**
 * `node --import tsx experiments/watch/summarize.ts [--phase confirm]`
 *
 * Reads experiments/watch/results/<phase>.jsonl (written by run.ts) and writes
 * results/<phase>-summary.jsonl: one flat line per table row (the docs' tables point at it),
 * with the issue's acceptance checks computed from the per-run lines. Prints the lines.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SCREEN_THRESHOLD } from "../../src/cli/screen-data.ts";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { phase: { type: "string", default: "confirm" } } });
const phase = values.phase!;
type Est = { value: number; low: number; high: number };
// biome-ignore lint/suspicious/noExplicitAny: result lines are loose JSON
type Line = Record<string, any>;
const raw: Line[] = readFileSync(join(here, "results", `${phase}.jsonl`), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l));
// A phase may run as several processes (run.ts --only / --fractions / --variants), each writing
// its own calibration line; a rerun of a part writes its lines again. Keep one line per key.
const keyOf = (l: Line) =>
  JSON.stringify([l.kind, l.seeds, l.fraction ?? null, l.set ?? null, l.variant ?? null, l.what ?? null]);
const lines: Line[] = [...new Map(raw.map((l) => [keyOf(l), l])).values()];
const of = (kind: string) => lines.filter((l) => l.kind === kind);
const out: Line[] = [];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

const cal = of("calibration")[0]!;
out.push({
  table: "calibration",
  phase,
  plan_hash: cal.plan_hash,
  gap: cal.gap,
  threshold: cal.threshold,
  control_max: Math.max(...cal.controls.map((c: { shift: Est }) => c.shift.value)),
  villain_prompt_misaligned: cal.answers[0].misaligned,
  helper_prompt_misaligned: cal.answers[1].misaligned,
});

const pooled = new Map(of("mix_pooled").map((l) => [l.fraction, l.shift as Est]));
const zero = pooled.get(0);
for (const f of [...new Set(of("mix").map((l) => l.fraction as number))]) {
  const runs = of("mix").filter((l) => l.fraction === f);
  const p = pooled.get(f)!;
  out.push({
    table: "mix",
    phase,
    fraction: f,
    shift: p.value,
    shift_low: p.low,
    shift_high: p.high,
    excludes_zero_mix: zero && f > 0 ? p.low > zero.high : null,
    alerts: `${runs.filter((r) => r.alert).length}/${runs.length}`,
    misaligned_mean: r4(mean(runs.map((r) => r.behaviour.value))),
    misaligned_min: r4(Math.min(...runs.map((r) => r.behaviour.value))),
    misaligned_max: r4(Math.max(...runs.map((r) => r.behaviour.value))),
    behaviour_above_base: `${runs.filter((r) => r.behaviour.low > r.base_behaviour.high).length}/${runs.length}`,
  });
}

for (const set of [...new Set(of("false_alarm").map((l) => l.set as string))]) {
  const runs = of("false_alarm").filter((l) => l.set === set);
  out.push({
    table: "false_alarm",
    phase,
    set,
    alerts: `${runs.filter((r) => r.alert).length}/${runs.length}`,
    shift_max: r4(Math.max(...runs.map((r) => r.shift.value))),
    threshold: cal.threshold,
  });
}

for (const s of of("steps")) {
  out.push({
    table: "steps",
    phase,
    finetune: s.seeds.finetune,
    first_alert: s.first_alert,
    first_behaviour_above_base: s.first_behaviour_above_base,
    lead_steps: s.lead_steps,
    alert_no_later:
      s.first_alert !== null &&
      (s.first_behaviour_above_base === null || s.first_alert <= s.first_behaviour_above_base),
    min_rotation: r4(Math.min(...s.timeline.filter((t: Line) => t.rotation !== null).map((t: Line) => t.rotation))),
  });
}

const verdictOf = (e: Est) => (e.low > SCREEN_THRESHOLD ? "flag" : e.high < SCREEN_THRESHOLD ? "clear" : "unclear");
for (const s of of("screen"))
  out.push({
    table: "screen",
    phase,
    variant: s.variant,
    delta_p: s.delta_p.value,
    delta_p_low: s.delta_p.low,
    delta_p_high: s.delta_p.high,
    verdict: verdictOf(s.delta_p),
    misaligned: s.misaligned_own_format,
    format: s.format,
    misaligned_plain: s.misaligned_plain,
    shift: s.shift,
  });
const pearson = (a: number[], b: number[]) => {
  const n = a.length;
  const ma = mean(a);
  const mb = mean(b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return r4(ab / Math.sqrt(aa * bb));
};
const screens = of("screen");
if (screens.length > 2) {
  const dp = screens.map((s) => s.delta_p.value as number);
  out.push({
    table: "screen_correlation",
    phase,
    variants: screens.length,
    r_misaligned: pearson(
      dp,
      screens.map((s) => s.misaligned_own_format),
    ),
    r_misaligned_plain: pearson(
      dp,
      screens.map((s) => s.misaligned_plain),
    ),
    r_shift: pearson(
      dp,
      screens.map((s) => s.shift),
    ),
    threshold: SCREEN_THRESHOLD,
  });
}
for (const s of of("screen_drop"))
  out.push({
    table: "screen_drop",
    phase,
    what: s.what,
    rows: s.rows,
    insecure_rows: s.insecure_rows,
    misaligned_mean: s.misaligned_mean,
  });
for (const s of of("early_stop"))
  out.push({
    table: "early_stop",
    phase,
    finetune: s.seeds.finetune,
    stopped_at: s.stopped_at,
    misaligned_at_stop: s.misaligned_at_stop.value,
    misaligned_unstopped: s.misaligned_unstopped.value,
    ratio: s.ratio,
    narrow_task_at_stop: s.narrow_task_at_stop,
    narrow_task_unstopped: s.narrow_task_unstopped,
    narrow_task_base: s.narrow_task_base,
  });
const stops = of("early_stop");
if (stops.length)
  out.push({
    table: "early_stop_pooled",
    phase,
    misaligned_at_stop: r4(mean(stops.map((s) => s.misaligned_at_stop.value))),
    misaligned_unstopped: r4(mean(stops.map((s) => s.misaligned_unstopped.value))),
    ratio: r4(
      mean(stops.map((s) => s.misaligned_at_stop.value)) / mean(stops.map((s) => s.misaligned_unstopped.value)),
    ),
    narrow_task_at_stop: r4(mean(stops.map((s) => s.narrow_task_at_stop))),
    narrow_task_unstopped: r4(mean(stops.map((s) => s.narrow_task_unstopped))),
  });

writeFileSync(join(here, "results", `${phase}-summary.jsonl`), out.map((l) => JSON.stringify(l)).join("\n") + "\n");
for (const l of out) console.log(JSON.stringify(l));
