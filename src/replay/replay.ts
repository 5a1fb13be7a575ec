// `sluice replay`: access-log lines through the real engine, as if sluice had been in front.
//
// Every line goes the proxy's way, through the proxy's own `classify` (src/exchange/): the
// canonical target (a path the proxy would refuse is counted as a 400), the route (HEAD as GET),
// the query as clamped, the request-side records; then it is observed twice:
//  - enforce: the configured limits, in enforce mode whatever `mode` says: what would have
//    been served, throttled, challenged, disabled;
//  - measure: the same windows with every limit turned into a never-blocking `log` limit and a
//    high cap, so each account's unconstrained count per window is known (the distribution
//    `sluice suggest` and the report's charts are made of).
// The log line's time is `now`; the store clamps time per account when lines are out of order.
//
// Access logs carry no bodies: on a route whose records come from the request or response
// body, replay counts requests only, and says so (RouteStats.requestsOnly, a warning).
import type { CompiledConfig, CompiledRoute } from '../config/compile.js'
import { Engine, type Decision, type DecisionKind, type ObserveStep } from '../engine/engine.js'
import { buildPolicy, formatMs, type Limit, type RoutePolicy } from '../engine/policy.js'
import { canonicalOptions, type ClassifyContext } from '../exchange/classify.js'
import { MemoryStore } from '../store/memory.js'
import type { FormatName, JsonFields, LogEntry } from './formats.js'
import { openLog, type LogInput } from './input.js'
import { ByteLines, eachLineOf } from './lines.js'
import { LineCounter, LineReader, Networks, Sniffer, type ReadOptions, type Sink } from './read.js'
import type { Batch } from './batch.js'
import { replayThreaded, type WorkerPool } from './threads.js'

export interface ReplayOptions extends ReadOptions {
  format?: FormatName | 'auto'
  /** See AccountField in formats.ts. Default: `user` for combined, the JSON defaults for json. */
  account?: string
  /** JSON field names, each overriding the defaults' candidates. */
  fields?: Partial<Record<keyof JsonFields, string>>
  /** Accounts the stores hold; default config.store.maxAccounts. */
  maxAccounts?: number
  /** Blocked requests kept for the output (the total is always counted). Default 50. */
  keepBlocked?: number
  /** Accounts listed per route and per limit. Default 20. */
  top?: number
  /** Bad lines listed (the total is always counted). Default 5. */
  keepBad?: number
  /**
   * Highest per-window count measured exactly, per route: default max(1000, 10 × the route's
   * largest limit). Windows are scanned per request, so this bounds the cost of an enumerator.
   */
  measureCap?: number
  /**
   * Threads that read the logs: 1 reads them here; N > 1 parses and classifies lines in N - 1
   * workers while this thread runs the engine in log order (the result is the same). `auto`
   * (the default) is 1 (threadsFor says why).
   */
  threads?: number | 'auto'
  onDecision?: (event: ReplayedRequest) => void
  onProgress?: (progress: Progress) => void
}

export interface LineRef {
  file: string
  line: number
}

export interface ReplayedRequest {
  at: LineRef
  entry: LogEntry
  account: string
  route: CompiledRoute
  records: readonly string[]
  decision: Decision
}

export interface Progress {
  file: string
  lines: number
  bytesRead: number
  bytesTotal: number | undefined
}

export interface BadLine extends LineRef {
  reason: string
}

export interface BlockedRequest extends LineRef {
  time: number
  account: string
  route: string
  method: string
  target: string
  kind: DecisionKind
  limit: string | null
  counts: number[]
}

export interface AccountStats {
  account: string
  requests: number
  blocked: number
  first: number
  last: number
  /** Per limit: the highest count in any window of that limit's length, unconstrained (measure pass). */
  max: number[]
  /** Per limit: the first time the enforce pass counted past the limit, or -1. */
  crossedAt: number[]
}

export interface Crossing {
  account: string
  time: number
  at: LineRef
  /** All of the route's counts at that request (enforce pass), in limit order. */
  counts: number[]
  decision: DecisionKind
}

