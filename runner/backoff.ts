/** Restart delays for instances that keep dying: exponential, capped, with jitter. */

export interface BackoffPolicy {
  /** Delay before the first restart. */
  baseMs: number;
  /** No delay is ever longer than this. */
  maxMs: number;
  factor: number;
  /**
   * Share (0-1) of the delay taken off at random, so that instances that died together (a bad
   * version, a restarted host) do not all come back in the same instant.
   */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 });

/**
 * The delay before restart number `attempt` (1 = first restart after a failure), in whole ms:
 * min(maxMs, baseMs * factor^(attempt-1)), less up to `jitter` of it. `random` is injectable
 * so that the maths can be tested.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  if (!(attempt >= 1)) return 0;
  const { baseMs, maxMs, factor, jitter } = policy;
  // Math.pow overflows to Infinity for large attempts; min() then yields the cap.
  const exponential = Math.min(maxMs, baseMs * Math.pow(factor, attempt - 1));
  const share = Math.min(Math.max(jitter, 0), 1) * Math.min(Math.max(random(), 0), 1);
  return Math.round(exponential * (1 - share));
}
