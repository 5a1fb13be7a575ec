// What the engine evaluates: a route's limits compiled once at config load into plain objects,
// so the hot path only compares numbers.
export type ActionName = 'log' | 'throttle' | 'challenge' | 'disable'

/** The ladder: when several limits are crossed, the most severe action wins. */
export const SEVERITY: Readonly<Record<ActionName, number>> = { log: 0, throttle: 1, challenge: 2, disable: 3 }

export interface Limit {
  /** `route#index`, stable while the config does not change. */
  id: string
  index: number
  kind: 'requests' | 'distinctRecords'
  windowMs: number
  max: number
  action: ActionName
  severity: number
  /** `10m distinctRecords 100 → challenge`, for logs and messages. */
  label: string
}

export interface RoutePolicy {
  name: string
  limits: readonly Limit[]
  requestLimits: readonly Limit[]
  /** Sorted by window, longest first (so their cutoffs ascend). */
  distinctLimits: readonly Limit[]
  /** History a window needs to decide every limit exactly: the largest max + 1. */
  requestCapacity: number
  distinctCapacity: number
  longestDistinctWindowMs: number
  longestRequestWindowMs: number
  /** Shadow: decide and log exactly as enforce would, block nothing. */
  shadow: boolean
  /** Some limit challenges: the request must be checked for passes and solutions. */
  challengeable: boolean
}

/**
 * The longest window a limit can have: 49 days. The memory store keeps times as 32-bit
 * millisecond offsets from a per-account base (49.7 days; src/engine/windows.ts) and moves the
 * base to `now - MAX_WINDOW_MS` when an offset would overflow, dropping only what is outside
 * every window. The config rejects longer windows (SLUICE_ERR_CONFIG_LIMIT).
 */
export const MAX_WINDOW_MS = 49 * 86_400_000

export function buildPolicy(
  name: string,
  limits: Omit<Limit, 'id' | 'severity' | 'label' | 'index'>[],
  shadow: boolean,
): RoutePolicy {
  for (const l of limits) {
    if (!(l.windowMs > 0 && l.windowMs <= MAX_WINDOW_MS))
      throw new RangeError(
        `route ${name}: a window must be from 1ms to ${formatMs(MAX_WINDOW_MS)}, not ${l.windowMs}ms`,
      )
  }
  const all: Limit[] = limits.map((l, index) => ({
    ...l,
    index,
    id: `${name}#${index}`,
    severity: SEVERITY[l.action],
    label: `${formatMs(l.windowMs)} ${l.kind} ${l.max} → ${l.action}`,
  }))
  const requestLimits = all.filter((l) => l.kind === 'requests')
  const distinctLimits = all.filter((l) => l.kind === 'distinctRecords').sort((a, b) => b.windowMs - a.windowMs)
  return {
    name,
    limits: all,
    requestLimits,
    distinctLimits,
    requestCapacity: Math.max(0, ...requestLimits.map((l) => l.max)) + 1,
    distinctCapacity: Math.max(0, ...distinctLimits.map((l) => l.max)) + 1,
    longestDistinctWindowMs: distinctLimits[0]?.windowMs ?? 0,
    longestRequestWindowMs: Math.max(0, ...requestLimits.map((l) => l.windowMs)),
    shadow,
    challengeable: all.some((l) => l.action === 'challenge'),
  }
}

export function formatMs(ms: number): string {
  if (ms === Infinity) return 'forever'
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
