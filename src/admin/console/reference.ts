// "Why was I blocked?": the reference a user read off a block page, explained.
import type { DecisionJson } from '../decisions.js'
import { html, type Html } from './html.js'
import { accountHref, BASE, headHtml, meter, when } from './layout.js'

export function referenceBody(asked: string, decision: DecisionJson | undefined, problem: string | undefined): Html {
  return html`<h1>Reference lookup</h1>
    <form class="lookup" method="get" action="${BASE}/decisions">
      <label for="ref">Reference from the block page</label>
      <input
        id="ref"
        name="ref"
        value="${asked}"
        required
        maxlength="40"
        autocomplete="off"
        spellcheck="false"
        placeholder="7K3QX9M2PA"
        aria-describedby="ref-hint"
      />
      <button type="submit">Explain</button>
      <span id="ref-hint" class="hint"
        >Ten letters and digits: the Sluice-Reference header, "reference" in the body, or the page.</span
      >
    </form>
    ${problem !== undefined ? html`<p class="error" role="alert">${problem}</p>` : null}
    ${decision !== undefined ? explanation(decision) : null}`
}

function explanation(d: DecisionJson): Html {
  const acted = d.limit
    ? html`the limit <q>${d.limit.label}</q> (${d.limit.kind} per ${d.limit.per}, ${d.limit.window} window) reached
        ${countOf(d)} of ${d.limit.max}`
    : d.decision === 'disabled'
      ? html`it was already disabled`
      : html`the store could not be reached`
  return html`<section class="explained" aria-labelledby="h-explained">
    <h2 id="h-explained">Reference <code>${d.reference}</code></h2>
    <p class="sentence">
      <a href="${accountHref(d.account)}"><code class="id">${d.account}</code></a> was
      ${d.blocked ? html`<strong>${verb(d.decision)}</strong>` : html`only logged (${d.decision}${d.shadow ? ', shadow mode' : ''})`}
      on route <code>${d.route}</code> at ${when(d.time)}: ${acted}.
      ${d.disabledUntil !== undefined ? html`Disabled until ${when(d.disabledUntil)}.` : null}
      ${d.retryAfter !== undefined ? html`Told to retry after ${d.retryAfter} s.` : null}
    </p>
    <table>
      <caption>
        Every limit of the route at that moment (that request included)
      </caption>
      ${headHtml(['Limit', 'Window', 'Count / threshold'])}
      <tbody>
        ${d.counts.map(
          (c) =>
            html`<tr>
              <td>${c.label}</td>
              <td>${c.window}</td>
              <td>${meter(c.max > 0 ? c.count / c.max : 1, `${c.count} / ${c.max}`)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <dl class="facts">
      <dt>Request</dt>
      <dd><code>${d.method} ${d.path}</code> (${d.step})</dd>
      <dt>Identity</dt>
      <dd><code>${d.identity}</code></dd>
      <dt>Client address</dt>
      <dd><code>${d.clientIp}</code></dd>
      <dt>Decided by</dt>
      <dd>${d.instance}</dd>
    </dl>
    <p><a class="button" href="${accountHref(d.account)}">Open the account</a></p>
  </section>`
}

function countOf(d: DecisionJson): number {
  return d.counts.find((c) => c.id === d.limit?.id)?.count ?? 0
}

function verb(decision: string): string {
  const verbs: Record<string, string> = {
    throttle: 'throttled',
    challenge: 'challenged',
    disable: 'disabled',
    disabled: 'refused (already disabled)',
    unavailable: 'refused (store unavailable)',
  }
  return verbs[decision] ?? decision
}
