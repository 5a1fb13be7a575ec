// What `sluice replay` prints: a text summary for people, JSON for machines. Strings from the
// log (accounts, targets, file names) go through `printable`: this text lands on a terminal.
import { formatMs, type Limit } from '../engine/policy.js'
import { printable as p } from './escape.js'
import { histogram } from './histogram.js'
import { rankingLimit, rowsOf, topAccounts, type ReplayResult, type RouteStats } from './replay.js'
import { isoTime, type Suggestion } from './suggest.js'
import { humanMs, plural } from '../units.js'

const n = (x: number) => x.toLocaleString('en-US')

export function formatReplayText(r: ReplayResult, options: { top?: number; blocked?: number } = {}): string {
  const top = options.top ?? 10
  const out: string[] = []
  const span = r.from !== null && r.to !== null ? `${isoTime(r.from)} → ${isoTime(r.to)}` : 'no requests'
  const files = r.files
    .map(
      (f) =>
        `${p(f.name)} (${f.format}${f.gzip ? ', gzip' : ''}, ${lines(f.lines)}${f.error ? `, stopped: ${f.error}` : ''})`,
    )
    .join(', ')
  out.push(`sluice replay: ${lines(r.lines)}, ${span}`)
  out.push(`  input      ${files}`)
  out.push(
    `  evaluated  as enforce (config mode: ${r.config.configuredMode}), disable lasts ${humanMs(r.config.disableForMs)}`,
  )
  out.push(
    `  requests   ${n(r.requests)}: ${n(r.requests - r.passedThrough - r.rejected.count)} to sensitive routes, ${n(r.passedThrough)} passed through, ${n(r.rejected.count)} refused (400)`,
  )
  if (r.rejected.count > 0) {
    for (const [reason, c] of Object.entries(r.rejected.reasons)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3))
      out.push(`             400 × ${n(c)}: ${reason}`)
  }
  if (r.bad.count > 0) {
    out.push(
      `  bad lines  ${n(r.bad.count)} (skipped)${r.bad.count > r.bad.first.length ? `, the first ${r.bad.first.length}:` : ':'}`,
    )
    for (const b of r.bad.first) out.push(`             ${p(b.file)}:${b.line}: ${b.reason}`)
  }
  if (r.ignored > 0) out.push(`  ignored    ${lines(r.ignored)} without a request`)
  for (const w of r.warnings) out.push(`  warning    ${p(w)}`)

  for (const s of r.routes) {
    const route = s.route
    const methods = route.methods ? [...route.methods].join(',') : 'ANY'
    out.push('')
    out.push(
      `route ${p(route.name)}  ${methods} ${p(route.path)}  records: ${p(route.recordSource)}${s.requestsOnly ? '  (not in access logs: requests only)' : ''}`,
    )
    if (s.requests === 0) {
      out.push('  no requests in the log')
      continue
    }
    const kinds = Object.entries(s.decisions)
      .filter(([k, c]) => c > 0 && k !== 'allow')
      .map(([k, c]) => `${k} ${n(c)}`)
    out.push(
      `  ${plural(s.requests, 'request')} from ${plural(s.accounts.size, 'account')} · blocked ${n(s.blocked)}${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''}`,
    )
    const labelWidth = Math.max(...s.limits.map((l) => l.limit.label.length))
    out.push(`  ${'limit'.padEnd(labelWidth)}  accounts crossed  first`)
    for (const l of s.limits) {
      if (unknown(s, l.limit.kind)) {
        out.push(`  ${l.limit.label.padEnd(labelWidth)}  ${'n/a'.padStart(16)}  records not in the log`)
        continue
      }
      const first = l.crossings[0]
      const counts = first ? `[${first.counts.join(', ')}]` : ''
      out.push(
        `  ${l.limit.label.padEnd(labelWidth)}  ${String(l.accounts).padStart(16)}  ${first ? `${isoTime(first.time)} ${p(first.account)} counts ${counts} (${p(first.at.file)}:${first.at.line})` : '-'}`,
      )
      for (const c of l.crossings.slice(1, 5))
        out.push(
          `  ${''.padEnd(labelWidth)}  ${''.padStart(16)}  ${isoTime(c.time)} ${p(c.account)} counts [${c.counts.join(', ')}]`,
        )
      if (l.accounts > 5) out.push(`  ${''.padEnd(labelWidth)}  ${''.padStart(16)}  … ${l.accounts - 5} more`)
    }
    const rank = rankingLimit(s)
    const heads = route.policy.limits.map(
      (l) => `${formatMs(l.windowMs)} ${l.kind === 'requests' ? 'req' : 'distinct'} (${l.max})`,
    )
    const accounts = topAccounts(s, top)
    const width = Math.max(7, ...accounts.map((a) => p(a.account).length))
    out.push(`  top accounts (highest count per window, unconstrained${rank >= 0 ? `; by ${heads[rank]}` : ''})`)
    out.push(
      `    ${'account'.padEnd(width)}  ${'requests'.padStart(8)}  ${'blocked'.padStart(7)}  ${heads.map((h) => h.padStart(12)).join('  ')}`,
    )
    for (const a of accounts) {
      const values = a.max.map((v, i) => cell(s, i, v).padStart(Math.max(12, (heads[i] ?? '').length)))
      out.push(
        `    ${p(a.account).padEnd(width)}  ${String(a.requests).padStart(8)}  ${String(a.blocked).padStart(7)}  ${values.join('  ')}`,
      )
    }
  }

  out.push('')
  if (r.blocked.count === 0) out.push('blocked requests: none')
  else {
    const shown = r.blocked.first.slice(0, options.blocked ?? 20)
    out.push(
      `blocked requests: ${n(r.blocked.count)}${r.blocked.count > shown.length ? ` (the first ${shown.length})` : ''}`,
    )
    for (const b of shown)
      out.push(
        `  ${isoTime(b.time)}  ${p(b.file)}:${b.line}  ${p(b.account)}  ${p(b.method)} ${p(b.target)}  → ${b.kind}${b.limit ? ` (${b.limit})` : ''}`,
      )
  }
  return `${out.join('\n')}\n`
}

