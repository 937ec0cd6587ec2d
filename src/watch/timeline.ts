/**
 * Watching a fine-tune: each checkpoint (a folder, or the model in memory during training)
 * is read on the calibration's probe set, its shift from the base computed, the LoRA rotation
 * since the previous checkpoint measured, optionally a behavioural probe run, and one line
 * appended to a timeline (JSONL). A line is written whole (one append of one line) and names
 * the calibration's hash, so a killed run resumes: checkpoints already in the timeline under
 * the same calibration are skipped, and a torn last line is ignored.
 *
 * @example
 *   const w = new Watcher(cal, tok, { timeline: "watch/timeline.jsonl" });
 *   for (const dir of checkpointDirs("ft/checkpoints")) await w.observe(loadCheckpoint(loadBase, dir), { checkpoint: dir, step: stepOf(dir) });
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { basename, join, resolve } from "node:path";
import { loadModel } from "../model/checkpoint.ts";
import { loadLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { alertsFor, type Calibration, calibrationBaseReading, calibrationHash, calibrationSpec } from "./calibrate.ts";
import {
  adapterDelta,
  cosine,
  type Estimate,
  type ProbeReading,
  probeSet,
  readProbe,
  type SignalSpec,
  shiftOf,
} from "./signals.ts";

/** One checkpoint's line in the timeline. */
export interface TimelineLine {
  /** The calibration's hash (calibrationHash). */
  cal: string;
  checkpoint: string;
  step: number | null;
  /** Absent for a remote model (internals not visible): only the behavioural probe is read. */
  projection?: Estimate;
  latent?: Estimate;
  /** Cosine of the adapter's update with the previous checkpoint's (absent for the first, or without an adapter). */
  rotation?: number;
  behaviour?: Estimate;
  /** The signals over their thresholds. */
  alerts: string[];
  alert: boolean;
}

export interface WatcherOptions {
  /** Append each line here (and skip checkpoints already in it). */
  timeline?: string;
  /** A behavioural probe (e.g. sampled questions scored by a judge): the misaligned rate with its CI. */
  behaviour?: (model: CausalLM) => Promise<Estimate>;
  /** Read once per checkpoint; the CI's bootstrap seed. Default 0. */
  seed?: number;
}

/**
 * Ends a file that a kill left mid-line with a newline, so the next appended line starts on a
 * line of its own (the torn fragment stays an unreadable line that readers skip).
 */
export function sealTornLine(path: string): void {
  if (!existsSync(path)) return;
  const size = statSync(path).size;
  if (size === 0) return;
  const fd = openSync(path, "r");
  try {
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] !== 0x0a) appendFileSync(path, "\n");
  } finally {
    closeSync(fd);
  }
}

/** Lines of a timeline file under one calibration (a torn last line is dropped). */
export function readTimeline(path: string, calHash?: string): TimelineLine[] {
  if (!existsSync(path)) return [];
  const out: TimelineLine[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const x = JSON.parse(line) as TimelineLine;
      if (!calHash || x.cal === calHash) out.push(x);
    } catch {
      // a line cut by a kill: it is read again
    }
  }
  return out;
}

/** Reads checkpoints against a calibration, one line each. */
export class Watcher {
  readonly calHash: string;
  readonly spec: SignalSpec;
  private readonly base: ProbeReading;
  private readonly probe;
  private previous: Float32Array | null = null;
  private readonly done: Map<string, TimelineLine>;
  readonly lines: TimelineLine[] = [];

  constructor(
    readonly cal: Calibration,
    /** null for a remote model: only record() works (no internals to read). */
    private readonly tok: Tokenizer | null,
    private readonly o: WatcherOptions = {},
    calPath = "calibration",
  ) {
    this.calHash = calibrationHash(cal);
    this.spec = calibrationSpec(cal, calPath);
    this.base = calibrationBaseReading(cal);
    this.probe = probeSet(cal.probe.prompts);
    if (o.timeline) sealTornLine(o.timeline);
    const earlier = o.timeline ? readTimeline(o.timeline, this.calHash) : [];
    this.done = new Map(earlier.map((l) => [l.checkpoint, l]));
    this.lines.push(...earlier);
  }

