/**
 * Writing an activation store (the layout, transactions and normalisation are described in
 * activation-store.ts): ActivationStoreWriter streams rows into `<dir>.partial/` shard by
 * shard and publishes the folder on finish(); collectToStore runs a model over items and
 * writes what a hook sees, resumably.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { CausalLM } from "../../model/model.ts";
import { writeSafetensors } from "../../tensor/index.ts";
import {
  type ActivationItem,
  type ActivationRows,
  type CollectOptions,
  concatRows,
  iterateActivations,
  type TokenMask,
} from "./collect.ts";
import {
  ActivationStore,
  ActivationStoreError,
  type ActivationStoreMetadata,
  EMLAB_VERSION,
  type Normalization,
  readMetadata,
  STORE_FORMAT,
  STORE_FORMAT_VERSION,
  type StoreDtype,
  shardName,
  writeJsonAtomic,
} from "./store.ts";

export interface StoreWriterOptions {
  hook: string;
  mask: TokenMask | string;
  d: number;
  model?: { path?: string; name?: string; [k: string]: unknown };
  /** Dtype of the stored activations (default F32). */
  dtype?: StoreDtype;
  normalize?: Normalization;
  /** Rows per shard, approximately: a shard is written once this many are buffered (default ≈ 128 MiB of F32). */
  shardRows?: number;
  extra?: Record<string, unknown>;
  /** Replace a complete store already at `dir` (default false: an error). */
  overwrite?: boolean;
  /** Continue `<dir>.partial` if it exists with the same hook, mask, d, dtype and normalisation. */
  resume?: boolean;
}

/**
 * Streams rows into a store. Append whole items' rows (so shards end at item boundaries),
 * passing how many items are done; `finish()` publishes the store.
 */
export class ActivationStoreWriter {
  private readonly meta: ActivationStoreMetadata;
  private buffer: ActivationRows[] = [];
  private buffered = 0;
  private finished = false;
  readonly tmpDir: string;
  private readonly shardRows: number;

  private constructor(
    readonly dir: string,
    meta: ActivationStoreMetadata,
    shardRows: number,
    private readonly overwrite: boolean,
  ) {
    this.meta = meta;
    this.tmpDir = `${dir}.partial`;
    this.shardRows = shardRows;
  }

  /** Starts a store at `dir` (written under `<dir>.partial` until finish), or resumes one. */
  static create(dir: string, o: StoreWriterOptions): ActivationStoreWriter {
    if (existsSync(dir) && !o.overwrite) {
      throw new ActivationStoreError(dir, "a store already exists here (pass overwrite to replace it)");
    }
    const tmpDir = `${dir}.partial`;
    const dtype = o.dtype ?? "F32";
    const normalize = o.normalize ?? "none";
    const shardRows = o.shardRows ?? Math.max(1, Math.floor((128 << 20) / (4 * o.d)));
    if (o.resume && existsSync(join(tmpDir, "metadata.json"))) {
      const meta = readMetadata(tmpDir, { allowPartial: true });
      const want = { hook: o.hook, mask: o.mask, d: o.d, dtype, normalize };
      const have = {
        hook: meta.hook,
        mask: meta.mask,
        d: meta.d,
        dtype: meta.dtype,
        normalize: meta.normalization.method,
      };
      for (const k of Object.keys(want) as (keyof typeof want)[]) {
        if (want[k] !== have[k]) {
          throw new ActivationStoreError(
            join(tmpDir, "metadata.json"),
            `cannot resume: field '${k}' is ${JSON.stringify(have[k])}, this run has ${JSON.stringify(want[k])}`,
          );
        }
      }
      // A shard written after the last metadata update is not listed: drop it (its items run again).
      const listed = new Set(meta.shards.map((s) => s.file));
      for (const f of readdirSync(tmpDir))
        if (f !== "metadata.json" && !listed.has(f)) rmSync(join(tmpDir, f), { force: true });
      return new ActivationStoreWriter(dir, meta, shardRows, o.overwrite ?? false);
    }
    rmSync(tmpDir, { recursive: true, force: true });
    mkdirSync(tmpDir, { recursive: true });
    const meta: ActivationStoreMetadata = {
      format: STORE_FORMAT,
      format_version: STORE_FORMAT_VERSION,
      emlab_version: EMLAB_VERSION,
      created_at: new Date().toISOString(),
      complete: false,
      model: o.model ?? {},
      hook: o.hook,
      mask: o.mask,
      d: o.d,
      dtype,
      rows: 0,
      items_done: 0,
      shards: [],
      normalization: { method: normalize, scale_factor: 1, mean_row_norm: 0, sum_row_norm: 0 },
      ...(o.extra ? { extra: o.extra } : {}),
    };
    const w = new ActivationStoreWriter(dir, meta, shardRows, o.overwrite ?? false);
    w.writeMetadata();
    return w;
  }

  /** Items fully written to shards (where a resumed collection starts). */
  get itemsDone(): number {
    return this.meta.items_done;
  }

