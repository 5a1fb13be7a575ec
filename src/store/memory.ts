// The embedded store: every count in this process, bounded by an LRU of accounts.
//
// An account's windows are one block of a slab arena (arena.ts): the LRU maps the account to
// the block's handle, a small integer, so there is no JS object per account and the garbage
// collector never walks the windows. 100,000 accounts × 3 routes with full windows take about
// 1.3 KB each (docs/design.md). The block, in 32-bit words:
//
//   0       the arena's (size class)
//   1       how many sections follow
//   2, 3    base: the time (ms since the epoch, a double) the block's times are offsets from
//   4       the account's last `now`, as an offset: its clock never runs backwards
//   5 …     one section per route the account used (src/engine/windows.ts), back to back
//
// A section grows on demand; when the block's size class is full the block moves to a larger
// class (copied, and the LRU entry replaced: lru-cache's dispose frees the old block, as it
// does on eviction, delete and clear). Handles are only held across a call by the LRU and the
// cursor, which follows every move.
import { randomBytes } from 'node:crypto'
import type { LRUCache } from 'lru-cache'
import { commit, evaluate, moreSevere, REQUEST, zeros, type EvaluateStep, type Section } from '../engine/evaluate.js'
import {
  buildPolicy,
  MAX_WINDOW_MS,
  partKey,
  perOf,
  sectionNames,
  type Limit,
  type Part,
  type RoutePolicy,
} from '../engine/policy.js'
import {
  carriedWords,
  carrySection,
  countWindows,
  grew,
  initSection,
  logEnd,
  newSectionWords,
  distinctCapacityOf,
  rebaseSection,
  recordSeed,
  requestCapacityOf,
  sectionFits,
  sectionKey,
  sectionWords,
  useRecordSeed,
  wordsPerEntry,
  type Log,
} from '../engine/windows.js'
import { Arena, type ArenaStats } from './arena.js'
import { WideLog, type WideState } from './wide.js'
import { accountPressure, listed, parseWhy, policiesOf, routeCounts, TopAccounts, withBeyond } from './ranking.js'
import { boundedLru } from './lru.js'
import { beyondKey } from '../engine/store.js'
import type {
  AccountsFound,
  AccountsPage,
  AccountsQuery,
  AccountView,
  DisabledState,
  HitInput,
  HitResult,
  ResetScope,
  Store,
  StoreHealth,
} from '../engine/store.js'

const SECTIONS = 1
const BASE = 2
const LAST = 4
const HEADER = 5
/** The largest time offset a uint32 holds; past it the block is rebased. */
const MAX_OFFSET = 0xffffffff

export interface MemoryStoreOptions {
  /** Accounts whose windows are held at most (see admission below). */
  maxAccounts: number
  /** An idle account's windows were dropped to admit another. */
  onEvict?: (account: string) => void
  /** The store was full of accounts with open windows: a new identity was counted under its network's key. */
  onOverflow?: (account: string, key: string) => void
  /** Session bindings held at most (default the larger of 1,000,000 and 10 × maxAccounts); past it the oldest goes. */
  maxSessions?: number
  /**
   * sharedKey() makes a key once and keeps it with the state (the state file restores it), so
   * that Basic fingerprints survive a restart. Without, it answers undefined (a per-process key).
   */
  keepKeys?: boolean
}

/** The tables a state file's blocks refer to (src/store/state.ts), and the record hash seed. */
export interface StoreTables {
  seed: [number, number]
  /** Section keys by number: route, request capacity, distinct capacity, newline-separated. */
  keys: string[]
  /** By section key, its route's number. */
  keyRoutes: number[]
  /** Route names by number. */
  routes: string[]
  longestWindowMs: number
  sharedKeys: Record<string, string>
}

/** What is kept beside the windows, each entry with its expiry (ms since the epoch; Infinity: never). */
export type EntryKind = 'disabled' | 'shadowDisabled' | 'disableWhy' | 'sessions' | 'claims' | 'counters'
export type StateEntry = [key: string, value: string | number, until: number]

/** One section of a pool's blocks (exportPool). */
export interface BlockSection {
  names: string[]
  lengths: number[]
  words: Uint32Array
}

/** The pools of windows a snapshot names: tracked accounts, then the overflow keys. */
const POOLS = ['tracked', 'overflow'] as const

/** The key every identity shares when even the per-network overflow pool is full. */
export const OVERFLOW_ALL = 'overflow:*'
/** The key networks share when the store holds as many networks with open windows as it may. */
export const NETWORK_OVERFLOW = 'net:*'

export class MemoryStore implements Store {
  readonly kind = 'memory'
  private readonly arena = new Arena()
  /** Account → its block's handle. */
  private readonly tracked: LRUCache<string, number>
  /**
   * Section keys: a route and the capacities its windows were built for, as a small number.
   * Windows built for one policy serve another with the same key (shadow twin, a reload that
   * changes only windows or actions); a reload that changes a capacity carries them over.
   * Keys are never forgotten: there are as many as (route, capacities) pairs ever configured.
   */
  private readonly keys = new Map<string, number>()
  /** Key → its route's number (routes are numbered by name). */
  private readonly keyRoutes: number[] = []
  private readonly routes = new Map<string, number>()
  /** A cache of keyOf by policy object (a lookup per hit instead of building a string). */
  private readonly policyKeys = new WeakMap<RoutePolicy, number>()
  private readonly cursor: Cursor
  /** A section being rewritten for a reload, before it is moved into place. */
  private scratch = new Uint32Array(64)
  /**
   * Identities counted under their client network because `tracked` was full of accounts with
   * open windows: a flood of fresh identities shares these few budgets instead of evicting
   * real accounts. Bounded like `tracked`; OVERFLOW_ALL is admitted even when it is full.
   */
  private readonly overflow: LRUCache<string, number>
  private readonly maxAccounts: number
  private readonly maxOverflow: number
  /**
   * Networks' and routes' windows (per-network and per-route limits), by key and part name.
   * Routes are few; networks are bounded by maxNetworks (wideOf).
   */
  private readonly wide: LRUCache<string, Map<string, WideLog>>
  private readonly routeLogs = new Map<string, Map<string, WideLog>>()
  private readonly maxNetworks: number
  private lastNetwork = ''
  private lastNetworkKey = ''
  /**
   * The network key `wide` last got or set, and its logs: it is the LRU's most recent entry, so
   * asking for it again needs no get (lru-cache's costs ~0.1 µs). Cleared by every other change
   * of `wide` (forgetRecentNetwork).
   */
  private recentNetwork = ''
  private recentNetworkLogs: Map<string, WideLog> | null = null
  /** The longest window of any policy seen: an account idle for longer has nothing left to count. */
  private longestWindowMs = 0
  private readonly onEvict: ((account: string) => void) | undefined
  private readonly onOverflow: ((account: string, key: string) => void) | undefined
  // Disables and session bindings are kept apart from the windows, in plain maps bounded by
  // their expiry: no flood of fresh identities can evict (and so unlock or unbind) them.
  private readonly disabledEnforce = new ExpiringMap<number>()
  private readonly disabledShadow = new ExpiringMap<number>()
  /** `<since>|<limit id>` by whyKey: which limit disabled a key, since when. */
  private readonly disabledWhy = new ExpiringMap<string>()
  private readonly sessions = new ExpiringMap<string>()
  private readonly maxSessions: number
  private readonly claimed: LRUCache<string, true>
  private readonly counters: LRUCache<string, number>
  private readonly keepKeys: boolean
  private readonly sharedKeys = new Map<string, string>()
  /** Run first by close(), while the state is whole (the state file's last write). */
  private readonly closing: (() => Promise<void>)[] = []