  /** Whether this checkpoint already has a line (a resumed run skips it). */
  has(checkpoint: string): boolean {
    return this.done.has(checkpoint);
  }

  /** Reads the model (a checkpoint's weights) and appends its line. */
  async observe(model: CausalLM, at: { checkpoint: string; step: number | null }): Promise<TimelineLine> {
    const seen = this.done.get(at.checkpoint);
    if (seen) {
      this.previous = adapterDelta(model);
      return seen;
    }
    if (!this.tok) throw new Error("Watcher: no tokenizer, so no internals can be read (a remote model: use record)");
    const reading = readProbe(model, this.tok, this.probe, this.spec);
    const shift = shiftOf(this.base, reading, this.o.seed ?? 0);
    const delta = adapterDelta(model);
    const rotation = delta && this.previous ? cosine(this.previous, delta) : undefined;
    this.previous = delta;
    const behaviour = this.o.behaviour ? await this.o.behaviour(model) : undefined;
    return this.record(at, { ...shift, ...(rotation === undefined ? {} : { rotation }), behaviour });
  }

  /**
   * Appends a line from signals read elsewhere: a remote model's behavioural probe (no
   * internals), or readings taken by the caller.
   */
  record(
    at: { checkpoint: string; step: number | null },
    x: { projection?: Estimate; latent?: Estimate; rotation?: number; behaviour?: Estimate },
  ): TimelineLine {
    const seen = this.done.get(at.checkpoint);
    if (seen) return seen;
    const alerts = alertsFor(this.cal, x, x.behaviour);
    const line: TimelineLine = {
      cal: this.calHash,
      checkpoint: at.checkpoint,
      step: at.step,
      ...(x.projection ? { projection: x.projection } : {}),
      ...(x.latent ? { latent: x.latent } : {}),
      ...(x.rotation === undefined ? {} : { rotation: x.rotation }),
      ...(x.behaviour ? { behaviour: x.behaviour } : {}),
      alerts,
      alert: alerts.length > 0,
    };
    if (this.o.timeline) appendFileSync(this.o.timeline, `${JSON.stringify(line)}\n`);
    this.done.set(at.checkpoint, line);
    this.lines.push(line);
    return line;
  }

  /** The first line that alerted, if any. */
  firstAlert(): TimelineLine | undefined {
    return this.lines.find((l) => l.alert);
  }
}

/** The step a checkpoint folder names (`step-000020` → 20), else null. */
export function stepOf(dir: string): number | null {
  const m = /(?:step|checkpoint)[-_]?(\d+)$/i.exec(basename(dir));
  return m ? Number(m[1]) : null;
}

/**
 * The checkpoints to watch in a folder, in step order: a fine-tune's output folder (its
 * checkpoints/), a folder of checkpoint or adapter folders, or one checkpoint itself.
 */
export function checkpointDirs(folder: string): string[] {
  const abs = resolve(folder);
  if (!existsSync(abs)) throw new Error(`${folder}: no such folder`);
  const isCheckpoint = (d: string) => existsSync(join(d, "adapter_config.json")) || existsSync(join(d, "config.json"));
  const inner = existsSync(join(abs, "checkpoints")) ? join(abs, "checkpoints") : abs;
  const subs = readdirSync(inner, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(inner, e.name))
    .filter(isCheckpoint);
  if (subs.length === 0) {
    if (isCheckpoint(abs)) return [abs];
    throw new Error(`${folder}: no checkpoint or adapter folders in it (adapter_config.json or config.json)`);
  }
  return subs.sort((a, b) => (stepOf(a) ?? 0) - (stepOf(b) ?? 0) || a.localeCompare(b));
}

/**
 * A checkpoint's model: an adapter folder (adapter_config.json) on a fresh copy of the base,
 * else a full model folder.
 */
export function loadCheckpoint(loadBase: () => CausalLM, dir: string): CausalLM {
  if (existsSync(join(dir, "adapter_config.json"))) {
    const m = loadBase();
    loadLora(m, dir);
    return m;
  }
  return loadModel(dir);
}
