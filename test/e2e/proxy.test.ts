// sluice as a standalone proxy in front of a real upstream on loopback.
import { SignJWT } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 2s }
identity:
  - { type: basic }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m,  requests: 1000,     action: throttle }
      - { window: 10m, distinctRecords: 10, action: throttle }
actions:
  throttle: { retryAfter: 30s }
`

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

const contactHits = (id: string) => upstream.received.filter((r) => r.url === `/api/contacts/${id}`).length

describe('enumeration', () => {
  it('serves an enumerating account exactly distinctRecords records, while another account browses unhindered', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const served: number[] = []
    const honest: number[] = []
    // The scraper walks ids 1..40 while alice re-reads three contacts, interleaved.
    await Promise.all([
      (async () => {
        for (let id = 1; id <= 40; id++) {
          const res = await send(proxy!.url, `/api/contacts/${id}`, { headers: basic('mallory') })
          if (res.status === 200) served.push(id)
          else expect(res.status).toBe(429)
        }
      })(),
      (async () => {
        for (let i = 0; i < 30; i++) {
          const res = await send(proxy!.url, `/api/contacts/${100 + (i % 3)}`, { headers: basic('alice') })
          honest.push(res.status)
        }
      })(),
    ])
    expect(served).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(honest.every((s) => s === 200)).toBe(true)
    // Nothing past the limit reached the upstream.
    for (let id = 11; id <= 40; id++) expect(contactHits(String(id))).toBe(0)
    // Re-reading a record already served is still fine.
    expect((await send(proxy.url, '/api/contacts/3', { headers: basic('mallory') })).status).toBe(200)
    const blocked = proxy.decisions().filter((d) => d.decision === 'throttle')
    expect(blocked.length).toBe(30)
    expect(blocked[0]).toMatchObject({
      account: expect.stringMatching(/^basic:mallory#/),
      route: 'contact',
      blocked: true,
      shadow: false,
      limit: '10m distinctRecords 10 → throttle',
    })
  })

  it('answers a block with problem+json and Retry-After, or a page for a browser', async () => {
    proxy = await startProxy(CONFIG.replace('distinctRecords: 10', 'distinctRecords: 1'), { upstream: upstream.url })
    await send(proxy.url, '/api/contacts/1', { headers: basic('mallory') })
    const api = await send(proxy.url, '/api/contacts/2', {
      headers: { ...basic('mallory'), accept: 'application/json' },
    })
    expect(api.status).toBe(429)
    expect(api.headers['content-type']).toContain('application/problem+json')
    expect(api.headers['retry-after']).toBe('30')
    expect(JSON.parse(api.body)).toMatchObject({ status: 429, title: 'Too Many Requests', retryAfter: 30 })
    // The client is not told which limit or how close it came.
    expect(api.body).not.toContain('distinctRecords')
    const browser = await send(proxy.url, '/api/contacts/2', {
      headers: { ...basic('mallory'), accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    })
    expect(browser.status).toBe(429)
    expect(browser.headers['content-type']).toContain('text/html')
    expect(browser.body).toContain('<h1>Too Many Requests</h1>')
  })

  it('leaves non-sensitive routes alone', async () => {
    proxy = await startProxy(CONFIG.replace('distinctRecords: 10', 'distinctRecords: 1'), { upstream: upstream.url })
    for (let i = 0; i < 20; i++) {
      expect((await send(proxy.url, `/api/parcels/${i}?x=${i}`, { headers: basic('mallory') })).status).toBe(200)
    }
    expect(upstream.received.at(-1)?.url).toBe('/api/parcels/19?x=19')
    expect(proxy.decisions()).toEqual([])
  })

  it('counts every record of a path segment that names several, with split (/api/contacts/1,2,3)', async () => {
    const config = CONFIG.replace('records: { param: id }', 'records: { param: id, split: "," }')
    proxy = await startProxy(config, { upstream: upstream.url })
    const get = (path: string) => send(proxy!.url, path, { headers: basic('mallory') })
    expect((await get('/api/contacts/1,2,3,4')).status).toBe(200)
    expect((await get('/api/contacts/5,6,7,8,9')).status).toBe(200)
    expect((await get('/api/contacts/2,10,1')).status).toBe(200) // 10 records: the limit
    const before = upstream.received.length
    expect((await get('/api/contacts/11,1')).status).toBe(429) // the 11th is withheld, with the batch
    expect((await get('/api/contacts/1,2,3,4,5,6,7,8,9,10')).status).toBe(200) // re-reads are free
    expect(upstream.received.length).toBe(before + 1)
  })

  it("counts the path record's name in the query and in a form body too (mod_rewrite QSA + PHP, ASP.NET MVC binding)", async () => {
    proxy = await startProxy(CONFIG.replace('distinctRecords: 10', 'distinctRecords: 3'), { upstream: upstream.url })
    const get = (path: string) => send(proxy!.url, path, { headers: basic('mallory') })
    const post = (path: string, body: string) =>
      send(proxy!.url, path, {
        method: 'POST',
        headers: { ...basic('mallory'), 'content-type': 'application/x-www-form-urlencoded' },
        body,
      })
    expect((await get('/api/contacts/1')).status).toBe(200)
    expect((await get('/api/contacts/1?id=2')).status).toBe(200)
    expect((await post('/api/contacts/1', 'id=3')).status).toBe(200) // records 1, 2, 3: the limit
    expect((await post('/api/contacts/1', 'name=x&ID=4')).status).toBe(429)
    expect((await get('/api/contacts/1?id=5')).status).toBe(429)
    expect((await get('/api/contacts/2?id=3')).status).toBe(200) // re-reads are free
    expect(upstream.received.map((r) => r.url)).not.toContain('/api/contacts/1?id=5')
    // A cookie of that name: classic ASP.NET's Request["id"] reads cookies after the query and form.
    const cookie = (await send(proxy.url, '/api/contacts/1', { headers: { ...basic('mallory'), cookie: 'id=6' } }))
      .status
    expect(cookie).toBe(429)
    expect(
      (await send(proxy.url, '/api/contacts/1', { headers: { ...basic('mallory'), cookie: 'id=3' } })).status,
    ).toBe(200)
  })
})

describe('identity through the proxy', () => {
  const SECRET = 'shared-secret-of-the-legacy-app-0123456789'
  const JWT_CONFIG = `
