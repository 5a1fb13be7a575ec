// The sign-in form: an admin token (admin.token or a named one) and who is signing in.
import { html, type Html } from './html.js'
import { BASE } from './layout.js'

export function signInBody(next: string, error: string | undefined): Html {
  return html`<div class="sign-in">
    <h1>Sign in to the sluice console</h1>
    ${error !== undefined ? html`<p class="error" role="alert">${error}</p>` : null}
    <form method="post" action="${BASE}/login">
      <input type="hidden" name="next" value="${next}" />
      <p>
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          required
          autocomplete="current-password"
          autofocus
          aria-describedby="token-hint"
        />
        <span id="token-hint" class="hint">admin.token, or your own from admin.tokens</span>
      </p>
      <p>
        <label for="operator">Your name</label>
        <input id="operator" name="operator" maxlength="100" autocomplete="username" aria-describedby="operator-hint" />
        <span id="operator-hint" class="hint">Recorded with every action you take (a named token's name if empty)</span>
      </p>
      <p><button type="submit">Sign in</button></p>
    </form>
  </div>`
}