  constructor(options: MemoryStoreOptions) {
    this.maxAccounts = options.maxAccounts
    this.maxOverflow = Math.max(100, Math.ceil(options.maxAccounts / 10))
    this.maxSessions = options.maxSessions ?? Math.max(1_000_000, 10 * options.maxAccounts)
    this.onEvict = options.onEvict
    this.onOverflow = options.onOverflow
    const dispose = (h: number) => this.arena.free(h)
    // One more than the bound: admit() makes room itself, lru-cache never evicts on its own.
    this.tracked = boundedLru<string, number>(options.maxAccounts + 1, { dispose })
    this.overflow = boundedLru<string, number>(this.maxOverflow + 2, { dispose })
    this.maxNetworks = Math.max(1000, Math.ceil(options.maxAccounts / 10))
    // Room for net:* beside maxNetworks networks: wideOf bounds the rest.
    this.wide = boundedLru<string, Map<string, WideLog>>(this.maxNetworks + 2)
    this.cursor = new Cursor(this.arena, (account, h, pos, from, to) => this.resize(account, h, pos, from, to))
    // Claimed tokens only need to outlive their challenge's expiry; an evicted one is still expired-checked.
    this.claimed = boundedLru<string, true>(100_000)
    this.counters = boundedLru<string, number>(100_000, { ttlAutopurge: false })
    this.keepKeys = options.keepKeys ?? false
  }

  hit(input: HitInput): HitResult {
    const { policy } = input
    this.noteWindows(policy)
    if (policy.parts !== null) return this.hitParts(input, policy.parts)
    const { key: account, h } = this.blockOf(input.account, input)
    const { now, base } = this.clock(h, input.now)
    const section = this.sectionFor(account, h, policy)
    const step = stepOf(input)
    // The identity's own disable holds whatever key it is counted under; a network's, on every route.
    let disabledUntil = this.disabledUntil(input.account, input.shadow, now)
    let disabledKey = account
    if (disabledUntil === null && account !== input.account)
      disabledUntil = this.disabledUntil(account, input.shadow, now)
    if (disabledUntil === null && input.network !== undefined) {
      disabledKey = `net:${input.network}`
      disabledUntil = this.disabledUntil(disabledKey, input.shadow, now)
    }
    if (disabledUntil !== null) {
      // Counted as a request (blocked requests count), never as records.
      const result = evaluate(section, policy, [], now - base, step) as HitResult
      result.blocked = true
      result.disabledUntil = disabledUntil
      result.disabledNowUntil = null
      if (disabledKey !== input.account) result.key = disabledKey
      return result
    }

    const result = evaluate(section, policy, input.records, now - base, step) as HitResult
    result.disabledUntil = null
    result.disabledNowUntil = null
    if (account !== input.account) result.key = account
    if (result.action === 'disable') {
      result.disabledNowUntil = now + input.disableForMs
      this.disable(account, result.disabledNowUntil, input.shadow, now, (result.limit as Limit).id)
    }
    return result
  }

