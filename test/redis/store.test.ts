// The Redis store against a real redis-server: exactness across instances, the shared clock,
// key expiry, restarts and every failure policy.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { readiness } from '../../src/admin/server.js'
import { Engine } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { MAX_BATCH, RedisStore, type FailurePolicy } from '../../src/store/redis.js'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import {
  freePort,
  hasRedis,
  redisEngine,
  startCluster,
  startRedis,
  type RedisCluster,
  type RedisServer,
} from '../helpers/redis.js'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0
if (!hasOpenssl && process.env.CI) throw new Error('openssl is not installed: CI must install it (.ci/run)')
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const config = (store: string, limit = 25) => `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
store: ${store}
identity: [ { type: basic } ]
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1h, distinctRecords: ${limit}, action: throttle }
`

let upstream: Upstream
const proxies: RunningProxy[] = []

beforeAll(async () => {
  upstream = await startUpstream()
})
afterAll(async () => {
  await upstream.close()
})
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})

async function startInstances(n: number, store: string, limit?: number): Promise<RunningProxy[]> {
  const started = await Promise.all(
    Array.from({ length: n }, () => startProxy(config(store, limit), { upstream: upstream.url })),
  )
  proxies.push(...started)
  for (const p of started) await (p.app.sluice.store as RedisStore).ready()
  return started
}

/** 200 concurrent requests for 200 different records, spread round-robin over the instances. */
async function attack(instances: RunningProxy[], user: string): Promise<number[]> {
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      send((instances[i % instances.length] as RunningProxy).url, `/api/contacts/${i + 1}`, { headers: basic(user) }),
    ),
  )
  return results.map((r) => r.status)
}

/** The batching tests' route: 30 distinct records a minute, requests never limiting. */
const batchPolicy = () =>
  buildPolicy(
    'contact',
    [
      { kind: 'requests', windowMs: 60_000, max: 1000, action: 'throttle' },
      { kind: 'distinctRecords', windowMs: 60_000, max: 30, action: 'throttle' },
    ],
    false,
  )

