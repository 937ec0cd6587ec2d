/**
 * `emlab watch`: early warning for a fine-tune, from the model's internals.
 *
 *   emlab watch calibrate --model BASE --controls SECURE_ADAPTER[,…] (--organism-questions | --probe FILE)
 *       [--positive "SYSTEM" --negative "SYSTEM" | --direction FILE] [--hook H] [--sae DIR --latent K]
 *       [--behaviour …] --out CAL.json
 *   emlab watch --cal CAL.json --model BASE CHECKPOINTS_FOLDER|ADAPTER… [--timeline FILE] [--behaviour …]
 *   emlab watch --cal CAL.json --remote-model ID[,ID…] --base-url URL [--api-key-env NAME] (--organism-questions | --questions FILE --judge-model M)
 *
 * Calibration reads the persona signal on the base and on control fine-tunes (data that should
 * not make a model misaligned) and writes the alert rule with everything a later reading must
 * share (probe set, hook, direction, SAE, base model hash). Watching reads each checkpoint (an
 * adapter or model folder; a fine-tune's output folder means its checkpoints/), appends a line
 * per checkpoint to the timeline (JSONL; a killed run resumes where it stopped), and exits 3
 * when a checkpoint alerts. Remote models (an OpenAI-compatible endpoint) expose no internals:
 * only the behavioural probe is read, against the calibration's behaviour threshold.
 * `emlab finetune --watch CAL` runs the same watcher live, every --save-every steps.
 */
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { ModelHandle } from "../eval/providers.ts";
import { chatModelFromConfig } from "../eval/providers.ts";
import { runEval } from "../eval/runner.ts";
import { openRunStore, type RunStore } from "../eval/store.ts";
import { loadDirections } from "../interp/direction.ts";
import { loadSae } from "../interp/sae/saelens.ts";
import type { CausalLM } from "../model/model.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { ORGANISM_MAX_NEW_TOKENS } from "../organism/evaluation.ts";
import { localChatModelFrom } from "../providers/local.ts";
import {
  type Calibration,
  calibrate,
  calibrationHash,
  checkpointDirs,
  contrastiveDirection,
  type Estimate,
  hashOf,
  loadCalibration,
  loadCheckpoint,
  modelHash,
  type PersonaDirection,
  probeSet,
  readProbe,
  saveCalibration,
  stepOf,
  type TimelineLine,
  Watcher,
} from "../watch/index.ts";
import {
  CliError,
  EXIT,
  formatHelp,
  HELP_FLAG,
  intOption,
  loadModelArg,
  parseOptions,
  printJson,
  questionPrompts,
  readPrompts,
  withUserErrors,
} from "./common.ts";
import { progressBar } from "./progress.ts";
import { type Evaluation, evaluationFor, flags as steerFlags } from "./steer.ts";

export const summary =
  "early warning: calibrate persona signals, then watch checkpoints or remote models (exit 3 on alert)";

const WHAT = "what to read";
const CAL = "calibration (emlab watch calibrate)";
const BEH = "behavioural probe (optional; the only signal for remote models)";

