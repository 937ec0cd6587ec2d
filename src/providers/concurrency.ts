/**
 * Adaptive concurrency (AIMD, as in TCP congestion control): the limit grows by about one
 * slot per window of successes, halves on a rate limit, and a Retry-After pauses every new
 * request until the server said it is ready again.
 *
 * @example
 * const limiter = aimdLimiter({ max: 64 });
 * const slot = await limiter.acquire();
 * try { ...; limiter.onSuccess(); } catch { limiter.onRateLimit(slot, 2000); } finally { slot.release(); }
 */
export interface AimdOptions {
  /** Upper bound on requests in flight. */
  max: number;
  /** Lower bound after halving (default 1). */
  min?: number;
  /** Starting limit (default `max`: start optimistic, back off on the first 429). */
  initial?: number;
}

/** A permission to send one request; `ticket` orders slots so one burst of 429s halves once. */
export interface Slot {
  readonly ticket: number;
  release(): void;
}

export interface AimdLimiter {
  acquire(): Promise<Slot>;
  onSuccess(): void;
  /** Halves the limit (once per window) and pauses new requests for `retryAfterMs`. */
  onRateLimit(slot: Slot, retryAfterMs?: number): void;
  readonly limit: number;
  readonly inFlight: number;
}

export function aimdLimiter(opts: AimdOptions): AimdLimiter {
  const max = Math.max(1, opts.max);
  const min = Math.max(1, Math.min(opts.min ?? 1, max));
  let limit = Math.min(max, Math.max(min, opts.initial ?? max));
  let inFlight = 0;
  let pausedUntil = 0;
  let issued = 0;
  // Slots issued before the last cut saw the same congestion: their 429s must not halve again.
  let lastCutTicket = -1;
  const waiters: ((slot: Slot) => void)[] = [];
  let wakeScheduled = false;

  const makeSlot = (): Slot => {
    const ticket = issued++;
    let released = false;
    return {
      ticket,
      release() {
        if (released) return;
        released = true;
        inFlight--;
        pump();
      },
    };
  };

  const pump = () => {
    const wait = pausedUntil - Date.now();
    if (wait > 0) {
      if (!wakeScheduled) {
        wakeScheduled = true;
        setTimeout(() => {
          wakeScheduled = false;
          pump();
        }, wait);
      }
      return;
    }
    while (waiters.length > 0 && inFlight < Math.floor(limit)) {
      inFlight++;
      waiters.shift()!(makeSlot());
    }
  };

  return {
    acquire() {
      return new Promise<Slot>((resolve) => {
        waiters.push(resolve);
        pump();
      });
    },
    onSuccess() {
      limit = Math.min(max, limit + 1 / limit);
      pump();
    },
    onRateLimit(slot, retryAfterMs) {
      if (slot.ticket > lastCutTicket) {
        limit = Math.max(min, limit / 2);
        lastCutTicket = issued - 1;
      }
      if (retryAfterMs && retryAfterMs > 0) pausedUntil = Math.max(pausedUntil, Date.now() + retryAfterMs);
    },
    get limit() {
      return limit;
    },
    get inFlight() {
      return inFlight;
    },
  };
}