export interface LimitStats {
  limit: Limit
  /** Accounts whose count went past this limit (enforce pass). */
  accounts: number
  /** Requests where this limit was the one that decided. */
  decided: number
  /** The first crossings, in log order. */
  crossings: Crossing[]
}

export interface RouteStats {
  route: CompiledRoute
  requests: number
  blocked: number
  decisions: Record<DecisionKind, number>
  limits: LimitStats[]
  /** Measured counts are exact up to this; above it they read as cap + 1. */
  measureCap: number
  accounts: Map<string, AccountStats>
  /** Client networks (`net:…`) and the route (`route:…`), for per-network and per-route limits. */
  owners: Map<string, AccountStats>
  /**
   * The route reads its records from a body, which access logs do not carry: its distinct
   * counts are unknown (shown as such, never as 0), only its request limits are replayed.
   */
  requestsOnly: 'body' | 'response' | null
}

export interface FileSummary {
  name: string
  format: FormatName
  gzip: boolean
  lines: number
  /** Set when the file could not be read to its end (e.g. a truncated gzip). */
  error?: string
}

export interface ReplayResult {
  config: { mode: 'enforce'; configuredMode: 'enforce' | 'shadow'; disableForMs: number; maxAccounts: number }
  files: FileSummary[]
  lines: number
  /** Lines that were requests. */
  requests: number
  /** Well-formed lines without a request (other sluice log events, blank lines). */
  ignored: number
  bad: { count: number; first: BadLine[] }
  /** Paths the proxy would refuse with 400 (ambiguous encodings, dot segments above the root …). */
  rejected: { count: number; reasons: Record<string, number> }
  /** Requests to no sensitive route: forwarded uncounted. */
  passedThrough: number
  from: number | null
  to: number | null
  routes: RouteStats[]
  blocked: { count: number; first: BlockedRequest[] }
  /** What the log could not tell (body records, a log shorter than a window), one line each. */
  warnings: string[]
  elapsedMs: number
}

const KINDS: DecisionKind[] = ['allow', 'log', 'throttle', 'challenge', 'disable', 'disabled', 'unavailable']

export async function replayLogs(
  config: CompiledConfig,
  files: readonly string[],
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const started = performance.now()
  const replay = new Replay(config, options)
  const workers = threadsFor(options.threads) - 1
  if (workers > 0) await replayThreaded(replay, config, files, options, workers)
  else for (const name of files) await readFile(replay, name, options, undefined)
  const result = replay.result
  result.warnings.push(...shortLogWarnings(result))
  result.elapsedMs = performance.now() - started
  return result
}

/**
 * Threads a replay uses. `auto` is one: the main thread, which runs the windows in log order,
 * is the bottleneck, and a worker parsing lines beside it did not make a replay faster
 * (measured 2026-12-07, 1 M gzipped combined lines on 2 cores: 204k lines/s on one thread,
 * 157–210k on two, with 15 % more CPU). `--threads N` still runs N − 1 workers, same result.
 */
export function threadsFor(threads: ReplayOptions['threads']): number {
  return threads === undefined || threads === 'auto' ? 1 : Math.max(1, Math.floor(threads))
}

/**
 * The second half of a replay: requests in log order through the engine (enforce and measure),
 * counted per route and account. Lines arrive one by one (Sink, single-threaded) or as batches
 * from workers (mergeBatch), with the same result.
 */
export class Replay implements Sink {
  readonly result: ReplayResult
  readonly classifyContext: ClassifyContext
  /** The file being read and where its lines start (batches number lines from their own start). */
  file: FileSummary = { name: '', format: 'combined', gzip: false, lines: 0 }
  lineBase = 0
  private readonly enforce: Engine
  private readonly measure: Engine
  private readonly enforcePolicies: RoutePolicy[] = []
  private readonly measurePolicies: RoutePolicy[] = []
  private readonly stats: RouteStats[] = []
  private readonly routes: readonly CompiledRoute[]
  private readonly keepBlocked: number
  private readonly keepBad: number
  private readonly top: number
  private readonly onDecision: ReplayOptions['onDecision']
  private readonly netUsed: boolean
  private readonly networks: Networks
  private readonly anyNetworks = new Networks()
  /** The observation's step, reused: `client` is the current request's, for overflowKey. */
  private readonly step: ObserveStep
  private client: string | undefined

