// The embedded store: every count in this process, bounded by an LRU of accounts.
import { LRUCache } from 'lru-cache'
import { evaluate, newWindows, REQUEST, type EvaluateStep, type RouteWindows } from '../engine/evaluate.js'
import type { RoutePolicy } from '../engine/policy.js'
import type { DisabledState, HitInput, HitResult, Store } from './store.js'

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
  private readonly accounts: LRUCache<string, AccountState>
  // Disabled state is kept apart from the LRU of counts: flooding sluice with fresh
  // identities must not evict (and so unlock) a disabled account.
  private readonly disabledEnforce: LRUCache<string, number>
  private readonly disabledShadow: LRUCache<string, number>
  private readonly sessions: LRUCache<string, string>
  private readonly claimed: LRUCache<string, true>

  constructor(options: MemoryStoreOptions) {
    const onEvict = options.onEvict
    this.accounts = new LRUCache<string, AccountState>({
      max: options.maxAccounts,
      ...(onEvict ? { dispose: (_v: AccountState, account: string, reason: string) => { if (reason === 'evict') onEvict(account) } } : {}),
    })
    this.disabledEnforce = new LRUCache<string, number>({ max: options.maxAccounts })
    this.disabledShadow = new LRUCache<string, number>({ max: options.maxAccounts })
    this.sessions = new LRUCache<string, string>({ max: options.maxAccounts })
    // Claimed tokens only need to outlive their challenge's expiry; an evicted one is still expired-checked.
    this.claimed = new LRUCache<string, true>({ max: 100_000 })
  }

  hit(input: HitInput): HitResult {
    const { account, policy } = input
    let state = this.accounts.get(account)
    if (!state) {
      state = { routes: [], lastNow: -Infinity }
      this.accounts.set(account, state)
    }
    const now = Math.max(input.now, state.lastNow)
    state.lastNow = now

    let entry: RouteEntry | undefined
    for (const r of state.routes) if (r.policy.name === policy.name) entry = r
    if (!entry || !sameShape(entry.policy, policy)) {
      const fresh: RouteEntry = { policy, windows: newWindows(policy) }
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
    return this.accounts.size
  }

  async close(): Promise<void> {
    this.accounts.clear()
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
