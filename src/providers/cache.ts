/**
 * An on-disk response cache around any ChatModel, in one SQLite file (WAL mode, so several
 * processes can read and write it at once; each write is one atomic statement).
 * The key is sha256 over the model id (which for HTTP models includes the base URL), the
 * messages, every sampling parameter and the sample index — so sample 7 of a question at
 * T=1 replays as sample 7, and asking for a sample 8 makes a new request. Errors are never
 * stored: a failed request is retried on the next run.
 *
 * @example
 * const model = cachedChatModel(openAIChatModel({ ... }), { path: ".emlab-cache/responses.sqlite" });
 * await model.complete(requests); // second time: no requests sent
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { ChatModel, ChatRequest, ChatResult } from "./types.ts";

export interface CacheOptions {
  /** SQLite file; created with its folder when missing. */
  path: string;
}

export interface CachedChatModel extends ChatModel {
  readonly hits: number;
  readonly misses: number;
  close(): void;
}

/** The cache key of one request for one model: hex sha256 of a canonical JSON. */
export function cacheKey(modelId: string, r: ChatRequest): string {
  const canonical = JSON.stringify([
    "emlab-cache-v1",
    modelId,
    r.messages.map((m) => [m.role, m.content]),
    r.temperature,
    r.maxTokens,
    r.topP ?? null,
    r.seed ?? null,
    r.sampleIndex ?? 0,
    Boolean(r.logprobs || r.topLogprobs),
    r.topLogprobs ?? 0,
    r.stop ?? [],
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}

export function cachedChatModel(inner: ChatModel, opts: CacheOptions): CachedChatModel {
  mkdirSync(dirname(opts.path), { recursive: true });
  const db = new Database(opts.path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  db.exec(`CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model_id TEXT NOT NULL, result_json TEXT NOT NULL, created_at TEXT NOT NULL)`);
  const get = db.prepare<[string], { result_json: string }>("SELECT result_json FROM responses WHERE key = ?");
  const put = db.prepare(
    "INSERT OR REPLACE INTO responses (key, model_id, result_json, created_at) VALUES (?, ?, ?, ?)",
  );
  let hits = 0;
  let misses = 0;

  return {
    id: inner.id,
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
    async complete(requests) {
      const keys = requests.map((r) => cacheKey(inner.id, r));
      const results: (ChatResult | undefined)[] = keys.map((k) => {
        const row = get.get(k);
        return row ? (JSON.parse(row.result_json) as ChatResult) : undefined;
      });
      const todo = results.flatMap((r, i) => (r ? [] : [i]));
      hits += requests.length - todo.length;
      misses += todo.length;
      if (todo.length > 0) {
        const fresh = await inner.complete(todo.map((i) => requests[i]!));
        const now = new Date().toISOString();
        db.transaction(() => {
          fresh.forEach((res, j) => {
            const i = todo[j]!;
            results[i] = res;
            if (!res.error) put.run(keys[i], inner.id, JSON.stringify(res), now);
          });
        })();
      }
      return results as ChatResult[];
    },
    close: () => db.close(),
  };
}
