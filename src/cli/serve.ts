/**
 * `emlab serve`: an OpenAI-compatible server (POST /v1/chat/completions, streaming or not;
 * GET /v1/models) over a model folder (+ LoRA adapter, + a guard file's interventions), so any
 * OpenAI client, and `emlab eval` through its HTTP provider, can use local, organism and
 * guarded models. Only localhost Host headers are answered unless --host / --allow-host widen
 * it; --api-key-env NAME requires a key. Runs until SIGINT/SIGTERM, then finishes the
 * requests in flight and exits 0.
 */
import { basename, resolve } from "node:path";
import { GuardFileError, guardedChatModel } from "../fix/guard.ts";
import { type LocalChatModel, localChatModel } from "../providers/local.ts";
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
  guard: {
    type: "string",
    arg: "FILE",
    help: "serve the guarded model: a guard file's interventions (emlab guard) on every forward",
  },
  name: {
    type: "string",
    arg: "NAME",
    help: "model name clients send and /v1/models lists (default: the folder's name)",
  },
  host: {
    type: "string",
    arg: "HOST",
    help: "address to bind (default 127.0.0.1); its address is then also accepted as Host",
  },
  "allow-host": {
    type: "string",
    arg: "NAME",
    multiple: true,
    help: "also answer requests whose Host header names NAME (repeatable; '*' turns the\nHost check off). By default only localhost, 127.0.0.1 and [::1] are answered",
  },
  "api-key-env": {
    type: "string",
    arg: "NAME",
    help: "require Authorization: Bearer KEY, KEY read from environment variable NAME",
  },
  "api-key": {
    type: "string",
    arg: "KEY",
    help: "require Authorization: Bearer KEY (prefer --api-key-env: a key on the command\nline stays in shell history and the process list)",
  },
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
    'Prints "emlab serve: NAME at URL" on stdout once listening. Example client config:\n  model: { provider: http, baseUrl: http://127.0.0.1:8000/v1, model: NAME, apiKeyEnv: EMLAB_KEY }',
});

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** The key from --api-key or --api-key-env (never printed). */
function apiKeyOf(v: { "api-key"?: string; "api-key-env"?: string }): string | undefined {
  if (v["api-key"] !== undefined && v["api-key-env"] !== undefined)
    throw new CliError("give --api-key or --api-key-env, not both", EXIT.usage);
  if (v["api-key"] !== undefined) {
    if (v["api-key"].trim() === "") throw new CliError("--api-key is empty", EXIT.usage);
    console.error(
      "emlab serve: note: a key given with --api-key shows in the process list; --api-key-env NAME does not",
    );
    return v["api-key"];
  }
  const name = v["api-key-env"];
  if (name === undefined) return undefined;
  const key = process.env[name];
  if (!key?.trim()) throw new CliError(`--api-key-env ${name}: the environment variable is unset or empty`, EXIT.usage);
  return key.trim();
}

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
  const apiKey = apiKeyOf(v);
  const allowedHosts = v["allow-host"] ?? [];

  let model: LocalChatModel;
  try {
    const adapter = v.adapter ? { adapter: v.adapter } : {};
    if (v.guard) {
      const guarded = guardedChatModel({ model: v.model, ...adapter, guard: v.guard, maxBatch, batchWindowMs });
      for (const w of guarded.guard.warnings) console.error(`emlab serve: warning: ${w}`);
      for (const i of guarded.guard.interventions)
        console.error(`emlab serve: guard [${i.index}] ${i.hookName}: ${i.summary}`);
      model = guarded;
    } else model = localChatModel({ model: v.model, ...adapter, maxBatch, batchWindowMs });
  } catch (err) {
    if (err instanceof GuardFileError) throw new CliError(err.message);
    throw new CliError(`cannot load ${v.model}${v.adapter ? ` + ${v.adapter}` : ""}: ${(err as Error).message}`);
  }
  const log = v.quiet ? undefined : (line: string) => console.error(`emlab serve: ${line}`);
  let server: Awaited<ReturnType<typeof startChatServer>>;
  try {
    server = await startChatServer({
      model,
      name,
      host,
      port,
      defaultMaxTokens,
      allowedHosts,
      ...(apiKey ? { apiKey } : {}),
      ...(log ? { log } : {}),
    });
  } catch (err) {
    throw new CliError(`cannot listen on ${host}:${port}: ${(err as Error).message}`);
  }
  if (!LOOPBACK.has(host) && !apiKey)
    console.error(
      `emlab serve: warning: listening on ${host} without a key; anyone who can reach it can use the model (--api-key-env NAME)`,
    );
  if (allowedHosts.includes("*")) console.error("emlab serve: warning: --allow-host '*': any Host header is answered");
  if (apiKey) console.error("emlab serve: requests need Authorization: Bearer <the key>");
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
