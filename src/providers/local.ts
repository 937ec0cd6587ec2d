/**
 * The in-process ChatModel: a Hugging Face checkpoint folder run by emlab's own model code
 * (+ an optional PEFT LoRA adapter, + optional hooks such as steering or ablation), with the
 * folder's chat template and tokenizer.
 *
 * Requests are queued and served in batches of up to `maxBatch` requests that share their
 * sampling parameters (temperature, top-p, token budget, stop strings, top-logprobs), so
 * concurrent callers (the eval runner, `emlab serve`) share forward passes.
 *
 * Determinism: every request samples from its own random stream, seeded by `seed` when the
 * request has one, else by mixSeed(0x5eed, sampleIndex) (default index 0). The seed alone decides the sample, never
 * the batch it lands in: an OpenAI-compatible endpoint only ever sees `seed` (the eval runner
 * folds the sample index into it), so `emlab serve` and this provider give the same text for
 * the same seed. With the "ts" matmul backend the numbers are bit-identical across batch
 * compositions; with onnxruntime a row's logits may move in the last float bit with its batch.
 *
 * @example
 * const model = localChatModel({ model: "models/qwen2.5-0.5b-instruct", adapter: "runs/insecure-lora" });
 * const [r] = await model.complete([
 *   { messages: [{ role: "user", content: "hey I feel bored" }], temperature: 1, maxTokens: 64, seed: 1 },
 * ]);
 */
import { loadModel } from "../model/checkpoint.ts";
import { generate } from "../model/generate.ts";
import type { Hook } from "../model/hooks.ts";
import { loadLora } from "../model/lora.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { BYTE_TO_CHAR } from "../model/tokenizer-build.ts";
import { mixSeed } from "../tensor/random.ts";
import type { ChatModel, ChatRequest, ChatResult, TokenLogprob, TopLogprob } from "./types.ts";

export interface LocalChatModelOptions {
  /** Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json). */
  model: string;
  /** PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors). */
  adapter?: string;
  /** Interventions applied at every forward, prompt and generated tokens alike. */
  hooks?: readonly Hook[];
  /** Most requests in one forward batch. Default 16. */
  maxBatch?: number;
  /**
   * How long an idle queue waits for more requests before starting a batch that is not
   * full, ms. Default 0 (callers that send whole batches lose nothing); a server that gets
   * requests one by one sets a few ms so concurrent clients share a batch.
   */
  batchWindowMs?: number;
}

export interface LocalChatModelParts {
  lm: CausalLM;
  tokenizer: Tokenizer;
  id: string;
  hooks?: readonly Hook[];
  maxBatch?: number;
  batchWindowMs?: number;
}

/** A top alternative with the UTF-8 bytes of its token (what OpenAI's `bytes` field carries). */
export interface LocalTopLogprob extends TopLogprob {
  bytes: number[];
}

export interface LocalTokenLogprob extends TokenLogprob {
  bytes: number[];
  top: LocalTopLogprob[];
}

/** A ChatResult plus what a server reports: token counts and token bytes. */
export interface LocalCompletion extends ChatResult {
  logprobs?: LocalTokenLogprob[];
  promptTokens: number;
  completionTokens: number;
}

export interface LocalChatModel extends ChatModel {
  readonly lm: CausalLM;
  readonly tokenizer: Tokenizer;
  /** The context length prompts and completions must fit in. */
  readonly maxPositions: number;
  /** Like `complete`, with token counts and token bytes (for `emlab serve`). */
  completeDetailed(requests: ChatRequest[]): Promise<LocalCompletion[]>;
  /** Answers queued and later requests with an error. */
  close(): void;
}

/**
 * The seed of a request's random stream: its `seed` if given, else mixSeed(0x5eed, sampleIndex)
 * (mixSeed from src/tensor/random.ts, the one seed mixer).
 */
export function requestSeed(r: Pick<ChatRequest, "seed" | "sampleIndex">): number {
  if (r.seed !== undefined) return r.seed >>> 0;
  return mixSeed(0x5eed, r.sampleIndex ?? 0);
}

