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
// The windows and actions of the config are kept; only the numbers are proposed.
import type { Limit } from '../engine/policy.js'
import { formatMs } from '../engine/policy.js'
import type { ReplayResult, RouteStats } from './replay.js'

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

/** The smallest spread assumed on the ln(1 + v) scale: when most accounts look alike (MAD 0), a value must still be ~2.4× the median to stand out. */
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
  limits: LimitSuggestion[]
  scrapers: Scraper[]
}

export interface Suggestion {
  method: { percentile: number; margin: number; floor: number; z: number; minSpread: number }
  routes: RouteSuggestion[]
}

export function suggestLimits(result: ReplayResult, options: SuggestOptions = {}): Suggestion {
  const method = { percentile: options.percentile ?? 99.9, margin: options.margin ?? 2, floor: options.floor ?? 10, z: options.z ?? 3.5, minSpread: MIN_SPREAD }
  return { method, routes: result.routes.map((s) => suggestRoute(s, method)) }
}

function suggestRoute(s: RouteStats, m: Suggestion['method']): RouteSuggestion {
  const accounts = [...s.accounts.values()]
  const limits = s.route.policy.limits
  const flagged = new Map<number, number[]>() // account index → limits it stood out on
  const cutoffs: (number | null)[] = []
  limits.forEach((limit, li) => {
    const values = Float64Array.from(accounts, (a) => Math.log1p(a.max[li] as number))
    const cutoff = accounts.length >= 3 ? outlierCutoff(values, m.z) : null
    cutoffs.push(cutoff === null ? null : Math.expm1(cutoff))
    if (cutoff === null) return
    accounts.forEach((a, ai) => {
      const v = a.max[li] as number
      if (Math.log1p(v) > cutoff && v > m.floor) flagged.set(ai, [...(flagged.get(ai) ?? []), li])
    })
  })

  const honest = accounts.filter((_, ai) => !flagged.has(ai))
  const out: LimitSuggestion[] = limits.map((limit, li) => {
    const values = Float64Array.from(honest, (a) => a.max[li] as number).sort()
    const n = values.length
    const base: LimitSuggestion = { limit, current: limit.max, suggested: null, accounts: n, percentileValue: null, honestMax: null, honestAbove: 0, capped: false, outlierAbove: cutoffs[li] ?? null }
    if (n === 0) return base
    const p = values[Math.max(0, Math.ceil((m.percentile / 100) * n) - 1)] as number
    // A ladder on one window (300 → log, 600 → throttle) measures the same thing: the lowest
    // step gets the suggestion, the others keep their ratio to it.
    const lowest = Math.min(...limits.filter((l) => l.kind === limit.kind && l.windowMs === limit.windowMs).map((l) => l.max))
    const suggested = roundUp2(Math.max(m.floor, roundUp2(p * m.margin)) * (limit.max / lowest))
    let above = 0
    for (let i = n - 1; i >= 0 && (values[i] as number) > suggested; i--) above++
    return { ...base, suggested, percentileValue: p, honestMax: values[n - 1] as number, honestAbove: above, capped: (values[n - 1] as number) > s.measureCap }
  })

  const scrapers: Scraper[] = [...flagged.entries()]
    .map(([ai, on]) => ({ account: (accounts[ai] as (typeof accounts)[number]).account, values: [...(accounts[ai] as (typeof accounts)[number]).max], flaggedOn: on }))
    .sort((a, b) => Math.max(...b.values) - Math.max(...a.values))
  return { route: s.route.name, path: s.route.path, accounts: accounts.length, limits: out, scrapers }
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

/** The suggestion as YAML a config can take (comments carry the evidence). */
export function formatSuggestionYaml(s: Suggestion, result: ReplayResult): string {
  const m = s.method
  const lines: string[] = []
  const span = result.from !== null && result.to !== null ? `${isoTime(result.from)} → ${isoTime(result.to)}` : 'no requests'
  lines.push(`# sluice suggest: ${result.requests.toLocaleString('en-US')} requests, ${span}`)
  lines.push(`# threshold = p${m.percentile} of each account's highest count per window × ${m.margin}, rounded up, at least ${m.floor};`)
  lines.push(`# likely scrapers (modified z-score > ${m.z} on a log scale) are left out of the percentile. See docs/tuning.md.`)
  lines.push('routes:')
  for (const r of s.routes) {
    lines.push(`  - name: ${r.route}    # ${r.path} · ${r.accounts} account${r.accounts === 1 ? '' : 's'}`)
    if (r.accounts === 0) {
      lines.push('    # no traffic on this route in the log: keep the current limits')
    }
    for (const sc of r.scrapers.slice(0, 10)) {
      const on = sc.flaggedOn.map((i) => `${shortLabel(r.limits[i]?.limit)} ${sc.values[i]}`).join(', ')
      lines.push(`    # likely scraper: ${sc.account} (${on})`)
    }
    if (r.scrapers.length > 10) lines.push(`    # … and ${r.scrapers.length - 10} more likely scrapers`)
    if (r.accounts > 0 && r.accounts < 30) lines.push(`    # only ${r.accounts} accounts: the percentile is the largest of them; replay a longer log if you can`)
    const span = result.from !== null && result.to !== null ? result.to - result.from : 0
    const short = r.limits.filter((l) => l.suggested !== null && l.limit.windowMs > span).map((l) => formatMs(l.limit.windowMs))
    if (short.length > 0) lines.push(`    # the log covers ${formatSpan(span)}, less than the ${[...new Set(short)].join(', ')} window: those counts understate a full window`)
    lines.push('    limits:')
    for (const l of r.limits) {
      const value = l.suggested ?? l.current
      const entry = `{ window: ${formatMs(l.limit.windowMs)}, ${l.limit.kind}: ${value}, action: ${l.limit.action} }`
      const evidence = l.suggested === null
        ? 'no data: current value kept'
        : `now ${l.current} · p${m.percentile} ${l.percentileValue} of ${l.accounts} · max ${l.honestMax}${l.honestAbove > 0 ? ` · ${l.honestAbove} honest above` : ''}${l.capped ? ' · values capped: raise --measure-cap' : ''}`
      lines.push(`      - ${entry.padEnd(58)} # ${evidence}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function formatSpan(ms: number): string {
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  return h > 0 ? `${h}h${m > 0 ? `${m}m` : ''}` : `${Math.max(m, 0)}m`
}

function shortLabel(l: Limit | undefined): string {
  return l ? `${formatMs(l.windowMs)} ${l.kind}` : '?'
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z')
}
