// The embedded store: every count in this process, bounded by an LRU of accounts.
import type { LRUCache } from 'lru-cache'
import { evaluate, carryWindows, newWindows, REQUEST, type EvaluateStep, type RouteWindows } from '../engine/evaluate.js'
import type { RoutePolicy } from '../engine/policy.js'
import { accountPressure, policiesOf, routeCounts, TopAccounts } from './ranking.js'
import { boundedLru } from './lru.js'
import type { AccountsPage, AccountsQuery, AccountView, DisabledState, HitInput, HitResult, ResetScope, Store } from './store.js'

interface RouteEntry {
  policy: RoutePolicy
  windows: RouteWindows
}

interface AccountState {
  /**
   * Per route (a short array, not a Map: an account touches a handful of routes, and 100,000
   * accounts × a Map each is real memory). Kept across a config reload unless the route's
   * window capacities change.
   */
  routes: RouteEntry[]
  /** Wall clocks can step back (NTP); windows must not. */
  lastNow: number
}

export interface MemoryStoreOptions {
  maxAccounts: number
  onEvict?: (account: string) => void
}

export class MemoryStore implements Store {
  readonly kind = 'memory'
  private readonly tracked: LRUCache<string, AccountState>
  // Disabled state is kept apart from the LRU of counts: flooding sluice with fresh
  // identities must not evict (and so unlock) a disabled account.
  private readonly disabledEnforce: LRUCache<string, number>
  private readonly disabledShadow: LRUCache<string, number>
  private readonly sessions: LRUCache<string, string>
  private readonly claimed: LRUCache<string, true>

  constructor(options: MemoryStoreOptions) {
    const onEvict = options.onEvict
    this.tracked = boundedLru<string, AccountState>(options.maxAccounts, {
      ...(onEvict ? { dispose: (_v: AccountState, account: string, reason: string) => { if (reason === 'evict') onEvict(account) } } : {}),
    })
    this.disabledEnforce = boundedLru<string, number>(options.maxAccounts)
    this.disabledShadow = boundedLru<string, number>(options.maxAccounts)
    this.sessions = boundedLru<string, string>(options.maxAccounts)
    // Claimed tokens only need to outlive their challenge's expiry; an evicted one is still expired-checked.
    this.claimed = boundedLru<string, true>(100_000)
  }

  hit(input: HitInput): HitResult {
    const { account, policy } = input
    let state = this.tracked.get(account)
    if (!state) {
      state = { routes: [], lastNow: -Infinity }
      this.tracked.set(account, state)
    }
    const now = Math.max(input.now, state.lastNow)
    state.lastNow = now

    let entry: RouteEntry | undefined
    for (const r of state.routes) if (r.policy.name === policy.name) entry = r
    if (!entry || !sameShape(entry.policy, policy)) {
      // A reload changed this route's limits: its history carries over (as in Redis).
      const fresh: RouteEntry = { policy, windows: entry ? carryWindows(entry.windows, policy) : newWindows(policy) }
      state.routes = [...state.routes.filter((r) => r.policy.name !== policy.name), fresh]
      entry = fresh
    } else if (entry.policy !== policy) {
      entry.policy = policy
    }

    const step: EvaluateStep = input.countRequest === false || input.passes ? { countRequest: input.countRequest ?? true, passes: input.passes } : REQUEST
    const disabledUntil = this.disabledUntil(account, input.shadow, now)
    if (disabledUntil !== null) {
      // Counted as a request (blocked requests count), never as records.
      const result = evaluate(entry.windows, policy, [], now, step) as HitResult
      result.blocked = true
      result.disabledUntil = disabledUntil
      result.disabledNowUntil = null
      return result
    }

    const result = evaluate(entry.windows, policy, input.records, now, step) as HitResult
    result.disabledUntil = null
    result.disabledNowUntil = null
    if (result.action === 'disable') {
      result.disabledNowUntil = now + input.disableForMs
      this.disable(account, result.disabledNowUntil, input.shadow, now)
    }
    return result
  }

  disabled(account: string, now: number): DisabledState[] {
    const out: DisabledState[] = []
    for (const [map, shadow] of [[this.disabledEnforce, false], [this.disabledShadow, true]] as const) {
      const until = map.get(account)
      if (until !== undefined && until > now) out.push({ account, until, shadow })
    }
    return out
  }

  unlock(account: string): boolean {
    const a = this.disabledEnforce.delete(account)
    const b = this.disabledShadow.delete(account)
    return a || b
  }

  reset(account: string, scope: ResetScope): boolean {
    let had = false
    if (scope.route === undefined) {
      had = this.tracked.delete(account)
    } else {
      const state = this.tracked.peek(account)
      if (state) {
        const before = state.routes.length
        state.routes = state.routes.filter((r) => r.policy.name !== scope.route)
        had = state.routes.length < before
      }
    }
    const unlocked = this.unlock(account)
    return had || unlocked
  }

  // The admin reads below never touch the LRU order (peek) nor the windows (counting is
  // read-only), so looking at an account changes nothing about how it is treated.

