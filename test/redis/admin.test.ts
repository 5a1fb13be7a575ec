// The admin API over the Redis store: one instance's admin acts for all of them, and the
// Redis store lists and shows what the memory store would for the same traffic; on a 3-master
// cluster too.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { buildAdmin } from '../../src/admin/server.js'
import { Engine } from '../../src/engine/engine.js'
import { buildPolicy } from '../../src/engine/policy.js'
import { accountOfKey, RedisStore } from '../../src/store/redis.js'
import { MemoryStore } from '../../src/store/memory.js'
import { accountPath, adminConfig, call, policiesOf, TOKEN } from '../admin/helpers.js'
import { send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { hasRedis, startCluster, startRedis, type RedisCluster, type RedisServer } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const config = (store: string) => adminConfig({ store })
const POLICIES = policiesOf(config('{ type: memory }'))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('accountOfKey', () => {
  it('parses account keys from the end, whatever braces and colons the account id holds', () => {
    expect(accountOfKey('{user:alice}:x', undefined)).toBe('user:alice')
    expect(accountOfKey('{user:alice}:xs', undefined)).toBe('user:alice')
    expect(accountOfKey('{basic:bob#3f2a1b}:r:contact', undefined)).toBe('basic:bob#3f2a1b')
    expect(accountOfKey('{a}:r:b}:d:contact', 'contact')).toBe('a}:r:b')
    expect(accountOfKey('{a}:x}:r:invoice', undefined)).toBe('a}:x')
    expect(accountOfKey('{user:alice}:r:contact', 'invoice')).toBeNull()
    expect(accountOfKey('{user:alice}:x', 'contact')).toBeNull()
    expect(accountOfKey('session:abc', undefined)).toBeNull()
  })
})

describe.skipIf(!hasRedis)('admin API over a shared redis', () => {
  let server: RedisServer
  let upstream: Upstream
  const closing: { close(): Promise<unknown> }[] = []
  beforeAll(async () => {
    server = await startRedis()
    upstream = await startUpstream()
  })
  afterAll(async () => {
    await upstream.close()
    await server.stop()
  })
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((c) => c.close()))
  })

  async function instance(prefix: string): Promise<{ proxy: RunningProxy; admin: string }> {
    const proxy = await startProxy(
      config(`{ type: redis, url: "${server.url}", keyPrefix: "${prefix}", onError: fail-closed, commandTimeout: 2s }`),
      { upstream: upstream.url },
    )
    await (proxy.app.sluice.store as RedisStore).ready()
    const admin = await buildAdmin({
      token: TOKEN,
      metrics: proxy.app.sluice.metrics,
      store: proxy.app.sluice.store,
      policies: POLICIES,
    })
    closing.push(admin, proxy)
    return { proxy, admin: await admin.listen({ host: '127.0.0.1', port: 0 }) }
  }
  const get = (p: RunningProxy, user: string, path: string) =>
    send(p.url, path, { headers: { 'x-user': user.replace(/^header:/, '') } }).then((r) => r.status)

  it('unlock restores access immediately across instances', async () => {
    const a = await instance('unlock:')
    const b = await instance('unlock:')
    const statuses: number[] = []
    for (const id of range(1, 7)) statuses.push(await get(a.proxy, 'header:mallory', `/api/contacts/${id}`))
    expect(statuses).toEqual([200, 200, 200, 200, 200, 403, 403])
    expect(await get(b.proxy, 'header:mallory', '/api/contacts/1')).toBe(403)

    // B's admin sees the disable set through A, and lifts it for every instance.
    const shown = await call(b.admin, 'GET', accountPath('header:mallory'))
    // … and what disabled it, kept beside the disable in Redis.
    expect(shown.json.disabled).toEqual([
      { mode: 'enforce', until: 'forever', limit: '10m distinctRecords 5 → disable', since: expect.any(String) },
    ])
    const res = await call(b.admin, 'POST', accountPath('header:mallory', '/unlock'))
    expect(res.json).toEqual({
      account: 'header:mallory',
      unlocked: true,
      lifted: [{ mode: 'enforce', until: 'forever' }],
    })
    expect(await get(a.proxy, 'header:mallory', '/api/contacts/1')).toBe(200)
    expect(await get(b.proxy, 'header:mallory', '/api/contacts/2')).toBe(200)
    expect((await call(a.admin, 'GET', accountPath('header:mallory'))).json.disabled).toEqual([])
  })

  it('reset through one instance gives a fresh budget on the others', async () => {
    const a = await instance('reset:')
    const b = await instance('reset:')
    for (const id of range(1, 6)) await get(a.proxy, 'header:bob', `/api/contacts/${id}`)
    for (const id of range(1, 3)) await get(a.proxy, 'header:bob', `/api/invoices/${id}`)
    const one = await call(b.admin, 'POST', `${accountPath('header:bob', '/reset')}?route=invoice`)
    expect(one.json).toMatchObject({ route: 'invoice', lifted: [{ mode: 'enforce' }] })
    const shown = (await call(a.admin, 'GET', accountPath('header:bob'))).json
    expect(shown.disabled).toEqual([])
    expect(
      shown.routes.map((r: { route: string; limits: { count: number }[] }) => [r.route, r.limits[0]?.count]),
    ).toEqual([['contact', 5]])

    expect((await call(b.admin, 'POST', accountPath('header:bob', '/reset'))).status).toBe(200)
    expect((await call(a.admin, 'GET', accountPath('header:bob'))).status).toBe(404)
    const statuses: number[] = []
    for (const id of range(11, 15)) statuses.push(await get(a.proxy, 'header:bob', `/api/contacts/${id}`))
    expect(statuses).toEqual([200, 200, 200, 200, 200])
  })

  it('lists and shows exactly what the memory store does for the same traffic, and only under its own prefix', async () => {
    const redis = await instance('same:')
    const other = await instance('other:')
    const memory = await startProxy(config('{ type: memory }'), { upstream: upstream.url })
    const memoryAdmin = await buildAdmin({
      token: TOKEN,
      metrics: memory.app.sluice.metrics,
      store: memory.app.sluice.store,
      policies: POLICIES,
    })
    closing.push(memoryAdmin, memory)
    const memoryUrl = await memoryAdmin.listen({ host: '127.0.0.1', port: 0 })

    const traffic: [string, string][] = [
      ...range(1, 4).map((id): [string, string] => ['header:alice', `/api/contacts/${id}`]),
      ...range(1, 2).map((id): [string, string] => ['header:bob', `/api/contacts/${id}`]),
      ...range(1, 9).map((id): [string, string] => ['header:bob', `/api/invoices/${id}`]),
      ...range(1, 11).map((): [string, string] => ['header:carol', '/api/contacts/1']),
      ...range(1, 7).map((id): [string, string] => ['header:mallory', `/api/contacts/${id}`]),
      ['header:x{y}:q:z', '/api/contacts/1'],
    ]
    for (const [user, path] of traffic) {
      await get(redis.proxy, user, path)
      await get(memory, user, path)
    }
    await get(other.proxy, 'header:elsewhere', '/api/contacts/1')

    const strip = (j: { at?: string; accounts: object[] }) => ({ ...j, at: undefined })
    for (const query of [
      '',
      '?route=contact',
      '?route=invoice',
      '?by=requests',
      '?by=requests&route=contact',
      '?limit=2',
    ]) {
      const fromRedis = (await call(redis.admin, 'GET', `/accounts${query}`)).json
      const fromMemory = (await call(memoryUrl, 'GET', `/accounts${query}`)).json
      expect(strip(fromRedis), query).toEqual(strip(fromMemory))
      expect(JSON.stringify(fromRedis)).not.toContain('elsewhere')
    }
    const list = (await call(redis.admin, 'GET', '/accounts')).json
    expect(list.accounts.map((a: { account: string }) => a.account)).toEqual([
      'header:mallory',
      'header:bob',
      'header:alice',
      'header:carol',
      'header:x{y}:q:z',
    ])
    for (const account of ['header:alice', 'header:bob', 'header:mallory', 'header:x{y}:q:z']) {
      const r = (await call(redis.admin, 'GET', accountPath(account))).json
      const m = (await call(memoryUrl, 'GET', accountPath(account))).json
      // The same but for when each store disabled it (its own clock, a few ms apart).
      const when = (j: { disabled: { since?: string }[] }) => ({
        ...j,
        at: undefined,
        disabled: j.disabled.map((d) => ({ ...d, since: d.since === undefined ? undefined : 'set' })),
      })
      expect(when(r), account).toEqual(when(m))
    }
  })

  it('answers 503 with the reason when Redis cannot be reached', async () => {
    const own = await startRedis()
    const store = new RedisStore({
      url: own.url,
      keyPrefix: 'down:',
      commandTimeoutMs: 500,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    await store.ready()
    const admin = await buildAdmin({
      token: TOKEN,
      metrics: new (await import('../../src/admin/metrics.js')).Metrics(),
      store,
      policies: POLICIES,
    })
    closing.push(admin, store)
    const url = await admin.listen({ host: '127.0.0.1', port: 0 })
    await own.stop()
    for (const [method, path] of [
      ['GET', '/accounts'],
      ['GET', accountPath('header:a')],
      ['POST', accountPath('header:a', '/unlock')],
    ] as const) {
      const res = await call(url, method, path)
      expect(res.status).toBe(503)
      expect(res.json).toMatchObject({
        code: 'SLUICE_ERR_ADMIN_STORE',
        detail: expect.stringMatching(/^the store did not answer: /),
      })
    }
  })
})