  constructor(config: CompiledConfig, options: ReplayOptions) {
    const maxAccounts = options.maxAccounts ?? config.store.maxAccounts
    this.keepBlocked = options.keepBlocked ?? 50
    this.keepBad = options.keepBad ?? 5
    this.top = options.top ?? 20
    this.onDecision = options.onDecision
    this.routes = config.routes
    // Enforce regardless of config.mode and of per-route shadow: replay answers "what would have happened".
    this.enforce = new Engine(new MemoryStore({ maxAccounts }), {
      disableForMs: config.actions.disableForMs,
      shadow: false,
    })
    this.measure = new Engine(new MemoryStore({ maxAccounts }), { disableForMs: 0, shadow: false })
    this.classifyContext = {
      routes: config.routes,
      sessions: config.sessions,
      canonical: canonicalOptions(config.paths.stripMatrixParams),
    }
    const net = config.network
    this.netUsed = net.used
    this.networks = new Networks(net.ipv4, net.ipv6)
    // As the proxy does when its store is full: newcomers counted under their client network.
    this.step = { overflowKey: () => (this.client !== undefined ? this.anyNetworks.of(this.client) : '*') }

    for (const route of config.routes) {
      const p = route.policy
      this.enforcePolicies.push(p.shadow ? { ...p, shadow: false } : p)
      const largest = Math.max(0, ...p.limits.map((l) => l.max))
      const cap = options.measureCap ?? Math.max(1000, 10 * largest)
      this.measurePolicies.push(
        buildPolicy(
          p.name,
          p.limits.map((l) => ({ kind: l.kind, per: l.per, windowMs: l.windowMs, max: cap, action: 'log' as const })),
          false,
        ),
      )
      this.stats.push({
        route,
        requests: 0,
        blocked: 0,
        decisions: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<DecisionKind, number>,
        limits: p.limits.map((limit) => ({ limit, accounts: 0, decided: 0, crossings: [] })),
        measureCap: cap,
        accounts: new Map(),
        owners: new Map(),
        requestsOnly: route.inspect?.from ?? null,
      })
    }

    this.result = {
      config: {
        mode: 'enforce',
        configuredMode: config.shadow ? 'shadow' : 'enforce',
        disableForMs: config.actions.disableForMs,
        maxAccounts,
      },
      files: [],
      lines: 0,
      requests: 0,
      ignored: 0,
      bad: { count: 0, first: [] },
      rejected: { count: 0, reasons: {} },
      passedThrough: 0,
      from: null,
      to: null,
      routes: this.stats,
      blocked: { count: 0, first: [] },
      warnings: [],
      elapsedMs: 0,
    }
    for (const s of this.result.routes) {
      if (s.requestsOnly)
        this.result.warnings.push(
          `route ${s.route.name}: records come from the ${s.requestsOnly === 'body' ? 'request body' : 'response body'}, which access logs do not carry; only its requests are counted, its distinctRecords limits are not replayed`,
        )
    }
  }

  /** A file starts: its summary, where its lines are counted. */
  startFile(name: string): FileSummary {
    this.file = { name, format: 'combined', gzip: false, lines: 0 }
    this.result.files.push(this.file)
    this.lineBase = 0
    return this.file
  }

  ignored(): void {
    this.result.ignored++
  }

  bad(line: number, reason: string): void {
    const bad = this.result.bad
    bad.count++
    if (bad.first.length < this.keepBad) bad.first.push({ file: this.file.name, line: this.lineBase + line, reason })
  }

  request(time: number): void {
    const r = this.result
    r.requests++
    if (r.from === null || time < r.from) r.from = time
    if (r.to === null || time > r.to) r.to = time
  }

  rejected(reason: string): void {
    const r = this.result.rejected
    r.count++
    r.reasons[reason] = (r.reasons[reason] ?? 0) + 1
  }

  unrouted(): void {
    this.result.passedThrough++
  }