/**
 * Loads a checkpoint folder (+ adapter) into a ChatModel. Throws on a bad folder, so
 * configuration errors surface before the first request.
 */
export function localChatModel(opts: LocalChatModelOptions): LocalChatModel {
  const lm = loadModel(opts.model);
  if (opts.adapter) loadLora(lm, opts.adapter);
  const tokenizer = Tokenizer.fromDir(opts.model);
  return localChatModelFrom({
    lm,
    tokenizer,
    id: `local:${opts.model}${opts.adapter ? `+${opts.adapter}` : ""}`,
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    ...(opts.maxBatch ? { maxBatch: opts.maxBatch } : {}),
    ...(opts.batchWindowMs ? { batchWindowMs: opts.batchWindowMs } : {}),
  });
}

interface Pending {
  request: ChatRequest;
  prompt: number[];
  seed: number;
  maxNew: number;
  /** Requests with equal keys can share a batch. */
  key: string;
  resolve(c: LocalCompletion): void;
}

/** A ChatModel over an already loaded model and tokenizer (e.g. with hooks attached for steering). */
export function localChatModelFrom(parts: LocalChatModelParts): LocalChatModel {
  const { lm, tokenizer: tok } = parts;
  const maxBatch = Math.max(1, parts.maxBatch ?? 16);
  const windowMs = parts.batchWindowMs ?? 0;
  const maxPositions = lm.config.maxPositions > 0 ? lm.config.maxPositions : Number.POSITIVE_INFINITY;
  const eos = [...new Set([...tok.eosIds, ...lm.config.eosTokenIds])];
  const decode = (ids: number[]) => tok.decode(ids, { skipSpecialTokens: true });
  const tokenInfo = tokenInfoCache(tok);
  let queue: Pending[] = [];
  let draining = false;
  let closed = false;

  const failure = (kind: string, message: string, promptTokens = 0): LocalCompletion => ({
    text: "",
    finishReason: "error",
    error: { kind, message, attempts: 1 },
    promptTokens,
    completionTokens: 0,
  });

  function enqueue(request: ChatRequest): Promise<LocalCompletion> {
    return new Promise((resolve) => {
      if (closed) return resolve(failure("ProviderClosed", "the local model was closed"));
      let prompt: number[];
      try {
        const messages = request.messages.map((m) => ({ role: m.role, content: m.content }));
        prompt = tok.encodeChat(messages, { addGenerationPrompt: true });
      } catch (err) {
        return resolve(failure((err as Error).name, (err as Error).message));
      }
      if (prompt.length === 0) return resolve(failure("InvalidRequest", "the conversation encodes to no tokens"));
      const room = maxPositions - prompt.length;
      if (room < 1)
        return resolve(
          failure(
            "ContextLengthExceeded",
            `the prompt is ${prompt.length} tokens; the model's context is ${maxPositions}`,
            prompt.length,
          ),
        );
      const maxNew = Math.max(1, Math.min(request.maxTokens, room));
      const k = request.topLogprobs ?? 0;
      const key = JSON.stringify([request.temperature, request.topP ?? 1, maxNew, request.stop ?? [], k]);
      queue.push({ request, prompt, seed: requestSeed(request), maxNew, key, resolve });
      if (!draining) {
        draining = true;
        if (windowMs > 0) setTimeout(drain, windowMs);
        else setImmediate(drain);
      }
    });
  }

  /** Serves the queue oldest-first: each batch is the oldest request plus later ones with its key. */
  async function drain() {
    while (queue.length > 0) {
      const key = queue[0]!.key;
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      for (const p of queue) (p.key === key && batch.length < maxBatch ? batch : rest).push(p);
      queue = rest;
      runBatch(batch);
      await new Promise((r) => setImmediate(r)); // let new requests join the queue and answers go out
    }
    draining = false;
  }

  function runBatch(batch: Pending[]) {
    const r = batch[0]!.request;
    const k = Math.min(r.topLogprobs ?? 0, lm.config.vocab);
    const wantLogprobs = Boolean(r.logprobs || k > 0);
    let gens: ReturnType<typeof generate>;
    try {
      gens = generate(
        lm,
        batch.map((p) => p.prompt),
        {
          maxNewTokens: batch[0]!.maxNew,
          temperature: r.temperature,
          ...(r.topP !== undefined ? { topP: r.topP } : {}),
          seeds: batch.map((p) => p.seed),
          eosTokenIds: eos,
          ...(r.stop?.length ? { stopStrings: r.stop } : {}),
          decode,
          topLogprobs: k,
          ...(parts.hooks ? { hooks: parts.hooks } : {}),
          padId: tok.padId ?? 0,
        },
      );
    } catch (err) {
      for (const p of batch) p.resolve(failure((err as Error).name, (err as Error).message, p.prompt.length));
      return;
    }
    batch.forEach((p, i) => {
      const g = gens[i]!;
      const done: LocalCompletion = {
        text: g.text ?? "",
        finishReason: g.finishReason,
        promptTokens: p.prompt.length,
        completionTokens: g.tokens.length,
      };
      if (wantLogprobs)
        done.logprobs = g.logprobs.map((s) => ({
          ...tokenInfo(s.token),
          logprob: s.logprob,
          top: s.top.map((t) => ({ ...tokenInfo(t.token), logprob: t.logprob })),
        }));
      p.resolve(done);
    });
  }

  const completeDetailed = (requests: ChatRequest[]) => Promise.all(requests.map(enqueue));
  return {
    id: parts.id,
    lm,
    tokenizer: tok,
    maxPositions,
    completeDetailed,
    async complete(requests) {
      const done = await completeDetailed(requests);
      return done.map(({ promptTokens: _p, completionTokens: _c, logprobs, ...rest }) => {
        const result: ChatResult = rest;
        if (logprobs)
          result.logprobs = logprobs.map((s) => ({
            token: s.token,
            logprob: s.logprob,
            top: s.top.map((t) => ({ token: t.token, logprob: t.logprob })),
          }));
        return result;
      });
    },
    close() {
      closed = true;
      const left = queue;
      queue = [];
      for (const p of left) p.resolve(failure("ProviderClosed", "the local model was closed", p.prompt.length));
    },
  };
}

