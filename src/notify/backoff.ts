// How long to wait before retrying a webhook delivery.

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 6. */
  maxAttempts?: number
  /** Base delay before the first retry. Default 1000 ms. */
  initialDelayMs?: number
  /** No delay is longer than this (Retry-After included). Default 60 000 ms. */
  maxDelayMs?: number
}

export const DEFAULT_RETRY: Required<RetryPolicy> = { maxAttempts: 6, initialDelayMs: 1000, maxDelayMs: 60_000 }

/**
 * Exponential backoff with "equal jitter": the n-th retry (n ≥ 1) waits a random time between
 * half and all of min(maxDelayMs, initialDelayMs × 2^(n−1)). The exponent spaces the attempts out
 * while a receiver is down; the jitter keeps instances that failed together from retrying in
 * lockstep; the half that is not random keeps a retry from ever coming immediately.
 * A `Retry-After` from the receiver (seconds) raises the delay, still capped at maxDelayMs.
 */
export function retryDelay(
  retry: number,
  policy: Required<RetryPolicy>,
  random: () => number,
  retryAfterMs?: number,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(retry - 1, 30))
  const jittered = ceiling / 2 + random() * (ceiling / 2)
  return Math.round(Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0)))
}

/** `Retry-After` in seconds (the HTTP-date form is rare from webhook receivers and ignored). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined
  return Number(value.trim()) * 1000
}