  unaccounted(line: number): void {
    this.result.requests--
    this.bad(line, 'neither an account nor a client address')
  }

  routed(line: number, entry: LogEntry, account: string, routeIndex: number, records: readonly string[]): void {
    const route = this.routes[routeIndex] as CompiledRoute
    const client = entry.client
    const step = this.step
    this.client = client
    // A line without a client address counts its per-network limits under net:unknown.
    if (this.netUsed) step.network = client !== undefined ? this.networks.of(client) : 'unknown'
    const decision = this.enforce.observe(
      account,
      this.enforcePolicies[routeIndex] as RoutePolicy,
      records,
      entry.time,
      step,
    )
    const measured = this.measure.observe(
      account,
      this.measurePolicies[routeIndex] as RoutePolicy,
      records,
      entry.time,
      step,
    )
    // The memory store decides at once (only a remote store answers with a promise).
    if (decision instanceof Promise || measured instanceof Promise) throw new Error('replay needs a synchronous store')
    const at = this.lineBase + line
    this.count(this.stats[routeIndex] as RouteStats, account, step.network, entry.time, decision, measured.counts, at)
    if (decision.block) {
      const blocked = this.result.blocked
      blocked.count++
      if (blocked.first.length < this.keepBlocked) {
        blocked.first.push({
          file: this.file.name,
          line: at,
          time: entry.time,
          account,
          route: route.name,
          method: entry.method,
          // Its own copy: a target sliced from a worker's batch would keep the whole batch.
          target: JSON.parse(JSON.stringify(entry.target)) as string,
          kind: decision.kind,
          limit: decision.limit?.label ?? null,
          counts: decision.counts,
        })
      }
    }
    this.onDecision?.({ at: { file: this.file.name, line: at }, entry, account, route, records, decision })
  }

  /** A batch of lines read by a worker, numbered from `lineBase` + 1. */
  mergeBatch(b: Batch): void {
    const r = this.result
    r.ignored += b.ignored
    r.requests += b.requests
    r.passedThrough += b.passedThrough
    if (b.from !== null && (r.from === null || b.from < r.from)) r.from = b.from
    if (b.to !== null && (r.to === null || b.to > r.to)) r.to = b.to
    r.rejected.count += b.rejectedCount
    for (const [reason, n] of b.rejected) r.rejected.reasons[reason] = (r.rejected.reasons[reason] ?? 0) + n
    r.bad.count += b.badCount - b.bad.length
    for (const [line, reason] of b.bad) this.bad(line, reason)
    const strings = b.strings
    const ev = b.routed
    const targets = b.targets
    for (let i = 0; i < b.routedLength;) {
      const line = ev[i] as number
      const accountIx = ev[i + 3] as number
      const clientIx = ev[i + 4] as number
      const target = ev[i + 7] as number
      const entry: LogEntry = {
        time: ev[i + 1] as number,
        method: strings[ev[i + 6] as number] as string,
        target: targets.slice(target, target + (ev[i + 8] as number)),
        account: accountIx < 0 ? undefined : strings[accountIx],
        client: clientIx < 0 ? undefined : strings[clientIx],
      }
      const n = ev[i + 9] as number
      const records: string[] = new Array<string>(n)
      for (let k = 0; k < n; k++) records[k] = strings[ev[i + 10 + k] as number] as string
      this.routed(line, entry, strings[ev[i + 5] as number] as string, ev[i + 2] as number, records)
      i += 10 + n
    }
  }

