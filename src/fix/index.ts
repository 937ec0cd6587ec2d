/**
 * Fixing emergent misalignment: guards (interventions as a served model). Re-alignment,
 * preventative steering and the trigger scan join this list as they land.
 */

export * from "./guard.ts";
export * from "./persona.ts";
export * from "./prevent.ts";
export * from "./realign.ts";
