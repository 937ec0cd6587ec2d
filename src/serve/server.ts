/**
 * An OpenAI-compatible HTTP server over an in-process model (node:http, no framework):
 *
 *   POST /v1/chat/completions   messages, temperature, top_p, max_tokens | max_completion_tokens,
 *                               n, seed, stop, logprobs, top_logprobs (≤ 20), stream,
 *                               stream_options.include_usage
 *   GET  /v1/models             the one model served
 *
 * Bodies are validated with zod; a bad body gets 400 with OpenAI's error JSON naming the
 * field (`error.param`). Unknown fields are ignored, as most compatible servers do. Requests
 * go through the local model's queue, which batches concurrent requests with equal sampling
 * parameters into one forward pass.
 *
 * Streaming (`stream: true`): server-sent events as OpenAI sends them, `data: {…}` chunks of
 * object chat.completion.chunk: per choice (in index order) a first chunk with the role, then
 * the content in token-sized deltas, then one with finish_reason; with
 * stream_options.include_usage every chunk carries `usage: null` and a last chunk with no
 * choices carries the usage; then `data: [DONE]`. The answer is generated whole first (the
 * generator has no per-token callback), then sent in deltas cut at token boundaries, so the
 * streamed text is exactly the non-streamed text for the same seed. Logprobs, when asked
 * for, ride on the choice's last content chunk (clients concatenate them).
 *
 * Seeds: choice 0 of a request with `seed: s` is exactly what the in-process provider gives
 * for seed s; choice j > 0 uses mixSeed(s, j) (src/tensor/random.ts). Without a seed the server draws one at random,
 * as OpenAI does, so repeated unseeded requests give different samples.
 *
 * Behaving like a service:
 *   - a body over maxBodyBytes gets 413 naming the limit; the rest of the body is read and
 *     dropped first (up to a cap), so a client still sending reads the 413, not a reset;
 *   - the Host header must name this server (DNS rebinding: a web page whose name resolves
 *     to 127.0.0.1 must not reach the model): localhost, 127.0.0.1 and [::1] with any port,
 *     the bound address when it is another one (every local address when it is 0.0.0.0 /
 *     ::), and `allowedHosts` ("*" turns the check off); anything else gets 403;
 *   - with `apiKey`, every route needs `Authorization: Bearer KEY` (401 otherwise; compared in
 *     constant time; the key never appears in logs or errors).
 * Errors sent before the body was read (403, 401, 404) drain it the same way.
 *
 * Binds 127.0.0.1 unless told otherwise.
 *
 * @example
 * const server = await startChatServer({ model: localChatModel({ model: dir }), name: "tiny" });
 * const client = openAIChatModel({ baseUrl: server.url, model: "tiny" });
 * await server.close();
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import { z } from "zod";
import type { Tokenizer } from "../model/tokenizer.ts";
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
  /** Require `Authorization: Bearer <apiKey>` on every route. */
  apiKey?: string;
  /**
   * Host names (or addresses) accepted in the Host header besides localhost, 127.0.0.1, [::1]
   * and the bound address; "*" accepts any Host (e.g. behind a proxy that checks it).
   */
  allowedHosts?: readonly string[];
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
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  })
  .refine((b) => !b.top_logprobs || b.logprobs === true, {
    message: "logprobs must be true when top_logprobs is set",
    path: ["top_logprobs"],
  })
  .refine((b) => b.stream_options == null || b.stream === true, {
    message: "stream_options is only allowed when stream is true",
    path: ["stream_options"],
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

/** A choice's logprobs in OpenAI's shape, or null when the body did not ask for them. */
function choiceLogprobs(body: ChatBody, d: LocalCompletion) {
  return body.logprobs && d.logprobs
    ? {
        content: d.logprobs.map((s) => ({
          token: s.token,
          logprob: s.logprob,
          bytes: s.bytes,
          top_logprobs: s.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
        })),
        refusal: null,
      }
    : null;
}

function usageOf(done: LocalCompletion[]) {
  const completionTokens = done.reduce((s, d) => s + d.completionTokens, 0);
  const promptTokens = done[0]?.promptTokens ?? 0;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** LocalCompletions → OpenAI's chat.completion object. */
export function completionBody(name: string, body: ChatBody, done: LocalCompletion[]) {
  return {
    id: `chatcmpl-${randomBytes(12).toString("hex")}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: name,
    system_fingerprint: null,
    choices: done.map((d, index) => ({
      index,
      message: { role: "assistant", content: d.text, refusal: null },
      logprobs: choiceLogprobs(body, d),
      finish_reason: d.finishReason,
    })),
    usage: usageOf(done),
  };
}

/**
 * A finished text cut into token-sized deltas: the text re-encoded and decoded token by token
 * (whole characters only), so the deltas concatenate to exactly `text`; a text whose
 * re-encoding does not give it back is one delta.
 */
export function textDeltas(text: string, tok: Pick<Tokenizer, "encode" | "decodeStream">): string[] {
  if (text === "") return [];
  const stream = tok.decodeStream();
  const deltas: string[] = [];
  for (const id of tok.encode(text, { addSpecialTokens: false })) {
    const d = stream.push(id);
    if (d) deltas.push(d);
  }
  const rest = stream.flush();
  if (rest) deltas.push(rest);
  return deltas.join("") === text ? deltas : [text];
}

/**
 * The server-sent events of a streamed chat completion (each a `data: …` line and a blank
 * line), as OpenAI sends them: see the file comment.
 */
export function completionEvents(
  name: string,
  body: ChatBody,
  done: LocalCompletion[],
  deltasOf: (text: string) => string[],
): string[] {
  const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
  const created = Math.floor(Date.now() / 1000);
  const withUsage = body.stream_options?.include_usage === true;
  const event = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created,
      model: name,
      system_fingerprint: null,
      choices,
      ...(withUsage ? { usage: usage ?? null } : {}),
    })}\n\n`;
  const events: string[] = [];
  done.forEach((d, index) => {
    const choice = (delta: object, finish: string | null = null, logprobs: unknown = null) => ({
      index,
      delta,
      logprobs,
      finish_reason: finish,
    });
    events.push(event([choice({ role: "assistant", content: "", refusal: null })]));
    const logprobs = choiceLogprobs(body, d);
    const deltas = deltasOf(d.text);
    if (logprobs && deltas.length === 0) deltas.push("");
    for (const [i, content] of deltas.entries())
      events.push(event([choice({ content }, null, i === deltas.length - 1 ? logprobs : null)]));
    events.push(event([choice({}, d.finishReason)]));
  });
  if (withUsage) events.push(event([], usageOf(done)));
  events.push("data: [DONE]\n\n");
  return events;
}

const tooLarge = (limit: number) =>
  new HttpError(
    413,
    `the request body is larger than the server's limit of ${limit} bytes (maxBodyBytes)`,
    "invalid_request_error",
    null,
    "request_too_large",
  );

/**
 * Reads the body. Past `limit` bytes it stops keeping them and fails with 413 (a declared
 * Content-Length over the limit fails at once); the caller then drains what is left before
 * answering, so the client reads the 413.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) return reject(tooLarge(limit));
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        reject(tooLarge(limit));
      } else chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/**
 * Reads and drops what is left of a request's body, up to `cap` bytes: true once the body has
 * ended (the connection can answer and be reused), false when it went over the cap or broke
 * (answer with Connection: close, then close).
 */
function drainBody(req: http.IncomingMessage, cap: number): Promise<boolean> {
  if (req.readableEnded || req.complete) return Promise.resolve(true);
  return new Promise((resolve) => {
    let size = 0;
    const finish = (ok: boolean) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onFail);
      req.off("close", onClose);
      if (!ok) req.pause();
      resolve(ok);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > cap) finish(false);
    };
    const onEnd = () => finish(true);
    const onFail = () => finish(false);
    const onClose = () => finish(req.complete);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onFail);
    req.on("close", onClose);
    req.resume();
  });
}

const LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/** The name part of a Host header, lower-cased ("[::1]:8000" → "[::1]", "Localhost." → "localhost"). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.replace(/:\d*$/, "");
  return name.replace(/\.$/, "");
}

/** An address as a Host header writes it (IPv6 in brackets). */
const asHost = (address: string) => (address.includes(":") && !address.startsWith("[") ? `[${address}]` : address);

/**
 * The names a Host header may carry for a server bound to `bound`: localhost, 127.0.0.1,
 * [::1], the bound address (for 0.0.0.0 / ::, every local interface's address and the
 * machine's name) and `extra`. Contains "*" when any Host is allowed.
 */
export function allowedHostNames(bound: string, extra: readonly string[] = []): Set<string> {
  const names = new Set(LOCAL_HOSTS);
  const b = bound.toLowerCase();
  if (b === "0.0.0.0" || b === "::" || b === "[::]") {
    for (const list of Object.values(networkInterfaces()))
      for (const i of list ?? []) names.add(asHost(i.address.toLowerCase()));
    names.add(hostname().toLowerCase());
  } else names.add(asHost(b));
  for (const e of extra) names.add(e === "*" ? "*" : hostName(asHost(e)));
  return names;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Whether an Authorization header carries the key (compared as sha256 digests, in constant time). */
function bearerMatches(header: string | undefined, digest: Buffer): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m !== null && timingSafeEqual(sha256(m[1]!), digest);
}

