/**
 * Builds the ChatModel a run config names. `http` works today; `local` (the in-process
 * model) is reserved for when src/model lands and fails with a clear message until then.
 * Everything here runs before the first request, so bad config never half-starts a run.
 *
 * @example const model = chatModelFromConfig(config.model, { cachePath: config.cache });
 */
import { cachedChatModel } from "../providers/cache.ts";
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
  if (cfg.provider === "local")
    throw new ConfigError(
      `${role}: provider 'local' (the in-process model) is not available yet; it arrives with emlab's model code. ` +
        "Meanwhile use provider: http with any OpenAI-compatible server (vLLM, Ollama, llama.cpp server).",
    );
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
  if (!opts.cachePath) return { model: http, close: () => http.close() };
  const cached = cachedChatModel(http, { path: opts.cachePath });
  return {
    model: cached,
    close: () => {
      cached.close();
      http.close();
    },
  };
}
