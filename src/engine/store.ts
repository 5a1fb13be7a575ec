// What the engine and the parts around it need from where counts live, as a few narrow
// interfaces owned here (store/ implements them; the engine never imports store/). Every call
// that decides is a single atomic step (one Redis round trip for the Redis store), so two
// proxies sharing a store can never both let the N+1-th record through.
import type { Evaluation } from './evaluate.js'
import type { ActionName, LimitKind, Per, RoutePolicy } from './policy.js'

export interface HitInput {
  account: string
  policy: RoutePolicy
  records: readonly string[]
  /** Milliseconds since the epoch; a store with a shared clock (Redis) may use its own. */
  now: number
  /** Shadow decisions set and honour a separate disabled state: they never disable the account on enforced routes. */
  shadow: boolean
  /** How long a crossed disable limit disables the account (Infinity: until unlocked). */
  disableForMs: number
  /** false: the response step of an exchange (records only; the request was counted before). */
  countRequest?: boolean
  /** Indices of challenge limits passed by a solved proof of work. */
  passes?: readonly number[]
  /**
   * The client's network (`203.0.113.0/24`): where a store that is full of accounts with open
   * windows counts an identity it cannot track (the memory store); asked only then.
   */
  overflowKey?: () => string
  /**
   * The client's network (`203.0.113.0/24`, per the config's prefix lengths) when any route has
   * per-network limits: the route's network windows count under `net:<network>`, and a disable
   * of the network blocks it on every route.
   */
  network?: string
}

export interface HitResult extends Evaluation {
  /** Set when the account was already disabled: the request was counted, nothing else. */
  disabledUntil: number | null
  /** Set when this request crossed a disable limit and disabled the account. */
  disabledNowUntil: number | null
  /** Set when the store could not be reached and its failure policy answered instead. */
  degraded?: 'fail-open' | 'fail-closed' | 'local'
  /**
   * Set when the decision is not the account's own: the key of the windows or disable that
   * acted (`net:<network>`, `route:<name>`), or the key the account was counted under when the
   * store had no room for it (`overflow:<network>`).
   */
  key?: string
}

export interface DisabledState {
  account: string
  until: number
  shadow: boolean
  /** The limit that disabled it (`route#index`), kept with the disable. */
  limit?: string
  /** When it was disabled. */
  since?: number
}

/** One limit's count at one moment: what the admin API shows. */
export interface LimitCount {
  /** `route#index`, as in the logs. */
  limit: string
  /** `10m distinctRecords 100 → challenge` */
  label: string
  kind: LimitKind
  /** Whose windows: the account's, its network's, the route's. */
  per: Per
  windowMs: number
  max: number
  action: ActionName
  /** Requests or distinct records in the window ending at `now` (capped at max + 1). */
  count: number
}

export interface RouteCounts {
  route: string
  /** Every limit of the route, in config order. */
  limits: LimitCount[]
}

/** An account as the store holds it. Only routes of the given policies with state are listed. */
export interface AccountView {
  account: string
  /** When the counts were read (the Redis store reads Redis' clock unless `clock: local`). */
  now: number
  routes: RouteCounts[]
  /** Enforced and shadow disables in force. */
  disabled: DisabledState[]
}

export type PressureBy = 'distinct' | 'requests'

export interface AccountsQuery {
  /** The routes of the running config: the store counts with their limits (and ignores state of other routes). */
  policies: readonly RoutePolicy[]
  /** Only this route (a name among `policies`). */
  route?: string
  /** Whose keys: accounts (default), networks (`net:…`) or routes (`route:…`). */
  per?: Per
  by: PressureBy
  /** Top N. */
  limit: number
  now: number
}

export interface RankedAccount extends AccountView {
  /** The highest count / max over the limits of the chosen kind: 1 means at a limit, above 1 past it. */
  pressure: number
}

export interface AccountsPage {
  now: number
  /** Most pressed first; ties by the larger count, then by account id. */
  accounts: RankedAccount[]
  /** Accounts ranked: those with state on the routes asked about (or, for all routes, disabled). */
  scanned: number
  /** The enumeration stopped at its bound (Redis: keys scanned): accounts beyond it were not considered. */
  truncated: boolean
}

export interface ResetScope {
  policies: readonly RoutePolicy[]
  /** Only this route's counters; without it, every route's. The disable is lifted either way. */
  route?: string
}

