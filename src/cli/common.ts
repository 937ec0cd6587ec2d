/** Shared pieces of the command line: exit codes, errors, option parsing. */
import { type ParseArgsConfig, parseArgs } from "node:util";

export const EXIT = { ok: 0, error: 1, usage: 2, thresholdFailed: 3 } as const;

/** An error meant for the user: printed without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/**
 * Parses `argv` with node's parseArgs, turning its errors into usage errors.
 * @example const { values } = parseOptions(argv, { out: { type: "string" } });
 */
export function parseOptions<T extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: T,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
}

/** Reads a numeric option, naming it in the error when it is not a number. */
export function numberOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got '${value}'`, EXIT.usage);
  return n;
}
