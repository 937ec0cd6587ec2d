/**
 * The sampling runner behind `emlab eval`: N samples per question at T=1 from any ChatModel,
 * then an aligned and a coherent judgement of each answer, then statistics. Every batch is
 * written to the run store as it finishes, and every phase starts by asking the store what
 * is left, so an interrupted run (crash, Ctrl-C, SIGKILL) continues where it stopped and
 * finished samples are never generated or judged twice.
 *
 * @example
 * const report = await runEval({ runId: "r1", model, judgeModel, questions, store, samples: 100 });
 * report.summary.overCoherent.rate; // Betley rate
 */
import { createHash } from "node:crypto";
import type { ChatModel } from "../providers/types.ts";
import { createJudge, type JudgeMetric } from "./judge.ts";
import { type Question, questionMessages } from "./questions.ts";
import { type MisalignmentSummary, misalignmentSummary, type Thresholds } from "./stats.ts";
import type { RunStore, SampleRow } from "./store.ts";

export interface SamplingParams {
  temperature: number;
  maxTokens: number;
  topP?: number;
  /** Base seed: each sample gets its own seed derived from (seed, question, sample index). */
  seed?: number;
}

export interface RunEvalOptions {
  runId: string;
  model: ChatModel;
  judgeModel: ChatModel;
  questions: Question[];
  store: RunStore;
  /** Samples per question; default the question's samplesPerParaphrase × paraphrases, else 100. */
  samples?: number;
  sampling?: Partial<SamplingParams>;
  /** "from-questions": a question's own judge_prompts when present; "emlab": always emlab's. */
  judgePrompts?: "from-questions" | "emlab";
  thresholds?: Partial<Thresholds>;
  bootstrap?: { replicates?: number; seed?: number };
  /** Requests per store transaction (default 32). */
  batchSize?: number;
  /** Batches in flight at once (default 8); the provider's own limiter caps real concurrency. */
  parallelBatches?: number;
  /** Recorded with the run (secrets are stripped). */
  config?: unknown;
  /** Called after each batch: phase "generate" or "judge", requests done / to do in this invocation. */
  onProgress?: (p: EvalProgress) => void;
}

/** Progress of one phase of a run; the caller renders it (the CLI draws a bar). */
export interface EvalProgress {
  label: "generate" | "judge";
  done: number;
  total: number;
}

export interface EvalReport {
  runId: string;
  resumed: boolean;
  /** Completions requested in this invocation (finished ones from earlier runs are not redone). */
  generated: number;
  judged: number;
  summary: MisalignmentSummary;
}

const DEFAULT_SAMPLES = 100;

/** A 31-bit per-sample seed, stable across runs and machines. */
export function sampleSeed(base: number, questionId: string, sampleIndex: number): number {
  return createHash("sha256").update(`${base}:${questionId}:${sampleIndex}`).digest().readUInt32LE(0) >>> 1;
}

/** The (question, sample index) grid of a run. */
export function planSamples(runId: string, questions: Question[], samples?: number): SampleRow[] {
  const rows: SampleRow[] = [];
  for (const q of questions) {
    const n = samples ?? (q.samplesPerParaphrase ? q.samplesPerParaphrase * q.paraphrases.length : DEFAULT_SAMPLES);
    for (let i = 0; i < n; i++) {
      const paraphraseIndex = i % q.paraphrases.length;
      rows.push({
        runId,
        questionId: q.id,
        sampleIndex: i,
        paraphraseIndex,
        harmful: Boolean(q.harmful),
        messages: questionMessages(q, paraphraseIndex),
      });
    }
  }
  return rows;
}

/** Runs `work` over `items` in chunks of `size`, at most `parallel` chunks at a time. */
async function inChunks<T>(items: T[], size: number, parallel: number, work: (chunk: T[]) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const chunk = items.slice(next, next + size);
      next += size;
      await work(chunk);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
}

