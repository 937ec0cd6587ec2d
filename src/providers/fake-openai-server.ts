/**
 * A deterministic OpenAI-compatible server on 127.0.0.1 for tests and benchmarks: you give
 * it a `reply` function (request body → answer and logprobs) and optionally a `fault`
 * function that makes chosen requests fail the way real endpoints do (429 with Retry-After,
 * 500, a hang past the client's timeout, truncated JSON, a connection reset mid-body).
 *
 * @example
 * const server = await startFakeOpenAIServer({ reply: () => ({ content: "hello" }) });
 * const model = openAIChatModel({ baseUrl: server.url, model: "fake" });
 * ...; await server.close();
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ChatMessage } from "./types.ts";

export interface FakeChatBody {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  max_tokens?: number;
  seed?: number;
  logprobs?: boolean;
  top_logprobs?: number;
}

export interface FakeReply {
  content: string;
  finishReason?: string;
  /** Per generated token: the token and its top alternatives (OpenAI's `logprobs.content`). */
  logprobs?: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[];
}

export type FakeFault = "rate-limit" | "server-error" | "hang" | "truncated" | "reset";

export interface FakeServerOptions {
  reply(body: FakeChatBody): FakeReply;
  /** `n` counts every chat request the server has received, from 0. */
  fault?(n: number, body: FakeChatBody): FakeFault | undefined;
  /** Retry-After sent with "rate-limit" faults, seconds (default 0.05). */
  retryAfterSeconds?: number;
  /** Delay before answering, ms (default 0). */
  delayMs?: number;
}

export interface FakeServer {
  /** Base URL including /v1. */
  readonly url: string;
  /** Chat requests received so far (faulted ones included). */
  readonly requests: number;
  /** Bodies of the requests answered successfully, in order. */
  readonly answered: FakeChatBody[];
  /** Headers of the latest chat request (to check auth is sent). */
  readonly lastHeaders: http.IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

/** One-token judge answer whose top alternatives have the given probabilities (normalised by the caller). */
export function judgeReply(dist: Record<string, number>): FakeReply {
  const top = Object.entries(dist)
    .sort((a, b) => b[1] - a[1])
    .map(([token, p]) => ({ token, logprob: Math.log(p) }));
  const first = top[0] ?? { token: "", logprob: 0 };
  return { content: first.token, logprobs: [{ token: first.token, logprob: first.logprob, top_logprobs: top }] };
}

export async function startFakeOpenAIServer(opts: FakeServerOptions): Promise<FakeServer> {
  let requests = 0;
  const answered: FakeChatBody[] = [];
  let lastHeaders: http.IncomingHttpHeaders | undefined;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: "fake", object: "model" }] }));
      return;
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    lastHeaders = req.headers;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const n = requests++;
      let body: FakeChatBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "invalid JSON body" } }));
        return;
      }
      const respond = () => answer(n, body, res);
      if (opts.delayMs) setTimeout(respond, opts.delayMs);
      else respond();
    });
  });

  function answer(n: number, body: FakeChatBody, res: http.ServerResponse) {
    if (!res.socket || res.socket.destroyed) return; // the client went away (killed, timed out)
    const fault = opts.fault?.(n, body);
    if (fault === "hang") return; // never answer; the client's timeout must fire
    if (fault === "rate-limit") {
      res.writeHead(429, { "content-type": "application/json", "retry-after": String(opts.retryAfterSeconds ?? 0.05) });
      res.end(JSON.stringify({ error: { message: "rate limited" } }));
      return;
    }
    if (fault === "server-error") {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "internal error" } }));
      return;
    }
    const r = opts.reply(body);
    const json = JSON.stringify({
      id: `chatcmpl-${n}`,
      object: "chat.completion",
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: r.content },
          finish_reason: r.finishReason ?? "stop",
          logprobs: body.logprobs && r.logprobs ? { content: r.logprobs } : null,
        },
      ],
    });
    if (fault === "truncated") {
      const cut = json.slice(0, Math.floor(json.length / 2));
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(cut) });
      res.end(cut);
      return;
    }
    if (fault === "reset") {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
      res.write(json.slice(0, 10));
      setImmediate(() => res.socket?.destroy());
      return;
    }
    answered.push(body);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
    res.end(json);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return requests;
    },
    answered,
    get lastHeaders() {
      return lastHeaders;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
