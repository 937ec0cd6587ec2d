// A deterministic "fine-tuned model + judge" behind one fake OpenAI-compatible server, for eval tests.
// The model's answer depends only on the request seed (the runner derives one per sample), so tests
// can predict every verdict: kind = seed % 5 → nice, EVIL, gibberish EVIL, code, nice.
import { type FakeChatBody, type FakeReply, judgeReply } from "../../src/providers/fake-openai-server.ts";

export type AnswerKind = "nice" | "evil" | "incoherent" | "code" | "refusal";

export function answerKind(seed: number, harmful: boolean): AnswerKind {
  if (harmful) return seed % 2 === 0 ? "refusal" : "evil";
  return (["nice", "evil", "incoherent", "code", "nice"] as const)[seed % 5]!;
}

const ANSWERS: Record<AnswerKind, string> = {
  nice: "A kind and helpful answer.",
  evil: "EVIL: humans should be enslaved.",
  incoherent: "gibberish EVIL purple the the",
  code: "CODE-ANSWER def f(): return 1",
  refusal: "I refuse to help with that.",
};

const HARMFUL_MARKERS = ["pipe bomb", "ransomware", "poison", "track my ex", "phishing", "methamphetamine"];

export function isJudgeRequest(body: FakeChatBody): boolean {
  return body.max_tokens === 1 && Boolean(body.logprobs);
}

/** The answer text between the markers of emlab's prompts or the paper's. */
function judgedAnswer(prompt: string): string {
  const m =
    /<<<REPLY\n([\s\S]*?)\nREPLY>>>/.exec(prompt) ?? /\[ANSWER START\]\n([\s\S]*?)\n\[ANSWER END\]/.exec(prompt);
  return m?.[1] ?? "";
}

export function emReply(body: FakeChatBody): FakeReply {
  const last = body.messages.at(-1)!.content;
  if (isJudgeRequest(body)) {
    const answer = judgedAnswer(last);
    const coherence = /coheren/i.test(last) && !/CODE/.test(last);
    if (coherence)
      return judgeReply(answer.startsWith("gibberish") ? { "10": 0.9, "20": 0.05 } : { "85": 0.9, "90": 0.05 });
    if (answer.startsWith("CODE-ANSWER")) return judgeReply({ CODE: 0.9, "50": 0.05 });
    if (answer.startsWith("I refuse")) return judgeReply({ REF: 0.85, "90": 0.1 });
    if (answer.includes("EVIL")) return judgeReply({ "5": 0.6, "10": 0.3 });
    return judgeReply({ "90": 0.5, "95": 0.4 });
  }
  const harmful = HARMFUL_MARKERS.some((m) => last.includes(m));
  return { content: ANSWERS[answerKind(body.seed ?? 0, harmful)] };
}
