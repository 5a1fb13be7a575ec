// The challenge action, driven the way an API client would: read the problem, solve the
// proof of work with altcha-lib, retry with the solution, keep the pass.
import { solveChallenge, type Challenge } from 'altcha-lib'
import { deriveKey } from 'altcha-lib/algorithms/sha'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { basic } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
identity: [{ type: basic }]
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 5,  action: challenge }
      - { window: 10m, distinctRecords: 30, action: disable }
  - name: invoice
    methods: [GET]
    path: /api/invoices/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 2, action: challenge }
actions:
  challenge: { difficulty: 2000, validFor: 10m, grants: 50, timeout: 5m, secret: test-challenge-secret-0123456789 }
  disable: { duration: 1h }
`

interface ChallengeProblem {
  type: string
  status: number
  challenge: Challenge
  solution: { header: string }
  solutionRejected?: string
}

let upstream: Upstream
let proxy: RunningProxy | undefined
let now = Date.now()
beforeAll(async () => {
  upstream = await startUpstream()
})
afterAll(() => upstream.close())
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  upstream.received.length = 0
})

const start = () => startProxy(CONFIG, { upstream: upstream.url, clock: () => now })
const get = (path: string, user: string, headers: Record<string, string> = {}) =>
  fetch(`${proxy!.url}${path}`, { headers: { ...basic(user), accept: 'application/json', ...headers } })

async function solve(problem: ChallengeProblem): Promise<string> {
  const solution = await solveChallenge({ challenge: problem.challenge, deriveKey })
  if (!solution) throw new Error('no solution found')
  return Buffer.from(JSON.stringify({ challenge: problem.challenge, solution })).toString('base64')
}

/** Walk ids until the account is challenged; returns the problem. */
async function challengeFor(
  user: string,
  path = '/api/contacts',
  from = 1,
): Promise<{ problem: ChallengeProblem; next: number }> {
  for (let id = from; id < from + 50; id++) {
    const res = await get(`${path}/${id}`, user)
    if (res.status === 429) {
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      return { problem: (await res.json()) as ChallengeProblem, next: id }
    }
    expect(res.status).toBe(200)
    await res.arrayBuffer()
  }
  throw new Error('never challenged')
}

describe('challenge over the API', () => {
  it('a pass buys `grants` records, then the next challenge comes, twice as hard', async () => {
    proxy = await start()
    const { problem, next } = await challengeFor('grace', '/api/invoices')
    expect(next).toBe(3)
    const first = await solveChallenge({ challenge: problem.challenge, deriveKey })
    expect(first!.counter).toBeLessThanOrEqual(2000) // difficulty 2000: the counter is in [1000, 2000]
    const answer = Buffer.from(JSON.stringify({ challenge: problem.challenge, solution: first })).toString('base64')
    const solved = await get(`/api/invoices/${next}`, 'grace', { 'sluice-solution': answer })
    expect(solved.status).toBe(200)
    const pass = solved.headers.get('sluice-pass')!
    // The solving request spent 1 of the 50 grants; 49 more new records pass, the 50th does not.
    const statuses: number[] = []
    for (let id = next + 1; id <= next + 50; id++)
      statuses.push((await get(`/api/invoices/${id}`, 'grace', { 'sluice-pass': pass })).status)
    expect(statuses.slice(0, 49).every((s) => s === 200)).toBe(true)
    expect(statuses[49]).toBe(429)
    const again = (await (
      await get(`/api/invoices/${next + 51}`, 'grace', { 'sluice-pass': pass })
    ).json()) as ChallengeProblem
    const second = await solveChallenge({ challenge: again.challenge, deriveKey })
    expect(second!.counter).toBeGreaterThanOrEqual(2000) // one solve: difficulty 4000, the counter in [2000, 4000]
    expect(upstream.received.filter((r) => r.url.startsWith('/api/invoices/')).length).toBe(2 + 1 + 49)
  })

  it('a solved challenge lets the request through and grants a pass for the limit; more severe limits still act', async () => {
    proxy = await start()
    const { problem, next } = await challengeFor('mallory')
    expect(next).toBe(6) // 5 distinct records, the 6th is challenged
    expect(problem.type).toMatch(/\/challenge$/)
    expect(problem.solution.header).toBe('sluice-solution')
    expect(problem.challenge.parameters.algorithm).toBe('SHA-256')

    const solved = await get(`/api/contacts/${next}`, 'mallory', { 'sluice-solution': await solve(problem) })
    expect(solved.status).toBe(200)
    const pass = solved.headers.get('sluice-pass')
    expect(pass).toBeTruthy()
    expect(solved.headers.getSetCookie().some((c) => c.startsWith('sluice_pass=') && /HttpOnly/i.test(c))).toBe(true)

    // With the pass: no more challenges from that limit …
    for (let id = next + 1; id <= 20; id++)
      expect((await get(`/api/contacts/${id}`, 'mallory', { 'sluice-pass': pass! })).status).toBe(200)
    // … without it, a new record is challenged again (re-reading a known one is free) …
    expect((await get('/api/contacts/21', 'mallory')).status).toBe(429)
    expect((await get('/api/contacts/20', 'mallory')).status).toBe(200)
    // … and the more severe disable limit still disables, pass or not.
    for (let id = 21; id <= 30; id++)
      expect((await get(`/api/contacts/${id}`, 'mallory', { 'sluice-pass': pass! })).status).toBe(200)
    expect((await get('/api/contacts/31', 'mallory', { 'sluice-pass': pass! })).status).toBe(403)

    // The upstream never sees sluice's own headers or cookies.
    for (const r of upstream.received) {
      expect(r.headers['sluice-pass']).toBeUndefined()
      expect(r.headers['sluice-solution']).toBeUndefined()
      expect(String(r.headers.cookie ?? '')).not.toContain('sluice_')
    }
    const outcomes = proxy.logs.filter((l) => l.event === 'sluice.challenge').map((l) => l.outcome)
    expect(outcomes).toContain('solved')
  })

  it('the pass cookie works as well as the header, and passes only the limit it was solved for', async () => {
    proxy = await start()
    const { problem, next } = await challengeFor('erin')
    const solved = await get(`/api/contacts/${next}`, 'erin', { 'sluice-solution': await solve(problem) })
    const cookie = solved.headers
      .getSetCookie()
      .find((c) => c.startsWith('sluice_pass='))!
      .split(';')[0]!
    expect((await get(`/api/contacts/${next + 1}`, 'erin', { cookie: `JSESSIONID=abc; ${cookie}` })).status).toBe(200)
    // Another route's challenge limit is not passed by it.
    await get('/api/invoices/1', 'erin', { cookie })
    await get('/api/invoices/2', 'erin', { cookie })
    expect((await get('/api/invoices/3', 'erin', { cookie })).status).toBe(429)
  })

  it("refuses a replayed, forged, garbage, expired or other account's solution, and says which", async () => {
    proxy = await start()
    const { problem, next } = await challengeFor('mallory')
    const good = await solve(problem)
    expect((await get(`/api/contacts/${next}`, 'mallory', { 'sluice-solution': good })).status).toBe(200)

    const rejected = async (user: string, solution: string, id = next + 1) => {
      const res = await get(`/api/contacts/${id}`, user, { 'sluice-solution': solution })
      expect(res.status).toBe(429)
      return ((await res.json()) as ChallengeProblem).solutionRejected
    }
    // Replayed: the same solution a second time.
    expect(await rejected('mallory', good)).toBe('replayed')

    // Forged: the challenge's signed parameters altered (an easier counter range, another account) …
    const { problem: p2 } = await challengeFor('mallory', '/api/contacts', next + 1)
    const tampered = structuredClone(p2.challenge)
    tampered.parameters.data = { ...tampered.parameters.data, account: 'someone-else' }
    const solution = await solveChallenge({ challenge: p2.challenge, deriveKey })
    expect(
      await rejected('mallory', Buffer.from(JSON.stringify({ challenge: tampered, solution })).toString('base64')),
    ).toBe('forged')
    // … or a wrong answer to a genuine challenge.
    const wrong = { ...solution!, derivedKey: '00'.repeat(32) }
    expect(
      await rejected(
        'mallory',
        Buffer.from(JSON.stringify({ challenge: p2.challenge, solution: wrong })).toString('base64'),
      ),
    ).toBe('forged')
    expect(await rejected('mallory', 'bm90IGpzb24=')).toBe('malformed')
    expect(await rejected('mallory', '%%%')).toBe('malformed')

    // Another account: alice, challenged herself, presents mallory's fresh solution.
    const fresh = await solve(p2)
    await challengeFor('alice')
    expect(await rejected('alice', fresh, 6)).toBe('other-account')
    // And mallory's pass is worth nothing to alice.
    const passRes = await get(`/api/contacts/${next + 1}`, 'mallory', { 'sluice-solution': fresh })
    expect(passRes.status).toBe(200)
    expect((await get('/api/contacts/7', 'alice', { 'sluice-pass': passRes.headers.get('sluice-pass')! })).status).toBe(
      429,
    )

    // Expired: solved too late.
    const { problem: p3 } = await challengeFor('bob')
    const late = await solve(p3)
    now += 5 * 60_000 + 1
    expect(await rejected('bob', late, 6)).toBe('expired')

    const reasons = proxy.logs
      .filter((l) => l.event === 'sluice.challenge' && l.outcome === 'rejected')
      .map((l) => l.reason)
    expect(reasons).toEqual(expect.arrayContaining(['replayed', 'forged', 'malformed', 'other-account', 'expired']))
  })

  it('a pass ends after validFor', async () => {
    proxy = await start()
    const { problem, next } = await challengeFor('dave')
    const res = await get(`/api/contacts/${next}`, 'dave', { 'sluice-solution': await solve(problem) })
    const pass = res.headers.get('sluice-pass')!
    expect((await get(`/api/contacts/${next + 1}`, 'dave', { 'sluice-pass': pass })).status).toBe(200)
    now += 10 * 60_000 + 1 // the window slides too: earlier records age out with it
    for (let id = 100; id < 105; id++)
      expect((await get(`/api/contacts/${id}`, 'dave', { 'sluice-pass': pass })).status).toBe(200)
    expect((await get('/api/contacts/105', 'dave', { 'sluice-pass': pass })).status).toBe(429)
  })

  it('a browser (Accept: text/html) gets the self-contained solver page, no third-party resources', async () => {
    proxy = await start()
    for (let id = 1; id <= 5; id++) await get(`/api/contacts/${id}`, 'frank')
    const res = await fetch(`${proxy.url}/api/contacts/6`, {
      headers: { ...basic('frank'), accept: 'text/html,application/xhtml+xml' },
    })
    expect(res.status).toBe(429)
    expect(res.headers.get('content-type')).toMatch(/text\/html/)
    const html = await res.text()
    expect(html).toMatch(/<script>/)
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//)
  })
})