  /**
   * An observation of a route with network, route or distinct-account limits: every part's
   * windows decide first (nothing touched), the most severe crossed limit of any part acts, and
   * only then, unless it blocks, are the records (and the account) counted in every part. The
   * whole step is synchronous: no other observation can come between.
   */
  private hitParts(input: HitInput, parts: readonly Part[]): HitResult {
    // A literal, not a spread of stepOf's: an object spread costs more than the whole step here.
    const step: EvaluateStep = { countRequest: input.countRequest ?? true, passes: input.passes, defer: true }
    const counts = zeros(input.policy.slots)
    const wall = Math.floor(input.now)
    // Every part's windows first (admission may count a key under an overflow key instead):
    // an account's in the arena, a network's or the route's in a wide log (wide.ts).
    const { account, network, policy } = input
    const keys: string[] = []
    const logs: (WideLog | null)[] = []
    // The account's parts all count in one block (under the key admission chose): its handle is
    // followed through every step (a log that grows may move the block) instead of looked up again.
    let accountKey = account
    let h = -1
    let arenaParts = 0
    let wideKey = ''
    let wideLogs: Map<string, WideLog> | null = null
    // The same string objects request after request: the comparisons and lookups below then
    // meet a string whose hash is known (a template literal per part made and hashed a new one).
    const netKey = network === undefined ? undefined : this.networkKey(network)
    for (const p of parts) {
      if (p.per === 'account') {
        if (h < 0) ({ key: accountKey, h } = this.blockOf(account, input))
        logs.push(null)
        keys.push(accountKey)
        arenaParts++
        continue
      }
      const key = p.per === 'network' ? (netKey ?? 'net:?') : routeKey(policy)
      // A network's two parts (records, accounts) share its key: admitted once.
      if (key !== wideKey || wideLogs === null) {
        const admitted = this.wideOf(key, wall)
        wideKey = admitted.key
        wideLogs = admitted.logs
      }
      logs.push(logOf(wideLogs, p.policy))
      keys.push(wideKey)
    }
    const countedAs = accountKey
    // A disable of any key the request counts under (the account, its network, the route) holds.
    let disabled: { until: number; key: string } | null = null
    // (Most of the time nobody is disabled: then there is nothing to look up.)
    if (this.disabledEnforce.size > 0 || this.disabledShadow.size > 0)
      for (const key of this.disableKeys(input, countedAs)) {
        const until = this.disabledUntil(key, input.shadow, wall)
        if (until !== null) {
          disabled = { until, key }
          break
        }
      }
    const none: readonly string[] = []
    const self = disabled === null && step.countRequest ? [account] : none
    const records = disabled === null ? input.records : none
    let worst: Limit | null = null
    let worstKey = countedAs
    let fresh = 0
    /** `now` in the account block's frame (the same for each of its parts). */
    let blockNow = 0
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as Part
      const key = keys[i] as string
      const log = logs[i]
      let acting: Limit | null
      if (log) {
        acting = log.decide(part.accounts ? self : records, wall, step.countRequest, step.passes, counts, worst)
      } else {
        const { now, base } = this.clock(h, input.now)
        blockNow = now - base
        const e = evaluate(
          this.sectionFor(key, h, part.policy),
          part.policy,
          part.accounts ? self : records,
          blockNow,
          step,
          counts,
        )
        h = this.cursor.handle
        if (part.per === 'account' && !part.accounts) fresh = e.fresh
        acting = e.limit !== null && moreSevere(e.limit, worst) ? e.limit : worst
      }
      if (acting !== worst) {
        worst = acting
        worstKey = key
      }
    }
    const acting = worst as Limit | null
    const blocked = disabled !== null || (acting !== null && acting.severity > 0)
    if (!blocked) {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i] as Part
        const log = logs[i]
        if (log) {
          log.commit(part.accounts ? self : records)
          continue
        }
        // With one part in the arena, evaluate's lookup of its records is still at hand (the
        // wide logs keep their own), and the cursor still points at its section (nothing in
        // the arena moved since): commit need not find either again.
        commit(
          arenaParts === 1 ? this.cursor : this.sectionFor(accountKey, h, part.policy),
          part.policy,
          part.accounts ? self : records,
          blockNow,
          arenaParts === 1,
        )
        h = this.cursor.handle
      }
    }
    const result: HitResult = {
      limit: disabled !== null ? null : acting,
      action: disabled !== null ? null : (acting?.action ?? null),
      blocked,
      counts,
      fresh,
      disabledUntil: disabled?.until ?? null,
      disabledNowUntil: null,
    }
    const key = disabled?.key ?? worstKey
    if (key !== input.account) result.key = key
    if (disabled === null && acting?.action === 'disable') {
      result.disabledNowUntil = wall + input.disableForMs
      this.disable(worstKey, result.disabledNowUntil, input.shadow, wall, acting.id)
    }
    return result
  }

  /**
   * The wide log of a network's or the route's part, admitted if new. Route keys are as many as
   * routes; network keys are bounded like accounts: at maxNetworks, the least recently used
   * goes only if idle (every window empty), else the newcomer counts under `net:*`, which a
   * flood of networks so shares.
   */
  private wideOf(key: string, now: number): { key: string; logs: Map<string, WideLog> } {
    // Route keys are few (one per route with per-route limits): a plain map, no LRU to keep.
    if (key.startsWith('route:')) {
      let logs = this.routeLogs.get(key)
      if (logs === undefined) this.routeLogs.set(key, (logs = new Map()))
      return { key, logs }
    }
    if (key === this.recentNetwork && this.recentNetworkLogs !== null) return { key, logs: this.recentNetworkLogs }
    let logs = this.wide.get(key)
    if (logs === undefined && this.wide.size >= this.maxNetworks && !this.evictIdleWide(now)) {
      this.onOverflow?.(key, NETWORK_OVERFLOW)
      key = NETWORK_OVERFLOW
      logs = this.wide.get(key)
    }
    if (logs === undefined) this.wide.set(key, (logs = new Map()))
    this.recentNetwork = key
    this.recentNetworkLogs = logs
    return { key, logs }
  }

  private forgetRecentNetwork(): void {
    this.recentNetwork = ''
    this.recentNetworkLogs = null
  }

  /** A network's or route's logs, for the admin views (never touching the LRU order). */
  private wideLogs(key: string): Map<string, WideLog> | undefined {
    return key.startsWith('route:') ? this.routeLogs.get(key) : this.wide.peek(key)
  }

  /** Drop the least recently used network whose windows are all empty at `now`. */
  private evictIdleWide(now: number): boolean {
    for (const key of this.wide.rkeys()) {
      if (!key.startsWith('net:') || key === NETWORK_OVERFLOW) continue
      const logs = this.wide.peek(key) as Map<string, WideLog>
      if ([...logs.values()].some((l) => l.lastTouch > now - this.longestWindowMs)) return false
      this.wide.delete(key)
      this.forgetRecentNetwork()
      return true
    }
    return false
  }

  /** The keys whose disable blocks this request: the account (and its overflow key), its network, the route. */
  private disableKeys(input: HitInput, countedAs: string): string[] {
    const keys = [input.account]
    if (countedAs !== input.account) keys.push(countedAs)
    if (input.network !== undefined) keys.push(this.networkKey(input.network))
    if (input.policy.perRoute) keys.push(routeKey(input.policy))
    return keys
  }

  /** `net:<network>`, the same string while requests come from the same network (most do, in runs). */
  private networkKey(network: string): string {
    if (network !== this.lastNetwork) {
      this.lastNetwork = network
      this.lastNetworkKey = partKey('network', '', network, '')
    }
    return this.lastNetworkKey
  }

  /** The longest window of any policy seen decides when an account is idle. */
  private noteWindows(policy: RoutePolicy): void {
    const longest =
      policy.longestDistinctWindowMs > policy.longestRequestWindowMs
        ? policy.longestDistinctWindowMs
        : policy.longestRequestWindowMs
    if (longest > this.longestWindowMs) this.longestWindowMs = longest
  }

  /** The block of `key`, admitted if new (or the overflow block it is counted under). */
  private blockOf(key: string, input: HitInput): { key: string; h: number } {
    const h = this.tracked.get(key)
    if (h !== undefined) return { key, h }
    const known = this.overflow.get(key)
    if (known !== undefined) return { key, h: known }
    return this.admit(key, input)
  }

  /** `now` in the block's frame: whole ms, never before the block's last (wall clocks step back, windows must not). */
  private clock(h: number, wall: number): { now: number; base: number } {
    const arena = this.arena
    const mem = arena.mem(h)
    const o = arena.offset(h)
    let base = arena.floats64(h)[(o + BASE) >>> 1] as number
    const now = Math.max(Math.floor(wall), base + (mem[o + LAST] as number))
    if (now - base > MAX_OFFSET) base = this.rebase(h, now)
    mem[o + LAST] = now - base
    return { now, base }
  }

  /**
   * A block for an identity the store does not track yet. Within maxAccounts it is tracked;
   * at capacity, the least recently used account makes room only if every window it could
   * have is empty (idle longer than the longest window). Otherwise the store is full of
   * accounts with something still to count, and none of them may lose it: the identity is
   * counted under its client network (`overflow:<network>`), or, when that pool is full too,
   * under OVERFLOW_ALL. A flood of fresh identities so spends shared budgets and never resets
   * anyone.
   */
  private admit(account: string, input: HitInput): { key: string; h: number } {
    const now = Math.floor(input.now)
    if (this.tracked.size < this.maxAccounts || this.evictIdle(this.tracked, now)) {
      return { key: account, h: this.newBlock(this.tracked, account, input) }
    }
    // A network's or the route's windows overflow into the shared pool's last key.
    const network = account.startsWith('net:') || account.startsWith('route:') ? undefined : input.overflowKey?.()
    let key = `overflow:${network ?? '*'}`
    let h = this.overflow.get(key)
    if (
      h === undefined &&
      key !== OVERFLOW_ALL &&
      this.overflow.size >= this.maxOverflow &&
      !this.evictIdle(this.overflow, now)
    ) {
      key = OVERFLOW_ALL
      h = this.overflow.get(key)
    }
    this.onOverflow?.(account, key)
    return { key, h: h ?? this.newBlock(this.overflow, key, input) }
  }

  /** Drop the least recently used entry of `pool` if its windows are all empty at `now`. */
  private evictIdle(pool: LRUCache<string, number>, now: number): boolean {
    for (const account of pool.rkeys()) {
      const h = pool.peek(account) as number
      const o = this.arena.offset(h)
      const last = (this.arena.floats64(h)[(o + BASE) >>> 1] as number) + (this.arena.mem(h)[o + LAST] as number)
      if (last > now - this.longestWindowMs) return false
      pool.delete(account)
      if (pool === this.tracked) this.onEvict?.(account)
      return true
    }
    return false
  }

  private newBlock(pool: LRUCache<string, number>, key: string, input: HitInput): number {
    const arena = this.arena
    // Room for the first section right away: it is about to be added.
    const h = arena.alloc(HEADER + newSectionWords(input.policy))
    const o = arena.offset(h)
    const mem = arena.mem(h)
    mem[o + SECTIONS] = 0
    mem[o + LAST] = 0
    arena.floats64(h)[(o + BASE) >>> 1] = Math.floor(input.now)
    pool.set(key, h)
    return h
  }

  disabled(account: string, now: number): DisabledState[] {
    const out: DisabledState[] = []
    for (const [map, shadow] of [
      [this.disabledEnforce, false],
      [this.disabledShadow, true],
    ] as const) {
      const until = map.get(account, now)
      if (until === undefined) continue
      const why = parseWhy(this.disabledWhy.get(whyKey(account, shadow), now))
      out.push({ account, until, shadow, ...why })
    }
    return out
  }

  disableManually(account: string, until: number, now: number): void {
    this.disabledEnforce.set(account, until, until, now)
  }

  unlock(account: string): boolean {
    this.disabledWhy.delete(whyKey(account, false))
    this.disabledWhy.delete(whyKey(account, true))
    const a = this.disabledEnforce.delete(account)
    const b = this.disabledShadow.delete(account)
    return a || b
  }

  reset(account: string, scope: ResetScope): boolean {
    if (perOf(account) !== 'account') {
      this.forgetRecentNetwork()
      const logs = this.wideLogs(account)
      let cleared = false
      if (logs !== undefined && scope.route === undefined)
        cleared = this.wide.delete(account) || this.routeLogs.delete(account)
      else if (logs !== undefined)
        for (const name of sectionNames(scope.route as string)) cleared = logs.delete(name) || cleared
      return this.unlock(account) || cleared
    }
    let had = false
    const pool = this.poolOf(account)
    if (scope.route === undefined) {
      had = pool.delete(account)
    } else {
      for (const name of sectionNames(scope.route)) {
        const h = pool.peek(account)
        const route = this.routes.get(name)
        const s =
          h === undefined || route === undefined ? -1 : this.findSection(this.arena.mem(h), this.arena.offset(h), route)
        if (h === undefined || s < 0) continue
        // The block shrinks to a smaller class when the section was big enough to matter (a
        // move, which lru-cache counts as a use of the account: harmless for an admin reset).
        const mem = this.arena.mem(h)
        const moved = this.resize(account, h, s, sectionWords(mem, this.arena.offset(h) + s), 0)
        const after = this.arena.mem(moved)
        const at = this.arena.offset(moved) + SECTIONS
        after[at] = (after[at] as number) - 1
        had = true
      }
    }
    const unlocked = this.unlock(account)
    return had || unlocked
  }

  // The admin reads below never touch the LRU order (peek) nor the windows (counting is
  // read-only), so looking at an account changes nothing about how it is treated.

  account(account: string, policies: readonly RoutePolicy[], now: number): AccountView | null {
    const wide = perOf(account) !== 'account'
    const h = wide ? undefined : this.poolOf(account).peek(account)
    const logs = wide ? this.wideLogs(account) : undefined
    const disabled = this.disabled(account, now)
    if (h === undefined && logs === undefined && disabled.length === 0) return null
    const routes: AccountView['routes'] = []
    for (const policy of policies) {
      const counts =
        logs !== undefined ? this.wideCounts(logs, policy, now) : h !== undefined ? this.countsOf(h, policy, now) : null
      if (counts)
        routes.push(routeCounts(policy, withBeyond(counts, policy, this.count(beyondKey(account, policy.name), 0, 0))))
    }
    return { account, now, routes, disabled }
  }

  /** A network's or the route's counts on one part at `now`, read-only; null when it has no state there. */
  private wideCounts(logs: Map<string, WideLog>, policy: RoutePolicy, now: number): number[] | null {
    const log = logs.get(policy.name)
    // The running config's policy, or one compiled from the same config (the admin's).
    if (log === undefined || !sameLimits(log.policy, policy)) return null
    const counts = new Array<number>(policy.slots).fill(0)
    log.counts(now, counts)
    return counts
  }

  /**
   * Walks every tracked account (O(accounts × routes × window capacity), about the cost of one
   * observation each), yielding to the event loop every few thousand accounts: this store
   * lives in the proxy's own process and the requests it serves must not wait for a listing.
   */
  async accounts(query: AccountsQuery): Promise<AccountsPage> {
    const policies = policiesOf(query)
    const top = new TopAccounts<null>(query.limit)
    const wide = (query.per ?? 'account') !== 'account'
    // The names first, in one pass (the caches must not change under a walk), then their
    // counts in slices of at most ~4 ms, so that requests are served in between.
    const names: string[] = []
    for (const keys of wide ? [this.wide.keys(), this.routeLogs.keys()] : [this.tracked.keys(), this.overflow.keys()])
      for (const k of keys) if (listed(k, query.per)) names.push(k)
    let scanned = 0
    let slice = performance.now()
    for (let i = 0; i < names.length; i++) {
      if ((i & 255) === 255 && performance.now() - slice > 4) {
        await new Promise<void>((resolve) => setImmediate(resolve))
        slice = performance.now()
      }
      const account = names[i] as string
      // Peeked again after every pause: meanwhile the account may have moved blocks or left.
      const logs = wide ? this.wideLogs(account) : undefined
      const h = wide ? undefined : this.poolOf(account).peek(account)
      if (h === undefined && logs === undefined) continue
      const { found, ratio, count } = accountPressure(
        policies,
        (policy) =>
          logs !== undefined ? this.wideCounts(logs, policy, query.now) : this.countsOf(h as number, policy, query.now),
        query.by,
      )
      if (!found) continue
      scanned++
      top.offer({ account, ratio, count, data: null })
    }
    // Disabled accounts whose counts were evicted (or expired) are still worth listing.
    if (query.route === undefined) {
      const disabled = new Set([...this.disabledEnforce.keys(), ...this.disabledShadow.keys()])
      for (const account of disabled) {
        if (!listed(account, query.per)) continue
        const held = wide ? this.wideLogs(account) !== undefined : this.poolOf(account).has(account)
        if (held || this.disabled(account, query.now).length === 0) continue
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

  /** Account ids containing `text` (any case): a walk of every key this process holds (admin work). */
  findAccounts(text: string, limit: number): AccountsFound {
    const needle = text.toLowerCase()
    const found = new Set<string>()
    const pools = [
      this.tracked.keys(),
      this.overflow.keys(),
      this.wide.keys(),
      this.routeLogs.keys(),
      this.disabledEnforce.keys(),
      this.disabledShadow.keys(),
    ]
    for (const keys of pools) for (const key of keys) if (key.toLowerCase().includes(needle)) found.add(key)
    const accounts = [...found].sort()
    return { accounts: accounts.slice(0, limit), truncated: accounts.length > limit }
  }

  claimOnce(token: string, ttlMs: number): boolean {
    if (this.claimed.has(token)) return false
    this.claimed.set(token, true, { ttl: Math.max(1, Math.ceil(ttlMs)) })
    return true
  }

  bindSession(session: string, account: string, ttlMs: number): void {
    const now = Date.now()
    // Past the bound, the oldest binding goes (bindings only come from successful logins).
    if (!this.sessions.has(session, now) && this.sessions.size >= this.maxSessions) this.sessions.dropOldest(now)
    this.sessions.set(session, account, now + Math.max(1, Math.ceil(ttlMs)))
  }

  sessionAccount(session: string): string | undefined {
    return this.sessions.get(session, Date.now())
  }

  count(key: string, n: number, ttlMs: number): number {
    // Reading (n = 0) creates nothing: a flood of challenged identities must not push out
    // what solved passes have spent.
    if (n === 0) return this.counters.get(key) ?? 0
    const total = (this.counters.get(key) ?? 0) + n
    // The first add sets the lifetime; later ones keep it (noUpdateTTL).
    this.counters.set(key, total, { ttl: Math.max(1, Math.ceil(ttlMs)), noUpdateTTL: true })
    return total
  }

  health(): StoreHealth {
    return { type: 'memory', state: 'ok', accounts: this.size }
  }

  /** Accounts currently tracked (for metrics and tests), overflow keys included. */
  get size(): number {
    return this.tracked.size + this.overflow.size
  }

  /** Entries held beside the windows: disables and session bindings (for tests and the churn bench). */
  get held(): { disabled: number; sessions: number } {
    return { disabled: this.disabledEnforce.size + this.disabledShadow.size, sessions: this.sessions.size }
  }

  /** The arena's blocks: one per tracked account. */
  stats(): ArenaStats {
    return this.arena.stats()
  }

  async sharedKey(name: string): Promise<string | undefined> {
    if (!this.keepKeys) return undefined
    let key = this.sharedKeys.get(name)
    if (key === undefined) this.sharedKeys.set(name, (key = randomBytes(32).toString('base64')))
    return key
  }

  // ─── the state file (src/store/state.ts) ──────────────────────────────────────────────
  // Off the request path: a snapshot copies blocks a slice at a time between requests (an
  // account's block is copied whole within one slice); a restore fills the empty store before
  // it serves.

  /** `fn` runs first when the store closes, while its state is whole. */
  onClose(fn: () => Promise<void>): void {
    this.closing.push(fn)
  }

  tables(): StoreTables {
    // Numbers are given in insertion order (a map's size at the time): its keys, in order.
    return {
      seed: recordSeed(),
      keys: [...this.keys.keys()],
      keyRoutes: [...this.keyRoutes],
      routes: [...this.routes.keys()],
      longestWindowMs: this.longestWindowMs,
      sharedKeys: Object.fromEntries(this.sharedKeys),
    }
  }

  /** Before anything is counted (it sets the record hash seed of the process). */
  restoreTables(tables: StoreTables): void {
    if (this.size > 0 || this.keys.size > 0) throw new Error('memory store: state is only restored into an empty store')
    useRecordSeed(tables.seed[0], tables.seed[1])
    tables.keys.forEach((name, key) => this.keys.set(name, key))
    this.keyRoutes.push(...tables.keyRoutes)
    tables.routes.forEach((name, route) => this.routes.set(name, route))
    this.longestWindowMs = Math.max(this.longestWindowMs, tables.longestWindowMs)
    for (const [name, key] of Object.entries(tables.sharedKeys)) this.sharedKeys.set(name, key)
  }

  /** Every network's and route's wide logs, for the state file (a copy of each, taken now). */
  *savedWideLogs(): Generator<{ key: string; name: string; state: WideState }> {
    const all = [...(this.wide.rentries() as Iterable<[string, Map<string, WideLog>]>), ...this.routeLogs.entries()]
    for (const [key, logs] of all) for (const [name, log] of logs) yield { key, name, state: log.save() }
  }

  /** A wide log read back from a state file (its cursors come with the first observation). */
  importWide(key: string, name: string, state: WideState): void {
    this.forgetRecentNetwork()
    let logs = key.startsWith('route:') ? this.routeLogs.get(key) : this.wide.get(key)
    if (logs === undefined) {
      logs = new Map()
      if (key.startsWith('route:')) this.routeLogs.set(key, logs)
      else this.wide.set(key, logs)
    }
    const known = logs.get(name)
    if (known === undefined) logs.set(name, new WideLog(UNSET, state))
    else known.restoreMore(state)
  }

  poolNames(): readonly string[] {
    return POOLS
  }

  /**
   * A pool's blocks, least recently used first, in sections of about `maxWords` words (at most
   * 5,000 blocks): each block's used words after word 0 (the arena's), back to back. The caller
   * lets requests in between sections; an account's block is copied whole within one.
   */
  async *exportPool(pool: string, maxWords: number): AsyncGenerator<BlockSection> {
    const lru = this.pool(pool)
    if (!lru) return
    const arena = this.arena
    const words = (key: string) => {
      const h = lru.peek(key) as number
      return blockWords(arena.mem(h), arena.offset(h)) - 1
    }
    // A use of the key moves its block's last time (or, within the same ms, makes it the newest).
    const watch = (key: string) => {
      const h = lru.peek(key) as number
      const last = this.lastOf(h)
      const newest = newestKey(lru)
      return () => lru.peek(key) !== h || this.lastOf(h) !== last || (newest !== key && newestKey(lru) === key)
    }
    for await (const names of walk(lru, maxWords, 5000, words, watch)) {
      const lengths = names.map(words)
      const out = new Uint32Array(lengths.reduce((a, b) => a + b, 0))
      let at = 0
      names.forEach((key, i) => {
        const h = lru.peek(key) as number
        const o = arena.offset(h)
        out.set(arena.mem(h).subarray(o + 1, o + 1 + (lengths[i] as number)), at)
        at += lengths[i] as number
      })
      yield { names, lengths, words: out }
    }
  }

  /**
   * Blocks from a state file, in the order given (least recently used first: the LRU order
   * comes back). A block that does not fit the store's tables is dropped (`invalid`); past the
   * pool's bound, the least recently used go first.
   */
  importBlocks(
    pool: string,
    names: readonly string[],
    lengths: ArrayLike<number>,
    words: Uint32Array,
  ): { imported: number; invalid: number } {
    const lru = this.pool(pool)
    let imported = 0
    let invalid = 0
    for (let i = 0, at = 0; i < names.length; i++) {
      const length = lengths[i] as number
      const from = at
      at += length
      if (!lru || length < HEADER - 1 || at > words.length) {
        invalid++
        continue
      }
      const h = this.arena.alloc(length + 1)
      const mem = this.arena.mem(h)
      const o = this.arena.offset(h)
      mem.set(words.subarray(from, at), o + 1)
      if (!this.blockFits(h, length + 1)) {
        this.arena.free(h)
        invalid++
        continue
      }
      lru.set(names[i] as string, h)
      imported++
    }
    // admit() expects at most maxAccounts tracked (a restart may have lowered it).
    for (const account of this.tracked.rkeys()) {
      if (this.tracked.size <= this.maxAccounts) break
      this.tracked.delete(account)
    }
    return { imported, invalid }
  }

  /**
   * The entries of one kind, oldest first, `batch` at a time: the caller lets requests in
   * between (an entry set again meanwhile may come twice; the later one counts).
   */
  async *entries(kind: EntryKind, batch: number): AsyncGenerator<StateEntry[]> {
    if (kind === 'claims' || kind === 'counters') {
      yield* kind === 'claims' ? lruEntries(this.claimed, batch) : lruEntries(this.counters, batch)
      return
    }
    const map =
      kind === 'sessions'
        ? this.sessions
        : kind === 'disableWhy'
          ? this.disabledWhy
          : kind === 'disabled'
            ? this.disabledEnforce
            : this.disabledShadow
    let out: StateEntry[] = []
    // A Map's iterator survives changes (it sees entries set after it started).
    for (const [key, value, until] of map.all()) {
      out.push([key, value, until])
      if (out.length < batch) continue
      yield out
      out = []
    }
    if (out.length > 0) yield out
  }

  /** One entry from a state file; an expired one is dropped (false). */
  importEntry(kind: EntryKind, key: string, value: string | number, until: number, now: number): boolean {
    if (!(until > now)) return false
    const ttl = until === Infinity ? 0 : Math.max(1, Math.ceil(until - now))
    switch (kind) {
      case 'disabled':
      case 'shadowDisabled':
        if (typeof value !== 'number') return false
        ;(kind === 'disabled' ? this.disabledEnforce : this.disabledShadow).set(key, until, until, now)
        return true
      case 'disableWhy':
        if (typeof value !== 'string') return false
        this.disabledWhy.set(key, value, until, now)
        return true
      case 'sessions':
        if (typeof value !== 'string') return false
        if (!this.sessions.has(key, now) && this.sessions.size >= this.maxSessions) this.sessions.dropOldest(now)
        this.sessions.set(key, value, until, now)
        return true
      case 'claims':
        this.claimed.set(key, true, { ttl })
        return true
      case 'counters':
        if (typeof value !== 'number') return false
        this.counters.set(key, value, { ttl, noUpdateTTL: true })
        return true
    }
  }

  /** When the account of block `h` was last counted (ms since the epoch). */
  private lastOf(h: number): number {
    const o = this.arena.offset(h)
    return (this.arena.floats64(h)[(o + BASE) >>> 1] as number) + (this.arena.mem(h)[o + LAST] as number)
  }

  private pool(name: string): LRUCache<string, number> | undefined {
    return name === 'tracked' ? this.tracked : name === 'overflow' ? this.overflow : undefined
  }

  /** Block `h`'s `used` words are a well-formed block of this store: sections within it, known keys, a real base. */
  private blockFits(h: number, used: number): boolean {
    const mem = this.arena.mem(h)
    const o = this.arena.offset(h)
    if (!Number.isFinite(this.arena.floats64(h)[(o + BASE) >>> 1])) return false
    let s = o + HEADER
    for (let k = 0; k < (mem[o + SECTIONS] as number); k++) {
      if (!sectionFits(mem, s, o + used, this.keys.size)) return false
      s += sectionWords(mem, s)
    }
    return s === o + used
  }

  async close(): Promise<void> {
    for (const fn of this.closing.splice(0)) await fn()
    this.tracked.clear() // disposes of (frees) every block
    this.overflow.clear()
    this.arena.reset()
  }

  /** The section for `policy` in the account's block, added or carried over as needed, as the cursor. */
  private sectionFor(account: string, h: number, policy: RoutePolicy): Cursor {
    const arena = this.arena
    const key = this.keyOf(policy)
    let mem = arena.mem(h)
    let o = arena.offset(h)
    let s = this.findSection(mem, o, this.keyRoutes[key] as number)
    if (s < 0) {
      s = blockWords(mem, o)
      h = this.resize(account, h, s, 0, newSectionWords(policy))
      mem = arena.mem(h)
      o = arena.offset(h)
      initSection(mem, o + s, key, policy)
      mem[o + SECTIONS] = (mem[o + SECTIONS] as number) + 1
    } else if (sectionKey(mem, o + s) !== key) {
      // A reload changed this route's limits: its history carries over (as in Redis).
      const words = carriedWords(mem, o + s, policy)
      if (this.scratch.length < words) this.scratch = new Uint32Array(2 * words)
      carrySection(mem, o + s, key, policy, this.scratch, 0)
      h = this.resize(account, h, s, sectionWords(mem, o + s), words)
      mem = arena.mem(h)
      o = arena.offset(h)
      mem.set(this.scratch.subarray(0, words), o + s)
    }
    return this.cursor.point(account, h, s)
  }

  /**
   * Move the block's base to `now - MAX_WINDOW_MS` (an offset was about to pass 2^32 ms): what
   * is older is outside every window, now and later, and is clamped to the new base.
   */
  private rebase(h: number, now: number): number {
    const mem = this.arena.mem(h)
    const o = this.arena.offset(h)
    const floats = this.arena.floats64(h)
    const base = now - MAX_WINDOW_MS
    const shift = base - (floats[(o + BASE) >>> 1] as number)
    for (let s = o + HEADER, k = 0; k < (mem[o + SECTIONS] as number); k++, s += sectionWords(mem, s))
      rebaseSection(mem, s, shift)
    floats[(o + BASE) >>> 1] = base
    return base
  }

  /**
   * Resize the range [pos, pos + from) of the account's block to `to` words, keeping what is
   * before it, its first min(from, to) words and what follows it (moved). In place when the
   * block's class allows; otherwise the block moves to a class that fits (growing, or
   * shrinking by a class) and the LRU entry is replaced, which frees the old block. Returns the
   * block's handle, the old one or its replacement.
   */
  private resize(account: string, h: number, pos: number, from: number, to: number): number {
    const arena = this.arena
    const mem = arena.mem(h)
    const o = arena.offset(h)
    const used = blockWords(mem, o)
    const words = used - from + to
    if (words <= arena.capacity(h) && !(to < from && arena.shrinks(h, words))) {
      mem.copyWithin(o + pos + to, o + pos + from, o + used)
      return h
    }
    const moved = arena.alloc(words)
    const into = arena.mem(moved)
    const at = arena.offset(moved)
    into.set(mem.subarray(o + 1, o + pos + Math.min(from, to)), at + 1)
    into.set(mem.subarray(o + pos + from, o + used), at + pos + to)
    this.poolOf(account).set(account, moved)
    return moved
  }

  /**
   * An account's counts on one route at `now`, read without changing anything; null when it has
   * no state there (or state the next observation would replace: a reload changed its shape).
   */
  private countsOf(h: number, policy: RoutePolicy, now: number): number[] | null {
    const key = this.keyOf(policy)
    const mem = this.arena.mem(h)
    const o = this.arena.offset(h)
    const s = this.findSection(mem, o, this.keyRoutes[key] as number)
    // A section of another shape of the route (an override's scaled policy: more history) counts
    // the same: the windows describe their own layout.
    if (s < 0) return null
    const base = this.arena.floats64(h)[(o + BASE) >>> 1] as number
    const counts = new Array<number>(policy.slots).fill(0)
    // A log never holds more than its capacity, so these counts need no clamp.
    countWindows(mem, o + s, policy, Math.max(now - base, mem[o + LAST] as number), counts, false)
    return counts
  }

  private keyOf(policy: RoutePolicy): number {
    let key = this.policyKeys.get(policy)
    if (key !== undefined) return key
    const name = `${policy.name}\n${requestCapacityOf(policy)}\n${distinctCapacityOf(policy)}`
    key = this.keys.get(name)
    if (key === undefined) {
      key = this.keys.size
      this.keys.set(name, key)
      this.keyRoutes.push(this.routeOf(policy.name))
    }
    this.policyKeys.set(policy, key)
    return key
  }

  private routeOf(name: string): number {
    let route = this.routes.get(name)
    if (route === undefined) this.routes.set(name, (route = this.routes.size))
    return route
  }

  /** Where the section of `route` starts in the block at `o` (from the block's start), or -1. */
  private findSection(mem: Uint32Array, o: number, route: number): number {
    for (let s = o + HEADER, k = 0; k < (mem[o + SECTIONS] as number); k++, s += sectionWords(mem, s)) {
      if (this.keyRoutes[sectionKey(mem, s)] === route) return s - o
    }
    return -1
  }

  /** The pool holding `account` (tracked when neither does). */
  private poolOf(account: string): LRUCache<string, number> {
    return this.tracked.has(account) || !this.overflow.has(account) ? this.tracked : this.overflow
  }

  private disabledUntil(account: string, shadow: boolean, now: number): number | null {
    // An enforced disable also shows on shadow routes; a shadow one never blocks enforced routes.
    // Most of the time nobody is disabled: two empty-map checks instead of two lookups.
    const enforced = this.disabledEnforce.size > 0 ? this.disabledEnforce.get(account, now) : undefined
    if (enforced !== undefined) return enforced
    if (shadow && this.disabledShadow.size > 0) {
      const shadowed = this.disabledShadow.get(account, now)
      if (shadowed !== undefined) return shadowed
    }
    return null
  }

  private disable(account: string, until: number, shadow: boolean, now: number, limit: string): void {
    ;(shadow ? this.disabledShadow : this.disabledEnforce).set(account, until, until, now)
    // Why, beside it: which limit, since when (accounts show; kept in the state file).
    this.disabledWhy.set(whyKey(account, shadow), `${now}|${limit}`, until, now)
  }
}

/**
 * A map whose entries end at their own expiry (Infinity: never), bounded by nothing else:
 * what it holds (disables, session bindings) must not be pushed out by newer entries.
 * Expired entries are dropped when read and by a sweep whenever the map has doubled since the
 * last one, so the memory follows what is live.
 */
class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; until: number }>()
  private sweepAt = 1024

  get size(): number {
    return this.entries.size
  }

  get(key: string, now: number): V | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    if (e.until > now) return e.value
    this.entries.delete(key)
    return undefined
  }

  has(key: string, now: number): boolean {
    return this.get(key, now) !== undefined
  }

  /** `now` only times the sweep; the entry lives until `until`. */
  set(key: string, value: V, until: number, now = Date.now()): void {
    this.entries.delete(key) // re-inserted last: insertion order is age order
    this.entries.set(key, { value, until })
    if (this.entries.size >= this.sweepAt) {
      for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k)
      this.sweepAt = Math.max(1024, 2 * this.entries.size)
    }
  }

  delete(key: string): boolean {
    return this.entries.delete(key)
  }

  /** Drop the entry set longest ago (after the expired ones). */
  dropOldest(now: number): void {
    for (const [k, e] of this.entries) {
      this.entries.delete(k)
      if (e.until > now) return
    }
  }

  keys(): IterableIterator<string> {
    return this.entries.keys()
  }

  /** Every entry, expired ones included, oldest first. */
  *all(): Generator<[string, V, number]> {
    for (const [key, e] of this.entries) yield [key, e.value, e.until]
  }
}