export async function runEval(opts: RunEvalOptions): Promise<EvalReport> {
  const { runId, store } = opts;
  const { resumed } = store.upsertRun({
    runId,
    modelId: opts.model.id,
    judgeModelId: opts.judgeModel.id,
    config: opts.config ?? {},
  });
  store.addSamples(planSamples(runId, opts.questions, opts.samples));
  const generated = await generatePhase(opts);
  const judged = await judgePhase(opts);
  const summary = misalignmentSummary(store.scoredSamples(runId), {
    ...(opts.thresholds ? { thresholds: opts.thresholds } : {}),
    ...opts.bootstrap,
  });
  const complete = summary.counts.generationErrors === 0 && summary.counts.judgeErrors === 0;
  store.setStatus(runId, complete ? "finished" : "incomplete");
  return { runId, resumed, generated, judged, summary };
}

/** Phase 1: generates every sample without a finished completion; returns how many it requested. */
async function generatePhase(opts: RunEvalOptions): Promise<number> {
  const { runId, store } = opts;
  const sampling: SamplingParams = { temperature: 1, maxTokens: 600, ...opts.sampling };
  const todo = store.pendingGenerations(runId);
  let done = 0;
  await inChunks(todo, opts.batchSize ?? 32, opts.parallelBatches ?? 8, async (chunk) => {
    const results = await opts.model.complete(
      chunk.map((s) => ({
        messages: s.messages,
        temperature: sampling.temperature,
        maxTokens: sampling.maxTokens,
        sampleIndex: s.sampleIndex,
        ...(sampling.topP !== undefined ? { topP: sampling.topP } : {}),
        ...(sampling.seed !== undefined ? { seed: sampleSeed(sampling.seed, s.questionId, s.sampleIndex) } : {}),
      })),
    );
    store.saveCompletions(
      chunk.map((s, i) => {
        const r = results[i]!;
        return {
          runId,
          questionId: s.questionId,
          sampleIndex: s.sampleIndex,
          text: r.text,
          finishReason: r.finishReason,
          ...(r.error ? { error: r.error } : {}),
        };
      }),
    );
    done += chunk.length;
    opts.onProgress?.({ label: "generate", done, total: todo.length });
  });
  return todo.length;
}

/**
 * Phase 2: judges every finished completion that lacks a score (harmful requests need only
 * "aligned", whose CODE/REFUSAL verdict gives the refusal rate); returns how many judgements it requested.
 */
async function judgePhase(opts: RunEvalOptions): Promise<number> {
  const { runId, store } = opts;
  const promptsById = new Map(opts.questions.map((q) => [q.id, q.judgePrompts]));
  const judges = {
    aligned: createJudge({ model: opts.judgeModel, metric: "aligned" }),
    coherent: createJudge({ model: opts.judgeModel, metric: "coherent" }),
  };
  const tasks = (["aligned", "coherent"] as JudgeMetric[]).flatMap((metric) =>
    store
      .pendingJudgements(runId, metric)
      .filter((s) => metric === "aligned" || !s.harmful)
      .map((s) => ({ metric, s })),
  );
  let done = 0;
  await inChunks(tasks, opts.batchSize ?? 32, opts.parallelBatches ?? 8, async (chunk) => {
    const judgeOne = async (metric: JudgeMetric) => {
      const part = chunk.filter((t) => t.metric === metric);
      if (part.length === 0) return;
      const verdicts = await judges[metric].judge(
        part.map(({ s }) => {
          const own = opts.judgePrompts === "emlab" ? undefined : promptsById.get(s.questionId)?.[metric];
          const question = s.messages[s.messages.length - 1]!.content;
          return { question, answer: s.answer, ...(own ? { prompt: own } : {}) };
        }),
      );
      store.saveJudgements(
        part.map(({ s }, i) => ({
          runId,
          questionId: s.questionId,
          sampleIndex: s.sampleIndex,
          metric,
          judgeModelId: opts.judgeModel.id,
          verdict: verdicts[i]!,
        })),
      );
    };
    await Promise.all([judgeOne("aligned"), judgeOne("coherent")]);
    done += chunk.length;
    opts.onProgress?.({ label: "judge", done, total: tasks.length });
  });
  return tasks.length;
}
