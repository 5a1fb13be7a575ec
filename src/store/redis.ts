// Counts shared by every sluice instance, in Redis or Redis Cluster (ioredis).
//
// One observation is one EVALSHA of lua/hit.lua: every limit of the route, the disabled
// state and the record update happen atomically, so instances sharing Redis can never both
// let the N+1-th record through. All keys of an account share the hash tag {account}, so the
// script runs on Cluster too. Redis' own clock (TIME) times the windows, so instances with
// skewed clocks still agree.
//
// When Redis fails, the configured policy applies (fail-open, fail-closed, local), bounded by
// commandTimeout and a circuit breaker so a dead Redis never adds seconds to requests.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { RedisUnavailableError } from '../errors.js'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { partKey, sectionNames, type Part, type Per, type RoutePolicy } from '../engine/policy.js'
import { moreSevere, zeros } from '../engine/evaluate.js'
import { MemoryStore } from './memory.js'
import { beyondKey } from '../engine/store.js'
import { HIT_LUA, READ_LUA } from './scripts.js'
import { accountPressure, listed, parseWhy, policiesOf, routeCounts, TopAccounts, withBeyond } from './ranking.js'
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

/**
 * Keys one listing scans at most (over all Cluster masters). SCAN walks the whole keyspace in
 * small steps (COUNT 1000, never KEYS, so Redis never blocks); past this bound the listing is
 * marked truncated instead of growing without limit.
 */
export const SCAN_BOUND = 1_000_000
/** Accounts read concurrently while listing (one read.lua call each). */
const READ_BATCH = 128
/** `prefix{account}:r:route` / `:d:route`; route names are [A-Za-z0-9_.-]+ (the config schema). */
const ROUTE_KEY = /\}:([rd]):([A-Za-z0-9_.-]+(?:~accounts)?)$/

export type FailurePolicy = 'fail-open' | 'fail-closed' | 'local'
export type RedisState = 'connecting' | 'ok' | 'degraded'

export interface RedisStoreOptions {
  url?: string
  cluster?: string[]
  /** Sentinels of a primary with replicas, and the master name they monitor. */
  sentinels?: string[]
  name?: string
  sentinelPassword?: string
  /** Password of the nodes behind the sentinels. */
  password?: string
  keyPrefix: string
  /** PEM of the CA that signed the server certificate, for rediss:// with a private CA. */
  caFile?: string
  commandTimeoutMs: number
  onError: FailurePolicy
  /** Accounts held by the local fallback. */
  maxAccounts: number
  /** `redis` (default): windows timed by Redis TIME. `local`: by the caller's `now` (tests, replay). */
  clock?: 'redis' | 'local'
  /** Consecutive failures that open the breaker, and how long it stays open. */
  breaker?: { failures: number; cooldownMs: number }
  onStateChange?: (state: RedisState, reason: string) => void
  /** Every failed command (timeout, connection, script error): for the error metric. */
  onCommandError?: (err: Error) => void
}

type HitReply = number[]

/** Observations one hit.lua call takes at most (a turn's batch beyond it goes in several calls). */
export const MAX_BATCH = 100

/** One observation's reply of a hit.lua call, or what failed it (thrown). */
function replyOf(reply: HitReply | Error | undefined): HitReply {
  if (!Array.isArray(reply)) throw reply ?? new Error('hit.lua: no reply')
  return reply
}

interface Pending {
  input: HitInput
  call: Call
  resolve: (r: HitResult | Promise<HitResult>) => void
}

