// Exemptions and scaled limits through the proxy in front of a real upstream: an exempt account
// is counted and logged but served; a scale lets exactly that many times through on its routes;
// a network override; a verified JWT claim (a forged token's claim grants nothing); reload.
import { SignJWT } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildAdmin } from '../../src/admin/server.js'
import { compileConfigText } from '../../src/config/index.js'
import { accountPath, call, policiesOf, TOKEN } from '../admin/helpers.js'
import { send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const SECRET = '0123456789abcdef0123456789abcdef'

const config = (overrides: string) => `
version: 1
upstream: { url: UPSTREAM, timeout: 2s }
trustedProxies: [loopback]
identity:
  - { type: jwt, secret: "${SECRET}", algorithms: [HS256] }
  - { type: header, name: x-user, trusted: true }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 5, action: throttle }
      - { window: 1h, distinctRecords: 8, action: disable }
  - name: invoice
    methods: [GET]
    path: /api/invoices/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 5, action: throttle }
overrides:
${overrides}
`

const OVERRIDES = `  - { accounts: [svc-nightly-report], exempt: true }
  - { accounts: ["header:corp-*"], routes: [contact], scale: 10 }
  - { networks: [10.20.0.0/16], scale: 2 }
  - { claims: { role: staff }, exempt: true }`

let upstream: Upstream
let proxy: RunningProxy | undefined
beforeEach(async () => {
  upstream = await startUpstream()
})
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await upstream.close()
})

const as = (user: string, ip = '198.51.100.1') => ({ headers: { 'x-user': user, 'x-forwarded-for': ip } })

async function served(route: string, n: number, opts: { headers: Record<string, string> }, from = 0): Promise<number> {
  let ok = 0
  for (let i = from; i < from + n; i++) if ((await send(proxy!.url, `/api/${route}s/${i}`, opts)).status === 200) ok++
  return ok
}

const token = (claims: Record<string, unknown>, secret = SECRET) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret))

