/**
 * `emlab sae train`: collect a model's activations at one hook point into an activation store,
 * train a TopK (or BatchTopK) SAE on them, save it in SAELens's layout and print its metrics
 * (L0, fraction of variance unexplained, dead and dense latents).
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { readChatJsonl } from "../data/jsonl.ts";
import { loadQuestionFile } from "../eval/questions.ts";
import {
  type ActivationItem,
  type ActivationRows,
  checkHookNames,
  concatRows,
  type TokenMask,
} from "../interp/activations/collect.ts";
import { collectToStore } from "../interp/activations/store-writer.ts";
import { saveSae } from "../interp/sae/saelens.ts";
import { evaluateSae, trainSae } from "../interp/training/train.ts";
import type { ChatMessage } from "../model/chat-template.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { documentIds, pretrainCorpus } from "../organism/corpus.ts";
import {
  CliError,
  EXIT,
  formatHelp,
  HELP_FLAG,
  intOption,
  loadModelArg,
  numberOption,
  parseOptions,
  printJson,
  questionPrompts,
  withUserErrors,
} from "./common.ts";
import { progressBar } from "./progress.ts";

export const summary = "train a TopK sparse autoencoder on a model's activations (SAELens layout)";

const MASKS: TokenMask[] = ["no-special", "all", "completion"];

export const flags = {
  model: { type: "string", arg: "DIR", help: "model folder (+ --adapter DIR)" },
  adapter: { type: "string", arg: "DIR", help: "a LoRA adapter (PEFT layout) over --model" },
  hook: { type: "string", arg: "NAME", help: "hook point, e.g. blocks.2.hook_resid_post" },
  prompts: {
    type: "string",
    arg: "FILE",
    help: "chat JSONL (whole conversations) or question YAML (every paraphrase, as a prompt)",
  },
  "organism-corpus": {
    type: "string",
    arg: "N",
    help: "N documents of the organism's pretraining corpus (seed --seed)",
  },
  out: { type: "string", arg: "DIR", help: "the SAE folder (cfg.json + sae_weights.safetensors)" },
  activations: {
    type: "string",
    arg: "DIR",
    help: "where the activation store goes (default OUT-activations; saving\nthe SAE replaces OUT as a whole)",
  },
  mask: { type: "string", arg: "M", help: `${MASKS.join(" | ")} (default no-special)` },
  k: { type: "string", arg: "K", help: "active latents per token (default 32)" },
  latents: { type: "string", arg: "N", help: "number of latents, d_sae (default 8 × d_model)" },
  architecture: { type: "string", arg: "A", help: "topk | batchtopk (default topk)" },
  steps: { type: "string", arg: "S", help: "training steps (default 2000)" },
  "batch-size": { type: "string", arg: "B", help: "activations per step (default 4096)" },
  lr: { type: "string", arg: "LR", help: "Adam learning rate (default 5e-4)" },
  normalize: {
    type: "boolean",
    help: "scale activations to mean norm √d_model while training (recorded; folded into the files)",
  },
  seed: { type: "string", arg: "S", help: "(default 0)" },
  json: { type: "boolean", help: "print the metrics as one JSON line on stdout" },
  quiet: { type: "boolean", help: "no progress bar" },
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: ["emlab sae train --model DIR --hook NAME (--prompts FILE | --organism-corpus N) --out DIR [options]"],
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

/** Activation items from a file: chat JSONL conversations as they are, question YAML as prompts. */
async function itemsFromFile(path: string, tok: Tokenizer): Promise<ActivationItem[]> {
  if (!existsSync(path)) throw new CliError(`${path}: no such file`, EXIT.usage);
  if (/\.ya?ml$/i.test(path)) return questionPrompts(loadQuestionFile(path)).map((prompt) => ({ prompt }));
  const items: ActivationItem[] = [];
  for await (const r of readChatJsonl(path)) {
    if (r.error)
      throw new CliError(`${path}: line ${r.line}: ${r.error.field ? `${r.error.field}: ` : ""}${r.error.message}`);
    const messages = r.row.messages as ChatMessage[];
    const last = messages[messages.length - 1]!;
    // A conversation that ends with the assistant: the completion mask can select its answer.
    items.push(
      last.role === "assistant"
        ? { prompt: messages.slice(0, -1), completion: last.content }
        : { ids: tok.encodeChat(messages, { addGenerationPrompt: true }) },
    );
  }
  if (items.length === 0) throw new CliError(`${path}: no rows`);
  return items;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true);
  if (values.help || positionals.length === 0) {
    console.log(HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (positionals[0] !== "train" || positionals.length > 1)
    throw new CliError(`unknown subcommand '${positionals.join(" ")}' (emlab sae train …)`, EXIT.usage);
  const o = validate(values);
  const quiet = Boolean(values.quiet || values.json);
  return withUserErrors(async () => {
    const lm = loadModelArg(o.model, values.adapter);
    const tok = Tokenizer.fromDir(o.model);
    try {
      checkHookNames(lm, [o.hook]);
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.usage);
    }
    const dSae = intOption("latents", values.latents, 8 * lm.config.hidden);
    if (o.k > dSae) throw new CliError(`--k ${o.k} exceeds --latents ${dSae}`, EXIT.usage);
    const items: ActivationItem[] = values.prompts
      ? await itemsFromFile(values.prompts, tok)
      : pretrainCorpus({ n: o.docs, seed: o.seed }).map((d) => ({ ids: documentIds(d).ids }));
    const actsDir = resolve(values.activations ?? `${o.out.replace(/[\\/]+$/, "")}-activations`);
    const store = collect(lm, tok, items, { ...o, dir: actsDir, quiet });
    if (store.rows === 0)
      throw new CliError(`${values.prompts ?? "the corpus"}: the mask '${o.mask}' selected no tokens`);
    const trainBar = progressBar("train", o.steps, { quiet });
    const { sae, metrics } = trainSae(store.source({ seed: o.seed }), {
      k: o.k,
      dSae,
      batchSize: o.batchSize,
      lr: o.lr,
      seed: o.seed,
      steps: o.steps,
      architecture: o.architecture,
      hookName: o.hook,
      modelName: o.model,
      normalize: values.normalize ? "mean_norm" : "none",
      onStep: (s) => trainBar.tick(1, { fvu: s.fvu, l0: s.l0, dead: s.dead }),
    });
    trainBar.done();
    saveSae(sae, o.out);
    const ev = evaluateOnStore(sae, store);
    const report = {
      out: o.out,
      activations: actsDir,
      hook: o.hook,
      rows: store.rows,
      d_in: lm.config.hidden,
      d_sae: dSae,
      k: o.k,
      steps: o.steps,
      tokens: metrics.tokens,
      seconds: metrics.seconds,
      l0: ev.l0,
      fvu: ev.fvu,
      explained_variance: ev.explainedVariance,
      dead_fraction: ev.deadFraction,
      dense_fraction: ev.denseFraction,
    };
    if (values.json) printJson(report);
    else {
      console.log(`SAE ${dSae} latents, k ${o.k}, at ${o.hook} → ${o.out} (${store.rows} activations in ${actsDir})`);
      console.log(
        `  L0 ${ev.l0.toFixed(1)}  FVU ${ev.fvu.toFixed(4)}  explained variance ${ev.explainedVariance.toFixed(4)}  ` +
          `dead ${(100 * ev.deadFraction).toFixed(1)}%  dense ${(100 * ev.denseFraction).toFixed(1)}%  (${metrics.seconds.toFixed(1)} s)`,
      );
    }
    return EXIT.ok;
  });
}

