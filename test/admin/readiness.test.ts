// /readyz and the upstream: 503 with the reason while it takes no connections, 200 again once
// it does (admin.readiness: a background TCP connect).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readiness } from '../../src/admin/server.js'
import { UpstreamProbe } from '../../src/admin/readiness.js'
import { MemoryStore } from '../../src/store/memory.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const TOKEN = 'admin-token-0123456789abcdef'

function upstreamServer(): http.Server {
  return http.createServer((req, res) => {
    req.resume()
    res.end('{}')
  })
}
async function listen(server: http.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}
async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await read()
    if (ok(v) || Date.now() > end) return v
    await new Promise((r) => setTimeout(r, 50))
  }
}

let server: http.Server
let port: number
let proxy: RunningProxy
let admin: FastifyInstance
let adminUrl: string

beforeAll(async () => {
  server = upstreamServer()
  port = await listen(server)
  proxy = await startProxy(
    `
version: 1
upstream: { url: UPSTREAM }
admin:
  listen: { port: 0 }
  token: ${TOKEN}
  readiness: { checkEvery: 100ms, timeout: 1s }
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1m, distinctRecords: 100, action: throttle } ]
`,
    { upstream: `http://127.0.0.1:${port}` },
  )
  const started = await proxy.app.sluice.runtime.startAdmin(() => Promise.resolve({ ok: true }))
  if (!started) throw new Error('no admin listener')
  admin = started
  const a = admin.server.address() as AddressInfo
  adminUrl = `http://127.0.0.1:${a.port}`
})
afterAll(async () => {
  await admin.close()
  await proxy.close()
  if (server.listening) await stop(server)
})

const ready = async () => {
  const res = await fetch(`${adminUrl}/readyz`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

const metrics = () => proxy.app.sluice.metrics.registry.metrics()

describe('/readyz with admin.readiness.upstream', () => {
  it('is ready while the upstream takes connections', async () => {
    const r = await ready()
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ status: 'ready', upstream: { state: 'ok', target: `127.0.0.1:${port}` } })
  })

  it('answers 503 with the reason while the upstream is down, 200 once it is back', async () => {
    await stop(server)
    const down = await until(ready, (r) => r.status === 503)
    expect(down.status).toBe(503)
    expect(down.body).toMatchObject({
      status: 'degraded',
      // A probe that reached the listener while it closed is reset; every later one is refused.
      upstream: {
        state: 'unreachable',
        target: `127.0.0.1:${port}`,
        reason: expect.stringMatching(/^connect ECONN(REFUSED|RESET)$/),
      },
    })
    expect(proxy.logs.some((l) => l.event === 'sluice.upstream' && l.state === 'unreachable')).toBe(true)
    expect(await metrics()).toContain(`sluice_upstream_up{target="127.0.0.1:${port}"} 0`)

    server = upstreamServer()
    await listen(server, port)
    const up = await until(ready, (r) => r.status === 200)
    expect(up.status).toBe(200)
    expect(up.body).toMatchObject({ status: 'ready', upstream: { state: 'ok' } })
    expect((up.body.upstream as Record<string, unknown>).reason).toBeUndefined()
    expect(proxy.logs.some((l) => l.event === 'sluice.upstream' && l.state === 'ok')).toBe(true)
    expect(await metrics()).toContain(`sluice_upstream_up{target="127.0.0.1:${port}"} 1`)
  })
})

describe('UpstreamProbe', () => {
  it('reports a connection that does not come within the timeout', async () => {
    // 192.0.2.0/24 (TEST-NET-1) is never routed: the connect hangs or fails at once, never succeeds.
    const probe = new UpstreamProbe('http://192.0.2.1:81', { everyMs: 60_000, timeoutMs: 100 })
    await probe.start()
    probe.stop()
    const h = probe.health()
    expect(h.state).toBe('unreachable')
    expect(h.reason).toMatch(/no connection within 100ms|connect E/)
  })

  it('readiness() is 503 with the upstream unreachable, whatever the store says', () => {
    const store = new MemoryStore({ maxAccounts: 1 })
    const upstream = {
      state: 'unreachable' as const,
      target: 'app:8080',
      reason: 'connect ECONNREFUSED',
      since: '2026-01-01T00:00:00.000Z',
      checkedAt: '2026-01-01T00:00:05.000Z',
    }
    expect(readiness(store, { upstream: () => upstream })).toEqual({
      code: 503,
      body: { status: 'degraded', store: { type: 'memory', state: 'ok' }, upstream },
    })
  })
})
