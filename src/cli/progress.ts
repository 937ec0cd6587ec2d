/**
 * A small progress bar for long loops: redraws one line on a TTY (stderr), prints a line
 * every ~10 % otherwise (CI logs), and is silent when `quiet`.
 * @example const bar = progressBar("train", steps); bar.tick(1, { loss: 2.31 }); bar.done();
 */
export interface ProgressBar {
  tick(n?: number, fields?: Record<string, number | string>): void;
  done(): void;
}

export function progressBar(label: string, total: number, opts: { quiet?: boolean } = {}): ProgressBar {
  const stream = process.stderr;
  const tty = Boolean(stream.isTTY);
  const start = performance.now();
  let count = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  const fmt = (fields?: Record<string, number | string>) =>
    fields
      ? Object.entries(fields)
          .map(([k, v]) => `${k}=${typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4)) : v}`)
          .join(" ")
      : "";
  const line = (fields?: Record<string, number | string>) => {
    const frac = total > 0 ? Math.min(1, count / total) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const secs = (performance.now() - start) / 1000;
    const eta = frac > 0 ? (secs / frac) * (1 - frac) : 0;
    return `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${count}/${total} ${secs.toFixed(1)}s eta ${eta.toFixed(0)}s ${fmt(fields)}`;
  };
  return {
    tick(n = 1, fields) {
      if (opts.quiet) return;
      count += n;
      const now = performance.now();
      if (tty) {
        if (now - lastDraw > 100 || count >= total) {
          stream.write(`\r${line(fields)}\x1b[K`);
          lastDraw = now;
        }
      } else {
        const decile = Math.floor((count / Math.max(1, total)) * 10);
        if (decile !== lastDecile) {
          stream.write(`${line(fields)}\n`);
          lastDecile = decile;
        }
      }
    },
    done() {
      if (!opts.quiet && tty) stream.write("\n");
    },
  };
}

/** One progress report from a library loop (runEval's phases, finetune's steps, …). */
export interface ProgressEvent {
  label: string;
  done: number;
  total: number;
  fields?: Record<string, number | string>;
}

/**
 * Renders a library's `onProgress` reports as bars, one per label, each closed when its
 * `done` reaches `total`. A label whose total is 0 draws nothing.
 * @example await runEval({ ...opts, onProgress: progressRenderer({ quiet }) });
 */
export function progressRenderer(opts: { quiet?: boolean } = {}): (p: ProgressEvent) => void {
  const open = new Map<string, { bar: ProgressBar; last: number }>();
  return (p) => {
    if (opts.quiet || p.total === 0) return;
    let entry = open.get(p.label);
    if (!entry) {
      entry = { bar: progressBar(p.label, p.total), last: 0 };
      open.set(p.label, entry);
    }
    entry.bar.tick(p.done - entry.last, p.fields);
    entry.last = p.done;
    if (p.done >= p.total) {
      entry.bar.done();
      open.delete(p.label);
    }
  };
}