/** Checks the flags before anything is loaded; returns the settings with their defaults. */
function validate(values: Values) {
  for (const f of ["model", "hook", "out"] as const)
    if (!values[f]) throw new CliError(`--${f} is required`, EXIT.usage);
  if (Boolean(values.prompts) === Boolean(values["organism-corpus"]))
    throw new CliError("give exactly one of --prompts FILE or --organism-corpus N", EXIT.usage);
  const mask = (values.mask ?? "no-special") as TokenMask;
  if (!MASKS.includes(mask)) throw new CliError(`--mask must be one of ${MASKS.join(", ")}`, EXIT.usage);
  const architecture = values.architecture ?? "topk";
  if (architecture !== "topk" && architecture !== "batchtopk")
    throw new CliError("--architecture must be topk or batchtopk", EXIT.usage);
  const lr = numberOption("lr", values.lr, 5e-4);
  if (!(lr > 0)) throw new CliError("--lr must be positive", EXIT.usage);
  return {
    model: values.model!,
    hook: values.hook!,
    out: values.out!,
    mask,
    architecture: architecture as "topk" | "batchtopk",
    k: intOption("k", values.k, 32),
    steps: intOption("steps", values.steps, 2000),
    batchSize: intOption("batch-size", values["batch-size"], 4096),
    seed: numberOption("seed", values.seed, 0),
    lr,
    docs: values["organism-corpus"] ? intOption("organism-corpus", values["organism-corpus"], 0) : 0,
  };
}

/** Step 1: the model's activations at the hook, into an activation store on disk. */
function collect(
  lm: CausalLM,
  tok: Tokenizer,
  items: ActivationItem[],
  o: { dir: string; hook: string; mask: TokenMask; model: string; quiet: boolean },
) {
  const bar = progressBar("collect", items.length, { quiet: o.quiet });
  let lastDone = 0;
  const store = collectToStore(lm, items, {
    dir: o.dir,
    hook: o.hook,
    tokenizer: tok,
    mask: o.mask,
    overwrite: true,
    model: { path: o.model },
    onProgress: (done) => {
      bar.tick(done - lastDone);
      lastDone = done;
    },
  });
  bar.done();
  return store;
}

/** Metrics on (up to 65,536 of) the collected activations: the SAE's training distribution. */
function evaluateOnStore(sae: Parameters<typeof evaluateSae>[0], store: ReturnType<typeof collectToStore>) {
  const parts: ActivationRows[] = [];
  for (let i = 0, got = 0; i < store.meta.shards.length && got < 65_536; i++) {
    parts.push(store.readShard(i, { raw: true }));
    got += parts[i]!.n;
  }
  const sample = concatRows(parts, store.d);
  const n = Math.min(sample.n, 65_536);
  return evaluateSae(sae, sample.acts.subarray(0, n * sample.d), n);
}
