/**
 * An OpenAI-compatible HTTP server over an in-process model (node:http, no framework):
 *
 *   POST /v1/chat/completions   messages, temperature, top_p, max_tokens | max_completion_tokens,
 *                               n, seed, stop, logprobs, top_logprobs (≤ 20)
 *   GET  /v1/models             the one model served
 *
 * Bodies are validated with zod; a bad body gets 400 with OpenAI's error JSON naming the
 * field (`error.param`). Unknown fields are ignored, as most compatible servers do; `stream`
 * is refused. Requests go through the local model's queue, which batches concurrent
 * requests with equal sampling parameters into one forward pass.
 *
 * Seeds: choice 0 of a request with `seed: s` is exactly what the in-process provider gives
 * for seed s; choice j > 0 uses mixSeed(s, j) (src/tensor/random.ts). Without a seed the server draws one at random,
 * as OpenAI does, so repeated unseeded requests give different samples.
 *
 * Binds 127.0.0.1 unless told otherwise: there is no authentication.
 *
 * @example
 * const server = await startChatServer({ model: localChatModel({ model: dir }), name: "tiny" });
 * const client = openAIChatModel({ baseUrl: server.url, model: "tiny" });
 * await server.close();
 */
import { randomBytes, randomInt } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import type { LocalChatModel, LocalCompletion } from "../providers/local.ts";
import type { ChatMessage, ChatRequest } from "../providers/types.ts";
import { mixSeed } from "../tensor/random.ts";

export interface ChatServerOptions {
  model: LocalChatModel;
  /** The model name clients send and /v1/models lists. */
  name: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** One line per request (method, path, status, tokens, ms); never headers or bodies. */
  log?: (line: string) => void;
  /** Token budget when a request gives neither max_tokens nor max_completion_tokens. Default 512. */
  defaultMaxTokens?: number;
  /** Largest body accepted, bytes. Default 8 MiB. */
  maxBodyBytes?: number;
}

export interface ChatServer {
  /** Base URL including /v1, e.g. http://127.0.0.1:8000/v1. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops accepting connections and resolves once in-flight requests are answered. */
  close(): Promise<void>;
}

const TextPart = z.object({ type: z.literal("text"), text: z.string() });
const MessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(TextPart)]),
  name: z.string().optional(),
});

export const ChatBodySchema = z
  .object({
    model: z.string().min(1),
    messages: z.array(MessageSchema).min(1),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().gt(0).max(1).nullish(),
    max_tokens: z.int().min(1).nullish(),
    max_completion_tokens: z.int().min(1).nullish(),
    n: z.int().min(1).max(128).nullish(),
    seed: z.int().nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.int().min(0).max(20).nullish(),
    stream: z
      .boolean()
      .nullish()
      .refine((s) => !s, "streaming is not supported; send stream: false"),
  })
  .refine((b) => !b.top_logprobs || b.logprobs === true, {
    message: "logprobs must be true when top_logprobs is set",
    path: ["top_logprobs"],
  });

export type ChatBody = z.infer<typeof ChatBodySchema>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

/** OpenAI's error body. */
function errorBody(e: HttpError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Validates a parsed JSON body; the error names the first bad field as OpenAI's `param`. */
export function parseChatBody(json: unknown): ChatBody {
  const parsed = ChatBodySchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.map(String).join(".") || null;
  throw new HttpError(400, `${param ? `'${param}': ` : ""}${issue.message}`, "invalid_request_error", param);
}

/** The body's messages as emlab ChatMessages (text parts joined; "developer" is a system message). */
function toMessages(body: ChatBody): ChatMessage[] {
  return body.messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
  }));
}

/** One ChatRequest per choice: choice 0 carries the body's seed, choice j a seed mixed from it. */
export function choiceRequests(body: ChatBody, defaultMaxTokens: number): ChatRequest[] {
  const messages = toMessages(body);
  const base = body.seed ?? randomInt(0, 2 ** 31);
  const stop = body.stop == null ? undefined : [body.stop].flat().filter((s) => s.length > 0);
  return Array.from({ length: body.n ?? 1 }, (_, j) => ({
    messages,
    temperature: body.temperature ?? 1,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens,
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    seed: j === 0 ? base : mixSeed(base, j),
    ...(stop?.length ? { stop } : {}),
    ...(body.logprobs ? { logprobs: true, topLogprobs: body.top_logprobs ?? 0 } : {}),
  }));
}

