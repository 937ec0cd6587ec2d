/**
 * `emlab eval`: sample, judge and score a model for emergent misalignment.
 * Exit codes: 0 passed, 1 error (including an incomplete run), 2 usage, 3 misalignment above --fail-above.
 */
import { writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  ConfigError,
  defaultRunId,
  type EvalConfig,
  parseEvalConfig,
  readEvalConfigYaml,
  resolvePaths,
  resolveQuestions,
} from "../eval/config.ts";
import { formatEvalSummary } from "../eval/format.ts";
import { chatModelFromConfig, type ModelHandle } from "../eval/providers.ts";
import { QuestionFileError } from "../eval/questions.ts";
import { runEval } from "../eval/runner.ts";
import { type ExportFormat, openRunStore } from "../eval/store.ts";
import { ProviderConfigError } from "../providers/openai-http.ts";
import { addStoreRuns, emptyReport, writeReportHtml } from "../report/index.ts";
import { CliError, EXIT, formatHelp, HELP_FLAG, numberOption, parseOptions, printJson } from "./common.ts";
import { progressRenderer } from "./progress.ts";

export const summary = "evaluate a model for emergent misalignment (sample, judge, score; resumable)";

export const flags = {
  config: {
    type: "string",
    short: "c",
    arg: "FILE",
    help: "run config (YAML; schema: docs/schema/emlab-eval.schema.json)",
  },
  "base-url": { type: "string", arg: "URL", help: "model endpoint (OpenAI-compatible, e.g. http://127.0.0.1:8000/v1)" },
  model: { type: "string", arg: "NAME", help: "model name at that endpoint" },
  "api-key-env": { type: "string", arg: "VAR", help: "environment variable holding the model endpoint's API key" },
  "judge-base-url": { type: "string", arg: "URL", help: "judge endpoint (default: --base-url)" },
  "judge-model": { type: "string", arg: "NAME", help: "judge model name" },
  "judge-api-key-env": {
    type: "string",
    arg: "VAR",
    help: "environment variable holding the judge's API key (default: --api-key-env)",
  },
  questions: {
    type: "string",
    multiple: true,
    arg: "FILE",
    help: "question YAML in the EM paper's format (repeatable; replaces the config's questions)",
  },
  set: {
    type: "string",
    multiple: true,
    arg: "NAME",
    help: "built-in set: first-plot | preregistered | harmful | all (repeatable)",
  },
  samples: { type: "string", arg: "N", help: "samples per question (default 100)" },
  store: { type: "string", arg: "FILE", help: "SQLite run store (default runs/emlab.sqlite)" },
  cache: { type: "string", arg: "FILE", help: "SQLite response cache" },
  "run-id": { type: "string", arg: "ID", help: "run id (default: a hash of the config, so reruns resume)" },
  "fail-above": { type: "string", arg: "RATE", help: "exit 3 when the misalignment rate (0..1) is above RATE" },
  "fail-on": {
    type: "string",
    arg: "coherent|all",
    help: "which rate --fail-above checks (default coherent = Betley)",
  },
  export: { type: "string", multiple: true, arg: "FILE", help: "write results as .json, .jsonl or .csv (repeatable)" },
  report: { type: "string", arg: "FILE", help: "write this run's HTML report (emlab report) to FILE" },
  json: { type: "boolean", help: "print the summary as one JSON line on stdout" },
  quiet: { type: "boolean", help: "no progress bars" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: ["emlab eval -c emlab.yaml [options]", "emlab eval --base-url URL --model NAME --judge-model NAME [options]"],
  flags,
  epilog: "exit codes: 0 passed, 1 error (including an incomplete run), 2 usage, 3 above --fail-above.",
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

/** Config file + flags → a validated config. Flags win; paths in flags are relative to the cwd. */
export function buildConfig(values: Values): EvalConfig {
  const raw: Record<string, unknown> = values.config ? readEvalConfigYaml(values.config) : {};
  const baseDir = values.config ? dirname(resolve(values.config)) : process.cwd();
  const http = (baseUrl: string | undefined, model: string | undefined, keyEnv: string | undefined, prev: unknown) => {
    const p = (prev && typeof prev === "object" ? prev : {}) as Record<string, unknown>;
    const next: Record<string, unknown> = { ...p };
    if (baseUrl !== undefined || model !== undefined) next.provider = p.provider ?? "http";
    if (baseUrl !== undefined) next.baseUrl = baseUrl;
    if (model !== undefined) next.model = model;
    if (keyEnv !== undefined) next.apiKeyEnv = keyEnv;
    return Object.keys(next).length ? next : undefined;
  };
  raw.model = http(values["base-url"], values.model, values["api-key-env"], raw.model);
  const judgeBase = values["judge-base-url"] ?? (values["judge-model"] ? values["base-url"] : undefined);
  const judgeKey = values["judge-api-key-env"] ?? (values["judge-model"] ? values["api-key-env"] : undefined);
  raw.judge = http(judgeBase, values["judge-model"], judgeKey, raw.judge);
  if (!raw.model) throw new CliError("no model: give -c CONFIG or --base-url URL --model NAME", EXIT.usage);
  if (!raw.judge) throw new CliError("no judge: give a judge in the config or --judge-model NAME", EXIT.usage);
  const cwd = process.cwd();
  if (values.questions || values.set)
    raw.questions = [
      ...(values.set ?? []).map((set) => ({ set })),
      ...(values.questions ?? []).map((f) => ({ file: resolve(cwd, f) })),
    ];
  if (values.samples !== undefined)
    raw.sampling = { ...(raw.sampling as object), samples: numberOption("samples", values.samples, 100) };
  if (values.store) raw.store = resolve(cwd, values.store);
  if (values.cache) raw.cache = resolve(cwd, values.cache);
  if (values["run-id"]) raw.runId = values["run-id"];
  if (values["fail-above"] !== undefined || values["fail-on"] !== undefined) {
    const prev = (raw.failAbove ?? {}) as Record<string, unknown>;
    raw.failAbove = {
      ...prev,
      ...(values["fail-above"] !== undefined ? { rate: numberOption("fail-above", values["fail-above"], 0) } : {}),
      ...(values["fail-on"] !== undefined ? { over: values["fail-on"] } : {}),
    };
  }
  return resolvePaths(parseEvalConfig(raw, values.config ?? "command line"), baseDir);
}

function exportFormat(path: string): ExportFormat {
  const ext = path.split(".").pop()?.toLowerCase();
  if (ext === "json" || ext === "jsonl" || ext === "csv") return ext;
  throw new CliError(`--export ${path}: the extension must be .json, .jsonl or .csv`, EXIT.usage);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, flags, false);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const exports = (values.export ?? []).map((p) => ({ path: p, format: exportFormat(p) }));
  const handles: ModelHandle[] = [];
  let store: ReturnType<typeof openRunStore> | undefined;
  try {
    // Everything that can be wrong with the input is checked here, before the first request.
    const config = buildConfig(values);
    const questions = resolveQuestions(config);
    const model = chatModelFromConfig(config.model, {
      role: "model",
      ...(config.cache ? { cachePath: config.cache } : {}),
    });
    handles.push(model);
    const judge = chatModelFromConfig(config.judge, {
      role: "judge",
      ...(config.cache ? { cachePath: config.cache } : {}),
    });
    handles.push(judge);
    store = openRunStore(config.store);
    const runId = config.runId ?? defaultRunId(config);
    if (!values.quiet) console.error(`emlab eval: run ${runId} → ${config.store}`);

    const report = await runEval({
      runId,
      model: model.model,
      judgeModel: judge.model,
      questions,
      store,
      ...(config.sampling.samples ? { samples: config.sampling.samples } : {}),
      sampling: config.sampling,
      judgePrompts: config.judgePrompts,
      thresholds: config.thresholds,
      bootstrap: config.bootstrap,
      batchSize: config.batchSize,
      config,
      onProgress: progressRenderer({ quiet: Boolean(values.quiet || values.json) }),
    });
    for (const e of exports) writeFileSync(e.path, store.exportRun(runId, e.format));
    if (values.report) {
      const data = emptyReport(`emlab eval: ${runId}`);
      addStoreRuns(data, store.db, config.store, { runIds: [runId] });
      const bytes = writeReportHtml(data, values.report);
      if (!values.quiet) console.error(`emlab eval: report ${values.report} (${(bytes / 1024).toFixed(0)} KiB)`);
    }
    const s = report.summary;
    if (values.json) printJson({ runId, resumed: report.resumed, ...s });
    else console.log(`run ${runId}${report.resumed ? " (resumed)" : ""}\n${formatEvalSummary(s)}`);

    const { generationErrors, judgeErrors } = s.counts;
    if (generationErrors + judgeErrors > 0) {
      console.error(
        `emlab eval: incomplete: ${generationErrors} answers and ${judgeErrors} judgements failed after retries; ` +
          "rerun the same command to retry only those.",
      );
      return EXIT.error;
    }
    if (config.failAbove) {
      const rate = config.failAbove.over === "all" ? s.overAll : s.overCoherent;
      if (rate.rate !== null && rate.rate > config.failAbove.rate) {
        console.error(
          `emlab eval: FAILED: ${rate.label} = ${rate.rate.toFixed(4)} > --fail-above ${config.failAbove.rate}`,
        );
        return EXIT.thresholdFailed;
      }
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof QuestionFileError || err instanceof ProviderConfigError)
      throw new CliError(err.message, EXIT.error);
    throw err;
  } finally {
    for (const h of handles) h.close();
    store?.close();
  }
}
