// The engine turns an observation (account, route, records, time) into a decision. It knows
// nothing of HTTP: the proxy, `sluice replay` and the tests all drive this same code.
import { beyondKey, type CountingStore, type HitInput, type HitResult } from './store.js'
import { accountPolicies, type Limit, type RoutePolicy } from './policy.js'

export type DecisionKind =
  | 'allow'
  | 'log' //       a `log` limit was crossed; served
  | 'throttle' //  429
  | 'challenge' // proof of work (a throttle until the challenge action exists)
  | 'disable' //   this request crossed a disable limit: 403 from now on
  | 'disabled' //  the account was already disabled: 403
  | 'unavailable' // the store is down and its policy is fail-closed: 503

export interface Decision {
  kind: DecisionKind
  /** The decision stops the request (enforce only; in shadow it is logged and served). */
  block: boolean
  /** The same decision in enforce mode would have blocked. */
  wouldBlock: boolean
  shadow: boolean
  account: string
  route: string
  limit: Limit | null
  /** Per limit of the route: requests / distinct records in its window, this request included. */
  counts: number[]
  /** When a disable ends (Infinity: until unlocked). */
  disabledUntil: number | null
  /** The store's failure policy answered (the store could not be reached). */
  degraded?: 'fail-open' | 'fail-closed' | 'local'
  /** The reference given when the decision was reported (src/report/reporter.ts): the block answer carries it. */
  reference?: string
}

export interface ObserveStep {
  countRequest?: boolean
  passes?: readonly number[]
  /** The client's network, should the store have to count the account under it (HitInput). */
  overflowKey?: () => string
  /** The client's network, when some route counts per network (HitInput). */
  network?: string
}

export interface EngineOptions {
  /** How long a disable lasts, in ms (Infinity: until an operator unlocks it). */
  disableForMs: number
  /**
   * Where shadow mode counts the records it served past a limit (TokenStore.count): the
   * windows hold what enforce would have, the truth is added to the counts (beyondKey).
   */
  tally?: (key: string, n: number, ttlMs: number) => number | Promise<number>
  /** Global shadow mode: every route decides and logs, nothing blocks. */
  shadow?: boolean
  clock?: () => number
}

export class Engine<S extends CountingStore = CountingStore> {
  readonly store: S
  private readonly disableForMs: number
  private readonly shadow: boolean
  private readonly clock: () => number
  private readonly tally: EngineOptions['tally']

  constructor(store: S, options: EngineOptions) {
    this.store = store
    this.disableForMs = options.disableForMs
    this.shadow = options.shadow ?? false
    this.clock = options.clock ?? Date.now
    this.tally = options.tally
  }

  /**
   * `step.countRequest: false` observes the records of a response whose request was observed
   * before; `step.passes` names challenge limits the request holds a solved pass for.
   */
  observe(
    account: string,
    policy: RoutePolicy,
    records: readonly string[],
    now = this.clock(),
    step?: ObserveStep,
  ): Promise<Decision> | Decision {
    const shadow = this.shadow || policy.shadow
    const input: HitInput = { account, policy, records, now, shadow, disableForMs: this.disableForMs }
    if (step?.countRequest === false) input.countRequest = false
    if (step?.passes && step.passes.length > 0) input.passes = step.passes
    if (step?.overflowKey) input.overflowKey = step.overflowKey
    if (step?.network !== undefined) input.network = step.network
    const result = this.store.hit(input)
    if (result instanceof Promise) return result.then((r) => this.decided(r, account, policy, shadow))
    return this.decided(result, account, policy, shadow)
  }

  private decided(r: HitResult, account: string, policy: RoutePolicy, shadow: boolean): Decision | Promise<Decision> {
    const decision = toDecision(r, account, policy, shadow)
    // Shadow served what enforce would have withheld: counted beside the windows.
    if (!shadow || !r.blocked || r.disabledUntil !== null || r.fresh === 0 || !this.tally) return decision
    const part = accountPolicies(policy).find((p) => p.distinctLimits.length > 0 && !p.name.includes('~'))
    if (!part) return decision
    const total = this.tally(beyondKey(account, policy.name), r.fresh, part.longestDistinctWindowMs)
    const add = (n: number) => {
      // This request's records are in both: the capped window count and the tally.
      for (const l of part.distinctLimits)
        decision.counts[l.index] = Math.max(0, (decision.counts[l.index] ?? 0) - r.fresh) + n
      return decision
    }
    return total instanceof Promise ? total.then(add, () => decision) : add(total)
  }
}

function toDecision(r: HitResult, account: string, policy: RoutePolicy, shadow: boolean): Decision {
  let kind: DecisionKind
  if (r.degraded === 'fail-closed') kind = 'unavailable'
  else if (r.disabledUntil !== null) kind = 'disabled'
  else kind = r.action ?? 'allow'
  const wouldBlock = r.blocked
  return {
    kind,
    block: wouldBlock && !shadow,
    wouldBlock,
    shadow,
    // A store full of accounts with open windows counted this identity under its network.
    account: r.key ?? account,
    route: policy.name,
    limit: r.limit,
    counts: r.counts,
    disabledUntil: r.disabledUntil ?? r.disabledNowUntil,
    ...(r.degraded ? { degraded: r.degraded } : {}),
  }
}
