// Grouped episodes (GET /incidents), filtered by route, decision and time.
import type { IncidentsJson } from '../server.js'
import { html, type Html } from './html.js'
import { accountHref, BASE, headHtml, referenceHref, rowsHtml, when } from './layout.js'

export interface IncidentFilter {
  route?: string
  decision?: string
  /** A duration back from now: 15m, 1h, 24h, 7d. */
  since: string
}

export const SINCE = ['15m', '1h', '24h', '7d'] as const
const DECISIONS = ['log', 'throttle', 'challenge', 'disable', 'disabled', 'unavailable']

export function incidentsBody(data: IncidentsJson, f: IncidentFilter, routes: readonly string[]): Html {
  const shown = data.incidents.filter(
    (e) => (f.route === undefined || e.route === f.route) && (f.decision === undefined || e.decision === f.decision),
  )
  const options = (values: readonly string[], selected: string | undefined, any?: string) =>
    html`${any !== undefined ? html`<option value="">${any}</option>` : null}${values.map(
      (v) => html`<option${v === selected ? html` selected` : null}>${v}</option>`,
    )}`
  return html`<h1>Incidents</h1>
    <form class="filters" method="get" action="${BASE}/incidents">
      <label for="f-route">Route</label
      ><select id="f-route" name="route">
        ${options(routes, f.route, 'any')}
      </select>
      <label for="f-decision">Decision</label
      ><select id="f-decision" name="decision">
        ${options(DECISIONS, f.decision, 'any')}
      </select>
      <label for="f-since">Since</label
      ><select id="f-since" name="since">
        ${options(SINCE, f.since)}
      </select>
      <button type="submit">Filter</button>
    </form>
    <p>
      ${shown.length} episode${shown.length === 1 ? '' : 's'}: decisions of one account, route, limit and action less
      than 10 minutes apart are one row. This instance keeps the last ${data.capacity}; the audit trail keeps all.
    </p>
    <table>
      ${headHtml(['First', 'Last', 'Account', 'Route', 'Limit', 'Decision', 'Requests', 'Reference'])}
      <tbody>
        ${rowsHtml(
          shown.map((e) => [
            { text: when(e.first) },
            { text: when(e.last) },
            { text: e.account, href: accountHref(e.account) },
            { text: e.route },
            { text: e.limit ?? '—' },
            { text: `${e.decision}${e.shadow ? ' (shadow)' : ''}` },
            { text: String(e.count) },
            e.reference !== undefined ? { text: e.reference, href: referenceHref(e.reference) } : { text: '—' },
          ]),
          8,
          'No incident matches.',
        )}
      </tbody>
    </table>`
}
