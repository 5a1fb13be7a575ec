// `sluice suggest`: thresholds from what accounts actually did.
//
// For each route and each configured limit, every account has one number: the highest count
// (requests, or distinct records) it reached in any window of that limit's length, measured
// without any limit in the way (the replay's measure pass). Then, per route:
//  1. Likely scrapers: an account is flagged when, for some limit, its value is far above the
//     others on a log scale: ln(1 + v) > median + Z × max(1.4826 × MAD, MIN_SPREAD) (a modified
//     z-score, robust because median and MAD ignore the very values being hunted), and v is
//     above the floor. Flagged accounts are excluded from every percentile of the route.
//  2. The threshold: the P-th percentile (nearest rank) of the remaining accounts' values,
//     × margin, rounded up to two significant figures, at least the floor.
//  3. Ladders: a harsher step on the same window is raised, if need be, to keep its configured
//     ratio to the milder step (keepLadders).
// No number is proposed (the current one is kept, and the YAML says why) for a window longer
// than the log, or for distinct records the log cannot show (records read from bodies).
// The windows and actions of the config are kept; only the numbers are proposed.
import { formatMs, type Limit } from '../engine/policy.js'
import { plural } from '../units.js'
import { printable, yamlString } from './escape.js'
import { formatSpan, logSpanMs, rowsOf, type AccountStats, type ReplayResult, type RouteStats } from './replay.js'

export interface SuggestOptions {
  /** Percentile of honest accounts' per-window maxima. Default 99.9. */
  percentile?: number
  /** Multiplier on the percentile. Default 2. */
  margin?: number
  /** No threshold below this, and nobody below it is a scraper. Default 10. */
  floor?: number
  /** Modified z-score above which an account is a likely scraper. Default 3.5 (Iglewicz & Hoaglin). */
  z?: number
}

/**
 * The smallest spread assumed on the ln(1 + v) scale: when most accounts look alike (MAD 0), a
 * value must still be ~2.4× the median to stand out.
 */
const MIN_SPREAD = 0.25

export interface LimitSuggestion {
  limit: Limit
  current: number
  suggested: number | null
  /** Accounts the percentile was taken over (scrapers excluded). */
  accounts: number
  percentileValue: number | null
  /** Highest value among those accounts. */
  honestMax: number | null
  /** Honest accounts above the suggestion (they would have been acted on). */
  honestAbove: number
  /** Values at or above the route's measure cap are not exact. */
  capped: boolean
  /** Above this (on the v scale) an account is a likely scraper for this limit. */
  outlierAbove: number | null
  /** Why no number is proposed (the current one is kept), when `suggested` is null. */
  kept: string | null
  /** Raised to keep the configured ratio to this milder step of the same window (its index). */
  ladder: number | null
}

export interface Scraper {
  account: string
  /** Per limit, the account's value. */
  values: number[]
  /** Limits (indexes) on which it stood out. */
  flaggedOn: number[]
}

export interface RouteSuggestion {
  route: string
  path: string
  accounts: number
  /** Records from bodies access logs do not carry: only request limits are suggested. */
  requestsOnly: 'body' | 'response' | null
  limits: LimitSuggestion[]
  scrapers: Scraper[]
}

export interface Suggestion {
  method: { percentile: number; margin: number; floor: number; z: number; minSpread: number }
  routes: RouteSuggestion[]
}

export function suggestLimits(result: ReplayResult, options: SuggestOptions = {}): Suggestion {
  const method = {
    percentile: options.percentile ?? 99.9,
    margin: options.margin ?? 2,
    floor: options.floor ?? 10,
    z: options.z ?? 3.5,
    minSpread: MIN_SPREAD,
  }
  const span = logSpanMs(result)
  return { method, routes: result.routes.map((s) => suggestRoute(s, method, span)) }
}

function suggestRoute(s: RouteStats, m: Suggestion['method'], spanMs: number): RouteSuggestion {
  // Each limit is measured over the rows its windows belong to: accounts, client networks (a
  // network's honest p99.9), or the route as a whole (one row: everyone's traffic).
  const out: LimitSuggestion[] = []
  const scrapers: Scraper[] = []
  for (const per of ['account', 'network', 'route'] as const) {
    const limits = s.route.policy.limits.filter((l) => l.per === per)
    if (limits.length === 0) continue
    const group = suggestGroup(s, rowsOf(s, limits[0] as Limit), limits, m, spanMs)
    out.push(...group.limits)
    scrapers.push(...group.scrapers)
  }
  out.sort((a, b) => a.limit.index - b.limit.index)
  return {
    route: s.route.name,
    path: s.route.path,
    accounts: s.accounts.size,
    requestsOnly: s.requestsOnly,
    limits: out,
    scrapers: scrapers.sort((a, b) => Math.max(...b.values) - Math.max(...a.values)),
  }
}

