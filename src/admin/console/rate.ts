// Decisions per minute by action over the last hour, for the overview's chart. Read from the
// counter /metrics exposes (sluice_requests_total): every decision of this instance is there,
// allow included, whereas the incident list groups episodes and the decision ring is bounded.
// Sampled every few seconds, the differences go to the minute they were seen in.
import type { Metrics } from '../metrics.js'

/** The decisions the chart draws, in the legend's order (allow is the total's, not a line). */
export const ACTIONS = ['throttle', 'challenge', 'disable', 'disabled', 'log', 'unavailable'] as const
export type ChartAction = (typeof ACTIONS)[number]

export const MINUTES = 60
const MINUTE_MS = 60_000

export interface MinuteCounts {
  /** Start of the minute (ms). */
  start: number
  /** Decisions other than allow, by action. */
  actions: Record<ChartAction, number>
  /** Requests to sensitive routes (every decision, allow included). */
  requests: number
}

export class DecisionRate {
  /** By minute number (ms / 60,000): at most the last MINUTES. */
  private readonly minutes = new Map<number, MinuteCounts>()
  private last: Map<string, number> | null = null

  constructor(
    private readonly metrics: Metrics,
    private readonly clock: () => number,
  ) {}

  /** Read the counter and add what changed since the last read to this minute. */
  async sample(): Promise<void> {
    const totals = new Map<string, number>()
    for (const v of (await this.metrics.decisions.get()).values) {
      const decision = String(v.labels.decision)
      totals.set(decision, (totals.get(decision) ?? 0) + v.value)
    }
    const before = this.last
    this.last = totals
    // The first read is the baseline: what came before it has no minute.
    if (before === null) return
    const now = this.clock()
    const minute = this.minute(Math.floor(now / MINUTE_MS))
    for (const [decision, total] of totals) {
      const delta = total - (before.get(decision) ?? 0)
      if (delta <= 0) continue
      minute.requests += delta
      if ((ACTIONS as readonly string[]).includes(decision)) minute.actions[decision as ChartAction] += delta
    }
    for (const n of this.minutes.keys()) if (n <= Math.floor(now / MINUTE_MS) - MINUTES) this.minutes.delete(n)
  }

  /** The last hour, oldest first, one entry per minute (the current one last, still filling). */
  lastHour(): MinuteCounts[] {
    const current = Math.floor(this.clock() / MINUTE_MS)
    const out: MinuteCounts[] = []
    for (let n = current - MINUTES + 1; n <= current; n++) out.push(this.minutes.get(n) ?? empty(n))
    return out
  }

  private minute(n: number): MinuteCounts {
    let m = this.minutes.get(n)
    if (m === undefined) this.minutes.set(n, (m = empty(n)))
    return m
  }
}

function empty(n: number): MinuteCounts {
  const actions = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as Record<ChartAction, number>
  return { start: n * MINUTE_MS, actions, requests: 0 }
}