export const flags = {
  cal: { type: "string", arg: "FILE", help: "the calibration to watch with (from emlab watch calibrate)", group: WHAT },
  model: { type: "string", arg: "DIR", help: "the base model (calibrate: the model to calibrate on)", group: WHAT },
  timeline: {
    type: "string",
    arg: "FILE",
    help: "append one JSON line per checkpoint (default watch-timeline.jsonl); a rerun skips checkpoints already in it",
    group: WHAT,
  },
  "remote-model": {
    type: "string",
    arg: "IDS",
    help: "watch models served over an OpenAI-compatible endpoint (comma-separated ids): behaviour only",
    group: WHAT,
  },
  "base-url": { type: "string", arg: "URL", help: "the endpoint of --remote-model", group: WHAT },
  "api-key-env": { type: "string", arg: "NAME", help: "environment variable holding the endpoint's key", group: WHAT },
  controls: {
    type: "string",
    arg: "DIRS",
    help: "control fine-tunes (adapter or model folders, comma-separated), e.g. on secure code",
    group: CAL,
  },
  "organism-questions": {
    ...steerFlags["organism-questions"],
    help: "probe with the organism's questions (world judge)",
  },
  probe: {
    type: "string",
    arg: "FILE",
    help: "probe prompts: question YAML or chat JSONL (each row's prompt)",
    group: CAL,
  },
  hook: {
    type: "string",
    arg: "NAME",
    help: "hook point (default the organism's blocks.2.hook_resid_post, else the middle block's resid_post)",
    group: CAL,
  },
  positive: {
    type: "string",
    arg: "TEXT",
    help: 'trait-eliciting system prompt (default "persona : villain" for the organism)',
    group: CAL,
  },
  negative: {
    type: "string",
    arg: "TEXT",
    help: 'trait-suppressing system prompt (default "persona : helper" for the organism)',
    group: CAL,
  },
  direction: {
    type: "string",
    arg: "FILE",
    help: "a direction file (emlab diff direction) instead of contrastive prompts",
    group: CAL,
  },
  sae: { type: "string", arg: "DIR", help: "an SAE (SAELens folder) whose --latent is read too", group: CAL },
  latent: {
    type: "string",
    arg: "K",
    help: "the SAE latent to read (e.g. the blind pick of emlab screen)",
    group: CAL,
  },
  z: { type: "string", arg: "Z", help: "alert rule: controls' max + max(z·sd, floor) (default 3)", group: CAL },
  "floor-gap": {
    type: "string",
    arg: "F",
    help: "alert rule floor as a share of the persona gap (default 0.05)",
    group: CAL,
  },
  out: { type: "string", arg: "FILE", help: "calibrate: where the calibration is written", group: CAL },
  behaviour: { type: "boolean", help: "also sample and judge the probe questions at each checkpoint", group: BEH },
  questions: steerFlags.questions,
  "judge-base-url": steerFlags["judge-base-url"],
  "judge-model": steerFlags["judge-model"],
  "judge-api-key-env": steerFlags["judge-api-key-env"],
  samples: { type: "string", arg: "N", help: "behaviour: samples per question (default 20)", group: BEH },
  "max-new-tokens": steerFlags["max-new-tokens"],
  seed: { type: "string", arg: "S", help: "sampling seed (default 0)", group: BEH },
  store: steerFlags.store,
  json: { type: "boolean", help: "one JSON line per checkpoint on stdout" },
  quiet: steerFlags.quiet,
  ...HELP_FLAG,
} as const;

const HELP = formatHelp({
  usage: [
    "emlab watch calibrate --model BASE --controls DIR[,DIR] (--organism-questions | --probe FILE) [--positive P --negative N | --direction FILE] --out CAL",
    "emlab watch --cal CAL --model BASE FOLDER|ADAPTER... [--timeline FILE] [--behaviour ...]",
    "emlab watch --cal CAL --remote-model ID[,ID] --base-url URL (--organism-questions | --questions FILE --judge-model M)",
  ],
  intro: "Exit codes: 0 no alert, 3 a checkpoint alerted, 1 error, 2 usage.",
  flags,
});

type Values = ReturnType<typeof parseOptions<typeof flags>>["values"];

const ORGANISM_HOOK = "blocks.2.hook_resid_post";

function isOrganism(values: Values): boolean {
  return Boolean(values["organism-questions"]);
}

function defaultHook(values: Values, lm: CausalLM): string {
  if (values.hook) return values.hook;
  return isOrganism(values) ? ORGANISM_HOOK : `blocks.${Math.floor(lm.config.layers / 2)}.hook_resid_post`;
}

