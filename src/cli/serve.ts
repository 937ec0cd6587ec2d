/**
 * `emlab serve`: an OpenAI-compatible server (POST /v1/chat/completions, GET /v1/models) over
 * a model folder (+ LoRA adapter), so any OpenAI client, and `emlab eval` through its HTTP
 * provider, can use local and organism models. Runs until SIGINT/SIGTERM, then finishes the
 * requests in flight and exits 0.
 */
import { basename, resolve } from "node:path";
import { localChatModel } from "../providers/local.ts";
import { startChatServer } from "../serve/server.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, intOption, parseOptions } from "./common.ts";

export const summary = "serve a model folder (+ LoRA adapter) over an OpenAI-compatible HTTP API";

export const flags = {
  model: {
    type: "string",
    arg: "DIR",
    help: "Hugging Face model folder (config.json, model.safetensors, tokenizer files)",
  },
  adapter: { type: "string", arg: "DIR", help: "PEFT LoRA adapter to apply" },
  name: {
    type: "string",
    arg: "NAME",
    help: "model name clients send and /v1/models lists (default: the folder's name)",
  },
  host: { type: "string", arg: "HOST", help: "address to bind (default 127.0.0.1; the server has no authentication)" },
  port: { type: "string", arg: "PORT", help: "default 8000; 0 picks a free port" },
  "batch-size": { type: "string", arg: "N", help: "most requests in one forward batch (default 16)" },
  "batch-window": {
    type: "string",
    arg: "MS",
    help: "how long an idle server waits to gather concurrent requests (default 5)",
  },
  "max-new-tokens": { type: "string", arg: "N", help: "completion budget when a request sets none (default 512)" },
  quiet: { type: "boolean", help: "no per-request log lines" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: ["emlab serve --model DIR [options]"],
  flags,
  epilog:
    'Prints "emlab serve: NAME at URL" on stdout once listening. Example client config:\n  model: { provider: http, baseUrl: http://127.0.0.1:8000/v1, model: NAME }',
});

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseOptions(argv, flags, false);
  if (v.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  if (!v.model) throw new CliError(`--model is required\n\n${HELP}`, EXIT.usage);
  const port = intOption("port", v.port, 8000, 0, 65535);
  const maxBatch = intOption("batch-size", v["batch-size"], 16, 1, 4096);
  const batchWindowMs = intOption("batch-window", v["batch-window"], 5, 0, 60_000);
  const defaultMaxTokens = intOption("max-new-tokens", v["max-new-tokens"], 512, 1, 1 << 20);
  const host = v.host ?? "127.0.0.1";
  const name = v.name ?? basename(resolve(v.model));

  let model: ReturnType<typeof localChatModel>;
  try {
    const adapter = v.adapter ? { adapter: v.adapter } : {};
    model = localChatModel({ model: v.model, ...adapter, maxBatch, batchWindowMs });
  } catch (err) {
    throw new CliError(`cannot load ${v.model}${v.adapter ? ` + ${v.adapter}` : ""}: ${(err as Error).message}`);
  }
  const log = v.quiet ? undefined : (line: string) => console.error(`emlab serve: ${line}`);
  let server: Awaited<ReturnType<typeof startChatServer>>;
  try {
    server = await startChatServer({ model, name, host, port, defaultMaxTokens, ...(log ? { log } : {}) });
  } catch (err) {
    throw new CliError(`cannot listen on ${host}:${port}: ${(err as Error).message}`);
  }
  if (!LOOPBACK.has(host))
    console.error(
      `emlab serve: warning: listening on ${host} without authentication; anyone who can reach it can use the model`,
    );
  console.log(`emlab serve: ${name} at ${server.url}`);

  await new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      // A second signal while draining exits at once.
      process.once(signal, () => process.exit(EXIT.error));
      console.error(`emlab serve: ${signal}: finishing requests in flight`);
      server.close().finally(() => {
        model.close();
        done();
      });
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  return EXIT.ok;
}
