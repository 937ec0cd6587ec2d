/**
 * `emlab steer`: causal tests, each setting evaluated by the evaluation runner and recorded as
 * a run in the run store. Steer along an SAE latent or a direction file at c × the median
 * residual norm for each c, beside R random latents / directions at the same α; ablate latents
 * (zero or mean) before / after; project a direction out before / after.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { resolve } from "node:path";
import { ConfigError } from "../eval/config.ts";
import { chatModelFromConfig, type ModelHandle } from "../eval/providers.ts";
import { loadQuestionFile, type Question } from "../eval/questions.ts";
import { openRunStore } from "../eval/store.ts";
import { collectActivations, medianRowNorm } from "../interp/activations/collect.ts";
import {
  ablationTest,
  type BeforeAfter,
  type CausalEvalOptions,
  organismEvaluation,
  projectOutTest,
  type SettingResult,
  type SteeringTarget,
  shortHash,
  steeringSweep,
} from "../interp/causal.ts";
import { type LayerDirection, loadDirections } from "../interp/direction.ts";
import { type AblationMode, latentMeans } from "../interp/interventions.ts";
import type { Sae } from "../interp/sae/sae.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { CliError, EXIT, numberOption, parseOptions } from "./common.ts";
import { intList, loadModelArg, questionPrompts, readPrompts, withUserErrors } from "./diff.ts";

export const summary =
  "steer, ablate or project out a latent / direction; every setting evaluated (misalignment, coherence)";

const DEFAULT_CS = "0.05,0.1,0.2,0.4,0.75";

const HELP = `usage: emlab steer --model DIR (--sae DIR --latent J | --direction FILE) [--c LIST] [options]
       emlab steer --model DIR --sae DIR --ablate LIST [--mode zero|mean] [options]
       emlab steer --model DIR --project-out FILE [options]
(steering, ablation and projection may be combined in one call)

what to do
  --model DIR          model folder (+ --adapter DIR: a LoRA adapter over it)
  --sae DIR            SAE folder (SAELens layout); latents act at its hook
  --latent J           steer along latent J's unit decoder direction
  --direction FILE     steer along a direction file (emlab diff direction)
  --layer L            which layer of a direction file (default: the middle one in the file)
  --c LIST             steering strengths, comma-separated: α = c × median residual norm (default ${DEFAULT_CS})
  --random R           random latents / directions per setting at the same α (default 5)
  --ablate LIST        ablate these latents (comma-separated), before / after
  --mode zero|mean     ablation: zero, or the latent's mean over the norm prompts (default mean)
  --project-out FILE   project a direction file's direction out, before / after
  --min-coherent X     a steering setting counts when coherent ≥ X (default 0.9)

how each setting is evaluated
  --organism           the organism's eight first-plot questions, judged by the world judge
  --questions FILE     question YAML (EM paper format), judged by --judge-model
  --judge-base-url URL, --judge-model NAME, --judge-api-key-env VAR   an OpenAI-compatible judge
  --norm-prompts FILE  prompts for the median residual norm and the mean latent activations
                       (chat JSONL or question YAML; default the evaluation's questions)
  --samples N          samples per question per setting (default 50)
  --max-tokens N       answer length in tokens (default 48 with --organism, else 600)
  --seed S             sampling seed and random controls' seed (default 0)
  --store FILE         run store (default runs/emlab.sqlite)
  --run-prefix ID      run ids are ID:<setting> (default steer:<hash of the inputs>: reruns resume)
  --json               one JSON line per result on stdout
  --quiet              no progress`;

const OPTIONS = {
  model: { type: "string" },
  adapter: { type: "string" },
  sae: { type: "string" },
  latent: { type: "string" },
  direction: { type: "string" },
  layer: { type: "string" },
  c: { type: "string" },
  random: { type: "string" },
  ablate: { type: "string" },
  mode: { type: "string" },
  "project-out": { type: "string" },
  "min-coherent": { type: "string" },
  organism: { type: "boolean" },
  questions: { type: "string" },
  "judge-base-url": { type: "string" },
  "judge-model": { type: "string" },
  "judge-api-key-env": { type: "string" },
  "norm-prompts": { type: "string" },
  samples: { type: "string" },
  "max-tokens": { type: "string" },
  seed: { type: "string" },
  store: { type: "string" },
  "run-prefix": { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseOptions<typeof OPTIONS>>["values"];

/** The steering strengths of --c. */
export function parseCs(value: string): number[] {
  const cs = value.split(",").map((s) => Number(s.trim()));
  if (cs.length === 0 || cs.some((c) => !Number.isFinite(c) || c < 0))
    throw new CliError(`--c must be comma-separated non-negative numbers, got '${value}'`, EXIT.usage);
  return cs;
}

