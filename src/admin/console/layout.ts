// The page shell (header, navigation, sign-out) and the table cells the overview shares with
// its script: one model, rendered here as HTML and by the script with textContent.
import { html, type Html } from './html.js'
import type { ConsoleSession } from './sessions.js'

export const BASE = '/console'

export type Section = 'overview' | 'accounts' | 'incidents' | 'reference' | 'config'

const SECTIONS: [Section, string, string][] = [
  ['overview', 'Overview', BASE],
  ['accounts', 'Accounts', `${BASE}/accounts`],
  ['incidents', 'Incidents', `${BASE}/incidents`],
  ['reference', 'Reference lookup', `${BASE}/decisions`],
  ['config', 'Config', `${BASE}/config`],
]

export interface PageOptions {
  title: string
  body: Html
  /** Signed in: the navigation and the sign-out form (null: the sign-in page). */
  session: ConsoleSession | null
  section?: Section
}

export function layout(o: PageOptions): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${o.title} · sluice console</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="${BASE}/console.css" />
        <script src="${BASE}/console.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <span class="brand">sluice</span>
          ${o.session !== null ? navigation(o.session, o.section) : null}
        </header>
        <main id="main">${o.body}</main>
      </body>
    </html> `
}

function navigation(session: ConsoleSession, current: Section | undefined): Html {
  return html`<nav aria-label="Console">
      <ul>
        ${SECTIONS.map(
          ([key, label, href]) =>
            html`<li><a href="${href}" ${key === current ? html` aria-current="page"` : null}>${label}</a></li>`,
        )}
      </ul>
    </nav>
    <form class="find" method="get" action="${BASE}/accounts" role="search">
      <label for="find">Account</label>
      <input id="find" name="find" type="search" placeholder="part of an account id" required maxlength="256" />
      <button type="submit">Find</button>
    </form>
    <form class="signout" method="post" action="${BASE}/logout">
      <input type="hidden" name="csrf" value="${session.csrf}" />
      <span class="who">${session.operator}</span>
      <button type="submit">Sign out</button>
    </form>`
}

/** One table cell: text, a link, or a bar (a fraction of a limit). */
export interface Cell {
  text: string
  href?: string
  /** The bar's fill: count / threshold (drawn as a <meter>, 1 and beyond is full). */
  meter?: number
}

/** A table's head: one column header per name. */
export function headHtml(columns: readonly string[]): Html {
  return html`<thead>
    <tr>
      ${columns.map((c) => html`<th scope="col">${c}</th>`)}
    </tr>
  </thead>`
}

export function rowsHtml(rows: readonly (readonly Cell[])[], columns: number, empty: string): Html {
  if (rows.length === 0)
    return html`<tr>
      <td colspan="${columns}" class="none">${empty}</td>
    </tr>`
  return html`${rows.map(
    (cells) =>
      html`<tr>
        ${cells.map(cellHtml)}
      </tr>`,
  )}`
}

function cellHtml(c: Cell): Html {
  if (c.meter !== undefined) return html`<td>${meter(c.meter, c.text)}</td>`
  if (c.href !== undefined) return html`<td><a href="${c.href}">${c.text}</a></td>`
  return html`<td>${c.text}</td>`
}

/** A bar for count / threshold: amber from 80 %, red at the limit. */
export function meter(fraction: number, label: string): Html {
  const value = Math.min(1, Math.max(0, fraction))
  return html`<span class="bar"
    ><meter min="0" max="1" low="0.8" high="0.999" optimum="0" value="${value}" aria-label="${label}"></meter>
    ${label}</span
  >`
}

export const accountHref = (account: string) => `${BASE}/accounts/${encodeURIComponent(account)}`
export const referenceHref = (ref: string) => `${BASE}/decisions?ref=${encodeURIComponent(ref)}`

/** An ISO 8601 time as operators read it: `2024-05-01 12:00:03 UTC`; `forever` stays. */
export function when(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}T/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` : iso
}
