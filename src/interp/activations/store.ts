/**
 * An activation store on disk: sharded safetensors plus a metadata.json, written as a
 * stream and read back as shuffled batches (for SAE training) or all at once (small stores).
 *
 * Layout of a store folder:
 *   metadata.json              format, model, hook, mask, d, rows, shards, dtype, normalisation, …
 *   shard_00000.safetensors    "activations" [rows, d] (F32, F16 or BF16) and the provenance
 *                              "item", "pos", "token" [rows] (I32), rows in collection order
 *
 * Writing is transactional: everything goes into `<dir>.partial/`, whose metadata.json says
 * `complete: false` and is rewritten (atomically) after each shard with the number of items
 * done; `finish()` marks it complete and renames the folder to `<dir>`. A crash leaves no
 * half store at `<dir>`, and `resume: true` continues a `.partial` folder from its last
 * whole shard (a shard always ends at an item boundary).
 *
 * Normalisation ("expected_average_only_in", SAELens's name): the scale factor that makes
 * the mean row norm √d, computed over every row written and recorded in metadata.json. The
 * shards keep the raw activations; the reader multiplies by the factor (pass `raw: true` to
 * get the stored values). So a store is normalised exactly, in one pass, and still usable
 * raw from Python: `acts * metadata["normalization"]["scale_factor"]`.
 *
 * Writing (ActivationStoreWriter, collectToStore) is in activation-store-writer.ts.
 *
 * @example
 *   const store = collectToStore(model, items, { dir: "acts/base-l2", hook: "blocks.2.hook_resid_post",
 *     tokenizer: tok, mask: "no-special", normalize: "expected_average_only_in" });
 *   const { sae } = trainSae(store.source({ seed: 0 }), { k: 32, dSae: 4096, batchSize: 4096, lr: 2e-4, seed: 0 });
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { z } from "zod";
import { asFloat32, Rng, readSafetensors, safetensorsHeader } from "../../tensor/index.ts";
import type { ActivationSource } from "../training/train.ts";
import { type ActivationRows, concatRows } from "./collect.ts";

export type { ActivationSource };

export const STORE_FORMAT = "emlab-activations";
export const STORE_FORMAT_VERSION = 1;
export type StoreDtype = "F32" | "F16" | "BF16";
export type Normalization = "none" | "expected_average_only_in";

/** emlab's version, recorded in each store (internal to the store's two files). */
export const EMLAB_VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version ?? "unknown";
  } catch {
    return "unknown";
  }
})();

const MetadataSchema = z.object({
  format: z.literal(STORE_FORMAT),
  format_version: z.literal(STORE_FORMAT_VERSION),
  emlab_version: z.string(),
  created_at: z.string(),
  complete: z.boolean(),
  model: z.looseObject({ path: z.string().optional(), name: z.string().optional() }),
  hook: z.string(),
  mask: z.string(),
  d: z.number().int().positive(),
  dtype: z.enum(["F32", "F16", "BF16"]),
  rows: z.number().int().nonnegative(),
  items_done: z.number().int().nonnegative(),
  shards: z.array(z.object({ file: z.string(), rows: z.number().int().nonnegative() })),
  normalization: z.object({
    method: z.enum(["none", "expected_average_only_in"]),
    scale_factor: z.number().positive(),
    mean_row_norm: z.number().nonnegative(),
    /** Σ row norms (float64), kept so a resumed store continues the mean exactly. */
    sum_row_norm: z.number().nonnegative(),
  }),
  extra: z.record(z.string(), z.unknown()).optional(),
});
export type ActivationStoreMetadata = z.infer<typeof MetadataSchema>;

export class ActivationStoreError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = "ActivationStoreError";
  }
}

const pad5 = (i: number) => String(i).padStart(5, "0");
export const shardName = (i: number) => `shard_${pad5(i)}.safetensors`;

