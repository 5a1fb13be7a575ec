// Sessions bound to accounts, in front of the bundled legacy app (form and JSON logins that set
// JSESSIONID): logging in again does not reset the budget, a disabled account stays disabled
// on every new session, failed logins bind nothing, logout refunds nothing.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLegacyApp, type LegacyApp } from '../../src/demo/legacy-app.js'
import { fingerprint } from '../../src/identity/credentials.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const config = (cookie = 'JSESSIONID') => `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: cookie, name: ${cookie} }]
sessions:
  login: { method: POST, path: /login, usernameField: username, cookie: ${cookie} }
  logout: { method: POST, path: /logout }
  ttl: 8h
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 10, action: throttle }
      - { window: 1m,  requests: 25,        action: disable }   # hammering on while throttled
actions:
  disable: { duration: 1h }
`

let app: LegacyApp
let proxy: RunningProxy | undefined
beforeAll(async () => {
  app = await startLegacyApp()
})
afterAll(() => app.close())
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
})

async function login(
  username: string,
  password: string,
  as: 'form' | 'json' = 'form',
  cookie?: string,
): Promise<{ status: number; session?: string }> {
  const body =
    as === 'form' ? new URLSearchParams({ username, password }).toString() : JSON.stringify({ username, password })
  const res = await fetch(`${proxy!.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': as === 'form' ? 'application/x-www-form-urlencoded' : 'application/json',
      ...(cookie ? { cookie: `JSESSIONID=${cookie}` } : {}),
    },
    body,
  })
  await res.arrayBuffer()
  const set = res.headers.getSetCookie().find((c) => c.startsWith('JSESSIONID='))
  return { status: res.status, ...(set ? { session: set.slice('JSESSIONID='.length).split(';')[0] } : {}) }
}
const contact = (id: number, session: string) =>
  fetch(`${proxy!.url}/api/contacts/${id}`, { headers: { cookie: `JSESSIONID=${session}` } }).then(
    async (r) => (await r.arrayBuffer(), r.status),
  )
const boundTo = (session: string) => proxy!.app.sluice.store.sessionAccount(`session:${fingerprint(session)}`)

describe('sessions bound to accounts', () => {
  it('logging in again keeps the budget: the new session counts against the same account', async () => {
    proxy = await startProxy(config(), { upstream: app.url })
    const first = await login('mallory', 'mallory-pw')
    expect(first.status).toBe(303)
    expect(await boundTo(first.session!)).toBe('user:mallory')
    for (let id = 1; id <= 8; id++) expect(await contact(id, first.session!)).toBe(200)

    const second = await login('mallory', 'mallory-pw', 'json')
    expect(second.status).toBe(200)
    expect(second.session).not.toBe(first.session)
    expect(await contact(9, second.session!)).toBe(200)
    expect(await contact(10, second.session!)).toBe(200)
    expect(await contact(11, second.session!)).toBe(429) // 11 distinct across both sessions
    const decision = proxy.decisions().at(-1)
    expect(decision?.account).toBe('user:mallory')
    expect(decision?.identity).toBe('cookie')
  })

  it('a disabled account stays disabled on every new session', async () => {
    proxy = await startProxy(config(), { upstream: app.url })
    const s1 = (await login('mallory', 'mallory-pw')).session!
    let last = 0
    for (let id = 1; id <= 40 && last !== 403; id++) last = await contact(id, s1)
    expect(last).toBe(403)
    for (let i = 0; i < 3; i++) {
      const fresh = (await login('mallory', 'mallory-pw', i % 2 ? 'json' : 'form')).session!
      expect(await contact(1, fresh)).toBe(403)
    }
    // Another user is not affected.
    const alice = (await login('alice', 'alice-pw')).session!
    expect(await contact(1, alice)).toBe(200)
  })

  it('a failed login binds nothing, even from a session that is already bound', async () => {
    proxy = await startProxy(config(), { upstream: app.url })
    const alice = (await login('alice', 'alice-pw')).session!
    const failed = await login('mallory', 'wrong-password', 'form', alice)
    expect(failed.status).toBe(401)
    expect(failed.session).toBeUndefined()
    expect(await boundTo(alice)).toBe('user:alice')
    const stranger = await login('nobody', 'x', 'json')
    expect(stranger.status).toBe(401)
    expect(proxy.logs.filter((l) => l.event === 'sluice.session' && l.outcome === 'bound').length).toBe(1)
  })

  it('logout keeps the binding: counts belong to the user, and a logout the upstream ignores refunds nothing', async () => {
    proxy = await startProxy(config(), { upstream: app.url })
    const s = (await login('bob', 'bob-pw')).session!
    expect(await boundTo(s)).toBe('user:bob')
    const res = await fetch(`${proxy.url}/logout`, { method: 'POST', headers: { cookie: `JSESSIONID=${s}` } })
    expect(res.status).toBe(204)
    expect(await boundTo(s)).toBe('user:bob')
    expect(proxy.logs.some((l) => l.event === 'sluice.session' && l.outcome === 'logout')).toBe(true)
  })

  it('a login body sluice cannot read, or naming two users, binds no user and is still forwarded', async () => {
    proxy = await startProxy(config(), { upstream: app.url })
    const res = await fetch(`${proxy.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username": ',
    })
    expect(res.status).toBe(400) // the app's own answer to broken JSON
    const repeated = await fetch(`${proxy.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alice&username=mallory&password=alice-pw',
    })
    await repeated.arrayBuffer()
    expect(proxy.logs.filter((l) => l.event === 'sluice.session' && l.outcome === 'bound').length).toBe(0)
    // The ambiguous login's session counts against the client address, never a fresh budget.
    expect(
      proxy.logs.some((l) => l.event === 'sluice.session' && l.outcome === 'ambiguous' && l.account === 'ip:127.0.0.1'),
    ).toBe(true)
  })

  it('an upstream that sets another cookie than configured: per-session counting, said once in the log', async () => {
    proxy = await startProxy(config('SESSIONID'), { upstream: app.url })
    await login('alice', 'alice-pw')
    await login('bob', 'bob-pw')
    const warnings = proxy.logs.filter(
      (l) => l.event === 'sluice.session' && String(l.msg).includes('set no SESSIONID cookie'),
    )
    expect(warnings.length).toBe(1)
  })
})
