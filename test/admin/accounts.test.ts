// The admin API over a proxy with the memory store: 401 everywhere without the token (and
// nothing leaks), accounts by pressure, one account's windows, unlock and reset.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { AdminAction } from '../../src/admin/server.js'
import { buildAdmin } from '../../src/admin/server.js'
import { IncidentLog } from '../../src/admin/incidents.js'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { accountPath, adminConfig, call, policiesOf, readAs, TOKEN } from './helpers.js'

const CONFIG = adminConfig({
  identity: '[ { type: header, name: x-user, trusted: true }, { type: basic } ]',
  disable: '1h',
})

let upstream: Upstream
let proxy: RunningProxy
let admin: Awaited<ReturnType<typeof buildAdmin>>
let url: string
const actions: AdminAction[] = []

const get = (user: string, path: string) =>
  send(proxy.url, path, { headers: { 'x-user': user.replace(/^header:/, '') } })
const read = (user: string, route: 'contacts' | 'invoices', ids: number[]) => readAs(proxy.url, user, route, ids)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
  admin = await buildAdmin({
    token: TOKEN,
    metrics: proxy.app.sluice.metrics,
    store: proxy.app.sluice.store,
    policies: policiesOf(CONFIG),
    incidents: new IncidentLog(),
    onAdminAction: (a) => void actions.push(a),
  })
  url = await admin.listen({ host: '127.0.0.1', port: 0 })
})
afterAll(async () => {
  await admin.close()
  await proxy.close()
  await upstream.close()
})
beforeEach(async () => {
  actions.length = 0
  // Each test starts from an empty store.
  const list = await call(url, 'GET', '/accounts?limit=1000')
  for (const a of list.json.accounts as { account: string }[]) await call(url, 'POST', accountPath(a.account, '/reset'))
  actions.length = 0
})

