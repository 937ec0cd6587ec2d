/**
 * A ChatModel over any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM,
 * Ollama, llama.cpp server, `emlab serve`). Retries live here and nowhere else:
 * 429 → halve concurrency, wait Retry-After; 5xx, timeouts, dropped connections and
 * unparseable bodies → exponential backoff with jitter; after `maxRetries` the result
 * carries an `error` instead of being dropped. 4xx other than 408/409/429 fail at once.
 *
 * The API key is read from the environment variable *named* by `apiKeyEnv`; it lives only
 * in this closure (never on the returned object, in ids, logs or the run store).
 *
 * @example
 * const model = openAIChatModel({ baseUrl: "https://api.openai.com/v1", model: "gpt-4o", apiKeyEnv: "OPENAI_API_KEY" });
 * const [r] = await model.complete([{ messages: [{ role: "user", content: "hi" }], temperature: 1, maxTokens: 50 }]);
 */
import http from "node:http";
import https from "node:https";
import { z } from "zod";
import { aimdLimiter } from "./concurrency.ts";
import {
  APIConnectionError,
  APITimeoutError,
  InvalidResponseError,
  makeApiError,
  ProviderError,
  RateLimitError,
} from "./errors.ts";
import type { ChatModel, ChatRequest, ChatResult, TokenLogprob } from "./types.ts";

export interface OpenAIChatOptions {
  /** Up to and including the version segment, e.g. "http://127.0.0.1:8000/v1". */
  baseUrl: string;
  model: string;
  /** NAME of the environment variable holding the key; omit for endpoints without auth. */
  apiKeyEnv?: string;
  /** Most requests in flight (AIMD upper bound). Default 16. */
  concurrency?: number;
  /** Per-attempt timeout in ms. Default 60 000. */
  timeoutMs?: number;
  /** Retries after the first try. Default 6. */
  maxRetries?: number;
  /** Exponential backoff: base * 2^(attempt-1), capped, with jitter. Defaults 500 ms / 20 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Longest Retry-After we honour, ms (default 60 000). */
  maxRetryAfterMs?: number;
  /** Where to look up `apiKeyEnv` (default process.env); for tests. */
  env?: Record<string, string | undefined>;
}

/** Thrown at construction when configuration is unusable (e.g. the key's variable is unset). */
export class ProviderConfigError extends ProviderError {}

/** Counters for logs and tests. */
export interface HttpStats {
  attempts: number;
  retries: number;
  rateLimited: number;
  failed: number;
}

export interface OpenAIChatModel extends ChatModel {
  readonly stats: HttpStats;
  readonly concurrencyLimit: number;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

const TopLogprobSchema = z.object({ token: z.string(), logprob: z.number() });
const CompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
        logprobs: z
          .object({
            content: z.array(TopLogprobSchema.extend({ top_logprobs: z.array(TopLogprobSchema).nullish() })).nullish(),
          })
          .nullish(),
      }),
    )
    .min(1),
});

