// The admin listener: probes without a token, metrics only with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildAdmin } from '../../src/admin/server.js'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const TOKEN = 'admin-token-0123456789abcdef'
let upstream: Upstream
let proxy: RunningProxy
let admin: Awaited<ReturnType<typeof buildAdmin>>
let adminUrl: string

beforeAll(async () => {
  upstream = await startUpstream()
  proxy = await startProxy(
    `
version: 1
upstream: { url: UPSTREAM }
identity: [ { type: basic } ]
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1m, distinctRecords: 2, action: throttle } ]
`,
    { upstream: upstream.url },
  )
  admin = await buildAdmin({ token: TOKEN, metrics: proxy.app.sluice.metrics, store: proxy.app.sluice.store })
  adminUrl = await admin.listen({ host: '127.0.0.1', port: 0 })
})
afterAll(async () => {
  await admin.close()
  await proxy.close()
  await upstream.close()
})

describe('admin listener', () => {
  it('answers probes without a token', async () => {
    expect(await (await fetch(`${adminUrl}/healthz`)).json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${adminUrl}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready', store: { type: 'memory' } })
  })

  it('refuses /metrics without or with a wrong token, and leaks nothing', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Bearer nope' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
    ]) {
      const res = await fetch(`${adminUrl}/metrics`, { headers })
      expect(res.status).toBe(401)
      expect(await res.text()).not.toContain('sluice_')
    }
  })

  it('exports decisions and blocks (the memory store is not timed)', async () => {
    for (let id = 1; id <= 4; id++) await send(proxy.url, `/api/contacts/${id}`, { headers: basic('mallory') })
    const res = await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(text).toContain('sluice_requests_total{route="contact",decision="allow",shadow="false"} 2')
    expect(text).toContain('sluice_requests_total{route="contact",decision="throttle",shadow="false"} 2')
    expect(text).toContain('sluice_blocks_total{action="throttle"} 2')
    expect(text).not.toMatch(/sluice_store_latency_seconds_count\{store="memory"\}/)
    expect(text).toContain('sluice_accounts_tracked 1')
  })

  it('is not reachable on the public port', async () => {
    const res = await send(proxy.url, '/metrics')
    expect(res.status).toBe(200) // forwarded to the upstream like any other path
    expect(res.body).not.toContain('sluice_')
  })
})