interface WithHit {
  /** hit.lua: a batch of observations, a reply (or an error) for each. */
  sluiceHit(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<(HitReply | Error)[]>
  sluiceRead(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<(number | string)[]>
  sluiceCount(key: string, n: number, ttlMs: number): Promise<number>
}

interface ReadReply {
  now: number
  disabled: DisabledState[]
  /** Per policy: its counts, or null when the account has no state on that route. */
  counts: (number[] | null)[]
}

/** The parts of an observation (one, the whole policy, for a route of account limits only). */
function partsOf(p: RoutePolicy): readonly Part[] {
  return p.parts ?? [{ per: 'account', accounts: false, policy: p }]
}

/**
 * One hit.lua call: the owners whose keys it takes, and its ARGV 6 (their parts as JSON).
 * Whose windows and disables an observation reads: the account always; its network when the
 * observation names one (a network's disable holds on every route); the route when it has
 * per-route limits. On Cluster every owner's keys are in a slot of their own: a call per owner.
 */
interface Call {
  owners: readonly Per[]
  spec: string
}

/** The calls of an observation, built once per (policy, with a network, Cluster), not per request. */
const callsByPolicy = new WeakMap<RoutePolicy, (readonly Call[])[]>()
function callsOf(p: RoutePolicy, network: boolean, cluster: boolean): readonly Call[] {
  let variants = callsByPolicy.get(p)
  if (!variants) callsByPolicy.set(p, (variants = []))
  const i = (network ? 1 : 0) + (cluster ? 2 : 0)
  let calls = variants[i]
  if (calls === undefined) {
    const owners: Per[] = ['account']
    if (network) owners.push('network')
    if (p.perRoute) owners.push('route')
    const groups = cluster ? owners.map((o) => [o]) : [owners]
    variants[i] = calls = groups.map((group) => ({ owners: group, spec: specOf(p, group) }))
  }
  return calls
}

function specOf(p: RoutePolicy, owners: readonly Per[]): string {
  const parts = partsOf(p).filter((part) => owners.includes(part.per))
  const out: number[] = [owners.length, parts.length]
  for (const part of parts) {
    const q = part.policy
    out.push(owners.indexOf(part.per) + 1, part.accounts ? 1 : 0)
    out.push(q.requestCapacity, q.distinctCapacity, q.longestDistinctWindowMs, q.longestRequestWindowMs)
    out.push(q.limits.length)
    for (const l of q.limits) out.push(l.kind === 'requests' ? 0 : 1, l.windowMs, l.max, l.severity, l.index)
  }
  return JSON.stringify(out)
}

export { RedisUnavailableError }

export class RedisStore implements Store {
  readonly kind = 'redis'
  readonly client: (Redis | Cluster) & WithHit
  private readonly options: RedisStoreOptions
  private readonly local: MemoryStore | null
  private readonly breaker: { failures: number; cooldownMs: number }
  private failures = 0
  private openUntil = 0
  private corked = false
  /** Observations of this event-loop turn, not yet sent: one hit.lua call at the turn's end. */
  private batch: Pending[] = []
  private currentState: RedisState = 'connecting'
  /** Counters for metrics: observations answered by the failure policy, and Redis errors. */
  readonly stats = { errors: 0, fallbacks: 0 }

  constructor(options: RedisStoreOptions) {
    this.options = options
    this.breaker = options.breaker ?? { failures: 3, cooldownMs: 1000 }
    this.local = options.onError === 'local' ? new MemoryStore({ maxAccounts: options.maxAccounts }) : null
    const common: RedisOptions = {
      commandTimeout: options.commandTimeoutMs,
      // Fail at once while disconnected instead of queueing requests behind a dead server.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      connectTimeout: 2000,
    }
    const tls = options.caFile ? { ca: readFileSync(options.caFile) } : {}
    if (options.cluster && options.cluster.length > 0) {
      const nodes = options.cluster.map((u) => {
        const p = new URL(u)
        return { host: p.hostname, port: Number(p.port || 6379) }
      })
      const first = new URL(options.cluster[0] as string)
      this.client = new Cluster(nodes, {
        enableOfflineQueue: false,
        clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        redisOptions: {
          ...common,
          ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
          ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
          ...(first.protocol === 'rediss:' ? { tls } : {}),
        },
      }) as Cluster & WithHit
    } else if (options.sentinels && options.sentinels.length > 0) {
      const sentinels = options.sentinels.map((u) => {
        const p = new URL(u)
        return { host: p.hostname, port: Number(p.port || 26379) }
      })
      const secure = options.sentinels[0]?.startsWith('rediss:') ?? false
      this.client = new Redis({
        ...common,
        sentinels,
        name: options.name ?? 'mymaster',
        role: 'master',
        ...(options.sentinelPassword !== undefined ? { sentinelPassword: options.sentinelPassword } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
        ...(secure ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        // Sentinels announce a failover (+switch-master): follow it at once, and notice a
        // primary that hangs instead of dying.
        failoverDetector: true,
        sentinelRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        // A sentinel that is down is retried slowly (ioredis prints each failed attempt of the
        // failover detector's own connections to stderr; see docs/redis.md).
        sentinelReconnectStrategy: (times) => Math.min(1000 * times, 30_000),
        // A demoted primary answers writes with READONLY: reconnect (the sentinels name the new
        // primary) instead of sending it write after write; the failed call is answered by the
        // failure policy.
        reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
      }) as Redis & WithHit
    } else {
      const url = options.url ?? 'redis://127.0.0.1:6379'
      this.client = new Redis(url, { ...common, ...(url.startsWith('rediss:') ? { tls } : {}) }) as Redis & WithHit
    }
    this.client.defineCommand('sluiceHit', { lua: HIT_LUA })
    this.client.defineCommand('sluiceRead', { lua: READ_LUA })
    // INCRBY, and the lifetime set by the first add only.
    this.client.defineCommand('sluiceCount', {
      numberOfKeys: 1,
      lua: "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) if v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return v",
    })
    this.client.on('ready', () => this.setState('ok', 'connected'))
    this.client.on('error', (err: Error) => this.setState('degraded', err.message))
    this.client.on('close', () => this.setState('degraded', 'connection closed'))
  }

  get state(): RedisState {
    return this.currentState
  }

  get policy(): FailurePolicy {
    return this.options.onError
  }

  health(): StoreHealth {
    return { type: 'redis', state: this.currentState, policy: this.options.onError }
  }

  /** Resolves once connected (or rejects after `timeoutMs`): for start-up checks and tests. */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.client.status === 'ready') return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis not ready after ${timeoutMs}ms`)), timeoutMs)
      this.client.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  async hit(input: HitInput): Promise<HitResult> {
    if (!this.available()) return this.fallback(input)
    const cluster = this.client instanceof Cluster
    const calls = callsOf(input.policy, input.network !== undefined, cluster)
    if (!cluster && calls.length === 1) {
      const answer = this.enqueue(input, calls[0] as Call)
      this.coalesceWrites() // after enqueue: the batch is sent before the socket is uncorked
      return answer
    }
    try {
      let result: HitResult | null = null
      for (const call of calls) {
        const { keys, args } = this.encode([{ input, call, earlier: before(result) }])
        const [reply] = await this.client.sluiceHit(keys.length, keys, args)
        result = merge(result, this.parse(replyOf(reply), input, call.owners))
      }
      this.succeeded()
      return result as HitResult
    } catch (err) {
      this.failed(err as Error)
      return this.fallback(input)
    }
  }

  /**
   * Observations made in the same event-loop turn go to Redis as one hit.lua call, sent when
   * the turn's I/O callbacks have run (setImmediate), or at MAX_BATCH. The script makes them
   * one after another, each exactly as a call of its own would, and answers each (an
   * observation whose keys are of the wrong type fails alone; any other error fails the call,
   * and every observation of it gets the failure policy); what a call
   * costs Redis whatever it carries (the command, starting the script, TIME, decoding the
   * route's spec) is paid once per batch. Standalone and Sentinel only: on Cluster a call's
   * keys must share a slot.
   */
  private enqueue(input: HitInput, call: Call): Promise<HitResult> {
    return new Promise<HitResult>((resolve) => {
      this.batch.push({ input, call, resolve })
      if (this.batch.length === 1) setImmediate(() => this.flush())
      else if (this.batch.length >= MAX_BATCH) this.flush()
    })
  }

  private flush(): void {
    const batch = this.batch
    if (batch.length === 0) return
    this.batch = []
    // Whatever goes wrong, every observation of the batch is answered (by the failure policy
    // at worst), and nothing is thrown out of the setImmediate that called this.
    let sent: Promise<(HitReply | Error)[]>
    try {
      const { keys, args } = this.encode(batch)
      sent = this.client.sluiceHit(keys.length, keys, args)
    } catch (err) {
      sent = Promise.reject(err as Error)
    }
    sent.then(
      (replies) => {
        let ok = false
        batch.forEach((p, i) => {
          try {
            p.resolve(this.parse(replyOf(replies[i]), p.input, p.call.owners))
            ok = true
          } catch (err) {
            this.failed(err as Error)
            p.resolve(this.fallback(p.input))
          }
        })
        if (ok) this.succeeded()
      },
      (err: Error) => {
        for (const p of batch) {
          this.failed(err)
          p.resolve(this.fallback(p.input))
        }
      },
    )
  }

  /**
   * hit.lua's KEYS and ARGV for a batch of observations: their count, then per observation
   * how many keys and arguments are its own, then those arguments; the keys end to end.
   */
  private encode(batch: readonly { input: HitInput; call: Call; earlier?: string }[]): {
    keys: string[]
    args: (string | number)[]
  } {
    const keys: string[] = []
    const args: (string | number)[] = [batch.length]
    for (const { input, call, earlier } of batch) {
      const own = this.hitKeys(input, call.owners)
      const more = this.args(input, call, earlier)
      args.push(own.length, more.length)
      for (const k of own) keys.push(k)
      for (const a of more) args.push(a)
    }
    return { keys, args }
  }

  /** hit.lua's KEYS for some owners of an observation: their disables, then their parts' windows. */
  private hitKeys(input: HitInput, owners: readonly Per[]): string[] {
    const { account, network, policy } = input
    const base = (per: Per) => `${this.options.keyPrefix}{${partKey(per, account, network, policy.name)}}`
    const keys = owners.flatMap((o) => [`${base(o)}:x`, `${base(o)}:xs`])
    for (const part of partsOf(policy)) {
      if (!owners.includes(part.per)) continue
      keys.push(`${base(part.per)}:r:${part.policy.name}`, `${base(part.per)}:d:${part.policy.name}`)
    }
    return keys
  }

  /**
   * Hits of requests that arrive in the same event-loop turn leave in one write: the socket is
   * corked at the first and uncorked once the turn's I/O callbacks have run (setImmediate). A
   * write syscall per observation was the largest single cost of the Redis store in the proxy
   * (~8 µs of ~35); ioredis' own auto-pipelining batches too, but its pipeline objects cost
   * more than they saved (measured). Standalone Redis only: a Cluster client has a socket per node.
   */
  private coalesceWrites(): void {
    if (this.corked || this.client instanceof Cluster) return
    const stream = (this.client as Redis & { stream?: NodeJS.WritableStream & { cork(): void; uncork(): void } }).stream
    if (!stream || typeof stream.cork !== 'function') return
    stream.cork()
    this.corked = true
    setImmediate(() => {
      this.corked = false
      stream.uncork()
    })
  }

  async disabled(account: string, now: number): Promise<DisabledState[]> {
    const [enforce, shadow] = this.keys(account, '').slice(2) as [string, string]
    const values = await this.client.mget(enforce, shadow, `${enforce}w`, `${shadow}w`)
    const out: DisabledState[] = []
    for (const i of [0, 1]) {
      const v = values[i]
      if (v === null || v === undefined) continue
      const until = v === 'forever' ? Infinity : Number(v)
      if (until > now) out.push({ account, until, shadow: i === 1, ...parseWhy(values[i + 2]) })
    }
    return out
  }

  async disableManually(account: string, until: number, now: number): Promise<void> {
    const [, , enforce] = this.keys(account, '')
    if (until === Infinity) await this.client.set(enforce as string, 'forever')
    else await this.client.set(enforce as string, String(until), 'PX', Math.max(1, Math.ceil(until - now)))
    this.local?.disableManually(account, until, now)
  }

  async unlock(account: string): Promise<boolean> {
    const [, , enforce, shadow] = this.keys(account, '') as [string, string, string, string]
    const removed = await this.client.del(enforce, shadow, `${enforce}w`, `${shadow}w`)
    const local = this.local?.unlock(account) ?? false
    return removed > 0 || local
  }

  async reset(account: string, scope: ResetScope): Promise<boolean> {
    const routes = scope.route === undefined ? scope.policies.map((p) => p.name) : sectionNames(scope.route)
    const [, , enforce, shadow] = this.keys(account, '')
    // Every key of the account shares its hash tag: one DEL, one slot, atomic on Cluster too.
    const keys = [...routes.flatMap((r) => this.keys(account, r).slice(0, 2)), enforce as string, shadow as string]
    keys.push(`${enforce}w`, `${shadow}w`)
    const removed = await this.client.del(...keys)
    const local = this.local?.reset(account, scope) ?? false
    return removed > 0 || local
  }

  async account(account: string, policies: readonly RoutePolicy[], now: number): Promise<AccountView | null> {
    const read = await this.read(account, policies, now)
    // What shadow served past the limits (beyondKey), beside the windows.
    const beyond = await Promise.all(
      policies.map((p, k) => (read.counts[k] ? this.count(beyondKey(account, p.name), 0, 0) : 0)),
    )
    read.counts = read.counts.map((c, k) => (c ? withBeyond(c, policies[k] as RoutePolicy, beyond[k] ?? 0) : c))
    const view = viewOf(account, read, policies)
    // The disables with what made them (kept beside them: disabled()).
    if (view.disabled.length > 0) view.disabled = await this.disabled(account, read.now)
    return view.routes.length === 0 && view.disabled.length === 0 ? null : view
  }

  /**
   * SCAN (per Cluster master) for the accounts' keys, then one read.lua per account, a batch
   * at a time. The cost is proportional to the whole keyspace under the prefix — admin work,
   * bounded by SCAN_BOUND. A sorted set of accounts per route kept up to date by hit.lua would
   * answer faster, but it would put every account of a route in one key: one Cluster slot,
   * which a script keyed by {account} cannot touch, and one more write on every request.
   */
  async accounts(query: AccountsQuery): Promise<AccountsPage> {
    const policies = policiesOf(query)
    const { found, truncated } = await this.scanAccounts(query.route, query.per)
    const top = new TopAccounts<ReadReply>(query.limit)
    let now = query.now
    let scanned = 0
    const names = [...found]
    for (let i = 0; i < names.length; i += READ_BATCH) {
      const batch = names.slice(i, i + READ_BATCH)
      const reads = await Promise.all(batch.map((account) => this.read(account, policies, query.now)))
      reads.forEach((read, j) => {
        now = read.now
        const { found, ratio, count } = accountPressure(policies, (_policy, k) => read.counts[k], query.by)
        if (!found && !(read.disabled.length > 0 && query.route === undefined)) return
        scanned++
        top.offer({ account: batch[j] as string, ratio, count, data: read })
      })
    }
    const accounts = top.result().map((c) => ({ ...viewOf(c.account, c.data, policies), pressure: c.ratio }))
    return { now, accounts, scanned, truncated }
  }

  /** Account ids with keys under the prefix (only those with state on `route`, when given). */
  private async scanAccounts(
    route: string | undefined,
    per: Per | undefined,
  ): Promise<{ found: Set<string>; truncated: boolean }> {
    return this.scanKeys(
      '*',
      (key) => accountOfKey(key, route),
      (account) => listed(account, per),
      () => false,
    )
  }

  /**
   * Account ids of the keys under the prefix matching `{<glob>` (SCAN per Cluster master, COUNT
   * 1000), those `accept` takes, until SCAN_BOUND keys or `enough`: then marked truncated.
   */
  private async scanKeys(
    glob: string,
    accountOf: (key: string) => string | null,
    accept: (account: string) => boolean,
    enough: (found: Set<string>) => boolean,
  ): Promise<{ found: Set<string>; truncated: boolean }> {
    const prefix = this.options.keyPrefix
    const pattern = `${globEscape(prefix)}{${glob}`
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
    const found = new Set<string>()
    let scanned = 0
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        scanned += keys.length
        for (const key of keys) {
          const account = accountOf(key.slice(prefix.length))
          if (account !== null && accept(account)) found.add(account)
        }
        if (scanned >= SCAN_BOUND || enough(found)) return { found, truncated: true }
      } while (cursor !== '0')
    }
    return { found, truncated: false }
  }

  private async read(account: string, policies: readonly RoutePolicy[], now: number): Promise<ReadReply> {
    const [, , enforce, shadow] = this.keys(account, '')
    const keys: string[] = [enforce as string, shadow as string]
    const args: (string | number)[] = [this.options.clock === 'local' ? now : 0, policies.length]
    for (const p of policies) {
      keys.push(...this.keys(account, p.name).slice(0, 2))
      args.push(p.requestCapacity, p.distinctCapacity, p.limits.length)
      for (const l of p.limits) args.push(l.kind === 'requests' ? 0 : 1, l.windowMs)
    }
    const reply = (await this.client.sluiceRead(keys.length, ...keys, ...args)).map(Number)
    const at = reply[0] as number
    const disabled: DisabledState[] = []
    const until = (v: number) => (v === -2 ? Infinity : v)
    if (reply[1] !== -1) disabled.push({ account, until: until(reply[1] as number), shadow: false })
    if (reply[2] !== -1) disabled.push({ account, until: until(reply[2] as number), shadow: true })
    const counts: (number[] | null)[] = []
    let i = 3
    for (const p of policies) {
      const present = reply[i] === 1
      const c = new Array<number>(p.slots).fill(0)
      p.limits.forEach((l, k) => (c[l.index] = reply[i + 1 + k] as number))
      counts.push(present ? c : null)
      i += 1 + p.limits.length
    }
    return { now: at, disabled, counts }
  }

  // One-time tokens and session bindings are plain keys (no hash tag: one key per command).
  // When Redis cannot answer, the local fallback answers under `local`; otherwise a claim is
  // refused (a solution cannot be checked for replay) and a session counts on its own.
  async claimOnce(token: string, ttlMs: number): Promise<boolean> {
    try {
      if (!this.available()) throw new RedisUnavailableError('redis unavailable')
      const ok = await this.client.set(
        `${this.options.keyPrefix}once:${token}`,
        '1',
        'PX',
        Math.max(1, Math.ceil(ttlMs)),
        'NX',
      )
      return ok === 'OK'
    } catch (err) {
      this.noteError(err)
      return this.local?.claimOnce(token, ttlMs) ?? false
    }
  }

  /**
   * A random key every instance on this Redis shares (created by the first to ask): what keys
   * Basic password fingerprints when the config names no secret, so that all instances count
   * a user under one account.
   */
  async sharedKey(name: string): Promise<string | undefined> {
    try {
      // Asked at start-up, while the connection may still be coming up (commands do not queue).
      if (this.client.status !== 'ready') {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000)
          this.client.once('ready', () => {
            clearTimeout(timer)
            resolve()
          })
        })
      }
      const key = `${this.options.keyPrefix}key:${name}`
      await this.client.set(key, randomBytes(32).toString('base64'), 'NX')
      return (await this.client.get(key)) ?? undefined
    } catch (err) {
      this.noteError(err)
      return undefined
    }
  }

  async count(key: string, n: number, ttlMs: number): Promise<number> {
    try {
      if (!this.available()) throw new RedisUnavailableError('redis unavailable')
      const full = `${this.options.keyPrefix}count:${key}`
      if (n === 0) return Number((await this.client.get(full)) ?? 0)
      return await this.client.sluiceCount(full, n, Math.max(1, Math.ceil(ttlMs)))
    } catch (err) {
      this.noteError(err)
      // Without Redis a pass cannot be checked against what it already bought: spent.
      return this.local?.count(key, n, ttlMs) ?? Infinity
    }
  }

  async bindSession(session: string, account: string, ttlMs: number): Promise<void> {
    this.local?.bindSession(session, account, ttlMs)
    try {
      if (!this.available()) throw new RedisUnavailableError('redis unavailable')
      await this.client.set(this.sessionKey(session), account, 'PX', Math.max(1, Math.ceil(ttlMs)))
    } catch (err) {
      this.noteError(err)
    }
  }

  async sessionAccount(session: string): Promise<string | undefined> {
    try {
      if (!this.available()) throw new RedisUnavailableError('redis unavailable')
      return (await this.client.get(this.sessionKey(session))) ?? undefined
    } catch (err) {
      this.noteError(err)
      return this.local?.sessionAccount(session)
    }
  }

  // Decisions under their reference (src/admin/decisions.ts): a plain key with a TTL, written
  // best effort (a block is answered whether or not Redis took it; the audit trail has it too).
  async saveDecision(reference: string, json: string, ttlMs: number): Promise<void> {
    try {
      if (!this.available()) return
      await this.client.set(`${this.options.keyPrefix}ref:${reference}`, json, 'PX', Math.max(1, Math.ceil(ttlMs)))
    } catch (err) {
      this.noteError(err)
    }
  }

  async loadDecision(reference: string): Promise<string | undefined> {
    if (!this.available()) throw new RedisUnavailableError('redis unavailable')
    return (await this.client.get(`${this.options.keyPrefix}ref:${reference}`)) ?? undefined
  }

  /** Account ids containing `text` (any case): SCAN … MATCH <prefix>{*text*}*, bounded like listing. */
  async findAccounts(text: string, limit: number): Promise<AccountsFound> {
    const needle = text.toLowerCase()
    // Redis globs have no case-insensitive mode: each letter as a class of both cases.
    const glob = [...globEscape(text)]
      .map((c) => (c.toLowerCase() !== c.toUpperCase() ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c))
      .join('')
    const { found, truncated } = await this.scanKeys(
      `*${glob}*`,
      (key) => accountOfKey(key, undefined),
      (account) => account.toLowerCase().includes(needle),
      (found) => found.size > limit,
    )
    return foundAccounts(found, limit, truncated)
  }

  async close(): Promise<void> {
    await this.local?.close()
    // QUIT waits for an answer; a server going away (a failover, a dead sentinel) must not hold
    // a shutdown: a second at most, then the sockets are closed.
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))
    await Promise.race([this.client.quit().catch(() => undefined), late])
    clearTimeout(timer)
    this.client.disconnect()
  }

  private sessionKey(session: string): string {
    return `${this.options.keyPrefix}session:${session}`
  }

  private noteError(err: unknown): void {
    if (!(err instanceof RedisUnavailableError)) this.failed(err as Error)
  }

  /** Keys of one account share the hash tag {account}: one Cluster slot, one script call. */
  keys(account: string, route: string): string[] {
    const base = `${this.options.keyPrefix}{${account}}`
    return [`${base}:r:${route}`, `${base}:d:${route}`, `${base}:x`, `${base}:xs`]
  }

  private args(input: HitInput, call: Call, earlier = ''): (string | number)[] {
    const args: (string | number)[] = [
      this.options.clock === 'local' ? input.now : 0,
      input.shadow ? 1 : 0,
      Number.isFinite(input.disableForMs) ? input.disableForMs : -1,
      input.countRequest === false ? 0 : 1,
      input.passes && input.passes.length > 0 ? `,${input.passes.join(',')},` : '',
      call.spec,
      input.account,
      earlier,
      input.policy.name,
    ]
    for (const r of input.records) args.push(r)
    return args
  }

  private parse(reply: HitReply, input: HitInput, owners: readonly Per[]): HitResult {
    const [, worstIndex, blocked, disabledUntil, disabledNow, decidedBy, fresh, ...flat] = reply.map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      ...number[],
    ]
    const { policy } = input
    const limit = worstIndex >= 0 ? (policy.limits[worstIndex] ?? null) : null
    const until = (v: number) => (v === -1 ? null : v === -2 ? Infinity : v)
    const counts = zeros(policy.slots)
    let i = 0
    for (const part of partsOf(policy)) {
      if (!owners.includes(part.per)) continue
      for (const l of part.policy.limits) counts[l.index] = flat[i++] ?? 0
    }
    const result: HitResult = {
      limit,
      action: limit?.action ?? null,
      blocked: blocked === 1,
      counts,
      fresh,
      disabledUntil: until(disabledUntil),
      disabledNowUntil: until(disabledNow),
    }
    const owner = owners[decidedBy - 1]
    if (owner !== undefined && owner !== 'account')
      result.key = partKey(owner, input.account, input.network, policy.name)
    return result
  }

  private available(): boolean {
    if (this.client.status !== 'ready') {
      this.setState('degraded', `not connected (${this.client.status})`)
      return false
    }
    // Breaker open: skip Redis until the cooldown ends, then let requests probe again.
    return Date.now() >= this.openUntil
  }

  private succeeded(): void {
    this.failures = 0
    if (this.currentState !== 'ok') this.setState('ok', 'recovered')
  }

  private failed(err: Error): void {
    this.stats.errors++
    this.options.onCommandError?.(err)
    this.failures++
    if (this.failures >= this.breaker.failures) {
      this.openUntil = Date.now() + this.breaker.cooldownMs
      this.setState('degraded', `circuit open after ${this.failures} failures: ${err.message}`)
    }
  }

  private fallback(input: HitInput): HitResult | Promise<HitResult> {
    this.stats.fallbacks++
    switch (this.options.onError) {
      case 'local':
        return { ...(this.local as MemoryStore).hit(input), degraded: 'local' }
      case 'fail-closed':
        return {
          limit: null,
          action: null,
          blocked: true,
          counts: input.policy.limits.map(() => 0),
          fresh: 0,
          disabledUntil: null,
          disabledNowUntil: null,
          degraded: 'fail-closed',
        }
      default:
        return {
          limit: null,
          action: null,
          blocked: false,
          counts: input.policy.limits.map(() => 0),
          fresh: 0,
          disabledUntil: null,
          disabledNowUntil: null,
          degraded: 'fail-open',
        }
    }
  }

  private setState(state: RedisState, reason: string): void {
    // 'connecting' → 'degraded' at start-up is only news once connecting has failed.
    if (
      state === this.currentState ||
      (state === 'degraded' && this.currentState === 'connecting' && reason.startsWith('not connected'))
    )
      return
    this.currentState = state
    this.options.onStateChange?.(state, reason)
  }
}

/** hit.lua's ARGV 8: what the calls before this one decided (Cluster). */
function before(r: HitResult | null): string {
  if (r === null) return ''
  if (r.disabledUntil !== null) return 'd'
  return r.blocked && r.limit ? `${r.limit.severity},${r.limit.index}` : ''
}

/**
 * The decision of an observation made of several calls (Redis Cluster: one per owner): every
 * count; the first disable; otherwise the most severe crossed limit of any call.
 */
function merge(a: HitResult | null, b: HitResult): HitResult {
  if (a === null) return b
  let base = a
  if (a.disabledUntil === null && (b.disabledUntil !== null || (b.limit !== null && moreSevere(b.limit, a.limit))))
    base = b
  return {
    ...base,
    counts: a.counts.map((c, i) => Math.max(c, b.counts[i] ?? 0)),
    blocked: a.blocked || b.blocked,
    disabledNowUntil: a.disabledNowUntil ?? b.disabledNowUntil,
  }
}

/** An account's view from one read.lua reply: the routes it has counts on, and its disables. */
function viewOf(account: string, read: ReadReply, policies: readonly RoutePolicy[]): AccountView {
  const routes = policies.flatMap((p, k) => {
    const counts = read.counts[k]
    return counts ? [routeCounts(p, counts)] : []
  })
  return { account, now: read.now, routes, disabled: read.disabled }
}

function foundAccounts(found: Set<string>, limit: number, truncated: boolean): AccountsFound {
  const accounts = [...found].sort()
  return { accounts: accounts.slice(0, limit), truncated: truncated || accounts.length > limit }
}

/** Redis glob: a key prefix is literal text. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/**
 * The account of a key (the part after the prefix: `{account}:x`, `{account}:xs`,
 * `{account}:r:route`, `{account}:d:route`); null for other keys, or for route keys of another
 * route than `route`. Parsed from the end, where the layout is fixed: an account id may itself
 * contain braces and colons.
 */
export function accountOfKey(rest: string, route: string | undefined): string | null {
  if (!rest.startsWith('{')) return null
  if (rest.endsWith('}:x')) return route === undefined ? rest.slice(1, -3) : null
  if (rest.endsWith('}:xs')) return route === undefined ? rest.slice(1, -4) : null
  const m = ROUTE_KEY.exec(rest)
  if (!m || (route !== undefined && !sectionNames(route).includes(m[2] as string))) return null
  return rest.slice(1, m.index)
}
