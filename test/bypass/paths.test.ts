// The bypass table: every way we know to spell a sensitive request. Each must either be
// counted as the sensitive route or refused with 400 — never reach the upstream uncounted.
//
// Method: each variant gets a fresh account whose budget is one request. We spend it with the
// plain path first; the variant must then be answered 429 (it was counted) or 400 (refused).
// A 2xx means it went through uncounted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM }
identity:
  - { type: header, name: x-account-id, trusted: true }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1h, requests: 1, action: throttle }
`

let upstream: Upstream
let proxy: RunningProxy

beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
})
afterAll(async () => {
  await proxy.close()
  await upstream.close()
})

interface Variant {
  target: string
  method?: string
  headers?: Record<string, string>
  body?: string
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

const VARIANTS: Variant[] = [
  { target: '/api/contacts/5' },
  { target: '//api/contacts/5' },
  { target: '/api//contacts/5' },
  { target: '/api/contacts//5' },
  { target: '/api/./contacts/5' },
  { target: '/./api/contacts/5' },
  { target: '/api/contacts/./5' },
  { target: '/api/x/../contacts/5' },
  { target: '/x/y/../../api/contacts/5' },
  { target: '/api/contacts/5/' },
  { target: '/api/contacts/5//' },
  { target: '/API/contacts/5' },
  { target: '/Api/Contacts/5' },
  { target: '/api/CONTACTS/5' },
  { target: '/api/contacts/5;jsessionid=ABC123' },
  { target: '/api/contacts;jsessionid=ABC123/5' },
  { target: '/api;x=1/contacts/5' },
  { target: '/api/x/..;/contacts/5' },
  { target: '/api/;/contacts/5' },
  { target: '/%61pi/contacts/5' },
  { target: '/%61%70%69/%63ontacts/%35' },
  { target: '/api/contacts/%35' },
  { target: '/api/%2e/contacts/5' },
  { target: '/api/x/%2e%2e/contacts/5' },
  { target: '/api/x/%2E%2E/contacts/5' },
  { target: '/api/x/.%2e/contacts/5' },
  { target: '/api%2fcontacts/5' },
  { target: '/api%2Fcontacts%2F5' },
  { target: '/api%5ccontacts/5' },
  { target: '/api\\contacts\\5' },
  { target: '/api/contacts/5%00' },
  { target: '/api/contacts/5%00.json' },
  { target: '/api/%c0%ae%c0%ae/api/contacts/5' },
  { target: '/api/x/%252e%252e/contacts/5' },
  { target: '/api/contacts/%u0035' },
  { target: '/api/contacts/%' },
  { target: '/api/contacts/5%' },
  { target: '/api/contacts/%G5' },
  { target: '/api/contacts/5?id=6' },
  { target: '/api/contacts/5#frag' },
  { target: 'http://evil.example/api/contacts/5' },
  { target: '/api/contacts/5', method: 'HEAD' },
  { target: '/api/contacts/5', method: 'POST', headers: { 'x-http-method-override': 'GET' } },
  { target: '/api/contacts/5', method: 'POST', headers: { 'x-http-method': 'get' } },
  { target: '/api/contacts/5', method: 'PUT', headers: { 'x-method-override': 'GET' } },
  { target: '/api/contacts/5', method: 'GET', headers: { 'x-http-method-override': 'DELETE' } },
  // Express's methodOverride('_method'), Laravel, Symfony: a POST served as the method its query names.
  { target: '/api/contacts/5?_method=GET', method: 'POST' },
  { target: '/api/contacts/5?_method=get', method: 'POST' },
  { target: '/api/contacts/5?%5Fmethod=GET', method: 'POST' },
  { target: '/api/contacts/5?_method[]=GET', method: 'POST' },
  { target: '/api/contacts/5?_method=PUT&_method=GET', method: 'POST' },
  // A POST a legacy upstream serves as the GET (doPost → doGet, PHP, WebForms, Rails' and
  // Laravel's `_method=get` in the form).
  { target: '/api/contacts/5', method: 'POST', headers: FORM, body: '_method=get' },
  { target: '/api/contacts/5', method: 'POST', headers: FORM, body: 'x=1' },
  {
    target: '/api/contacts/5',
    method: 'POST',
    headers: { 'content-type': 'multipart/form-data; boundary=b' },
    body: '--b--',
  },
  { target: '/api/contacts/5', method: 'POST' },
  // Any other method: PHP scripts run whatever it is, as do Spring's @RequestMapping without a
  // method, JSPs before JSP 2.3 and Express's app.all.
  { target: '/api/contacts/5', method: 'DELETE' },
  { target: '/api/contacts/5', method: 'PUT', headers: FORM, body: 'x=1' },
  { target: '/api/contacts/5', method: 'PATCH' },
  { target: '/api/contacts/5', method: 'OPTIONS' },
  // Whatever the body, where the record is in the URL (PHP reads `$_GET` under a JSON POST too).
  { target: '/api/contacts/5', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
  { target: '/api/contacts/5', method: 'PUT', headers: { 'content-type': 'application/xml' }, body: '<a/>' },
  { target: '/API/./Contacts//5/;x' },
  { target: '/api/contacts/%35/.' },
  { target: '/api/contacts/5/x/..' },
  { target: '/api/contacts/5/%2e' },
  { target: '/api/contacts/5/;/..' },
  { target: '/api/contacts/5/;x/..' },
  // ASP.NET cookieless sessions: the segment is taken out before the page is found.
  { target: '/(S(lit3py55t21z5v55vlm25s55))/api/contacts/5' },
  { target: '/api/(A(anon)S(sess)F(auth))/contacts/5' },
  { target: '/%28S%28x%29%29/api/contacts/5' },
  { target: '/(S(x))/(S(y))/API/contacts/5' },
]

describe('path bypass table', () => {
  it.each(VARIANTS.map((v, i) => [i, v.method ?? 'GET', v.target, v] as const))(
    '#%i %s %s is counted or refused',
    async (i, _m, _t, variant) => {
      const account = `bypass-${i}`
      const spend = await send(proxy.url, '/api/contacts/1', { headers: { 'x-account-id': account } })
      expect(spend.status).toBe(200)
      const before = upstream.received.length
      const res = await send(proxy.url, variant.target, {
        method: variant.method ?? 'GET',
        headers: { 'x-account-id': account, ...variant.headers },
        ...(variant.body !== undefined ? { body: variant.body } : {}),
      })
      expect([400, 429]).toContain(res.status)
      expect(upstream.received.length).toBe(before)
    },
  )

  it('has at least 30 variants', () => {
    expect(VARIANTS.length).toBeGreaterThanOrEqual(30)
  })

  it('forwards the canonical path, keeping case and matrix parameters as sent', async () => {
    const account = 'canonical-forward'
    // A fresh account has one request: spend it on a variant and look at what the upstream got.
    const res = await send(proxy.url, '/Api/x/..//Contacts/./7;jsessionid=Q?x=1', {
      headers: { 'x-account-id': account },
    })
    expect(res.status).toBe(200)
    expect(upstream.received.at(-1)?.url).toBe('/Api/Contacts/7;jsessionid=Q?x=1')
  })

  it('strips method-override headers before forwarding', async () => {
    const res = await send(proxy.url, '/api/other', {
      method: 'POST',
      headers: { 'x-http-method-override': 'DELETE', 'x-account-id': 'mo' },
    })
    expect(res.status).toBe(200)
    const got = upstream.received.at(-1)
    expect(got?.url).toBe('/api/other')
    expect(got?.headers['x-http-method-override']).toBeUndefined()
  })

  it('refuses invalid UTF-8 and control characters in paths', async () => {
    for (const target of ['/api/%ff/contacts', '/api/contacts/%e0%80%af', '/api/%01/x']) {
      expect((await send(proxy.url, target)).status).toBe(400)
    }
  })

  it('answers 431 to huge headers without crashing', async () => {
    const res = await send(proxy.url, '/api/contacts/1', {
      headers: { 'x-account-id': 'huge', 'x-junk': 'a'.repeat(40_000) },
    })
    expect(res.status).toBe(431)
    expect((await send(proxy.url, '/api/other')).status).toBe(200)
  })
})