describe.skipIf(!hasRedis)('accounts on a redis cluster (3 masters)', () => {
  let cluster: RedisCluster
  beforeAll(async () => {
    cluster = await startCluster()
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('finds every account whatever master holds it, ranks them, shows and resets one', async () => {
    const store = new RedisStore({
      cluster: cluster.urls,
      keyPrefix: 'adm:',
      commandTimeoutMs: 2000,
      onError: 'fail-closed',
      maxAccounts: 10,
    })
    const memory = new MemoryStore({ maxAccounts: 100 })
    try {
      await store.ready(10_000)
      const policy = buildPolicy(
        'c',
        [{ kind: 'distinctRecords', windowMs: 600_000, max: 40, action: 'disable' }],
        false,
      )
      const now = Date.now()
      for (const s of [store, memory]) {
        const engine = new Engine(s, { disableForMs: Infinity, clock: () => now })
        // Account i reads i records: 30 accounts spread over the slots (and so the masters).
        for (let i = 1; i <= 30; i++) await engine.observe(`header:u${i}`, policy, range(1, i).map(String))
        await engine.observe('header:u45', policy, range(1, 45).map(String)) // crosses 40: disabled
      }
      const query = { policies: [policy], by: 'distinct' as const, limit: 5, now }
      const page = await store.accounts(query)
      expect(page.scanned).toBe(31)
      expect(page.truncated).toBe(false)
      const top = [
        ['header:u30', 0.75],
        ['header:u29', 0.725],
        ['header:u28', 0.7],
        ['header:u27', 0.675],
        ['header:u26', 0.65],
      ]
      expect(page.accounts.map((a) => [a.account, a.pressure])).toEqual(top)
      expect((await memory.accounts(query)).accounts.map((a) => [a.account, a.pressure])).toEqual(top)
      expect(page.accounts[0]).toMatchObject({ account: 'header:u30', pressure: 0.75 })
      expect((await store.account('header:u45', [policy], now))?.disabled).toEqual([
        { account: 'header:u45', until: Infinity, shadow: false, limit: `${policy.name}#0`, since: expect.any(Number) },
      ])

      expect(await store.reset('header:u30', { policies: [policy] })).toBe(true)
      expect(await store.account('header:u30', [policy], now)).toBeNull()
      expect((await store.accounts(query)).accounts[0]?.account).toBe('header:u29')
    } finally {
      await store.close()
    }
  })
})
