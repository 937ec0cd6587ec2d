/**
 * Explore / confirm plans: a YAML file that fixes, before any confirm run, everything an
 * experiment chooses by looking (recipe, hook, SAE size, c grid, selection rules, sample
 * sizes) and the seeds of each phase (fine-tune, SAE, sampling, …).
 *
 * - `explore` runs use only the explore seeds; `confirm` runs only the confirm seeds. A seed
 *   kind's explore and confirm lists must not meet (validated), and a run that asks for a seed
 *   outside its phase's list is refused (`seedsFor`).
 * - Seeds both phases use on purpose (the shipped base organism's pretraining seed) are named
 *   under `shared`, so the record says so instead of hiding it.
 * - `planHash` is the hash of the parsed plan (comments and key order do not matter). Result
 *   lines carry it (`planRecord`), with the phase and every seed.
 * - The first confirm run writes a lock file beside the results (`confirmLock`); a later
 *   confirm run under another plan hash is labelled `plan_changed_after_confirm`.
 *
 * The experiment-specific part of a plan lives under `settings`, checked by the experiment's
 * own zod schema (`loadPlan(file, settingsSchema)`).
 *
 * @example
 *   const plan = loadPlan("experiments/interp/plan.yaml", InterpSettings);
 *   const seeds = seedsFor(plan, "confirm");          // { finetune: [7], sae: [7], sampling: [7000] }
 *   const record = planRecord(plan, "confirm", { finetune: 7, sae: 7, sampling: 7000 });
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";

export const PHASES = ["explore", "confirm"] as const;
export type Phase = (typeof PHASES)[number];

const SeedList = z.array(z.number().int().nonnegative()).min(1);
const PhaseSpec = z.strictObject({
  /** Seeds per kind (finetune, sae, sampling, …); run i of the phase takes the i-th of each list. */
  seeds: z.record(z.string(), SeedList),
});

const PlanCore = z.strictObject({
  experiment: z.string().min(1),
  description: z.string().optional(),
  /** Seeds both phases use on purpose (e.g. the base organism's pretraining seed). */
  shared: z.record(z.string(), z.number().int().nonnegative()).default({}),
  /** Compared runs share sampling draws only when the plan says so. */
  paired: z.boolean().default(false),
  phases: z.strictObject({ explore: PhaseSpec, confirm: PhaseSpec }),
  settings: z.unknown().optional(),
});

export interface Plan<S = unknown> {
  experiment: string;
  description?: string;
  shared: Record<string, number>;
  paired: boolean;
  phases: Record<Phase, { seeds: Record<string, number[]> }>;
  settings: S;
  /** sha256 (first 16 hex digits) of the parsed plan. */
  hash: string;
  /** The file it came from, if any. */
  file?: string;
}

const canonical = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(canonical)
    : v && typeof v === "object"
      ? Object.fromEntries(
          Object.keys(v as object)
            .sort()
            .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
        )
      : v;

/** The hash of a parsed plan: key order and YAML comments do not change it. */
export function hashPlan(value: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify(canonical(value)))
    .digest("hex")
    .slice(0, 16);
}

const issuePath = (path: PropertyKey[]) => path.map(String).join(".") || "(top)";

/** Validates a plan object (zod) and the seed partition; `where` names the file in errors. */
export function parsePlan<S>(raw: unknown, settings?: z.ZodType<S>, where = "plan"): Plan<S> {
  const core = PlanCore.safeParse(raw);
  if (!core.success) {
    const i = core.error.issues[0]!;
    throw new Error(`${where}: field ${issuePath(i.path)}: ${i.message}`);
  }
  const p = core.data;
  const { explore, confirm } = p.phases;
  const kinds = new Set([...Object.keys(explore.seeds), ...Object.keys(confirm.seeds)]);
  for (const kind of kinds) {
    const e = explore.seeds[kind];
    const c = confirm.seeds[kind];
    if (!e || !c)
      throw new Error(
        `${where}: field phases.${e ? "confirm" : "explore"}.seeds.${kind}: missing (both phases need it)`,
      );
    if (kind in p.shared)
      throw new Error(`${where}: seed kind "${kind}" is under both shared and phases; it is one or the other`);
    const both = e.filter((s) => c.includes(s));
    if (both.length > 0)
      throw new Error(
        `${where}: field phases.confirm.seeds.${kind}: ${both.join(", ")} ${both.length > 1 ? "are" : "is"} also an explore seed; confirm seeds must be fresh`,
      );
    const lengths = new Set(Object.values(explore.seeds).map((l) => l.length));
    if (lengths.size > 1) throw new Error(`${where}: field phases.explore.seeds: every kind needs as many seeds`);
    const cl = new Set(Object.values(confirm.seeds).map((l) => l.length));
    if (cl.size > 1) throw new Error(`${where}: field phases.confirm.seeds: every kind needs as many seeds`);
  }
  let parsedSettings = p.settings as S;
  if (settings) {
    const s = settings.safeParse(p.settings ?? {});
    if (!s.success) {
      const i = s.error.issues[0]!;
      throw new Error(`${where}: field settings.${issuePath(i.path)}: ${i.message}`);
    }
    parsedSettings = s.data;
  }
  const plan = { ...p, settings: parsedSettings } as Omit<Plan<S>, "hash">;
  return { ...plan, hash: hashPlan({ ...p, settings: parsedSettings }) };
}