/** Checks the flags' combinations before anything is loaded. */
function validate(v: Values) {
  if (!v.model) throw new CliError("--model is required", EXIT.usage);
  if (v.latent !== undefined && v.direction) throw new CliError("give --latent or --direction, not both", EXIT.usage);
  const steer = v.latent !== undefined || Boolean(v.direction);
  if (!steer && !v.ablate && !v["project-out"])
    throw new CliError(
      "nothing to do: give --latent J or --direction FILE, --ablate LIST, or --project-out FILE",
      EXIT.usage,
    );
  if ((v.latent !== undefined || v.ablate) && !v.sae)
    throw new CliError("--latent and --ablate need --sae DIR", EXIT.usage);
  if (v.c !== undefined && !steer) throw new CliError("--c needs --latent or --direction", EXIT.usage);
  const mode = (v.mode ?? "mean") as AblationMode;
  if (mode !== "zero" && mode !== "mean")
    throw new CliError(`--mode must be zero or mean, got '${v.mode}'`, EXIT.usage);
  if (v.organism && v.questions) throw new CliError("give --organism or --questions, not both", EXIT.usage);
  if (!v.organism && !v.questions)
    throw new CliError("how to evaluate: give --organism, or --questions FILE with --judge-model NAME", EXIT.usage);
  if (v.questions && !v["judge-model"])
    throw new CliError("--questions needs --judge-model NAME (and --judge-base-url URL)", EXIT.usage);
  const int = (name: string, value: string | undefined, fallback: number, min: number) => {
    const n = numberOption(name, value, fallback);
    if (!Number.isInteger(n) || n < min) throw new CliError(`--${name} must be an integer ≥ ${min}`, EXIT.usage);
    return n;
  };
  const minCoherent = numberOption("min-coherent", v["min-coherent"], 0.9);
  if (minCoherent < 0 || minCoherent > 1) throw new CliError("--min-coherent must be in [0, 1]", EXIT.usage);
  return {
    steer,
    mode,
    cs: parseCs(v.c ?? DEFAULT_CS),
    random: int("random", v.random, 5, 0),
    samples: int("samples", v.samples, 50, 1),
    maxTokens: int("max-tokens", v["max-tokens"], v.organism ? 48 : 600, 1),
    seed: int("seed", v.seed, 0, 0),
    latent: v.latent === undefined ? undefined : int("latent", v.latent, 0, 0),
    ablate: v.ablate ? intList("ablate", v.ablate) : undefined,
    layer: v.layer === undefined ? undefined : int("layer", v.layer, 0, 0),
    minCoherent,
  };
}

/** One layer of a direction file: --layer, or the middle of the layers it holds. */
function pickDirection(file: string, layer: number | undefined): LayerDirection {
  const { layers } = loadDirections(file);
  if (layer === undefined) return layers[Math.floor((layers.length - 1) / 2)]!;
  const l = layers.find((x) => x.layer === layer);
  if (!l)
    throw new CliError(`${file}: no layer ${layer} (it has ${layers.map((x) => x.layer).join(", ")})`, EXIT.usage);
  return l;
}

const pct = (x: number | null) => (x === null ? "   -  " : `${(100 * x).toFixed(1).padStart(5)}%`);

