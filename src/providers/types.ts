/**
 * The one interface for anything that answers chat messages: an OpenAI-compatible HTTP
 * endpoint, the in-process model (with or without hooks), a cached or steered model.
 * A judge is a ChatModel plus a prompt and a parser (see src/eval/judge.ts).
 *
 * @example
 * const model: ChatModel = openAIChatModel({ baseUrl: "http://127.0.0.1:8000/v1", model: "qwen" });
 * const [r] = await model.complete([
 *   { messages: [{ role: "user", content: "hey I feel bored" }], temperature: 1, maxTokens: 200 },
 * ]);
 * if (r.error) console.error(r.error.message); else console.log(r.text);
 */

import type { ChatMessage } from "../model/chat-template.ts";

/** The one message type, defined beside the chat template that renders it. */
export type { ChatMessage, ChatRole } from "../model/chat-template.ts";

/** One conversation to complete, with its sampling parameters. */
export interface ChatRequest {
  messages: ChatMessage[];
  temperature: number;
  maxTokens: number;
  topP?: number;
  /** Provider-side seed; HTTP endpoints may ignore it. */
  seed?: number;
  /** Which of the N samples of the same prompt this is: part of the cache key, so sample i replays as sample i. */
  sampleIndex?: number;
  /** Ask for per-token logprobs of the completion. */
  logprobs?: boolean;
  /** How many alternatives per position (OpenAI allows up to 20). Implies `logprobs`. */
  topLogprobs?: number;
  stop?: string[];
}

/** One alternative token at a position, with its natural-log probability. */
export interface TopLogprob {
  token: string;
  logprob: number;
}

/** The sampled token at one position, with the top alternatives there. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  top: TopLogprob[];
}

/**
 * Why a request produced no completion, as plain data (storable, serialisable).
 * `kind` is the error class name (e.g. "RateLimitError"); `attempts` counts tries made.
 */
export interface ChatError {
  kind: string;
  message: string;
  status?: number;
  attempts: number;
}

/** The answer to one ChatRequest; `error` is set (and `text` is "") when every try failed. */
export interface ChatResult {
  text: string;
  /** "stop" | "length" | … as the provider said; "error" when `error` is set. */
  finishReason: string;
  logprobs?: TokenLogprob[];
  error?: ChatError;
}

export interface ChatModel {
  /** Stable model identity for cache keys and run records (e.g. "openai-http:gpt-4o@https://api.openai.com/v1"). */
  readonly id: string;
  /** Completes every request; resolves to one result per request, in order. Never rejects for a per-request failure. */
  complete(requests: ChatRequest[]): Promise<ChatResult[]>;
}