/** What a route answers: a JSON body, or (stream: true) server-sent events. */
type Reply = { status: number; json: unknown; note?: string } | { status: 200; events: string[]; note: string };

/** Starts the server; resolves once it listens. */
export async function startChatServer(opts: ChatServerOptions): Promise<ChatServer> {
  const host = opts.host ?? "127.0.0.1";
  const defaultMaxTokens = opts.defaultMaxTokens ?? 512;
  const maxBodyBytes = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  // How much of a refused body is read and dropped so the client reads the answer.
  const drainCap = Math.max(4 * maxBodyBytes, 64 * 1024 * 1024);
  const created = Math.floor(Date.now() / 1000);
  const modelEntry = { id: opts.name, object: "model", created, owned_by: "emlab" };
  const hosts = allowedHostNames(host, opts.allowedHosts);
  const keyDigest = opts.apiKey ? sha256(opts.apiKey) : null;
  if (opts.apiKey !== undefined && opts.apiKey.length === 0) throw new Error("apiKey is empty");
  const deltasOf = (text: string) => textDeltas(text, opts.model.tokenizer);

  async function chat(req: http.IncomingMessage): Promise<Reply> {
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
    const usage = usageOf(done);
    const note = `n=${done.length} tokens=${usage.prompt_tokens}+${usage.completion_tokens}`;
    if (body.stream)
      return { status: 200, events: completionEvents(opts.name, body, done, deltasOf), note: `${note} stream` };
    return { status: 200, json: completionBody(opts.name, body, done), note };
  }

  /** Refuses a request whose Host is not this server's or that lacks the key. */
  function admit(req: http.IncomingMessage): void {
    const rawHost = req.headers.host;
    if (!hosts.has("*") && (rawHost === undefined || !hosts.has(hostName(rawHost)))) {
      const shown = rawHost === undefined ? "(none)" : `'${rawHost.slice(0, 100)}'`;
      throw new HttpError(
        403,
        `Host ${shown} is not allowed: this server answers requests addressed to ${[...hosts].slice(0, 6).join(", ")}${hosts.size > 6 ? ", …" : ""} (emlab serve --allow-host NAME adds a name)`,
        "invalid_request_error",
        null,
        "host_not_allowed",
      );
    }
    if (keyDigest && !bearerMatches(req.headers.authorization, keyDigest))
      throw new HttpError(
        401,
        req.headers.authorization
          ? "Incorrect API key provided."
          : "You didn't provide an API key. Send it in the Authorization header: Bearer KEY.",
        "invalid_request_error",
        null,
        "invalid_api_key",
      );
  }

  async function route(req: http.IncomingMessage): Promise<Reply> {
    admit(req);
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
    const send = async (r: Reply) => {
      // Whatever of the body is still coming is read and dropped first: a client still sending
      // (a 10 MB body, a refused request) then reads this answer instead of a reset connection.
      const drained = await drainBody(req, drainCap);
      if (!res.headersSent && !res.destroyed) {
        const headers: http.OutgoingHttpHeaders = {};
        // let keep-alive clients go so close() can finish; a body not read to its end ends the connection
        if (closing || !drained) headers.connection = "close";
        if (r.status === 401) headers["www-authenticate"] = "Bearer";
        if ("events" in r) {
          res.writeHead(200, {
            ...headers,
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
          });
          for (const e of r.events) res.write(e);
          res.end();
        } else {
          const payload = JSON.stringify(r.json);
          res.writeHead(r.status, {
            ...headers,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
          });
          res.end(payload);
        }
        if (!drained) res.once("finish", () => req.socket.destroySoon());
      }
      const ms = (performance.now() - start).toFixed(0);
      opts.log?.(`${req.method} ${req.url} ${r.status} ${ms}ms${r.note ? ` ${r.note}` : ""}`);
    };
    route(req)
      .catch((err: unknown) => {
        const e = err instanceof HttpError ? err : new HttpError(500, (err as Error).message, "server_error");
        return { status: e.status, json: errorBody(e), note: e.param ? `param=${e.param}` : (e.code ?? "") };
      })
      .then(send)
      .catch((err: unknown) => opts.log?.(`${req.method} ${req.url}: cannot answer: ${(err as Error).message}`));
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
