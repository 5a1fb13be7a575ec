// The page a browser gets instead of data when a challenge limit is crossed. Self-contained (no
// CDN, no external script): it solves the proof of work in the page, stores the solution in a
// short-lived cookie and reloads, so the original GET is retried by itself.
import type { Challenge } from 'altcha-lib'
import { SOLUTION_COOKIE } from './challenge.js'
import { SOLVE_FUNCTION } from './solver.js'
import { escapeHtml, PAGE_STYLE, pageParts, type PageOptions } from './respond.js'

// The page's script: read the challenge, solve it (solver.ts), keep the solution in a short-lived
// cookie and reload, so the original GET is retried by itself.
const SOLVER = String.raw`
(function () {
  ${SOLVE_FUNCTION}
  var challenge = JSON.parse(document.getElementById('sluice-challenge').textContent);
  var status = document.getElementById('sluice-status');
  solveChallenge(challenge, function (payload) {
    document.cookie = '${SOLUTION_COOKIE}=' + payload + '; path=/; max-age=120; samesite=strict';
    status.textContent = 'Done. Loading the page…';
    location.reload();
  }, function (attempts) {
    status.textContent = 'Checking… ' + attempts.toLocaleString() + ' attempts';
  });
})();
`

export function challengePage(challenge: Challenge, options: PageOptions & { reference?: string } = {}): string {
  // `<` escaped so the JSON can never close the script element.
  const json = JSON.stringify(challenge).replace(/</g, '\\u003c')
  const { head, foot } = pageParts(options)
  const lang = escapeHtml(options.language ?? 'en')
  const title = options.title !== undefined ? `One moment… — ${escapeHtml(options.title)}` : 'One moment…'
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${title}</title><style>${PAGE_STYLE}#sluice-status{color:#555}</style></head><body>${head}<h1>One moment…</h1><p>This page is being requested unusually often from your account. Your browser is doing a short calculation to continue; the page will load by itself.</p><p id="sluice-status">Checking…</p><noscript><p>Please enable JavaScript to continue, or try again later.</p></noscript>${foot}<script type="application/json" id="sluice-challenge">${json}</script><script>${SOLVER}</script></body></html>`
}