  private count(
    s: RouteStats,
    account: string,
    network: string | undefined,
    time: number,
    d: Decision,
    unconstrained: readonly number[],
    line: number,
  ): void {
    s.requests++
    s.decisions[d.kind]++
    let a = s.accounts.get(account)
    if (!a) s.accounts.set(account, (a = newRow(account, time, s.limits.length)))
    a.requests++
    if (time < a.first) a.first = time
    if (time > a.last) a.last = time
    if (d.block) {
      a.blocked++
      s.blocked++
    }
    // A network's and the route's own rows, for their limits (`net:…`, `route:…`).
    const policy = s.route.policy
    const netRow = network !== undefined && policy.perNetwork ? owner(s, `net:${network}`, time, d) : undefined
    const routeRow = policy.perRoute ? owner(s, `route:${s.route.name}`, time, d) : undefined
    const limits = s.limits
    for (let i = 0; i < limits.length; i++) {
      const ls = limits[i] as LimitStats
      const per = ls.limit.per
      const row = per === 'account' ? a : per === 'network' ? netRow : routeRow
      if (row === undefined) continue
      const u = unconstrained[i] as number
      if (u > (row.max[i] as number)) row.max[i] = u
      if (d.limit === ls.limit) ls.decided++
      if ((row.crossedAt[i] as number) < 0 && (d.counts[i] as number) > ls.limit.max) {
        row.crossedAt[i] = time
        ls.accounts++
        if (ls.crossings.length < this.top)
          ls.crossings.push({
            account: row.account,
            time,
            at: { file: this.file.name, line },
            counts: [...d.counts],
            decision: d.kind,
          })
      }
    }
  }
}

function owner(s: RouteStats, key: string, time: number, d: Decision): AccountStats {
  let o = s.owners.get(key)
  if (!o) s.owners.set(key, (o = newRow(key, time, s.limits.length)))
  o.requests++
  o.last = Math.max(o.last, time)
  if (d.block) o.blocked++
  return o
}

/**
 * One file through the first half here (`pool` undefined) or in workers, in pieces of whole lines.
 * The format is known from the file's first lines before any line is read (Sniffer).
 */
export async function readFile(
  replay: Replay,
  name: string,
  options: ReplayOptions,
  pool: WorkerPool | undefined,
): Promise<void> {
  const summary = replay.startFile(name)
  const result = replay.result
  let input: LogInput
  try {
    input = await openLog(name)
  } catch (err) {
    summary.error = describeFileError(err)
    return
  }
  const sniffer = new Sniffer(options.format && options.format !== 'auto' ? options.format : undefined)
  const reader = pool ? undefined : new LineReader(replay.classifyContext, options, replay)
  const splitter = new ByteLines()
  // Whole lines read before the format is known ([bytes, the file's unended last line]).
  let held: [Buffer, boolean][] | undefined = []
  const progress = () =>
    options.onProgress?.({ file: name, lines: result.lines, bytesRead: input.bytesRead(), bytesTotal: input.size })
  const read = async (bytes: Buffer, last: boolean) => {
    if (pool) await pool.read(bytes, last)
    else {
      replay.lineBase = summary.lines
      ;(reader as LineReader).lineNo = 0
      const n = eachLineOf(bytes, last, reader as LineReader)
      summary.lines += n
      result.lines += n
    }
    progress()
  }
  const decided = async (format: FormatName) => {
    summary.format = format
    if (pool) pool.start(format)
    else (reader as LineReader).start(format)
    const h = held as [Buffer, boolean][]
    held = undefined
    for (const [bytes, last] of h) await read(bytes, last)
  }
  try {
    for await (const chunk of input.chunks()) {
      const bytes = splitter.push(chunk)
      if (bytes === undefined) continue
      if (held === undefined) await read(bytes, false)
      else {
        held.push([bytes, false])
        sniffer.feed(bytes, false)
        if (sniffer.format !== undefined) await decided(sniffer.format)
      }
    }
    const tail = splitter.end()
    if (held !== undefined) {
      if (tail) {
        held.push([tail, true])
        sniffer.feed(tail, true)
      }
      await decided(sniffer.end())
    } else if (tail) await read(tail, true)
    if (pool) await pool.drain()
  } catch (err) {
    // A truncated gzip (a log being rotated) ends this file, not the replay.
    if (pool) await pool.drain()
    summary.error = describeFileError(err)
    if (held !== undefined) {
      // Cut short before its format was known: its lines are counted, none is read.
      const counter = new LineCounter()
      for (const [bytes, last] of held) eachLineOf(bytes, last, counter)
      summary.lines += counter.lines
      result.lines += counter.lines
      result.ignored += counter.blank
    }
  }
  summary.gzip = input.gzip()
  progress()
}

