// What the engine evaluates: a route's limits compiled once at config load into plain objects,
// so the hot path only compares numbers.
export type ActionName = 'log' | 'throttle' | 'challenge' | 'disable'

/** The ladder: when several limits are crossed, the most severe action wins. */
export const SEVERITY: Readonly<Record<ActionName, number>> = { log: 0, throttle: 1, challenge: 2, disable: 3 }

/** Whose windows a limit counts: the account's, its client network's, or everyone's on the route. */
export type Per = 'account' | 'network' | 'route'

export type LimitKind = 'requests' | 'distinctRecords' | 'distinctAccounts'

export interface Limit {
  /** `route#index`, stable while the config does not change. */
  id: string
  index: number
  kind: LimitKind
  per: Per
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
  /** Counts per observation: the route's number of limits (a part's limits keep the route's indices). */
  slots: number
  requestLimits: readonly Limit[]
  /** distinctRecords or distinctAccounts (a part counts one of them); longest window first (cutoffs ascend). */
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
  /**
   * null when every limit is an account's requests or distinctRecords (one set of windows, the
   * common case). Otherwise the windows one observation updates together, atomically: one part
   * per (whose, what it counts) — see Part.
   */
  parts: readonly Part[] | null
  /** Some part is keyed by the client network: the observation needs it (HitInput.network). */
  perNetwork: boolean
  /** Some part is keyed by the route: its `route:<name>` disable is checked. */
  perRoute: boolean
}

/**
 * One set of windows of an observation: the limits of one `per` that count requests and
 * distinct records (`accounts: false`), or distinct accounts (`accounts: true`: the account is
 * the "record"). `policy` is a policy of its own (parts: null) whose limits keep the route's
 * indices; its name is the route's, with `~accounts` for a distinct-accounts part (`~` is never
 * in a route name), so that a key's sections never collide.
 */
export interface Part {
  per: Per
  accounts: boolean
  policy: RoutePolicy
}

/** The key a part's windows (and a disable by it) are held under. */
export function partKey(per: Per, account: string, network: string | undefined, route: string): string {
  return per === 'account' ? account : per === 'network' ? `net:${network ?? '?'}` : `route:${route}`
}

/**
 * The longest window a limit can have: 49 days. The memory store keeps times as 32-bit
 * millisecond offsets from a per-account base (49.7 days; src/engine/windows.ts) and moves the
 * base to `now - MAX_WINDOW_MS` when an offset would overflow, dropping only what is outside
 * every window. The config rejects longer windows (SLUICE_ERR_CONFIG_LIMIT).
 */
export const MAX_WINDOW_MS = 49 * 86_400_000

export type LimitSpec = Omit<Limit, 'id' | 'severity' | 'label' | 'index' | 'per'> & { per?: Per }

export function buildPolicy(name: string, limits: LimitSpec[], shadow: boolean): RoutePolicy {
  for (const l of limits) {
    if (!(l.windowMs > 0 && l.windowMs <= MAX_WINDOW_MS))
      throw new RangeError(
        `route ${name}: a window must be from 1ms to ${formatMs(MAX_WINDOW_MS)}, not ${l.windowMs}ms`,
      )
  }
  const all: Limit[] = limits.map((l, index) => {
    const per = l.per ?? 'account'
    return {
      ...l,
      per,
      index,
      id: `${name}#${index}`,
      severity: SEVERITY[l.action],
      label: `${per === 'account' ? '' : `per ${per} `}${formatMs(l.windowMs)} ${l.kind} ${l.max} → ${l.action}`,
    }
  })
  const simple = all.every((l) => l.per === 'account' && l.kind !== 'distinctAccounts')
  const parts: Part[] = []
  if (!simple) {
    for (const per of ['account', 'network', 'route'] as const) {
      for (const accounts of [false, true]) {
        const mine = all.filter((l) => l.per === per && (l.kind === 'distinctAccounts') === accounts)
        if (mine.length > 0)
          parts.push({
            per,
            accounts,
            policy: sectionPolicy(accounts ? `${name}~accounts` : name, mine, all.length, shadow),
          })
      }
    }
  }
  return {
    ...sectionPolicy(name, all, all.length, shadow),
    limits: all,
    parts: simple ? null : parts,
    perNetwork: all.some((l) => l.per === 'network'),
    perRoute: all.some((l) => l.per === 'route'),
  }
}

/** The windows of one set of limits (a whole simple route, or one part). */
function sectionPolicy(name: string, all: Limit[], slots: number, shadow: boolean): RoutePolicy {
  const requestLimits = all.filter((l) => l.kind === 'requests')
  const distinctLimits = all.filter((l) => l.kind !== 'requests').sort((a, b) => b.windowMs - a.windowMs)
  return {
    name,
    limits: all,
    slots,
    requestLimits,
    distinctLimits,
    requestCapacity: Math.max(0, ...requestLimits.map((l) => l.max)) + 1,
    distinctCapacity: Math.max(0, ...distinctLimits.map((l) => l.max)) + 1,
    longestDistinctWindowMs: distinctLimits[0]?.windowMs ?? 0,
    longestRequestWindowMs: Math.max(0, ...requestLimits.map((l) => l.windowMs)),
    shadow,
    challengeable: all.some((l) => l.action === 'challenge'),
    parts: null,
    perNetwork: false,
    perRoute: false,
  }
}

/** The windows an account's own limits live in: what the admin views of an account read. */
export function accountPolicies(policy: RoutePolicy): RoutePolicy[] {
  return policy.parts === null ? [policy] : policy.parts.filter((p) => p.per === 'account').map((p) => p.policy)
}

/** The windows of a network's or the route's limits. */
export function scopePolicies(policy: RoutePolicy, per: Per): RoutePolicy[] {
  return (policy.parts ?? []).filter((p) => p.per === per).map((p) => p.policy)
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

/** Whose key it is: `net:<network>` and `route:<name>` are a network's and a route's; any other, an account's. */
export function perOf(key: string): Per {
  return key.startsWith('net:') ? 'network' : key.startsWith('route:') ? 'route' : 'account'
}

/** The windows a key of kind `per` has on these routes: what the admin views of it read. */
export function policiesFor(per: Per, policies: readonly RoutePolicy[]): RoutePolicy[] {
  return policies.flatMap((p) => (per === 'account' ? accountPolicies(p) : scopePolicies(p, per)))
}

/** The section names of a route's windows: its own, and its distinct-accounts part's. */
export function sectionNames(route: string): string[] {
  return [route, `${route}~accounts`]
}
