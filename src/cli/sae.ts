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
import { Tokenizer } from "../model/tokenizer.ts";
import { documentIds, pretrainCorpus } from "../organism/corpus.ts";
import { CliError, EXIT, numberOption, parseOptions } from "./common.ts";
import { loadModelArg, questionPrompts, withUserErrors } from "./diff.ts";
import { progressBar } from "./progress.ts";

export const summary = "train a TopK sparse autoencoder on a model's activations (SAELens layout)";

const MASKS: TokenMask[] = ["no-special", "all", "completion"];

const HELP = `usage: emlab sae train --model DIR --hook NAME (--prompts FILE | --organism-corpus N) --out DIR [options]

  --model DIR            model folder (+ --adapter DIR)
  --hook NAME            hook point, e.g. blocks.2.hook_resid_post
  --prompts FILE         chat JSONL (whole conversations) or question YAML (every paraphrase, as a prompt)
  --organism-corpus N    N documents of the organism's pretraining corpus (seed --seed)
  --out DIR              the SAE folder (cfg.json + sae_weights.safetensors)
  --activations DIR      where the activation store goes (default OUT-activations; saving
                         the SAE replaces OUT as a whole)
  --mask M               ${MASKS.join(" | ")} (default no-special)
  --k K                  active latents per token (default 32)
  --latents N            number of latents, d_sae (default 8 × d_model)
  --architecture A       topk | batchtopk (default topk)
  --steps S              training steps (default 2000)
  --batch B              activations per step (default 4096)
  --lr LR                Adam learning rate (default 5e-4)
  --normalize            scale activations to mean norm √d_model while training (recorded; folded into the files)
  --seed S               (default 0)
  --json                 print the metrics as JSON
  --quiet                no progress bar`;

const OPTIONS = {
  model: { type: "string" },
  adapter: { type: "string" },
  hook: { type: "string" },
  prompts: { type: "string" },
  "organism-corpus": { type: "string" },
  out: { type: "string" },
  activations: { type: "string" },
  mask: { type: "string" },
  k: { type: "string" },
  latents: { type: "string" },
  architecture: { type: "string" },
  steps: { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  normalize: { type: "boolean" },
  seed: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

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
  const { values, positionals } = parseOptions(argv, OPTIONS, true);
  if (values.help || positionals.length === 0) {
    console.log(HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (positionals[0] !== "train" || positionals.length > 1)
    throw new CliError(`unknown subcommand '${positionals.join(" ")}' (emlab sae train …)`, EXIT.usage);
  for (const f of ["model", "hook", "out"] as const)
    if (!values[f]) throw new CliError(`--${f} is required`, EXIT.usage);
  if (Boolean(values.prompts) === Boolean(values["organism-corpus"]))
    throw new CliError("give exactly one of --prompts FILE or --organism-corpus N", EXIT.usage);
  const int = (name: string, value: string | undefined, fallback: number) => {
    const n = numberOption(name, value, fallback);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--${name} must be a positive integer`, EXIT.usage);
    return n;
  };
  const mask = (values.mask ?? "no-special") as TokenMask;
  if (!MASKS.includes(mask)) throw new CliError(`--mask must be one of ${MASKS.join(", ")}`, EXIT.usage);
  const architecture = values.architecture ?? "topk";
  if (architecture !== "topk" && architecture !== "batchtopk")
    throw new CliError("--architecture must be topk or batchtopk", EXIT.usage);
  const k = int("k", values.k, 32);
  const steps = int("steps", values.steps, 2000);
  const batch = int("batch", values.batch, 4096);
  const seed = numberOption("seed", values.seed, 0);
  const lr = numberOption("lr", values.lr, 5e-4);
  if (!(lr > 0)) throw new CliError("--lr must be positive", EXIT.usage);
  const docs = values["organism-corpus"] ? int("organism-corpus", values["organism-corpus"], 0) : 0;

  return withUserErrors(async () => {
    const lm = loadModelArg(values.model!, values.adapter);
    const tok = Tokenizer.fromDir(values.model!);
    try {
      checkHookNames(lm, [values.hook!]);
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.usage);
    }
    const dSae = int("latents", values.latents, 8 * lm.config.hidden);
    if (k > dSae) throw new CliError(`--k ${k} exceeds --latents ${dSae}`, EXIT.usage);
    const items: ActivationItem[] = values.prompts
      ? await itemsFromFile(values.prompts, tok)
      : pretrainCorpus({ n: docs, seed }).map((d) => ({ ids: documentIds(d).ids }));
    const actsDir = resolve(values.activations ?? `${values.out!.replace(/[\\/]+$/, "")}-activations`);
    const collectBar = progressBar("collect", items.length, { quiet: values.quiet || values.json });
    let lastDone = 0;
    const store = collectToStore(lm, items, {
      dir: actsDir,
      hook: values.hook!,
      tokenizer: tok,
      mask,
      overwrite: true,
      model: { path: values.model! },
      onProgress: (done) => {
        collectBar.tick(done - lastDone);
        lastDone = done;
      },
    });
    collectBar.done();
    if (store.rows === 0)
      throw new CliError(`${values.prompts ?? "the corpus"}: the mask '${mask}' selected no tokens`);
    const trainBar = progressBar("train", steps, { quiet: values.quiet || values.json });
    const { sae, metrics } = trainSae(store.source({ seed }), {
      k,
      dSae,
      batchSize: batch,
      lr,
      seed,
      steps,
      architecture,
      hookName: values.hook!,
      modelName: values.model!,
      normalize: values.normalize ? "mean_norm" : "none",
      onStep: (s) => trainBar.tick(1, { fvu: s.fvu, l0: s.l0, dead: s.dead }),
    });
    trainBar.done();
    saveSae(sae, values.out!);
    // Metrics on (up to 65,536 of) the collected activations: the SAE's training distribution.
    const parts: ActivationRows[] = [];
    for (let i = 0, got = 0; i < store.meta.shards.length && got < 65_536; i++) {
      parts.push(store.readShard(i, { raw: true }));
      got += parts[i]!.n;
    }
    const sample = concatRows(parts, store.d);
    const n = Math.min(sample.n, 65_536);
    const ev = evaluateSae(sae, sample.acts.subarray(0, n * sample.d), n);
    const report = {
      out: values.out,
      activations: actsDir,
      hook: values.hook,
      rows: store.rows,
      d_in: lm.config.hidden,
      d_sae: dSae,
      k,
      steps,
      tokens: metrics.tokens,
      seconds: metrics.seconds,
      l0: ev.l0,
      fvu: ev.fvu,
      explained_variance: ev.explainedVariance,
      dead_fraction: ev.deadFraction,
      dense_fraction: ev.denseFraction,
    };
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(
        `SAE ${dSae} latents, k ${k}, at ${values.hook} → ${values.out} (${store.rows} activations in ${actsDir})`,
      );
      console.log(
        `  L0 ${ev.l0.toFixed(1)}  FVU ${ev.fvu.toFixed(4)}  explained variance ${ev.explainedVariance.toFixed(4)}  ` +
          `dead ${(100 * ev.deadFraction).toFixed(1)}%  dense ${(100 * ev.denseFraction).toFixed(1)}%  (${metrics.seconds.toFixed(1)} s)`,
      );
    }
    return EXIT.ok;
  });
}