/** An LRU's entries with their expiry, least recently used first, `batch` at a time. */
async function* lruEntries<V extends number | true>(
  lru: LRUCache<string, V>,
  batch: number,
): AsyncGenerator<StateEntry[]> {
  const watch = (key: string) => {
    const value = lru.peek(key)
    const newest = newestKey(lru)
    return () => lru.peek(key) !== value || (newest !== key && newestKey(lru) === key)
  }
  for await (const keys of walk(lru, batch, batch, () => 1, watch)) {
    const out: StateEntry[] = []
    for (const key of keys) {
      const value = lru.peek(key)
      if (value === undefined) continue
      const ttl = lru.getRemainingTTL(key)
      out.push([key, value === true ? 1 : value, ttl === Infinity ? Infinity : Date.now() + ttl])
    }
    yield out
  }
}

/**
 * An LRU's keys, least recently used first, in slices of at most `budget` (by `cost`) or
 * `most` keys: the consumer lets requests in after each, and the LRU changes meanwhile. Taking
 * every key at once would hold the event loop (lru-cache's iterator: ~150 ns a key, 15-20 ms for
 * 100,000). Its iterator goes on from the key it stopped at, which is safe unless that very key
 * was used or dropped in between (it could then skip the keys after it): `watch(key)` tells,
 * after the pause, and the walk starts over, skipping the keys it gave. After three such
 * restarts it goes on regardless (keys used during the walk may then be missed: the next
 * snapshot has them; the last one, on close, runs with nothing else happening).
 */