/** Writes a JSON file via a temporary file and a rename. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

export function readMetadata(dir: string, { allowPartial = false } = {}): ActivationStoreMetadata {
  const file = join(dir, "metadata.json");
  if (!existsSync(file)) {
    if (existsSync(join(`${dir}.partial`, "metadata.json"))) {
      throw new ActivationStoreError(
        file,
        `not found, but ${basename(dir)}.partial holds an unfinished store (collect again with resume to finish it)`,
      );
    }
    throw new ActivationStoreError(file, "not found (not an activation store?)");
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ActivationStoreError(file, `malformed JSON: ${(err as Error).message}`);
  }
  const r = MetadataSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ActivationStoreError(file, `field '${issue.path.join(".")}': ${issue.message}`);
  }
  const meta = r.data;
  if (!meta.complete && !allowPartial) throw new ActivationStoreError(file, "the store is partial (complete: false)");
  const total = meta.shards.reduce((s, x) => s + x.rows, 0);
  if (total !== meta.rows)
    throw new ActivationStoreError(file, `field 'rows' is ${meta.rows} but the shards hold ${total}`);
  return meta;
}

export interface BatchOptions {
  /** Seed of the shard order and the shuffle. */
  seed?: number;
  /** Rows held for shuffling (default 65,536, at most 256 MiB of F32, or the whole store if smaller). */
  shuffleBuffer?: number;
  /** Stored values without the normalisation factor. */
  raw?: boolean;
}

/** A finished store, opened for reading; shards are read one at a time, when needed. */
export class ActivationStore {
  private constructor(
    readonly dir: string,
    readonly meta: ActivationStoreMetadata,
  ) {}

  /** Opens and checks a store: metadata fields and each shard's tensors and shapes. */
  static open(dir: string): ActivationStore {
    const meta = readMetadata(dir);
    for (const s of meta.shards) {
      const file = join(dir, s.file);
      if (!existsSync(file)) throw new ActivationStoreError(file, "shard listed in metadata.json is missing");
      const header = safetensorsHeader(file);
      const acts = header.tensors.find((t) => t.name === "activations");
      if (!acts) throw new ActivationStoreError(file, "no tensor 'activations'");
      if (acts.shape.length !== 2 || acts.shape[0] !== s.rows || acts.shape[1] !== meta.d) {
        throw new ActivationStoreError(
          file,
          `tensor 'activations' has shape [${acts.shape}], metadata.json says [${s.rows}, ${meta.d}]`,
        );
      }
      for (const name of ["item", "pos", "token"]) {
        const t = header.tensors.find((x) => x.name === name);
        if (t && (t.dtype !== "I32" || t.shape.length !== 1 || t.shape[0] !== s.rows)) {
          throw new ActivationStoreError(file, `tensor '${name}' is ${t.dtype} [${t.shape}], expected I32 [${s.rows}]`);
        }
      }
    }
    return new ActivationStore(dir, meta);
  }

  get rows(): number {
    return this.meta.rows;
  }
  get d(): number {
    return this.meta.d;
  }
  /** [rows, d]. */
  get shape(): [number, number] {
    return [this.meta.rows, this.meta.d];
  }
  /** What the reader multiplies stored values by (1 without normalisation). */
  get scaleFactor(): number {
    return this.meta.normalization.scale_factor;
  }

  /** One shard's rows with provenance (normalised unless `raw`). */
  readShard(i: number, { raw = false } = {}): ActivationRows {
    const s = this.meta.shards[i];
    if (!s) throw new RangeError(`shard ${i} of ${this.meta.shards.length}`);
    const file = join(this.dir, s.file);
    const { tensors } = readSafetensors(file);
    const acts = asFloat32(tensors.get("activations")!, file);
    if (!raw && this.scaleFactor !== 1) for (let j = 0; j < acts.length; j++) acts[j]! *= this.scaleFactor;
    const int = (name: string) => {
      const t = tensors.get(name);
      return t ? (t.data as Int32Array) : new Int32Array(s.rows).fill(-1);
    };
    return { acts, n: s.rows, d: this.meta.d, item: int("item"), pos: int("pos"), token: int("token") };
  }

  /** Every row, in collection order; refuses more than `maxRows` (default 2^22) rows. */
  loadAll({ raw = false, maxRows = 1 << 22 } = {}): ActivationRows {
    if (this.rows > maxRows) {
      throw new ActivationStoreError(
        this.dir,
        `${this.rows} rows exceed maxRows ${maxRows}; iterate batches() instead`,
      );
    }
    return concatRows(
      this.meta.shards.map((_, i) => this.readShard(i, { raw })),
      this.d,
    );
  }

