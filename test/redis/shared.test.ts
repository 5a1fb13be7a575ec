// Response records, challenge solutions and session bindings shared by several instances
// through one real redis-server.
import { spawn } from 'node:child_process'
import { solveChallenge, type Challenge } from 'altcha-lib'
import { deriveKey } from 'altcha-lib/algorithms/sha'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startLegacyApp, type LegacyApp } from '../../src/demo/legacy-app.js'
import { fingerprint } from '../../src/identity/credentials.js'
import type { RedisStore } from '../../src/store/redis.js'
import { basic } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'

const config = (redis: string, prefix: string) => `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
store: { type: redis, url: "${redis}", keyPrefix: "${prefix}", onError: fail-closed, commandTimeout: 2s }
identity: [{ type: basic }, { type: cookie, name: JSESSIONID }]
sessions:
  login: { path: /login, usernameField: username, cookie: JSESSIONID }
routes:
  - name: list
    methods: [GET]
    path: /api/contacts
    records: { response: "$.items[*].id" }
    clampQuery: { pageSize: 20 }
    limits:
      - { window: 10m, distinctRecords: 50, action: throttle }
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 10m, distinctRecords: 5, action: challenge }
actions:
  challenge: { difficulty: 2000, secret: shared-secret-of-all-instances-0123 }
`

describe.skipIf(!hasRedis)('several instances sharing redis', () => {
  let server: RedisServer
  let app: LegacyApp
  const proxies: RunningProxy[] = []
  beforeAll(async () => {
    server = await startRedis()
    app = await startLegacyApp()
  })
  afterAll(async () => {
    await app.close()
    await server.stop()
  })
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()))
  })
  async function instances(n: number, prefix: string): Promise<RunningProxy[]> {
    const started = await Promise.all(
      Array.from({ length: n }, () => startProxy(config(server.url, prefix), { upstream: app.url })),
    )
    proxies.push(...started)
    for (const p of started) await (p.app.sluice.store as RedisStore).ready()
    return started
  }

  it('pages fetched concurrently through 3 instances: at most distinctRecords ids leave, the rest is withheld', async () => {
    const all = await instances(3, 'pages:')
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        fetch(`${all[i % 3]!.url}/api/contacts?page=${i + 1}&pageSize=20`, {
          headers: basic('mallory', 'mallory-pw'),
        }).then(async (r) => ({
          status: r.status,
          ids:
            r.status === 200
              ? ((await r.json()) as { items: { id: number }[] }).items.map((c) => c.id)
              : (await r.arrayBuffer(), []),
        })),
      ),
    )
    const received = new Set(results.flatMap((r) => r.ids))
    expect(received.size).toBe(40) // two pages of 20; any third would make 60 > 50
    expect(results.filter((r) => r.status === 429).length).toBe(10)
  })

  it('a solution spent on one instance is refused as replayed on another; the pass works on all', async () => {
    const [a, b] = await instances(2, 'pow:')
    const get = (p: RunningProxy, id: number, headers: Record<string, string> = {}) =>
      fetch(`${p.url}/api/contacts/${id}`, {
        headers: { ...basic('mallory', 'mallory-pw'), accept: 'application/json', ...headers },
      })
    for (let id = 1; id <= 5; id++) expect((await get(id % 2 ? a! : b!, id)).status).toBe(200)
    const challenged = await get(a!, 6)
    expect(challenged.status).toBe(429)
    const { challenge } = (await challenged.json()) as { challenge: Challenge }
    const solution = await solveChallenge({ challenge, deriveKey })
    const encoded = Buffer.from(JSON.stringify({ challenge, solution })).toString('base64')
    const solved = await get(b!, 6, { 'sluice-solution': encoded })
    expect(solved.status).toBe(200)
    const replay = await get(a!, 7, { 'sluice-solution': encoded })
    expect(replay.status).toBe(429)
    expect(((await replay.json()) as { solutionRejected: string }).solutionRejected).toBe('replayed')
    expect((await get(a!, 7, { 'sluice-pass': solved.headers.get('sluice-pass')! })).status).toBe(200)
  })

  it('a session bound at login on one instance counts against the account on another', async () => {
    const [a, b] = await instances(2, 'sessions:')
    const res = await fetch(`${a!.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alice&password=alice-pw',
    })
    const session = res.headers
      .getSetCookie()
      .find((c) => c.startsWith('JSESSIONID='))!
      .split(';')[0]!
    expect(
      await b!.app.sluice.store.sessionAccount(`session:${fingerprint(session.slice('JSESSIONID='.length))}`),
    ).toBe('user:alice')
    // Paging on B with that session: alice's account budget, and the third page is withheld.
    const statuses: number[] = []
    for (let page = 1; page <= 3; page++) {
      const r = await fetch(`${(page % 2 ? b : a)!.url}/api/contacts?page=${page}`, { headers: { cookie: session } })
      statuses.push(r.status)
      await r.arrayBuffer()
    }
    expect(statuses).toEqual([200, 200, 429])
    expect(b!.decisions().at(-1)?.account).toBe('user:alice')
  })

  it('times each Redis observation in sluice_store_latency_seconds', async () => {
    const [a] = await instances(1, 'latency:')
    for (let id = 1; id <= 3; id++)
      expect((await fetch(`${a!.url}/api/contacts/${id}`, { headers: basic('bob', 'bob-pw') })).status).toBe(200)
    const text = await a!.app.sluice.metrics.registry.getSingleMetricAsString('sluice_store_latency_seconds')
    expect(text).toMatch(/sluice_store_latency_seconds_count\{store="redis"\} 3/)
  })

  it('counts failed store commands in sluice_store_errors_total and answers by the failure policy', async () => {
    const own = await startRedis(['--enable-debug-command', 'yes'])
    const yaml = config(own.url, 'errors:').replace(
      'onError: fail-closed, commandTimeout: 2s',
      'onError: fail-open, commandTimeout: 100ms',
    )
    const proxy = await startProxy(yaml, { upstream: app.url })
    proxies.push(proxy)
    await (proxy.app.sluice.store as RedisStore).ready()
    // Redis stalls for a second: the commands time out (they are attempted, and fail).
    const sleeper = spawn('redis-cli', ['-p', String(own.port), 'DEBUG', 'SLEEP', '1'], { stdio: 'ignore' })
    await new Promise((r) => setTimeout(r, 100))
    for (let id = 1; id <= 3; id++)
      expect((await fetch(`${proxy.url}/api/contacts/${id}`, { headers: basic('mallory', 'mallory-pw') })).status).toBe(
        200,
      )
    await new Promise((r) => sleeper.once('exit', r))
    const text = await proxy.app.sluice.metrics.registry.getSingleMetricAsString('sluice_store_errors_total')
    expect(Number(/sluice_store_errors_total\{store="redis"\} (\d+)/.exec(text)?.[1] ?? 0)).toBeGreaterThan(0)
    expect(await proxy.app.sluice.metrics.registry.getSingleMetricAsString('sluice_store_fallback_total')).toMatch(
      /policy="fail-open"\} [1-9]/,
    )
    await own.stop()
  })
})
