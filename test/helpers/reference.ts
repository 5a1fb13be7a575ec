// The naive reference the engine is checked against: every event kept forever, every count
// recomputed from scratch. One account on one route (its own disabled state).
import type { Limit, RoutePolicy } from '../../src/engine/policy.js'

/**
 * Counts with a distinct set at its cap. Once a solved challenge has let a set get there, a
 * bounded store has evicted records the reference (or another store) still holds, and a re-read
 * of one is fresh in one and not the other: the property tests end a trace at that point.
 */
export function distinctSetFull(policy: RoutePolicy, counts: readonly number[]): boolean {
  return policy.distinctLimits.some((l) => counts[l.index] === policy.distinctCapacity)
}

interface RefEvent {
  t: number
  records: string[]
}

export class Reference {
  requests: number[] = []
  touches: RefEvent[] = []
  disabledUntil = -Infinity
  constructor(
    private limits: Limit[],
    private disableForMs: number,
  ) {}

  observe(
    records: string[],
    now: number,
    countRequest = true,
    passes: number[] = [],
  ): { kind: string; counts: number[] } {
    if (countRequest) this.requests.push(now)
    const passed = (l: Limit) => l.action === 'challenge' && passes.includes(l.index)
    const reqCounts = (w: number) => this.requests.filter((t) => t > now - w).length
    if (this.disabledUntil > now) {
      return { kind: 'disabled', counts: [] }
    }
    const counts: number[] = []
    let worst: Limit | null = null
    const unique = [...new Set(records)]
    for (const l of this.limits) {
      let count: number
      let crossed: boolean
      if (l.kind === 'requests') {
        count = reqCounts(l.windowMs)
        crossed = countRequest && count > l.max && !passed(l)
      } else {
        const seen = new Set(this.touches.filter((e) => e.t > now - l.windowMs).flatMap((e) => e.records))
        const fresh = unique.filter((r) => !seen.has(r)).length
        count = seen.size + fresh
        crossed = fresh > 0 && count > l.max && !passed(l)
      }
      counts[l.index] = count
      if (
        crossed &&
        (worst === null || l.severity > worst.severity || (l.severity === worst.severity && l.index < worst.index))
      )
        worst = l
    }
    const blocked = worst !== null && worst.severity > 0
    if (!blocked) this.touches.push({ t: now, records: unique })
    if (worst?.action === 'disable') this.disabledUntil = now + this.disableForMs
    return { kind: worst?.action ?? 'allow', counts }
  }
}