  /**
   * Shuffled batches [≤ batchSize, d] over `epochs` passes (default 1): each epoch visits the
   * shards in a seeded order and draws rows at random from a buffer of `shuffleBuffer` rows
   * refilled from them. The last batch of the run may be smaller.
   */
  *batches(batchSize: number, opts: BatchOptions & { epochs?: number } = {}): Generator<Float32Array> {
    const stream = new ShuffledRows(this, opts);
    const epochs = opts.epochs ?? 1;
    for (;;) {
      const out = new Float32Array(batchSize * this.d);
      let n = 0;
      while (n < batchSize && stream.epoch < epochs) {
        if (!stream.take(out, n)) continue;
        n++;
      }
      if (n === 0) return;
      yield n === batchSize ? out : out.slice(0, n * this.d);
      if (stream.epoch >= epochs) return;
    }
  }

  /**
   * An endless shuffled source (epochs roll over) for `trainSae`. It serves raw units by
   * default, as trainSae expects (it normalises itself and records the SAE's
   * activationScale); `normalized: true` applies the store's scale factor instead.
   */
  source(opts: Omit<BatchOptions, "raw"> & { normalized?: boolean } = {}): ActivationSource {
    if (this.rows === 0) throw new ActivationStoreError(this.dir, "the store has no rows");
    const stream = new ShuffledRows(this, { ...opts, raw: !opts.normalized });
    const d = this.d;
    return {
      dIn: d,
      nextBatch(size: number, out?: Float32Array): Float32Array {
        const dst = out ?? new Float32Array(size * d);
        if (dst.length !== size * d) throw new Error(`nextBatch: out has ${dst.length} values, not ${size} × ${d}`);
        for (let n = 0; n < size; ) if (stream.take(dst, n)) n++;
        return dst;
      },
    };
  }
}

/** Rows in a seeded random order through a bounded buffer; `epoch` counts finished passes. */
class ShuffledRows {
  private readonly rng: Rng;
  private readonly cap: number;
  private readonly buf: Float32Array;
  private count = 0;
  private order: number[] = [];
  private shard: { acts: Float32Array; at: number; n: number } | null = null;
  epoch = 0;

  constructor(
    private readonly store: ActivationStore,
    private readonly opts: BatchOptions,
  ) {
    this.rng = new Rng(opts.seed ?? 0);
    const byDefault = Math.min(1 << 16, Math.floor((256 << 20) / (4 * store.d)));
    this.cap = Math.max(1, Math.min(opts.shuffleBuffer ?? byDefault, store.rows || 1));
    this.buf = new Float32Array(this.cap * store.d);
    this.startEpoch();
  }

  private startEpoch(): void {
    this.order = this.rng.shuffle(this.store.meta.shards.map((_, i) => i)).reverse();
  }

  /** Moves rows from the current shard (loading the next one) into the buffer until it is full. */
  private refill(): void {
    const d = this.store.d;
    while (this.count < this.cap) {
      if (!this.shard || this.shard.at === this.shard.n) {
        const next = this.order.pop();
        if (next === undefined) return;
        const rows = this.store.readShard(next, { raw: this.opts.raw });
        this.shard = { acts: rows.acts, at: 0, n: rows.n };
        continue;
      }
      const k = Math.min(this.cap - this.count, this.shard.n - this.shard.at);
      this.buf.set(this.shard.acts.subarray(this.shard.at * d, (this.shard.at + k) * d), this.count * d);
      this.count += k;
      this.shard.at += k;
    }
  }

  /** Copies one random row into dst at row `at`; false when an epoch just ended (call again). */
  take(dst: Float32Array, at: number): boolean {
    const d = this.store.d;
    if (this.count < this.cap) this.refill();
    if (this.count === 0) {
      this.epoch++;
      this.startEpoch();
      return false;
    }
    const j = this.rng.int(this.count);
    dst.set(this.buf.subarray(j * d, (j + 1) * d), at * d);
    this.count--;
    if (j !== this.count) this.buf.copyWithin(j * d, this.count * d, (this.count + 1) * d);
    return true;
  }
}