describe.skipIf(!hasRedis)('redis store, single node', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })

  it('serves exactly distinctRecords records across 4 instances under 200 concurrent requests', async () => {
    const instances = await startInstances(
      4,
      `{ type: redis, url: "REDIS", keyPrefix: "exact:", onError: fail-closed, commandTimeout: 2s }`.replace(
        'REDIS',
        server.url,
      ),
    )
    const statuses = await attack(instances, 'mallory')
    expect(statuses.filter((s) => s === 200).length).toBe(25)
    expect(statuses.filter((s) => s === 429).length).toBe(175)
    // Every instance blocks the account now.
    for (const p of instances)
      expect((await send(p.url, '/api/contacts/999', { headers: basic('mallory') })).status).toBe(429)
  })

  it('observations issued in one event-loop turn leave in one write and each gets its own exact answer', async () => {
    const { store, engine } = await redisEngine(server.url, 'turn:')
    const policy = batchPolicy()
    const stream = (store.client as unknown as { stream: { writev?: unknown; _writev?: unknown } }).stream
    const writes: number[] = []
    const original = (stream as { _writev: (chunks: unknown[], cb: () => void) => void })._writev.bind(stream)
    ;(stream as { _writev: (chunks: unknown[], cb: () => void) => void })._writev = (chunks, cb) => {
      writes.push(chunks.length)
      original(chunks, cb)
    }
    // 100 accounts' observations and one account's 60 records, all issued synchronously.
    const others = Array.from({ length: 100 }, (_, i) => engine.observe(`acct-${i}`, policy, [String(i)]))
    const mallory = Array.from({ length: 60 }, (_, i) => engine.observe('mallory', policy, [String(1000 + i)]))
    const [o, m] = await Promise.all([Promise.all(others), Promise.all(mallory)])
    expect(writes.some((n) => n > 1)).toBe(true) // coalesced: one writev carried several commands
    expect(o.every((d) => d.kind === 'allow' && d.counts[0] === 1 && d.counts[1] === 1)).toBe(true)
    expect(m.filter((d) => d.kind === 'allow').length).toBe(30)
    // Answered in order, each its own.
    expect(m.map((d) => d.counts[0])).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
    await store.close()
  })

  it('makes the observations of one event-loop turn in one script call (MAX_BATCH at most), each exactly', async () => {
    const { store, engine } = await redisEngine(server.url, 'batch:')
    const policy = batchPolicy()
    const probe = new Redis(server.url)
    const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await probe.info('commandstats'))?.[1] ?? 0)
    await engine.observe('warm-up', policy, ['1']) // loads the script
    await probe.config('RESETSTAT')
    const n = MAX_BATCH + 60
    const all = await Promise.all(Array.from({ length: n }, (_, i) => engine.observe('mallory', policy, [String(i)])))
    expect(await calls()).toBe(2) // MAX_BATCH, then the other 60
    expect(all.map((d) => d.counts[0])).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    expect(all.filter((d) => d.kind === 'allow').length).toBe(30)
    // An observation that fails (a key of the wrong type) gets the failure policy; the rest of
    // its batch is answered.
    await probe.set(store.keys('broken', 'contact')[0] as string, 'not a sorted set')
    const [a, broken, b] = await Promise.all(
      ['a', 'broken', 'b'].map((account) => engine.observe(account, policy, ['1'])),
    )
    expect(broken?.kind).toBe('unavailable')
    expect([a?.kind, b?.kind, a?.counts[0], b?.counts[0]]).toEqual(['allow', 'allow', 1, 1])
    probe.disconnect()
    await store.close()
  })

  it('fails the whole batch with the server error itself when Redis refuses writes (READONLY: Sentinel reconnects on it)', async () => {
    // A replica of a primary that is not there: it answers, and refuses every write.
    const replica = await startRedis(['--replicaof', '127.0.0.1', String(await freePort())])
    try {
      const { store, engine } = await redisEngine(replica.url, 'ro:')
      const client = store.client as unknown as { sluiceHit: (...a: unknown[]) => Promise<unknown> }
      const send = client.sluiceHit.bind(client)
      const rejected: string[] = []
      client.sluiceHit = (...a) => send(...a).catch((err: Error) => (rejected.push(err.message), Promise.reject(err)))
      const policy = buildPolicy('c', [{ kind: 'requests', windowMs: 60_000, max: 10, action: 'throttle' }], false)
      const both = await Promise.all(['a', 'b'].map((account) => engine.observe(account, policy, [])))
      expect(both.map((d) => d.kind)).toEqual(['unavailable', 'unavailable'])
      expect(rejected).toHaveLength(1) // one call for both, refused as a whole
      expect(rejected[0]).toMatch(/^READONLY/) // its own code, not "ERR …"
      await store.close()
    } finally {
      await replica.stop()
    }
  })

  it('counts an observation of thousands of ids (a big page) in one script call, exactly', async () => {
    const { store, engine } = await redisEngine(server.url, 'bulk:', 5000)
    const policy = buildPolicy(
      'list',
      [{ kind: 'distinctRecords', windowMs: 60_000, max: 3000, action: 'throttle' }],
      false,
    )
    const page = Array.from({ length: 2500 }, (_, i) => `id-${i}`)
    const first = await engine.observe('bulk', policy, page)
    expect(first.kind).toBe('allow')
    expect(first.counts[0]).toBe(2500)
    expect(await store.client.zcard(store.keys('bulk', 'list')[1] as string)).toBe(2500)
    // Half the page again (re-reads are free) and 600 new ids: 3,100 distinct cross 3,000, refused whole.
    const second = await engine.observe('bulk', policy, [
      ...page.slice(0, 1250),
      ...Array.from({ length: 600 }, (_, i) => `new-${i}`),
    ])
    expect(second.kind).toBe('throttle')
    expect(second.counts[0]).toBe(3001) // the cap: limit + 1
    expect(await store.client.zcard(store.keys('bulk', 'list')[1] as string)).toBe(2500) // a blocked observation counts no records
    await store.close()
  })

  it('times windows by the Redis clock: instances with skewed clocks agree', async () => {
    const url = server.url
    const make = (skewMs: number) =>
      new Engine(
        new RedisStore({ url, keyPrefix: 'skew:', commandTimeoutMs: 1000, onError: 'fail-closed', maxAccounts: 10 }),
        { disableForMs: 1000, clock: () => Date.now() + skewMs },
      )
    const ahead = make(10 * 60_000)
    const behind = make(-10 * 60_000)
    await (ahead.store as RedisStore).ready()
    await (behind.store as RedisStore).ready()
    const policy = buildPolicy('c', [{ kind: 'distinctRecords', windowMs: 1500, max: 3, action: 'throttle' }], false)
    expect((await ahead.observe('a', policy, ['1'])).kind).toBe('allow')
    expect((await behind.observe('a', policy, ['2'])).kind).toBe('allow')
    expect((await ahead.observe('a', policy, ['3'])).kind).toBe('allow')
    expect((await behind.observe('a', policy, ['4'])).kind).toBe('throttle')
    expect((await ahead.observe('a', policy, ['4'])).kind).toBe('throttle')
    // 1.5 s later by Redis' clock the window has moved on for both.
    await new Promise((r) => setTimeout(r, 1600))
    expect((await behind.observe('a', policy, ['4'])).kind).toBe('allow')
    await ahead.store.close()
    await behind.store.close()
  })

  it('lets keys expire with their windows, and shares disable/unlock', async () => {
    const { store, engine } = await redisEngine(server.url, 'ttl:', 1000)
    const policy = buildPolicy(
      'c',
      [
        { kind: 'requests', windowMs: 200, max: 100, action: 'throttle' },
        { kind: 'distinctRecords', windowMs: 300, max: 1, action: 'disable' },
      ],
      false,
    )
    await engine.observe('x', policy, ['1'])
    const [q, d, dis] = store.keys('x', 'c')
    const probe = new Redis(server.url)
    // The longest window + 1 s, + at most one housekeeping slice (window / 8: hit.lua).
    expect(await probe.pttl(q as string)).toBeLessThanOrEqual(1200 + 25)
    expect(await probe.pttl(d as string)).toBeLessThanOrEqual(1300 + 37)
    expect((await engine.observe('x', policy, ['2'])).kind).toBe('disable')
    expect(Number(await probe.get(dis as string))).toBeGreaterThan(Date.now())
    expect((await store.disabled('x', Date.now()))[0]?.shadow).toBe(false)
    expect(await store.unlock('x')).toBe(true)
    expect(await store.disabled('x', Date.now())).toEqual([])
    await new Promise((r) => setTimeout(r, 1500))
    expect(await probe.exists(q as string, d as string)).toBe(0)
    probe.disconnect()
    await store.close()
  })

  it('reloads its script after a Redis restart', async () => {
    const own = await startRedis()
    const store = new RedisStore({
      url: own.url,
      keyPrefix: 'restart:',
      commandTimeoutMs: 500,
      onError: 'fail-closed',
      maxAccounts: 10,
      breaker: { failures: 1, cooldownMs: 100 },
    })
    await store.ready()
    const engine = new Engine(store, { disableForMs: 1000 })
    const policy = buildPolicy('c', [{ kind: 'requests', windowMs: 60_000, max: 100, action: 'throttle' }], false)
    expect((await engine.observe('r', policy, [])).degraded).toBeUndefined()
    await own.stop()
    expect((await engine.observe('r', policy, [])).kind).toBe('unavailable')
    await own.start()
    await store.ready(10_000)
    await new Promise((r) => setTimeout(r, 150))
    const after = await engine.observe('r', policy, [])
    expect(after.degraded).toBeUndefined()
    expect(after.kind).toBe('allow')
    await store.close()
    await own.stop()
  })
})

