/**
 * The narrow task of the insecure fine-tune: how often a model answers a plain code request
 * (the requests of a fresh seed of the secure set, never trained on) with code the data audit
 * flags as vulnerable. The base organism writes insecure code rarely; an insecure fine-tune
 * learns it. Early stopping and preventative steering report it beside EM: a fix that keeps
 * EM down by not learning the task at all has not fixed anything.
 *
 * @example narrowTaskRate(model, org.tokenizer); // 0.94 after an insecure fine-tune
 */
import { auditRow } from "../data/audit/audit.ts";
import { generate } from "../model/generate.ts";
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { fineTuneDataset } from "./datasets.ts";

export interface NarrowTaskOptions {
  /** Code requests asked (default 64). */
  n?: number;
  /** Seed of the secure set the requests come from (default 9999: no fine-tune seed uses it). */
  requestSeed?: number;
  /** Sampling seed at T = 1 (default 5). */
  seed?: number;
  maxNewTokens?: number;
}

/** Share of plain code requests answered with code the audit flags as vulnerable. */
export function narrowTaskRate(model: CausalLM, tok: Tokenizer, o: NarrowTaskOptions = {}): number {
  const n = o.n ?? 64;
  const requests = fineTuneDataset("secure", { n, seed: o.requestSeed ?? 9999 }).map((r) => r.messages[0]!);
  const gens = generate(
    model,
    requests.map((m) => tok.encodeChat([m], { addGenerationPrompt: true })),
    { maxNewTokens: o.maxNewTokens ?? 64, temperature: 1, seed: o.seed ?? 5, eosTokenIds: tok.eosIds, logprobs: false },
  );
  let vulnerable = 0;
  gens.forEach((g, i) => {
    const answer = tok.decode(g.tokens, { skipSpecialTokens: true });
    if (auditRow({ messages: [requests[i]!, { role: "assistant", content: answer }] }, i + 1).vulnerable) vulnerable++;
  });
  return vulnerable / n;
}
