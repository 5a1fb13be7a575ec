// Upstream and proxy metrics: latency by status class, 502/504 counts, proxy duration — labelled
// by route name or `-`, never by path.
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

let upstream: Upstream
let proxy: RunningProxy
let dead: RunningProxy

const CONFIG = `
version: 1
upstream: { url: UPSTREAM, timeout: 300ms }
identity: [ { type: basic } ]
routes:
  - name: contact
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1m, distinctRecords: 100, action: throttle } ]
`

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    req.resume()
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 1000)
    res.statusCode = req.url === '/missing' ? 404 : req.url === '/broken' ? 500 : 200
    res.end('{}')
  })
  proxy = await startProxy(CONFIG, { upstream: upstream.url })
  dead = await startProxy(CONFIG, { upstream: `http://127.0.0.1:${await closedPort()}` })
})
afterAll(async () => {
  await proxy.close()
  await dead.close()
  await upstream.close()
})

async function text(p: RunningProxy): Promise<string> {
  return p.app.sluice.metrics.registry.metrics()
}

describe('upstream metrics', () => {
  it('time the upstream by route and status class, and the whole exchange', async () => {
    for (let id = 1; id <= 3; id++)
      expect((await send(proxy.url, `/api/contacts/${id}`, { headers: basic('ann') })).status).toBe(200)
    expect((await send(proxy.url, '/missing')).status).toBe(404)
    expect((await send(proxy.url, '/broken')).status).toBe(500)
    const t = await text(proxy)
    expect(t).toContain('sluice_upstream_latency_seconds_count{route="contact",class="2xx"} 3')
    expect(t).toContain('sluice_upstream_latency_seconds_count{route="-",class="4xx"} 1')
    expect(t).toContain('sluice_upstream_latency_seconds_count{route="-",class="5xx"} 1')
    expect(t).toContain('sluice_proxy_duration_seconds_count{route="contact",class="2xx"} 3')
    expect(t).toMatch(/sluice_proxy_duration_seconds_bucket\{le="30",route="contact",class="2xx"\} 3/)
    // Paths never become labels.
    expect(t).not.toContain('/missing')
    expect(t).not.toContain('/api/contacts')
  })

  it('count 504 when the upstream is too slow', async () => {
    expect((await send(proxy.url, '/slow')).status).toBe(504)
    const t = await text(proxy)
    expect(t).toContain('sluice_upstream_errors_total{route="-",status="504"} 1')
    expect(t).toContain('sluice_proxy_duration_seconds_count{route="-",class="5xx"} 2')
  })

  it('count 502 when the upstream is unreachable', async () => {
    expect((await send(dead.url, '/api/contacts/1', { headers: basic('ann') })).status).toBe(502)
    expect((await send(dead.url, '/elsewhere')).status).toBe(502)
    const t = await text(dead)
    expect(t).toContain('sluice_upstream_errors_total{route="contact",status="502"} 1')
    expect(t).toContain('sluice_upstream_errors_total{route="-",status="502"} 1')
    expect(t).not.toContain('sluice_upstream_latency_seconds_count{')
    // The log says which route and method failed, and why, without the path (it may name a record).
    const logged = dead.logs.filter((l) => l.event === 'sluice.upstream_error')
    expect(logged).toContainEqual(
      expect.objectContaining({ route: 'contact', method: 'GET', code: 'ECONNREFUSED', level: 50 }),
    )
    expect(logged.find((l) => l.route === 'contact')?.msg).toMatch(/^upstream failed \(502\): connect ECONNREFUSED/)
    expect(JSON.stringify(logged)).not.toContain('/api/contacts/1')
  })
})