/** How long the log covers, first to last request (0 when it has fewer than two). */
export function logSpanMs(r: Pick<ReplayResult, 'from' | 'to'>): number {
  return r.from !== null && r.to !== null ? r.to - r.from : 0
}

/**
 * A window longer than the log never fills: every account's count in it is lower than a full
 * window would hold, so "nobody crossed it" and any threshold drawn from it are optimistic.
 */
function shortLogWarnings(r: ReplayResult): string[] {
  if (r.requests === 0) return []
  const span = logSpanMs(r)
  const routesByWindow = new Map<number, Set<string>>()
  for (const s of r.routes) {
    if (s.requests === 0) continue
    for (const l of s.limits) {
      // Distinct records a route cannot see are unknown anyway (warned about above).
      if (l.limit.windowMs <= span || (s.requestsOnly && l.limit.kind === 'distinctRecords')) continue
      routesByWindow.set(l.limit.windowMs, (routesByWindow.get(l.limit.windowMs) ?? new Set()).add(s.route.name))
    }
  }
  return [...routesByWindow.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(
      ([w, routes]) =>
        `the log covers ${formatSpan(span)}, less than the ${formatMs(w)} window of route${routes.size > 1 ? 's' : ''} ${[...routes].join(', ')}: counts there are lower than a full window would hold, and no limit is suggested for it`,
    )
}

/** `18h53m`, `7m`, `42s`. */
export function formatSpan(ms: number): string {
  const d = Math.floor(ms / 86_400_000)
  const h = Math.floor((ms % 86_400_000) / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  if (d > 0) return `${d}d${h > 0 ? `${h}h` : ''}`
  if (h > 0) return `${h}h${m > 0 ? `${m}m` : ''}`
  return m > 0 ? `${m}m` : `${Math.max(0, Math.floor(ms / 1000))}s`
}

/** A file error as a person would say it (no stack, no errno jargon). */
export function describeFileError(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EISDIR':
      return 'is a directory, not a log file'
    case 'Z_DATA_ERROR':
      return `not a valid gzip file (${e.message})`
    case 'Z_BUF_ERROR':
      return 'unexpected end of file: the gzip data is cut short (a file still being written, or copied incompletely)'
    default:
      return e.message ?? String(err)
  }
}

function newRow(account: string, time: number, limits: number): AccountStats {
  return {
    account,
    requests: 0,
    blocked: 0,
    first: time,
    last: time,
    max: new Array<number>(limits).fill(0),
    crossedAt: new Array<number>(limits).fill(-1),
  }
}

/** The rows a limit is measured over: accounts, or the networks or the route its windows belong to. */
export function rowsOf(s: Pick<RouteStats, 'accounts' | 'owners'>, limit: Limit): AccountStats[] {
  if (limit.per === 'account') return [...s.accounts.values()]
  const prefix = limit.per === 'network' ? 'net:' : 'route:'
  return [...s.owners.values()].filter((o) => o.account.startsWith(prefix))
}

/**
 * The accounts of a route with the highest unconstrained counts, by the route's longest
 * distinct-records window (else its longest request window).
 */
export function topAccounts(s: RouteStats, n: number): AccountStats[] {
  const key = rankingLimit(s)
  const all = [...s.accounts.values()]
  all.sort(
    (x, y) =>
      (key < 0 ? 0 : (y.max[key] as number) - (x.max[key] as number)) ||
      y.requests - x.requests ||
      (x.account < y.account ? -1 : 1),
  )
  return all.slice(0, n)
}

/** Index of the limit accounts are ranked by (never a distinct count the log cannot show). */
export function rankingLimit(s: Pick<RouteStats, 'route' | 'requestsOnly'>): number {
  const p = s.route.policy
  const byWindow = (kind: Limit['kind']) =>
    p.limits.filter((l) => l.kind === kind).sort((a, b) => b.windowMs - a.windowMs)[0]
  return ((s.requestsOnly ? undefined : byWindow('distinctRecords')) ?? byWindow('requests'))?.index ?? -1
}
