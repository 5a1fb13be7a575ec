// Block references shared through Redis: a decision made by one proxy is explained by the other
// proxy's admin API (GET /decisions/REF), and `accounts find` searches Redis' keys (SCAN MATCH).
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, TOKEN } from '../admin/helpers.js'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const config = (redis: string) => `
version: 1
upstream: { url: UPSTREAM, timeout: 5s }
store: { type: redis, url: "${redis}", keyPrefix: "refs:", onError: fail-closed, commandTimeout: 2s }
identity: [ { type: header, name: x-user, trusted: true }, { type: basic, secret: basic-secret-0123456789 } ]
admin: { listen: { port: 0 }, token: ${TOKEN} }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:
      - { window: 1m, distinctRecords: 2, action: throttle }
`

describe.skipIf(!hasRedis)('references through Redis', () => {
  let redis: RedisServer
  let upstream: Upstream
  const proxies: RunningProxy[] = []
  const admins: string[] = []
  const apps: FastifyInstance[] = []

  beforeAll(async () => {
    redis = await startRedis()
    upstream = await startUpstream()
    for (let i = 0; i < 2; i++) {
      const proxy = await startProxy(config(redis.url), { upstream: upstream.url })
      await (proxy.app.sluice.store as unknown as { ready(): Promise<void> }).ready()
      const admin = (await proxy.app.sluice.runtime.startAdmin(async () => ({ ok: true }))) as FastifyInstance
      proxies.push(proxy)
      apps.push(admin)
      admins.push(`http://127.0.0.1:${(admin.server.address() as { port: number }).port}`)
    }
  })
  afterAll(async () => {
    for (const a of apps) await a.close()
    for (const p of proxies) await p.close()
    await upstream?.close()
    await redis?.stop()
  })

  it('a block on one proxy is explained by the other', async () => {
    const [a, b] = proxies as [RunningProxy, RunningProxy]
    const as = (p: RunningProxy, id: number) => send(p.url, `/api/contacts/${id}`, { headers: { 'x-user': 'zoe' } })
    expect((await as(a, 1)).status).toBe(200)
    expect((await as(b, 2)).status).toBe(200)
    const blocked = await as(a, 3)
    expect(blocked.status).toBe(429)
    const ref = blocked.headers['sluice-reference'] as string
    expect(JSON.parse(blocked.body).reference).toBe(ref)
    let shown = await call(admins[1] as string, 'GET', `/decisions/${ref}`)
    // The write is not awaited on the request path: give it a moment.
    for (let i = 0; i < 20 && shown.status === 404; i++) {
      await new Promise((r) => setTimeout(r, 25))
      shown = await call(admins[1] as string, 'GET', `/decisions/${ref}`)
    }
    expect(shown.status).toBe(200)
    expect(shown.json).toMatchObject({
      reference: ref,
      account: 'header:zoe',
      decision: 'throttle',
      limit: { id: 'contact#0', max: 2, window: '1m' },
    })
    expect(shown.json.instance).toContain(`:${process.pid}`)
  })

  it('accounts find searches the shared keys, any case', async () => {
    await send((proxies[0] as RunningProxy).url, '/api/contacts/1', { headers: basic('Pager') })
    const found = await call(admins[1] as string, 'GET', '/accounts?find=pAgEr')
    expect(found.status).toBe(200)
    expect(found.json.accounts).toHaveLength(1)
    expect(found.json.accounts[0]).toMatch(/^basic:pager#[0-9a-f]{16}$/)
  })
})