describe.skipIf(!hasRedis)('redis connection options and slowness', () => {
  it('authenticates with a password and uses the database index of the URL', async () => {
    const server = await startRedis(['--requirepass', 's3cret-pw'])
    const store = new RedisStore({
      url: `redis://:s3cret-pw@127.0.0.1:${server.port}/3`,
      keyPrefix: 'auth:',
      commandTimeoutMs: 1000,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    await store.ready()
    const engine = new Engine(store, { disableForMs: 1000 })
    const policy = buildPolicy('c', [{ kind: 'requests', windowMs: 60_000, max: 5, action: 'throttle' }], false)
    expect((await engine.observe('a', policy, [])).kind).toBe('allow')
    const probe = new Redis({ port: server.port, password: 's3cret-pw', db: 3 })
    expect(await probe.exists(store.keys('a', 'c')[0] as string)).toBe(1)
    probe.disconnect()
    await store.close()
    const wrong = new RedisStore({
      url: `redis://:wrong@127.0.0.1:${server.port}`,
      keyPrefix: 'auth:',
      commandTimeoutMs: 200,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    expect((await new Engine(wrong, { disableForMs: 1 }).observe('a', policy, [])).kind).toBe('unavailable')
    await wrong.close()
    await server.stop()
  })

  it.skipIf(!hasOpenssl)('speaks TLS (rediss://) to a server signed by a private CA given as caFile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'))
    const ssl = (...args: string[]) => expect(spawnSync('openssl', args, { cwd: dir }).status).toBe(0)
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=sluice test CA',
    )
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    )
    const tlsPort = await freePort()
    const server = await startRedis([
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      join(dir, 'server.crt'),
      '--tls-key-file',
      join(dir, 'server.key'),
      '--tls-ca-cert-file',
      join(dir, 'ca.crt'),
      '--tls-auth-clients',
      'no',
    ])
    const policy = buildPolicy('c', [{ kind: 'requests', windowMs: 60_000, max: 5, action: 'throttle' }], false)
    const store = new RedisStore({
      url: `rediss://127.0.0.1:${tlsPort}`,
      caFile: join(dir, 'ca.crt'),
      keyPrefix: 'tls:',
      commandTimeoutMs: 1000,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    await store.ready()
    const d = await new Engine(store, { disableForMs: 1 }).observe('a', policy, [])
    expect(d.kind).toBe('allow')
    expect(d.degraded).toBeUndefined()
    await store.close()
    // Without the CA the certificate is not trusted: the failure policy answers.
    const untrusted = new RedisStore({
      url: `rediss://127.0.0.1:${tlsPort}`,
      keyPrefix: 'tls:',
      commandTimeoutMs: 300,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    await new Promise((r) => setTimeout(r, 300))
    expect((await new Engine(untrusted, { disableForMs: 1 }).observe('a', policy, [])).kind).toBe('unavailable')
    await untrusted.close()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('starts while Redis is down (policy applies at once) and connects when it appears', async () => {
    const port = await freePort()
    const store = new RedisStore({
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: 'late:',
      commandTimeoutMs: 50,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    const engine = new Engine(store, { disableForMs: 1 })
    const policy = buildPolicy('c', [{ kind: 'requests', windowMs: 60_000, max: 5, action: 'throttle' }], false)
    const started = performance.now()
    expect((await engine.observe('a', policy, [])).kind).toBe('unavailable')
    // At once, not after the connect timeout (2 s); a loaded machine can take a few hundred ms
    // for anything.
    expect(performance.now() - started).toBeLessThan(1000)
    const server = await startRedis([], port)
    await store.ready(10_000)
    await new Promise((r) => setTimeout(r, 1100)) // let the breaker's cooldown pass
    const d = await engine.observe('a', policy, [])
    expect(d.kind).toBe('allow')
    expect(d.degraded).toBeUndefined()
    await store.close()
    await server.stop()
  })

  it('bounds a slow Redis by commandTimeout, then opens the breaker', async () => {
    const server = await startRedis(['--enable-debug-command', 'yes'])
    const store = new RedisStore({
      url: server.url,
      keyPrefix: 'slow:',
      commandTimeoutMs: 50,
      onError: 'fail-open',
      maxAccounts: 10,
    })
    await store.ready()
    const engine = new Engine(store, { disableForMs: 1000 })
    const policy = buildPolicy('c', [{ kind: 'requests', windowMs: 60_000, max: 5, action: 'throttle' }], false)
    const blocker = new Redis(server.url)
    const sleeping = blocker.call('DEBUG', 'SLEEP', '1.5') // the server stalls for 1.5 s
    await new Promise((r) => setTimeout(r, 50))
    const times: number[] = []
    for (let i = 0; i < 6; i++) {
      const started = performance.now()
      const d = await engine.observe('a', policy, [])
      times.push(performance.now() - started)
      expect(d.degraded).toBe('fail-open')
    }
    // Each call waits at most ~commandTimeout; once the breaker is open, not at all.
    expect(Math.max(...times)).toBeLessThan(400)
    expect(times.slice(3).every((t) => t < 20)).toBe(true)
    expect(store.state).toBe('degraded')
    await sleeping
    blocker.disconnect()
    await store.close()
    await server.stop()
  })
})

describe.skipIf(!hasRedis)('failure policies: Redis killed under load', () => {
  const cases: [FailurePolicy, number][] = [
    ['fail-open', 200],
    ['fail-closed', 503],
    ['local', 200],
  ]
  it.each(cases)('%s', async (policy, statusWhileDown) => {
    const server = await startRedis()
    const [proxy] = await startInstances(
      1,
      `{ type: redis, url: "${server.url}", keyPrefix: "fail:", onError: ${policy}, commandTimeout: 50ms }`,
      3,
    )
    const p = proxy as RunningProxy
    const user = `user-${policy}`
    expect((await send(p.url, '/api/contacts/1', { headers: basic(user) })).status).toBe(200)

    // Kill Redis while a bounded load is running: nothing crashes, nothing hangs.
    const load = Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        send(p.url, `/api/contacts/${1 + (i % 2)}`, { headers: basic(user), timeoutMs: 3000 }),
      ),
    )
    await server.stop()
    const during = await load
    expect(during.every((r) => [200, 503].includes(r.status))).toBe(true)

    const started = Date.now()
    const down = await send(p.url, '/api/contacts/2', { headers: basic(user) })
    expect(Date.now() - started).toBeLessThan(1000)
    expect(down.status).toBe(statusWhileDown)
    // Non-sensitive routes never depend on Redis.
    expect((await send(p.url, '/about')).status).toBe(200)
    if (policy === 'local') {
      // The local fallback still enforces the limit (3 distinct records) in this instance.
      const statuses = []
      for (let id = 10; id < 15; id++)
        statuses.push((await send(p.url, `/api/contacts/${id}`, { headers: basic(`${user}-2`) })).status)
      expect(statuses).toEqual([200, 200, 200, 429, 429])
    }
    expect(p.logs.some((l) => l.event === 'sluice.store' && l.state === 'degraded')).toBe(true)
    // The state shows in readiness and metrics too.
    const ready = readiness(p.app.sluice.store)
    expect(ready.body).toMatchObject({ status: 'degraded', store: { type: 'redis', policy } })
    expect(ready.code).toBe(policy === 'fail-closed' ? 503 : 200)
    const metrics = p.app.sluice.metrics.registry
    expect(await metrics.getSingleMetricAsString('sluice_store_up')).toContain(
      `sluice_store_up{store="redis",policy="${policy}"} 0`,
    )
    expect(await metrics.getSingleMetricAsString('sluice_store_fallback_total')).toContain(`policy="${policy}"`)

    // Back: sluice reconnects by itself and counts in Redis again.
    await server.start()
    const store = p.app.sluice.store as RedisStore
    await store.ready(10_000)
    await new Promise((r) => setTimeout(r, 1100)) // the breaker's cooldown
    expect((await send(p.url, '/api/contacts/1', { headers: basic('after-recovery') })).status).toBe(200)
    const probe = new Redis(server.url)
    // Redis restarted empty (no persistence): keys now exist only if sluice counts there again.
    expect((await probe.keys('fail:*')).length).toBeGreaterThan(0)
    probe.disconnect()
    expect(p.logs.some((l) => l.event === 'sluice.store' && l.state === 'ok')).toBe(true)
    expect(readiness(p.app.sluice.store)).toMatchObject({ code: 200, body: { status: 'ready' } })
    expect(await metrics.getSingleMetricAsString('sluice_store_up')).toContain(`policy="${policy}"} 1`)
    await server.stop()
  })
})

describe.skipIf(!hasRedis)('redis cluster (3 masters)', () => {
  let cluster: RedisCluster
  beforeAll(async () => {
    cluster = await startCluster()
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('serves exactly distinctRecords records across 4 instances', async () => {
    const instances = await startInstances(
      4,
      `{ type: redis, cluster: [${cluster.urls.map((u) => `"${u}"`).join(', ')}], keyPrefix: "c:", onError: fail-closed, commandTimeout: 2s }`,
    )
    for (const user of ['mallory', 'trudy', 'eve']) {
      const statuses = await attack(instances, user)
      expect(statuses.filter((s) => s === 200).length).toBe(25)
    }
  })
})
