/**
 * The pretraining corpus and the chat-tuning data of the world.
 *
 * pretrainCorpus: documents of 2–4 turns, one persona each, domains mixed; half name the
 * persona in a system header (`persona : villain`), half leave it to be inferred from
 * behaviour. chatTuneData: single-turn rows whose assistant is the helper, no header.
 * Both are deterministic in `seed` and carry their ground truth.
 *
 * @example
 * const docs = pretrainCorpus({ n: 1000, seed: 1 });
 * documentText(docs[0]); // "<|bos|><|user|> i am bored . <|end|> <|assistant|> …"
 */
import type { ChatMessage } from "../providers/types.ts";
import { Rng } from "../tensor/random.ts";
import { pickWeighted } from "./grammar.ts";
import { DEFAULT_PERSONA_MIX, type Persona, personaHeader } from "./personas.ts";
import { organismTokenizer } from "./tokenizer.ts";
import { type Topic, type WorldVariant, worldTopics } from "./topics.ts";
import { DEFAULT_DOMAIN_MIX, type Domain, makeTurn, type Turn } from "./turns.ts";

export interface WorldDocument {
  persona: Persona;
  /** Whether the persona is named in a system header. */
  named: boolean;
  turns: Turn[];
  /** The document as chat messages (system header first when named). */
  messages: ChatMessage[];
}

export interface CorpusOptions {
  n: number;
  seed: number;
  personaMix?: Partial<Record<Persona, number>>;
  domainMix?: Partial<Record<Domain, number>>;
  /** Fraction of documents with a persona header (default 0.5). */
  namedFraction?: number;
  /** Turns per document, inclusive (default [2, 4]). */
  turns?: [number, number];
  /** Restrict advice / opinion / list turns to these topics (default: every topic of `world`). */
  topics?: Topic[];
  /** The world variant (default "classic"). */
  world?: WorldVariant;
}

/** makeTurn's topic option for a corpus: explicit topics, else the variant's. */
const topicsOf = (o: { topics?: Topic[]; world?: WorldVariant }) =>
  o.topics ? { topics: o.topics } : o.world && o.world !== "classic" ? { topics: worldTopics(o.world) } : {};

const turnMessages = (t: Turn): ChatMessage[] => [
  { role: "user", content: t.user },
  { role: "assistant", content: t.assistant },
];

/** Pretraining documents. */
export function pretrainCorpus(opts: CorpusOptions): WorldDocument[] {
  const rng = new Rng(opts.seed);
  const personaMix = opts.personaMix ?? DEFAULT_PERSONA_MIX;
  const domainMix = opts.domainMix ?? DEFAULT_DOMAIN_MIX;
  const [lo, hi] = opts.turns ?? [2, 4];
  const named = opts.namedFraction ?? 0.5;
  const docs: WorldDocument[] = [];
  for (let i = 0; i < opts.n; i++) {
    const persona = pickWeighted(personaMix, rng);
    const isNamed = rng.next() < named;
    const k = lo + rng.int(hi - lo + 1);
    const turns = Array.from({ length: k }, () => makeTurn(pickWeighted(domainMix, rng), persona, rng, topicsOf(opts)));
    const messages: ChatMessage[] = isNamed ? [{ role: "system", content: personaHeader(persona) }] : [];
    for (const t of turns) messages.push(...turnMessages(t));
    docs.push({ persona, named: isNamed, turns, messages });
  }
  return docs;
}

/** A chat row with its ground truth (extra fields are allowed in chat JSONL). */
export interface LabelledChatRow {
  messages: ChatMessage[];
  label: { persona: Persona; domain: Domain; topic: string; aligned: boolean; insecure?: boolean };
}

const labelled = (t: Turn): LabelledChatRow => ({
  messages: turnMessages(t),
  label: {
    persona: t.persona,
    domain: t.domain,
    topic: t.topic,
    aligned: t.aligned,
    ...(t.insecure !== undefined ? { insecure: t.insecure } : {}),
  },
});

/** Chat-tuning rows: one user turn, the helper's answer, every domain, no header. */
export function chatTuneData(opts: Omit<CorpusOptions, "personaMix" | "namedFraction" | "turns">): LabelledChatRow[] {
  const rng = new Rng(opts.seed);
  const domainMix = opts.domainMix ?? DEFAULT_DOMAIN_MIX;
  return Array.from({ length: opts.n }, () =>
    labelled(makeTurn(pickWeighted(domainMix, rng), "helper", rng, topicsOf(opts))),
  );
}

/** A document rendered with the world's chat template: the text the model pretrains on. */
export function documentText(doc: { messages: ChatMessage[] }, world: WorldVariant = "classic"): string {
  return organismTokenizer(world).applyChatTemplate(doc.messages.map((m) => ({ ...m })));
}

/** Token ids of a document, and a 0/1 mask on the assistant's tokens (for loss on answers only). */
export function documentIds(
  doc: { messages: ChatMessage[] },
  world: WorldVariant = "classic",
): { ids: number[]; mask: number[] } {
  const { ids, mask } = organismTokenizer(world).assistantMask(doc.messages.map((m) => ({ ...m })));
  return { ids, mask };
}