describe('overrides through the proxy', () => {
  it('an exempt account crosses every limit and is served; it is counted (admin API) and its decisions logged as exempt', async () => {
    const yaml = config(OVERRIDES)
    proxy = await startProxy(yaml, { upstream: upstream.url })
    expect(await served('contact', 30, as('svc-nightly-report'))).toBe(30)
    expect(await served('invoice', 30, as('svc-nightly-report'))).toBe(30)
    // An ordinary account is stopped at the limit.
    expect(await served('contact', 30, as('bob'))).toBe(5)
    const mine = proxy.decisions().filter((d) => d.account === 'header:svc-nightly-report')
    expect(mine.length).toBeGreaterThan(0)
    expect(mine.every((d) => d.blocked === false && d.shadow === true && d.exempt === true)).toBe(true)
    expect(mine.some((d) => d.decision === 'throttle')).toBe(true)
    expect(String(mine[0]?.override)).toContain('overrides[0]')
    const admin = await buildAdmin({
      token: TOKEN,
      metrics: proxy.app.sluice.metrics,
      store: proxy.app.sluice.store,
      policies: policiesOf(yaml),
    })
    const url = await admin.listen({ host: '127.0.0.1', port: 0 })
    try {
      const shown = await call(url, 'GET', accountPath('header:svc-nightly-report'))
      expect(shown.status).toBe(200)
      const contact = shown.json.routes.find((r: { route: string }) => r.route === 'contact')
      expect(contact.limits[0].count).toBeGreaterThan(5)
      // Its disables are shadow ones: never an enforced disable.
      expect(shown.json.disabled.every((d: { mode: string }) => d.mode === 'shadow')).toBe(true)
    } finally {
      await admin.close()
    }
    // Still served afterwards.
    expect(await served('contact', 3, as('svc-nightly-report'), 100)).toBe(3)
  })

  it('scale 10 lets exactly ten times through on the matched route only', async () => {
    proxy = await startProxy(config(OVERRIDES.replace('distinctRecords: 8', 'distinctRecords: 8')), {
      upstream: upstream.url,
    })
    // contact: throttle at 5 → 50; the disable limit at 8 → 80, beyond what is sent.
    expect(await served('contact', 60, as('corp-acme'))).toBe(50)
    expect(await served('invoice', 20, as('corp-acme'))).toBe(5)
    const d = proxy.decisions().find((x) => x.account === 'header:corp-acme' && x.route === 'contact')
    expect(d?.limit).toBe('10m distinctRecords 50 → throttle')
    expect(d?.override).toContain('×10')
    // Its counts, read with the route's own limits, show what it took.
    const admin = await buildAdmin({
      token: TOKEN,
      metrics: proxy.app.sluice.metrics,
      store: proxy.app.sluice.store,
      policies: policiesOf(config(OVERRIDES)),
    })
    const url = await admin.listen({ host: '127.0.0.1', port: 0 })
    try {
      const shown = await call(url, 'GET', accountPath('header:corp-acme'))
      const contact = shown.json.routes.find((r: { route: string }) => r.route === 'contact')
      expect(contact.limits[0].count).toBeGreaterThanOrEqual(50)
    } finally {
      await admin.close()
    }
  })

  it('a network override (client address through a trusted proxy)', async () => {
    proxy = await startProxy(config(OVERRIDES), { upstream: upstream.url })
    expect(await served('invoice', 20, as('alice', '10.20.3.4'))).toBe(10)
    expect(await served('invoice', 20, as('carol', '10.21.3.4'))).toBe(5)
  })

  it('counts carry over between the scaled and the unscaled shape of a route', async () => {
    proxy = await startProxy(config(OVERRIDES), { upstream: upstream.url })
    // 8 distinct invoices from the scaled network (limit 10)…
    expect(await served('invoice', 8, as('dora', '10.20.3.4'))).toBe(8)
    // …are 8 against the unscaled limit of 5 elsewhere: nothing new is served…
    expect(await served('invoice', 3, as('dora', '198.51.100.9'), 100)).toBe(0)
    // …and back in the scaled network, 2 more reach its 10.
    expect(await served('invoice', 5, as('dora', '10.20.3.4'), 200)).toBe(2)
  })

  it('a verified JWT claim exempts; a forged or unsigned token with the claim does not', async () => {
    proxy = await startProxy(config(OVERRIDES), { upstream: upstream.url })
    const staff = await token({ sub: 'sam', role: 'staff' })
    expect(await served('invoice', 20, { headers: { authorization: `Bearer ${staff}` } })).toBe(20)
    const forged = await token({ sub: 'sam2', role: 'staff' }, 'not-the-secret-not-the-secret-xx')
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"sam3","role":"staff"}').toString('base64url')}.`
    const user = await token({ sub: 'ursula', role: 'user' })
    expect(await served('invoice', 20, { headers: { authorization: `Bearer ${forged}`, 'x-user': 'f' } })).toBe(5)
    expect(await served('invoice', 20, { headers: { authorization: `Bearer ${unsigned}`, 'x-user': 'u' } })).toBe(5)
    expect(await served('invoice', 20, { headers: { authorization: `Bearer ${user}` } })).toBe(5)
  })

  it('first match wins', async () => {
    // corp-acme matches both; the first (exempt) applies on contact.
    proxy = await startProxy(
      config(`  - { accounts: ["header:corp-*"], exempt: true }
  - { accounts: ["header:corp-*"], scale: 2 }`),
      { upstream: upstream.url },
    )
    expect(await served('contact', 30, as('corp-acme'))).toBe(30)
  })

  it('a reload changes the overrides live', async () => {
    proxy = await startProxy(config(OVERRIDES), { upstream: upstream.url })
    expect(await served('invoice', 10, as('svc-nightly-report'))).toBe(10)
    const next = compileConfigText(
      config('  - { accounts: [someone-else], exempt: true }').replaceAll('UPSTREAM', upstream.url),
      'next.yaml',
      { env: {} },
    )
    next.listen.port = 0 // as startProxy listens
    expect(await proxy.app.sluice.reload(next)).toMatchObject({ ok: true })
    // No longer exempt: its 10 distinct records are past the limit of 5 (counted while exempt).
    expect(await served('invoice', 5, as('svc-nightly-report'), 10)).toBe(0)
    // And back.
    const again = compileConfigText(config(OVERRIDES).replaceAll('UPSTREAM', upstream.url), 'again.yaml', { env: {} })
    again.listen.port = 0
    expect(await proxy.app.sluice.reload(again)).toMatchObject({ ok: true })
    expect(await served('invoice', 5, as('svc-nightly-report'), 20)).toBe(5)
  })
})