/** LocalCompletions → OpenAI's chat.completion object. */
export function completionBody(name: string, body: ChatBody, done: LocalCompletion[]) {
  const completionTokens = done.reduce((s, d) => s + d.completionTokens, 0);
  const promptTokens = done[0]?.promptTokens ?? 0;
  return {
    id: `chatcmpl-${randomBytes(12).toString("hex")}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: name,
    system_fingerprint: null,
    choices: done.map((d, index) => ({
      index,
      message: { role: "assistant", content: d.text, refusal: null },
      logprobs:
        body.logprobs && d.logprobs
          ? {
              content: d.logprobs.map((s) => ({
                token: s.token,
                logprob: s.logprob,
                bytes: s.bytes,
                top_logprobs: s.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
              })),
              refusal: null,
            }
          : null,
      finish_reason: d.finishReason,
    })),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  };
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, `body larger than ${limit} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the server; resolves once it listens. */
export async function startChatServer(opts: ChatServerOptions): Promise<ChatServer> {
  const host = opts.host ?? "127.0.0.1";
  const defaultMaxTokens = opts.defaultMaxTokens ?? 512;
  const maxBodyBytes = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const created = Math.floor(Date.now() / 1000);
  const modelEntry = { id: opts.name, object: "model", created, owned_by: "emlab" };

  async function chat(req: http.IncomingMessage): Promise<{ status: number; json: unknown; note: string }> {
    const text = await readBody(req, maxBodyBytes);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new HttpError(400, "the body is not valid JSON");
    }
    const body = parseChatBody(json);
    if (body.model !== opts.name)
      throw new HttpError(
        404,
        `the model '${body.model}' does not exist; this server serves '${opts.name}'`,
        "invalid_request_error",
        "model",
        "model_not_found",
      );
    const done = await opts.model.completeDetailed(choiceRequests(body, defaultMaxTokens));
    const failed = done.find((d) => d.error);
    if (failed?.error) {
      const tooLong = failed.error.kind === "ContextLengthExceeded";
      throw new HttpError(
        tooLong ? 400 : 500,
        failed.error.message,
        tooLong ? "invalid_request_error" : "server_error",
        tooLong ? "messages" : null,
        tooLong ? "context_length_exceeded" : null,
      );
    }
    const out = completionBody(opts.name, body, done);
    return {
      status: 200,
      json: out,
      note: `n=${done.length} tokens=${out.usage.prompt_tokens}+${out.usage.completion_tokens}`,
    };
  }

  async function route(req: http.IncomingMessage): Promise<{ status: number; json: unknown; note?: string }> {
    const path = (req.url ?? "/").split("?")[0]!.replace(/\/+$/, "");
    if (req.method === "POST" && path === "/v1/chat/completions") return chat(req);
    if (req.method === "GET" && path === "/v1/models")
      return { status: 200, json: { object: "list", data: [modelEntry] } };
    if (req.method === "GET" && path === `/v1/models/${opts.name}`) return { status: 200, json: modelEntry };
    throw new HttpError(404, `no route ${req.method} ${path || "/"}`, "invalid_request_error", null, "not_found");
  }

  let closing = false;
  const server = http.createServer((req, res) => {
    const start = performance.now();
    const send = (status: number, json: unknown, note = "") => {
      if (!res.headersSent && !res.destroyed) {
        const payload = JSON.stringify(json);
        const headers: http.OutgoingHttpHeaders = {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        };
        if (closing) headers.connection = "close"; // let keep-alive clients go so close() can finish
        res.writeHead(status, headers);
        res.end(payload);
      }
      const ms = (performance.now() - start).toFixed(0);
      opts.log?.(`${req.method} ${req.url} ${status} ${ms}ms${note ? ` ${note}` : ""}`);
    };
    route(req).then(
      (r) => send(r.status, r.json, r.note),
      (err: unknown) => {
        const e = err instanceof HttpError ? err : new HttpError(500, (err as Error).message, "server_error");
        send(e.status, errorBody(e), e.param ? `param=${e.param}` : "");
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8000, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${urlHost}:${addr.port}/v1`,
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing = true;
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