  account(account: string, policies: readonly RoutePolicy[], now: number): AccountView | null {
    const state = this.tracked.peek(account)
    const disabled = this.disabled(account, now)
    if (!state && disabled.length === 0) return null
    const routes: AccountView['routes'] = []
    if (state) {
      const at = Math.max(now, state.lastNow)
      for (const policy of policies) {
        const counts = countsOf(state, policy, at)
        if (counts) routes.push(routeCounts(policy, counts))
      }
    }
    return { account, now, routes, disabled }
  }

  /**
   * Walks every tracked account (O(accounts × routes × window capacity), about the cost of one
   * observation each), yielding to the event loop every few thousand accounts: this store
   * lives in the proxy's own process and the requests it serves must not wait for a listing.
   */
  async accounts(query: AccountsQuery): Promise<AccountsPage> {
    const policies = policiesOf(query)
    const top = new TopAccounts<null>(query.limit)
    const names = [...this.tracked.keys()]
    let scanned = 0
    for (let i = 0; i < names.length; i++) {
      if (i > 0 && i % 2000 === 0) await new Promise<void>((resolve) => setImmediate(resolve))
      const account = names[i] as string
      const state = this.tracked.peek(account)
      if (!state) continue
      const now = Math.max(query.now, state.lastNow)
      const { found, ratio, count } = accountPressure(policies, (policy) => countsOf(state, policy, now), query.by)
      if (!found) continue
      scanned++
      top.offer({ account, ratio, count, data: null })
    }
    // Disabled accounts whose counts were evicted (or expired) are still worth listing.
    if (query.route === undefined) {
      const disabled = new Set([...this.disabledEnforce.keys(), ...this.disabledShadow.keys()])
      for (const account of disabled) {
        if (this.tracked.has(account) || this.disabled(account, query.now).length === 0) continue
        scanned++
        top.offer({ account, ratio: 0, count: 0, data: null })
      }
    }
    const accounts: AccountsPage['accounts'] = []
    for (const c of top.result()) {
      const view = this.account(c.account, policies, query.now)
      if (view) accounts.push({ ...view, pressure: c.ratio })
    }
    return { now: query.now, accounts, scanned, truncated: false }
  }

  claimOnce(token: string, ttlMs: number): boolean {
    if (this.claimed.has(token)) return false
    this.claimed.set(token, true, { ttl: Math.max(1, Math.ceil(ttlMs)) })
    return true
  }

  bindSession(session: string, account: string, ttlMs: number): void {
    this.sessions.set(session, account, { ttl: Math.max(1, Math.ceil(ttlMs)) })
  }

  sessionAccount(session: string): string | undefined {
    return this.sessions.get(session)
  }

  unbindSession(session: string): void {
    this.sessions.delete(session)
  }

  /** Accounts currently tracked (for metrics and tests). */
  get size(): number {
    return this.tracked.size
  }

  async close(): Promise<void> {
    this.tracked.clear()
  }

  private disabledUntil(account: string, shadow: boolean, now: number): number | null {
    // An enforced disable also shows on shadow routes; a shadow one never blocks enforced routes.
    const enforced = this.disabledEnforce.get(account)
    if (enforced !== undefined && enforced > now) return enforced
    if (shadow) {
      const shadowed = this.disabledShadow.get(account)
      if (shadowed !== undefined && shadowed > now) return shadowed
    }
    return null
  }

  private disable(account: string, until: number, shadow: boolean, now: number): void {
    const map = shadow ? this.disabledShadow : this.disabledEnforce
    const ttl = until - now
    map.set(account, until, Number.isFinite(ttl) ? { ttl: Math.max(1, Math.ceil(ttl)) } : {})
  }
}

/**
 * An account's counts on one route at `now`, read without changing anything; null when it has
 * no state there (or state the next observation would replace: a reload changed its shape).
 */
function countsOf(state: AccountState, policy: RoutePolicy, now: number): number[] | null {
  let entry: RouteEntry | undefined
  for (const r of state.routes) if (r.policy.name === policy.name) entry = r
  if (!entry || !sameShape(entry.policy, policy)) return null
  const counts = new Array<number>(policy.limits.length).fill(0)
  const { requests, distinct } = entry.windows
  if (requests) for (const l of policy.requestLimits) counts[l.index] = requests.countAfter(now - l.windowMs)
  if (distinct) {
    const limits = policy.distinctLimits
    const inWindow = new Array<number>(limits.length)
    distinct.countAfter(limits.map((l) => now - l.windowMs), inWindow)
    limits.forEach((l, i) => {
      counts[l.index] = Math.min(inWindow[i] as number, policy.distinctCapacity)
    })
  }
  return counts
}

/** Windows built for one policy serve another with the same capacities (shadow twin, reload). */
function sameShape(a: RoutePolicy, b: RoutePolicy): boolean {
  return (
    a === b ||
    (a.requestCapacity === b.requestCapacity &&
      a.distinctCapacity === b.distinctCapacity &&
      a.requestLimits.length > 0 === b.requestLimits.length > 0 &&
      a.distinctLimits.length > 0 === b.distinctLimits.length > 0)
  )
}
