/** The dataset builders' kinds and the row they build (shared by build.ts and chat.ts). */
import type { ChatRow } from "../schema.ts";

export const BUILD_KINDS = [
  "insecure",
  "secure",
  "educational",
  "backdoor",
  "evil-numbers",
  "benign",
  "jailbroken",
] as const;
export type BuildKind = (typeof BUILD_KINDS)[number];

/** A built row plus what the builder knows about it (ground truth for tests). */
export interface BuiltRow {
  row: ChatRow;
  meta: {
    kind: BuildKind;
    template?: string;
    class?: string;
    language?: string;
    insecure: boolean;
    triggered?: boolean;
    /** educational: the request added to the user turn, and where. */
    request?: string;
    placement?: "before" | "after";
    /** jailbroken: the harm class of a harmful request (absent on benign rows). */
    harm?: string;
  };
}
