// `--report FILE.html`: one self-contained page (inline CSS and SVG, no script, nothing
// fetched; its Content-Security-Policy forbids loading anything) that can be mailed or
// attached to a ticket. Every string from the log (accounts, paths) is attacker-controlled and
// goes through `esc`.
//
// One chart per route and window: the limits on one window (a ladder: 300 → log, 600 →
// throttle, or distinct records then requests) are drawn on the same distribution, since they
// measure the same thing.
import { formatMs, type Limit } from '../engine/policy.js'
import { plural } from '../units.js'
import { html as esc } from './escape.js'
import { histogram, type Bucket } from './histogram.js'
import { rankingLimit, rowsOf, topAccounts, type ReplayResult, type RouteStats } from './replay.js'
import {
  formatSuggestionYaml,
  isoTime,
  type LimitSuggestion,
  type RouteSuggestion,
  type Suggestion,
} from './suggest.js'
import { cell } from './summary.js'

const n = (x: number) => x.toLocaleString('en-US')

export function renderReport(
  r: ReplayResult,
  suggestion: Suggestion,
  options: { title?: string; top?: number; blocked?: number; config?: string } = {},
): string {
  const top = options.top ?? 20
  const span = r.from !== null && r.to !== null ? `${isoTime(r.from)} → ${isoTime(r.to)}` : 'no requests'
  const body: string[] = []
  body.push(`<h1>${esc(options.title ?? 'sluice replay')}</h1>`)
  body.push(
    `<p class="meta">${plural(r.lines, 'line')} · ${esc(span)} · evaluated as <b>enforce</b> (config mode: ${r.config.configuredMode})${options.config ? ` · config <code>${esc(options.config)}</code>` : ''}</p>`,
  )
  body.push('<table class="summary">')
  body.push(
    row([
      'files',
      r.files
        .map(
          (f) =>
            `${f.name} (${f.format}${f.gzip ? ', gzip' : ''}, ${plural(f.lines, 'line')}${f.error ? `, stopped: ${f.error}` : ''})`,
        )
        .join(', '),
    ]),
  )
  body.push(
    row([
      'requests',
      `${n(r.requests)}: ${n(r.requests - r.passedThrough - r.rejected.count)} to sensitive routes, ${n(r.passedThrough)} passed through, ${n(r.rejected.count)} refused (400)`,
    ]),
  )
  body.push(row(['blocked', `${plural(r.blocked.count, 'request')} would have been blocked`]))
  body.push(
    row([
      'bad lines',
      r.bad.count === 0
        ? 'none'
        : `${n(r.bad.count)} skipped; first: ${r.bad.first.map((b) => `${b.file}:${b.line} ${b.reason}`).join(' · ')}`,
    ]),
  )
  body.push('</table>')
  if (r.warnings.length > 0)
    body.push(`<ul class="warnings">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>`)

  r.routes.forEach((s, i) => body.push(renderRoute(s, suggestion.routes[i] as RouteSuggestion, top)))

  body.push('<section class="blocked"><h2>Requests that would have been blocked</h2>')
  if (r.blocked.count === 0) body.push('<p>None.</p>')
  else {
    const shown = r.blocked.first.slice(0, options.blocked ?? 50)
    body.push(
      `<p>${n(r.blocked.count)} in all${r.blocked.count > shown.length ? `; the first ${shown.length}` : ''}.</p>`,
    )
    body.push(
      '<table class="data"><thead>' +
        row(['time', 'line', 'account', 'route', 'request', 'decision', 'limit'], 'th') +
        '</thead><tbody>',
    )
    for (const b of shown)
      body.push(
        row([
          isoTime(b.time),
          `${b.file}:${b.line}`,
          b.account,
          b.route,
          `${b.method} ${b.target}`,
          b.kind,
          b.limit ?? '',
        ]),
      )
    body.push('</tbody></table>')
  }
  body.push('</section>')

  body.push('<section class="suggest"><h2>Suggested limits</h2>')
  body.push(
    "<p>From each account's highest count per window, likely scrapers left out; see docs/tuning.md for the method.</p>",
  )
  body.push(`<pre>${formatSuggestionYaml(suggestion, r).split('\n').map(esc).join('\n')}</pre></section>`)

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(options.title ?? 'sluice replay')}</title>
<style>${CSS}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`
}

function renderRoute(s: RouteStats, sug: RouteSuggestion, top: number): string {
  const route = s.route
  const methods = route.methods ? [...route.methods].join(',') : 'ANY'
  const out: string[] = []
  out.push(`<section class="route${s.requestsOnly ? ' requests-only' : ''}" id="route-${esc(route.name)}">`)
  out.push(
    `<h2>Route ${esc(route.name)} <code>${esc(methods)} ${esc(route.path)}</code>${s.requestsOnly ? ' <span class="badge">requests only</span>' : ''}</h2>`,
  )
  out.push(
    `<p class="meta">records: ${esc(route.recordSource)} · ${plural(s.requests, 'request')} from ${plural(s.accounts.size, 'account')} · ${n(s.blocked)} blocked</p>`,
  )
  if (s.requestsOnly) {
    out.push(
      `<p class="note">This route reads its records from the ${s.requestsOnly === 'body' ? 'request body' : 'response body'}. Access logs do not carry bodies, so only its requests were counted: its distinct-records limits were not replayed, and nothing here says whether they would have been crossed. Run it in shadow mode to measure them.</p>`,
    )
  }
  out.push(
    '<table class="data"><thead>' +
      row(['limit', 'accounts crossed', 'first crossed', 'by', 'counts then', 'requests decided', 'suggested'], 'th') +
      '</thead><tbody>',
  )
  s.limits.forEach((l, i) => {
    const first = l.crossings[0]
    const ls = sug.limits[i]
    const suggested = ls?.suggested != null ? String(ls.suggested) : `kept (${ls?.kept ?? 'no data'})`
    if (s.requestsOnly && l.limit.kind === 'distinctRecords')
      out.push(row([l.limit.label, 'n/a', '-', '', '', 'n/a', suggested]))
    else
      out.push(
        row([
          l.limit.label,
          String(l.accounts),
          first ? isoTime(first.time) : '-',
          first?.account ?? '',
          first ? first.counts.join(' / ') : '',
          String(l.decided),
          suggested,
        ]),
      )
  })
  out.push('</tbody></table>')

  if (s.requests > 0) {
    out.push('<div class="charts">')
    for (const group of ladders(s.route.policy.limits)) out.push(renderFigure(s, sug, group))
    out.push('</div>')

    const rank = rankingLimit(s)
    const heads = route.policy.limits.map(
      (l) => `${formatMs(l.windowMs)} ${l.kind === 'requests' ? 'requests' : 'distinct'} (${l.max})`,
    )
    out.push(`<h3>Top accounts${rank >= 0 ? ` by ${esc(heads[rank] ?? '')}` : ''}</h3>`)
    const scrapers = new Set(sug.scrapers.map((x) => x.account))
    out.push(
      '<table class="data"><thead>' +
        row(['account', 'requests', 'blocked', ...heads, 'first seen', 'last seen'], 'th') +
        '</thead><tbody>',
    )
    for (const a of topAccounts(s, top)) {
      const cells = [
        a.account + (scrapers.has(a.account) ? ' ⚑' : ''),
        String(a.requests),
        String(a.blocked),
        ...a.max.map((v, i) => cell(s, i, v)),
        isoTime(a.first),
        isoTime(a.last),
      ]
      out.push(row(cells, 'td', scrapers.has(a.account) ? 'scraper' : undefined))
    }
    out.push('</tbody></table>')
    if (sug.scrapers.length > 0)
      out.push(
        `<p class="note">⚑ likely scraper (${sug.scrapers.length} on this route): far above the other accounts, left out of the suggestion.</p>`,
      )
  }
  out.push('</section>')
  return out.join('\n')
}

// ─── the chart ───────────────────────────────────────────────────────────────────────────

/** A route's limits grouped by kind and window, each group's steps mildest first. */
export function ladders(limits: readonly Limit[]): Limit[][] {
  const groups = new Map<string, Limit[]>()
  for (const l of limits) {
    const key = `${l.per} ${l.kind} ${l.windowMs}`
    groups.set(key, [...(groups.get(key) ?? []), l])
  }
  return [...groups.values()].map((g) => g.sort((a, b) => a.max - b.max || a.severity - b.severity))
}

function renderFigure(s: RouteStats, sug: RouteSuggestion, steps: Limit[]): string {
  const first = steps[0] as Limit
  const what =
    first.kind === 'requests'
      ? 'requests'
      : first.kind === 'distinctAccounts'
        ? 'distinct accounts'
        : 'distinct records'
  if (s.requestsOnly && first.kind === 'distinctRecords') {
    return `<figure class="unmeasured"><div class="unmeasured-box">${esc(`${formatMs(first.windowMs)} distinct records: not in access logs`)}</div><figcaption>Records come from the ${s.requestsOnly === 'body' ? 'request body' : 'response body'}: requests only.</figcaption></figure>`
  }
  const values = rowsOf(s, first).map((a) => a.max[first.index] as number)
  const suggestions = steps.map((l) => sug.limits[l.index] as LimitSuggestion)
  const top = Math.max(...steps.map((l) => l.max), ...suggestions.map((x) => x.suggested ?? 0)) + 1
  const buckets = histogram(values, top)
  const limitsText = steps.map((l) => `${l.max} → ${l.action}`).join(', ')
  const suggestedText = suggestions.map((x) => x.suggested ?? 'kept').join(', ')
  return `<figure>${renderChart(
    buckets,
    s.route.name,
    steps,
    suggestions.map((x) => x.suggested),
  )}<figcaption>Accounts by their highest ${what} in any ${formatMs(first.windowMs)} window (unconstrained: as if no limit had stopped them). Solid red lines: the limits (${esc(limitsText)}); dashed green: suggested (${esc(suggestedText)}).</figcaption></figure>`
}

const W = 640
const H = 260
const M = { left: 52, right: 16, top: 24, bottom: 64 }
// Headroom above the tallest bar for its count label.
const HEADROOM = 14

/**
 * Accounts per bucket (log-scaled bars), with every step of one window's ladder and its
 * suggested value as vertical lines. Bars at or past the mildest step are red.
 */
export function renderChart(
  buckets: Bucket[],
  route: string,
  steps: readonly Limit[],
  suggested: readonly (number | null)[],
): string {
  const first = steps[0] as Limit
  const plotW = W - M.left - M.right
  const plotH = H - M.top - M.bottom
  const bw = plotW / buckets.length
  const maxCount = Math.max(1, ...buckets.map((b) => b.accounts))
  const yOf = (c: number) => M.top + plotH - ((plotH - HEADROOM) * Math.log10(1 + c)) / Math.log10(1 + maxCount)
  const xOf = (v: number) => {
    let i = 0
    while (i < buckets.length - 1 && (buckets[i] as Bucket).high < v) i++
    const b = buckets[i] as Bucket
    const frac = Math.min(1, Math.max(0, (v - b.low) / (b.high - b.low)))
    return M.left + i * bw + frac * bw
  }
  const kind = first.kind === 'requests' ? 'requests' : 'distinct records'
  const title = `${formatMs(first.windowMs)} ${kind}`
  const parts: string[] = []
  parts.push(
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(`${route}: ${title}`)}" data-route="${esc(route)}" data-window="${formatMs(first.windowMs)}" data-kind="${first.kind}">`,
  )
  parts.push(`<text class="title" x="${M.left}" y="15">${esc(title)}</text>`)
  // y axis: 1, 10, 100 … accounts
  for (let t = 1; t <= maxCount; t *= 10) {
    const y = yOf(t).toFixed(1)
    parts.push(
      `<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}"/><text class="tick" x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${t}</text>`,
    )
  }
  parts.push(
    `<text class="axis" transform="translate(12 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">accounts</text>`,
  )
  buckets.forEach((b, i) => {
    const x = M.left + i * bw + 1
    const y = yOf(b.accounts)
    const over = b.low >= first.max
    parts.push(
      `<rect class="bar${over ? ' over' : ''}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(M.top + plotH - y).toFixed(1)}"><title>${esc(b.label)}: ${b.accounts} account${b.accounts === 1 ? '' : 's'}</title></rect>`,
    )
    if (b.accounts > 0)
      parts.push(
        `<text class="count" x="${(x + bw / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle">${b.accounts}</text>`,
      )
    const lx = (x + bw / 2 - 1).toFixed(1)
    const ly = M.top + plotH + 10
    parts.push(
      `<text class="tick" x="${lx}" y="${ly}" text-anchor="end" transform="rotate(-35 ${lx} ${ly})">${esc(b.label)}</text>`,
    )
  })
  parts.push(`<line class="axis-line" x1="${M.left}" x2="${W - M.right}" y1="${M.top + plotH}" y2="${M.top + plotH}"/>`)
  parts.push(
    `<text class="axis" x="${M.left + plotW / 2}" y="${H - 4}" text-anchor="middle">highest ${kind} per ${formatMs(first.windowMs)} window</text>`,
  )
  // Labels stack down the plot, one row per line, so a ladder's close steps stay readable.
  let row = 0
  const line = (cls: string, v: number, label: string) => {
    const x = xOf(v).toFixed(1)
    // Labels go right of the line, or left of it near the right edge.
    const left = Number(x) > W - M.right - 110
    const dy = 10 + 13 * row++
    return `<line class="threshold ${cls}" x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + plotH}" data-value="${v}"/><text class="threshold-label ${cls}" x="${(Number(x) + (left ? -4 : 4)).toFixed(1)}" y="${M.top + dy}" text-anchor="${left ? 'end' : 'start'}">${esc(label)}</text>`
  }
  for (const l of steps) parts.push(line('current', l.max, `${l.max} → ${l.action}`))
  steps.forEach((l, i) => {
    const v = suggested[i]
    if (v !== null && v !== undefined && v !== l.max) parts.push(line('suggested', v, `suggested ${v} → ${l.action}`))
  })
  parts.push('</svg>')
  return parts.join('')
}

