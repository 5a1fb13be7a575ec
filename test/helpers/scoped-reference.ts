// The naive reference for limits keyed by account, network and route: every event kept
// forever, every count recomputed from scratch, per key.
import fc from 'fast-check'
import { partKey, type Limit, type LimitSpec, type RoutePolicy } from '../../src/engine/policy.js'

export const ACCOUNTS = ['a', 'b', 'c', 'd', 'e']
export const NETWORKS = ['10.0.0.0/24', '10.0.1.0/24']

export const scopedLimitArb: fc.Arbitrary<LimitSpec> = fc.record({
  per: fc.constantFrom('account' as const, 'network' as const, 'route' as const),
  kind: fc.constantFrom('requests' as const, 'distinctRecords' as const, 'distinctAccounts' as const),
  windowMs: fc.constantFrom(1000, 5000, 20000),
  max: fc.integer({ min: 1, max: 5 }),
  action: fc.constantFrom('log' as const, 'throttle' as const, 'challenge' as const, 'disable' as const),
})

export interface ScopedStep {
  gap: number
  account: string
  network: string
  records: string[]
}

export const scopedStepArb: fc.Arbitrary<ScopedStep> = fc.record({
  gap: fc.integer({ min: 0, max: 3000 }),
  account: fc.constantFrom(...ACCOUNTS),
  network: fc.constantFrom(...NETWORKS),
  records: fc.array(fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5', 'r6'), { maxLength: 3 }),
})

interface Touch {
  t: number
  ids: string[]
}

export class ScopedReference {
  private readonly requests = new Map<string, number[]>()
  private readonly records = new Map<string, Touch[]>()
  private readonly accounts = new Map<string, Touch[]>()
  private readonly disabled = new Map<string, number>()

  constructor(
    private readonly policy: RoutePolicy,
    private readonly disableForMs: number,
  ) {}

  observe(step: ScopedStep, now: number): { kind: string; key: string; counts: number[] } {
    const { account, network } = step
    const key = (l: Limit) => partKey(l.per, account, network, this.policy.name)
    const owners = [account, `net:${network}`, ...(this.policy.perRoute ? [`route:${this.policy.name}`] : [])]
    for (const o of new Set([...owners, ...this.policy.limits.map(key)])) {
      const list = this.requests.get(o) ?? []
      list.push(now)
      this.requests.set(o, list)
    }
    const counts: number[] = []
    const off = owners.find((o) => (this.disabled.get(o) ?? -Infinity) > now)
    if (off !== undefined) return { kind: 'disabled', key: off, counts }
    let worst: Limit | null = null
    const unique = [...new Set(step.records)]
    for (const l of this.policy.limits) {
      const k = key(l)
      let count: number
      let crossed: boolean
      if (l.kind === 'requests') {
        count = (this.requests.get(k) ?? []).filter((t) => t > now - l.windowMs).length
        crossed = count > l.max
      } else {
        const log = (l.kind === 'distinctRecords' ? this.records : this.accounts).get(k) ?? []
        const seen = new Set(log.filter((e) => e.t > now - l.windowMs).flatMap((e) => e.ids))
        const fresh = (l.kind === 'distinctRecords' ? unique : [account]).filter((r) => !seen.has(r)).length
        count = seen.size + fresh
        crossed = fresh > 0 && count > l.max
      }
      counts[l.index] = count
      if (
        crossed &&
        (worst === null || l.severity > worst.severity || (l.severity === worst.severity && l.index < worst.index))
      )
        worst = l
    }
    if (!(worst !== null && worst.severity > 0)) {
      for (const l of this.policy.limits) {
        if (l.kind === 'requests') continue
        const map = l.kind === 'distinctRecords' ? this.records : this.accounts
        const k = key(l)
        const list = map.get(k) ?? []
        list.push({ t: now, ids: l.kind === 'distinctRecords' ? unique : [account] })
        map.set(k, list)
      }
    }
    if (worst?.action === 'disable') this.disabled.set(key(worst), now + this.disableForMs)
    return { kind: worst?.action ?? 'allow', key: worst ? key(worst) : account, counts }
  }
}

/** A part's capacity for a limit: what its windows hold at most (limit + 1 of the largest). */
export function capacityOf(policy: RoutePolicy, l: Limit): number {
  const part = policy.parts?.find((p) => p.policy.limits.some((m) => m.index === l.index))?.policy ?? policy
  return l.kind === 'requests' ? part.requestCapacity : part.distinctCapacity
}
