/** Providers: everything that answers chat messages, behind the one ChatModel interface. */
export { type CachedChatModel, type CacheOptions, cachedChatModel, cacheKey } from "./cache.ts";
export { type AimdLimiter, type AimdOptions, aimdLimiter, type Slot } from "./concurrency.ts";
export * from "./errors.ts";
export {
  type FakeChatBody,
  type FakeFault,
  type FakeReply,
  type FakeServer,
  type FakeServerOptions,
  judgeReply,
  startFakeOpenAIServer,
} from "./fake-openai-server.ts";
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