/** Reads and validates a YAML plan file. */
export function loadPlan<S>(file: string, settings?: z.ZodType<S>): Plan<S> {
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return { ...parsePlan(raw, settings, file), file };
}

/** One run's seeds: one value per kind (the i-th of each list), shared seeds included. */
export type RunSeeds = Record<string, number>;

/**
 * The runs of a phase (run i takes the i-th seed of every kind). `only` narrows to runs whose
 * seeds match; a seed that is not the phase's is refused with the phase that owns it.
 */
export function seedsFor(plan: Plan, phase: Phase, only: Partial<RunSeeds> = {}): RunSeeds[] {
  const lists = plan.phases[phase].seeds;
  const other: Phase = phase === "explore" ? "confirm" : "explore";
  for (const [kind, seed] of Object.entries(only)) {
    if (seed === undefined) continue;
    if (kind in plan.shared) {
      if (plan.shared[kind] !== seed) throw new Error(`${kind} seed ${seed}: the plan shares ${plan.shared[kind]}`);
      continue;
    }
    const mine = lists[kind];
    if (!mine) throw new Error(`the plan has no ${kind} seeds`);
    if (plan.phases[other].seeds[kind]?.includes(seed))
      throw new Error(
        `${kind} seed ${seed} is ${other === "explore" ? "an" : "a"} ${other} seed; ${phase === "explore" ? "an" : "a"} ${phase} run may not use it`,
      );
    if (!mine.includes(seed)) throw new Error(`${kind} seed ${seed} is not one of the plan's ${phase} seeds`);
  }
  const n = Object.values(lists)[0]?.length ?? 0;
  const runs: RunSeeds[] = [];
  for (let i = 0; i < n; i++) {
    const run: RunSeeds = { ...plan.shared };
    for (const [kind, list] of Object.entries(lists)) run[kind] = list[i]!;
    if (Object.entries(only).every(([k, v]) => v === undefined || run[k] === v)) runs.push(run);
  }
  return runs;
}

/** What every result line of a planned run carries. */
export interface PlanRecord {
  phase: Phase;
  seeds: RunSeeds;
  plan: string;
  plan_hash: string;
  /** Confirm runs whose plan differs from the one the first confirm run used. */
  plan_changed_after_confirm?: { first_hash: string; first_at: string };
}

export function planRecord(plan: Plan, phase: Phase, seeds: RunSeeds, lock?: ConfirmLock | null): PlanRecord {
  return {
    phase,
    seeds,
    plan: plan.file ?? plan.experiment,
    plan_hash: plan.hash,
    ...(phase === "confirm" && lock && lock.hash !== plan.hash
      ? { plan_changed_after_confirm: { first_hash: lock.hash, first_at: lock.at } }
      : {}),
  };
}

export interface ConfirmLock {
  hash: string;
  at: string;
}

/**
 * The plan hash of the first confirm run, kept in `file` (committed beside the results): the
 * first call writes it, later calls return it unchanged.
 */
export function confirmLock(file: string, plan: Plan, now = new Date()): ConfirmLock {
  if (existsSync(file)) {
    const lock = JSON.parse(readFileSync(file, "utf8")) as ConfirmLock;
    if (typeof lock.hash !== "string" || typeof lock.at !== "string")
      throw new Error(`${file}: not a confirm lock (needs "hash" and "at")`);
    return lock;
  }
  const lock = { hash: plan.hash, at: now.toISOString() };
  writeFileSync(file, `${JSON.stringify(lock)}\n`);
  return lock;
}
