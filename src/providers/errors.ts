/**
 * The provider error hierarchy, openai-node style: one base class, one subclass per HTTP
 * status family, and one factory (`makeApiError`) that maps a status to its subclass.
 * `retryable` says whether the retry loop in openai-http.ts should try again.
 *
 * @example
 * const err = makeApiError(429, "slow down", { "retry-after": "2" });
 * err instanceof RateLimitError; // true, err.retryAfterMs === 2000
 */

export class ProviderError extends Error {
  readonly retryable: boolean = false;
  readonly status: number | undefined = undefined;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The endpoint answered with an HTTP error status. */
export class APIError extends ProviderError {
  override readonly status: number;
  constructor(
    status: number,
    message: string,
    readonly body: string,
  ) {
    super(`${status} ${message}`);
    this.status = status;
  }
}

export class BadRequestError extends APIError {}
export class AuthenticationError extends APIError {}
export class PermissionDeniedError extends APIError {}
export class NotFoundError extends APIError {}
export class UnprocessableEntityError extends APIError {}
export class ConflictError extends APIError {
  override readonly retryable = true;
}
export class RateLimitError extends APIError {
  override readonly retryable = true;
  constructor(
    status: number,
    message: string,
    body: string,
    /** From the Retry-After header, when the server sent one. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(status, message, body);
  }
}
export class InternalServerError extends APIError {
  override readonly retryable = true;
}

/** No HTTP answer at all: refused connection, reset socket, body cut off mid-stream. */
export class APIConnectionError extends ProviderError {
  override readonly retryable = true;
}

/** The per-request timeout fired. */
export class APITimeoutError extends APIConnectionError {}

/** A 2xx answer whose body is not the JSON we expect (truncated, malformed, missing fields). */
export class InvalidResponseError extends ProviderError {
  override readonly retryable = true;
}

/** Parses Retry-After (seconds, or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The one place that turns an HTTP error status into an error object. */
export function makeApiError(status: number, body: string, headers: Record<string, string | undefined> = {}): APIError {
  const message = extractMessage(body);
  if (status === 400) return new BadRequestError(status, message, body);
  if (status === 401) return new AuthenticationError(status, message, body);
  if (status === 403) return new PermissionDeniedError(status, message, body);
  if (status === 404) return new NotFoundError(status, message, body);
  if (status === 408 || status === 409) return new ConflictError(status, message, body);
  if (status === 422) return new UnprocessableEntityError(status, message, body);
  if (status === 429) return new RateLimitError(status, message, body, parseRetryAfter(headers["retry-after"]));
  if (status >= 500) return new InternalServerError(status, message, body);
  return new APIError(status, message, body);
}

/** OpenAI error bodies look like {"error":{"message":…}}; fall back to the first 200 characters. */
function extractMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } };
    if (typeof parsed?.error?.message === "string") return parsed.error.message;
  } catch {
    // not JSON: use the raw text
  }
  return body.slice(0, 200) || "(empty body)";
}
