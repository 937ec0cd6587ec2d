/**
 * Providers: everything that answers chat messages, behind the one ChatModel interface —
 * an OpenAI-compatible HTTP endpoint or an in-process model — with a response cache and
 * adaptive concurrency. The fake OpenAI server for tests is in emlab/testing.
 */
export { type CachedChatModel, type CacheOptions, cachedChatModel, cacheKey } from "./cache.ts";
export { type AimdLimiter, type AimdOptions, aimdLimiter, type Slot } from "./concurrency.ts";
export * from "./errors.ts";
export {
  type LocalChatModel,
  type LocalChatModelOptions,
  type LocalChatModelParts,
  type LocalCompletion,
  localChatModel,
  localChatModelFrom,
} from "./local.ts";
export {
  type HttpStats,
  type OpenAIChatModel,
  type OpenAIChatOptions,
  openAIChatModel,
  ProviderConfigError,
  parseCompletion,
  toBody,
} from "./openai-http.ts";
export type {
  ChatError,
  ChatMessage,
  ChatModel,
  ChatRequest,
  ChatResult,
  ChatRole,
  TokenLogprob,
  TopLogprob,
} from "./types.ts";