/** What the engine needs: one observation, decided atomically. */
export interface CountingStore {
  readonly kind: string
  hit(input: HitInput): HitResult | Promise<HitResult>
}

/** Disabled state and the operator's controls over an account. */
export interface DisableStore {
  /** Enforced and shadow disabled state of an account, if any. */
  disabled(account: string, now: number): DisabledState[] | Promise<DisabledState[]>
  /** Lift a disable (both modes); true if there was one. */
  unlock(account: string): boolean | Promise<boolean>
  /**
   * An operator's disable (`sluice accounts disable`): the key (an account, `net:<cidr>`,
   * `route:<name>`) is disabled in enforce mode until `until` (Infinity: until lifted), on every
   * route, as a disable limit would; it replaces a disable in force. unlock lifts it.
   */
  disableManually(account: string, until: number, now: number): void | Promise<void>
  /** Clear an account's counters (one route or all) and lift its disable; true if there was anything. */
  reset(account: string, scope: ResetScope): boolean | Promise<boolean>
}

/** Accounts as the admin API lists and shows them. Admin work, never on the request path. */
export interface AccountListing {
  /** One account's counts per route and its disabled state; null when the store holds nothing for it. */
  account(
    account: string,
    policies: readonly RoutePolicy[],
    now: number,
  ): AccountView | null | Promise<AccountView | null>
  /** The top accounts by pressure: walks every account. */
  accounts(query: AccountsQuery): AccountsPage | Promise<AccountsPage>
}

/** One-time tokens and counters: what the challenge needs. */
export interface TokenStore {
  /** Claim a one-time token (a proof-of-work solution): true the first time, false after, until ttl. */
  claimOnce(token: string, ttlMs: number): boolean | Promise<boolean>
  /** Add `n` to a counter that lives `ttlMs` from its first add; the new total (what a challenge pass has spent). */
  count(key: string, n: number, ttlMs: number): number | Promise<number>
}

/** Session binding: a session cookie (fingerprint) counts against an account. */
export interface SessionStore {
  bindSession(session: string, account: string, ttlMs: number): void | Promise<void>
  sessionAccount(session: string): string | undefined | Promise<string | undefined>
}

/**
 * Decisions kept under their reference, shared by every instance (src/admin/decisions.ts): the
 * Redis store holds each as a key with a TTL. Saving is best effort (never throws).
 */
export interface DecisionStore {
  saveDecision(reference: string, json: string, ttlMs: number): void | Promise<void>
  loadDecision(reference: string): string | undefined | Promise<string | undefined>
}

/** Account ids containing a text, case-insensitive (`sluice accounts find`). Admin work. */
export interface AccountSearch {
  findAccounts(text: string, limit: number): AccountsFound | Promise<AccountsFound>
}

export interface AccountsFound {
  /** Sorted. */
  accounts: string[]
  /** The search stopped at its bound (more keys than it walks, or more matches than `limit`). */
  truncated: boolean
}

/** How the store is doing, for /readyz and metrics (no caller needs to know its class). */
export interface StoreHealth {
  /** `memory` or `redis`. */
  type: string
  /** Not `ok`: the store cannot be reached (yet) and its failure policy answers. */
  state: 'ok' | 'connecting' | 'degraded'
  /** The failure policy in force when degraded (Redis). */
  policy?: 'fail-open' | 'fail-closed' | 'local'
  /** Accounts held in this process (memory store). */
  accounts?: number
}

export interface Store extends CountingStore, DisableStore, AccountListing, TokenStore, SessionStore {
  health(): StoreHealth
  /** A random key shared by every instance of this store, created on first use (undefined: none, or not reachable). */
  sharedKey?(name: string): Promise<string | undefined>
  /** Decisions shared across instances (the Redis store); absent: each instance keeps its own. */
  saveDecision?: DecisionStore['saveDecision']
  loadDecision?: DecisionStore['loadDecision']
  findAccounts?: AccountSearch['findAccounts']
  close(): Promise<void>
}

/**
 * The counter of records a shadow route served past a distinct-records limit (the windows hold
 * only what enforce would have let through, so that shadow decides exactly as enforce would):
 * `beyond:<account>\0<route>`, counted with TokenStore.count for the longest distinct window
 * from the first such record. Added to the account's distinct counts in views and decisions, so
 * that a scraper in shadow shows 2,000 records, not the limit + 1.
 */
export function beyondKey(account: string, route: string): string {
  return `beyond:${account}\0${route}`
}
