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
import { buildPolicy, formatMs, type Limit, type Per, type RoutePolicy } from '../engine/policy.js'
import { canonicalOptions, classify, type ClassifyContext } from '../exchange/classify.js'
import { ipAccount, networkOf } from '../identity/ip.js'
import { MemoryStore } from '../store/memory.js'
import {
  combinedParser,
  DEFAULT_JSON_FIELDS,
  detectFormat,
  IGNORED,
  jsonParser,
  sluiceParser,
  type FormatName,
  type JsonFields,
  type LineParser,
  type LogEntry,
} from './formats.js'
import { openLog, type LogInput } from './input.js'

export interface ReplayOptions {
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

/** JSON lines looked at before deciding a file is not sluice's log. */
const SNIFF_LINES = 50

/** Access logs carry no request headers (so no method override either). */
const NO_HEADERS: Readonly<Record<string, string>> = {}

const KINDS: DecisionKind[] = ['allow', 'log', 'throttle', 'challenge', 'disable', 'disabled', 'unavailable']

export async function replayLogs(
  config: CompiledConfig,
  files: readonly string[],
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const started = performance.now()
  const maxAccounts = options.maxAccounts ?? config.store.maxAccounts
  const keepBlocked = options.keepBlocked ?? 50
  const keepBad = options.keepBad ?? 5
  const top = options.top ?? 20
  // Enforce regardless of config.mode and of per-route shadow: replay answers "what would have happened".
  const enforce = new Engine(new MemoryStore({ maxAccounts }), {
    disableForMs: config.actions.disableForMs,
    shadow: false,
  })
  const measure = new Engine(new MemoryStore({ maxAccounts }), { disableForMs: 0, shadow: false })
  const classifyContext: ClassifyContext = {
    routes: config.routes,
    sessions: config.sessions,
    canonical: canonicalOptions(config.paths.stripMatrixParams),
  }

  const enforcePolicies = new Map<CompiledRoute, RoutePolicy>()
  const measurePolicies = new Map<CompiledRoute, RoutePolicy>()
  const stats = new Map<CompiledRoute, RouteStats>()
  for (const route of config.routes) {
    const p = route.policy
    enforcePolicies.set(route, p.shadow ? { ...p, shadow: false } : p)
    const largest = Math.max(0, ...p.limits.map((l) => l.max))
    const cap = options.measureCap ?? Math.max(1000, 10 * largest)
    measurePolicies.set(
      route,
      buildPolicy(
        p.name,
        p.limits.map((l) => ({ kind: l.kind, per: l.per, windowMs: l.windowMs, max: cap, action: 'log' as const })),
        false,
      ),
    )
    stats.set(route, {
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

  const result: ReplayResult = {
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
    routes: [...stats.values()],
    blocked: { count: 0, first: [] },
    warnings: [],
    elapsedMs: 0,
  }
  for (const s of result.routes) {
    if (s.requestsOnly)
      result.warnings.push(
        `route ${s.route.name}: records come from the ${s.requestsOnly === 'body' ? 'request body' : 'response body'}, which access logs do not carry; only its requests are counted, its distinctRecords limits are not replayed`,
      )
  }

  const net = config.network
  const observe = async (entry: LogEntry, at: LineRef) => {
    result.requests++
    if (result.from === null || entry.time < result.from) result.from = entry.time
    if (result.to === null || entry.time > result.to) result.to = entry.time

    // The proxy's own classification: canonical path, route, clamped query, records.
    const c = classify({ method: entry.method, url: entry.target, headers: NO_HEADERS }, classifyContext)
    if (c.kind === 'rejected') {
      result.rejected.count++
      result.rejected.reasons[c.reason] = (result.rejected.reasons[c.reason] ?? 0) + 1
      return
    }
    if (c.kind === 'unrouted') {
      result.passedThrough++
      return
    }
    // A log's user name stays as the log spells it (what an operator searches the log for);
    // the proxy names the same account with its extractor's namespace (header:alice).
    const account = entry.account ?? (entry.client !== undefined ? ipAccount(entry.client) : undefined)
    if (account === undefined) {
      result.requests--
      return bad(at.file, at.line, 'neither an account nor a client address')
    }
    const route = c.route
    // Body records are not in an access log: the request is counted without them.
    const records = c.records ?? []
    // As the proxy does when its store is full: newcomers counted under their client network.
    const network = entry.client !== undefined && net.used ? networkOf(entry.client, net.ipv4, net.ipv6) : undefined
    const step: ObserveStep = { overflowKey: () => (entry.client !== undefined ? networkOf(entry.client) : '*') }
    // A line without a client address counts its per-network limits under net:unknown.
    if (net.used) step.network = network ?? 'unknown'
    const observed = enforce.observe(account, enforcePolicies.get(route) as RoutePolicy, records, entry.time, step)
    const decision = observed instanceof Promise ? await observed : observed
    const measured = measure.observe(account, measurePolicies.get(route) as RoutePolicy, records, entry.time, step)
    const unconstrained = (measured instanceof Promise ? await measured : measured).counts
    count(stats.get(route) as RouteStats, account, step.network, entry, decision, unconstrained, at, top)
    if (decision.block) {
      result.blocked.count++
      if (result.blocked.first.length < keepBlocked) {
        result.blocked.first.push({
          ...at,
          time: entry.time,
          account,
          route: route.name,
          method: entry.method,
          target: entry.target,
          kind: decision.kind,
          limit: decision.limit?.label ?? null,
          counts: decision.counts,
        })
      }
    }
    options.onDecision?.({ at, entry, account, route, records, decision })
  }

  const bad = (file: string, line: number, reason: string) => {
    result.bad.count++
    if (result.bad.first.length < keepBad) result.bad.first.push({ file, line, reason })
  }

  for (const name of files) {
    let parser: LineParser | undefined
    const summary: FileSummary = { name, format: 'combined', gzip: false, lines: 0 }
    result.files.push(summary)
    let input: LogInput
    try {
      input = await openLog(name)
    } catch (err) {
      summary.error = describeFileError(err)
      continue
    }
    let lineNo = 0
    // Auto-detection: a JSON file is sluice's log if any of its first lines is a sluice event
    // (its first line is usually Fastify's "Server listening"); until that is known, lines wait.
    const fixed = options.format && options.format !== 'auto' ? options.format : undefined
    let pending: { line: string; lineNo: number }[] | null = null
    const decide = (format: FormatName) => {
      summary.format = format
      parser = makeParser(format, options)
    }
    const handle = async (line: string, n: number) => {
      const parsed = (parser as LineParser)(line)
      if (parsed === IGNORED) {
        result.ignored++
        return
      }
      if (typeof parsed === 'string') return bad(name, n, parsed)
      await observe(parsed, { file: name, line: n })
    }
    try {
      for await (const line of input.lines()) {
        lineNo++
        result.lines++
        if (options.onProgress && (lineNo & 0x3fff) === 0)
          options.onProgress({ file: name, lines: result.lines, bytesRead: input.bytesRead(), bytesTotal: input.size })
        if (line.trim() === '') {
          result.ignored++
          continue
        }
        if (!parser) {
          if (fixed) decide(fixed)
          else {
            ;(pending ??= []).push({ line, lineNo })
            const sniffed = detectFormat(line)
            if (pending.length === 1 && sniffed === 'combined') decide('combined')
            else if (sniffed === 'sluice') decide('sluice')
            else if (pending.length >= SNIFF_LINES) decide('json')
            else continue
            for (const p of pending) await handle(p.line, p.lineNo)
            pending = null
            continue
          }
        }
        await handle(line, lineNo)
      }
      if (pending) {
        decide('json')
        for (const p of pending) await handle(p.line, p.lineNo)
      }
    } catch (err) {
      // A truncated gzip (a log being rotated) ends this file, not the replay.
      summary.error = describeFileError(err)
    }
    summary.lines = lineNo
    summary.gzip = input.gzip()
    options.onProgress?.({ file: name, lines: result.lines, bytesRead: input.bytesRead(), bytesTotal: input.size })
  }
  result.warnings.push(...shortLogWarnings(result))
  result.elapsedMs = performance.now() - started
  return result
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

function makeParser(format: FormatName, options: ReplayOptions): LineParser {
  switch (format) {
    case 'combined':
      return combinedParser(options.account ?? 'user')
    case 'sluice':
      return sluiceParser()
    case 'json': {
      const fields: JsonFields = { ...DEFAULT_JSON_FIELDS }
      for (const [k, v] of Object.entries(options.fields ?? {})) if (v) fields[k as keyof JsonFields] = [v]
      if (options.account !== undefined) fields.account = options.account === 'none' ? [] : [options.account]
      return jsonParser(fields)
    }
  }
}

function count(
  s: RouteStats,
  account: string,
  network: string | undefined,
  entry: LogEntry,
  d: Decision,
  unconstrained: readonly number[],
  at: LineRef,
  top: number,
): void {
  s.requests++
  s.decisions[d.kind]++
  let a = s.accounts.get(account)
  if (!a) s.accounts.set(account, (a = newRow(account, entry.time, s.limits.length)))
  a.requests++
  if (entry.time < a.first) a.first = entry.time
  if (entry.time > a.last) a.last = entry.time
  if (d.block) {
    a.blocked++
    s.blocked++
  }
  // A network's and the route's own rows, for their limits (`net:…`, `route:…`).
  const owner = (key: string): AccountStats => {
    let o = s.owners.get(key)
    if (!o) s.owners.set(key, (o = newRow(key, entry.time, s.limits.length)))
    o.requests++
    o.last = Math.max(o.last, entry.time)
    if (d.block) o.blocked++
    return o
  }
  const rows: Partial<Record<Per, AccountStats>> = { account: a }
  if (network !== undefined && s.route.policy.perNetwork) rows.network = owner(`net:${network}`)
  if (s.route.policy.perRoute) rows.route = owner(`route:${s.route.name}`)
  for (let i = 0; i < s.limits.length; i++) {
    const ls = s.limits[i] as LimitStats
    const row = rows[ls.limit.per]
    if (row === undefined) continue
    const u = unconstrained[i] as number
    if (u > (row.max[i] as number)) row.max[i] = u
    if (d.limit === ls.limit) ls.decided++
    if ((row.crossedAt[i] as number) < 0 && (d.counts[i] as number) > ls.limit.max) {
      row.crossedAt[i] = entry.time
      ls.accounts++
      if (ls.crossings.length < top)
        ls.crossings.push({ account: row.account, time: entry.time, at, counts: [...d.counts], decision: d.kind })
    }
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