version: 1
upstream: { url: UPSTREAM }
identity:
  - { type: jwt, secret: "\${JWT_SECRET}", algorithms: [HS256] }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: 2, action: throttle } ]
`
  const token = (sub: string, expSec = Math.floor(Date.now() / 1000) + 600, secret = SECRET) =>
    new SignJWT({ sub })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(expSec)
      .sign(new TextEncoder().encode(secret))

  it('counts per verified JWT subject; garbage and forged tokens fall back to the client address, an expired one keeps its subject', async () => {
    proxy = await startProxy(JWT_CONFIG, { upstream: upstream.url, env: { JWT_SECRET: SECRET } })
    const bearer = async (t: string) => ({ authorization: `Bearer ${t}` })
    const alice = await bearer(await token('alice'))
    expect((await send(proxy.url, '/api/contacts/1', { headers: alice })).status).toBe(200)
    expect((await send(proxy.url, '/api/contacts/2', { headers: alice })).status).toBe(200)
    expect((await send(proxy.url, '/api/contacts/3', { headers: alice })).status).toBe(429)
    // A fresh token for the same subject is the same account.
    expect(
      (
        await send(proxy.url, '/api/contacts/3', {
          headers: await bearer(await token('alice', Math.floor(Date.now() / 1000) + 900)),
        })
      ).status,
    ).toBe(429)
    // None of these become "bob"; they count against the client address (127.0.0.1).
    const spoofs = [await token('bob', undefined, 'a-different-secret-0123456789abcdef'), 'not.a.jwt', '%%%']
    const statuses = []
    for (const [i, t] of spoofs.entries())
      statuses.push((await send(proxy.url, `/api/contacts/${10 + i}`, { headers: await bearer(t) })).status)
    expect(statuses).toEqual([200, 200, 429])
    // A correctly signed token past its expiry (beyond clockTolerance) is still bob's: never a fresh identity.
    const expired = await bearer(await token('bob', Math.floor(Date.now() / 1000) - 86_400))
    expect((await send(proxy.url, '/api/contacts/20', { headers: expired })).status).toBe(200)
    expect((await send(proxy.url, '/api/contacts/21', { headers: expired })).status).toBe(200)
    expect((await send(proxy.url, '/api/contacts/22', { headers: expired })).status).toBe(429)
    const accounts = proxy.decisions().map((d) => d.account)
    expect(accounts).toContain('jwt:alice')
    expect(accounts).toContain('ip:127.0.0.1')
    expect(accounts).toContain('jwt:bob')
  })

  it('a token in the access_token query parameter (RFC 6750, passport) is the same account; two different ones are refused', async () => {
    proxy = await startProxy(JWT_CONFIG, { upstream: upstream.url, env: { JWT_SECRET: SECRET } })
    const carol = await token('carol')
    expect((await send(proxy.url, '/api/contacts/1', { headers: { authorization: `Bearer ${carol}` } })).status).toBe(
      200,
    )
    // From another address, say: the query's token is still carol, not a fresh client.
    expect((await send(proxy.url, `/api/contacts/2?access_token=${carol}`)).status).toBe(200)
    expect((await send(proxy.url, `/api/contacts/3?x=1&access_token=${carol}`)).status).toBe(429)
    const both = await send(proxy.url, `/api/contacts/4?access_token=${await token('dave')}`, {
      headers: { authorization: `Bearer ${carol}` },
    })
    expect(both.status).toBe(400)
    expect(proxy.decisions().map((d) => d.account)).not.toContain('ip:127.0.0.1')
  })
})

describe('forwarding', () => {
  it('tells the upstream the client address, replacing a chain sent by an untrusted client', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    await send(proxy.url, '/about', {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', host: 'portal.example' },
    })
    expect(upstream.received.at(-1)?.headers).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'portal.example',
    })
  })

  it('extends the chain of a trusted proxy', async () => {
    proxy = await startProxy(CONFIG.replace('version: 1', 'version: 1\ntrustedProxies: [loopback]'), {
      upstream: upstream.url,
    })
    await send(proxy.url, '/about', { headers: { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https' } })
    expect(upstream.received.at(-1)?.headers).toMatchObject({
      'x-forwarded-for': '198.51.100.7, 127.0.0.1',
      'x-forwarded-proto': 'https',
    })
  })
})

describe('URL override headers (X-Original-URL, X-Rewrite-URL)', () => {
  // Old Symfony and Zend serve the path these name instead of the request's: a client's would
  // fetch any record through a path no route matches.
  it('are dropped when a client sends them, on any path, and kept from a trusted proxy', async () => {
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    for (const path of ['/', '/about', '/api/contacts/1'])
      await send(proxy.url, path, {
        headers: { 'x-original-url': '/api/contacts/5', 'X-Rewrite-URL': '/api/contacts/6', 'x-user': 'u' },
      })
    for (const r of upstream.received.slice(-3)) {
      expect(r.headers['x-original-url']).toBeUndefined()
      expect(r.headers['x-rewrite-url']).toBeUndefined()
    }
    await proxy.close()
    proxy = await startProxy(CONFIG.replace('version: 1', 'version: 1\ntrustedProxies: [loopback]'), {
      upstream: upstream.url,
    })
    await send(proxy.url, '/about', { headers: { 'x-original-url': '/about/us' } })
    expect(upstream.received.at(-1)?.headers['x-original-url']).toBe('/about/us')
  })
})

describe('hop-by-hop headers of the upstream answer', () => {
  it("are not passed on, nor the headers its Connection names; the client's own Connection holds", async () => {
    await upstream.close()
    upstream = await startUpstream((req, res) => {
      req.resume()
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'keep-alive, X-Hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=99',
        'x-kept': 'yes',
      })
      res.end('{}')
    })
    proxy = await startProxy(CONFIG, { upstream: upstream.url })
    const res = await send(proxy.url, '/about')
    expect(res.status).toBe(200)
    expect(res.headers['x-kept']).toBe('yes')
    expect(res.headers['x-hop']).toBeUndefined()
    expect(res.headers['keep-alive']).toBeUndefined()
    expect(res.headers.connection).toBe('close') // send() asks for close; the upstream's keep-alive must not override it
  })
})

describe('shadow mode', () => {
  it('blocks nothing and logs the same decisions enforce makes', async () => {
    const trace = [1, 2, 3, 1, 4, 5, 2, 6]
    const run = async (yaml: string) => {
      const p = await startProxy(yaml, { upstream: upstream.url })
      const statuses: number[] = []
      for (const id of trace)
        statuses.push((await send(p.url, `/api/contacts/${id}`, { headers: basic('mallory') })).status)
      const decisions = p.decisions().map((d) => [d.decision, d.limit, d.counts])
      await p.close()
      return { statuses, decisions }
    }
    const small = CONFIG.replace('distinctRecords: 10', 'distinctRecords: 3')
    const enforce = await run(small)
    const shadow = await run(small.replace('version: 1', 'version: 1\nmode: shadow'))
    expect(enforce.statuses).toContain(429)
    expect(shadow.statuses.every((s) => s === 200)).toBe(true)
    // The same decisions by the same limits…
    const what = (ds: unknown[][]) => ds.map(([decision, limit]) => [decision, limit])
    expect(what(shadow.decisions)).toEqual(what(enforce.decisions))
    expect(shadow.decisions.length).toBeGreaterThan(0)
    // … but shadow served every record, and its counts say so: 4, 5, 6 distinct records where
    // enforce, which withheld them, stays at the limit + 1.
    const distinct = (ds: unknown[][]) =>
      ds.map((d) => (d[2] as Record<string, number>)['10m distinctRecords 3 → throttle'])
    expect(distinct(enforce.decisions)).toEqual([4, 4, 4])
    expect(distinct(shadow.decisions)).toEqual([4, 5, 6])
  })

  it('can be set per route', async () => {
    const yaml = CONFIG.replace('distinctRecords: 10', 'distinctRecords: 1').replace(
      '    methods: [GET]',
      '    methods: [GET]\n    mode: shadow',
    )
    proxy = await startProxy(yaml, { upstream: upstream.url })
    for (let id = 1; id <= 5; id++)
      expect((await send(proxy.url, `/api/contacts/${id}`, { headers: basic('mallory') })).status).toBe(200)
    expect(proxy.decisions().map((d) => [d.decision, d.shadow, d.blocked])).toEqual(
      Array(4).fill(['throttle', true, false]),
    )
  })
})

describe('disable', () => {
  const DISABLE = `