function suggestGroup(
  s: RouteStats,
  rows: readonly AccountStats[],
  limits: readonly Limit[],
  m: Suggestion['method'],
  spanMs: number,
): { limits: LimitSuggestion[]; scrapers: Scraper[] } {
  // A body-records route's distinct counts are all 0 in a replay: they are not evidence.
  const unknown = (l: Limit) => s.requestsOnly !== null && l.kind === 'distinctRecords'
  const flagged = new Map<number, number[]>() // row index → limits it stood out on
  const cutoffs = new Map<number, number | null>()
  for (const limit of limits) {
    const li = limit.index
    const values = Float64Array.from(rows, (a) => Math.log1p(a.max[li] as number))
    const cutoff = rows.length >= 3 && !unknown(limit) ? outlierCutoff(values, m.z) : null
    cutoffs.set(li, cutoff === null ? null : Math.expm1(cutoff))
    if (cutoff === null) continue
    rows.forEach((a, ai) => {
      const v = a.max[li] as number
      if (Math.log1p(v) > cutoff && v > m.floor) flagged.set(ai, [...(flagged.get(ai) ?? []), li])
    })
  }

  const honest = rows.filter((_, ai) => !flagged.has(ai))
  const sorted = new Map(
    limits.map((l) => [l.index, Float64Array.from(honest, (a) => a.max[l.index] as number).sort()]),
  )
  const out: LimitSuggestion[] = limits.map((limit) => {
    const values = sorted.get(limit.index) as Float64Array
    const n = values.length
    const base: LimitSuggestion = {
      limit,
      current: limit.max,
      suggested: null,
      kept: null,
      accounts: n,
      percentileValue: null,
      honestMax: null,
      honestAbove: 0,
      capped: false,
      outlierAbove: cutoffs.get(limit.index) ?? null,
      ladder: null,
    }
    if (n === 0) return { ...base, kept: 'no requests on this route in the log' }
    if (unknown(limit))
      return {
        ...base,
        kept: `records come from the ${s.requestsOnly === 'body' ? 'request body' : 'response'}, which access logs do not carry`,
      }
    const p = values[Math.max(0, Math.ceil((m.percentile / 100) * n) - 1)] as number
    const measured = {
      ...base,
      percentileValue: p,
      honestMax: values[n - 1] as number,
      capped: (values[n - 1] as number) > s.measureCap,
    }
    // A window the log does not fill holds less than it would in production: a threshold
    // drawn from it would catch honest users, so none is proposed.
    if (limit.windowMs > spanMs)
      return {
        ...measured,
        kept: `the log covers ${formatSpan(spanMs)}, less than this ${formatMs(limit.windowMs)} window`,
      }
    return { ...measured, suggested: Math.max(m.floor, roundUp2(p * m.margin)) }
  })

  // Ladders are steps on the same thing (an account's, a network's): kept within the group.
  keepLadders(out)
  for (const l of out) {
    if (l.suggested === null) continue
    const values = sorted.get(l.limit.index) as Float64Array
    let above = 0
    for (let i = values.length - 1; i >= 0 && (values[i] as number) > l.suggested; i--) above++
    l.honestAbove = above
  }

  const scrapers: Scraper[] = [...flagged.entries()].map(([ai, on]) => ({
    account: (rows[ai] as AccountStats).account,
    values: [...(rows[ai] as AccountStats).max],
    flaggedOn: on,
  }))
  return { limits: out, scrapers }
}

/**
 * The limits of a route on one window form a ladder (`1m distinctRecords 20 → throttle`, then
 * `1m requests 40 → disable` for whoever keeps going): each step was written to fire after the
 * milder ones. Suggested separately, steps measuring the same thing get the same number, and a
 * requests step (every record costs a request) would fire no later than a distinct step at
 * the same number: the milder action would never be seen. So a step more severe than another
 * (or the same action, higher) on the same window keeps at least its configured ratio to it.
 * Only ever raises: each step stays above the honest percentile.
 */
function keepLadders(steps: LimitSuggestion[]): void {
  const order = [...steps].sort(
    (a, b) => a.limit.windowMs - b.limit.windowMs || a.limit.severity - b.limit.severity || a.current - b.current,
  )
  for (const [j, step] of order.entries()) {
    if (step.suggested === null) continue
    for (const lower of order.slice(0, j)) {
      if (lower.limit.windowMs !== step.limit.windowMs || lower.suggested === null || lower.current <= 0) continue
      const milder =
        lower.limit.severity < step.limit.severity ||
        (lower.limit.severity === step.limit.severity && lower.current < step.current)
      if (!milder || step.current <= lower.current) continue
      const kept = roundUp2((lower.suggested * step.current) / lower.current)
      if (kept > step.suggested) {
        step.suggested = kept
        step.ladder = lower.limit.index
      }
    }
  }
}