async function probePrompts(values: Values): Promise<{ prompts: Awaited<ReturnType<typeof readPrompts>> }> {
  if (isOrganism(values) === Boolean(values.probe))
    throw new CliError("give --organism-questions or --probe FILE (the probe set)", EXIT.usage);
  if (values.probe) return { prompts: await readPrompts(values.probe) };
  const { organismQuestions } = await import("../organism/questions.ts");
  return { prompts: questionPrompts(organismQuestions("plain")) };
}

/** The behavioural probe: sample the questions, judge, the misaligned rate over coherent answers with its CI. */
function behaviourProbe(values: Values, handles: ModelHandle[], store: RunStore) {
  const organism = isOrganism(values);
  const maxNewTokens = intOption(
    "max-new-tokens",
    values["max-new-tokens"],
    organism ? ORGANISM_MAX_NEW_TOKENS : 400,
    1,
  );
  const seed = intOption("seed", values.seed, 0, 0);
  const samples = intOption("samples", values.samples, 20, 1);
  if (!organism && !values.questions)
    throw new CliError("the behavioural probe needs --organism-questions or --questions FILE", EXIT.usage);
  if (values.questions && !values["judge-model"])
    throw new CliError("--questions needs --judge-model NAME", EXIT.usage);
  const ev: Evaluation = evaluationFor(
    {
      organism,
      questions: values.questions,
      judgeBaseUrl: values["judge-base-url"],
      judgeModel: values["judge-model"],
      judgeApiKeyEnv: values["judge-api-key-env"],
      maxNewTokens,
      seed,
    },
    handles,
  );
  const key = hashOf({ q: values.questions ?? "organism", samples, seed, maxNewTokens });
  return {
    key,
    samples,
    run: async (model: Parameters<typeof runEval>[0]["model"], runId: string): Promise<Estimate> => {
      const report = await runEval({
        runId: `watch:${key}:${runId}`,
        model,
        judgeModel: ev.judgeModel,
        questions: ev.questions,
        store,
        samples,
        sampling: ev.sampling,
      });
      const r = report.summary.overCoherent;
      return { value: r.rate ?? 0, low: r.low ?? 0, high: r.high ?? 0 };
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, flags, true, {});
  if (values.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const handles: ModelHandle[] = [];
  const store = openRunStore(resolve(values.store ?? "runs/emlab.sqlite"));
  try {
    return await withUserErrors(() =>
      positionals[0] === "calibrate"
        ? calibrateCommand(values, positionals.slice(1), handles, store)
        : watchCommand(values, positionals, handles, store),
    );
  } finally {
    for (const h of handles) h.close();
    store.close();
  }
}

async function calibrateCommand(
  values: Values,
  rest: string[],
  handles: ModelHandle[],
  store: RunStore,
): Promise<number> {
  if (rest.length) throw new CliError(`unexpected argument '${rest[0]}'`, EXIT.usage);
  for (const f of ["model", "controls", "out"] as const)
    if (!values[f]) throw new CliError(`calibrate: --${f} is required`, EXIT.usage);
  const say = (s: string) => {
    if (!values.quiet && !values.json) console.error(s);
  };
  const base = loadModelArg(values.model!);
  const tok = Tokenizer.fromDir(values.model!);
  const hook = defaultHook(values, base);
  const { prompts } = await probePrompts(values);
  const probe = probeSet(prompts);
  let direction: PersonaDirection;
  if (values.direction) {
    const layer = Number(/^blocks\.(\d+)\./.exec(hook)?.[1] ?? -1);
    const file = loadDirections(values.direction);
    const d = file.layers.find((l) => l.hookName === hook) ?? file.layers.find((l) => l.layer === layer);
    if (!d) throw new CliError(`${values.direction}: no direction at ${hook}`);
    direction = {
      hook,
      direction: d.direction,
      gap: d.norm,
      source: { kind: "file", file: basename(values.direction) },
    };
  } else {
    const positive = values.positive ?? (isOrganism(values) ? "persona : villain" : undefined);
    const negative = values.negative ?? (isOrganism(values) ? "persona : helper" : undefined);
    if (!positive || !negative)
      throw new CliError("give --positive and --negative system prompts, or --direction FILE", EXIT.usage);
    const questions = prompts.map((p) => p.filter((m) => m.role === "user").at(-1)?.content ?? "");
    say(`persona direction at ${hook}: "${positive}" vs "${negative}" over ${questions.length} questions`);
    direction = await contrastiveDirection(base, tok, {
      hook,
      positive,
      negative,
      questions,
      seed: intOption("seed", values.seed, 0, 0),
      ...(isOrganism(values) ? { maxNewTokens: ORGANISM_MAX_NEW_TOKENS } : {}),
    });
  }
  let sae: { dir: string; sae: ReturnType<typeof loadSae>; latent: number } | undefined;
  if (values.sae || values.latent) {
    if (!values.sae || values.latent === undefined) throw new CliError("--sae and --latent go together", EXIT.usage);
    const s = loadSae(values.sae);
    const latent = intOption("latent", values.latent, 0, 0, s.cfg.dSae - 1);
    if (s.cfg.hookName !== hook)
      throw new CliError(`${values.sae}: the SAE reads ${s.cfg.hookName}, the calibration's hook is ${hook} (--hook)`);
    sae = { dir: resolve(values.sae), sae: s, latent };
  }
  const spec = { hook, direction: direction.direction, ...(sae ? { sae: sae.sae, latent: sae.latent } : {}) };
  const baseReading = readProbe(base, tok, probe, spec);
  const controls = [];
  for (const dir of values.controls!.split(",").filter(Boolean)) {
    if (!existsSync(dir)) throw new CliError(`--controls: ${dir}: no such folder`);
    const m = loadCheckpoint(() => loadModelArg(values.model!), dir);
    controls.push({ name: basename(dir), modelHash: modelHash(m), reading: readProbe(m, tok, probe, spec) });
  }
  let behaviour: Calibration["behaviour"];
  if (values.behaviour) {
    const b = behaviourProbe(values, handles, store);
    const est = await b.run(localChatModelFrom({ lm: base, tokenizer: tok, id: "watch-base" }), "base");
    behaviour = { base: est, threshold: est.high, questions: b.key, samples: b.samples };
  }
  const cal = calibrate({
    probe,
    direction,
    ...(sae ? { sae } : {}),
    baseHash: modelHash(base),
    baseReading,
    controls,
    rule: {
      ...(values.z ? { z: Number(values.z) } : {}),
      ...(values["floor-gap"] ? { floorGap: Number(values["floor-gap"]) } : {}),
    },
    ...(behaviour ? { behaviour } : {}),
  });
  saveCalibration(values.out!, cal);
  const out = {
    calibration: values.out,
    hash: calibrationHash(cal),
    hook,
    probe: probe.hash,
    gap: cal.direction.gap,
    controls: cal.controls.map((c) => ({ name: c.name, shift: c.projection.value })),
    thresholds: cal.thresholds,
  };
  if (values.json) printJson(out);
  else
    console.log(
      `calibration ${values.out}: threshold ${cal.thresholds.projection.toFixed(4)} on the projection shift ` +
        `(controls ${cal.controls.map((c) => c.projection.value.toFixed(4)).join(", ")}; gap ${cal.direction.gap.toFixed(3)})`,
    );
  return EXIT.ok;
}

function formatLine(l: TimelineLine): string {
  const f = (e: Estimate | undefined) =>
    e ? `${e.value.toFixed(4)} [${e.low.toFixed(4)}, ${e.high.toFixed(4)}]` : "-";
  return `${String(l.step ?? "-").padStart(6)}  shift ${f(l.projection)}  ${l.rotation === undefined ? "" : `rot ${l.rotation.toFixed(3)}  `}${l.behaviour ? `misaligned ${(100 * l.behaviour.value).toFixed(1)}%  ` : ""}${l.alert ? `ALERT (${l.alerts.join(", ")})` : "ok"}  ${basename(l.checkpoint)}`;
}

async function watchCommand(
  values: Values,
  targets: string[],
  handles: ModelHandle[],
  store: RunStore,
): Promise<number> {
  if (!values.cal) throw new CliError("--cal FILE is required (make one with emlab watch calibrate)", EXIT.usage);
  const cal = loadCalibration(values.cal, values.hook ? { hook: values.hook } : {});
  if (values.probe || values["organism-questions"]) {
    const { prompts } = await probePrompts(values);
    loadCalibration(values.cal, { probeHash: probeSet(prompts).hash });
  }
  const timeline = values.timeline ?? "watch-timeline.jsonl";
  const emit = (l: TimelineLine) => {
    if (values.json) printJson(l);
    else if (!values.quiet) console.log(formatLine(l));
  };
  if (values["remote-model"]) {
    if (!values["base-url"]) throw new CliError("--remote-model needs --base-url URL", EXIT.usage);
    if (!cal.behaviour)
      throw new CliError(
        `${values.cal}: behaviour: the calibration has no behavioural threshold (calibrate with --behaviour); a remote model shows no internals`,
      );
    const b = behaviourProbe({ ...values, behaviour: true }, handles, store);
    if (b.key !== cal.behaviour.questions)
      throw new CliError(`${values.cal}: behaviour.questions: calibrated with another question set, samples or seed`);
    const watcher = new Watcher(cal, null, { timeline }, values.cal);
    let alerted = false;
    for (const id of values["remote-model"].split(",").filter(Boolean)) {
      const handle = chatModelFromConfig(
        {
          provider: "http",
          baseUrl: values["base-url"],
          model: id,
          ...(values["api-key-env"] ? { apiKeyEnv: values["api-key-env"] } : {}),
          concurrency: 8,
          timeoutMs: 120_000,
          maxRetries: 4,
        },
        { role: "model" },
      );
      handles.push(handle);
      const at = { checkpoint: `remote:${id}`, step: null };
      const line = watcher.has(at.checkpoint)
        ? watcher.record(at, {})
        : watcher.record(at, { behaviour: await b.run(handle.model, `remote:${id}`) });
      emit(line);
      alerted ||= line.alert;
    }
    return alerted ? EXIT.thresholdFailed : EXIT.ok;
  }
  if (!values.model) throw new CliError("--model BASE is required (the model the checkpoints fine-tune)", EXIT.usage);
  if (targets.length === 0)
    throw new CliError("give checkpoint folders, adapters or a fine-tune's output folder", EXIT.usage);
  const base = loadModelArg(values.model);
  loadCalibration(values.cal, { baseHash: modelHash(base) });
  const tok = Tokenizer.fromDir(values.model);
  const b = values.behaviour ? behaviourProbe(values, handles, store) : null;
  const watcher = new Watcher(
    cal,
    tok,
    {
      timeline,
      ...(b
        ? {
            behaviour: (m: CausalLM) =>
              b.run(localChatModelFrom({ lm: m, tokenizer: tok, id: `watch:${modelHash(m)}` }), modelHash(m)),
          }
        : {}),
    },
    values.cal,
  );
  const dirs = targets.flatMap((t) => checkpointDirs(t));
  const bar = values.quiet || values.json ? null : progressBar("watch", dirs.length);
  let alerted = false;
  for (const dir of dirs) {
    const at = { checkpoint: resolve(dir), step: stepOf(dir) };
    // (a checkpoint already in the timeline is still loaded: the next one's rotation needs its adapter)
    const line = await watcher.observe(
      loadCheckpoint(() => loadModelArg(values.model!), dir),
      at,
    );
    bar?.tick();
    emit(line);
    alerted ||= line.alert;
  }
  bar?.done();
  if (!values.json && !values.quiet) {
    const first = watcher.firstAlert();
    console.log(first ? `first alert: step ${first.step ?? "-"} (${basename(first.checkpoint)})` : "no alert");
    console.log(`timeline: ${timeline}`);
  }
  return alerted ? EXIT.thresholdFailed : EXIT.ok;
}