async function* walk<V extends number | true>(
  lru: LRUCache<string, V>,
  budget: number,
  most: number,
  cost: (key: string) => number,
  watch: (key: string) => () => boolean,
): AsyncGenerator<string[]> {
  const seen = new Set<string>()
  for (let walks = 0; ; walks++) {
    let keys: string[] = []
    let spent = 0
    let restart = false
    for (const key of lru.rkeys()) {
      if (seen.has(key)) continue
      seen.add(key)
      keys.push(key)
      spent += cost(key)
      if (spent < budget && keys.length < most) continue
      const moved = watch(key)
      yield keys
      keys = []
      spent = 0
      if (walks < 3 && moved()) {
        restart = true
        break
      }
    }
    if (keys.length > 0) yield keys
    if (!restart) return
  }
}

function newestKey<V extends number | true>(lru: LRUCache<string, V>): string | undefined {
  const first = lru.keys().next()
  return first.done === true ? undefined : first.value
}

/** The policy of a wide log restored from a state file until an observation brings the real one. */
const UNSET = buildPolicy('', [], false)

/** A part's wide log in its key's logs, made or brought to the current policy (a reload). */
const routeKeys = new WeakMap<RoutePolicy, string>()

/** `route:<name>` of a policy, made once. */
function routeKey(policy: RoutePolicy): string {
  let key = routeKeys.get(policy)
  if (key === undefined) routeKeys.set(policy, (key = partKey('route', '', undefined, policy.name)))
  return key
}

