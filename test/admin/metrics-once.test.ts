// sluice_requests_total counts each request once, with its final decision — also on routes
// whose records are read from the response (a request step and an answer step).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, send } from '../helpers/http.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

let upstream: Upstream
let proxy: RunningProxy

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    req.resume()
    if (req.url?.startsWith('/api/missing')) {
      res.statusCode = 404
      return res.end('{}')
    }
    const page = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('page') ?? '0')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ items: [{ id: `r${page * 2}` }, { id: `r${page * 2 + 1}` }] }))
  })
  proxy = await startProxy(
    `
version: 1
upstream: { url: UPSTREAM }
identity: [ { type: basic } ]
routes:
  - name: list
    path: /api/list
    records: { response: "$.items[*].id" }
    limits: [ { window: 1m, distinctRecords: 10, action: throttle } ]
  - name: missing
    path: /api/missing
    records: { response: "$.items[*].id" }
    limits: [ { window: 1m, distinctRecords: 10, action: throttle } ]
  - name: orders
    path: /api/orders
    methods: [POST]
    records: { body: "$.ids[*]" }
    limits: [ { window: 1m, distinctRecords: 10, action: throttle } ]
`,
    { upstream: upstream.url },
  )
})
afterAll(async () => {
  await proxy.close()
  await upstream.close()
})

async function counts(route: string): Promise<Record<string, number>> {
  const metric = await proxy.app.sluice.metrics.decisions.get()
  const out: Record<string, number> = {}
  for (const v of metric.values) if (v.labels.route === route) out[String(v.labels.decision)] = v.value
  return out
}
const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0)

describe('sluice_requests_total', () => {
  it('counts 12 requests to a response-inspected route 12 times, with their final decisions', async () => {
    const statuses: number[] = []
    for (let page = 0; page < 12; page++)
      statuses.push((await send(proxy.url, `/api/list?page=${page}`, { headers: basic('mallory') })).status)
    // 2 records a page, 10 allowed: pages 0-4 pass, the sixth crosses the limit.
    expect(statuses.filter((s) => s === 200)).toHaveLength(5)
    const c = await counts('list')
    expect(total(c)).toBe(12)
    expect(c.allow).toBe(5)
    expect(c.throttle).toBe(7)
    const blocks = await proxy.app.sluice.metrics.blocks.get()
    expect(blocks.values.reduce((a, v) => a + v.value, 0)).toBe(7)
  })

  it('counts an answer that is not inspected (not a 2xx) once, with the request step decision', async () => {
    for (let i = 0; i < 3; i++)
      expect((await send(proxy.url, '/api/missing', { headers: basic('alice') })).status).toBe(404)
    expect(await counts('missing')).toEqual({ allow: 3 })
  })

  it('counts requests whose records are in the body once', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await send(proxy.url, '/api/orders', {
        method: 'POST',
        headers: { ...basic('bob'), 'content-type': 'application/json' },
        body: JSON.stringify({ ids: [`o${i}`] }),
      })
      expect(res.status).toBe(200)
    }
    expect(await counts('orders')).toEqual({ allow: 4 })
  })
})