version: 1
upstream: { url: UPSTREAM }
identity: [ { type: basic } ]
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1h, distinctRecords: 3, action: disable } ]
  - name: parcel
    path: /api/parcels/:id
    limits: [ { window: 1m, requests: 100, action: throttle } ]
actions:
  disable: { duration: 15m }
`
  it('disables the account on every sensitive route for the configured duration', async () => {
    let now = Date.UTC(2026, 0, 1)
    proxy = await startProxy(DISABLE, { upstream: upstream.url, clock: () => now })
    for (let id = 1; id <= 3; id++)
      expect((await send(proxy.url, `/api/contacts/${id}`, { headers: basic('mallory') })).status).toBe(200)
    const crossing = await send(proxy.url, '/api/contacts/4', { headers: basic('mallory') })
    expect(crossing.status).toBe(403)
    expect(JSON.parse(crossing.body).title).toBe('Account disabled')
    now += 60_000
    expect((await send(proxy.url, '/api/contacts/1', { headers: basic('mallory') })).status).toBe(403)
    expect((await send(proxy.url, '/api/parcels/1', { headers: basic('mallory') })).status).toBe(403)
    expect((await send(proxy.url, '/api/parcels/1', { headers: basic('alice') })).status).toBe(200)
    // Non-sensitive routes are not guarded.
    expect((await send(proxy.url, '/index.html', { headers: basic('mallory') })).status).toBe(200)
    now += 14 * 60_000 - 1
    expect((await send(proxy.url, '/api/parcels/1', { headers: basic('mallory') })).status).toBe(403)
    now += 1
    expect((await send(proxy.url, '/api/parcels/1', { headers: basic('mallory') })).status).toBe(200)
    const kinds = proxy.decisions().map((d) => d.decision)
    expect(kinds[0]).toBe('disable')
    expect(kinds.slice(1)).toEqual(['disabled', 'disabled', 'disabled'])
  })

  it("does not let a wrong password spend or disable another user's budget", async () => {
    proxy = await startProxy(DISABLE, { upstream: upstream.url })
    for (let id = 1; id <= 4; id++) await send(proxy.url, `/api/contacts/${id}`, { headers: basic('alice', 'guess') })
    expect((await send(proxy.url, '/api/contacts/9', { headers: basic('alice', 'guess') })).status).toBe(403)
    expect((await send(proxy.url, '/api/contacts/9', { headers: basic('alice') })).status).toBe(200)
  })
})

describe('upstream failures', () => {
  it('answers 502 when the upstream is down', async () => {
    const dead = await startUpstream()
    const deadUrl = dead.url
    await dead.close()
    proxy = await startProxy(CONFIG, { upstream: deadUrl })
    const res = await send(proxy.url, '/api/contacts/1', { headers: basic('alice') })
    expect(res.status).toBe(502)
    expect(res.headers['content-type']).toContain('application/problem+json')
    expect(proxy.logs.some((l) => l.event === 'sluice.upstream_error')).toBe(true)
    // …and keeps serving once it is back is covered by every other test; here: still alive.
    expect((await send(proxy.url, '/anything')).status).toBe(502)
  })

  it('answers 504 when the upstream does not answer in time', async () => {
    const slow = await startUpstream(() => {
      /* never answers */
    })
    proxy = await startProxy(CONFIG.replace('timeout: 2s', 'timeout: 300ms'), { upstream: slow.url })
    const started = Date.now()
    const res = await send(proxy.url, '/api/contacts/1', { headers: basic('alice') })
    expect(res.status).toBe(504)
    expect(Date.now() - started).toBeLessThan(5_000)
    await slow.close()
  })
})
