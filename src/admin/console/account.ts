// One account: per route and limit its count against the threshold, what disabled it and why,
// its latest decisions; and the controls (unlock, reset, disable), each behind a confirmation.
import type { AccountJson, AccountsFoundJson, AccountListJson, DisabledJson } from '../accounts.js'
import { html, type Html } from './html.js'
import { accountHref, BASE, headHtml, meter, referenceHref, rowsHtml, when, type Cell } from './layout.js'
import { LIST_EVERY_MS } from './pressure.js'

export type Control = 'unlock' | 'reset' | 'disable'
export const CONTROLS: readonly Control[] = ['unlock', 'reset', 'disable']

const DONE: Record<Control, string> = {
  unlock: 'Unlocked: every disable of this account is lifted.',
  reset: 'Reset: its counts are cleared and its disables lifted.',
  disable: 'Disabled.',
}

export function accountBody(a: AccountJson, done: Control | undefined): Html {
  const href = accountHref(a.account)
  return html`<h1>Account <code class="id">${a.account}</code></h1>
    ${done !== undefined ? html`<p class="flash" role="status">${DONE[done]}</p>` : null}
    <section aria-labelledby="h-state">
      <h2 id="h-state">State</h2>
      ${
        a.disabled.length === 0
          ? html`<p>Not disabled: its requests are decided by the limits below.</p>`
          : html`<ul class="disabled">
              ${a.disabled.map(disabledItem)}
            </ul>`
      }
      <p class="controls">
        ${a.disabled.length > 0 ? html`<a class="button" href="${href}/confirm?do=unlock">Unlock…</a>` : null}
        <a class="button" href="${href}/confirm?do=reset">Reset counts…</a>
        <a class="button danger" href="${href}/confirm?do=disable">Disable…</a>
      </p>
    </section>
    <section aria-labelledby="h-limits">
      <h2 id="h-limits">Counts against the limits <small>read ${when(a.at)}</small></h2>
      ${a.routes.length === 0 ? html`<p>No counts in any window.</p>` : null}
      ${a.routes.map(
        (r) =>
          html`<table>
            <caption>
              Route
              <code>${r.route}</code>
            </caption>
            ${headHtml(['Limit', 'Window', 'Count / threshold', 'Then'])}
            <tbody>
              ${r.limits.map(
                (l) =>
                  html`<tr>
                    <td>${l.kind}${l.per !== 'account' ? ` (per ${l.per})` : ''}</td>
                    <td>${l.window}</td>
                    <td>${meter(l.max > 0 ? l.count / l.max : 1, `${l.count} / ${l.max}`)}</td>
                    <td>${l.action}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`,
      )}
    </section>
    <section aria-labelledby="h-decisions">
      <h2 id="h-decisions">Latest decisions <small>this instance</small></h2>
      <table>
        ${headHtml(['Time', 'Route', 'Decision', 'Limit', 'Request', 'Reference'])}
        <tbody>
          ${rowsHtml(
            (a.decisions ?? []).map((d) => [
              { text: when(d.time) },
              { text: d.route },
              { text: `${d.decision}${d.shadow ? ' (shadow)' : ''}` },
              { text: d.limit?.label ?? '—' },
              { text: `${d.method} ${d.path}` },
              { text: d.reference, href: referenceHref(d.reference) },
            ]),
            6,
            'None kept.',
          )}
        </tbody>
      </table>
    </section>`
}

function disabledItem(d: DisabledJson): Html {
  const until = d.until === 'forever' ? 'until an operator unlocks it' : `until ${when(d.until)}`
  return html`<li>
    <strong>Disabled${d.mode === 'shadow' ? ' (shadow: logged, not blocked)' : ''}</strong> ${until}${
      d.limit !== undefined ? html`, by the limit <q>${d.limit}</q>` : html`, by an operator or a limit no longer kept`
    }${d.since !== undefined ? ` since ${when(d.since)}` : ''}${
      d.reference !== undefined ? html` — reference <a href="${referenceHref(d.reference)}">${d.reference}</a>` : null
    }.
  </li>`
}

/** The confirmation step: what the control does, the reason (and a disable's duration), Confirm or Cancel. */
export function confirmBody(account: string, control: Control, csrf: string, error?: string): Html {
  const href = accountHref(account)
  const what: Record<Control, Html> = {
    unlock: html`Unlock <code class="id">${account}</code>? Every disable is lifted at once, on every instance sharing
      the store; its counts stay.`,
    reset: html`Reset <code class="id">${account}</code>? Its counts on every route are cleared and its disables lifted.`,
    disable: html`Disable <code class="id">${account}</code>? Its requests to every sensitive route are refused until
      the time you give, or until someone unlocks it.`,
  }
  return html`<h1>${control[0]?.toUpperCase()}${control.slice(1)} an account</h1>
    ${error !== undefined ? html`<p class="error" role="alert">${error}</p>` : null}
    <form class="confirm" method="post" action="${href}/act">
      <p>${what[control]}</p>
      <input type="hidden" name="csrf" value="${csrf}" />
      <input type="hidden" name="do" value="${control}" />
      ${
        control === 'disable'
          ? html`<p>
              <label for="for">For how long</label>
              <input id="for" name="for" required list="durations" value="24h" aria-describedby="for-hint" />
              <datalist id="durations">
                <option value="30m"></option>
                <option value="1h"></option>
                <option value="24h"></option>
                <option value="7d"></option>
                <option value="forever"></option>
              </datalist>
              <span id="for-hint" class="hint">30m, 1h, 24h, 7d, or forever (until unlocked)</span>
            </p>`
          : null
      }
      <p>
        <label for="reason">Reason${control === 'disable' ? '' : ' (optional)'}</label>
        <input
          id="reason"
          name="reason"
          maxlength="500"
          ${control === 'disable' ? html` required` : null}
          aria-describedby="reason-hint"
        />
        <span id="reason-hint" class="hint">Recorded in the audit trail with your name.</span>
      </p>
      <p class="controls">
        <button type="submit" class="${control === 'disable' ? 'danger' : ''}">Confirm: ${control}</button>
        <a href="${href}">Cancel</a>
      </p>
    </form>`
}

/** /console/accounts: the accounts under the most pressure, or those whose id contains some text. */
export function accountsBody(
  list: AccountListJson | undefined,
  found: AccountsFoundJson | undefined,
  listedAt?: number,
): Html {
  const rows: Cell[][] = found
    ? found.accounts.map((a) => [{ text: a, href: accountHref(a) }])
    : (list?.accounts ?? []).map((a) => [
        { text: a.account, href: accountHref(a.account) },
        { text: `${Math.round(a.pressure * 100)} %`, meter: a.pressure },
        { text: a.disabled.length > 0 ? a.disabled.map((d) => `until ${when(d.until)}`).join('; ') : '—' },
      ])
  return html`<h1>Accounts</h1>
    ${
      found
        ? html`<p>
              Account ids containing
              <q>${found.find}</q>${found.truncated ? ' (the first found; be more precise)' : ''}:
            </p>
            <table>
              ${headHtml(['Account'])}
              <tbody>
                ${rowsHtml(rows, 1, 'None.')}
              </tbody>
            </table>`
        : html`<p>
              The ${list?.limit ?? 0} accounts nearest a distinct-records limit, of ${list?.scanned ?? 0} with
              counts${list?.truncated ? ' (the store stopped listing at its bound)' : ''}${
                listedAt !== undefined
                  ? `, listed ${when(new Date(listedAt).toISOString())} (at most every ${LIST_EVERY_MS / 1000} s, for every operator)`
                  : ''
              }.
            </p>
            <table>
              ${headHtml(['Account', 'Nearest limit', 'Disabled'])}
              <tbody>
                ${rowsHtml(rows, 3, 'No account has counts.')}
              </tbody>
            </table>`
    }
    <p><a href="${BASE}/decisions">Look up a reference</a> a user read off a block page.</p>`
}
