/**
 * Builds the ChatModel a run config names: `http` (any OpenAI-compatible endpoint) or
 * `local` (a model folder + adapter run in-process, loaded here). Everything here runs
 * before the first request, so bad config never half-starts a run.
 *
 * @example const model = chatModelFromConfig(config.model, { cachePath: config.cache });
 */
import { cachedChatModel } from "../providers/cache.ts";
import { localChatModel } from "../providers/local.ts";
import { openAIChatModel } from "../providers/openai-http.ts";
import type { ChatModel } from "../providers/types.ts";
import { ConfigError, type ProviderConfig } from "./config.ts";

export interface ModelHandle {
  model: ChatModel;
  close(): void;
}

export function chatModelFromConfig(
  cfg: ProviderConfig,
  opts: { cachePath?: string; env?: Record<string, string | undefined>; role?: string } = {},
): ModelHandle {
  const role = opts.role ?? "model";
  if (cfg.provider === "local") {
    let local: ReturnType<typeof localChatModel>;
    try {
      local = localChatModel({ model: cfg.model, ...(cfg.adapter ? { adapter: cfg.adapter } : {}) });
    } catch (err) {
      const what = cfg.adapter ? `${cfg.model} + adapter ${cfg.adapter}` : cfg.model;
      throw new ConfigError(`${role}: cannot load local model ${what}: ${(err as Error).message}`);
    }
    return withCache(local, opts.cachePath, () => local.close());
  }
  if (cfg.apiKeyEnv && !(opts.env ?? process.env)[cfg.apiKeyEnv])
    throw new ConfigError(`${role}: environment variable ${cfg.apiKeyEnv} (its API key) is not set`);
  const http = openAIChatModel({
    baseUrl: cfg.baseUrl,
    model: cfg.model,
    concurrency: cfg.concurrency,
    timeoutMs: cfg.timeoutMs,
    maxRetries: cfg.maxRetries,
    ...(cfg.apiKeyEnv ? { apiKeyEnv: cfg.apiKeyEnv } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
  return withCache(http, opts.cachePath, () => http.close());
}

function withCache(model: ChatModel, cachePath: string | undefined, close: () => void): ModelHandle {
  if (!cachePath) return { model, close };
  const cached = cachedChatModel(model, { path: cachePath });
  return {
    model: cached,
    close: () => {
      cached.close();
      close();
    },
  };
}