/** On the ln(1 + v) scale: median + z × robust spread. */
function outlierCutoff(values: Float64Array, z: number): number {
  const sorted = Float64Array.from(values).sort()
  const median = medianOf(sorted)
  const deviations = sorted.map((v) => Math.abs(v - median)).sort()
  const spread = Math.max(1.4826 * medianOf(deviations), MIN_SPREAD)
  return median + z * spread
}

function medianOf(sorted: Float64Array): number {
  const n = sorted.length
  const mid = n >> 1
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** Up to two significant figures: 7.2 → 8, 23.1 → 24, 123 → 130, 1234 → 1300. */
export function roundUp2(v: number): number {
  if (v <= 10) return Math.ceil(v)
  const step = 10 ** (Math.floor(Math.log10(v)) - 1)
  return Math.ceil(Math.round((v / step) * 1e9) / 1e9) * step
}

/**
 * The suggestion as a YAML snippet of `routes:` (comments carry the evidence). Only route
 * names and numbers are written as values; every string from the log (an account) appears in
 * a comment, made printable, so no log line can add YAML to what the operator pastes.
 */
export function formatSuggestionYaml(s: Suggestion, result: ReplayResult): string {
  const m = s.method
  const lines: string[] = []
  const span =
    result.from !== null && result.to !== null
      ? `${isoTime(result.from)} → ${isoTime(result.to)} (${formatSpan(logSpanMs(result))})`
      : 'no requests'
  lines.push(`# sluice suggest: ${result.requests.toLocaleString('en-US')} requests, ${span}`)
  lines.push(
    `# threshold = max(${m.floor}, p${m.percentile} of honest accounts' highest count per window × ${m.margin}, rounded up to 2 significant figures);`,
  )
  lines.push(`# a harsher step on the same window keeps its configured ratio to the milder one;`)
  lines.push(
    `# likely scrapers (modified z-score > ${m.z} on a log scale) are left out of the percentile. See docs/tuning.md.`,
  )
  lines.push('routes:')
  for (const r of s.routes) {
    lines.push(
      `  - name: ${yamlString(r.route)}    # ${printable(r.path)} · ${r.accounts} account${r.accounts === 1 ? '' : 's'}`,
    )
    if (r.accounts === 0) lines.push('    # no traffic on this route in the log: keep the current limits')
    if (r.requestsOnly)
      lines.push(
        `    # records come from the ${r.requestsOnly === 'body' ? 'request body' : 'response'}: access logs do not carry it, so requests only`,
      )
    for (const sc of r.scrapers.slice(0, 10)) {
      // A ladder's steps share a window: one value each.
      const on = [...new Set(sc.flaggedOn.map((i) => `${shortLabel(r.limits[i]?.limit)} ${sc.values[i]}`))].join(', ')
      lines.push(`    # likely scraper: ${printable(sc.account)} (${on})`)
    }
    if (r.scrapers.length > 10) lines.push(`    # … and ${r.scrapers.length - 10} more likely scrapers`)
    if (r.accounts > 0 && r.accounts < 30)
      lines.push(
        `    # only ${plural(r.accounts, 'account')}: the percentile is the largest of them; replay a longer log if you can`,
      )
    lines.push('    limits:')
    for (const l of r.limits) {
      const value = l.suggested ?? l.current
      const per = l.limit.per === 'account' ? '' : `per: ${l.limit.per}, `
      const kill = l.limit.per === 'route' && l.limit.action !== 'log' ? ', allowRouteBlock: true' : ''
      const entry = `{ ${per}window: ${formatMs(l.limit.windowMs)}, ${l.limit.kind}: ${value}, action: ${l.limit.action}${kill} }`
      lines.push(`      - ${entry.padEnd(58)} # ${evidence(l, r, m)}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function evidence(l: LimitSuggestion, r: RouteSuggestion, m: Suggestion['method']): string {
  const measured =
    l.percentileValue === null
      ? ''
      : ` · p${m.percentile} ${l.percentileValue} of ${l.accounts} ${ROWS[l.limit.per]} · max ${l.honestMax}`
  if (l.suggested === null) return `current value kept: ${l.kept ?? 'no data'}${measured}`
  const ladder =
    l.ladder === null
      ? ''
      : ` · raised to keep ${l.current}/${r.limits[l.ladder]?.current} of the ${shortLabel(r.limits[l.ladder]?.limit)} step`
  return `now ${l.current}${measured}${l.honestAbove > 0 ? ` · ${l.honestAbove} honest above` : ''}${ladder}${l.capped ? ' · values capped: raise --measure-cap' : ''}`
}

/** What a limit's values were measured over. */
const ROWS = { account: 'accounts', network: 'networks', route: 'route' } as const

function shortLabel(l: Limit | undefined): string {
  return l ? `${formatMs(l.windowMs)} ${l.kind}` : '?'
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z')
}