const lines = (count: number) => `${n(count)} line${count === 1 ? '' : 's'}`

/** Distinct records of a route whose records come from bodies: unknown, not 0. */
function unknown(s: RouteStats, kind: Limit['kind']): boolean {
  return s.requestsOnly !== null && kind === 'distinctRecords'
}

/** One account's value for limit `i`, as shown. */
export function cell(s: RouteStats, i: number, v: number): string {
  if (unknown(s, s.route.policy.limits[i]?.kind ?? 'requests')) return 'n/a'
  return v > s.measureCap ? `>${s.measureCap}` : String(v)
}

/** Plain JSON: times as ISO strings, accounts' maxima as histograms (not one number per account). */
export function replayToJson(
  r: ReplayResult,
  suggestion: Suggestion | undefined,
  options: { top?: number } = {},
): unknown {
  const top = options.top ?? 20
  const iso = (t: number | null) => (t === null ? null : isoTime(t))
  return {
    mode: r.config.mode,
    configuredMode: r.config.configuredMode,
    files: r.files,
    lines: r.lines,
    requests: r.requests,
    ignored: r.ignored,
    bad: r.bad,
    rejected: r.rejected,
    passedThrough: r.passedThrough,
    from: iso(r.from),
    to: iso(r.to),
    warnings: r.warnings,
    elapsedMs: Math.round(r.elapsedMs),
    routes: r.routes.map((s, ri) => ({
      name: s.route.name,
      path: s.route.path,
      records: s.route.recordSource,
      requestsOnly: s.requestsOnly !== null,
      requests: s.requests,
      accounts: s.accounts.size,
      blocked: s.blocked,
      decisions: s.decisions,
      measureCap: s.measureCap,
      limits: s.limits.map((l, li) => ({
        label: l.limit.label,
        kind: l.limit.kind,
        window: formatMs(l.limit.windowMs),
        max: l.limit.max,
        action: l.limit.action,
        accountsCrossed: l.accounts,
        requestsDecided: l.decided,
        firstCrossed: iso(l.crossings[0]?.time ?? null),
        crossings: l.crossings.map((c) => ({ ...c, time: isoTime(c.time) })),
        distribution: unknown(s, l.limit.kind) ? null : histogram(rowsOf(s, l.limit).map((a) => a.max[li] as number)),
        ...(suggestion
          ? {
              suggested: suggestion.routes[ri]?.limits[li]?.suggested ?? null,
              kept: suggestion.routes[ri]?.limits[li]?.kept ?? null,
            }
          : {}),
      })),
      top: topAccounts(s, top).map((a) => ({
        ...a,
        first: isoTime(a.first),
        last: isoTime(a.last),
        crossedAt: a.crossedAt.map((t) => (t < 0 ? null : isoTime(t))),
      })),
      ...(suggestion ? { likelyScrapers: suggestion.routes[ri]?.scrapers ?? [] } : {}),
    })),
    blocked: { count: r.blocked.count, first: r.blocked.first.map((b) => ({ ...b, time: isoTime(b.time) })) },
    ...(suggestion ? { method: suggestion.method } : {}),
  }
}
