/**
 * EMLAB_PROFILE=1 (or the older EMLAB_ORT_PROFILE=1): the wall time of every onnxruntime
 * and native kernel call, summed per kernel and input shapes, printed to stderr when the
 * process exits — where the time goes in a benchmark. Off, it costs one null check per call.
 */
const enabled = process.env.EMLAB_PROFILE === "1" || process.env.EMLAB_ORT_PROFILE === "1";
const table = enabled ? new Map<string, { ms: number; calls: number }>() : null;

if (table)
  process.on("exit", () => {
    const rows = [...table.entries()].sort((a, b) => b[1].ms - a[1].ms);
    const total = rows.reduce((t, [, r]) => t + r.ms, 0);
    const lines = rows
      .slice(0, 30)
      .map(([k, r]) => `${r.ms.toFixed(0).padStart(8)} ms ${String(r.calls).padStart(7)} calls  ${k}`);
    process.stderr.write(`kernel calls: ${total.toFixed(0)} ms in all (top 30 by time)\n${lines.join("\n")}\n`);
  });

/** True when calls should be timed (EMLAB_PROFILE=1). */
export const profiling = table !== null;

/** Adds one call of `ms` to the kernel and shape named by `key()` (built only when profiling). */
export function recordKernel(key: string, ms: number): void {
  if (!table) return;
  const r = table.get(key) ?? { ms: 0, calls: 0 };
  r.ms += ms;
  r.calls++;
  table.set(key, r);
}