function logOf(logs: Map<string, WideLog>, policy: RoutePolicy): WideLog {
  let log = logs.get(policy.name)
  if (log === undefined) logs.set(policy.name, (log = new WideLog(policy)))
  else if (log.policy !== policy) log.adopt(policy)
  return log
}

function sameLimits(a: RoutePolicy, b: RoutePolicy): boolean {
  return (
    a === b ||
    (a.limits.length === b.limits.length &&
      a.limits.every((l, i) => l.id === b.limits[i]?.id && l.label === b.limits[i]?.label))
  )
}

/** The key of a disable's why: its mode and the key it disables. */
function whyKey(account: string, shadow: boolean): string {
  return `${shadow ? 's' : 'e'}:${account}`
}

function stepOf(input: HitInput): EvaluateStep {
  return input.countRequest === false || input.passes
    ? { countRequest: input.countRequest ?? true, passes: input.passes }
    : REQUEST
}

/** Words the block at `o` uses: its header and sections. */
function blockWords(mem: Uint32Array, o: number): number {
  let s = o + HEADER
  for (let k = 0; k < (mem[o + SECTIONS] as number); k++) s += sectionWords(mem, s)
  return s - o
}

/**
 * The section evaluate works on: one per store, pointed at each hit's account and route, and
 * following the block when growing a log moves it.
 */
class Cursor implements Section {
  mem: Uint32Array = new Uint32Array(0)
  at = 0
  private account = ''
  private h = 0
  /** The section's start from the block's start: it stays put when the block moves. */
  private s = 0

  constructor(
    private readonly arena: Arena,
    private readonly resize: (account: string, h: number, pos: number, from: number, to: number) => number,
  ) {}

  /** The block's handle, followed through moves. */
  get handle(): number {
    return this.h
  }

  point(account: string, h: number, s: number): this {
    this.account = account
    this.h = h
    this.s = s
    this.mem = this.arena.mem(h)
    this.at = this.arena.offset(h) + s
    return this
  }

  grow(log: Log, entries: number): void {
    const h = this.resize(
      this.account,
      this.h,
      this.s + logEnd(this.mem, this.at, log),
      0,
      entries * wordsPerEntry(log),
    )
    this.point(this.account, h, this.s)
    grew(this.mem, this.at, log, entries)
  }
}