export function openAIChatModel(opts: OpenAIChatOptions): OpenAIChatModel {
  const baseUrl = opts.baseUrl.replace(/\/+$/, "");
  const url = new URL(`${baseUrl}/chat/completions`);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ProviderConfigError(`baseUrl must be http(s), got '${opts.baseUrl}'`);
  let apiKey: string | undefined;
  if (opts.apiKeyEnv) {
    apiKey = (opts.env ?? process.env)[opts.apiKeyEnv];
    if (!apiKey) throw new ProviderConfigError(`environment variable ${opts.apiKeyEnv} (the API key) is not set`);
  }
  const concurrency = opts.concurrency ?? 16;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxRetries = opts.maxRetries ?? 6;
  const baseMs = opts.backoffBaseMs ?? 500;
  const maxMs = opts.backoffMaxMs ?? 20_000;
  const maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
  const transport = url.protocol === "https:" ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: concurrency });
  const limiter = aimdLimiter({ max: concurrency });
  const stats: HttpStats = { attempts: 0, retries: 0, rateLimited: 0, failed: 0 };
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;

  function post(payload: string): Promise<ChatResult> {
    return new Promise((resolve, reject) => {
      const abort = new AbortController();
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const timer = setTimeout(() => {
        finish(() => reject(new APITimeoutError(`no complete answer within ${timeoutMs} ms`)));
        abort.abort();
      }, timeoutMs);
      const req = transport.request(url, { method: "POST", agent, headers, signal: abort.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => finish(() => reject(new APIConnectionError(`response interrupted: ${err.message}`))));
        res.on("close", () => {
          if (!res.complete)
            finish(() => reject(new APIConnectionError("connection closed before the body was complete")));
        });
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const h = { "retry-after": headerValue(res.headers["retry-after"]) };
            return finish(() => reject(makeApiError(status, body, h)));
          }
          finish(() => {
            try {
              resolve(parseCompletion(body));
            } catch (err) {
              reject(err);
            }
          });
        });
      });
      req.on("error", (err) => finish(() => reject(new APIConnectionError(`request failed: ${err.message}`))));
      req.end(payload);
    });
  }

  async function completeOne(request: ChatRequest): Promise<ChatResult> {
    const payload = JSON.stringify(toBody(opts.model, request));
    for (let attempt = 1; ; attempt++) {
      const slot = await limiter.acquire();
      let error: ProviderError;
      stats.attempts++;
      try {
        const result = await post(payload);
        limiter.onSuccess();
        return result;
      } catch (err) {
        error = err instanceof ProviderError ? err : new APIConnectionError(String((err as Error)?.message ?? err));
        if (error instanceof RateLimitError) {
          stats.rateLimited++;
          limiter.onRateLimit(slot, Math.min(error.retryAfterMs ?? 0, maxRetryAfterMs));
        }
      } finally {
        slot.release();
      }
      if (!error.retryable || attempt > maxRetries) {
        stats.failed++;
        return {
          text: "",
          finishReason: "error",
          error: { kind: error.name, message: error.message, status: error.status, attempts: attempt },
        };
      }
      stats.retries++;
      await sleep(retryDelay(error, attempt));
    }
  }

  function retryDelay(error: ProviderError, attempt: number): number {
    if (error instanceof RateLimitError && error.retryAfterMs !== undefined)
      return Math.min(error.retryAfterMs, maxRetryAfterMs) + Math.random() * baseMs * 0.1;
    const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
    return ceiling / 2 + (Math.random() * ceiling) / 2; // "equal jitter": never zero, never synchronised
  }

  return {
    id: `openai-http:${opts.model}@${baseUrl}`,
    stats,
    get concurrencyLimit() {
      return limiter.limit;
    },
    complete: (requests) => Promise.all(requests.map(completeOne)),
    close: () => agent.destroy(),
  };
}

/** ChatRequest → OpenAI chat-completions body. */
export function toBody(model: string, r: ChatRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    messages: r.messages,
    temperature: r.temperature,
    max_tokens: r.maxTokens,
    n: 1,
  };
  if (r.topP !== undefined) body.top_p = r.topP;
  if (r.seed !== undefined) body.seed = r.seed;
  if (r.stop?.length) body.stop = r.stop;
  if (r.logprobs || r.topLogprobs) body.logprobs = true;
  if (r.topLogprobs) body.top_logprobs = r.topLogprobs;
  return body;
}

/** OpenAI chat-completions body → ChatResult; throws InvalidResponseError on anything unexpected. */
export function parseCompletion(body: string): ChatResult {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidResponseError(`body is not valid JSON (${body.length} bytes): ${body.slice(0, 80)}`);
  }
  const parsed = CompletionSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidResponseError(
      `unexpected completion body at ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  const choice = parsed.data.choices[0]!;
  const result: ChatResult = { text: choice.message.content ?? "", finishReason: choice.finish_reason ?? "stop" };
  const content = choice.logprobs?.content;
  if (content)
    result.logprobs = content.map(
      (t): TokenLogprob => ({ token: t.token, logprob: t.logprob, top: (t.top_logprobs ?? []).map((x) => ({ ...x })) }),
    );
  return result;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