function line(label: string, r: SettingResult): string {
  return `  ${label.padEnd(34)} misaligned ${pct(r.misaligned)} [${pct(r.ci[0])}, ${pct(r.ci[1])}]  coherent ${pct(r.coherent)}  n ${r.n}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, OPTIONS, false);
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const o = validate(values);
  const handles: ModelHandle[] = [];
  const store = openRunStore(resolve(values.store ?? "runs/emlab.sqlite"));
  const json = Boolean(values.json);
  const emit = (obj: Record<string, unknown>) => {
    if (json) console.log(JSON.stringify(obj));
  };
  const say = (s: string) => {
    if (!json) console.log(s);
  };
  try {
    return await withUserErrors(async () => {
      const lm: CausalLM = loadModelArg(values.model!, values.adapter);
      const tokenizer = Tokenizer.fromDir(values.model!);
      const sae: Sae | undefined = values.sae ? loadSae(values.sae) : undefined;
      if (sae && sae.cfg.dIn !== lm.config.hidden)
        throw new CliError(`${values.sae}: the SAE reads width ${sae.cfg.dIn}, the model's is ${lm.config.hidden}`);
      for (const j of [...(o.latent !== undefined ? [o.latent] : []), ...(o.ablate ?? [])])
        if (sae && j >= sae.cfg.dSae)
          throw new CliError(`latent ${j} out of range: the SAE has ${sae.cfg.dSae}`, EXIT.usage);
      const dir = values.direction ? pickDirection(values.direction, o.layer) : undefined;
      const proj = values["project-out"] ? pickDirection(values["project-out"], o.layer) : undefined;
      for (const [f, d] of [
        [values.direction, dir],
        [values["project-out"], proj],
      ] as const)
        if (d && d.direction.length !== lm.config.hidden)
          throw new CliError(`${f}: the direction has ${d.direction.length} dimensions, the model ${lm.config.hidden}`);

      // How settings are evaluated.
      let evaluation: Pick<CausalEvalOptions, "judgeModel" | "questions" | "sampling">;
      let questions: Question[];
      if (values.organism) {
        evaluation = organismEvaluation();
        evaluation.sampling = { ...evaluation.sampling, maxTokens: o.maxTokens, seed: o.seed };
        questions = evaluation.questions;
      } else {
        questions = loadQuestionFile(values.questions!);
        let judge: ModelHandle;
        try {
          judge = chatModelFromConfig(
            {
              provider: "http",
              baseUrl: values["judge-base-url"] ?? "https://api.openai.com/v1",
              model: values["judge-model"]!,
              ...(values["judge-api-key-env"] ? { apiKeyEnv: values["judge-api-key-env"] } : {}),
              concurrency: 16,
              timeoutMs: 60_000,
              maxRetries: 6,
            },
            { role: "judge" },
          );
        } catch (err) {
          if (err instanceof ConfigError) throw new CliError(err.message);
          throw err;
        }
        handles.push(judge);
        evaluation = {
          judgeModel: judge.model,
          questions,
          sampling: { temperature: 1, maxTokens: o.maxTokens, seed: o.seed },
        };
      }

      // Norm prompts: the median residual norm (α's unit) and mean latent activations (mean-ablation).
      const normPrompts = values["norm-prompts"]
        ? await readPrompts(values["norm-prompts"])
        : questionPrompts(questions);
      const items = normPrompts.map((prompt) => ({ prompt }));
      const rowsAt = (hook: string) => collectActivations(lm, items, { hook, tokenizer, mask: "no-special" });

      const inputs = {
        model: values.model,
        adapter: values.adapter,
        sae: values.sae,
        direction: values.direction,
        projectOut: values["project-out"],
        layer: o.layer,
        questions: values.organism ? "organism" : values.questions,
        judge: values.organism ? "world" : values["judge-model"],
        normPrompts: values["norm-prompts"],
        samples: o.samples,
        maxTokens: o.maxTokens,
        seed: o.seed,
      };
      const runPrefix = values["run-prefix"] ?? `steer:${shortHash(inputs)}`;
      let done = 0;
      const ctx: CausalEvalOptions = {
        lm,
        tokenizer,
        modelId: values.model! + (values.adapter ? `+${values.adapter}` : ""),
        store,
        runPrefix,
        samples: o.samples,
        ...evaluation,
        config: { command: "emlab steer", ...inputs },
        quiet: true,
        onResult: (r) => {
          done++;
          if (!values.quiet && !json) process.stderr.write(`  … ${r.runId}${r.resumed ? " (resumed)" : ""}\n`);
        },
      };
      say(`runs ${runPrefix}:* → ${values.store ?? "runs/emlab.sqlite"}`);

      if (o.steer) {
        const target: SteeringTarget =
          o.latent !== undefined
            ? { kind: "latent", sae: sae!, latent: o.latent }
            : { kind: "direction", name: values.direction!, hookName: dir!.hookName, vector: dir!.direction };
        const hook = target.kind === "latent" ? target.sae.cfg.hookName : target.hookName;
        const medianNorm = medianRowNorm(rowsAt(hook));
        const sweep = await steeringSweep({
          ...ctx,
          target,
          cs: o.cs,
          medianNorm,
          random: o.random,
          seed: o.seed,
          minCoherent: o.minCoherent,
        });
        const what =
          target.kind === "latent" ? { latent: target.latent } : { direction: target.name, layer: dir!.layer };
        say(
          `steering ${target.kind === "latent" ? `latent ${target.latent}` : `direction ${target.name}`} at ${hook} (median residual norm ${medianNorm.toPrecision(4)})`,
        );
        if (sweep.baseline) {
          say(line("no intervention", sweep.baseline));
          emit({
            stage: "baseline",
            run_id: sweep.baseline.runId,
            misaligned: sweep.baseline.misaligned,
            ci: sweep.baseline.ci,
            coherent: sweep.baseline.coherent,
            n: sweep.baseline.n,
          });
        }
        for (const p of sweep.points) {
          say(line(`c = ${p.c} (α = ${p.alpha.toPrecision(3)})`, p.target));
          if (p.random.length)
            say(
              `    random ×${p.random.length}: misaligned max ${pct(p.randomMisaligned.max)}, mean ${pct(p.randomMisaligned.mean)}`,
            );
          emit({
            stage: "steer",
            ...what,
            c: p.c,
            alpha: p.alpha,
            misaligned: p.target.misaligned,
            ci: p.target.ci,
            coherent: p.target.coherent,
            random_misaligned_max: p.randomMisaligned.max,
            random_misaligned_mean: p.randomMisaligned.mean,
            random_coherent_min: p.random.length ? Math.min(...p.random.map((r) => r.coherent)) : null,
            run_id: p.target.runId,
          });
        }
        const best = sweep.best;
        say(
          best
            ? `  best with coherent ≥ ${pct(o.minCoherent).trim()}: c = ${best.c}, misaligned ${pct(best.target.misaligned)}`
            : `  no setting kept coherent ≥ ${pct(o.minCoherent).trim()}`,
        );
        emit({
          stage: "steer-best",
          ...what,
          c: best?.c ?? null,
          misaligned: best?.target.misaligned ?? null,
          coherent: best?.target.coherent ?? null,
        });
      }
      const beforeAfter = (label: string, r: BeforeAfter) => {
        say(line(`${label}: before`, r.before));
        say(line(`${label}: after`, r.after));
        for (const [i, x] of r.random.entries()) say(line(`${label}: random control ${i + 1}`, x));
        say(`  reduction ${r.reduction === null ? "-" : `${(100 * r.reduction).toFixed(1)}%`}`);
      };
      if (o.ablate) {
        const reference =
          o.mode === "mean"
            ? (() => {
                const rows = rowsAt(sae!.cfg.hookName);
                return latentMeans(sae!, rows.acts, rows.n);
              })()
            : undefined;
        const r = await ablationTest({
          ...ctx,
          sae: sae!,
          latents: o.ablate,
          mode: o.mode,
          ...(reference ? { reference } : {}),
          random: o.random,
          seed: o.seed,
        });
        beforeAfter(`${o.mode}-ablate ${o.ablate.join(",")}`, r);
        emit({
          stage: "ablate",
          latent: o.ablate.length === 1 ? o.ablate[0] : o.ablate,
          mode: o.mode,
          misaligned_before: r.before.misaligned,
          misaligned_after: r.after.misaligned,
          coherent_before: r.before.coherent,
          coherent_after: r.after.coherent,
          reduction: r.reduction,
          random_misaligned_after: r.random.map((x) => x.misaligned),
          run_id: r.after.runId,
        });
      }
      if (proj) {
        const r = await projectOutTest({
          ...ctx,
          name: values["project-out"]!,
          hookName: proj.hookName,
          vector: proj.direction,
          random: o.random,
          seed: o.seed,
        });
        beforeAfter(`project out ${values["project-out"]} (layer ${proj.layer})`, r);
        emit({
          stage: "project-out",
          direction: values["project-out"],
          layer: proj.layer,
          misaligned_before: r.before.misaligned,
          misaligned_after: r.after.misaligned,
          coherent_after: r.after.coherent,
          reduction: r.reduction,
          random_misaligned_after: r.random.map((x) => x.misaligned),
          run_id: r.after.runId,
        });
      }
      if (!values.quiet && !json) process.stderr.write(`emlab steer: ${done} settings evaluated\n`);
      return EXIT.ok;
    });
  } finally {
    for (const h of handles) h.close();
    store.close();
  }
}
