// The running config as the operator needs it on duty, read-only: routes and their limits,
// overrides with the limits they make, which config it is (sha256 of the YAML) and since when.
// Nothing else of the config is shown: it holds secrets (tokens, keys, Redis passwords).
import type { CompiledConfig } from '../../config/compile.js'
import { html, type Html } from './html.js'
import { headHtml, when } from './layout.js'

export function configBody(config: CompiledConfig, loadedAt: number): Html {
  return html`<h1>Config</h1>
    <dl class="facts">
      <dt>Mode</dt>
      <dd>${config.shadow ? 'shadow (decides and logs, blocks nothing)' : 'enforce'}</dd>
      <dt>Config hash</dt>
      <dd>
        <code>${config.configHash ?? 'not loaded from a file'}</code>
        <span class="hint">sha256 of the YAML: compare with sha256sum sluice.yaml</span>
      </dd>
      <dt>Loaded</dt>
      <dd>${when(new Date(loadedAt).toISOString())} <span class="hint">at start, or the last reload</span></dd>
      <dt>Store</dt>
      <dd>${config.store.type}</dd>
    </dl>
    <section aria-labelledby="h-routes">
      <h2 id="h-routes">Routes</h2>
      <table>
        ${headHtml(['Route', 'Requests', 'Records from', 'Limits'])}
        <tbody>
          ${config.routes.map(
            (r) =>
              html`<tr>
                <td><code>${r.name}</code></td>
                <td><code>${r.methods ? [...r.methods].join(' ') : 'any'} ${r.path}</code></td>
                <td>${r.recordSource}</td>
                <td>
                  <ul class="plain">
                    ${r.policy.limits.map((l) => html`<li>${l.label}${l.per !== 'account' ? ` (per ${l.per})` : ''}</li>`)}
                  </ul>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>
    <section aria-labelledby="h-overrides">
      <h2 id="h-overrides">Overrides</h2>
      ${
        config.overrides.length === 0
          ? html`<p>None: every account has the routes' limits.</p>`
          : html`<table>
              ${headHtml(['Override', 'Effect', 'Limits it makes'])}
              <tbody>
                ${config.overrides.map(
                  (o) =>
                    html`<tr>
                      <td>${o.label}</td>
                      <td>${o.exempt ? 'exempt: counted and logged, never blocked' : `limits ×${o.scale}`}</td>
                      <td>
                        <ul class="plain">
                          ${[...o.compiled.values()].map(
                            (r) =>
                              html`<li><code>${r.name}</code>: ${r.policy.limits.map((l) => l.label).join('; ')}</li>`,
                          )}
                        </ul>
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
    </section>`
}
