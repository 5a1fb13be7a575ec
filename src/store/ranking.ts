// What both stores share for the admin API: counts per limit as a view, pressure, and a
// bounded top-N. Pure functions over numbers; the stores only differ in how they read counts.
import { perOf, sectionNames, type Per, type RoutePolicy } from '../engine/policy.js'
import type { AccountsQuery, LimitCount, PressureBy, RouteCounts } from '../engine/store.js'

export function routeCounts(policy: RoutePolicy, counts: ArrayLike<number>): RouteCounts {
  const limits: LimitCount[] = policy.limits.map((l) => ({
    limit: l.id,
    label: l.label,
    kind: l.kind,
    per: l.per,
    windowMs: l.windowMs,
    max: l.max,
    action: l.action,
    count: counts[l.index] ?? 0,
  }))
  return { route: policy.name, limits }
}

/**
 * Pressure of one route's counts: the highest count / max over the limits of the chosen kind
 * (a ratio, so routes with different limits compare), and the largest such count to break ties.
 */
export function pressure(
  policy: RoutePolicy,
  counts: ArrayLike<number>,
  by: PressureBy,
): { ratio: number; count: number } {
  const limits = by === 'distinct' ? policy.distinctLimits : policy.requestLimits
  let ratio = 0
  let count = 0
  for (const l of limits) {
    const c = counts[l.index] ?? 0
    const r = l.max > 0 ? c / l.max : c
    if (r > ratio) ratio = r
    if (c > count) count = c
  }
  return { ratio, count }
}

/**
 * An account's pressure over several routes: the highest of each route's. `countsAt(policy, k)`
 * reads the k-th policy's counts, or null where the account has none for it.
 */
export function accountPressure(
  policies: readonly RoutePolicy[],
  countsAt: (policy: RoutePolicy, k: number) => ArrayLike<number> | null | undefined,
  by: PressureBy,
): { found: boolean; ratio: number; count: number } {
  let found = false
  let ratio = 0
  let count = 0
  policies.forEach((policy, k) => {
    const counts = countsAt(policy, k)
    if (!counts) return
    found = true
    const p = pressure(policy, counts, by)
    if (p.ratio > ratio) ratio = p.ratio
    if (p.count > count) count = p.count
  })
  return { found, ratio, count }
}

/** The policies an accounts query looks at: one route, or all of them. */
export function policiesOf(query: Pick<AccountsQuery, 'policies' | 'route'>): readonly RoutePolicy[] {
  if (query.route === undefined) return query.policies
  const names = sectionNames(query.route)
  return query.policies.filter((p) => names.includes(p.name))
}

/** A key belongs in a listing of `per` keys (accounts: every key that is not a network's or a route's). */
export function listed(key: string, per: Per | undefined): boolean {
  return perOf(key) === (per ?? 'account')
}

export interface Candidate<T> {
  account: string
  ratio: number
  count: number
  data: T
}

/**
 * Keeps the best `n` candidates in O(n) memory however many are offered: candidates collect
 * up to 4n, then are sorted and cut back to n.
 */
export class TopAccounts<T> {
  private items: Candidate<T>[] = []

  constructor(private readonly n: number) {}

  offer(candidate: Candidate<T>): void {
    this.items.push(candidate)
    if (this.items.length >= Math.max(4 * this.n, 64)) this.trim()
  }

  result(): Candidate<T>[] {
    this.trim()
    return this.items
  }

  private trim(): void {
    this.items.sort(byPressure)
    if (this.items.length > this.n) this.items.length = this.n
  }
}

function byPressure<T>(a: Candidate<T>, b: Candidate<T>): number {
  return b.ratio - a.ratio || b.count - a.count || (a.account < b.account ? -1 : a.account > b.account ? 1 : 0)
}

/** An account's distinct counts with what shadow served past its limits (beyondKey) added. */
export function withBeyond(counts: number[], policy: RoutePolicy, beyond: number): number[] {
  if (beyond > 0 && !policy.name.includes('~'))
    for (const l of policy.distinctLimits) counts[l.index] = (counts[l.index] ?? 0) + beyond
  return counts
}

/** `<since>|<limit id>` (memory, Redis), or nothing. */
export function parseWhy(value: string | null | undefined): { since?: number; limit?: string } {
  if (!value) return {}
  const bar = value.indexOf('|')
  const since = Number(value.slice(0, bar))
  return bar > 0 && Number.isFinite(since) ? { since, limit: value.slice(bar + 1) } : {}
}