  /** Rows written so far, buffered rows included. */
  get rows(): number {
    return this.meta.rows + this.buffered;
  }

  private pendingItems = 0;

  /** Adds rows; `itemsDone` = items complete after these rows (for resume). */
  append(rows: ActivationRows, itemsDone?: number): void {
    if (this.finished) throw new Error("ActivationStoreWriter: append after finish");
    if (rows.d !== this.meta.d)
      throw new ActivationStoreError(this.dir, `rows of width ${rows.d}, the store's d is ${this.meta.d}`);
    if (rows.n > 0) {
      this.buffer.push(rows);
      this.buffered += rows.n;
    }
    if (itemsDone !== undefined) this.pendingItems = Math.max(this.pendingItems, itemsDone);
    if (this.buffered >= this.shardRows) this.flush();
  }

  /** Writes the buffered rows as one shard and records the progress. */
  flush(): void {
    if (this.buffered === 0) {
      if (this.pendingItems > this.meta.items_done) {
        this.meta.items_done = this.pendingItems;
        this.writeMetadata();
      }
      return;
    }
    const rows = concatRows(this.buffer, this.meta.d);
    const file = shardName(this.meta.shards.length);
    writeSafetensors(
      join(this.tmpDir, file),
      {
        activations: { dtype: this.meta.dtype, shape: [rows.n, rows.d], data: rows.acts },
        item: { dtype: "I32", shape: [rows.n], data: rows.item },
        pos: { dtype: "I32", shape: [rows.n], data: rows.pos },
        token: { dtype: "I32", shape: [rows.n], data: rows.token },
      },
      { format: "pt", hook: this.meta.hook, d: String(this.meta.d) },
    );
    const norm = this.meta.normalization;
    for (let r = 0; r < rows.n; r++) {
      let s = 0;
      for (let j = r * rows.d; j < (r + 1) * rows.d; j++) s += rows.acts[j]! * rows.acts[j]!;
      norm.sum_row_norm += Math.sqrt(s);
    }
    this.meta.shards.push({ file, rows: rows.n });
    this.meta.rows += rows.n;
    this.meta.items_done = Math.max(this.meta.items_done, this.pendingItems);
    this.buffer = [];
    this.buffered = 0;
    this.writeMetadata();
  }

  private writeMetadata(): void {
    const norm = this.meta.normalization;
    norm.mean_row_norm = this.meta.rows ? norm.sum_row_norm / this.meta.rows : 0;
    norm.scale_factor =
      norm.method === "expected_average_only_in" && norm.mean_row_norm > 0
        ? Math.sqrt(this.meta.d) / norm.mean_row_norm
        : 1;
    writeJsonAtomic(join(this.tmpDir, "metadata.json"), this.meta);
  }

  /** Writes what is left, marks the store complete and moves it to `dir`. */
  finish(): ActivationStore {
    this.flush();
    this.meta.complete = true;
    this.writeMetadata();
    if (existsSync(this.dir)) {
      if (!this.overwrite) throw new ActivationStoreError(this.dir, "a store appeared here while writing");
      const old = `${this.dir}.old-${process.pid}`;
      renameSync(this.dir, old);
      renameSync(this.tmpDir, this.dir);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(this.tmpDir, this.dir);
    }
    this.finished = true;
    return ActivationStore.open(this.dir);
  }

  /** Deletes the partial folder. */
  abort(): void {
    this.finished = true;
    rmSync(this.tmpDir, { recursive: true, force: true });
  }
}

/**
 * Runs the model over `items` and streams the activations at `hook` into a store at `dir`
 * (resumable with `resume: true`: items already in whole shards are skipped).
 *
 * @example
 *   const store = collectToStore(model, items, { dir, hook: "blocks.2.hook_resid_post", tokenizer: tok,
 *     mask: "completion", model: { path: "organism/base" } });
 */
export function collectToStore(
  model: CausalLM,
  items: readonly ActivationItem[],
  opts: CollectOptions &
    Omit<StoreWriterOptions, "mask" | "d" | "model"> & {
      dir: string;
      model?: StoreWriterOptions["model"];
      onProgress?: (itemsDone: number, rows: number) => void;
    },
): ActivationStore {
  const mask = opts.mask ?? "all";
  const writer = ActivationStoreWriter.create(opts.dir, {
    ...opts,
    mask,
    d: model.config.hidden,
    model: { arch: model.config.arch, hidden: model.config.hidden, layers: model.config.layers, ...opts.model },
  });
  try {
    for (const batch of iterateActivations(model, items, {
      ...opts,
      mask,
      hooks: [opts.hook],
      startItem: writer.itemsDone,
    })) {
      writer.append(batch.rows.get(opts.hook)!, batch.itemEnd);
      opts.onProgress?.(batch.itemEnd, writer.rows);
    }
  } catch (err) {
    // Keep the whole shards written so far (resume picks them up); the error goes on.
    try {
      writer.flush();
    } catch {}
    throw err;
  }
  return writer.finish();
}
