// The one interface between the engine and where counts live. Every call that decides is a
// single atomic step (one Redis round trip for the Redis store), so two proxies sharing a
// store can never both let the N+1-th record through.
import type { Evaluation } from '../engine/evaluate.js'
import type { RoutePolicy } from '../engine/policy.js'

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
}

export interface HitResult extends Evaluation {
  /** Set when the account was already disabled: the request was counted, nothing else. */
  disabledUntil: number | null
  /** Set when this request crossed a disable limit and disabled the account. */
  disabledNowUntil: number | null
  /** Set when the store could not be reached and its failure policy answered instead. */
  degraded?: 'fail-open' | 'fail-closed' | 'local'
}

export interface DisabledState {
  account: string
  until: number
  shadow: boolean
}

export interface Store {
  readonly kind: string
  hit(input: HitInput): HitResult | Promise<HitResult>
  /** Enforced and shadow disabled state of an account, if any. */
  disabled(account: string, now: number): DisabledState[] | Promise<DisabledState[]>
  /** Lift a disable (both modes); true if there was one. */
  unlock(account: string): boolean | Promise<boolean>
  /** Claim a one-time token (a proof-of-work solution): true the first time, false after, until ttl. */
  claimOnce(token: string, ttlMs: number): boolean | Promise<boolean>
  /** Session binding: a session cookie (fingerprint) counts against an account. */
  bindSession(session: string, account: string, ttlMs: number): void | Promise<void>
  sessionAccount(session: string): string | undefined | Promise<string | undefined>
  unbindSession(session: string): void | Promise<void>
  close(): Promise<void>
}
