/**
 * Fixing emergent misalignment: guards (interventions as a served model), re-alignment,
 * preventative steering and the backdoor trigger scan.
 */

export * from "./guard.ts";
export * from "./persona.ts";
export * from "./prevent.ts";
export * from "./realign.ts";
export * from "./triggers.ts";