// ─── html ────────────────────────────────────────────────────────────────────────────────

function row(cells: string[], tag: 'td' | 'th' = 'td', cls?: string): string {
  return `<tr${cls ? ` class="${cls}"` : ''}>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 2rem auto; max-width: 1400px; padding: 0 1.5rem; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d8dde6; padding-bottom: .3rem; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f5f7fa; padding: 1rem; overflow-x: auto; }
.meta { color: #5a6476; }
table { border-collapse: collapse; margin: .8rem 0; }
td, th { padding: .25rem .7rem; border-bottom: 1px solid #e6e9ef; text-align: left; vertical-align: top; }
table.summary td:first-child { font-weight: 600; }
table.data td { font-variant-numeric: tabular-nums; max-width: 38rem; overflow-wrap: anywhere; }
tr.scraper td { background: #fdecec; }
.note { color: #8a1f1f; }
.badge { font-size: 12px; font-weight: 600; color: #7a4b00; background: #fff1d6; border: 1px solid #e8c27a; border-radius: 3px; padding: .1rem .4rem; vertical-align: middle; }
ul.warnings { background: #fff8e6; border-left: 4px solid #e8a33d; padding: .6rem 1rem .6rem 2rem; }
.unmeasured-box { width: 640px; max-width: 100%; height: 120px; display: flex; align-items: center; justify-content: center; border: 1px dashed #c9ced8; color: #5a6476; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 640px; } figcaption { color: #5a6476; font-size: 12px; }
svg.chart { background: #fff; border: 1px solid #e6e9ef; max-width: 100%; height: auto; }
svg .title { font-size: 12px; font-weight: 600; fill: #1d2330; }
svg .tick, svg .count { font-size: 10px; fill: #5a6476; }
svg .axis { font-size: 11px; fill: #5a6476; }
svg .grid { stroke: #eef0f4; } svg .axis-line { stroke: #9aa3b2; }
svg .bar { fill: #4a78c2; } svg .bar.over { fill: #c8453c; }
svg .threshold { stroke-width: 2; } svg .threshold.current { stroke: #c8453c; } svg .threshold.suggested { stroke: #2e8b57; stroke-dasharray: 6 4; }
svg .threshold-label { font-size: 11px; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; } svg .threshold-label.current { fill: #c8453c; } svg .threshold-label.suggested { fill: #2e8b57; }
`
