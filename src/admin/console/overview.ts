// The overview: decisions per minute (live), the accounts under the most pressure, the latest
// grouped incidents, and the health /readyz reports. The same data feeds the first render and
// the script's two polls: the chart every 3 s (GET /console/live.json: the last hour's minutes
// only, never the accounts), the tables when the shared listing may be renewed, at most every
// 15 s (GET /console/overview.json: pressure.ts).
import type { IncidentsJson, Readiness } from '../server.js'
import type { AdminCall } from './api.js'
import { chartModel, chartSvg, type ChartModel } from './chart.js'
import { html, type Html } from './html.js'
import { accountHref, headHtml, referenceHref, rowsHtml, when, type Cell } from './layout.js'
import { LIST_EVERY_MS, type PressureCache } from './pressure.js'
import type { DecisionRate } from './rate.js'

/** GET /console/live.json, every 3 s: O(minutes), whatever the store holds. */
export interface LiveData {
  at: string
  chart: ChartModel
}

/** GET /console/overview.json: the tables. */
export interface TablesData {
  /** When the accounts were listed (shared by every session). */
  listed: string
  /** Milliseconds until a new listing may be made: the script asks again then. */
  nextMs: number
  accounts: Cell[][]
  incidents: Cell[][]
  health: Cell[][]
  /** ready or degraded. */
  status: string
}

export type OverviewData = LiveData & TablesData

const TOP_ACCOUNTS = 10
const LATEST_INCIDENTS = 10
const LIST_EVERY_S = LIST_EVERY_MS / 1000

export async function liveData(rate: DecisionRate, now: number): Promise<LiveData> {
  await rate.sample()
  return { at: when(new Date(now).toISOString()), chart: chartModel(rate.lastHour()) }
}

export async function tablesData(call: AdminCall, pressure: PressureCache): Promise<TablesData> {
  const [listing, incidents, ready] = await Promise.all([
    pressure.get(call),
    call<IncidentsJson>('GET', `/incidents?limit=${LATEST_INCIDENTS}`),
    call<Readiness>('GET', '/readyz'),
  ])
  const accounts = listing.answer
  return {
    listed: when(new Date(listing.at).toISOString()),
    nextMs: pressure.nextIn(listing),
    accounts:
      accounts.problem !== undefined
        ? [[{ text: `The store did not answer: ${accounts.problem}` }]]
        : accounts.body.accounts.slice(0, TOP_ACCOUNTS).map((a) => [
            { text: a.account, href: accountHref(a.account) },
            { text: `${Math.round(a.pressure * 100)} %`, meter: a.pressure },
            {
              text: a.disabled.length > 0 ? a.disabled.map((d) => `${d.mode} until ${when(d.until)}`).join('; ') : '—',
            },
          ]),
    incidents: (incidents.body.incidents ?? []).map((e) => [
      { text: when(e.last) },
      { text: e.account, href: accountHref(e.account) },
      { text: e.route },
      { text: e.limit ?? '—' },
      { text: `${e.decision}${e.shadow ? ' (shadow)' : ''}` },
      { text: String(e.count) },
      e.reference !== undefined ? { text: e.reference, href: referenceHref(e.reference) } : { text: '—' },
    ]),
    health: healthRows(ready.body),
    status: ready.body.status,
  }
}

export async function overviewData(
  call: AdminCall,
  rate: DecisionRate,
  pressure: PressureCache,
  now: number,
): Promise<OverviewData> {
  const [live, tables] = await Promise.all([liveData(rate, now), tablesData(call, pressure)])
  return { ...live, ...tables }
}

function healthRows(r: Readiness): Cell[][] {
  const store = `${r.store.type}: ${r.store.state}${r.store.policy !== undefined ? ` (${r.store.policy})` : ''}`
  const audit = r.audit ? `${r.audit.state}, ${r.audit.backlog} waiting` : 'not configured'
  const upstream = r.upstream
    ? `${r.upstream.state}: ${r.upstream.target}${r.upstream.reason !== undefined ? ` (${r.upstream.reason})` : ''}`
    : 'not checked'
  return [
    [{ text: 'Readiness' }, { text: r.status }],
    [{ text: 'Store' }, { text: store }],
    [{ text: 'Audit trail' }, { text: audit }],
    [{ text: 'Upstream' }, { text: upstream }],
  ]
}

export function overviewBody(d: OverviewData): Html {
  return html`<div id="overview" class="overview" data-next-ms="${String(d.nextMs)}">
    <h1>
      Overview <small class="live" aria-live="polite">updated <span id="updated">${d.at}</span></small>
    </h1>
    <section aria-labelledby="h-chart">
      <h2 id="h-chart">Decisions per minute (this instance)</h2>
      ${chartSvg(d.chart)}
    </section>
    <div class="columns">
      <section aria-labelledby="h-accounts">
        <h2 id="h-accounts">
          Accounts under the most pressure
          <small>listed <span id="listed">${d.listed}</span>, at most every ${LIST_EVERY_S} s</small>
        </h2>
        <table>
          ${headHtml(['Account', 'Nearest limit (distinct records)', 'Disabled'])}
          <tbody id="accounts-rows" data-empty="No account has counts.">
            ${rowsHtml(d.accounts, 3, 'No account has counts.')}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="h-health">
        <h2 id="h-health">Health</h2>
        <table class="health">
          <tbody id="health-rows">
            ${rowsHtml(d.health, 2, '')}
          </tbody>
        </table>
      </section>
    </div>
    <section aria-labelledby="h-incidents">
      <h2 id="h-incidents">Latest incidents</h2>
      <table>
        ${headHtml(['Last', 'Account', 'Route', 'Limit', 'Decision', 'Requests', 'Reference'])}
        <tbody id="incidents-rows" data-empty="No incident yet.">
          ${rowsHtml(d.incidents, 7, 'No incident yet.')}
        </tbody>
      </table>
      <p><a href="/console/incidents">All incidents</a></p>
    </section>
  </div>`
}