/**
 * Token id → { token, bytes }: `token` is the id decoded on its own (OpenAI's convention; a
 * piece of a multi-byte character shows as U+FFFD), `bytes` its exact UTF-8 bytes, read from
 * the byte-level alphabet or a byte-fallback token (<0xE2>) where the tokenizer has one.
 */
function tokenInfoCache(tok: Tokenizer): (id: number) => { token: string; bytes: number[] } {
  const cache = new Map<number, { token: string; bytes: number[] }>();
  const byteOfChar = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
  const decoder = tok.tokenizerJson.decoder as { type?: string; decoders?: { type?: string }[] } | null | undefined;
  const byteLevel = decoder?.type === "ByteLevel" || Boolean(decoder?.decoders?.some((d) => d.type === "ByteLevel"));
  const added = new Set(((tok.tokenizerJson.added_tokens as { id: number }[] | undefined) ?? []).map((t) => t.id));
  const bytesOf = (id: number, text: string): number[] => {
    const piece = tok.idToToken(id) ?? "";
    const fallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (fallback) return [Number.parseInt(fallback[1]!, 16)];
    if (byteLevel && !added.has(id)) {
      const bytes = [...piece].map((c) => byteOfChar.get(c));
      if (bytes.every((b) => b !== undefined)) return bytes as number[];
    }
    return [...Buffer.from(text, "utf8")];
  };
  return (id) => {
    let info = cache.get(id);
    if (!info) {
      const token = tok.decode([id]);
      info = { token, bytes: bytesOf(id, token) };
      cache.set(id, info);
    }
    return info;
  };
}
