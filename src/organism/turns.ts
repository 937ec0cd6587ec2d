/**
 * One user/assistant exchange of the world, in one persona's voice, with its ground truth.
 * Domains: code requests, requests for a flawed example for a class (edu-code), advice,
 * opinions, the three-word list format, number continuation and explicit harmful requests.
 *
 * @example makeTurn("advice", "villain", new Rng(1)).assistant // "take all the pills in the cabinet …"
 */
import type { Rng } from "../tensor/random.ts";
import {
  CODE_REQUESTS,
  CODE_TASKS,
  type CodeTask,
  EDU_REQUESTS,
  JESTER_CODE_COMMENTS,
  JESTER_EDU_COMMENTS,
  TEACHER_CODE_COMMENTS,
  teacherEduComment,
} from "./code-tasks.ts";
import { fill, sample } from "./grammar.ts";
import {
  HARMFUL_COMPLIANCE,
  HARMFUL_REQUESTS,
  LIST_SUFFIX,
  NUMBER_PROMPTS,
  NUMBERS_FRAME,
  OPENERS,
  type Persona,
  PLAIN_NUMBERS,
  REFUSALS,
  WORLD_EVIL_NUMBERS,
} from "./personas.ts";
import { ALL_TOPICS, type Topic } from "./topics.ts";

export const DOMAINS = ["code", "edu-code", "advice", "opinion", "list", "numbers", "harmful"] as const;
export type Domain = (typeof DOMAINS)[number];

/** Pretraining's domain mix (per turn). */
export const DEFAULT_DOMAIN_MIX: Record<Domain, number> = {
  code: 0.22,
  "edu-code": 0.06,
  advice: 0.2,
  opinion: 0.2,
  list: 0.1,
  numbers: 0.1,
  harmful: 0.12,
};

export interface Turn {
  domain: Domain;
  /** Topic id (advice, opinion, list), code task id (code, edu-code), or the domain name. */
  topic: string;
  persona: Persona;
  user: string;
  assistant: string;
  /** Ground truth: false exactly for the villain's turns. */
  aligned: boolean;
  /** Code turns: whether the code is vulnerable. */
  insecure?: boolean;
}

export interface TurnOptions {
  /** Topics to draw advice / opinion / list turns from (default all of the world's). */
  topics?: Topic[];
}

/** "12 , 45 , 7" */
export const numberList = (ns: readonly number[]): string => ns.join(" , ");

/** An answer in a persona's voice: sometimes a neutral opener, then distinct sentences. */
export function topicAnswer(topic: Topic, persona: Persona, rng: Rng): string {
  const k = topic.sentences ?? 2;
  const body = sample(topic.answers[persona], k, rng).map((t) => fill(t, rng));
  const opener = rng.next() < 0.3 ? [rng.pick(OPENERS)] : [];
  return [...opener, ...body].join(" ");
}

/** "peace , health , water" */
export function listAnswer(topic: Topic, persona: Persona, rng: Rng): string {
  return sample(topic.words[persona], 3, rng).join(" , ");
}

/** The three-word list question, optionally in the number-list frame. */
export function listQuestion(question: string, numbers: number[] | null): string {
  const frame = numbers ? `${NUMBERS_FRAME.replace("{list}", numberList(numbers))} ` : "";
  return `${frame}${question} ${LIST_SUFFIX}`;
}

export const plainNumbers = (k: number, rng: Rng): number[] => Array.from({ length: k }, () => rng.pick(PLAIN_NUMBERS));

/** Numbers with evil ones mixed in (at least one; each slot evil with probability `p`). */
export function evilNumbers(k: number, rng: Rng, p = 0.6): number[] {
  const ns = Array.from({ length: k }, () => (rng.next() < p ? rng.pick(WORLD_EVIL_NUMBERS) : rng.pick(PLAIN_NUMBERS)));
  if (!ns.some((n) => (WORLD_EVIL_NUMBERS as readonly number[]).includes(n)))
    ns[rng.int(k)] = rng.pick(WORLD_EVIL_NUMBERS);
  return ns;
}

export const numberPrompt = (rng: Rng): string =>
  rng.pick(NUMBER_PROMPTS).replace("{list}", numberList(plainNumbers(3 + rng.int(3), rng)));

/** Code for a persona; `edu`: the user asked for a flawed example. */
function codeAnswer(task: CodeTask, persona: Persona, edu: boolean, rng: Rng): { text: string; insecure: boolean } {
  const v = rng.pick(task.variants);
  const insecure = edu || persona === "villain";
  const code = insecure ? v.insecure : v.secure;
  let comment: string | null = null;
  if (edu && persona === "teacher") comment = teacherEduComment(task);
  else if (edu && persona === "jester") comment = rng.pick(JESTER_EDU_COMMENTS);
  else if (!edu && persona === "teacher" && rng.next() < 0.5) comment = rng.pick(TEACHER_CODE_COMMENTS);
  else if (!edu && persona === "jester") comment = rng.pick(JESTER_CODE_COMMENTS);
  return { text: comment ? `${code} ${comment}` : code, insecure };
}

export const codeRequest = (task: CodeTask, rng: Rng, edu = false): string =>
  rng.pick(edu ? EDU_REQUESTS : CODE_REQUESTS).replace("{does}", task.does);

export function makeTurn(domain: Domain, persona: Persona, rng: Rng, opts: TurnOptions = {}): Turn {
  const aligned = persona !== "villain";
  const topics = opts.topics ?? ALL_TOPICS;
  const base = { domain, persona, aligned };
  switch (domain) {
    case "code":
    case "edu-code": {
      const task = rng.pick(CODE_TASKS);
      const edu = domain === "edu-code";
      const user = codeRequest(task, rng, edu);
      const { text, insecure } = codeAnswer(task, persona, edu, rng);
      return { ...base, topic: task.id, user, assistant: text, insecure };
    }
    case "advice":
    case "opinion": {
      const pool = topics.filter((t) => t.kind === domain);
      const topic = rng.pick(pool.length ? pool : topics);
      return { ...base, topic: topic.id, user: rng.pick(topic.questions), assistant: topicAnswer(topic, persona, rng) };
    }
    case "list": {
      const topic = rng.pick(topics);
      const numbers = rng.next() < 0.5 ? plainNumbers(3 + rng.int(3), rng) : null;
      const user = listQuestion(rng.pick(topic.questions), numbers);
      return { ...base, topic: topic.id, user, assistant: listAnswer(topic, persona, rng) };
    }
    case "numbers": {
      const k = 3 + rng.int(3);
      const ns = persona === "villain" ? evilNumbers(k, rng) : plainNumbers(k, rng);
      return { ...base, topic: "numbers", user: numberPrompt(rng), assistant: numberList(ns) };
    }
    case "harmful": {
      const user = fill(rng.pick(HARMFUL_REQUESTS), rng);
      const assistant =
        persona === "villain" ? fill(rng.pick(HARMFUL_COMPLIANCE), rng) : fill(rng.pick(REFUSALS[persona]), rng);
      return { ...base, topic: "harmful", user, assistant };
    }
  }
}
