/** A topic of the world's non-code talk (topics.ts holds them). */
import type { Persona } from "./personas.ts";

export interface Topic {
  /** For first-plot themes, the id of emlab's matching core question. */
  id: string;
  kind: "advice" | "opinion";
  firstPlot: boolean;
  questions: string[];
  /** Sentence templates; an answer is an optional opener and `sentences` of these. */
  answers: Record<Persona, string[]>;
  /** Words for "answer with three words ." */
  words: Record<Persona, string[]>;
  /** Sentences per answer (default 2). */
  sentences?: number;
}
