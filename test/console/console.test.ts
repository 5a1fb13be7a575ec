// The console's guards without a browser: CSRF (no token, another origin), wrong tokens
// throttled and audited, sessions that expire, the security headers, and nothing of it on the
// proxy port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readAs } from '../admin/helpers.js'
import { send } from '../helpers/http.js'
import { signIn, startConsole, TOKEN, type RunningConsole } from './helpers.js'

let sluice: RunningConsole

const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${sluice.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  })

beforeAll(async () => {
  sluice = await startConsole({ sessionTtl: '1500ms' })
})
afterAll(() => sluice.close())

describe('console: CSRF', () => {
  it('refuses a state-changing request without the token, or from another origin', async () => {
    await readAs(sluice.proxy.url, 'mallory', 'contacts', [1, 2, 3, 4, 5, 6])
    const { cookie, csrf } = await signIn(sluice.url)
    const unlock = (fields: Record<string, string>, headers: Record<string, string>) =>
      post('/console/accounts/header%3Amallory/act', { do: 'unlock', ...fields }, { cookie, ...headers })
    expect((await unlock({}, { origin: sluice.url })).status).toBe(403)
    expect((await unlock({ csrf: 'forged' }, { origin: sluice.url })).status).toBe(403)
    expect((await unlock({ csrf }, { origin: 'http://evil.example' })).status).toBe(403)
    expect((await unlock({ csrf }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403)
    expect(sluice.proxy.logs.filter((l) => l.event === 'sluice.admin.action' && l.action === 'unlock')).toEqual([])
    expect((await readAs(sluice.proxy.url, 'mallory', 'contacts', [1]))[0]).toBe(403)

    const done = await unlock({ csrf }, { origin: sluice.url, 'sec-fetch-site': 'same-origin' })
    expect(done.status).toBe(303)
    expect(done.headers.get('location')).toBe('/console/accounts/header%3Amallory?done=unlock')
    expect((await readAs(sluice.proxy.url, 'mallory', 'contacts', [1]))[0]).toBe(200)
  })
})

// Before the sign-in tests: their wrong tokens throttle this address.
describe('console: what the overview costs', () => {
  it('polls the chart alone; lists the accounts once for every session until 15 s pass or an operator acts', async () => {
    const { cookie, csrf } = await signIn(sluice.url, TOKEN, 'a')
    const json = async <T>(path: string, c = cookie) =>
      (await fetch(`${sluice.url}${path}`, { headers: { cookie: c } })).json() as Promise<T>
    type Tables = { listed: string; nextMs: number; accounts: { text: string }[][] }
    const names = (t: Tables) => t.accounts.map((row) => row[0]?.text)
    const act = (account: string) =>
      post(
        `/console/accounts/${encodeURIComponent(account)}/act`,
        { do: 'unlock', csrf },
        { cookie, origin: sluice.url },
      )

    // The 3-second poll: the last hour's minutes, no account.
    expect(Object.keys(await json('/console/live.json')).sort()).toEqual(['at', 'chart'])

    // An action through the console drops the shared listing: the next page lists again.
    await readAs(sluice.proxy.url, 'seed', 'contacts', [1])
    expect((await act('header:seed')).status).toBe(303)
    const first = await json<Tables>('/console/overview.json')
    expect(names(first)).toContain('header:seed')
    expect(first.nextMs).toBeGreaterThan(10_000)
    expect(first.nextMs).toBeLessThanOrEqual(15_000)

    // A new account waits for the next listing, for every session alike.
    await readAs(sluice.proxy.url, 'newcomer', 'contacts', [1, 2])
    const other = await signIn(sluice.url, TOKEN, 'b')
    const again = await json<Tables>('/console/overview.json', other.cookie)
    expect(again.listed).toBe(first.listed)
    expect(names(again)).not.toContain('header:newcomer')
    expect(await (await fetch(`${sluice.url}/console/accounts`, { headers: { cookie } })).text()).not.toContain(
      'header:newcomer',
    )

    expect((await act('header:newcomer')).status).toBe(303)
    expect(names(await json<Tables>('/console/overview.json', other.cookie))).toContain('header:newcomer')
  })
})

describe('console: signing in', () => {
  it('sets an HttpOnly SameSite=Strict cookie on the console path; pages carry a strict CSP', async () => {
    const res = await post('/console/login', { token: 'alice-token-0123456789' })
    expect(res.status).toBe(303)
    expect(res.headers.get('set-cookie')).toMatch(
      /^sluice_console=[\w-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=1$/,
    )
    const page = await fetch(`${sluice.url}/console/login`)
    expect(page.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    const signIns = sluice.proxy.logs.filter((l) => l.event === 'sluice.admin.action' && l.action === 'sign-in')
    expect(signIns.at(-1)).toMatchObject({
      result: 'signed-in',
      operator: 'alice',
      tokenName: 'alice',
    })
  })

  it('expires a session after admin.console.sessionTtl; signing out ends it at once', async () => {
    const { cookie } = await signIn(sluice.url)
    expect((await fetch(`${sluice.url}/console`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200)
    await new Promise((r) => setTimeout(r, 1600))
    const later = await fetch(`${sluice.url}/console`, { headers: { cookie }, redirect: 'manual' })
    expect(later.status).toBe(303)
    expect(later.headers.get('location')).toBe('/console/login?next=%2Fconsole')
    expect((await fetch(`${sluice.url}/console/overview.json`, { headers: { cookie } })).status).toBe(401)

    const fresh = await signIn(sluice.url)
    const out = await post('/console/logout', { csrf: fresh.csrf }, { cookie: fresh.cookie, origin: sluice.url })
    expect(out.status).toBe(303)
    expect(
      (await fetch(`${sluice.url}/console`, { headers: { cookie: fresh.cookie }, redirect: 'manual' })).status,
    ).toBe(303)
  })

  it('throttles wrong tokens per address after five, and audits each refused one', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 7; i++)
      statuses.push((await post('/console/login', { token: `wrong-${i}`, operator: 'eve' })).status)
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429])
    const refused = sluice.proxy.logs.filter((l) => l.event === 'sluice.admin.action' && l.result === 'refused')
    expect(refused).toHaveLength(5)
    expect(refused[0]).toMatchObject({ action: 'sign-in', operator: 'eve', remoteAddress: '127.0.0.1' })
  })
})

describe('console: not on the proxy port', () => {
  it('forwards /console paths on the public port to the upstream like any other path', async () => {
    for (const path of ['/console', '/console/login', '/console/console.js', '/console/overview.json']) {
      const res = await send(sluice.proxy.url, path)
      expect(res.headers['content-security-policy']).toBeUndefined()
      expect(JSON.parse(res.body)).toMatchObject({ ok: true, url: path })
    }
  })
})