describe('admin API: authentication', () => {
  const PROTECTED: [string, string][] = [
    ['GET', '/metrics'],
    ['GET', '/accounts'],
    ['GET', '/accounts?route=contact&by=requests'],
    ['GET', accountPath('header:mallory')],
    ['POST', accountPath('header:mallory', '/unlock')],
    ['POST', accountPath('header:mallory', '/reset')],
    ['GET', '/incidents'],
    ['POST', '/reload'],
    ['GET', '/no-such-endpoint'],
  ]
  const WRONG: Record<string, string>[] = [
    {},
    { authorization: 'Bearer' },
    { authorization: 'Bearer nope' },
    { authorization: `Bearer ${TOKEN}x` },
    { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    { authorization: TOKEN },
    { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
  ]

  it('admin without or with a wrong token gets 401 on every protected endpoint and nothing leaks', async () => {
    expect(await read('header:mallory', 'contacts', range(1, 7))).toEqual([200, 200, 200, 200, 200, 403, 403])
    const before = await call(url, 'GET', accountPath('header:mallory'))
    expect(before.json.disabled).toHaveLength(1)

    for (const [method, path] of PROTECTED) {
      for (const headers of WRONG) {
        const res = await call(url, method, path, null, headers)
        expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401)
        expect(res.type).toContain('application/problem+json')
        // The same fixed body everywhere: no account, route, count or endpoint-specific hint.
        expect(res.json).toEqual({
          type: 'https://sluice.dev/problems/unauthorized',
          title: 'Unauthorized',
          status: 401,
          code: 'SLUICE_ERR_ADMIN_UNAUTHORIZED',
          detail: 'send the admin token: Authorization: Bearer <token>',
        })
        expect(res.text).not.toMatch(/mallory|contact|sluice_/)
      }
    }
    // The refused unlock and reset changed nothing, and no admin action was reported.
    const after = await call(url, 'GET', accountPath('header:mallory'))
    expect(after.json).toEqual({ ...before.json, at: after.json.at })
    expect((await get('header:mallory', '/api/contacts/1')).status).toBe(403)
    expect(actions).toEqual([])
  })

  it('answers /healthz and /readyz without a token, revealing no account data', async () => {
    await read('header:mallory', 'contacts', [1, 2])
    const health = await call(url, 'GET', '/healthz', null)
    expect(health.status).toBe(200)
    expect(health.json).toEqual({ status: 'ok' })
    const ready = await call(url, 'GET', '/readyz', null)
    expect(ready.status).toBe(200)
    expect(ready.json).toEqual({ status: 'ready', store: { type: 'memory', state: 'ok' } })
  })

  it('takes the token with any case of "Bearer"', async () => {
    expect((await call(url, 'GET', '/accounts', null, { authorization: `bearer ${TOKEN}` })).status).toBe(200)
  })
})

describe('admin API: accounts', () => {
  it('lists accounts by pressure (highest count / limit first), per route, by distinct records or requests', async () => {
    await read('header:alice', 'contacts', [1, 2, 3, 4]) //                     contact 4/5
    await read('header:bob', 'contacts', [1, 2]) //                             contact 2/5
    await read('header:bob', 'invoices', range(1, 9)) //                        invoice 9/10
    await read('header:carol', 'contacts', [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) // contact 1/5, 11 requests

    const all = await call(url, 'GET', '/accounts')
    expect(all.status).toBe(200)
    expect(all.type).toContain('application/json')
    expect(all.json).toMatchObject({ by: 'distinct', route: null, limit: 20, scanned: 3, truncated: false })
    expect(all.json.accounts.map((a: { account: string; pressure: number }) => [a.account, a.pressure])).toEqual([
      ['header:bob', 0.9],
      ['header:alice', 0.8],
      ['header:carol', 0.2],
    ])

    const contact = await call(url, 'GET', '/accounts?route=contact')
    expect(contact.json.route).toBe('contact')
    expect(contact.json.accounts.map((a: { account: string }) => a.account)).toEqual([
      'header:alice',
      'header:bob',
      'header:carol',
    ])
    // Filtered by route, each account shows that route only.
    expect(contact.json.accounts[1].routes.map((r: { route: string }) => r.route)).toEqual(['contact'])

    const invoice = await call(url, 'GET', '/accounts?route=invoice')
    expect(invoice.json.accounts.map((a: { account: string }) => a.account)).toEqual(['header:bob'])

    const requests = await call(url, 'GET', '/accounts?by=requests&route=contact')
    expect(requests.json.accounts.map((a: { account: string; pressure: number }) => [a.account, a.pressure])).toEqual([
      ['header:carol', 0.22],
      ['header:alice', 0.08],
      ['header:bob', 0.04],
    ])

    const top1 = await call(url, 'GET', '/accounts?limit=1')
    expect(top1.json.accounts.map((a: { account: string }) => a.account)).toEqual(['header:bob'])
  })

  it('shows one account: every limit window with its count, and its disabled state', async () => {
    await read('header:alice', 'contacts', [1, 2, 3, 1])
    await read('header:alice', 'invoices', [7])
    const res = await call(url, 'GET', accountPath('header:alice'))
    expect(res.status).toBe(200)
    expect(res.json).toEqual({
      account: 'header:alice',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      disabled: [],
      routes: [
        {
          route: 'contact',
          limits: [
            {
              limit: 'contact#0',
              label: '10m distinctRecords 5 → disable',
              kind: 'distinctRecords',
              per: 'account',
              window: '10m',
              windowMs: 600_000,
              max: 5,
              action: 'disable',
              count: 3,
            },
            {
              limit: 'contact#1',
              label: '1m requests 50 → throttle',
              kind: 'requests',
              per: 'account',
              window: '1m',
              windowMs: 60_000,
              max: 50,
              action: 'throttle',
              count: 4,
            },
          ],
        },
        {
          route: 'invoice',
          limits: [
            {
              limit: 'invoice#0',
              label: '10m distinctRecords 10 → throttle',
              kind: 'distinctRecords',
              per: 'account',
              window: '10m',
              windowMs: 600_000,
              max: 10,
              action: 'throttle',
              count: 1,
            },
          ],
        },
      ],
    })
  })

  it('finds basic-auth accounts by their URL-encoded id (user#fingerprint)', async () => {
    await send(proxy.url, '/api/contacts/1', { headers: basic('ann') })
    const listed = (await call(url, 'GET', '/accounts?limit=1000')).json.accounts as { account: string }[]
    const account = listed.find((a) => a.account.startsWith('basic:ann#'))?.account ?? ''
    expect(account).toMatch(/^basic:ann#[0-9a-f]{16}$/)
    const res = await call(url, 'GET', accountPath(account))
    expect(res.status).toBe(200)
    expect(res.json.account).toBe(account)
    // An id with a slash or percent sign, encoded, is one path segment.
    await read('header:x/y%z', 'contacts', [1])
    expect((await call(url, 'GET', accountPath('header:x/y%z'))).json.account).toBe('header:x/y%z')
  })

  it('answers 404 for an account the store knows nothing about', async () => {
    for (const [method, path] of [
      ['GET', accountPath('header:nobody')],
      ['POST', accountPath('header:nobody', '/unlock')],
      ['POST', accountPath('header:nobody', '/reset')],
    ] as const) {
      const res = await call(url, method, path)
      expect(res.status).toBe(404)
      expect(res.type).toContain('application/problem+json')
      expect(res.json).toMatchObject({
        status: 404,
        code: 'SLUICE_ERR_ADMIN_NOT_FOUND',
        detail: expect.stringContaining('"header:nobody"'),
      })
    }
    expect(actions.map((a) => [a.action, a.result])).toEqual([
      ['unlock', 'not-found'],
      ['reset', 'not-found'],
    ])
  })

  it('answers 400 with the reason for malformed input', async () => {
    const cases: [string, string, RegExp][] = [
      ['GET', '/accounts?limit=0', /limit must be a whole number from 1 to 1000, not "0"/],
      ['GET', '/accounts?limit=abc', /limit must be a whole number/],
      ['GET', '/accounts?limit=1001', /limit must be a whole number/],
      ['GET', '/accounts?by=records', /by must be distinct or requests, not "records"/],
      ['GET', '/accounts?route=nope', /no route named "nope" in the running config \(routes: contact, invoice\)/],
      ['GET', '/accounts?rout=contact', /unknown parameter "rout" \(this endpoint takes route, by, limit, per, find\)/],
      ['GET', '/accounts?limit=1&limit=2', /give limit once/],
      ['GET', `/accounts/${encodeURIComponent('header:\u0001')}`, /no control characters/],
      ['GET', `/accounts/${'a'.repeat(1100)}`, /at most 1024 characters/],
      ['POST', `${accountPath('header:alice', '/reset')}?route=nope`, /no route named "nope"/],
      ['GET', '/incidents?since=yesterday', /since must be a time/],
      ['GET', '/incidents?limit=-1', /limit must be a whole number/],
    ]
    for (const [method, path, detail] of cases) {
      const res = await call(url, method, path)
      expect(res.status, `${method} ${path}`).toBe(400)
      expect(res.type).toContain('application/problem+json')
      expect(res.json.code).toBe('SLUICE_ERR_ADMIN_BAD_REQUEST')
      expect(res.json.detail).toMatch(detail)
    }
    expect(actions).toEqual([])
  })

  it('unlock lifts a disable at once; the account is served again', async () => {
    expect(await read('header:mallory', 'contacts', range(1, 7))).toEqual([200, 200, 200, 200, 200, 403, 403])
    const shown = await call(url, 'GET', accountPath('header:mallory'))
    // What disabled it is kept with the disable: the limit and since when.
    expect(shown.json.disabled).toEqual([
      {
        mode: 'enforce',
        until: expect.stringMatching(/^\d{4}-/),
        limit: '10m distinctRecords 5 → disable',
        since: expect.stringMatching(/^\d{4}-/),
      },
    ])
    const lifted = [{ mode: 'enforce', until: shown.json.disabled[0].until }]

    const res = await call(url, 'POST', accountPath('header:mallory', '/unlock'))
    expect(res.status).toBe(200)
    expect(res.json).toEqual({ account: 'header:mallory', unlocked: true, lifted })
    // Counts stay (unlock is not reset): a record already read is served, a new one crosses again.
    expect(await read('header:mallory', 'contacts', [3, 9])).toEqual([200, 403])
    expect(actions).toEqual([
      {
        action: 'unlock',
        account: 'header:mallory',
        result: 'unlocked',
        lifted,
        remoteAddress: '127.0.0.1',
        time: expect.any(Number),
      },
    ])

    await call(url, 'POST', accountPath('header:mallory', '/unlock'))
    await call(url, 'POST', accountPath('header:mallory', '/unlock'))
    const again = await call(url, 'POST', accountPath('header:mallory', '/unlock'))
    expect(again.json).toEqual({ account: 'header:mallory', unlocked: false, lifted: [] })
    expect(actions.at(-1)).toMatchObject({ action: 'unlock', result: 'not-disabled' })
  })

  it('reset clears the counters of one route or all, and the disable', async () => {
    await read('header:bob', 'contacts', range(1, 6))
    await read('header:bob', 'invoices', range(1, 4))
    const one = await call(url, 'POST', `${accountPath('header:bob', '/reset')}?route=invoice`)
    expect(one.status).toBe(200)
    expect(one.json).toEqual({
      account: 'header:bob',
      route: 'invoice',
      reset: true,
      lifted: [{ mode: 'enforce', until: expect.any(String) }],
    })
    const after = await call(url, 'GET', accountPath('header:bob'))
    expect(after.json.disabled).toEqual([])
    expect(after.json.routes.map((r: { route: string }) => r.route)).toEqual(['contact'])
    expect(after.json.routes[0].limits[0].count).toBe(5)

    const all = await call(url, 'POST', accountPath('header:bob', '/reset'))
    expect(all.json).toEqual({ account: 'header:bob', route: null, reset: true, lifted: [] })
    expect((await call(url, 'GET', accountPath('header:bob'))).status).toBe(404)
    // A fresh budget: five new records are served.
    expect(await read('header:bob', 'contacts', range(11, 15))).toEqual([200, 200, 200, 200, 200])
    expect(actions.map((a) => [a.action, a.account, a.route, a.result])).toEqual([
      ['reset', 'header:bob', 'invoice', 'reset'],
      ['reset', 'header:bob', undefined, 'reset'],
    ])
  })

  it('lists disabled accounts with their state', async () => {
    await read('header:mallory', 'contacts', range(1, 6))
    const list = await call(url, 'GET', '/accounts')
    expect(list.json.accounts[0]).toMatchObject({
      account: 'header:mallory',
      pressure: 1,
      disabled: [{ mode: 'enforce' }],
    })
  })
})
